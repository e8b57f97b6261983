package sink

import (
	"sync"

	"github.com/ClickHouse/ch-go/proto"
	"github.com/ClickHouse/clickhouse-go/v2/lib/column"

	"github.com/freshet/freshet/services/metrics-sink/internal/rows"
)

// clickhouse-go builds a String column (or the strings of an
// Array(String)) by appending to an empty buffer, which then grows by
// doubling: for a batch of 50,000 rows, that copying was a fifth of the
// sink's CPU. Its only hook is a process-wide provider of the empty column
// (column.WithColStrProvider), called by name when PrepareBatch makes the
// columns. So insert records the size of each string column of the table
// it prepares (strSizes.set) and the provider gives a column of that name
// its room at once; any other column, or one of another insert running
// meanwhile in the same process (tests), gets a guess or none, which
// costs only the growth it had before.

// strSize is the room a string column needs.
type strSize struct{ n, bytes int }

type strSizes struct {
	mu sync.Mutex
	m  map[string]strSize
}

var (
	sizes       = strSizes{m: map[string]strSize{}}
	provideOnce sync.Once
)

// installColStrProvider makes clickhouse-go's string columns take their
// room from sizes.
func installColStrProvider() {
	provideOnce.Do(func() { column.WithColStrProvider(sizes.colStr) })
}

// set records the string columns of t, until the returned func is called.
func (s *strSizes) set(t *rows.Table) (done func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var names []string
	for i, c := range t.Columns() {
		if n, bytes := t.StringSize(i); n > 0 {
			s.m[c.Name()] = strSize{n, bytes}
			names = append(names, c.Name())
		}
	}
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, n := range names {
			delete(s.m, n)
		}
	}
}

func (s *strSizes) colStr(name string) proto.ColStr {
	s.mu.Lock()
	sz, ok := s.m[name]
	s.mu.Unlock()
	if !ok {
		return proto.ColStr{}
	}
	return proto.ColStr{Buf: make([]byte, 0, sz.bytes), Pos: make([]proto.Position, 0, sz.n)}
}
