// Package freshness is scenario 1 of the load generator: what users feel.
// Rows are written at a set rate into the captured content table while N
// SSE clients with profiles are connected to the gateway; for every
// delivery a client receives, the time from the commit in Postgres to the
// receipt on the client's socket, per client kind and write rate, the
// share of deliveries past their deadline, and each stage's share of the
// latency from the trace timestamps (an observer reads content.changes and
// content.deliveries beside the services). The baseline is the raw
// pgoutput reader's commit-to-decoded latency of the same writes: the
// floor any CDC pipeline on this machine stands on.
//
// The scenario runs in one goroutine but for its clients (one goroutine
// each), its writers and its observers, which it stops before returning.
package freshness

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
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
	"github.com/freshet/freshet/loadtest/internal/sseclient"
	"github.com/freshet/freshet/loadtest/internal/stack"
	"github.com/freshet/freshet/loadtest/internal/stats"
	"github.com/freshet/freshet/pkg/events"
)

// Phase is one write rate held for a time.
type Phase struct {
	Rate     float64       // changes per second
	Duration time.Duration // measured, after the warm-up
}

// Freshness is the scenario's configuration.
type Freshness struct {
	// Clients connected (10,000 in the targets).
	Clients int
	// Phases, run in order.
	Phases []Phase
	// Warmup before each phase's measurement. Zero means 3 s.
	Warmup time.Duration
	// BroadcastEvery writes one breaking change (to every channel
	// client) this often; zero writes none.
	BroadcastEvery time.Duration
	// Gateways is how many gateway replicas the clients spread over: the
	// stack's own plus Gateways-1 more. Zero means 1.
	Gateways int
}

var _ scenario.Scenario = (*Freshness)(nil)

// Name implements scenario.Scenario.
func (f *Freshness) Name() string { return "freshness" }

// Title implements scenario.Scenario.
func (f *Freshness) Title() string {
	return fmt.Sprintf("commit to browser, %d SSE clients with profiles, writes at %s", f.Clients, f.rates())
}

func (f *Freshness) rates() string {
	s := ""
	for i, p := range f.Phases {
		if i > 0 {
			s += " then "
		}
		s += fmt.Sprintf("%.0f/s for %s", p.Rate, p.Duration)
	}
	return s
}

// Bound implements scenario.Scenario: the phases, their warm-ups, and
// three minutes of setup (profiles, streams) and drain.
func (f *Freshness) Bound() safety.Bound {
	d := 3 * time.Minute
	var n float64
	for _, p := range f.Phases {
		d += p.Duration + f.warmup()
		n += p.Rate * (p.Duration + f.warmup()).Seconds()
	}
	return safety.Bound{Duration: d, Count: int64(n*1.1) + 1000}
}

func (f *Freshness) warmup() time.Duration {
	if f.Warmup == 0 {
		return 3 * time.Second
	}
	return f.Warmup
}

// Client kinds: what a client's profile makes it receive.
const (
	kindFollow   = "follow"   // follows one author
	kindInterest = "interest" // one interest tag, weight 2
	kindChannel  = "channel"  // the "breaking" broadcast channel
)

var kinds = []string{kindFollow, kindInterest, kindChannel}

func kindOf(i int) string {
	switch i % 10 {
	case 0, 1, 2, 3, 4:
		return kindFollow
	case 5, 6, 7:
		return kindInterest
	}
	return kindChannel
}

// receipt is one delivery as a client got it.
type receipt struct {
	eventID   string
	committed time.Time // ms precision, from the event
	deadline  time.Time
	at        time.Time
}

type client struct {
	kind string
	sse  *sseclient.Client
	got  []receipt
	ids  map[string]struct{}
	dups int
}

// trace is what the observer learned about one delivery.
type trace struct {
	committed    time.Time // µs, trace.committed_at
	changeID     string
	personalizer time.Time // the personalizer's stage
	visible      time.Time // when a read_committed consumer got it
	user         string
	channel      string
}

