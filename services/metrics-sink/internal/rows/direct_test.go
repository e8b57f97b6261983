package rows_test

import (
	"context"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/freshet/freshet/pkg/codec"
	"github.com/freshet/freshet/pkg/events"
	"github.com/freshet/freshet/services/metrics-sink/internal/rows"
)

// TestDirectMatchesSchemas fails when a schema of schemas/avro is no
// longer the version its direct path reads: update the reading of that
// file (latencyValue.read, beaconValue.read) for the new version, then its
// fingerprint.
func TestDirectMatchesSchemas(t *testing.T) {
	c := newCodec(t)
	for _, tc := range []struct {
		schema, file string
		direct       func(*codec.Codec) bool
	}{
		{events.LatencySampleSchema, "latency_direct.go", rows.DirectLatency},
		{events.RumBeaconSchema, "beacon_direct.go", rows.DirectBeacon},
	} {
		t.Run(tc.schema, func(t *testing.T) {
			if !tc.direct(c) {
				s, _ := c.Schema(tc.schema)
				t.Fatalf("%s's fingerprint is now %#x: update rows/%s", tc.schema, s.Fingerprint, tc.file)
			}
		})
	}
}

// fuzzDirect fuzzes the direct path of input k against the codec and
// Add (sameRows), seeded with the values of seeds.
func fuzzDirect(f *testing.F, k rows.Kind, seeds []events.Event) {
	c := newCodec(f)
	for _, ev := range seeds {
		f.Add(encode(f, c, ev))
	}
	f.Add([]byte("not avro"))
	f.Fuzz(func(t *testing.T, data []byte) { sameRows(t, c, k, data) })
}

func newCodec(tb testing.TB) *codec.Codec {
	tb.Helper()
	c, err := codec.New()
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// encode returns the record value of ev, as services write it.
func encode(tb testing.TB, c *codec.Codec, ev events.Event) []byte {
	tb.Helper()
	v, err := c.EncodeEvent(context.Background(), "t", ev)
	if err != nil {
		tb.Fatal(err)
	}
	return v
}

// sameRows checks the direct path of input k (AddLatencyValue,
// AddBeaconValue) against DecodeTyped and Add on value, and reports
// whether the direct path took it.
func sameRows(t *testing.T, c *codec.Codec, k rows.Kind, value []byte) bool {
	t.Helper()
	direct, slow := rows.NewSet(), rows.NewSet()
	addValue := direct.AddLatencyValue
	if k == rows.Beacons {
		addValue = direct.AddBeaconValue
	}
	if !addValue(value, 2, 9) {
		if direct.Len() != 0 || direct.Minimized != 0 {
			t.Fatalf("refused, but %d rows and %d minimized", direct.Len(), direct.Minimized)
		}
		return false
	}
	ev, _, err := c.DecodeTyped(context.Background(), value)
	if err != nil {
		t.Fatalf("direct path took a value the codec refuses: %v", err)
	}
	if err := slow.Add(k, ev, 2, 9); err != nil {
		t.Fatalf("direct path took a value Add refuses: %v", err)
	}
	if direct.Len() != 1 || slow.Len() != 1 || direct.Minimized != slow.Minimized {
		t.Fatalf("rows %d and %d, minimized %d and %d", direct.Len(), slow.Len(), direct.Minimized, slow.Minimized)
	}
	dc, sc := direct.Table(k).Columns(), slow.Table(k).Columns()
	for i := range dc {
		a, b := dc[i].Values(), sc[i].Values()
		switch ta := a.(type) {
		case []time.Time:
			tb := b.([]time.Time)
			if !ta[0].Equal(tb[0]) || ta[0].Location() != tb[0].Location() {
				t.Fatalf("%s: %v, Add gives %v", dc[i].Name(), ta[0], tb[0])
			}
			continue
		case [][]float64: // NaN is not DeepEqual to itself: compare bits
			a, b = floatBits(ta), floatBits(b.([][]float64))
		}
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("%s: %#v, Add gives %#v", dc[i].Name(), a, b)
		}
	}
	return true
}

func floatBits(v [][]float64) [][]uint64 {
	out := make([][]uint64, len(v))
	for i, row := range v {
		out[i] = []uint64{}
		for _, f := range row {
			out[i] = append(out[i], math.Float64bits(f))
		}
	}
	return out
}
