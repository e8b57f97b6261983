package engine_test

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/freshet/freshet/pkg/edgefake"
	"github.com/freshet/freshet/pkg/events"
	"github.com/freshet/freshet/pkg/pipeline"
	"github.com/freshet/freshet/pkg/testenv"
	"github.com/freshet/freshet/services/invalidator/internal/engine"
	"github.com/twmb/franz-go/pkg/kgo"
)

// benchTargets starts ten targets: varnishes real Varnish instances with
// the reference VCL (its backend a closed port: purges do not need one),
// and stand-ins for the rest (Fastly and Cloudflare fakes with their
// documented limits, Cloudflare at the enterprise plan's rate, and
// counting webhooks). It returns the invalidation targets section and a
// function that counts the purge requests the ten received.
func benchTargets(b *testing.B, varnishes int) (string, func() int) {
	b.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	l.Close()
	vcl := testenv.ReferenceVCL(b, l.Addr().String())
	var sb strings.Builder
	var counters []func() int
	common := "coalesce: 20ms, concurrency: 4"
	for i := range varnishes {
		v := testenv.Varnish(b, vcl)
		fmt.Fprintf(&sb, "    - {name: varnish-%d, type: varnish, address: %q, %s}\n", i, v.URL(), common)
		counters = append(counters, func() int {
			st, err := v.Stats(b.Context())
			if err != nil {
				b.Fatal(err)
			}
			return int(st["MAIN.client_req"])
		})
	}
	rest := 10 - varnishes
	for i := range rest {
		switch i % 3 {
		case 0:
			f := edgefake.NewFastly(edgefake.Options{Token: "bench"})
			b.Cleanup(f.Close)
			fmt.Fprintf(&sb, "    - {name: fastly-%d, type: fastly, address: %q, service_id: s, token_env: BENCH_TOKEN, %s}\n", i, f.URL(), common)
			counters = append(counters, f.Requests)
		case 1:
			rate, burst, _ := pipeline.CloudflarePlan("enterprise")
			c := edgefake.NewCloudflare(edgefake.Options{Token: "bench", Rate: rate, Burst: burst})
			b.Cleanup(c.Close)
			fmt.Fprintf(&sb, "    - {name: cloudflare-%d, type: cloudflare, address: %q, zone_id: z, token_env: BENCH_TOKEN, plan: enterprise, %s}\n", i, c.URL(), common)
			counters = append(counters, c.Requests)
		default:
			var n atomic.Int64
			h := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { n.Add(1) }))
			b.Cleanup(h.Close)
			fmt.Fprintf(&sb, "    - {name: hook-%d, type: http, address: %q, %s}\n", i, h.URL, common)
			counters = append(counters, func() int { return int(n.Load()) })
		}
	}
	return sb.String(), func() int {
		total := 0
		for _, c := range counters {
			total += c()
		}
		return total
	}
}

