// Package lifecycle runs the long-lived components of a service together and
// stops them cleanly.
//
// # Contract of a component
//
// A [Component] has one required method, Run(ctx) error, which does the
// component's work and blocks until ctx is cancelled, then returns nil (or an
// error that wraps context.Canceled, which counts as nil). Returning before
// ctx is cancelled, with or without an error, stops the whole service: a
// service whose consumer died must not keep answering /healthz.
//
// Optional interfaces, found by type assertion:
//
//   - [Named]: Name() string, used in logs, errors and /readyz. Without it the
//     component is named by its Go type.
//   - [Readier]: Ready() error, nil when the component can take work, else an
//     error saying why not. It must be fast and must not block: /readyz calls
//     it on every probe. Without it a component is ready while Run runs.
//   - [Closer]: Close(ctx) error, called once after Run returned (or the
//     shutdown deadline passed), in the reverse order of the components, to
//     release what Run left open (clients, files). It must be safe to call
//     twice and should give up when ctx is done.
//
// # Shutdown
//
// [Run] starts every component, each in its own goroutine, and shuts down
// when the parent context is cancelled (a signal, through [Main]) or when any
// component's Run returns. Shutdown goes in this order, all within one
// deadline ([Options.ShutdownTimeout], default 30s):
//
//  1. /readyz answers 503, so load balancers stop sending work;
//  2. the context of every Run is cancelled: stop taking work, finish or hand
//     back what is in flight;
//  3. Run waits for every Run to return;
//  4. Close is called on every [Closer], last component first;
//  5. the admin server, if any, stops last, so /metrics can be scraped while
//     the others drain.
//
// If the deadline passes, Run stops waiting and returns a
// [*ShutdownTimeoutError] naming the components that had not returned; Run
// itself always returns. Close calls still get a grace of a tenth of the
// deadline when waiting for Run used it up, so a hung component does not keep
// the others from releasing their resources.
//
// # Admin server
//
// [Admin] serves /healthz, /readyz, /metrics (Prometheus) and, optionally,
// /debug/pprof/ on its own listener. Give it to Run in [Options.Admin].
//
// # Concurrency
//
// Run may be called once per set of components. [Admin] handlers are safe for
// concurrent requests; [ReadyFlag] is safe for concurrent use.
package lifecycle
