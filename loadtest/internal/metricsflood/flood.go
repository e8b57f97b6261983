// Package metricsflood is scenario 5 of the load generator, the beacon and
// metrics flood: latency samples and RUM beacons produced to
// pipeline.latency and rum.beacons as fast as the broker takes them while
// the metrics-sink is paused, then the rows per second the sink writes into
// ClickHouse from its resume (counted in latency_samples and rum_beacons)
// and its memory, beside a raw
// clickhouse-go batch insert of the same rows into tables of the same
// columns (created from schemas/clickhouse/0001_tables.sql).
//
// When no metrics-sink runs in the stack, the raw insert is still
// measured and the result says what is missing.
package metricsflood

import (
	"context"
	"fmt"
	"io/fs"
	"net"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/freshet/freshet/loadtest/internal/report"
	"github.com/freshet/freshet/loadtest/internal/safety"
	"github.com/freshet/freshet/loadtest/internal/scenario"
	"github.com/freshet/freshet/pkg/codec"
	"github.com/freshet/freshet/pkg/events"
	"github.com/freshet/freshet/schemas"
)

// Flood is the scenario's configuration.
type Flood struct {
	// Samples and Beacons produced (and inserted raw).
	Samples, Beacons int
	// Service is the sink's name under services/.
	Service string
}

var _ scenario.Scenario = (*Flood)(nil)

// Name implements scenario.Scenario.
func (f *Flood) Name() string { return "metrics" }

// Title implements scenario.Scenario.
func (f *Flood) Title() string {
	return fmt.Sprintf("%d latency samples and %d beacons into ClickHouse through the metrics-sink; beside a raw clickhouse-go batch insert", f.Samples, f.Beacons)
}

// Bound implements scenario.Scenario.
func (f *Flood) Bound() safety.Bound {
	return safety.Bound{Duration: 5 * time.Minute, Count: int64(f.Samples+f.Beacons) * 2}
}

// Run implements scenario.Scenario.
func (f *Flood) Run(ctx context.Context, env *scenario.Env, res *report.Result) error {
	st := env.Stack
	ch, err := clickhouse.Open(&clickhouse.Options{
		Protocol: clickhouse.Native, Addr: []string{st.ClickHouseAddr()},
		Auth:        clickhouse.Auth{Database: "freshet", Username: "default"},
		DialTimeout: 5 * time.Second, ReadTimeout: 2 * time.Minute,
		DialContext: func(ctx context.Context, addr string) (net.Conn, error) { return safety.DialContext(ctx, "tcp", addr) },
	})
	if err != nil {
		return err
	}
	defer ch.Close()
	run := strconv.FormatInt(time.Now().UnixNano()%1_000_000_000, 36)
	samples, beacons := f.events(run)

	// Through the sink, when one runs.
	sink := st.Admin(f.Service)
	if sink == "" {
		res.Missing = append(res.Missing, fmt.Sprintf("rows/s into ClickHouse through the metrics-sink and its memory: no %s runs in the stack (services/%s/main.go not in the tree); only the raw insert baseline was measured", f.Service, f.Service))
	}
	var through sinkRun
	if sink != "" {
		through, err = f.throughSink(ctx, env, ch, run, samples, beacons)
		if err != nil {
			return err
		}
	}

	// Raw: the same rows with clickhouse-go batches.
	rawRate, err := f.raw(ctx, ch, run, samples, beacons)
	if err != nil {
		return fmt.Errorf("raw insert: %w", err)
	}
	env.Logf("raw clickhouse-go batch insert: %.0f rows/s", rawRate)
	n := float64(len(samples) + len(beacons))
	if sink != "" {
		res.Add(
			report.F("rows into ClickHouse through the metrics-sink", through.rate, "rows/s").AtLeast(300000).Against("raw clickhouse-go batch insert", rawRate).
				Noted("%d latency samples and %d beacons produced to Kafka while the sink was paused, counted in latency_samples and rum_beacons from its resume", len(samples), len(beacons)),
			report.F("rows into ClickHouse through the metrics-sink, sustained", through.sustained, "rows/s").
				Noted("from 10%% to 90%% of the flood stored: without the pipeline's start and its last partial batch (which waits out FRESHET_SINK_BATCH_INTERVAL); not the target's figure"),
			report.F("metrics-sink peak RSS during the flood", float64(through.peakKiB)/1024, "MiB").
				Noted("no baseline: the raw insert runs inside the load generator, whose memory holds the whole flood"),
		)
	} else {
		res.Add(report.F("raw clickhouse-go batch insert (baseline only)", rawRate, "rows/s").Noted("%.0f rows: latency_samples and rum_beacons columns, batches of 100,000", n))
	}
	return nil
}

