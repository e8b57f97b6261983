package lifecycle

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"
)

// closeLog records the order of Close calls across components.
type closeLog struct {
	mu    sync.Mutex
	names []string
}

func (l *closeLog) add(name string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.names = append(l.names, name)
}

func (l *closeLog) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.names)
}

// worker is a well-behaved component: it runs until cancelled, optionally
// fails or ignores cancellation, and counts its Close calls.
type worker struct {
	ReadyFlag
	name    string
	started chan struct{} // closed when Run starts
	fail    chan error    // Run returns what is sent here
	release chan struct{} // when not nil, Run ignores cancellation until closed
	stopped chan struct{} // closed when Run returns
	closes  atomic.Int32
	log     *closeLog
}

func newWorker(name string, log *closeLog) *worker {
	return &worker{
		name:    name,
		started: make(chan struct{}),
		fail:    make(chan error, 1),
		stopped: make(chan struct{}),
		log:     log,
	}
}

func (w *worker) Name() string { return w.name }

func (w *worker) Run(ctx context.Context) error {
	defer close(w.stopped)
	close(w.started)
	if w.release != nil {
		<-w.release
		return nil
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case err := <-w.fail:
		return err
	}
}

func (w *worker) Close(context.Context) error {
	if w.closes.Add(1) == 1 && w.log != nil {
		w.log.add(w.name)
	}
	return nil
}

// runAsync starts Run in a goroutine and returns a channel with its result.
func runAsync(t *testing.T, ctx context.Context, opts Options, cs ...Component) <-chan error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- Run(ctx, zaptest.NewLogger(t), opts, cs...) }()
	return done
}

// wait returns Run's result, failing the test if Run does not return within a
// generous bound (a hang, not a timing assertion).
func wait(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(time.Minute):
		t.Fatal("Run did not return")
		return nil
	}
}

func TestCancelledComponentsStopAndClose(t *testing.T) {
	var order closeLog
	a, b, c := newWorker("a", &order), newWorker("b", &order), newWorker("c", &order)
	ctx, cancel := context.WithCancel(context.Background())
	done := runAsync(t, ctx, Options{ShutdownTimeout: 10 * time.Second}, a, b, c)
	for _, w := range []*worker{a, b, c} {
		<-w.started
	}
	cancel()
	if err := wait(t, done); err != nil {
		t.Fatalf("Run = %v, want nil after a clean shutdown", err)
	}
	for _, w := range []*worker{a, b, c} {
		select {
		case <-w.stopped:
		default:
			t.Errorf("%s: Run had not returned when Run returned", w.name)
		}
		if n := w.closes.Load(); n != 1 {
			t.Errorf("%s: Close called %d times, want 1", w.name, n)
		}
		if err := w.Close(context.Background()); err != nil {
			t.Errorf("%s: second Close = %v", w.name, err)
		}
	}
	if got, want := order.get(), []string{"c", "b", "a"}; !slices.Equal(got, want) {
		t.Errorf("close order = %v, want %v (reverse)", got, want)
	}
}

func TestStuckComponentMakesRunReturnDeadlineError(t *testing.T) {
	good := newWorker("good", nil)
	stuck := newWorker("stuck", nil)
	stuck.release = make(chan struct{})
	t.Cleanup(func() { close(stuck.release) })

	ctx, cancel := context.WithCancel(context.Background())
	done := runAsync(t, ctx, Options{ShutdownTimeout: 200 * time.Millisecond}, good, stuck)
	<-good.started
	<-stuck.started
	cancel()
	err := wait(t, done)

	var te *ShutdownTimeoutError
	if !errors.As(err, &te) {
		t.Fatalf("Run = %v, want a *ShutdownTimeoutError", err)
	}
	if !slices.Equal(te.Running, []string{"stuck"}) {
		t.Errorf("Running = %v, want [stuck]", te.Running)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Run = %v, want it to wrap context.DeadlineExceeded", err)
	}
	if !strings.Contains(err.Error(), `"stuck"`) {
		t.Errorf("error %q does not name the stuck component", err)
	}
	if good.closes.Load() != 1 {
		t.Errorf("the good component was not closed")
	}
}

