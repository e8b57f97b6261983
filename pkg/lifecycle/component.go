package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
)

// Component is a long-running part of a service: a consumer, an HTTP server,
// a batcher.
type Component interface {
	// Run does the component's work. It blocks until ctx is cancelled and
	// then returns nil (an error wrapping context.Canceled is taken as nil).
	// Any return before ctx is cancelled stops the whole service, and a
	// non-nil error is what the service exits with.
	Run(ctx context.Context) error
}

// Named is implemented by components that have a name for logs, errors and
// /readyz. Names should be short and stable: "consumer", "http", "purger".
type Named interface {
	// Name returns the component's name.
	Name() string
}

// Readier is implemented by components that are not ready to take work as
// soon as Run starts (a consumer restoring state, a server warming a cache).
type Readier interface {
	// Ready returns nil when the component can take work, or an error that
	// says why not ("restoring profiles: 40% done"). It must return quickly
	// and must not block: /readyz calls it on every probe.
	Ready() error
}

// Closer is implemented by components that hold resources to release after
// Run returned.
type Closer interface {
	// Close releases the component's resources. It is called once, after
	// Run returned or the shutdown deadline passed, and should give up when
	// ctx is done. Calling it a second time must be harmless and return nil.
	Close(ctx context.Context) error
}

// Func makes a component named name out of a function with Run's contract.
func Func(name string, run func(ctx context.Context) error) Component {
	return funcComponent{name: name, run: run}
}

type funcComponent struct {
	name string
	run  func(ctx context.Context) error
}

func (f funcComponent) Name() string                  { return f.name }
func (f funcComponent) Run(ctx context.Context) error { return f.run(ctx) }

// errNotReadyYet is the reason a zero ReadyFlag gives.
var errNotReadyYet = errors.New("not ready yet")

// ReadyFlag is a [Readier] to embed in a component, set by the component as it
// goes. The zero value is not ready ("not ready yet"). It is safe for
// concurrent use.
type ReadyFlag struct {
	state atomic.Pointer[error]
}

// SetReady marks the component ready.
func (f *ReadyFlag) SetReady() {
	var nilErr error
	f.state.Store(&nilErr)
}

// SetNotReady marks the component not ready for reason. A nil reason is
// reported as "not ready".
func (f *ReadyFlag) SetNotReady(reason error) {
	if reason == nil {
		reason = errors.New("not ready")
	}
	f.state.Store(&reason)
}

// Ready implements [Readier].
func (f *ReadyFlag) Ready() error {
	p := f.state.Load()
	if p == nil {
		return errNotReadyYet
	}
	return *p
}

// nameOf returns the name of c: Name() for a Named component, else its Go
// type.
func nameOf(c Component) string {
	if n, ok := c.(Named); ok {
		if name := n.Name(); name != "" {
			return name
		}
	}
	return fmt.Sprintf("%T", c)
}
