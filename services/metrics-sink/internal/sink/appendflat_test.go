package sink

import (
	"bytes"
	"testing"
	"time"

	"github.com/ClickHouse/ch-go/proto"
	"github.com/ClickHouse/clickhouse-go/v2/lib/column"

	"github.com/freshet/freshet/pkg/events"
	"github.com/freshet/freshet/services/metrics-sink/internal/rows"
	"github.com/freshet/freshet/services/metrics-sink/internal/sinktest"
)

// TestAppendFlatMatchesRows: an array column handed over whole
// (appendFlat) is, on the wire, byte for byte what clickhouse-go makes of
// the same rows appended one by one, after Keep too; a column of another
// type is left to the rows.
func TestAppendFlatMatchesRows(t *testing.T) {
	set := rows.NewSet()
	var sc scratch // one for every column, as the inserter has
	evs := sinktest.Script(3)
	evs = append(evs, &events.RumBeacon{EventID: "empty"}, &events.RumBeacon{EventID: "b",
		Metrics: []events.WebVital{{Name: events.VitalLCP, Value: 1.5, Rating: events.RatingGood}},
		SSELags: []events.SSELag{{EventID: "", LagMS: -1}, {EventID: "x", LagMS: 2}}})
	for i, ev := range pointers(evs) {
		for _, k := range []rows.Kind{rows.Latency, rows.Purges, rows.Beacons} {
			_ = set.Add(k, ev, 0, int64(i))
		}
	}
	for _, keep := range []bool{false, true} {
		for _, k := range []rows.Kind{rows.Latency, rows.Purges, rows.Beacons} {
			tb := set.Table(k)
			if keep {
				mask := make([]bool, tb.Len())
				for i := range mask {
					mask[i] = i%3 != 1
				}
				tb.Keep(mask)
			}
			if tb.Len() == 0 {
				t.Fatalf("%s: no rows", k)
			}
			arrays := 0
			for _, c := range tb.Columns() {
				f, ok := c.(rows.Flat)
				if !ok {
					continue
				}
				arrays++
				typ := column.Type("Array(String)")
				if _, ok := c.Values().([][]float64); ok {
					typ = "Array(Float64)"
				}
				whole, byRow := newColumn(t, typ, c.Name()), newColumn(t, typ, c.Name())
				if done, err := appendFlat(whole.(*column.Array), f, &sc); !done || err != nil {
					t.Fatalf("%s.%s: appendFlat %v, %v", k, c.Name(), done, err)
				}
				if err := appendRows(fakeColumn{byRow}, c.Values()); err != nil {
					t.Fatal(err)
				}
				if a, b := encode(whole), encode(byRow); !bytes.Equal(a, b) || whole.Rows() != tb.Len() {
					t.Fatalf("%s.%s: %d rows, encoded\n%x\nrow by row\n%x", k, c.Name(), whole.Rows(), a, b)
				}
				other := newColumn(t, "Array(UInt64)", c.Name())
				if done, err := appendFlat(other.(*column.Array), f, &sc); done || err != nil {
					t.Fatalf("%s.%s into Array(UInt64): %v, %v", k, c.Name(), done, err)
				}
			}
			if arrays == 0 {
				t.Fatalf("%s: no array column", k)
			}
		}
	}
}

// pointers returns evs with every event a pointer: Script's events are
// values, and Add takes pointers.
func pointers(evs []events.Event) []events.Event {
	out := make([]events.Event, len(evs))
	for i, ev := range evs {
		switch e := ev.(type) {
		case events.LatencySample:
			ev = &e
		case events.PurgeAudit:
			ev = &e
		case events.RumBeacon:
			ev = &e
		case events.Delivery:
			ev = &e
		}
		out[i] = ev
	}
	return out
}

func newColumn(t *testing.T, typ column.Type, name string) column.Interface {
	t.Helper()
	c, err := typ.Column(name, &column.ServerContext{Timezone: time.UTC})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func encode(c column.Interface) []byte {
	var b proto.Buffer
	c.Encode(&b)
	return b.Buf
}
