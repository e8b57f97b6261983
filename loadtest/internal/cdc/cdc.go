// Package cdc is scenario 2 of the load generator, CDC throughput with the
// whole stack running: a backlog of rows (1,000-row transactions written
// while the cdc-ingestor is paused), the changes per second the ingestor
// puts on Kafka once resumed (counted by a consumer of content.changes)
// and its commit-to-ack percentiles (its own pipeline.latency samples),
// beside the raw pgoutput decoder reading the same WAL from a slot created
// at the same point; then a steady 5,000 changes per second for the
// latency target, beside the raw decoder reading live.
//
// Everything runs from the scenario's goroutine but the consumers, which
// it stops before returning.
package cdc

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/freshet/freshet/loadtest/internal/pgraw"
	"github.com/freshet/freshet/loadtest/internal/report"
	"github.com/freshet/freshet/loadtest/internal/safety"
	"github.com/freshet/freshet/loadtest/internal/scenario"
	"github.com/freshet/freshet/loadtest/internal/stats"
	"github.com/freshet/freshet/pkg/events"
)

// CDC is the scenario's configuration.
type CDC struct {
	// Rows of the bulk write.
	Rows int
	// SteadyRate and SteadyDuration: the latency phase (5,000/s in the
	// service's target).
	SteadyRate     float64
	SteadyDuration time.Duration
}

var _ scenario.Scenario = (*CDC)(nil)

// Name implements scenario.Scenario.
func (c *CDC) Name() string { return "cdc" }

// Title implements scenario.Scenario.
func (c *CDC) Title() string {
	return fmt.Sprintf("%d rows in bulk, then %.0f changes/s for %s, into Kafka; beside raw pgoutput decoding of the same WAL", c.Rows, c.SteadyRate, c.SteadyDuration)
}

// Bound implements scenario.Scenario.
func (c *CDC) Bound() safety.Bound {
	return safety.Bound{Duration: 4*time.Minute + c.SteadyDuration, Count: int64(c.Rows) + int64(c.SteadyRate*c.SteadyDuration.Seconds()) + 1}
}

// Run implements scenario.Scenario.
func (c *CDC) Run(ctx context.Context, env *scenario.Env, res *report.Result) error {
	st := env.Stack
	dsn := st.PostgresDSN()
	run := strconv.FormatInt(time.Now().Unix()%1_000_000, 36)
	obs, err := startObserver(ctx, env)
	if err != nil {
		return err
	}
	defer obs.stop()
	db, err := pgraw.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer db.Close(context.Background())
	slot := "lt_cdc_raw_" + run
	if err := pgraw.CreateSlot(ctx, dsn, slot); err != nil {
		return fmt.Errorf("raw slot: %w", err)
	}
	defer pgraw.DropSlot(context.Background(), dsn, slot)

	// Bulk, as a backlog: Postgres takes writes here at about half the
	// rate the ingestor can read them, so a live bulk would measure
	// Postgres. The ingestor is paused (SIGSTOP, as a slow consumer would
	// be) while the rows are written, then resumed; its rate is counted
	// from the resume, as the raw decoder's is from its start.
	var written atomic.Int64
	env.Progress(func() string {
		return fmt.Sprintf("bulk: %d rows written, %d changes on Kafka", written.Load(), obs.changes.Load())
	})
	base := obs.changes.Load()
	resume, err := st.Pause("cdc-ingestor")
	if err != nil {
		return err
	}
	defer resume()
	t0 := time.Now()
	for first := 0; first < c.Rows; first += 1000 {
		n := min(1000, c.Rows-first)
		if err := insert(ctx, db, run, "bulk", first, n); err != nil {
			return err
		}
		written.Add(int64(n))
		if time.Since(t0) > 30*time.Second { // well within wal_sender_timeout
			break
		}
	}
	rows := int(written.Load())
	tWritten := time.Now()
	resume()
	for obs.changes.Load()-base < int64(rows) && time.Since(tWritten) < 2*time.Minute && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	got := obs.changes.Load() - base
	tLast := obs.lastAt()
	ingest := float64(got) / tLast.Sub(tWritten).Seconds()
	bulkLat := obs.samples(tWritten, tLast)
	env.Logf("bulk: %d rows written in %.1f s with the ingestor paused; %d on Kafka %.1f s after it resumed: %.0f changes/s", rows, tWritten.Sub(t0).Seconds(), got, tLast.Sub(tWritten).Seconds(), ingest)

	// The raw decoder over the same WAL, after the fact.
	env.Progress(func() string { return "raw pgoutput decoder reading the bulk's WAL" })
	raw, err := pgraw.Read(ctx, dsn, slot, "freshet", rows, 0, nil)
	if err != nil {
		return fmt.Errorf("raw decoder: %w", err)
	}
	rawRate := float64(raw.Rows) / raw.Elapsed.Seconds()
	env.Logf("raw pgoutput: %d rows in %.1f s: %.0f rows/s", raw.Rows, raw.Elapsed.Seconds(), rawRate)
	_ = pgraw.DropSlot(ctx, dsn, slot)

	// Steady rate, the raw decoder reading live beside the ingestor, once
	// the stack has digested the backlog (the personalizer, the invalidator
	// and the sink take longer over 100,000 changes than the ingestor): the
	// phase measures the ingestor at that rate, not the backlog's tail,
	// whose commit→ack is the backlog's figure above.
	if waited := env.Settle(ctx); waited > 0 {
		env.Logf("steady phase after %.1f s for the stack to digest the backlog", waited)
	}
	live := slot + "_live"
	if err := pgraw.CreateSlot(ctx, dsn, live); err != nil {
		return fmt.Errorf("raw slot: %w", err)
	}
	defer pgraw.DropSlot(context.Background(), dsn, live)
	rctx, stopRaw := context.WithCancel(ctx)
	var rawMu sync.Mutex
	var rawLat stats.Latencies
	rawDone := make(chan error, 1)
	go func() {
		_, err := pgraw.Read(rctx, dsn, live, "freshet", 0, 0, func(commit time.Time, rows int) {
			d := time.Since(commit)
			rawMu.Lock()
			for range rows {
				rawLat.Add(d)
			}
			rawMu.Unlock()
		})
		rawDone <- err
	}()
	env.Progress(func() string {
		return fmt.Sprintf("steady %.0f/s: %d rows written, %d changes on Kafka", c.SteadyRate, written.Load(), obs.changes.Load())
	})
	s0 := time.Now()
	steadyWritten := 0
	err = scenario.Paced(ctx, c.SteadyRate, c.SteadyDuration, func(rows int) error {
		if err := insert(ctx, db, run, "steady", steadyWritten, rows); err != nil {
			return err
		}
		steadyWritten += rows
		written.Add(int64(rows))
		return nil
	})
	if err != nil {
		stopRaw()
		return err
	}
	s1 := time.Now()
	time.Sleep(time.Second) // the last acks
	stopRaw()
	if err := <-rawDone; err != nil && ctx.Err() == nil {
		res.Missing = append(res.Missing, "raw live decoder: "+err.Error())
	}
	steadyLat := obs.samples(s0, s1)

	bl := bulkLat.Summarize()
	res.Add(
		report.F("backlog: changes into Kafka", ingest, "changes/s").AtLeast(50000).Against("raw pgoutput decoding of the same WAL", rawRate).
			Noted("%d of %d rows on content.changes %.1f s after the ingestor resumed; Postgres took the writes at %.0f rows/s", got, rows, tLast.Sub(tWritten).Seconds(), float64(rows)/tWritten.Sub(t0).Seconds()),
		report.F("backlog: commit→ack p99 (ingestor's samples)", bl.P99, "ms").
			Noted("p50 %.1f, p95 %.1f, max %.1f ms over %d samples, counted from the commit: includes the pause", bl.P50, bl.P95, bl.Max, bl.Count),
	)
	sl := steadyLat.Summarize()
	rawMu.Lock()
	rl := rawLat.Summarize()
	rawMu.Unlock()
	res.Add(
		report.F(fmt.Sprintf("%.0f/s: commit→ack p99", c.SteadyRate), sl.P99, "ms").AtMost(50).Against("raw pgoutput commit→decoded p99, live", rl.P99).
			Noted("p50 %.1f, max %.1f ms over %d samples; raw p50 %.1f, max %.1f ms; %d rows in %.1f s", sl.P50, sl.Max, sl.Count, rl.P50, rl.Max, steadyWritten, s1.Sub(s0).Seconds()),
	)
	return nil
}