// events builds the flood: latency samples of every stage, beacons with
// five vitals and two SSE lags.
func (f *Flood) events(run string) ([]*events.LatencySample, []*events.RumBeacon) {
	now := time.Now().UTC()
	stages := []struct{ svc, stage string }{{"cdc-ingestor", "commit_to_ack"}, {"personalizer", "commit_to_deliver"}, {"invalidator", "commit_to_purged"}, {"sse-gateway", "record_to_write"}}
	samples := make([]*events.LatencySample, f.Samples)
	for i := range samples {
		s := stages[i%len(stages)]
		samples[i] = &events.LatencySample{
			EventID: events.ID("lt-sample", run, strconv.Itoa(i)), SubjectEventID: events.ID("lt-change", strconv.Itoa(i)),
			Service: s.svc, Instance: "loadtest", Stage: s.stage, Duration: time.Duration(1000+i%50000) * time.Microsecond, At: now,
			Source: &events.Source{Origin: events.OriginProducer, CommitTime: now}, Labels: map[string]string{"table": "content"},
		}
	}
	devices := []events.DeviceClass{events.DeviceMobile, events.DeviceDesktop, events.DeviceTablet}
	beacons := make([]*events.RumBeacon, f.Beacons)
	for i := range beacons {
		beacons[i] = &events.RumBeacon{
			EventID: events.ID("lt-beacon", run, strconv.Itoa(i)), ReceivedAt: now, SessionID: "s" + strconv.Itoa(i%5000),
			UserHash: fmt.Sprintf("%064x", i%20000), Route: "/news/{slug}", DeviceClass: devices[i%3], ConnectionClass: "4g", Region: "eu",
			Metrics: []events.WebVital{
				{Name: events.VitalLCP, Value: 1800, Rating: events.RatingGood, NavigationType: events.NavNavigate, ID: "v1"},
				{Name: events.VitalINP, Value: 120, Rating: events.RatingGood, NavigationType: events.NavNavigate, ID: "v2"},
				{Name: events.VitalCLS, Value: 0.05, Rating: events.RatingGood, NavigationType: events.NavNavigate, ID: "v3"},
				{Name: events.VitalTTFB, Value: 300, Rating: events.RatingGood, NavigationType: events.NavNavigate, ID: "v4"},
				{Name: events.VitalFCP, Value: 900, Rating: events.RatingGood, NavigationType: events.NavNavigate, ID: "v5"},
			},
			SSELags: []events.SSELag{{EventID: "e1", LagMS: 40}, {EventID: "e2", LagMS: 55}},
		}
	}
	return samples, beacons
}

// sinkRun is what throughSink measured.
type sinkRun struct {
	rate      float64 // rows/s from the sink's resume to the count that saw the last row (rowTrace.since)
	sustained float64 // rows/s from 10% to 90% of the rows stored (rowTrace.rate)
	peakKiB   int64   // the sink's peak RSS
}

