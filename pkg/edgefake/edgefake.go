package edgefake

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"time"
)

// Options configure a fake. The zero value is valid: no token checked, no
// rate limit, the provider's limits.
type Options struct {
	// Token is the API token the fake accepts; empty accepts any.
	Token string
	// ID is the Fastly service id or Cloudflare zone id the fake serves;
	// empty accepts any.
	ID string
	// Rate is the requests per second the fake allows (a token bucket);
	// zero means no limit. Past it, the answer is 429 with Retry-After.
	Rate float64
	// Burst is the bucket size; zero means max(1, Rate).
	Burst int
	// MaxPerRequest is the most items a request may hold; zero means the
	// provider's: Fastly 256 keys, Cloudflare 100.
	MaxPerRequest int
	// Latency delays every answer, as a global purge takes time (both
	// providers advertise about 150ms).
	Latency time.Duration
}

// Purge is one request the fake accepted.
type Purge struct {
	// At is when it was accepted.
	At time.Time
	// Keys are surrogate keys (Fastly) or cache tags (Cloudflare).
	Keys []string
	// URLs are absolute urls (Fastly: https://host/path; Cloudflare: files).
	URLs []string
	// Prefixes are Cloudflare prefixes (host/path, no scheme).
	Prefixes []string
	// Soft is set by Fastly-Soft-Purge: 1.
	Soft bool
}

// Server is a running fake provider.
type Server struct {
	srv  *httptest.Server
	opts Options

	mu         sync.Mutex
	purges     []Purge
	requests   int
	throttled  int
	refused    int
	violations []string
	tokens     float64
	last       time.Time
	fail       []failure
}

type failure struct {
	status     int
	retryAfter time.Duration
}

func newServer(opts Options, handler func(s *Server) http.Handler) *Server {
	s := &Server{opts: opts}
	if s.opts.Rate > 0 && s.opts.Burst == 0 {
		s.opts.Burst = int(math.Max(1, math.Ceil(s.opts.Rate)))
	}
	s.tokens = float64(s.opts.Burst)
	s.srv = httptest.NewServer(handler(s))
	return s
}

// URL is the fake's base address, e.g. http://127.0.0.1:41234: what a
// target's address is set to.
func (s *Server) URL() string { return s.srv.URL }

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// Purges returns the purges accepted so far, in order.
func (s *Server) Purges() []Purge {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Purge(nil), s.purges...)
}

// Requests returns the number of requests received, refused ones included.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// Throttled returns the number of requests answered 429.
func (s *Server) Throttled() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.throttled
}

// Refused returns the number of requests refused for their token.
func (s *Server) Refused() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refused
}

// Violations describes the requests that broke the provider's documented
// format or limits (more items than allowed, a malformed body); a correct
// client causes none.
func (s *Server) Violations() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.violations...)
}

// Purged reports how many accepted purges named key (a key, tag, url or
// prefix).
func (s *Server) Purged(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, p := range s.purges {
		for _, list := range [][]string{p.Keys, p.URLs, p.Prefixes} {
			for _, k := range list {
				if k == key {
					n++
				}
			}
		}
	}
	return n
}

// FailNext makes the next n requests (after the token check) fail with
// status, and Retry-After when retryAfter is positive (whole seconds,
// rounded up).
func (s *Server) FailNext(n, status int, retryAfter time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.fail = append(s.fail, failure{status, retryAfter})
	}
}

// admit counts a request and applies, in order: the token, forced
// failures, the rate limit. It returns 0 when the request may proceed, or
// the status and Retry-After to answer.
func (s *Server) admit(tokenOK bool) (status int, retryAfter time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	if !tokenOK {
		s.refused++
		return -1, 0
	}
	if len(s.fail) > 0 {
		f := s.fail[0]
		s.fail = s.fail[1:]
		if f.status == http.StatusTooManyRequests {
			s.throttled++
		}
		return f.status, f.retryAfter
	}
	if s.opts.Rate <= 0 {
		return 0, 0
	}
	now := time.Now()
	if !s.last.IsZero() {
		s.tokens = math.Min(float64(s.opts.Burst), s.tokens+now.Sub(s.last).Seconds()*s.opts.Rate)
	}
	s.last = now
	if s.tokens >= 1 {
		s.tokens--
		return 0, 0
	}
	s.throttled++
	return http.StatusTooManyRequests, time.Duration((1 - s.tokens) / s.opts.Rate * float64(time.Second))
}

func (s *Server) violation(msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.violations = append(s.violations, msg)
}

func (s *Server) accept(p Purge) {
	p.At = time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.purges = append(s.purges, p)
}

func (s *Server) delay(r *http.Request) {
	if s.opts.Latency <= 0 {
		return
	}
	select {
	case <-time.After(s.opts.Latency):
	case <-r.Context().Done():
	}
}

// setRetryAfter writes Retry-After in whole seconds, at least 1.
func setRetryAfter(w http.ResponseWriter, d time.Duration) {
	if d <= 0 {
		return
	}
	secs := int(math.Ceil(d.Seconds()))
	w.Header().Set("Retry-After", strconv.Itoa(max(1, secs)))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func purgeID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
