package lifecycle

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// AdminConfig says how [NewAdmin] builds the admin server. It is plain data.
type AdminConfig struct {
	// Addr is the address to listen on, host:port ("127.0.0.1:0" picks a
	// free port; see [Admin.Addr]). Required.
	Addr string
	// Gatherer is what /metrics serves. Nil means
	// prometheus.DefaultGatherer, which includes the Go and process
	// collectors.
	Gatherer prometheus.Gatherer
	// Pprof serves net/http/pprof under /debug/pprof/ when true. Off by
	// default: profiles expose internals and cost CPU.
	Pprof bool
}

// Admin is the HTTP server for operators and orchestrators:
//
//   - GET /healthz: 200 {"status":"ok"} while the process serves requests
//     (liveness).
//   - GET /readyz: 200 {"status":"ready",...} when every component run by
//     [Run] is running and ready by its [Readier]; otherwise 503 with
//     {"status":"not_ready" or "shutting_down", "not_ready":[names],
//     "components":[{"name","ready","reason"}]}.
//   - GET /metrics: Prometheus text exposition of the configured gatherer.
//   - /debug/pprof/: the Go profiler, when [AdminConfig.Pprof] is set.
//
// Its handlers are safe for concurrent use.
type Admin struct {
	ln       net.Listener
	srv      *http.Server
	mux      *http.ServeMux
	entries  atomic.Pointer[[]*entry]
	draining atomic.Bool
	ran      atomic.Bool
	close    sync.Once
	closeErr error
}

var (
	_ Component = (*Admin)(nil)
	_ Closer    = (*Admin)(nil)
	_ Named     = (*Admin)(nil)
)

// NewAdmin listens on cfg.Addr at once, so that a taken port fails the start
// of the service, and returns the server, which serves once [Admin.Run]
// runs (usually through [Options.Admin]).
func NewAdmin(cfg AdminConfig) (*Admin, error) {
	if cfg.Addr == "" {
		return nil, errors.New("lifecycle: admin addr is empty")
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("lifecycle: admin listen on %q: %w", cfg.Addr, err)
	}
	g := cfg.Gatherer
	if g == nil {
		g = prometheus.DefaultGatherer
	}
	a := &Admin{ln: ln, mux: http.NewServeMux()}
	a.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	a.mux.HandleFunc("GET /readyz", a.readyz)
	a.mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	if cfg.Pprof {
		a.mux.HandleFunc("/debug/pprof/", pprof.Index)
		a.mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		a.mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		a.mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		a.mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	a.srv = &http.Server{
		Handler:           a.mux,
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       60 * time.Second,
	}
	return a, nil
}

// Name implements [Named]: "admin".
func (a *Admin) Name() string { return "admin" }

// Addr is the address the server listens on, with the port chosen when
// AdminConfig.Addr asked for port 0.
func (a *Admin) Addr() net.Addr { return a.ln.Addr() }

// URL is "http://" followed by [Admin.Addr].
func (a *Admin) URL() string { return "http://" + a.ln.Addr().String() }

// Handle adds a handler to the admin server's mux (pattern as for
// http.ServeMux). Call it before Run.
func (a *Admin) Handle(pattern string, h http.Handler) { a.mux.Handle(pattern, h) }

// Handler returns the admin server's handler, for tests or to serve it on
// another listener too.
func (a *Admin) Handler() http.Handler { return a.mux }

// Run serves until ctx is cancelled, then stops accepting connections and
// waits up to 5s for requests in flight. Call it once.
func (a *Admin) Run(ctx context.Context) error {
	if !a.ran.CompareAndSwap(false, true) {
		return errors.New("lifecycle: admin server already ran")
	}
	served := make(chan error, 1)
	go func() { served <- a.srv.Serve(a.ln) }()
	select {
	case err := <-served:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("serve admin: %w", err)
	case <-ctx.Done():
	}
	shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := a.srv.Shutdown(shutCtx); err != nil {
		_ = a.srv.Close()
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve admin: %w", err)
	}
	return nil
}

// Close closes the listener and every connection. It is safe to call twice,
// and before or without Run.
func (a *Admin) Close(context.Context) error {
	a.close.Do(func() {
		err := a.srv.Close()
		if lerr := a.ln.Close(); lerr != nil && !errors.Is(lerr, net.ErrClosed) && err == nil {
			err = lerr
		}
		a.closeErr = err
	})
	return a.closeErr
}

// watch sets the components /readyz reports on.
func (a *Admin) watch(entries []*entry) { a.entries.Store(&entries) }

// setDraining makes /readyz answer 503 from now on.
func (a *Admin) setDraining() { a.draining.Store(true) }

type componentStatus struct {
	Name   string `json:"name"`
	Ready  bool   `json:"ready"`
	Reason string `json:"reason,omitempty"`
}

type readiness struct {
	Status     string            `json:"status"`
	NotReady   []string          `json:"not_ready,omitempty"`
	Components []componentStatus `json:"components"`
}

func (a *Admin) readyz(w http.ResponseWriter, _ *http.Request) {
	body := readiness{Status: "ready", Components: []componentStatus{}}
	if p := a.entries.Load(); p != nil {
		for _, e := range *p {
			st := componentStatus{Name: e.name, Ready: true}
			if err := e.Ready(); err != nil {
				st.Ready, st.Reason = false, err.Error()
				body.NotReady = append(body.NotReady, e.name)
			}
			body.Components = append(body.Components, st)
		}
	}
	code := http.StatusOK
	switch {
	case a.draining.Load():
		body.Status, code = "shutting_down", http.StatusServiceUnavailable
	case len(body.NotReady) > 0:
		body.Status, code = "not_ready", http.StatusServiceUnavailable
	}
	writeJSON(w, code, body)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
