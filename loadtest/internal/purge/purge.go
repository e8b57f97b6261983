// Package purge is scenario 4 of the load generator, purge latency: rows
// are written at a set rate while the invalidator purges ten targets (the
// stack's Varnish, and Fastly, Cloudflare and webhook stand-ins run by the
// load generator on loopback: pkg/edgefake and a counting HTTP handler);
// for every change and target, the time from the commit to that target's
// ack (from the edge.purges audit records), the time to the last target's
// ack, and the requests coalescing saved against one request set per
// change. The baseline is a raw purge request sent straight to each
// target by the load generator.
//
// The fakes are started by Prepare, before the stack, because the
// invalidator reads its targets from the pipeline once, at start; they
// serve for the whole run (the freshness scenario's writes purge them
// too).
package purge

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/freshet/freshet/loadtest/internal/pgraw"
	"github.com/freshet/freshet/loadtest/internal/report"
	"github.com/freshet/freshet/loadtest/internal/safety"
	"github.com/freshet/freshet/loadtest/internal/scenario"
	"github.com/freshet/freshet/loadtest/internal/stack"
	"github.com/freshet/freshet/loadtest/internal/stats"
	"github.com/freshet/freshet/pkg/edgefake"
	"github.com/freshet/freshet/pkg/events"
)

// Purge is the scenario's configuration.
type Purge struct {
	// Rate of writes, changes per second.
	Rate float64
	// Duration of the writes.
	Duration time.Duration
	// Fakes of each kind (Fastly, Cloudflare, webhook) beside Varnish: 3
	// makes the ten targets.
	Fakes int

	token string
	fakes []*fake
}

// fake is a stand-in target.
type fake struct {
	name, kind string
	url        string
	requests   func() int
	close      func()
}

var (
	_ scenario.Scenario = (*Purge)(nil)
	_ scenario.Preparer = (*Purge)(nil)
)

// TokenEnv names the variable holding the fakes' API token.
const TokenEnv = "FRESHET_LOAD_EDGE_TOKEN"

// Name implements scenario.Scenario.
func (p *Purge) Name() string { return "purge" }

// Title implements scenario.Scenario.
func (p *Purge) Title() string {
	return fmt.Sprintf("commit to purge ack per target, %d targets, writes at %.0f/s for %s", 1+3*p.Fakes, p.Rate, p.Duration)
}

// Bound implements scenario.Scenario.
func (p *Purge) Bound() safety.Bound {
	return safety.Bound{Duration: p.Duration + 2*time.Minute, Count: int64(p.Rate*p.Duration.Seconds()) + 1}
}

// Prepare starts the fakes and adds them to the pipeline's targets.
func (p *Purge) Prepare(ctx context.Context, prep *scenario.Prep) (func(), error) {
	p.token = strconv.FormatInt(time.Now().UnixNano(), 36) + "-loadtest-token"
	for i := 1; i <= p.Fakes; i++ {
		fa := edgefake.NewFastly(edgefake.Options{Token: p.token})
		cf := edgefake.NewCloudflare(edgefake.Options{Token: p.token})
		var hookN atomic.Int64
		hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hookN.Add(1)
			w.WriteHeader(http.StatusNoContent)
		}))
		p.fakes = append(p.fakes,
			&fake{fmt.Sprintf("fastly-%d", i), "fastly", fa.URL(), fa.Requests, fa.Close},
			&fake{fmt.Sprintf("cloudflare-%d", i), "cloudflare", cf.URL(), cf.Requests, cf.Close},
			&fake{fmt.Sprintf("hook-%d", i), "http", hook.URL + "/purge", func() int { return int(hookN.Load()) }, hook.Close},
		)
	}
	for _, f := range p.fakes {
		if err := safety.CheckURL(f.url); err != nil {
			return p.closeFakes, err
		}
		var b strings.Builder
		fmt.Fprintf(&b, "    - name: %s\n      type: %s\n      address: %s\n      coalesce: 20ms\n", f.name, f.kind, f.url)
		switch f.kind {
		case "fastly":
			fmt.Fprintf(&b, "      service_id: loadtest\n      token_env: %s\n      base_url: https://www.example.test\n", TokenEnv)
		case "cloudflare":
			// The fake has no rate limit; the target's own bucket is set
			// past what the run sends, so that what is measured is
			// Freshet, not a plan's quota.
			fmt.Fprintf(&b, "      zone_id: loadtest\n      plan: enterprise\n      rate: 1000\n      burst: 1000\n      token_env: %s\n      base_url: https://www.example.test\n", TokenEnv)
		}
		prep.Targets = append(prep.Targets, b.String())
	}
	prep.Env = append(prep.Env, TokenEnv+"="+p.token)
	return p.closeFakes, nil
}

