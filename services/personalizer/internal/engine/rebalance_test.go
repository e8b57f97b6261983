package engine_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/freshet/freshet/pkg/events"
	"github.com/freshet/freshet/pkg/testenv"
	"github.com/freshet/freshet/services/personalizer/internal/ptest"
)

// feed produces n changes tagged "t", in batches, from a goroutine, and
// calls at(i) before batch i. It returns the change event ids and a wait.
func feed(t *testing.T, p *ptest.Producer, n, batch int, pause time.Duration, at func(i int)) ([]string, func()) {
	ids := make([]string, n)
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; i < n; i += batch {
			at(i)
			var cs []events.ContentChange
			for j := i; j < min(i+batch, n); j++ {
				c := change(fmt.Sprint(j), 1, "t")
				cs = append(cs, c)
			}
			p.Changes(cs...)
			time.Sleep(pause)
		}
	})
	for i := range ids {
		ids[i] = events.ID("test-change", fmt.Sprint(i), "1")
	}
	return ids, wg.Wait
}

// interested produces the profiles of n users interested in tag (user-00,
// user-01...), waits until in has applied them, and returns their ids.
func (e *env) interested(in *instance, n int, tag string) []string {
	e.t.Helper()
	var users []string
	var ups []events.UserProfile
	for i := range n {
		u := fmt.Sprintf("user-%02d", i)
		users = append(users, u)
		ups = append(ups, profile(u, tag))
	}
	e.prod.Profiles(ups...)
	waitFor(e.t, func() bool { return testenv.Metric(e.t, in.reg, "freshet_personalizer_profiles") == float64(n) }, fmt.Sprint(n, " profiles"))
	return users
}

// TestRebalanceMidStreamLosesAndDoublesNothing, also with transactions
// ended by MaxDeliveriesPerTransaction (changes carried over from one to
// the next when the partitions move).
func TestRebalanceMidStreamLosesAndDoublesNothing(t *testing.T) {
	for _, tt := range []struct {
		name          string
		maxDeliveries int
	}{{"default", 0}, {"carried over", 100}} {
		t.Run(tt.name, func(t *testing.T) { rebalanceMidStream(t, tt.maxDeliveries) })
	}
}

func rebalanceMidStream(t *testing.T, maxDeliveries int) {
	e := newEnv(t, 6, 3)
	e.cfg.MaxDeliveriesPerTransaction = maxDeliveries
	a := e.start("a")
	users := e.interested(a, 60, "t")
	var b *instance
	const n = 150
	ids, wait := feed(t, e.prod, n, 5, 15*time.Millisecond, func(i int) {
		switch i {
		case n / 3:
			b = e.start("b") // a second instance joins: partitions move to it
		case 2 * n / 3:
			a.stop() // the first leaves: its partitions move to b
		}
	})
	wait()
	e.caughtUp()
	ptest.ExactlyOnce(t, e.deliveries(), ids, users)
	if testenv.Metric(t, b.reg, "freshet_personalizer_restore_records_total") == 0 {
		t.Error("b restored no profiles: the partitions did not move")
	}
	if testenv.Metric(t, a.reg, "freshet_personalizer_deliveries_total") == 0 || testenv.Metric(t, b.reg, "freshet_personalizer_deliveries_total") == 0 {
		t.Error("one instance delivered nothing: the work was not split")
	}
}

// TestIdleInstanceTakesOver: with one partition, a second instance owns
// nothing (and is ready, idle); when the first stops, it takes the partition
// over and delivers the next change.
func TestIdleInstanceTakesOver(t *testing.T) {
	e := newEnv(t, 1, 1)
	a := e.start("a")
	e.prod.Profiles(profile("ana", "go"))
	waitFor(t, func() bool { return testenv.Metric(t, a.reg, "freshet_personalizer_profiles") == 1 }, "ana's profile")
	b := e.start("b") // returns once b is ready, with nothing to own
	if n := testenv.Metric(t, b.reg, "freshet_personalizer_owned_partitions"); n != 0 {
		t.Errorf("b owns %v partitions", n)
	}
	e.prod.Changes(change("1", 1, "go"))
	e.caughtUp()
	a.stop()
	waitFor(t, func() bool { return testenv.Metric(t, b.reg, "freshet_personalizer_owned_partitions") == 1 }, "b owning the partition")
	e.prod.Changes(change("2", 1, "go"))
	e.caughtUp()
	got := recipients(e.deliveries())
	if len(got) != 2 || fmt.Sprint(got[events.ID("test-change", "2", "1")]) != "[ana]" {
		t.Errorf("recipients = %v", got)
	}
}