func TestFailingComponentStopsTheOthers(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name    string
		result  error // what the failing component's Run returns
		wantErr error
	}{
		{name: "error", result: boom, wantErr: boom},
		{name: "early nil", result: nil, wantErr: ErrReturnedEarly},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			failing, other := newWorker("failing", nil), newWorker("other", nil)
			done := runAsync(t, context.Background(), Options{}, failing, other)
			<-other.started
			failing.fail <- tt.result
			err := wait(t, done)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Run = %v, want %v", err, tt.wantErr)
			}
			var ce *ComponentError
			if !errors.As(err, &ce) || ce.Component != "failing" || ce.Op != "run" {
				t.Fatalf("Run = %v, want a run error of component \"failing\"", err)
			}
			<-other.stopped
			if other.closes.Load() != 1 || failing.closes.Load() != 1 {
				t.Errorf("closes: other %d, failing %d, want 1 each", other.closes.Load(), failing.closes.Load())
			}
		})
	}
}

func TestPanickingComponent(t *testing.T) {
	other := newWorker("other", nil)
	done := runAsync(t, context.Background(), Options{},
		Func("panicky", func(context.Context) error { panic("bad state") }), other)
	err := wait(t, done)
	var ce *ComponentError
	if !errors.As(err, &ce) || ce.Component != "panicky" || !strings.Contains(err.Error(), "panic: bad state") {
		t.Fatalf("Run = %v, want a panic error of component \"panicky\"", err)
	}
	<-other.stopped
}

type failingCloser struct{ *worker }

func (f failingCloser) Close(context.Context) error { return errors.New("flush failed") }

func TestCloseErrorIsReturned(t *testing.T) {
	w := failingCloser{newWorker("flusher", nil)}
	ctx, cancel := context.WithCancel(context.Background())
	done := runAsync(t, ctx, Options{}, w)
	<-w.started
	cancel()
	err := wait(t, done)
	var ce *ComponentError
	if !errors.As(err, &ce) || ce.Component != "flusher" || ce.Op != "close" {
		t.Fatalf("Run = %v, want a close error of component \"flusher\"", err)
	}
}

func TestEntryNames(t *testing.T) {
	tests := []struct {
		name       string
		components []Component
		want       []string
	}{
		{name: "named", components: []Component{newWorker("a", nil), newWorker("b", nil)}, want: []string{"a", "b"}},
		{name: "duplicates", components: []Component{newWorker("a", nil), newWorker("a", nil)}, want: []string{"a", "a#2"}},
		{name: "unnamed uses type", components: []Component{unnamed{}}, want: []string{"lifecycle.unnamed"}},
		{name: "nil skipped", components: []Component{nil, Func("f", nil)}, want: []string{"f"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, e := range newEntries(tt.components) {
				got = append(got, e.name)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("names = %v, want %v", got, tt.want)
			}
		})
	}
}

type unnamed struct{}

func (unnamed) Run(ctx context.Context) error { <-ctx.Done(); return nil }

func TestReadyFlag(t *testing.T) {
	var f ReadyFlag
	if f.Ready() == nil {
		t.Fatal("zero ReadyFlag is ready")
	}
	f.SetReady()
	if err := f.Ready(); err != nil {
		t.Fatalf("after SetReady: %v", err)
	}
	f.SetNotReady(errors.New("rebalancing"))
	if err := f.Ready(); err == nil || err.Error() != "rebalancing" {
		t.Fatalf("after SetNotReady: %v", err)
	}
	f.SetNotReady(nil)
	if f.Ready() == nil {
		t.Fatal("SetNotReady(nil) left the flag ready")
	}
}

