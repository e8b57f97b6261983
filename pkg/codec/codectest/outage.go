package codectest

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
)

// Outage fronts a Registry and answers every request with 503 while it is
// down: a schema registry outage, for the tests of what a service does
// with records it cannot decode for now.
type Outage struct {
	srv  *httptest.Server
	down atomic.Bool
}

// NewOutage returns an Outage in front of reg, up.
func NewOutage(reg *Registry) *Outage {
	target, err := url.Parse(reg.URL())
	if err != nil {
		panic(err) // httptest's own URL
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	o := &Outage{}
	o.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if o.down.Load() {
			writeError(w, http.StatusServiceUnavailable, 50301, "registry unavailable (test outage)")
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	return o
}

// URL is the front's base URL.
func (o *Outage) URL() string { return o.srv.URL }

// SetDown starts (true) or ends (false) the outage.
func (o *Outage) SetDown(down bool) { o.down.Store(down) }

// Close stops the front (not the registry behind it).
func (o *Outage) Close() { o.srv.Close() }
