package engine

import (
	"context"
	"math"
	"sync"
	"time"
)

// gate paces a target's requests: a token bucket (the target's rate and
// burst; none when rate is 0) and a pause until the time a Retry-After
// asked for.
type gate struct {
	mu     sync.Mutex
	rate   float64
	burst  float64
	tokens float64
	last   time.Time
	until  time.Time // paused until
}

func newGate(rate float64, burst int) *gate {
	return &gate{rate: rate, burst: float64(max(1, burst)), tokens: float64(max(1, burst))}
}

// pause holds every request until t.
func (g *gate) pause(t time.Time) {
	g.mu.Lock()
	if t.After(g.until) {
		g.until = t
	}
	g.mu.Unlock()
}

// reserve takes a token if one is there (and no pause holds) and returns
// 0, or how long to wait before asking again.
func (g *gate) reserve(now time.Time) time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	if now.Before(g.until) {
		return g.until.Sub(now)
	}
	if g.rate <= 0 {
		return 0
	}
	if !g.last.IsZero() {
		g.tokens = math.Min(g.burst, g.tokens+now.Sub(g.last).Seconds()*g.rate)
	}
	g.last = now
	if g.tokens >= 1 {
		g.tokens--
		return 0
	}
	return time.Duration((1 - g.tokens) / g.rate * float64(time.Second))
}

// wait blocks until reserve grants a token, or ctx is done.
func (g *gate) wait(ctx context.Context) error {
	for {
		d := g.reserve(time.Now())
		if d <= 0 {
			return nil
		}
		if err := sleep(ctx, d); err != nil {
			return err
		}
	}
}

// sleep waits for d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Breaker states, as the breaker_state metric shows them.
const (
	breakerClosed   = 0
	breakerHalfOpen = 1
	breakerOpen     = 2
)

// breaker is a target's circuit breaker: after failures consecutive failed
// requests it opens for cooldown, during which requests wait; then one
// probe goes through: its success closes the breaker, its failure opens it
// again.
type breaker struct {
	mu        sync.Mutex
	failures  int
	threshold int
	cooldown  time.Duration
	state     int
	openUntil time.Time
	probing   bool
	onChange  func(state int)
}

// allow reports whether a request may go now, or how long to wait before
// asking again.
func (b *breaker) allow(now time.Time) (bool, time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state {
	case breakerOpen:
		if now.Before(b.openUntil) {
			return false, b.openUntil.Sub(now)
		}
		b.set(breakerHalfOpen)
		b.probing = true
		return true, 0
	case breakerHalfOpen:
		if b.probing {
			return false, max(time.Millisecond, b.cooldown/20)
		}
		b.probing = true
		return true, 0
	}
	return true, 0
}

// record notes the outcome of a request that allow let through: ok is
// false for a failure that says the target is unwell (no answer, 429,
// 5xx).
func (b *breaker) record(ok bool, now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.probing = false
	if ok {
		b.failures = 0
		b.set(breakerClosed)
		return
	}
	b.failures++
	if b.state == breakerHalfOpen || b.failures >= b.threshold {
		b.openUntil = now.Add(b.cooldown)
		b.set(breakerOpen)
	}
}

func (b *breaker) set(s int) {
	if b.state != s {
		b.state = s
		if b.onChange != nil {
			b.onChange(s)
		}
	}
}
