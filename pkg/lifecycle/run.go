package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/freshet/freshet/pkg/logging"
)

// DefaultShutdownTimeout is the shutdown deadline when
// [Options.ShutdownTimeout] is zero.
const DefaultShutdownTimeout = 30 * time.Second

// ErrReturnedEarly is the error of a component whose Run returned nil before
// its context was cancelled.
var ErrReturnedEarly = errors.New("run returned before shutdown")

// Options tune [Run]. The zero value is valid.
type Options struct {
	// ShutdownTimeout bounds the shutdown, from the moment it begins to
	// the return of Run: waiting for every Run to return, then every
	// Close. When waiting for Run uses it all up, the Close calls get a
	// grace of a tenth of it more, so Run returns within 1.1 times
	// ShutdownTimeout. Zero means DefaultShutdownTimeout (30s).
	ShutdownTimeout time.Duration
	// Admin, when not nil, is served for as long as Run runs, reports the
	// readiness of the components on /readyz, and is stopped last. Run
	// closes it.
	Admin *Admin
}

// ComponentError is an error of one component: its Run failed or returned
// early, its Close failed, or it panicked.
type ComponentError struct {
	// Component is the component's name.
	Component string
	// Op is what failed: "run" or "close".
	Op string
	// Err is the error the component returned.
	Err error
}

// Error implements error.
func (e *ComponentError) Error() string {
	return fmt.Sprintf("component %q: %s: %v", e.Component, e.Op, e.Err)
}

// Unwrap returns Err.
func (e *ComponentError) Unwrap() error { return e.Err }

// ShutdownTimeoutError is returned by [Run] when the shutdown deadline passed
// before every component stopped. It wraps context.DeadlineExceeded.
type ShutdownTimeoutError struct {
	// Timeout is the deadline that passed.
	Timeout time.Duration
	// Running names the components whose Run had not returned.
	Running []string
	// Closing names the components whose Close had not returned.
	Closing []string
}

// Error implements error.
func (e *ShutdownTimeoutError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "shutdown did not finish within %s", e.Timeout)
	if len(e.Running) > 0 {
		fmt.Fprintf(&b, ": still running: %s", quoteAll(e.Running))
	}
	if len(e.Closing) > 0 {
		fmt.Fprintf(&b, ": still closing: %s", quoteAll(e.Closing))
	}
	return b.String()
}

// Unwrap returns context.DeadlineExceeded.
func (e *ShutdownTimeoutError) Unwrap() error { return context.DeadlineExceeded }

func quoteAll(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = strconv.Quote(n)
	}
	return strings.Join(q, ", ")
}

// Entry states.
const (
	stateStarting int32 = iota
	stateRunning
	stateStopped
)

// entry is one component as Run tracks it.
type entry struct {
	name  string
	c     Component
	state atomic.Int32
	done  chan struct{} // closed when Run returned; err and early are set before
	err   error
	early bool // Run returned before its context was cancelled
}

// Name implements Named.
func (e *entry) Name() string { return e.name }

// Ready reports the component's readiness as /readyz sees it: running, and
// ready by its own Readier if it has one.
func (e *entry) Ready() (err error) {
	switch e.state.Load() {
	case stateStarting:
		return errors.New("not started")
	case stateStopped:
		return errors.New("stopped")
	}
	r, ok := e.c.(Readier)
	if !ok {
		return nil
	}
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("ready panicked: %v", p)
		}
	}()
	return r.Ready()
}

func (e *entry) run(ctx context.Context, returned chan<- *entry) {
	defer func() {
		if p := recover(); p != nil {
			e.err = fmt.Errorf("panic: %v\n%s", p, debug.Stack())
			e.early = ctx.Err() == nil
		}
		e.state.Store(stateStopped)
		close(e.done)
		returned <- e
	}()
	e.state.Store(stateRunning)
	err := e.c.Run(ctx)
	e.early = ctx.Err() == nil
	if !e.early && errors.Is(err, context.Canceled) {
		err = nil
	}
	if err == nil && e.early {
		err = ErrReturnedEarly
	}
	e.err = err
}

// newEntries names the components, making names unique with a "#2" suffix.
func newEntries(components []Component) []*entry {
	seen := make(map[string]int, len(components))
	entries := make([]*entry, 0, len(components))
	for _, c := range components {
		if c == nil {
			continue
		}
		name := nameOf(c)
		seen[name]++
		if n := seen[name]; n > 1 {
			name = name + "#" + strconv.Itoa(n)
		}
		entries = append(entries, &entry{name: name, c: c, done: make(chan struct{})})
	}
	return entries
}