// Run implements scenario.Scenario.
func (f *Freshness) Run(ctx context.Context, env *scenario.Env, res *report.Result) error {
	if f.Clients < 10 || len(f.Phases) == 0 {
		return fmt.Errorf("freshness: need at least 10 clients and a phase")
	}
	st := env.Stack
	run := strconv.FormatInt(time.Now().Unix()%1_000_000, 36)
	db, err := pgraw.Connect(ctx, st.PostgresDSN())
	if err != nil {
		return err
	}
	defer db.Close(context.Background())

	// 1. Profiles, then wait until the personalizer holds them.
	admin := st.Admin("personalizer")
	before, err := stack.Metric(ctx, admin, "freshet_personalizer_profiles")
	if err != nil {
		return fmt.Errorf("personalizer metrics: %w", err)
	}
	t0 := time.Now()
	if _, err := db.Exec(ctx, `INSERT INTO user_profiles (user_id, locale, interests, follows)
		SELECT 'lt' || $1 || '-' || i, 'zz',
		  CASE WHEN i % 10 BETWEEN 5 AND 7 THEN jsonb_build_object('lt-t' || i, 2.0) ELSE '{}'::jsonb END,
		  CASE WHEN i % 10 < 5 THEN ARRAY['author:lt-a' || i] ELSE '{}'::text[] END
		FROM generate_series(0, $2::int - 1) i`, run, f.Clients); err != nil {
		return fmt.Errorf("insert profiles: %w", err)
	}
	for {
		n, err := stack.Metric(ctx, admin, "freshet_personalizer_profiles")
		if err == nil && n >= before+float64(f.Clients) {
			break
		}
		if time.Since(t0) > time.Minute || ctx.Err() != nil {
			return fmt.Errorf("the personalizer holds %.0f profiles of %d after %s", n-before, f.Clients, time.Since(t0).Round(time.Second))
		}
		time.Sleep(200 * time.Millisecond)
	}
	env.Logf("%d profiles written and loaded by the personalizer in %s", f.Clients, time.Since(t0).Round(10*time.Millisecond))

	// 2. Gateways and clients.
	addrs := []string{st.GatewayAddr()}
	for range max(f.Gateways, 1) - 1 {
		g, err := st.AddGateway(ctx)
		if err != nil {
			return err
		}
		addrs = append(addrs, g.Addr)
	}
	defer st.StopGateways()
	secret := st.Secret("FRESHET_AUTH_HS256_SECRET")
	clients := make([]*client, f.Clients)
	var received atomic.Int64
	t0 = time.Now()
	if err := scenario.Parallel(ctx, f.Clients, 64, func(i int) error {
		user := fmt.Sprintf("lt%s-%d", run, i)
		var chans []string
		if kindOf(i) == kindChannel {
			chans = []string{"breaking"}
		}
		tok, err := sseclient.Token(secret, user, chans, time.Hour)
		if err != nil {
			return err
		}
		c := &client{kind: kindOf(i), ids: map[string]struct{}{}, sse: &sseclient.Client{
			Addr: addrs[i%len(addrs)], Source: sseclient.Source(0, i), Path: sseclient.StreamPath(tok, chans)}}
		if err := c.sse.Connect(ctx); err != nil {
			return fmt.Errorf("stream %d: %w", i, err)
		}
		clients[i] = c
		return nil
	}); err != nil {
		for _, c := range clients {
			if c != nil {
				c.sse.Close()
			}
		}
		return err
	}
	env.Logf("%d streams open over %d gateway replica(s) in %s", f.Clients, len(addrs), time.Since(t0).Round(10*time.Millisecond))
	var readers sync.WaitGroup
	for _, c := range clients {
		readers.Add(1)
		go func() {
			defer readers.Done()
			c.read(&received)
		}()
	}
	closeClients := func() {
		for _, c := range clients {
			c.sse.Close()
		}
		readers.Wait()
	}
	defer closeClients()

	// 3. Observers: Kafka (stage timestamps) and the raw pgoutput reader.
	obs, err := startObserver(ctx, env)
	if err != nil {
		return err
	}
	defer obs.stop()
	slot := "loadtest_raw_" + run
	if err := pgraw.CreateSlot(ctx, st.PostgresDSN(), slot); err != nil {
		return fmt.Errorf("raw slot: %w", err)
	}
	defer pgraw.DropSlot(context.Background(), st.PostgresDSN(), slot)
	rawCtx, stopRaw := context.WithCancel(ctx)
	var rawMu sync.Mutex
	var rawLat []rawSample
	rawDone := make(chan error, 1)
	go func() {
		_, err := pgraw.Read(rawCtx, st.PostgresDSN(), slot, "freshet", 0, 0, func(commit time.Time, rows int) {
			now := time.Now()
			rawMu.Lock()
			rawLat = append(rawLat, rawSample{commit, now.Sub(commit), rows})
			rawMu.Unlock()
		})
		rawDone <- err
	}()

	// 4. Writes, phase by phase.
	w, err := newWriter(ctx, st.PostgresDSN(), run, f.Clients, 8)
	if err != nil {
		stopRaw()
		return err
	}
	defer w.close()
	gwStale0 := staleCount(ctx, st, addrs)
	windows := make([]window, len(f.Phases))
	for i, p := range f.Phases {
		env.Progress(func() string {
			return fmt.Sprintf("phase %d/%d at %.0f/s: %d rows written, %d deliveries received, observer %d changes %d deliveries",
				i+1, len(f.Phases), p.Rate, w.rows.Load(), received.Load(), obs.changes.Load(), obs.deliveries.Load())
		})
		if err := w.write(ctx, p.Rate, f.warmup(), f.BroadcastEvery); err != nil {
			stopRaw()
			return err
		}
		start := time.Now()
		rows0, bcast0 := w.rows.Load(), w.broadcasts.Load()
		txn0, txnErr0 := personalizerTxns(ctx, admin)
		load := stats.StartLoadSampler(time.Second)
		if err := w.write(ctx, p.Rate, p.Duration, f.BroadcastEvery); err != nil {
			load.Stop()
			stopRaw()
			return err
		}
		windows[i] = window{phase: p, from: start, to: time.Now(), rows: w.rows.Load() - rows0, broadcasts: w.broadcasts.Load() - bcast0, load: load.Stop()}
		txn1, txnErr1 := personalizerTxns(ctx, admin)
		windows[i].txns, windows[i].txnsErr = txn1.minus(txn0), errors.Join(txnErr0, txnErr1)
	}
	// Drain: until nothing arrives for 2 s, at most 20 s.
	env.Progress(func() string { return fmt.Sprintf("draining: %d deliveries received", received.Load()) })
	last, quiet := received.Load(), time.Now()
	for time.Since(quiet) < 2*time.Second && time.Since(windows[len(windows)-1].to) < 20*time.Second && ctx.Err() == nil {
		time.Sleep(200 * time.Millisecond)
		if n := received.Load(); n != last {
			last, quiet = n, time.Now()
		}
	}
	stale := staleCount(ctx, st, addrs) - gwStale0
	stopRaw()
	if err := <-rawDone; err != nil && ctx.Err() == nil {
		res.Missing = append(res.Missing, "raw pgoutput baseline: "+err.Error())
	}
	closeClients()
	obs.stop()

	f.report(res, clients, obs, w, windows, rawLat, stale)
	return nil
}