func TestRunMain(t *testing.T) {
	tests := []struct {
		name     string
		fn       func(ctx context.Context) error
		wantCode int
		wantErr  string
	}{
		{name: "ok", fn: func(context.Context) error { return nil }, wantCode: 0},
		{name: "error", fn: func(context.Context) error { return errors.New("bad config") }, wantCode: 1, wantErr: "svc: bad config\n"},
		{
			name: "SIGTERM cancels the context",
			fn: func(ctx context.Context) error {
				if err := syscall.Kill(syscall.Getpid(), syscall.SIGTERM); err != nil {
					return err
				}
				<-ctx.Done()
				return nil
			},
			wantCode: 0,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			if code := runMain("svc", tt.fn, &stderr); code != tt.wantCode {
				t.Fatalf("code = %d, want %d (stderr %q)", code, tt.wantCode, stderr.String())
			}
			if stderr.String() != tt.wantErr {
				t.Fatalf("stderr = %q, want %q", stderr.String(), tt.wantErr)
			}
		})
	}
}

// getJSON fetches url and decodes its JSON body.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read %s: %v", url, err)
	}
	return resp.StatusCode, string(b)
}

func getReadiness(t *testing.T, admin *Admin) (int, readiness) {
	t.Helper()
	code, body := get(t, admin.URL()+"/readyz")
	var r readiness
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatalf("/readyz body %q: %v", body, err)
	}
	return code, r
}

// pollReadiness polls /readyz until cond holds, failing after a minute.
func pollReadiness(t *testing.T, admin *Admin, cond func(int, readiness) bool) (int, readiness) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		code, r := getReadiness(t, admin)
		if cond(code, r) {
			return code, r
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz never reached the expected state; last %d %+v", code, r)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func newTestAdmin(t *testing.T, cfg AdminConfig) *Admin {
	t.Helper()
	cfg.Addr = "127.0.0.1:0"
	a, err := NewAdmin(cfg)
	if err != nil {
		t.Fatalf("NewAdmin: %v", err)
	}
	t.Cleanup(func() { _ = a.Close(context.Background()) })
	return a
}

func TestReadyzOverHTTP(t *testing.T) {
	reg := prometheus.NewRegistry()
	counter := prometheus.NewCounter(prometheus.CounterOpts{Name: "freshet_test_events_total", Help: "test"})
	reg.MustRegister(counter)
	counter.Add(3)
	admin := newTestAdmin(t, AdminConfig{Gatherer: reg})

	consumer, server := newWorker("consumer", nil), newWorker("server", nil)
	plain := Func("plain", func(ctx context.Context) error { <-ctx.Done(); return nil })
	ctx, cancel := context.WithCancel(context.Background())
	done := runAsync(t, ctx, Options{Admin: admin}, consumer, server, plain)

	// Started, but neither Readier has said it is ready.
	code, r := pollReadiness(t, admin, func(_ int, r readiness) bool {
		return len(r.Components) == 3 && !strings.Contains(fmtStatuses(r), "not started")
	})
	if code != http.StatusServiceUnavailable || r.Status != "not_ready" || !slices.Equal(r.NotReady, []string{"consumer", "server"}) {
		t.Fatalf("/readyz = %d %+v, want 503 listing consumer and server", code, r)
	}

	consumer.SetReady()
	code, r = getReadiness(t, admin)
	if code != http.StatusServiceUnavailable || !slices.Equal(r.NotReady, []string{"server"}) {
		t.Fatalf("/readyz = %d %+v, want 503 listing server", code, r)
	}

	server.SetReady()
	code, r = getReadiness(t, admin)
	if code != http.StatusOK || r.Status != "ready" || len(r.NotReady) != 0 {
		t.Fatalf("/readyz = %d %+v, want 200 ready", code, r)
	}

	server.SetNotReady(errors.New("cache warming"))
	code, r = getReadiness(t, admin)
	if code != http.StatusServiceUnavailable || !strings.Contains(fmtStatuses(r), "server: cache warming") {
		t.Fatalf("/readyz = %d %+v, want 503 with the reason", code, r)
	}

	if code, body := get(t, admin.URL()+"/healthz"); code != http.StatusOK || !strings.Contains(body, `"ok"`) {
		t.Fatalf("/healthz = %d %q", code, body)
	}
	if code, body := get(t, admin.URL()+"/metrics"); code != http.StatusOK || !strings.Contains(body, "freshet_test_events_total 3") {
		t.Fatalf("/metrics = %d %q, want the registry's counter", code, body)
	}
	if code, _ := get(t, admin.URL()+"/debug/pprof/"); code != http.StatusNotFound {
		t.Fatalf("/debug/pprof/ = %d, want 404 when pprof is off", code)
	}

	cancel()
	if err := wait(t, done); err != nil {
		t.Fatalf("Run = %v", err)
	}
	if _, err := http.Get(admin.URL() + "/healthz"); err == nil {
		t.Fatal("admin server still answers after Run returned")
	}
	if err := admin.Close(context.Background()); err != nil {
		t.Fatalf("second Close of the admin server = %v", err)
	}
}

