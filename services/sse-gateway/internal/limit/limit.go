package limit

import (
	"math"
	"sync"
	"time"
)

// Counter counts holders per key, up to a maximum per key. Zero max means no
// limit.
type Counter struct {
	max int
	mu  sync.Mutex
	n   map[string]int
}

// NewCounter returns a Counter allowing max holders per key (0: unlimited).
func NewCounter(max int) *Counter { return &Counter{max: max, n: map[string]int{}} }

// Acquire adds a holder of key and reports true, or reports false when key
// already has max holders.
func (c *Counter) Acquire(key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.max > 0 && c.n[key] >= c.max {
		return false
	}
	c.n[key]++
	return true
}

// Release removes a holder of key; each successful Acquire needs one.
func (c *Counter) Release(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n[key] <= 1 {
		delete(c.n, key)
		return
	}
	c.n[key]--
}

// Count returns the holders of key.
func (c *Counter) Count(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[key]
}

// DefaultMaxKeys bounds the buckets of a Rate when its MaxKeys is zero.
const DefaultMaxKeys = 100_000

// Rate is a token bucket per key: Burst tokens, refilled at PerSecond.
// Zero PerSecond means no limit.
type Rate struct {
	PerSecond float64
	Burst     int
	MaxKeys   int

	mu      sync.Mutex
	buckets map[string]*bucket
	swept   time.Time
}

type bucket struct {
	tokens float64
	last   time.Time
}

// Allow takes a token of key at now. When there is none it returns false
// and how long until one is back.
func (r *Rate) Allow(key string, now time.Time) (bool, time.Duration) {
	if r.PerSecond <= 0 {
		return true, 0
	}
	burst := float64(max(r.Burst, 1))
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.buckets == nil {
		r.buckets = map[string]*bucket{}
	}
	if now.Sub(r.swept) > time.Minute {
		r.sweep(now, burst)
	}
	b := r.buckets[key]
	if b == nil {
		maxKeys := r.MaxKeys
		if maxKeys == 0 {
			maxKeys = DefaultMaxKeys
		}
		if len(r.buckets) >= maxKeys {
			r.sweep(now, burst)
			if len(r.buckets) >= maxKeys {
				return false, time.Second
			}
		}
		b = &bucket{tokens: burst, last: now}
		r.buckets[key] = b
	}
	b.tokens = math.Min(burst, b.tokens+now.Sub(b.last).Seconds()*r.PerSecond)
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	wait := time.Duration((1 - b.tokens) / r.PerSecond * float64(time.Second))
	return false, wait
}

// sweep drops the buckets that are full again: they carry no state.
func (r *Rate) sweep(now time.Time, burst float64) {
	r.swept = now
	for k, b := range r.buckets {
		if b.tokens+now.Sub(b.last).Seconds()*r.PerSecond >= burst {
			delete(r.buckets, k)
		}
	}
}