// deliveryJSON is the part of the gateway's delivery event read here.
type deliveryJSON struct {
	EventID     string `json:"event_id"`
	CommittedAt int64  `json:"committed_at"`
	Deadline    int64  `json:"deadline"`
}

// parseDelivery reads the three fields a client needs from the gateway's
// delivery JSON without decoding the rest (10,000 clients share this
// machine with the stack they measure); a payload it cannot read falls
// back to encoding/json.
func parseDelivery(data []byte) (deliveryJSON, bool) {
	var d deliveryJSON
	id, ok1 := field(data, `"event_id":"`, '"')
	committed, ok2 := field(data, `"committed_at":`, ',', '}')
	if ok1 && ok2 && !bytes.ContainsRune(id, '\\') {
		d.EventID = string(id)
		c, err := strconv.ParseInt(string(committed), 10, 64)
		if err == nil {
			d.CommittedAt = c
			if dl, ok := field(data, `"deadline":`, ',', '}'); ok {
				d.Deadline, _ = strconv.ParseInt(string(dl), 10, 64)
			}
			return d, true
		}
	}
	if json.Unmarshal(data, &d) != nil {
		return d, false
	}
	return d, true
}

// field returns the bytes after the last occurrence of key up to the
// first of ends. The gateway writes event_id first and committed_at and
// deadline after the content, so the last occurrence is the top-level one.
func field(data []byte, key string, ends ...byte) ([]byte, bool) {
	i := bytes.LastIndex(data, []byte(key))
	if key == `"event_id":"` {
		i = bytes.Index(data, []byte(key))
	}
	if i < 0 {
		return nil, false
	}
	rest := data[i+len(key):]
	j := bytes.IndexAny(rest, string(ends))
	if j < 0 {
		return nil, false
	}
	return rest[:j], true
}