// throughSink produces the flood and counts the rows arriving in
// ClickHouse.
func (f *Flood) throughSink(ctx context.Context, env *scenario.Env, ch driver.Conn, run string, samples []*events.LatencySample, beacons []*events.RumBeacon) (sinkRun, error) {
	st := env.Stack
	count := tableRows(ch)
	before, err := count(ctx)
	if err != nil {
		return sinkRun{}, fmt.Errorf("count rows (has the sink created its tables?): %w", err)
	}
	cl, err := env.Kafka(kgo.ProducerLinger(5*time.Millisecond), kgo.ProducerBatchMaxBytes(1<<20))
	if err != nil {
		return sinkRun{}, err
	}
	defer cl.Close()
	cd, err := codec.New()
	if err != nil {
		return sinkRun{}, err
	}
	var peak int64
	var mu sync.Mutex
	stopRSS := make(chan struct{})
	go func() {
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stopRSS:
				return
			case <-t.C:
				r := st.ServiceRSS(f.Service)
				mu.Lock()
				peak = max(peak, r)
				mu.Unlock()
			}
		}
	}()
	defer close(stopRSS)
	want := uint64(len(samples) + len(beacons))
	var got atomic.Uint64
	env.Progress(func() string { return fmt.Sprintf("%d of %d rows in ClickHouse", got.Load(), want) })
	// Encoded first, so that the clock measures the sink, not this
	// process's encoding.
	recs := make([]*kgo.Record, 0, len(samples)+len(beacons))
	for _, s := range samples {
		v, err := cd.EncodeEvent(ctx, "pipeline.latency", s)
		if err != nil {
			return sinkRun{}, err
		}
		recs = append(recs, &kgo.Record{Topic: "pipeline.latency", Key: []byte(s.SubjectEventID), Value: v})
	}
	for _, b := range beacons {
		v, err := cd.EncodeEvent(ctx, "rum.beacons", b)
		if err != nil {
			return sinkRun{}, err
		}
		recs = append(recs, &kgo.Record{Topic: "rum.beacons", Key: []byte(b.SessionID), Value: v})
	}
	// The sink is paused (SIGSTOP) while the flood is produced, then
	// resumed: its rate is counted from the resume, as the raw insert's is
	// from its first batch, so that neither includes this process's
	// producing (which, on 2 cores, is slower than the sink's consuming
	// and would measure the load generator).
	resume, err := st.Pause(f.Service)
	if err != nil {
		return sinkRun{}, err
	}
	defer resume()
	tp := time.Now()
	for _, r := range recs {
		cl.Produce(ctx, r, nil)
	}
	if err := cl.Flush(ctx); err != nil {
		return sinkRun{}, err
	}
	env.Logf("flood produced in %.1f s with the sink paused; resuming it and waiting for the rows in ClickHouse", time.Since(tp).Seconds())
	var trace rowTrace
	rate, err := fromResume(ctx, resume, count, &trace, before, want, 25*time.Millisecond, 3*time.Minute, &got)
	if err != nil {
		return sinkRun{}, err
	}
	out := sinkRun{rate: rate}
	if mid, ok := trace.rate(before, want, 0.1, 0.9); ok {
		out.sustained = mid
		env.Logf("sustained: %.0f rows/s from 10%% to 90%% of the flood stored (the figure counts the pipeline's start and its last partial batch too)", mid)
	}
	mu.Lock()
	defer mu.Unlock()
	out.peakKiB = peak
	return out, nil
}

// rowCounter counts the rows of the tables the flood goes into.
type rowCounter func(ctx context.Context) (uint64, error)

// rowTrace is every count a rowCounter returned, and when.
type rowTrace []rowCount

type rowCount struct {
	at time.Time
	n  uint64
}

// counting returns count, recording what it returns in t.
func (t *rowTrace) counting(count rowCounter) rowCounter {
	return func(ctx context.Context) (uint64, error) {
		n, err := count(ctx)
		if err == nil {
			*t = append(*t, rowCount{time.Now(), n})
		}
		return n, err
	}
}

// rate is the sink's sustained rate: rows/s between the first counts that
// saw lo and hi (fractions) of want rows past before. It leaves out the
// pipeline's start (the first batch read, decoded and inserted before any
// row shows) and its end (a last partial batch waits out the sink's batch
// interval), which in a flood of a second or two weigh as much as the
// rows. False when the trace does not hold both, or no time passed.
func (t rowTrace) rate(before, want uint64, lo, hi float64) (float64, bool) {
	a, okA := t.reached(before, lo*float64(want))
	b, okB := t.reached(before, hi*float64(want))
	if !okA || !okB || !b.at.After(a.at) {
		return 0, false
	}
	return perSecond(b.n-a.n, a.at, b.at), true
}