// Run runs the components until ctx is cancelled or one of them stops, then
// shuts them all down as the package documentation describes, within
// opts.ShutdownTimeout. It returns nil when the shutdown was asked for
// (ctx cancelled) and went cleanly; otherwise the errors joined: the
// [*ComponentError] of the component that stopped first, those of components
// that failed while stopping or closing, and a [*ShutdownTimeoutError] when
// the deadline passed. Run always returns, even when a component ignores
// cancellation.
//
// log receives one line when the shutdown begins (with its reason) and one
// when it ends; errors are returned, not logged. nil means no logging.
func Run(ctx context.Context, log *zap.Logger, opts Options, components ...Component) error {
	if log == nil {
		log = zap.NewNop()
	}
	timeout := opts.ShutdownTimeout
	if timeout <= 0 {
		timeout = DefaultShutdownTimeout
	}
	entries := newEntries(components)
	admin := opts.Admin

	// The admin server outlives the components: its context is cancelled
	// only after they stopped.
	var adminDone chan error
	stopAdmin := func() {}
	if admin != nil {
		admin.watch(entries)
		var adminCtx context.Context
		adminCtx, stopAdmin = context.WithCancel(context.WithoutCancel(ctx))
		defer stopAdmin()
		adminDone = make(chan error, 1)
		go func() { adminDone <- admin.Run(adminCtx) }()
	}

	// The components' context is cancelled by Run itself, after /readyz
	// turned 503, never directly by the parent.
	runCtx, cancelRun := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelRun()
	returned := make(chan *entry, len(entries))
	for _, e := range entries {
		go e.run(runCtx, returned)
	}

	var errs []error
	var first *entry
	select {
	case <-ctx.Done():
		log.Info("shutting down", zap.String("reason", context.Cause(ctx).Error()))
	case first = <-returned:
		if first.err != nil {
			errs = append(errs, &ComponentError{Component: first.name, Op: "run", Err: first.err})
		}
		reason := "component stopped"
		if !first.early {
			reason = context.Cause(ctx).Error()
		}
		log.Info("shutting down", zap.String("reason", reason), logging.Component(first.name))
	case err := <-adminDone:
		adminDone = nil
		errs = append(errs, &ComponentError{Component: admin.Name(), Op: "run", Err: fmt.Errorf("stopped early: %w", err)})
		log.Info("shutting down", zap.String("reason", "admin server stopped"))
	}
	start := time.Now()

	// 1. Stop taking work.
	if admin != nil {
		admin.setDraining()
	}
	cancelRun()
	shutCtx, cancelShut := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancelShut()

	// 2. Wait for every Run to return.
	timedOut := &ShutdownTimeoutError{Timeout: timeout}
	for _, e := range entries {
		select {
		case <-e.done:
			if e != first && e.err != nil {
				errs = append(errs, &ComponentError{Component: e.name, Op: "run", Err: e.err})
			}
		case <-shutCtx.Done():
			timedOut.Running = append(timedOut.Running, e.name)
		}
	}

	// 3. Close, last component first. When waiting for Run used up the
	// deadline, Close still gets a grace of a tenth of it, so that a
	// component that hung in Run does not keep the others from releasing
	// their resources.
	closeCtx := shutCtx
	if shutCtx.Err() != nil {
		var cancelClose context.CancelFunc
		closeCtx, cancelClose = context.WithTimeout(context.WithoutCancel(ctx), timeout/10)
		defer cancelClose()
	}
	timedOut.Closing, errs = closeAll(closeCtx, entries, errs)

	// 4. Stop the admin server.
	if admin != nil {
		stopAdmin()
		if adminDone != nil {
			select {
			case err := <-adminDone:
				if err != nil {
					errs = append(errs, &ComponentError{Component: admin.Name(), Op: "run", Err: err})
				}
			case <-closeCtx.Done():
				timedOut.Closing = append(timedOut.Closing, admin.Name())
			}
		}
		if err := admin.Close(closeCtx); err != nil {
			errs = append(errs, &ComponentError{Component: admin.Name(), Op: "close", Err: err})
		}
	}

	if len(timedOut.Running) > 0 || len(timedOut.Closing) > 0 {
		errs = append(errs, timedOut)
	}
	err := errors.Join(errs...)
	log.Info("shutdown complete", zap.Duration("took", time.Since(start)), zap.Bool("clean", err == nil))
	return err
}

// closeAll calls Close on every Closer in reverse order, each waited for
// until ctx is done. When ctx is done first, the closers after the one that
// hung are called in the background once it returns (keeping the order),
// with the expired ctx, and are not waited for. It returns the names of the
// components whose Close had not returned in time.
func closeAll(ctx context.Context, entries []*entry, errs []error) (stuck []string, _ []error) {
	var closers []*entry
	for i := len(entries) - 1; i >= 0; i-- {
		if _, ok := entries[i].c.(Closer); ok {
			closers = append(closers, entries[i])
		}
	}
	for i, e := range closers {
		done := make(chan error, 1)
		go func() { done <- closeOne(ctx, e) }()
		select {
		case err := <-done:
			if err != nil {
				errs = append(errs, &ComponentError{Component: e.name, Op: "close", Err: err})
			}
		case <-ctx.Done():
			stuck = append(stuck, e.name)
			rest := closers[i+1:]
			go func() {
				<-done // keep the reverse order
				for _, r := range rest {
					_ = closeOne(ctx, r)
				}
			}()
			return stuck, errs
		}
	}
	return stuck, errs
}

func closeOne(ctx context.Context, e *entry) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v\n%s", p, debug.Stack())
		}
	}()
	return e.c.(Closer).Close(ctx)
}
