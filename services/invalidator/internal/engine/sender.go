package engine

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/freshet/freshet/pkg/pipeline"
	"github.com/freshet/freshet/services/invalidator/internal/target"
	"go.uber.org/zap"
)

// sender purges one target: its queue, coalescing window, concurrency,
// gate (rate and Retry-After) and breaker. See the package doc.
type sender struct {
	cfg     *pipeline.Target
	tgt     target.Target
	log     *zap.Logger
	m       *metrics
	gate    *gate
	breaker *breaker
	sem     chan struct{}
	// finish is called once per batch, from the batch's goroutine, when
	// every request of it acked or gave up; ctx is the sender's.
	finish func(context.Context, *batch)

	// bound is the most changes a failing target may hold (queued and in
	// batches); past it the oldest queued ones go to the DLQ unsent.
	bound      int
	lastFailed atomic.Bool     // the last request failed (retryably)
	ctx        context.Context // run's, for shed batches

	mu      sync.Mutex
	queue   []*unit
	queued  int // changes in queue
	backlog int // changes in queue and in batches not finished
	wake    chan struct{}
	wg      sync.WaitGroup
}

func newSender(cfg *pipeline.Target, tgt target.Target, log *zap.Logger, m *metrics, bound int, finish func(context.Context, *batch)) *sender {
	s := &sender{
		cfg: cfg, tgt: tgt, log: log, m: m, finish: finish, bound: max(1, bound), ctx: context.Background(),
		gate: newGate(cfg.Rate, cfg.Burst),
		sem:  make(chan struct{}, cfg.Concurrency),
		wake: make(chan struct{}, 1),
	}
	s.breaker = &breaker{threshold: cfg.Breaker.Failures, cooldown: cfg.Breaker.Cooldown, onChange: func(st int) {
		m.breakerState.WithLabelValues(cfg.Name).Set(float64(st))
		if st == breakerOpen {
			log.Warn("circuit breaker open", zap.Duration("cooldown", cfg.Breaker.Cooldown))
		}
	}}
	m.breakerState.WithLabelValues(cfg.Name).Set(breakerClosed)
	m.queueDepth.WithLabelValues(cfg.Name).Set(0)
	return s
}

// enqueue adds a unit; it never blocks.
func (s *sender) enqueue(u *unit) {
	s.mu.Lock()
	s.queue = append(s.queue, u)
	s.queued += len(u.changes)
	s.backlog += len(u.changes)
	s.m.queueDepth.WithLabelValues(s.cfg.Name).Set(float64(s.queued))
	s.mu.Unlock()
	s.shedIfFailing()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// failing reports whether the target is failing: its last request failed
// and was not yet followed by a success, or its breaker is not closed.
func (s *sender) failing() bool {
	if s.lastFailed.Load() {
		return true
	}
	s.breaker.mu.Lock()
	defer s.breaker.mu.Unlock()
	return s.breaker.state != breakerClosed
}

// shedIfFailing dead-letters, unsent, the oldest queued units of a failing
// target that holds more than its bound of changes, so that it never holds
// up consumption for the others. A healthy target is never shed: a burst
// waits its turn.
func (s *sender) shedIfFailing() {
	if !s.failing() {
		return
	}
	s.mu.Lock()
	var shed []*unit
	for s.backlog > s.bound && len(s.queue) > 0 {
		old := s.queue[0]
		s.queue[0] = nil
		s.queue = s.queue[1:]
		s.queued -= len(old.changes)
		s.backlog -= len(old.changes)
		shed = append(shed, old)
	}
	s.m.queueDepth.WithLabelValues(s.cfg.Name).Set(float64(s.queued))
	ctx := s.ctx
	s.mu.Unlock()
	if len(shed) > 0 {
		s.shed(ctx, shed)
	}
}

// shed dead-letters units without sending them: the target holds more
// than its bound.
func (s *sender) shed(ctx context.Context, units []*unit) {
	b := newBatch(s.cfg, units)
	err := fmt.Errorf("target %s: failing, with more than %d changes waiting; dead-lettered without a request", s.cfg.Name, s.bound)
	for _, r := range b.reqs {
		r.err = err
	}
	b.started = time.Now()
	b.finished = b.started
	s.m.failures.WithLabelValues(s.cfg.Name, "backlog").Add(float64(len(b.reqs)))
	s.log.Warn("failing target over its bound: dead-lettering the oldest purges", zap.Int("bound", s.bound), zap.Int("units", len(units)))
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.finish(ctx, b)
	}()
}