// since is the rate from start to the last row: rows/s of n rows past
// before, over the time from start to the first count that saw them all.
// Zero when no count saw them, or no time passed.
func (t rowTrace) since(start time.Time, before, n uint64) float64 {
	c, ok := t.reached(before, float64(n))
	if !ok {
		return 0
	}
	return perSecond(n, start, c.at)
}

// reached returns the first count in t that saw at least n rows past
// before (a count below before saw none); false when no count did.
func (t rowTrace) reached(before uint64, n float64) (rowCount, bool) {
	for _, c := range t {
		if c.n >= before && float64(c.n-before) >= n {
			return c, true
		}
	}
	return rowCount{}, false
}

// tableRows counts the rows of latency_samples and rum_beacons.
func tableRows(ch driver.Conn) rowCounter {
	return func(ctx context.Context) (uint64, error) {
		var a, b uint64
		if err := ch.QueryRow(ctx, "SELECT count() FROM latency_samples").Scan(&a); err != nil {
			return 0, err
		}
		if err := ch.QueryRow(ctx, "SELECT count() FROM rum_beacons").Scan(&b); err != nil {
			return 0, err
		}
		return a + b, nil
	}
}

// fromResume resumes the paused sink and waits for its rows (awaitRows),
// recording every count in trace; returns rows/s from the resume to the
// count that saw the last of them (trace.since), the last row's arrival
// to within a poll.
func fromResume(ctx context.Context, resume func(), count rowCounter, trace *rowTrace, before, want uint64, poll, limit time.Duration, got *atomic.Uint64) (float64, error) {
	resumed := time.Now()
	resume()
	if err := awaitRows(ctx, trace.counting(count), before, want, poll, limit, got); err != nil {
		return 0, err
	}
	return trace.since(resumed, before, got.Load()), nil
}

// awaitRows counts rows every poll, for at most limit, until want more
// than before are counted; returns an error when a count fails, or when
// limit passes or ctx ends first. got holds the rows counted past before
// (read it for progress); a count below before (rows removed meanwhile)
// is none.
func awaitRows(ctx context.Context, count rowCounter, before, want uint64, poll, limit time.Duration, got *atomic.Uint64) error {
	for start := time.Now(); ; {
		n, err := count(ctx)
		if err != nil {
			return fmt.Errorf("count rows: %w", err)
		}
		if n > before && n-before > got.Load() {
			got.Store(n - before)
		}
		if got.Load() >= want {
			return nil
		}
		if time.Since(start) >= limit || ctx.Err() != nil {
			return fmt.Errorf("%d of %d rows reached ClickHouse within %s", got.Load(), want, limit)
		}
		time.Sleep(poll)
	}
}

