package metricsflood

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/freshet/freshet/pkg/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m, testenv.NeedClickHouse) }

func TestPerSecond(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 18, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name string
		n    uint64
		to   time.Time
		want float64
	}{
		{"a million rows in 2.5 s", 1_000_000, t0.Add(2500 * time.Millisecond), 400_000},
		{"300 rows in 20 ms", 300, t0.Add(20 * time.Millisecond), 15_000},
		{"no time passed", 300, t0, 0},
		{"to before from", 300, t0.Add(-time.Second), 0},
		{"no rows", 0, t0.Add(time.Second), 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := perSecond(c.n, t0, c.to); got != c.want {
				t.Errorf("perSecond(%d, t0, t0+%s) = %v, want %v", c.n, c.to.Sub(t0), got, c.want)
			}
		})
	}
}

// script is a rowCounter that answers counts in turn (then the last one
// again, or fails with err past the end when err is set).
type script struct {
	counts []uint64
	err    error
	calls  int
}

func (s *script) count(context.Context) (uint64, error) {
	i := s.calls
	s.calls++
	if i >= len(s.counts) {
		if s.err != nil {
			return 0, s.err
		}
		i = len(s.counts) - 1
	}
	return s.counts[i], nil
}

// TestAwaitRows: the rows counted are those past the count before the
// flood; the wait ends at the count that reaches want, and fails when a
// count fails or want is not reached in time.
func TestAwaitRows(t *testing.T) {
	const before, want = 1000, 1000
	for _, c := range []struct {
		name      string
		counts    []uint64
		err       error
		wantGot   uint64
		wantCalls int    // counts made
		wantErr   string // when the wait fails
	}{
		{name: "in steps", counts: []uint64{1000, 1400, 1400, 1900, 2000}, wantGot: 1000, wantCalls: 5},
		{name: "all at once", counts: []uint64{2000}, wantGot: 1000, wantCalls: 1},
		{name: "more than the flood", counts: []uint64{1000, 2300}, wantGot: 1300, wantCalls: 2},
		{name: "rows removed below the count before", counts: []uint64{900, 10, 1500, 2000}, wantGot: 1000, wantCalls: 4},
		{name: "short of the flood", counts: []uint64{1500}, wantGot: 500, wantErr: "500 of 1000 rows reached ClickHouse"},
		{name: "count fails", counts: []uint64{1200}, err: errors.New("connection refused"), wantGot: 200, wantErr: "count rows: connection refused"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := &script{counts: c.counts, err: c.err}
			var got atomic.Uint64
			err := awaitRows(context.Background(), s.count, before, want, time.Millisecond, 50*time.Millisecond, &got)
			if got.Load() != c.wantGot {
				t.Errorf("%d rows counted, want %d", got.Load(), c.wantGot)
			}
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("error %v, want one with %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.calls != c.wantCalls {
				t.Errorf("%d counts, want %d", s.calls, c.wantCalls)
			}
		})
	}
}

// TestFromResume: every count from the resume is recorded in the trace;
// the sink's rate is its rows over the time from the resume to the count
// that saw the last of them; a sink never resumed writes nothing and the
// wait says how many rows arrived.
func TestFromResume(t *testing.T) {
	const before, want, step = 500, 1000, 250
	// A sink that writes nothing until resumed, then step rows per count.
	var resumed bool
	var resumedAt, lastAt time.Time
	var steps int
	count := func(context.Context) (uint64, error) {
		if !resumed {
			return before, nil
		}
		time.Sleep(20 * time.Millisecond) // the sink's work
		steps++
		lastAt = time.Now()
		return before + min(uint64(steps*step), want), nil
	}
	var got atomic.Uint64
	var trace rowTrace
	start := time.Now()
	rate, err := fromResume(context.Background(), func() { resumed, resumedAt = true, time.Now() }, count, &trace, before, want, time.Millisecond, 10*time.Second, &got)
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	if got.Load() != want || steps != want/step {
		t.Fatalf("%d rows in %d steps, want %d in %d", got.Load(), steps, want, want/step)
	}
	if len(trace) != steps || trace[len(trace)-1].n != before+want {
		t.Errorf("trace %+v, want the %d counts from the resume, the last of %d rows", trace, steps, before+want)
	}
	// The rate's interval lies within the call, and holds at least the
	// time from the resume to the last count's return.
	if lo, hi := float64(want)/took.Seconds(), float64(want)/lastAt.Sub(resumedAt).Seconds(); rate < lo || rate > hi {
		t.Errorf("rate %.0f rows/s, want between %.0f (the whole call) and %.0f (resume to last count)", rate, lo, hi)
	}

	got.Store(0)
	_, err = fromResume(context.Background(), func() {}, func(context.Context) (uint64, error) { return before, nil }, &rowTrace{}, before, want, time.Millisecond, 20*time.Millisecond, &got)
	if err == nil || !strings.Contains(err.Error(), "0 of 1000 rows") {
		t.Errorf("a sink that never writes: error %v", err)
	}
}