func (c *client) read(received *atomic.Int64) {
	for {
		ev, err := c.sse.Next()
		if err != nil {
			return
		}
		if ev.Type != "delivery" {
			continue
		}
		now := time.Now()
		d, ok := parseDelivery(ev.Data)
		if !ok {
			continue
		}
		if _, ok := c.ids[d.EventID]; ok {
			c.dups++
			continue
		}
		c.ids[d.EventID] = struct{}{}
		r := receipt{eventID: d.EventID, committed: time.UnixMilli(d.CommittedAt), at: now}
		if d.Deadline > 0 {
			r.deadline = time.UnixMilli(d.Deadline)
		}
		c.got = append(c.got, r)
		received.Add(1)
	}
}

// staleCount sums the gateways' count of deliveries dropped because their
// deadline had passed (never sent, so never received).
func staleCount(ctx context.Context, st *stack.Stack, addrs []string) float64 {
	var sum float64
	admins := []string{st.Admin("sse-gateway")}
	for _, g := range st.Gateways() {
		admins = append(admins, g.Admin)
	}
	for _, a := range admins {
		if v, err := stack.Metric(ctx, a, "freshet_sse_gateway_events_stale_total"); err == nil {
			sum += v
		}
	}
	return sum
}

type rawSample struct {
	commit time.Time
	lat    time.Duration
	rows   int
}

type window struct {
	phase    Phase
	from, to time.Time
	rows     int64
	// broadcasts of the rows: each goes to every channel client; every
	// other row to two clients.
	broadcasts int64
	load       stats.LoadStats // while the phase's rows were written
	txns       txnStats        // the personalizer's transactions meanwhile
	txnsErr    error           // why txns is not known
}

// txnStats are the personalizer's committed transactions, the seconds they
// took and the changes it handled (of every outcome), from its /metrics.
type txnStats struct{ count, seconds, changes float64 }

// The personalizer's metrics personalizerTxns reads.
const (
	txnSecondsMetric = "freshet_personalizer_transaction_seconds" // a histogram
	changesMetric    = "freshet_personalizer_changes_total"       // by outcome
)

// personalizerTxns scrapes the personalizer's /metrics on admin.
func personalizerTxns(ctx context.Context, admin string) (txnStats, error) {
	var t txnStats
	for _, m := range []struct {
		v    *float64
		name string
	}{
		{&t.count, txnSecondsMetric + "_count"},
		{&t.seconds, txnSecondsMetric + "_sum"},
		{&t.changes, changesMetric},
	} {
		v, err := stack.Metric(ctx, admin, m.name)
		if err != nil {
			return txnStats{}, fmt.Errorf("personalizer metrics: %w", err)
		}
		*m.v = v
	}
	return t, nil
}

// minus is what happened between the scrapes u and t.
func (t txnStats) minus(u txnStats) txnStats {
	return txnStats{t.count - u.count, t.seconds - u.seconds, t.changes - u.changes}
}

// txnFigure is the mean length of the personalizer's transactions in the
// phase, noted with how many there were and the changes each carried on
// average; when that is not known (a scrape failed, or no transaction
// counted: none committed, or the personalizer restarted), it is nil and
// missing says why.
func (w window) txnFigure(label string) (fig *report.Figure, missing string) {
	tx := w.txns
	switch {
	case w.txnsErr != nil:
		return nil, label + ": personalizer transactions: " + w.txnsErr.Error()
	case tx.count <= 0:
		return nil, fmt.Sprintf("%s: personalizer transactions: %.0f counted in the phase (none committed, or the personalizer restarted)", label, tx.count)
	}
	return report.F(label+": personalizer transaction, mean", 1000*tx.seconds/tx.count, "ms").
		Noted("%.0f transactions in %.0f s, %.1f changes each on average", tx.count, w.to.Sub(w.from).Seconds(), tx.changes/tx.count), ""
}

// writer writes content rows at a rate, in a transaction every 10 ms,
// over a few connections.
type writer struct {
	run        string
	clients    int
	conns      []*pgx.Conn
	jobs       chan job
	wg         sync.WaitGroup
	rows       atomic.Int64
	broadcasts atomic.Int64
	seq        atomic.Int64
	doneMu     sync.Mutex
	done       []written
	errMu      sync.Mutex
	err        error
}