// finished notes that a batch's changes left the target.
func (s *sender) finished(b *batch) {
	n := 0
	for _, u := range b.units {
		n += len(u.changes)
	}
	s.mu.Lock()
	s.backlog -= n
	s.mu.Unlock()
}

func (s *sender) take() []*unit {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.queue
	s.queue, s.queued = nil, 0
	s.m.queueDepth.WithLabelValues(s.cfg.Name).Set(0)
	return q
}

func (s *sender) empty() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue) == 0
}

// run is the sender's loop: wait for work, let it coalesce, take a request
// slot and a rate token, then take the whole queue as one batch. It
// returns when ctx is done, after the batches in flight ended.
func (s *sender) run(ctx context.Context) {
	s.mu.Lock()
	s.ctx = ctx
	s.mu.Unlock()
	defer s.wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		}
		if s.empty() {
			continue
		}
		if sleep(ctx, s.cfg.Coalesce) != nil {
			return
		}
		// While the slot, the rate or a Retry-After keeps us waiting,
		// purges keep coalescing into the queue.
		if !s.acquire(ctx) {
			return
		}
		units := s.take()
		if len(units) == 0 {
			<-s.sem
			continue
		}
		b := newBatch(s.cfg, units)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.send(ctx, b)
		}()
	}
}

// acquire takes a request slot and a token of the gate.
func (s *sender) acquire(ctx context.Context) bool {
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return false
	}
	if s.gate.wait(ctx) != nil {
		<-s.sem
		return false
	}
	return true
}

// send makes the batch's requests (the first with the slot and token run
// acquired, the others concurrently, each with its own) and finishes the
// batch.
func (s *sender) send(ctx context.Context, b *batch) {
	b.started = time.Now()
	if len(b.reqs) == 0 {
		<-s.sem
	}
	var wg sync.WaitGroup
	for i := range b.reqs {
		if i > 0 && !s.acquire(ctx) {
			break
		}
		wg.Add(1)
		go func(r *request) {
			defer wg.Done()
			defer func() { <-s.sem }()
			s.attempt(ctx, b, r)
		}(b.reqs[i])
	}
	wg.Wait()
	if ctx.Err() != nil {
		return // not finished: the changes are not done, their offsets not committed
	}
	b.finished = time.Now()
	s.finish(ctx, b)
	s.finished(b)
}

