package app_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/freshet/freshet/pkg/codec"
	"github.com/freshet/freshet/pkg/events"
	"github.com/freshet/freshet/pkg/servers"
	"github.com/freshet/freshet/pkg/testenv"
	"github.com/freshet/freshet/schemas"
	"github.com/freshet/freshet/services/metrics-sink/internal/chschema"
	"github.com/freshet/freshet/services/metrics-sink/internal/rows"
	"github.com/freshet/freshet/services/metrics-sink/internal/sinktest"
)

// BenchmarkSinkThroughput moves n latency samples (FRESHET_BENCH_ROWS,
// default 1,000,000) and m RUM beacons (FRESHET_BENCH_BEACONS, default 0;
// each like the whole-stack flood's: five vitals, two SSE lags), produced
// interleaved, from Kafka into ClickHouse with the sink running as its
// own process, and, in the same run, inserts the same rows with plain
// clickhouse-go batches of the same size into a database with the same
// schema (materialized views included): the raw baseline. It reports both
// rates (the sink's from its first stored batch to its last row: the
// sustained rate, without the start and the group's join), their ratio,
// the sink's peak RSS, its time from start to the last row, how busy its
// inserter was (insert-busy), its CPU time per row (start included), and
// the CPU time per row of ClickHouse (with the sink, and with the raw
// inserts) and of the broker's process:
//
//	go test -run '^$' -bench SinkThroughput -benchtime 1x ./services/metrics-sink/internal/app/
//	FRESHET_BENCH_ROWS=2000000 FRESHET_BENCH_BEACONS=1000000 go test -run '^$' -bench SinkThroughput -benchtime 1x ./services/metrics-sink/internal/app/
//
// With FRESHET_SINK_PPROF=true, FRESHET_BENCH_CPUPROFILE=file saves a
// 4-second CPU profile of the sink and FRESHET_BENCH_HEAPPROFILE=file its
// heap 2 seconds in.
func BenchmarkSinkThroughput(b *testing.B) {
	n := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("FRESHET_BENCH_ROWS")); err == nil && v > 0 {
		n = v
	}
	m := 0
	if v, err := strconv.Atoi(os.Getenv("FRESHET_BENCH_BEACONS")); err == nil && v > 0 {
		m = v
	}
	const batch = 50_000
	kt := testenv.Kafka(b)
	topics := sinktest.NewTopics(kt)
	prod := sinktest.NewProducer(b, kt.Seeds, topics)
	c, err := codec.New()
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	var recs []*kgo.Record
	send := func(topic, key string, ev events.Event) {
		v, err := c.EncodeEvent(ctx, topic, ev)
		if err != nil {
			b.Fatal(err)
		}
		recs = append(recs, &kgo.Record{Topic: topic, Key: []byte(key), Value: v})
		if len(recs) == 10_000 {
			prod.Records(recs...)
			recs = recs[:0]
		}
	}
	// Interleaved: after sample i come the beacons up to i's share of m.
	for i, j := 0, 0; i < n || j < m; {
		if i < n {
			s := sinktest.LatencySample(i)
			send(topics.Latency, "cdc-ingestor", &s)
			i++
		}
		for ; j < m && (i >= n || j*n < i*m); j++ {
			send(topics.Beacons, "s", sinktest.Beacon(j))
		}
	}
	prod.Records(recs...)
	_, pipelinePath := sinktest.Pipeline(b)

	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		// The raw baseline: the same rows, already decoded, in batches.
		raw := testenv.ClickHouse(b)
		conn := sinktest.Conn(b, raw.Options())
		ms, err := chschema.Load(schemas.ClickHouse)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := chschema.Migrate(ctx, conn, ms, 0); err != nil {
			b.Fatal(err)
		}
		set := rows.NewSet()
		var rawTook, rawCH time.Duration
		chPid := testenv.ClickHouseServer(b).Pid()
		for _, in := range []struct {
			k     rows.Kind
			count int
			ev    func(int) events.Event
		}{
			{rows.Latency, n, func(i int) events.Event { s := sinktest.LatencySample(i); return &s }},
			{rows.Beacons, m, func(i int) events.Event { return sinktest.Beacon(i) }},
		} {
			for i := 0; i < in.count; i += batch {
				for j := i; j < min(i+batch, in.count); j++ {
					if err := set.Add(in.k, in.ev(j), 0, int64(j)); err != nil {
						b.Fatal(err)
					}
				}
				start, ch0 := time.Now(), processCPU(b, chPid)
				if err := insertRaw(ctx, conn, set.Table(in.k)); err != nil {
					b.Fatal(err)
				}
				rawTook += time.Since(start)
				rawCH += processCPU(b, chPid) - ch0
				set.Reset()
			}
		}
		if got := sinktest.Count(b, conn, "SELECT count() FROM latency_samples") + sinktest.Count(b, conn, "SELECT count() FROM rum_beacons"); got != uint64(n+m) {
			b.Fatalf("raw: %d rows", got)
		}
		// The raw inserts leave parts that ClickHouse merges in the
		// background: wait for those merges, which would otherwise take
		// the cores from the sink's run.
		for deadline := time.Now().Add(time.Minute); sinktest.Count(b, conn, "SELECT count() FROM system.merges") > 0; {
			if time.Now().After(deadline) {
				b.Fatal("raw: ClickHouse still merging after a minute")
			}
			time.Sleep(50 * time.Millisecond)
		}

		// The sink, as its own process, from the topic's start.
		db := testenv.ClickHouse(b)
		env := append(sinktest.Env(kt.Seeds, topics, kt.Group(fmt.Sprint("bench", time.Now().UnixNano())), pipelinePath, db.Addr(), db.Database),
			"FRESHET_LOG_LEVEL=warn", fmt.Sprintf("FRESHET_SINK_BATCH_ROWS=%d", batch))
		// FRESHET_SINK_* settings of the benchmark's environment win
		// (FRESHET_SINK_BATCH_BYTES=8MiB, FRESHET_SINK_FETCH_MAX_BYTES=...).
		for _, kv := range os.Environ() {
			if strings.HasPrefix(kv, "FRESHET_SINK_") {
				env = append(env, kv)
			}
		}
		b.StartTimer()
		t0, ch0, self0 := time.Now(), processCPU(b, chPid), processCPU(b, os.Getpid())
		svc := start(b, env)
		sconn := sinktest.Conn(b, db.Options())
		if path := os.Getenv("FRESHET_BENCH_CPUPROFILE"); path != "" {
			// The sink's CPU profile over its first seconds (FRESHET_SINK_PPROF=true).
			go saveProfile("http://"+svc.AdminAddr()+"/debug/pprof/profile?seconds=4", path, 0)
		}
		if path := os.Getenv("FRESHET_BENCH_HEAPPROFILE"); path != "" {
			// The sink's heap, 2 seconds in (FRESHET_SINK_PPROF=true).
			go saveProfile("http://"+svc.AdminAddr()+"/debug/pprof/heap", path, 2*time.Second)
		}
		// Sustained rate: from the first batch stored (after the start,
		// the migrations and the group's join) to the last row.
		var first time.Time
		var firstRows uint64
		for {
			got, err := sinktest.TryCount(sconn, "SELECT count() FROM latency_samples")
			if err == nil {
				var beacons uint64
				beacons, err = sinktest.TryCount(sconn, "SELECT count() FROM rum_beacons")
				got += beacons
			}
			if err == nil && got > 0 && first.IsZero() {
				first, firstRows = time.Now(), got
			}
			if err == nil && got >= uint64(n+m) {
				break
			}
			if time.Since(t0) > 5*time.Minute {
				b.Fatalf("sink: %d of %d rows after 5 minutes", got, n+m)
			}
			time.Sleep(20 * time.Millisecond)
		}
		took := time.Since(first)
		whole := time.Since(t0)
		b.StopTimer()
		mem, err := servers.ProcessMemory(svc.Pid())
		if err != nil {
			b.Fatal(err)
		}
		// Time the inserter spent storing batches (inserts and commits),
		// against the time from the sink's start: near 1, the inserts
		// (ClickHouse) set the pace; well below, reading and decoding do.
		flushed := metric(b, svc, "freshet_sink_flush_seconds_sum")
		cpu := processCPU(b, svc.Pid())
		chCPU, selfCPU := processCPU(b, chPid)-ch0, processCPU(b, os.Getpid())-self0
		svc.Stop(b)
		sinkRate, rawRate := float64(uint64(n+m)-firstRows)/took.Seconds(), float64(n+m)/rawTook.Seconds()
		b.ReportMetric(sinkRate, "sink-rows/s")
		b.ReportMetric(rawRate, "raw-rows/s")
		b.ReportMetric(sinkRate/rawRate, "ratio")
		b.ReportMetric(servers.MiB(mem.Peak), "peak-rss-MiB")
		b.ReportMetric(whole.Seconds(), "s-from-start")
		b.ReportMetric(flushed/whole.Seconds(), "insert-busy")
		b.ReportMetric(float64(cpu.Microseconds())/float64(n+m), "sink-cpu-µs/row")
		// Where the cores went: ClickHouse's CPU per row while the sink
		// ran (inserts, queries, merges) and within the raw inserts (not
		// their merges after), and this process's while the sink ran (the
		// kfake broker serving the sink, and the polling).
		b.ReportMetric(float64(chCPU.Microseconds())/float64(n+m), "ch-cpu-µs/row")
		b.ReportMetric(float64(rawCH.Microseconds())/float64(n+m), "raw-ch-cpu-µs/row")
		b.ReportMetric(float64(selfCPU.Microseconds())/float64(n+m), "broker-cpu-µs/row")
		b.StartTimer()
	}
}

// processCPU returns the CPU time (user and system) process pid used.
func processCPU(b *testing.B, pid int) time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the command's closing parenthesis; utime and stime are
	// the 14th and 15th of the line, in ticks of 1/100 s.
	f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+1:]))
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		b.Fatalf("/proc/%d/stat: %q", pid, data)
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// saveProfile saves what url answers, after a wait, to path.
func saveProfile(url, path string, after time.Duration) {
	time.Sleep(after)
	resp, err := http.Get(url)
	if err != nil {
		return
	}
	defer resp.Body.Close()
	if f, err := os.Create(path); err == nil {
		_, _ = io.Copy(f, resp.Body)
		f.Close()
	}
}

func insertRaw(ctx context.Context, conn clickhouse.Conn, t *rows.Table) error {
	bt, err := conn.PrepareBatch(ctx, t.Insert())
	if err != nil {
		return err
	}
	for i, c := range t.Columns() {
		if err := bt.Column(i).Append(c.Values()); err != nil {
			return err
		}
	}
	return bt.Send()
}