type job struct {
	rows      int
	broadcast bool
}

func newWriter(ctx context.Context, dsn, run string, clients, conns int) (*writer, error) {
	w := &writer{run: run, clients: clients, jobs: make(chan job, conns)}
	for range conns {
		c, err := pgraw.Connect(ctx, dsn)
		if err != nil {
			w.close()
			return nil, err
		}
		w.conns = append(w.conns, c)
	}
	for _, c := range w.conns {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			for j := range w.jobs {
				if err := w.insert(c, j); err != nil {
					w.errMu.Lock()
					w.err = err
					w.errMu.Unlock()
				}
			}
		}()
	}
	return w, nil
}

// insert writes j.rows content rows in one transaction: each names the
// author one "follow" client follows and the tag one "interest" client
// likes, so it is delivered to two clients; a broadcast row goes to the
// "breaking" channel.
func (w *writer) insert(c *pgx.Conn, j job) error {
	urls, tags, authors := make([]string, j.rows), make([]string, j.rows), make([]string, j.rows)
	breaking := make([]bool, j.rows)
	for i := range j.rows {
		urls[i] = fmt.Sprintf("/lt/%s/%d", w.run, w.seq.Add(1))
		if j.broadcast {
			breaking[i] = true
			tags[i], authors[i] = "lt-none", "lt-none"
			continue
		}
		f := rand.IntN(w.clients/10) * 10                  // a follow client: i % 10 == 0 (of 0..4)
		f += rand.IntN(5)                                  // 0..4
		g := rand.IntN(w.clients/10)*10 + 5 + rand.IntN(3) // an interest client: 5..7
		authors[i] = "lt-a" + strconv.Itoa(min(f, w.clients-1))
		tags[i] = "lt-t" + strconv.Itoa(min(g, w.clients-1))
	}
	// clock_timestamp() after the insert, inside the transaction: the
	// commit's own time (what the deliveries carry) follows it within a
	// millisecond, so the rows fall in the phase their deliveries do.
	var at time.Time
	err := c.QueryRow(context.Background(), `WITH ins AS (
		INSERT INTO content (title, url, tags, author, locale, breaking)
		SELECT 'load ' || u, u, ARRAY[t], a, 'xx', b FROM unnest($1::text[], $2::text[], $3::text[], $4::bool[]) AS x(u, t, a, b)
		RETURNING 1)
		SELECT clock_timestamp() FROM ins LIMIT 1`,
		urls, tags, authors, breaking).Scan(&at)
	if err == nil {
		w.rows.Add(int64(j.rows))
		if j.broadcast {
			w.broadcasts.Add(int64(j.rows))
		}
		w.doneMu.Lock()
		w.done = append(w.done, written{at: at, rows: j.rows, broadcast: j.broadcast})
		w.doneMu.Unlock()
	}
	return err
}

// written is one committed transaction of the writer.
type written struct {
	at        time.Time
	rows      int
	broadcast bool
}

// expected is how many deliveries the transactions committed in [from,
// to) make: two per row (a follow client and an interest client), every
// channel client per broadcast row.
func (w *writer) expected(from, to time.Time, channelClients int) int64 {
	w.doneMu.Lock()
	defer w.doneMu.Unlock()
	var n int64
	for _, d := range w.done {
		if d.at.Before(from) || !d.at.Before(to) {
			continue
		}
		if d.broadcast {
			n += int64(d.rows * channelClients)
		} else {
			n += int64(2 * d.rows)
		}
	}
	return n
}

// write paces transactions for d at rate rows/s (a transaction every 10
// ms), plus a broadcast row every bcast.
func (w *writer) write(ctx context.Context, rate float64, d time.Duration, bcast time.Duration) error {
	lastB := time.Now()
	err := scenario.Paced(ctx, rate, d, func(rows int) error {
		select {
		case w.jobs <- job{rows: rows}:
		case <-ctx.Done():
		}
		if bcast > 0 && time.Since(lastB) >= bcast {
			lastB = time.Now()
			select {
			case w.jobs <- job{rows: 1, broadcast: true}:
			case <-ctx.Done():
			}
		}
		return nil
	})
	w.errMu.Lock()
	defer w.errMu.Unlock()
	if w.err != nil {
		return w.err
	}
	return err
}

