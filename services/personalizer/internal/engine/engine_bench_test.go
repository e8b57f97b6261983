package engine_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/freshet/freshet/pkg/codec"
	"github.com/freshet/freshet/pkg/events"
	"github.com/freshet/freshet/services/personalizer/internal/wire"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Benchmarks of the targets, against the package's kfake broker
// (in this process). See docs/personalizer.md for the figures and how to
// run them:
//
//	go test -run '^$' -bench . -benchtime 1x ./services/personalizer/internal/engine/

// benchProfiles produces n profiles of 5 interests among 2,000 tags, 3
// follows and 2 segments, and returns when the broker acked them.
func benchProfiles(b *testing.B, e *env, n int, extra func(i int, up *events.UserProfile)) {
	b.Helper()
	c, err := codec.New()
	if err != nil {
		b.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.seeds...), kgo.ProducerLinger(5*time.Millisecond), kgo.MaxBufferedRecords(1<<20))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	errs := make(chan error, 1)
	for i := range n {
		up := events.UserProfile{UserID: "user-" + strconv.Itoa(i), Locale: "en-GB", Region: "r" + strconv.Itoa(i%50)}
		for j := range 5 {
			up.Interests = append(up.Interests, events.Interest{Tag: "tag" + strconv.Itoa((i*7+j*131)%2000), Weight: 0.5 + float64(j)/10})
		}
		up.Follows = []string{"author:" + strconv.Itoa(i%500), "section:s" + strconv.Itoa(i%20), "tag:tag" + strconv.Itoa(i%2000)}
		up.Segments = []string{"seg" + strconv.Itoa(i%10), "all"}
		if extra != nil {
			extra(i, &up)
		}
		v, err := c.EncodeEvent(ctx, e.topics.Profiles, up)
		if err != nil {
			b.Fatal(err)
		}
		cl.Produce(ctx, &kgo.Record{Topic: e.topics.Profiles, Key: []byte(up.UserID), Value: v}, func(_ *kgo.Record, err error) {
			if err != nil {
				select {
				case errs <- err:
				default:
				}
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}
}

// rssMiB returns the process's resident set size and its peak, in MiB.
func rssMiB() (cur, peak float64) {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseFloat(f[1], 64)
		switch f[0] {
		case "VmRSS:":
			cur = kb / 1024
		case "VmHWM:":
			peak = kb / 1024
		}
	}
	return cur, peak
}

// BenchmarkRestore1M restores 1,000,000 profiles: the time from a new
// instance's start to its readiness (the table restored), and the memory
// the table takes (heap after restore minus heap before).
func BenchmarkRestore1M(b *testing.B) {
	const n = 1_000_000
	e := newEnv(b, 12, 12)
	e.start("topics").stop() // creates the topics
	benchProfiles(b, e, n, nil)
	// As a previous owner would have: commit every partition's end offset
	// with its progress, so that the next instance restores all of it.
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.seeds...))
	if err != nil {
		b.Fatal(err)
	}
	adm := kadm.NewClient(cl)
	ends, err := adm.ListEndOffsets(context.Background(), e.topics.Profiles)
	if err != nil {
		b.Fatal(err)
	}
	offs := kadm.Offsets{}
	ends.Each(func(o kadm.ListedOffset) {
		offs.Add(kadm.Offset{Topic: o.Topic, Partition: o.Partition, At: o.Offset, LeaderEpoch: -1, Metadata: wire.Progress{}.String()})
	})
	if _, err := adm.CommitOffsets(context.Background(), e.group, offs); err != nil {
		b.Fatal(err)
	}
	cl.Close()
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	for i := range b.N {
		start := time.Now()
		in := e.start(fmt.Sprint("restore-", i))
		took := time.Since(start)
		b.StopTimer()
		if got := metric(b, in.reg, "freshet_personalizer_profiles"); got != n {
			b.Fatalf("restored %v profiles", got)
		}
		runtime.GC()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		rss, peak := rssMiB()
		b.ReportMetric(took.Seconds(), "s/restore")
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), "table-MiB")
		b.ReportMetric(rss, "rss-MiB")
		b.ReportMetric(peak, "peak-rss-MiB")
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
	benchProfiles(b, e, users, func(i int, up *events.UserProfile) { up.Follows = append(up.Follows, "tag:hot") })
	waitFor(b, func() bool { return metric(b, in.reg, "freshet_personalizer_profiles") == users }, "the table")
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
	benchProfiles(b, e, users, func(i int, up *events.UserProfile) { up.Follows = append(up.Follows, "tag:hot") })
	waitFor(b, func() bool { return metric(b, in.reg, "freshet_personalizer_profiles") == users }, "the table")
	e.prod.Changes(change("warm", 1, "hot"))
	e.caughtUp()
	b.ResetTimer()
	before := metric(b, in.reg, "freshet_personalizer_deliveries_total")
	start := time.Now()
	var cs []events.ContentChange
	for i := range b.N {
		cs = append(cs, change(fmt.Sprint("c", i), 1, "hot"))
	}
	e.prod.Changes(cs...)
	waitFor(b, func() bool {
		return metric(b, in.reg, "freshet_personalizer_deliveries_total")-before >= float64(b.N*users)
	}, "the deliveries")
	b.ReportMetric(float64(b.N*users)/time.Since(start).Seconds(), "deliveries/s")
}