// insert writes n realistic content rows (~300 bytes: title, summary, a
// 200-byte body, tags, url) in one transaction; nobody's profile matches
// them, so they purge but are delivered to no one.
func insert(ctx context.Context, db *pgx.Conn, run, phase string, first, n int) error {
	_, err := db.Exec(ctx, `INSERT INTO content (title, summary, body, tags, section, url, author, locale)
		SELECT 'Title ' || g, 'A summary of item ' || g, repeat('body text ', 20), '{lt-cdc}', 'lt-cdc', '/lt-cdc/' || $1 || '/' || $2 || '/' || g, 'lt-cdc', 'xx'
		FROM generate_series($3::bigint, $3::bigint + $4 - 1) g`, run, phase, first, n)
	if err != nil {
		return fmt.Errorf("insert: %w", err)
	}
	return nil
}

// observer counts content.changes and keeps the ingestor's latency samples.
type observer struct {
	ob      *scenario.Observer
	changes atomic.Int64
	last    atomic.Int64 // unix ns of the last change received
	mu      sync.Mutex
	lat     []sample
}

type sample struct {
	at time.Time
	d  time.Duration
}

func startObserver(ctx context.Context, env *scenario.Env) (*observer, error) {
	o := &observer{}
	ob, err := env.Observe(ctx, []string{"content.changes", "pipeline.latency"}, scenario.ObserveOptions{Raw: []string{"content.changes"}},
		func(now time.Time, r *kgo.Record, ev events.Event) {
			if r.Topic == "content.changes" {
				o.changes.Add(1)
				o.last.Store(now.UnixNano())
				return
			}
			if s, ok := ev.(*events.LatencySample); ok && s.Service == "cdc-ingestor" && s.Stage == "commit_to_ack" {
				o.mu.Lock()
				o.lat = append(o.lat, sample{s.At, s.Duration})
				o.mu.Unlock()
			}
		})
	o.ob = ob
	return o, err
}

func (o *observer) lastAt() time.Time { return time.Unix(0, o.last.Load()) }

// samples are the ingestor's commit-to-ack samples taken in [from, to].
func (o *observer) samples(from, to time.Time) *stats.Latencies {
	o.mu.Lock()
	defer o.mu.Unlock()
	l := &stats.Latencies{}
	for _, s := range o.lat {
		if !s.at.Before(from) && !s.at.After(to) {
			l.Add(s.d)
		}
	}
	return l
}

func (o *observer) stop() { o.ob.Stop() }