func (p *Purge) closeFakes() {
	for _, f := range p.fakes {
		f.close()
	}
}

// targetNames lists every target of the run, Varnish first.
func (p *Purge) targetNames() []string {
	out := []string{"varnish"}
	for _, f := range p.fakes {
		out = append(out, f.name)
	}
	return out
}

// Run implements scenario.Scenario.
func (p *Purge) Run(ctx context.Context, env *scenario.Env, res *report.Result) error {
	st := env.Stack
	admin := st.Admin("invalidator")
	if admin == "" {
		return fmt.Errorf("purge: no invalidator runs in the stack")
	}
	if len(p.fakes) == 0 {
		return fmt.Errorf("purge: Prepare did not run")
	}
	obs, err := startObserver(ctx, env)
	if err != nil {
		return err
	}
	defer obs.stop()
	reqs0 := map[string]float64{}
	for _, t := range p.targetNames() {
		reqs0[t], _ = stack.Metric(ctx, admin, "freshet_invalidator_requests_total", `target="`+t+`"`)
	}
	hist := func() (map[string]map[float64]float64, map[float64]float64) {
		per := map[string]map[float64]float64{}
		for _, t := range p.targetNames() {
			per[t], _ = stack.Histogram(ctx, admin, "freshet_invalidator_purge_latency_seconds", `target="`+t+`"`)
		}
		last, _ := stack.Histogram(ctx, admin, "freshet_invalidator_commit_to_last_ack_seconds")
		return per, last
	}
	hist0, last0 := hist()
	db, err := pgraw.Connect(ctx, st.PostgresDSN())
	if err != nil {
		return err
	}
	defer db.Close(context.Background())
	run := strconv.FormatInt(time.Now().Unix()%1_000_000, 36)
	var written atomic.Int64
	env.Progress(func() string {
		return fmt.Sprintf("%d rows written, %d changes and %d audit records seen", written.Load(), obs.changes.Load(), obs.audits.Load())
	})
	// A transaction every 10 ms, as in the freshness scenario.
	err = scenario.Paced(ctx, p.Rate, p.Duration, func(rows int) error {
		first := written.Add(int64(rows)) - int64(rows)
		_, err := db.Exec(ctx, `INSERT INTO content (title, url, tags, author, locale)
			SELECT 'purge ' || g, '/lt-purge/' || $1 || '/' || g, ARRAY['lt-purge-' || (g % 50)], 'lt-purge', 'xx'
			FROM generate_series($2::bigint, $2::bigint + $3 - 1) g`, run, first, rows)
		return err
	})
	if err != nil {
		return fmt.Errorf("write: %w", err)
	}
	wrote := written.Load()
	// Wait until every target acked every change (or 30 s).
	t0 := time.Now()
	// Until every change is acked by every target: the invalidator holds
	// none in flight (or every ack is on edge.purges); at most 60 s.
	for time.Since(t0) < 60*time.Second && ctx.Err() == nil {
		inFlight, err := stack.Metric(ctx, admin, "freshet_invalidator_in_flight_changes")
		if err == nil && inFlight == 0 && time.Since(t0) > time.Second || obs.pending(len(p.targetNames())) == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	obs.stop()
	reqs := map[string]float64{}
	for _, t := range p.targetNames() {
		v, _ := stack.Metric(ctx, admin, "freshet_invalidator_requests_total", `target="`+t+`"`)
		reqs[t] = v - reqs0[t]
	}
	hist1, last1 := hist()
	base := p.baselines(ctx, st)

	obs.mu.Lock()
	defer obs.mu.Unlock()
	perTarget := map[string]*stats.Latencies{}
	last := map[string]time.Time{} // change -> last target's ack
	for _, a := range obs.audit {
		committed, ok := obs.committed[a.change]
		if !ok {
			continue
		}
		if perTarget[a.target] == nil {
			perTarget[a.target] = &stats.Latencies{}
		}
		perTarget[a.target].Add(a.finished.Sub(committed))
		if a.finished.After(last[a.change]) {
			last[a.change] = a.finished
		}
	}
	var lastL stats.Latencies
	complete := 0
	for ch, at := range last {
		if obs.targetsOf[ch] == len(p.targetNames()) {
			complete++
			lastL.Add(at.Sub(obs.committed[ch]))
		}
	}
	var worstBase float64
	for _, v := range base {
		worstBase = max(worstBase, v)
	}
	ls := lastL.Summarize()
	res.Add(report.F("rows written", float64(wrote)/p.Duration.Seconds(), "changes/s").Against("rate set", p.Rate).Noted("%d rows in %s", wrote, p.Duration))
	name := fmt.Sprintf("commit→last ack p99, %d targets", len(p.targetNames()))
	if b, n := stack.BucketQuantile(last0, last1, 0.99); ls.Count == 0 && n > 0 {
		// The audit records did not cover every target (see the
		// missing lines): the invalidator's own histogram says it.
		res.Add(report.F(name+" (histogram bucket)", b*1000, "ms").AtMost(50).Against("slowest raw purge round trip p99", worstBase).
			Noted("upper bound of the bucket holding p99 of commit_to_last_ack_seconds over %.0f changes", n))
	} else {
		res.Add(report.F(name, ls.P99, "ms").AtMost(50).Against("slowest raw purge round trip p99", worstBase).
			Noted("p50 %.1f, p95 %.1f, max %.1f ms; %d changes acked by every target of %d written", ls.P50, ls.P95, ls.Max, complete, wrote))
	}
	var total, uncoalesced float64
	for _, t := range p.targetNames() {
		kind := p.kindOf(t)
		l := perTarget[t]
		if l == nil {
			res.Missing = append(res.Missing, "no audit record of target "+t+" on edge.purges (see the invalidator's log): its figure is the histogram's bucket bound")
			b, n := stack.BucketQuantile(hist0[t], hist1[t], 0.99)
			res.Add(report.F("commit→ack p99, "+t+" (histogram bucket)", b*1000, "ms").Against("raw "+kind+" request p99", base[kind]).
				Noted("upper bound of the bucket holding p99 of purge_latency_seconds over %.0f changes", n))
		} else {
			s := l.Summarize()
			res.Add(report.F("commit→ack p99, "+t, s.P99, "ms").Against("raw "+kind+" request p99", base[kind]).
				Noted("p50 %.1f, p95 %.1f, max %.1f ms over %d changes", s.P50, s.P95, s.Max, s.Count))
		}
		total += reqs[t]
		uncoalesced += float64(wrote) * float64(perChange(kind))
	}
	if uncoalesced > 0 {
		res.Add(report.F(fmt.Sprintf("purge requests sent to %d targets", len(p.targetNames())), total, "requests").
			Against("one request set per change (no coalescing)", uncoalesced).
			Noted("coalescing saved %.0f%% of the requests (without it, each change alone: keys in one request, each url in its own where the provider takes one a request)",
				100*(1-total/uncoalesced)))
	}
	return nil
}

func (p *Purge) kindOf(target string) string {
	for _, f := range p.fakes {
		if f.name == target {
			return f.kind
		}
	}
	return "varnish"
}

// perChange is how many requests one change written here (keys content,
// tag and author; one new url) needs at a target of kind on its own.
func perChange(kind string) int {
	switch kind {
	case "http":
		return 1 // keys and urls in one body
	default:
		return 2 // the keys, then the url (Varnish and Fastly: one url a request; Cloudflare: files apart from tags)
	}
}

// baselines sends raw purge requests straight to one target of each kind
// and returns the p99 round trip in ms, by kind.
func (p *Purge) baselines(ctx context.Context, st *stack.Stack) map[string]float64 {
	cl := safety.HTTPClient(5 * time.Second)
	out := map[string]float64{}
	send := func(kind string, mk func(i int) *http.Request) {
		var l stats.Latencies
		for i := range 200 {
			req := mk(i)
			t0 := time.Now()
			resp, err := cl.Do(req.WithContext(ctx))
			if err != nil {
				continue
			}
			resp.Body.Close()
			l.Add(time.Since(t0))
		}
		out[kind] = l.Summarize().P99
	}
	send("varnish", func(i int) *http.Request {
		r, _ := http.NewRequest("PURGE", "http://"+st.VarnishAddr()+"/", nil)
		r.Header.Set("xkey", "lt-base-"+strconv.Itoa(i))
		return r
	})
	for _, f := range p.fakes {
		if _, done := out[f.kind]; done {
			continue
		}
		switch f.kind {
		case "fastly":
			send("fastly", func(i int) *http.Request {
				r, _ := http.NewRequest("POST", f.url+"/service/loadtest/purge", nil)
				r.Header.Set("Fastly-Key", p.token)
				r.Header.Set("Surrogate-Key", "lt-base-"+strconv.Itoa(i))
				return r
			})
		case "cloudflare":
			send("cloudflare", func(i int) *http.Request {
				r, _ := http.NewRequest("POST", f.url+"/zones/loadtest/purge_cache", strings.NewReader(`{"tags":["lt-base-`+strconv.Itoa(i)+`"]}`))
				r.Header.Set("Authorization", "Bearer "+p.token)
				r.Header.Set("Content-Type", "application/json")
				return r
			})
		case "http":
			send("http", func(i int) *http.Request {
				r, _ := http.NewRequest("POST", f.url, strings.NewReader(`{"keys":["lt-base"]}`))
				return r
			})
		}
	}
	return out
}

// observer reads content.changes (commit times) and edge.purges (acks).
type observer struct {
	ob        *scenario.Observer
	mu        sync.Mutex
	committed map[string]time.Time
	audit     []ack
	targetsOf map[string]int // change -> targets that acked it
	changes   atomic.Int64
	audits    atomic.Int64
}

type ack struct {
	change, target string
	finished       time.Time
}

// pending is how many (change, target) acks of the changes seen are
// still missing.
func (o *observer) pending(targets int) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := len(o.committed) * targets
	for ch, t := range o.targetsOf {
		if _, ok := o.committed[ch]; ok {
			n -= t
		}
	}
	return n
}

func startObserver(ctx context.Context, env *scenario.Env) (*observer, error) {
	o := &observer{committed: map[string]time.Time{}, targetsOf: map[string]int{}}
	ob, err := env.Observe(ctx, []string{"content.changes", "edge.purges"}, scenario.ObserveOptions{},
		func(_ time.Time, _ *kgo.Record, ev events.Event) {
			o.mu.Lock()
			defer o.mu.Unlock()
			switch e := ev.(type) {
			case *events.ContentChange:
				o.committed[e.EventID] = e.Trace.CommittedAt
				o.changes.Add(1)
			case *events.PurgeAudit:
				if e.Outcome == events.OutcomeAcked {
					for _, id := range e.ChangeEventIDs {
						o.audit = append(o.audit, ack{id, e.Target, e.FinishedAt})
						o.targetsOf[id]++
					}
				}
				o.audits.Add(1)
			}
		})
	o.ob = ob
	return o, err
}

func (o *observer) stop() { o.ob.Stop() }