func fmtStatuses(r readiness) string {
	var parts []string
	for _, c := range r.Components {
		parts = append(parts, c.Name+": "+c.Reason)
	}
	return strings.Join(parts, "; ")
}

func TestReadyzDuringShutdown(t *testing.T) {
	admin := newTestAdmin(t, AdminConfig{})
	draining := make(chan struct{})
	release := make(chan struct{})
	slow := Func("slow", func(ctx context.Context) error {
		<-ctx.Done()
		close(draining)
		<-release
		return nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := runAsync(t, ctx, Options{Admin: admin}, slow)
	pollReadiness(t, admin, func(code int, _ readiness) bool { return code == http.StatusOK })

	cancel()
	<-draining
	code, r := getReadiness(t, admin)
	healthz, _ := get(t, admin.URL()+"/healthz")
	close(release)
	if code != http.StatusServiceUnavailable || r.Status != "shutting_down" {
		t.Fatalf("/readyz while draining = %d %+v, want 503 shutting_down", code, r)
	}
	if healthz != http.StatusOK {
		t.Fatalf("/healthz while draining = %d, want 200", healthz)
	}
	if err := wait(t, done); err != nil {
		t.Fatalf("Run = %v", err)
	}
}

func TestAdminPprof(t *testing.T) {
	admin := newTestAdmin(t, AdminConfig{Pprof: true})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- admin.Run(ctx) }()
	code, body := get(t, admin.URL()+"/debug/pprof/")
	if code != http.StatusOK || !strings.Contains(body, "goroutine") {
		t.Fatalf("/debug/pprof/ = %d, want the pprof index", code)
	}
	cancel()
	if err := wait(t, done); err != nil {
		t.Fatalf("admin Run = %v", err)
	}
}

func TestNewAdminErrors(t *testing.T) {
	taken := newTestAdmin(t, AdminConfig{})
	tests := []struct {
		name    string
		addr    string
		wantErr string
	}{
		{name: "empty", addr: "", wantErr: "admin addr is empty"},
		{name: "taken", addr: taken.Addr().String(), wantErr: taken.Addr().String()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := NewAdmin(AdminConfig{Addr: tt.addr})
			if err == nil {
				_ = a.Close(context.Background())
				t.Fatal("NewAdmin succeeded")
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("NewAdmin = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

// The healthcheck command asks /readyz: an error with the status and the
// reason while a component is not ready, nil once it is, an error when
// nothing listens.
func TestHealthcheck(t *testing.T) {
	admin := newTestAdmin(t, AdminConfig{})
	w := newWorker("consumer", nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := runAsync(t, ctx, Options{Admin: admin}, w)
	pollReadiness(t, admin, func(_ int, r readiness) bool { return len(r.Components) == 1 })

	err := Healthcheck(context.Background(), admin.Addr().String())
	if err == nil || !strings.Contains(err.Error(), "503") || !strings.Contains(err.Error(), "consumer") {
		t.Fatalf("healthcheck of a component not ready: %v, want 503 naming consumer", err)
	}
	w.SetReady()
	if err := Healthcheck(context.Background(), admin.Addr().String()); err != nil {
		t.Fatalf("healthcheck when ready: %v", err)
	}
	cancel()
	<-done
	if err := Healthcheck(context.Background(), admin.Addr().String()); err == nil {
		t.Fatal("healthcheck after the admin server stopped: nil, want an error")
	}
}
