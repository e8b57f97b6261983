package engine_test

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/freshet/freshet/pkg/events"
	"github.com/freshet/freshet/pkg/servers"
	"github.com/freshet/freshet/pkg/testenv"
	"github.com/freshet/freshet/services/personalizer/internal/ptest"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Benchmarks of the targets, against the package's kfake broker
// (in this process). See docs/personalizer.md for the figures and how to
// run them:
//
//	go test -run '^$' -bench . -benchtime 1x ./services/personalizer/internal/engine/

// BenchmarkRestore1M restores 1,000,000 profiles: the time from a new
// instance's start to its readiness (the table restored), and the memory
// the table takes (heap after restore minus heap before).
func BenchmarkRestore1M(b *testing.B) {
	const n = 1_000_000
	e := newEnv(b, 12, 12)
	e.start("topics").stop() // creates the topics
	ptest.ManyProfiles(b, e.seeds, e.topics.Profiles, n, nil)
	ptest.CommitEnd(b, e.seeds, e.group, e.topics.Profiles)
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	for i := range b.N {
		start := time.Now()
		in := e.start(fmt.Sprint("restore-", i))
		took := time.Since(start)
		b.StopTimer()
		if got := testenv.Metric(b, in.reg, "freshet_personalizer_profiles"); got != n {
			b.Fatalf("restored %v profiles", got)
		}
		runtime.GC()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		mem, err := servers.ProcessMemory(0)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(took.Seconds(), "s/restore")
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), "table-MiB")
		b.ReportMetric(servers.MiB(mem.RSS), "rss-MiB")
		b.ReportMetric(servers.MiB(mem.Peak), "peak-rss-MiB")
		in.stop()
		b.StartTimer()
	}
}

// BenchmarkChange10kUsers measures, for changes that each match 10,000
// users, the time from producing the change to reading all its 10,000
// deliveries back with a read_committed consumer (so, committed), and the
// delivery throughput that makes.
func BenchmarkChange10kUsers(b *testing.B) {
	const users = 10_000
	e := newEnv(b, 12, 12)
	in := e.start("a")
	ptest.ManyProfiles(b, e.seeds, e.topics.Profiles, users, func(i int, up *events.UserProfile) { up.Follows = append(up.Follows, "tag:hot") })
	waitFor(b, func() bool { return testenv.Metric(b, in.reg, "freshet_personalizer_profiles") == users }, "the table")
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.seeds...), kgo.ConsumeTopics(e.topics.Deliveries),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtEnd()), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxWait(10*time.Millisecond))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	pollN := func(want int) {
		got := 0
		for got < want {
			fs := cl.PollFetches(ctx)
			got += fs.NumRecords()
		}
	}
	// Warm up: one change, and make sure the consumer is positioned.
	e.prod.Changes(change("warm", 1, "hot"))
	pollN(users)
	var lat []time.Duration
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		t0 := time.Now()
		e.prod.Changes(change(fmt.Sprint("c", i), 1, "hot"))
		pollN(users)
		lat = append(lat, time.Since(t0))
	}
	elapsed := time.Since(start)
	b.StopTimer()
	slices.Sort(lat)
	q := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
	}
	b.ReportMetric(q(0.5), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	b.ReportMetric(q(1), "max-ms")
	b.Logf("slowest: %v", lat[max(0, len(lat)-5):])
	b.ReportMetric(float64(b.N*users)/elapsed.Seconds(), "deliveries/s")
}

// BenchmarkDeliveriesThroughput produces a backlog of changes that each
// match 10,000 users and measures the deliveries per second committed while
// the instance works through it.
func BenchmarkDeliveriesThroughput(b *testing.B) {
	const users = 10_000
	e := newEnv(b, 12, 12)
	e.cfg.MaxChangesPerTransaction = 20
	in := e.start("a")
	ptest.ManyProfiles(b, e.seeds, e.topics.Profiles, users, func(i int, up *events.UserProfile) { up.Follows = append(up.Follows, "tag:hot") })
	waitFor(b, func() bool { return testenv.Metric(b, in.reg, "freshet_personalizer_profiles") == users }, "the table")
	e.prod.Changes(change("warm", 1, "hot"))
	e.caughtUp()
	b.ResetTimer()
	before := testenv.Metric(b, in.reg, "freshet_personalizer_deliveries_total")
	start := time.Now()
	var cs []events.ContentChange
	for i := range b.N {
		cs = append(cs, change(fmt.Sprint("c", i), 1, "hot"))
	}
	e.prod.Changes(cs...)
	waitFor(b, func() bool {
		return testenv.Metric(b, in.reg, "freshet_personalizer_deliveries_total")-before >= float64(b.N*users)
	}, "the deliveries")
	b.ReportMetric(float64(b.N*users)/time.Since(start).Seconds(), "deliveries/s")
}

// BenchmarkChangesThroughput produces a backlog of changes that each match
// two of 10,000 users (the load test's freshness scenario) and measures the
// changes per second the instance scores and commits: the rate a single
// instance sustains when fan-out is small and the per-change and
// per-transaction costs dominate.
//
//	go test -run '^$' -bench ChangesThroughput -benchtime 50000x ./services/personalizer/internal/engine/
func BenchmarkChangesThroughput(b *testing.B) {
	const users = 10_000
	e := newEnv(b, 12, 12)
	in := e.start("a")
	ptest.ManyProfiles(b, e.seeds, e.topics.Profiles, users, func(i int, up *events.UserProfile) {
		up.Follows = append(up.Follows, fmt.Sprint("tag:t", i%(users/2)))
	})
	waitFor(b, func() bool { return testenv.Metric(b, in.reg, "freshet_personalizer_profiles") == users }, "the table")
	e.prod.Changes(change("warm", 1, "t0"))
	e.caughtUp()
	cs := make([]events.ContentChange, b.N)
	for i := range cs {
		cs[i] = change(fmt.Sprint("c", i), 1, fmt.Sprint("t", i%(users/2)))
	}
	before := testenv.Metric(b, in.reg, "freshet_personalizer_changes_total")
	txnsBefore := testenv.Metric(b, in.reg, "freshet_personalizer_transactions_total")
	b.ResetTimer()
	start := time.Now()
	e.prod.Changes(cs...)
	produced := time.Since(start)
	waitFor(b, func() bool {
		return testenv.Metric(b, in.reg, "freshet_personalizer_changes_total")-before >= float64(b.N)
	}, "the changes")
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "changes/s")
	b.ReportMetric(produced.Seconds(), "s-to-produce")
	b.ReportMetric(float64(b.N)/(testenv.Metric(b, in.reg, "freshet_personalizer_transactions_total")-txnsBefore), "changes/txn")
}