// attempt makes r's request until it is acked or given up.
func (s *sender) attempt(ctx context.Context, b *batch, r *request) {
	name := s.cfg.Name
	deadline := b.oldest.Add(s.cfg.DeadLetterAfter)
	giveUp := func(reason string, err error) {
		r.err = err
		s.m.requests.WithLabelValues(name, "failed").Inc()
		s.m.failures.WithLabelValues(name, reason).Inc()
	}
	for {
		// The breaker: while open, wait (the deadline allowing).
		for {
			ok, wait := s.breaker.allow(time.Now())
			if ok {
				break
			}
			if time.Now().Add(wait).After(deadline) {
				giveUp("deadline", fmt.Errorf("target %s: circuit breaker open past dead_letter_after (%s); last error: %v", name, s.cfg.DeadLetterAfter, lastErr(r)))
				return
			}
			if sleep(ctx, wait) != nil {
				return
			}
		}
		r.attempts++
		res, err := s.tgt.Purge(ctx, r.req)
		if ctx.Err() != nil {
			s.breaker.record(true, time.Now()) // says nothing of the target
			return
		}
		var te *target.Error
		permanent := errors.As(err, &te) && te.Permanent
		s.breaker.record(err == nil || permanent, time.Now())
		r.status = res.Status
		if te != nil {
			r.status = te.Status
		}
		s.lastFailed.Store(err != nil && !permanent)
		if err == nil {
			r.purgeID, r.err = res.PurgeID, nil
			s.m.requests.WithLabelValues(name, "acked").Inc()
			keys, urls := len(r.req.Keys), len(r.req.URLs)
			if r.urls != nil {
				keys, urls = 0, len(r.urls)
			}
			for kind, n := range map[string]int{pipeline.PurgeKeys: keys, pipeline.PurgeURLs: urls, pipeline.PurgePrefixes: len(r.req.Prefixes)} {
				if n > 0 {
					s.m.items.WithLabelValues(name, kind).Add(float64(n))
				}
			}
			return
		}
		r.err = err
		if permanent {
			giveUp("permanent", err)
			return
		}
		s.m.failures.WithLabelValues(name, "retryable").Inc()
		if r.attempts >= s.cfg.Retry.Attempts {
			giveUp("attempts", fmt.Errorf("%w (gave up after %d attempts)", err, r.attempts))
			return
		}
		wait := backoff(s.cfg.Retry, r.attempts)
		if te != nil && te.RetryAfter > 0 {
			wait = max(wait, te.RetryAfter)
			s.gate.pause(time.Now().Add(te.RetryAfter)) // the target's other requests wait too
		}
		if time.Now().Add(wait).After(deadline) {
			giveUp("deadline", fmt.Errorf("%w (gave up: dead_letter_after %s passed)", err, s.cfg.DeadLetterAfter))
			return
		}
		s.m.requests.WithLabelValues(name, "retried").Inc()
		s.log.Debug("purge failed, retrying", zap.Int("attempt", r.attempts), zap.Duration("wait", wait), zap.Error(err))
		if sleep(ctx, wait) != nil || s.gate.wait(ctx) != nil {
			return
		}
	}
}

func lastErr(r *request) error {
	if r.err == nil {
		return errors.New("none")
	}
	return r.err
}

// backoff is the wait before retry n (n ≥ 1): full jitter over
// initial × 2^(n-1), capped at max.
func backoff(r pipeline.Retry, n int) time.Duration {
	d := r.InitialBackoff
	for i := 1; i < n && d < r.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, r.MaxBackoff)
	return time.Duration(rand.Int64N(int64(d)) + 1)
}

// request is one purge request of a batch, and the units it serves.
type request struct {
	req target.Request
	// urls are the urls whose "url:" keys req.Keys holds (a varnish
	// target with url_keys); nil for other requests.
	urls     []string
	units    []int // indexes into batch.units
	attempts int
	status   int
	purgeID  string
	err      error // nil once acked
}

// batch is what one flush of a target's queue sends.
type batch struct {
	target   *pipeline.Target
	units    []*unit
	reqs     []*request
	oldest   time.Time // when its oldest unit was queued
	started  time.Time
	finished time.Time
}

// urlKeys is the request kind of urls purged by their url keys.
const urlKeys = "url_keys"

// URLKey is the surrogate key that stands for a url on a varnish target
// with url_keys: the reference VCL tags every object with it.
func URLKey(url string) string { return "url:" + url }

// filterURLs returns the urls keep keeps, in a new slice.
func filterURLs(urls []string, keep func(string) bool) []string {
	var out []string
	for _, u := range urls {
		if keep(u) {
			out = append(out, u)
		}
	}
	return out
}