// BenchmarkTenTargetsLatency: changes produced at 1,000 a second (b.N of
// them), each purging two keys on ten targets; reports the commit to last
// ack latency of the changes (from their latency samples): p50, p99, max;
// and, to tell where the time goes, the p99 of one produce call to the
// broker's ack, of commit to the engine's read (its trace stage
// invalidator_consumed), and of commit to the read of a bare consumer of
// the same topic beside it (the broker's baseline); and the process's
// stalls (see stalls), to tell a run the machine held up from one the
// engine did.
// Run: go test -run '^$' -bench TenTargets -benchtime 10000x ./services/invalidator/internal/engine/
func BenchmarkTenTargetsLatency(b *testing.B) {
	targets, _ := benchTargets(b, benchVarnishes())
	e := newBenchEnv(b)
	e.start(b, "invalidation:\n  keys: [\"content:{id}\", \"tag:{tags[*]}\"]\n  urls: []\n  targets:\n"+targets, map[string]string{"BENCH_TOKEN": "bench"})
	const rate = 1000
	baseline := readTimes(b, e)
	cpu0 := cpuTime(b)
	stalled := stalls()
	b.ResetTimer()
	start := time.Now()
	const per = 10               // changes per produce call: every 10 ms
	var produced []time.Duration // how long each produce call took (to the broker's ack)
	for sent := 0; sent < b.N; sent += per {
		if d := time.Until(start.Add(time.Duration(sent) * time.Second / rate)); d > 0 {
			time.Sleep(d)
		}
		t0 := time.Now()
		e.k.Changes(e.topics.Content, manyChanges(min(per, b.N-sent), sent)...)
		produced = append(produced, time.Since(t0))
	}
	e.caughtUp(b)
	b.StopTimer()
	maxStall, stallSum := stalled()
	cpu := cpuTime(b) - cpu0
	samples := e.k.Samples(e.topics.Latency)
	if len(samples) != b.N {
		b.Fatalf("%d latency samples for %d changes", len(samples), b.N)
	}
	ds := make([]time.Duration, len(samples))
	var toConsumed []time.Duration // commit to the invalidator's read: produce and consume
	for i, s := range samples {
		ds[i] = s.Duration
		for _, st := range s.Trace.Stages {
			if st.Name == engine.StageConsumed {
				toConsumed = append(toConsumed, st.At.Sub(s.Source.CommitTime))
			}
		}
	}
	q := func(ds []time.Duration, p float64) float64 {
		slices.Sort(ds)
		return float64(ds[int(p*float64(len(ds)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(q(ds, 0.5), "p50-ms")
	b.ReportMetric(q(ds, 0.99), "p99-ms")
	b.ReportMetric(q(ds, 1), "max-ms")
	if len(toConsumed) > 0 {
		b.ReportMetric(q(toConsumed, 0.99), "p99-to-read-ms")
	}
	b.ReportMetric(q(produced, 0.99), "p99-produce-ms")
	if base := baseline(b.N); len(base) > 0 {
		b.ReportMetric(q(base, 0.99), "p99-baseline-read-ms")
	}
	b.ReportMetric(float64(maxStall.Microseconds())/1000, "max-stall-ms")
	b.ReportMetric(float64(stallSum.Microseconds())/1000, "stalled-ms")
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "changes/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/change")
	if testing.Verbose() {
		byTarget := map[string][]time.Duration{}
		for _, a := range e.k.Audits(e.topics.Purges) {
			byTarget[a.Target] = append(byTarget[a.Target], a.LatencyFromCommit)
		}
		for name, ds := range byTarget {
			slices.Sort(ds)
			b.Logf("%s: %d batches, batch p50 %s p99 %s (oldest change's commit to ack)", name, len(ds), ds[len(ds)/2], ds[len(ds)*99/100])
		}
	}
}

// BenchmarkBurstCoalescing: a burst of b.N changes (10,000 with
// -benchtime 10000x) touching 100 distinct keys, on ten targets; reports
// changes per purge request on each target (the coalescing ratio).
// Run: go test -run '^$' -bench BurstCoalescing -benchtime 10000x ./services/invalidator/internal/engine/
func BenchmarkBurstCoalescing(b *testing.B) {
	targets, requests := benchTargets(b, benchVarnishes())
	e := newBenchEnv(b)
	e.start(b, "invalidation:\n  keys: [\"content:{id}\"]\n  urls: []\n  targets:\n"+targets, map[string]string{"BENCH_TOKEN": "bench"})
	before := requests()
	cs := make([]events.ContentChange, b.N)
	for i := range cs {
		cs[i] = events.ContentChange{Op: events.OpUpdate, ContentID: fmt.Sprint(i % 100), Version: int64(i + 1)}
	}
	b.ResetTimer()
	for i := 0; i < len(cs); i += 1000 {
		e.k.Changes(e.topics.Content, cs[i:min(i+1000, len(cs))]...)
	}
	e.caughtUp(b)
	b.StopTimer()
	perTarget := float64(requests()-before) / 10
	b.ReportMetric(perTarget, "requests/target")
	b.ReportMetric(float64(b.N)/perTarget, "changes/request")
}

// benchVarnishes is how many of the ten targets are real Varnish
// instances: FRESHET_BENCH_VARNISHES, default 4.
func benchVarnishes() int {
	n := 4
	if v := os.Getenv("FRESHET_BENCH_VARNISHES"); v != "" {
		fmt.Sscan(v, &n)
	}
	return max(0, min(10, n))
}

// stalls starts a goroutine that sleeps 1 ms at a time and notes how much
// later than that it woke: while it is late, no goroutine of the process
// got to run (a busy or descheduled process, a stop-the-world pause). The
// returned function stops it and returns the longest stall and the sum of
// the stalls of 10 ms or more.
func stalls() func() (longest, sum time.Duration) {
	var (
		mu           sync.Mutex
		stop         bool
		longest, sum time.Duration
	)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			mu.Lock()
			s := stop
			mu.Unlock()
			if s {
				return
			}
			t := time.Now()
			time.Sleep(time.Millisecond)
			late := time.Since(t) - time.Millisecond
			mu.Lock()
			longest = max(longest, late)
			if late >= 10*time.Millisecond {
				sum += late
			}
			mu.Unlock()
		}
	}()
	return func() (time.Duration, time.Duration) {
		mu.Lock()
		stop = true
		mu.Unlock()
		<-done
		return longest, sum
	}
}

// cpuTime is the CPU time (user and system) this process used so far: the
// engine, and here also the broker, the stand-ins and the producer, which
// run in the test binary (the Varnish instances do not).
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// readTimes starts a bare consumer of the content topic beside the engine
// (no group, no work): the baseline of commit to read on this broker and
// machine. The returned function waits for n records and returns, for
// each, the time from its commit to its read.
func readTimes(b *testing.B, e *env) func(n int) []time.Duration {
	b.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.kt.Seeds...), kgo.ConsumeTopics(e.topics.Content),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(cl.Close)
	var (
		mu  sync.Mutex
		out []time.Duration
	)
	go func() {
		for {
			fs := cl.PollFetches(b.Context())
			if fs.IsClientClosed() || b.Context().Err() != nil {
				return
			}
			now := time.Now()
			fs.EachRecord(func(r *kgo.Record) {
				ev, _, err := e.k.Codec.DecodeTyped(b.Context(), r.Value)
				if err != nil {
					return
				}
				if c, ok := ev.(*events.ContentChange); ok {
					mu.Lock()
					out = append(out, now.Sub(c.Source.CommitTime))
					mu.Unlock()
				}
			})
		}
	}()
	return func(n int) []time.Duration {
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			mu.Lock()
			got := len(out)
			mu.Unlock()
			if got >= n {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		mu.Lock()
		defer mu.Unlock()
		return append([]time.Duration(nil), out...)
	}
}
