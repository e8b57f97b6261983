package sink

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/column"

	"github.com/freshet/freshet/pkg/events"
	"github.com/freshet/freshet/services/metrics-sink/internal/rows"
	"github.com/freshet/freshet/services/metrics-sink/internal/sinktest"
)

// wireType is the ClickHouse type of a column of numbers, times or
// strings.
var wireType = map[string]column.Type{
	"[]uint8": "UInt8", "[]uint16": "UInt16", "[]uint32": "UInt32", "[]uint64": "UInt64",
	"[]int64": "Int64", "[]float64": "Float64", "[]time.Time": "DateTime", "[]string": "String",
}

// TestAppendWireMatchesAppend: every column of numbers, times or strings
// of every table, handed over in the wire's format (appendWire,
// appendStrings), is on the wire
// byte for byte what clickhouse-go's Append makes of it, with one scratch
// buffer for all of them, as the inserter has; into a column of another
// type, or one that holds rows, it is left to Append.
func TestAppendWireMatchesAppend(t *testing.T) {
	set := rows.NewSet()
	evs := append(sinktest.Script(5),
		&events.LatencySample{EventID: "zero"}, // zero times
		&events.LatencySample{EventID: "far", At: time.Unix(1<<33, 0), Duration: -time.Hour},
		&events.RumBeacon{EventID: "b", ReceivedAt: time.Unix(-5, 0), Route: strings.Repeat("/long", 100)})
	for i, ev := range pointers(evs) {
		for _, k := range rows.Kinds {
			_ = set.Add(k, ev, 3, int64(i))
		}
	}
	set.AddDLQ("t.dlq", map[string]string{"freshet.dlq.error": "bad"}, sinktest.Base, 1, 2)
	var sc scratch
	var wire, appended []column.Interface
	done := 0
	for _, k := range rows.Kinds {
		tb := set.Table(k)
		for _, c := range tb.Columns() {
			typ, ok := wireType[fmt.Sprintf("%T", c.Values())]
			if !ok {
				continue
			}
			if tb.Len() == 0 {
				t.Fatalf("%s: no rows", k)
			}
			w, a := newColumn(t, typ, c.Name()), newColumn(t, typ, c.Name())
			add := func(w column.Interface) (bool, error) { return appendWire(w, c.Values(), &sc) }
			if s, ok := c.(rows.Strings); ok {
				add = func(w column.Interface) (bool, error) { return appendStrings(w, s, &sc) }
			}
			if ok, err := add(w); !ok || err != nil {
				t.Fatalf("%s.%s (%s): %v, %v", k, c.Name(), typ, ok, err)
			}
			if _, err := a.Append(c.Values()); err != nil {
				t.Fatal(err)
			}
			wire, appended = append(wire, w), append(appended, a)
			done++

			other := column.Type("Int32")
			if typ == "Int32" {
				other = "UInt8"
			}
			if ok, err := add(newColumn(t, other, c.Name())); ok || err != nil {
				t.Errorf("%s.%s into %s: %v, %v", k, c.Name(), other, ok, err)
			}
			if ok, _ := add(w); ok {
				t.Errorf("%s.%s: appended to a column that holds rows", k, c.Name())
			}
		}
	}
	if done < 40 {
		t.Fatalf("only %d columns of numbers, times or strings", done)
	}
	for i := range wire {
		if a, b := encode(wire[i]), encode(appended[i]); !bytes.Equal(a, b) || wire[i].Rows() != appended[i].Rows() {
			t.Errorf("%s (%s): %d rows, encoded\n%x\nby Append\n%x", wire[i].Name(), wire[i].Type(), wire[i].Rows(), a, b)
		}
	}
}