// perSecond is the rate of n rows written from from to to; zero when no
// time passed.
func perSecond(n uint64, from, to time.Time) float64 {
	d := to.Sub(from)
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

var createTable = regexp.MustCompile(`(?s)CREATE TABLE IF NOT EXISTS (latency_samples|rum_beacons) \((.*?)\n\) ENGINE = MergeTree\nPARTITION BY ([^\n]*)\nORDER BY ([^;]*);`)

// raw creates tables with the columns of latency_samples and rum_beacons
// and inserts the same rows with clickhouse-go batches of 100,000; returns
// rows/s.
func (f *Flood) raw(ctx context.Context, ch driver.Conn, run string, samples []*events.LatencySample, beacons []*events.RumBeacon) (float64, error) {
	tables, err := createTables(ctx, ch, func(table string) string { return "lt_raw_" + table + "_" + run })
	for _, name := range tables {
		defer ch.Exec(context.Background(), "DROP TABLE IF EXISTS "+name)
	}
	if err != nil {
		return 0, err
	}
	t0 := time.Now()
	if err := insertSamples(ctx, ch, tables["latency_samples"], samples); err != nil {
		return 0, err
	}
	if err := insertBeacons(ctx, ch, tables["rum_beacons"], beacons); err != nil {
		return 0, err
	}
	return perSecond(uint64(len(samples)+len(beacons)), t0, time.Now()), nil
}

// createTables creates tables with the columns, partitions and sort keys
// of latency_samples and rum_beacons (schemas/clickhouse/0001_tables.sql),
// named by name; returns their names by the schema's, the ones created
// also when it fails.
func createTables(ctx context.Context, ch driver.Conn, name func(table string) string) (map[string]string, error) {
	b, err := fs.ReadFile(schemas.ClickHouse, "0001_tables.sql")
	if err != nil {
		return nil, err
	}
	tables := map[string]string{}
	for _, m := range createTable.FindAllStringSubmatch(string(b), -1) {
		n := name(m[1])
		if err := ch.Exec(ctx, fmt.Sprintf("CREATE TABLE %s (%s\n) ENGINE = MergeTree PARTITION BY %s ORDER BY %s", n, m[2], m[3], m[4])); err != nil {
			return tables, fmt.Errorf("create %s: %w", n, err)
		}
		tables[m[1]] = n
	}
	if len(tables) != 2 {
		return tables, fmt.Errorf("schemas/clickhouse/0001_tables.sql: latency_samples and rum_beacons not found as expected")
	}
	return tables, nil
}

// rawBatch is how many rows insertSamples and insertBeacons send at once.
const rawBatch = 100_000

// insertSamples inserts samples into table, of latency_samples' columns.
func insertSamples(ctx context.Context, ch driver.Conn, table string, samples []*events.LatencySample) error {
	for i := 0; i < len(samples); i += rawBatch {
		bt, err := ch.PrepareBatch(ctx, "INSERT INTO "+table+" (event_id, subject_event_id, service, instance, stage, target, duration_us, at, at_ms, committed_at, label_keys, label_values, kafka_partition, kafka_offset)")
		if err != nil {
			return err
		}
		for j, s := range samples[i:min(i+rawBatch, len(samples))] {
			keys, vals := labels(s.Labels)
			if err := bt.Append(s.EventID, s.SubjectEventID, s.Service, s.Instance, s.Stage, "", s.Duration.Microseconds(), s.At, uint16(s.At.Nanosecond()/1e6), s.Source.CommitTime,
				keys, vals, uint32(0), uint64(i+j)); err != nil {
				return err
			}
		}
		if err := bt.Send(); err != nil {
			return err
		}
	}
	return nil
}

// insertBeacons inserts beacons into table, of rum_beacons' columns.
func insertBeacons(ctx context.Context, ch driver.Conn, table string, beacons []*events.RumBeacon) error {
	for i := 0; i < len(beacons); i += rawBatch {
		bt, err := ch.PrepareBatch(ctx, "INSERT INTO "+table+" (event_id, received_at, received_ms, user_hash, route, device_class, connection_class, region, vital_names, vital_values, vital_ratings, lag_event_ids, lag_ms, kafka_partition, kafka_offset)")
		if err != nil {
			return err
		}
		for j, r := range beacons[i:min(i+rawBatch, len(beacons))] {
			var names, ratings, lagIDs []string
			var values, lags []float64
			for _, m := range r.Metrics {
				names, values, ratings = append(names, string(m.Name)), append(values, m.Value), append(ratings, string(m.Rating))
			}
			for _, l := range r.SSELags {
				lagIDs, lags = append(lagIDs, l.EventID), append(lags, l.LagMS)
			}
			if err := bt.Append(r.EventID, r.ReceivedAt, uint16(r.ReceivedAt.Nanosecond()/1e6), r.UserHash, r.Route, string(r.DeviceClass), r.ConnectionClass, r.Region,
				names, values, ratings, lagIDs, lags, uint32(0), uint64(i+j)); err != nil {
				return err
			}
		}
		if err := bt.Send(); err != nil {
			return err
		}
	}
	return nil
}

func labels(m map[string]string) ([]string, []string) {
	var k, v []string
	for a, b := range m {
		k, v = append(k, a), append(v, b)
	}
	return k, v
}