func (w *writer) close() {
	if w.jobs != nil {
		close(w.jobs)
		w.jobs = nil
	}
	w.wg.Wait()
	for _, c := range w.conns {
		c.Close(context.Background())
	}
}

// observer keeps, beside the services, the timestamps of each change
// (content.changes) and delivery (content.deliveries, read committed).
type observer struct {
	ob         *scenario.Observer
	mu         sync.Mutex
	produced   map[string]time.Time // change event id -> the ingestor's produced_at
	traces     map[string]*trace    // delivery event id -> trace
	changes    atomic.Int64
	deliveries atomic.Int64
}

func startObserver(ctx context.Context, env *scenario.Env) (*observer, error) {
	o := &observer{produced: map[string]time.Time{}, traces: map[string]*trace{}}
	ob, err := env.Observe(ctx, []string{"content.changes", "content.deliveries"}, scenario.ObserveOptions{ReadCommitted: true},
		func(now time.Time, _ *kgo.Record, ev events.Event) {
			o.mu.Lock()
			defer o.mu.Unlock()
			switch e := ev.(type) {
			case *events.ContentChange:
				o.produced[e.EventID] = e.Trace.ProducedAt
				o.changes.Add(1)
			case *events.Delivery:
				t := &trace{committed: e.Trace.CommittedAt, changeID: e.ChangeEventID, visible: now, user: e.UserID, channel: e.Channel}
				for _, s := range e.Trace.Stages {
					if s.Name == "personalizer" {
						t.personalizer = s.At
					}
				}
				o.traces[e.EventID] = t
				o.deliveries.Add(1)
			}
		})
	o.ob = ob
	return o, err
}

func (o *observer) stop() { o.ob.Stop() }