// newBatch deduplicates the units' purges and splits them into requests of
// one kind each, within max_keys and max_urls (urls and prefixes).
func newBatch(t *pipeline.Target, units []*unit) *batch {
	b := &batch{target: t, units: units, oldest: units[0].queuedAt}
	type item struct {
		units []int
	}
	urls := func(p *pipeline.Purge) []string { return p.URLs }
	var keyed func(p *pipeline.Purge) []string // urls purged by their url keys
	if t.URLKeys {
		// A url holding whitespace cannot travel in the xkey header: it
		// keeps its own PURGE.
		spaced := func(u string) bool { return strings.ContainsFunc(u, unicode.IsSpace) }
		urls = func(p *pipeline.Purge) []string { return filterURLs(p.URLs, spaced) }
		keyed = func(p *pipeline.Purge) []string {
			return filterURLs(p.URLs, func(u string) bool { return !spaced(u) })
		}
	}
	kinds := []struct {
		name  string
		limit int
		get   func(*pipeline.Purge) []string
	}{
		{pipeline.PurgeKeys, t.MaxKeys, func(p *pipeline.Purge) []string { return p.Keys }},
		{urlKeys, t.MaxKeys, keyed},
		{pipeline.PurgeURLs, t.MaxURLs, urls},
		{pipeline.PurgePrefixes, t.MaxURLs, func(p *pipeline.Purge) []string { return p.Prefixes }},
	}
	for _, k := range kinds {
		if k.get == nil {
			continue
		}
		var order []string
		byItem := map[string]*item{}
		for i, u := range units {
			if u.queuedAt.Before(b.oldest) {
				b.oldest = u.queuedAt
			}
			for _, s := range k.get(&u.purge) {
				it, ok := byItem[s]
				if !ok {
					it = &item{}
					byItem[s] = it
					order = append(order, s)
				}
				if n := len(it.units); n == 0 || it.units[n-1] != i {
					it.units = append(it.units, i)
				}
			}
		}
		for start := 0; start < len(order); start += k.limit {
			chunk := order[start:min(start+k.limit, len(order))]
			r := &request{}
			switch k.name {
			case pipeline.PurgeKeys:
				r.req.Keys = chunk
				r.req.Soft = t.Soft
			case urlKeys:
				r.urls = chunk
				r.req.Keys = make([]string, len(chunk))
				for i, u := range chunk {
					r.req.Keys[i] = URLKey(u)
				}
				r.req.Soft = t.Soft
			case pipeline.PurgeURLs:
				r.req.URLs = chunk
				r.req.Soft = t.Soft && t.Type != pipeline.TargetVarnish
			default:
				r.req.Prefixes = chunk
			}
			seen := map[int]bool{}
			for _, s := range chunk {
				for _, i := range byItem[s].units {
					if !seen[i] {
						seen[i] = true
						r.units = append(r.units, i)
					}
				}
			}
			b.reqs = append(b.reqs, r)
		}
	}
	if t.Type == pipeline.TargetHTTP {
		b.reqs = mix(b.reqs)
	}
	return b
}

// mix merges requests of one kind each into requests that carry keys,
// urls and prefixes together (the n-th of each kind in the n-th request),
// for targets whose request takes all three (a webhook's body).
func mix(reqs []*request) []*request {
	var byKind [3][]*request
	for _, r := range reqs {
		switch {
		case len(r.req.Keys) > 0:
			byKind[0] = append(byKind[0], r)
		case len(r.req.URLs) > 0:
			byKind[1] = append(byKind[1], r)
		default:
			byKind[2] = append(byKind[2], r)
		}
	}
	var out []*request
	for i := 0; ; i++ {
		var m *request
		for _, list := range byKind {
			if i >= len(list) {
				continue
			}
			r := list[i]
			if m == nil {
				m = &request{req: target.Request{Soft: r.req.Soft}}
			}
			m.req.Keys = append(m.req.Keys, r.req.Keys...)
			m.req.URLs = append(m.req.URLs, r.req.URLs...)
			m.req.Prefixes = append(m.req.Prefixes, r.req.Prefixes...)
			for _, u := range r.units {
				if !slices.Contains(m.units, u) {
					m.units = append(m.units, u)
				}
			}
		}
		if m == nil {
			return out
		}
		out = append(out, m)
	}
}
