package rows_test

import (
	"testing"

	"github.com/freshet/freshet/pkg/events"
	"github.com/freshet/freshet/services/metrics-sink/internal/rows"
)

// A purge row keeps the part of its batch's audit and how many parts it
// has, as UInt16 counts from 1: zero (unset, the batch's only record) and
// below is 1, what a UInt16 cannot hold is 65535.
func TestPurgeParts(t *testing.T) {
	for _, c := range []struct {
		part, parts         int
		wantPart, wantParts uint16
	}{
		{2, 3, 2, 3},
		{1, 1, 1, 1},
		{0, 0, 1, 1},
		{-4, 1 << 20, 1, 65535},
	} {
		s := rows.NewSet()
		if err := s.Add(rows.Purges, &events.PurgeAudit{EventID: "e", Part: c.part, Parts: c.parts}, 0, 1); err != nil {
			t.Fatal(err)
		}
		got := map[string]uint16{}
		for _, col := range s.Table(rows.Purges).Columns() {
			if v, ok := col.Values().([]uint16); ok {
				got[col.Name()] = v[0]
			}
		}
		if got["part"] != c.wantPart || got["parts"] != c.wantParts {
			t.Errorf("part %d of %d: row part %d of %d, want %d of %d", c.part, c.parts, got["part"], got["parts"], c.wantPart, c.wantParts)
		}
	}
}