// report turns the receipts into figures.
func (f *Freshness) report(res *report.Result, clients []*client, obs *observer, w *writer, windows []window, raw []rawSample, stale float64) {
	dups := 0
	for _, c := range clients {
		dups += c.dups
	}
	obs.mu.Lock()
	defer obs.mu.Unlock()
	channelClients := 0
	for _, c := range clients {
		if c.kind == kindChannel {
			channelClients++
		}
	}
	for _, win := range windows {
		first := len(res.Figures)
		label := fmt.Sprintf("%.0f/s", win.phase.Rate)
		in := func(t time.Time) bool { return !t.Before(win.from) && t.Before(win.to) }
		var all stats.Latencies
		perKind := map[string]*stats.Latencies{}
		late, got := 0, 0
		var stages [4]float64
		var staged int
		for _, c := range clients {
			for _, r := range c.got {
				committed := r.committed
				tr := obs.traces[r.eventID]
				if tr != nil && !tr.committed.IsZero() {
					committed = tr.committed // µs rather than ms
				}
				if !in(committed) {
					continue
				}
				lat := r.at.Sub(committed)
				all.Add(lat)
				if perKind[c.kind] == nil {
					perKind[c.kind] = &stats.Latencies{}
				}
				perKind[c.kind].Add(lat)
				got++
				if !r.deadline.IsZero() && r.at.After(r.deadline) {
					late++
				}
				if tr == nil || tr.personalizer.IsZero() {
					continue
				}
				prod, ok := obs.produced[tr.changeID]
				if !ok || prod.IsZero() {
					continue
				}
				// The observer and the gateway read the deliveries side
				// by side: when the gateway was first, the delivery was
				// readable no later than the client got it.
				visible := tr.visible
				if r.at.Before(visible) {
					visible = r.at
				}
				stages[0] += stats.Ms(prod.Sub(committed))
				stages[1] += stats.Ms(tr.personalizer.Sub(prod))
				stages[2] += stats.Ms(visible.Sub(tr.personalizer))
				stages[3] += stats.Ms(r.at.Sub(visible))
				staged++
			}
		}
		// Expected receipts: deliveries to our clients the observer saw.
		want := 0
		for _, tr := range obs.traces {
			if !in(tr.committed) {
				continue
			}
			if tr.channel != "" {
				want += channelClients
			} else {
				want++
			}
		}
		var rawL stats.Latencies
		for _, s := range raw {
			if in(s.commit) {
				for range s.rows {
					rawL.Add(s.lat)
				}
			}
		}
		rawS := rawL.Summarize()
		s := all.Summarize()
		target := 0.0
		switch {
		case win.phase.Rate <= 1000:
			target = 100
		case win.phase.Rate <= 5000:
			target = 250
		}
		written := float64(win.rows) / win.to.Sub(win.from).Seconds()
		res.Add(report.F(label+": rows written", written, "changes/s").Against("rate set", win.phase.Rate).Noted("%d rows in %.0f s", win.rows, win.to.Sub(win.from).Seconds()))
		for _, q := range []struct {
			name string
			v, b float64
		}{{"p50", s.P50, rawS.P50}, {"p95", s.P95, rawS.P95}, {"p99", s.P99, rawS.P99}, {"max", s.Max, rawS.Max}} {
			fig := report.F(fmt.Sprintf("%s: commit→receipt %s, all clients", label, q.name), q.v, "ms").Against("raw pgoutput commit→decoded", q.b)
			if q.name == "p99" && target > 0 {
				fig.AtMost(target)
			}
			if q.name == "p99" {
				fig.Noted("%d deliveries received of %d the personalizer produced for these clients by the end of the run", got, want)
			}
			res.Add(fig)
		}
		for _, k := range kinds {
			l := perKind[k]
			if l == nil {
				continue
			}
			ks := l.Summarize()
			res.Add(report.F(fmt.Sprintf("%s: commit→receipt p99, %s clients", label, k), ks.P99, "ms").Against("raw pgoutput p99", rawS.P99).
				Noted("p50 %.1f, p95 %.1f, p99 %.1f, max %.1f ms over %d deliveries", ks.P50, ks.P95, ks.P99, ks.Max, ks.Count))
		}
		// What the writes should have delivered: two clients per row, every
		// channel client per broadcast. What never arrived by the end of
		// the drain is not in the percentiles above, so it is a figure of
		// its own.
		// By phase, rows are placed by the writer's clock_timestamp() and
		// receipts by the commit time their deliveries carry: a
		// transaction that straddles the phase's end counts on one side
		// only, so this figure has no target; the whole run's, below,
		// has no boundary.
		expected := w.expected(win.from, win.to, channelClients)
		res.Add(report.F(label+": deliveries not received by the end of the run", float64(max(expected-int64(got), 0)), "count").
			Noted("%d expected from the rows committed in the phase (2 per row, %d per broadcast), %d received; the percentiles cover those received; a transaction at the phase's edge may count on one side only", expected, channelClients, got))
		share := 0.0
		if got+int(stale) > 0 {
			share = 100 * float64(late+int(stale)) / float64(got+int(stale))
		}
		res.Add(report.F(label+": deliveries past their deadline", share, "%").AtMost(0).
			Noted("%d received late, %.0f dropped stale by the gateways (whole run)", late, stale))
		if staged > 0 {
			total := stages[0] + stages[1] + stages[2] + stages[3]
			names := []string{"cdc-ingestor (commit→produced)", "Kafka→personalizer scored", "personalizer txn→readable", "sse-gateway (readable→client)"}
			for i, n := range names {
				res.Add(report.F(label+": stage "+n, 100*stages[i]/total, "% of latency").
					Noted("mean %.1f ms of %.1f ms (%d deliveries with every timestamp)", stages[i]/float64(staged), total/float64(staged), staged))
			}
		} else {
			res.Missing = append(res.Missing, label+": stage shares: no delivery joined with its trace")
		}
		// What bounds the personalizer's rate: its transactions' length
		// and how many changes each carried (its loop commits one at a
		// time).
		if fig, missing := win.txnFigure(label); fig != nil {
			res.Add(fig)
		} else {
			res.Missing = append(res.Missing, missing)
		}
		for _, f := range res.Figures[first:] {
			f.Load = win.load // the phase's, not the whole scenario's
		}
	}
	// Every row the writer committed, warm-ups included, against every
	// delivery the clients received.
	var received int64
	for _, c := range clients {
		received += int64(len(c.got))
	}
	all := w.expected(time.Time{}, time.Now().Add(time.Hour), channelClients)
	res.Add(report.F("deliveries not received by the end of the run, whole run", float64(max(all-received, 0)), "count").AtMost(0).
		Noted("%d expected from every row written (warm-ups included: 2 per row, %d per broadcast), %d received", all, channelClients, received))
	res.Add(report.F("duplicate deliveries", float64(dups), "count").AtMost(0))
}
