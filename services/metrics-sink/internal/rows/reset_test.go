package rows_test

import (
	"reflect"
	"testing"

	"github.com/freshet/freshet/services/metrics-sink/internal/rows"
	"github.com/freshet/freshet/services/metrics-sink/internal/sinktest"
)

// TestResetReusesMemory: once a set held a batch, the next batch of the
// same size, after Reset, takes no new memory (the columns keep theirs,
// strings included), and its rows are those a fresh set gives: nothing of
// the batch before shows through the reused memory.
func TestResetReusesMemory(t *testing.T) {
	c := newCodec(t)
	batch := func(from int) (latency, beacons [][]byte) {
		for i := from; i < from+3000; i++ {
			s := sinktest.LatencySample(i)
			latency = append(latency, encode(t, c, &s))
			beacons = append(beacons, encode(t, c, sinktest.Beacon(i)))
		}
		return latency, beacons
	}
	add := func(set *rows.Set, latency, beacons [][]byte) {
		for i := range latency {
			if !set.AddLatencyValue(latency[i], 0, int64(i)) || !set.AddBeaconValue(beacons[i], 0, int64(i)) {
				t.Fatalf("row %d: not taken by the direct path", i)
			}
		}
	}
	l1, b1 := batch(0)
	l2, b2 := batch(100000)
	set := rows.NewSet()
	add(set, l1, b1)
	set.Reset()
	if n := testing.AllocsPerRun(3, func() { add(set, l2, b2); set.Reset() }); n != 0 {
		t.Errorf("a batch after the first allocated %.0f times", n)
	}
	add(set, l2, b2)
	fresh := rows.NewSet()
	add(fresh, l2, b2)
	for _, k := range []rows.Kind{rows.Latency, rows.Beacons} {
		got, want := set.Table(k).Columns(), fresh.Table(k).Columns()
		for i := range want {
			if !reflect.DeepEqual(got[i].Values(), want[i].Values()) {
				t.Errorf("%s.%s: reused set holds other values than a fresh one", k, want[i].Name())
			}
		}
	}
}