func conn(t *testing.T) driver.Conn {
	t.Helper()
	c, err := clickhouse.Open(testenv.ClickHouse(t).Options())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestEvents: the flood is as many latency samples and beacons as asked,
// each with an event id of its own (the rows counted are the rows sent).
func TestEvents(t *testing.T) {
	f := &Flood{Samples: 1000, Beacons: 500}
	samples, beacons := f.events("r1")
	if len(samples) != 1000 || len(beacons) != 500 {
		t.Fatalf("%d samples and %d beacons, want 1000 and 500", len(samples), len(beacons))
	}
	ids := map[string]bool{}
	for _, s := range samples {
		ids[s.EventID] = true
	}
	for _, b := range beacons {
		ids[b.EventID] = true
	}
	if len(ids) != 1500 {
		t.Errorf("%d event ids for 1500 events", len(ids))
	}
}

// TestSinkRateInClickHouse: against ClickHouse, in tables made from the
// schema, with rows there before the flood, a stand-in sink that writes
// the flood only once resumed (in three inserts): every row of the flood
// and no other is counted, the rate is over the time from the resume
// to the count that saw the last insert, and the trace of the counts
// gives the sustained rate.
func TestSinkRateInClickHouse(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ch := conn(t)
	if _, err := createTables(ctx, ch, func(table string) string { return table }); err != nil {
		t.Fatal(err)
	}
	old, _ := (&Flood{Samples: 300}).events("old")
	if err := insertSamples(ctx, ch, "latency_samples", old); err != nil {
		t.Fatal(err)
	}
	count := tableRows(ch)
	before, err := count(ctx)
	if err != nil || before != 300 {
		t.Fatalf("%d rows before the flood (%v), want 300", before, err)
	}

	f := &Flood{Samples: 3000, Beacons: 1500}
	samples, beacons := f.events("flood")
	const want = 4500
	gate := make(chan struct{})
	var resumedAt, lastStart time.Time
	sinkDone := make(chan error, 1)
	go func() {
		<-gate
		for i, insert := range []func() error{
			func() error { return insertSamples(ctx, ch, "latency_samples", samples[:1500]) },
			func() error { return insertSamples(ctx, ch, "latency_samples", samples[1500:]) },
			func() error { return insertBeacons(ctx, ch, "rum_beacons", beacons) },
		} {
			time.Sleep(100 * time.Millisecond)
			if i == 2 {
				lastStart = time.Now()
			}
			if err := insert(); err != nil {
				sinkDone <- err
				return
			}
		}
		sinkDone <- nil
	}()
	var got atomic.Uint64
	var trace rowTrace
	start := time.Now()
	rate, err := fromResume(ctx, func() { resumedAt = time.Now(); close(gate) }, count, &trace, before, want, 10*time.Millisecond, 15*time.Second, &got)
	took := time.Since(start)
	if err := <-sinkDone; err != nil {
		t.Fatalf("stand-in sink: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if got.Load() != want {
		t.Errorf("%d rows of the flood counted, want %d", got.Load(), want)
	}
	if n, err := count(ctx); err != nil || n != 300+want {
		t.Errorf("%d rows in the tables (%v), want %d", n, err, 300+want)
	}
	// The rows are not counted before the last insert began, nor after
	// the call returned.
	if lo, hi := want/took.Seconds(), want/lastStart.Sub(resumedAt).Seconds(); rate < lo || rate > hi {
		t.Errorf("rate %.0f rows/s, want between %.0f (the whole call) and %.0f (resume to the last insert)", rate, lo, hi)
	}
	// 10% of the flood is seen after the first insert, 90% only after the
	// third, 200 ms later.
	if mid, ok := trace.rate(before, want, 0.1, 0.9); !ok || mid <= 0 {
		t.Errorf("sustained rate %v, %v; want one", mid, ok)
	}
}

// TestRawInClickHouse: the raw baseline creates its tables from the
// schema, inserts every row (a column the schema lacks would fail it),
// gives a rate over no more than its own run, and drops its tables.
func TestRawInClickHouse(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ch := conn(t)
	f := &Flood{Samples: 2000, Beacons: 1000}
	samples, beacons := f.events("raw")
	start := time.Now()
	rate, err := f.raw(ctx, ch, "t1", samples, beacons)
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	if lo := 3000 / took.Seconds(); rate < lo {
		t.Errorf("rate %.0f rows/s, below 3000 rows over the whole call (%.0f rows/s)", rate, lo)
	}
	var left uint64
	if err := ch.QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = currentDatabase() AND name LIKE 'lt_raw_%'").Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != 0 {
		t.Errorf("%d lt_raw_ tables left after the run", left)
	}
}

// TestRowTraceRate: the sustained rate is taken between the first counts
// that saw 10% and 90% of the flood, past the rows there before; the
// start and the tail do not weigh in.
func TestRowTraceRate(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	const before, want = 500, 1000
	trace := rowTrace{
		{at(0), 500},     // nothing yet: the pipeline's start
		{at(900), 500},   //
		{at(1000), 650},  // 15%: the first at or past 10%
		{at(1200), 900},  // 40%
		{at(1500), 1400}, // 90%: the first at or past it
		{at(1600), 1450},
		{at(2600), 1500}, // the last partial batch, a second later
	}
	got, ok := trace.rate(before, want, 0.1, 0.9)
	if !ok || got != 1500 { // (1400-650) rows in 0.5 s
		t.Fatalf("rate = %v, %v; want 1500 rows/s", got, ok)
	}
	// The figure from the start for the same trace, for contrast: 1000
	// rows in 2.6 s.
	if whole := trace.since(t0, before, want); whole < 384 || whole > 385 {
		t.Fatalf("rate from the start %v, want 1000 rows in 2.6 s", whole)
	}
	for name, tr := range map[string]rowTrace{
		"never 90%":          trace[:4],
		"empty":              nil,
		"a count below":      {{at(0), 10}, {at(10), 20}},
		"one count for both": {{at(0), 500}, {at(100), 1500}},
	} {
		if r, ok := tr.rate(before, want, 0.1, 0.9); ok {
			t.Errorf("%s: rate %v, want none", name, r)
		}
	}

	// counting records what the counter returns, not its errors.
	var rec rowTrace
	n := uint64(0)
	count := rec.counting(func(context.Context) (uint64, error) {
		n += 10
		if n == 20 {
			return 0, errors.New("down")
		}
		return n, nil
	})
	for range 3 {
		count(context.Background())
	}
	if len(rec) != 2 || rec[0].n != 10 || rec[1].n != 30 {
		t.Fatalf("trace %+v, want counts 10 and 30", rec)
	}
}

// TestRowTraceSince: the rate to the last row is n rows over the time
// from the start to the first count that saw them all past the rows there
// before, not to a later count of the same figure; none when no count
// saw them.
func TestRowTraceSince(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	const before = 500
	trace := rowTrace{
		{at(100), 400},   // rows removed: below the count before
		{at(1000), 900},  // 400 rows
		{at(2000), 1500}, // 1000 rows: the first count to see them all
		{at(2500), 1500}, // the same figure again
	}
	for _, c := range []struct {
		name  string
		start time.Time
		n     uint64
		want  float64
	}{
		{"all the rows", t0, 1000, 500},
		{"a figure passed on the way", t0, 400, 400},
		{"from a later start", at(1000), 1000, 1000},
		{"more rows than any count saw", t0, 1001, 0},
		{"a start after the count", at(2200), 1000, 0},
	} {
		if got := trace.since(c.start, before, c.n); got != c.want {
			t.Errorf("%s: since(t0+%s, %d, %d) = %v, want %v", c.name, c.start.Sub(t0), before, c.n, got, c.want)
		}
	}
	if got := (rowTrace{}).since(t0, before, 1000); got != 0 {
		t.Errorf("empty trace: %v, want 0", got)
	}
}
