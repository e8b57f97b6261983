// Package scenario is the frame every scenario of the load generator runs
// in: the [Scenario] interface, the [Env] it gets (the running stack,
// progress output, Kafka and Postgres clients that only reach loopback),
// and [Run], which bounds a scenario in time, samples the load average and
// the stack's CPU time around it, and turns its outcome into a
// report.Result.
//
// Scenarios run one after another; an Env is shared by them but used by
// one scenario at a time. Progress may be set from any goroutine.
package scenario

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/freshet/freshet/loadtest/internal/report"
	"github.com/freshet/freshet/loadtest/internal/safety"
	"github.com/freshet/freshet/loadtest/internal/stack"
	"github.com/freshet/freshet/loadtest/internal/stats"
)

// Scenario is one measurement of Freshet as a whole.
type Scenario interface {
	// Name is the short name used by -scenarios and in the table.
	Name() string
	// Title says what it measures, in a line.
	Title() string
	// Bound is the most it may take; Run cancels its context past it.
	Bound() safety.Bound
	// Run measures, adding figures (and what it could not measure) to
	// res. It returns when done or when ctx ends, having stopped
	// everything it started. An error means the figures are incomplete.
	Run(ctx context.Context, env *Env, res *report.Result) error
}

// Preparer is implemented by a scenario that needs something in place
// before the stack starts (the stack reads its pipeline once, at start).
type Preparer interface {
	// Prepare adds to p and returns what undoes it after the whole run.
	Prepare(ctx context.Context, p *Prep) (cleanup func(), err error)
}

// Prep is what scenarios add to the stack before it starts.
type Prep struct {
	// Dir is the run's folder.
	Dir string
	// Targets are YAML list items added to the pipeline's
	// invalidation.targets (indented by four spaces, as in
	// pipelines/freshet.yaml).
	Targets []string
	// Env is added to the stack's environment (e.g. tokens named by a
	// target's token_env).
	Env []string
}

// Env is what a scenario runs against.
type Env struct {
	// Stack is the running stack (nil only in tests of this package).
	Stack *stack.Stack
	Out   io.Writer
	// Self is the load generator's executable, for worker processes.
	Self string
	// Dir is a folder for the scenario's files (profiles, workers' logs).
	Dir string
	// Profile asks scenarios to take CPU profiles of the services.
	Profile bool

	mu       sync.Mutex
	progress func() string
}

// Progress sets what the progress line shows (nil: nothing).
func (e *Env) Progress(f func() string) {
	e.mu.Lock()
	e.progress = f
	e.mu.Unlock()
}

// Logf prints a line of progress.
func (e *Env) Logf(format string, args ...any) {
	fmt.Fprintf(e.Out, "  "+format+"\n", args...)
}

// Kafka returns a client of the stack's broker (loopback only) with opts.
func (e *Env) Kafka(opts ...kgo.Opt) (*kgo.Client, error) {
	for _, s := range e.Stack.Brokers() {
		if err := safety.CheckAddr(s); err != nil {
			return nil, err
		}
	}
	base := []kgo.Opt{kgo.SeedBrokers(e.Stack.Brokers()...), kgo.Dialer(safety.Dialer(nil, 10*time.Second).DialContext)}
	return kgo.NewClient(append(base, opts...)...)
}

// Run runs sc within its bound and returns its result: figures, load
// average, the CPU time of each part of the stack, and the error if any.
func Run(ctx context.Context, sc Scenario, env *Env) *report.Result {
	res := &report.Result{Scenario: sc.Name(), Title: sc.Title(), Started: time.Now()}
	b := sc.Bound()
	if err := b.Validate(); err != nil {
		res.Error = err.Error()
		return res
	}
	ctx, cancel := b.Context(ctx)
	defer cancel()
	if env.Stack != nil {
		res.SettleSeconds = env.Settle(ctx)
	}
	fmt.Fprintf(env.Out, "== %s: %s (at most %s)\n", sc.Name(), sc.Title(), b.Duration)
	load := stats.StartLoadSampler(time.Second)
	var cpu map[string]float64
	prof := &profiler{}
	if env.Stack != nil {
		cpu = env.Stack.CPU()
		prof = env.startProfiles(ctx, sc.Name())
	}
	mach0, _ := stats.ReadMachineCPU()
	stopProgress := env.printProgress(sc.Name(), load)
	err := sc.Run(ctx, env, res)
	stopProgress()
	if env.Stack != nil {
		res.CPU = stack.Since(cpu, env.Stack.CPU())
	}
	if mach1, err := stats.ReadMachineCPU(); err == nil && mach0.Total > 0 {
		res.MachineBusy = mach1.Sub(mach0).Busy
		res.Others = res.MachineBusy
		for _, v := range res.CPU {
			res.Others -= v
		}
		res.Others = max(res.Others, 0)
	}
	res.Finish(load.Stop())
	res.Profiles = prof.stop()
	if err != nil {
		res.Error = err.Error()
		if ctx.Err() != nil {
			res.Error += fmt.Sprintf(" (stopped at its bound of %s)", b.Duration)
		}
	}
	env.Progress(nil)
	fmt.Fprintf(env.Out, "== %s done in %.0f s, %s\n", sc.Name(), res.Seconds, res.Load)
	return res
}

// printProgress prints the progress line every 2 s until the returned
// function is called.
func (e *Env) printProgress(name string, load *stats.LoadSampler) func() {
	stop := make(chan struct{})
	done := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(done)
		t := time.NewTicker(2 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				e.mu.Lock()
				f := e.progress
				e.mu.Unlock()
				if f == nil {
					continue
				}
				l, _ := stats.LoadAvg()
				fmt.Fprintf(e.Out, "  [%s %3.0fs load %.1f] %s\n", name, time.Since(start).Seconds(), l, strings.TrimSpace(f()))
			}
		}
	}()
	return func() { close(stop); <-done }
}

func newGet(ctx context.Context, url string) (*http.Request, error) {
	return http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
}

// Settle waits until the stack is idle (its processes, not this one, use
// under 0.3 of a core for two seconds running), so that one backlog is not
// measured in what follows: before every scenario, and within one between
// its phases; at most 2 minutes. It returns how long it waited.
func (e *Env) Settle(ctx context.Context) float64 {
	start := time.Now()
	quiet := 0
	prev := e.Stack.CPU()
	for time.Since(start) < 2*time.Minute && ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
		now := e.Stack.CPU()
		var used float64
		for part, v := range stack.Since(prev, now) {
			if part != "load generator" {
				used += v
			}
		}
		prev = now
		if used < 0.3 {
			quiet++
		} else {
			quiet = 0
		}
		if quiet == 2 {
			break
		}
	}
	if d := time.Since(start); d > 3*time.Second {
		fmt.Fprintf(e.Out, "  waited %.0f s for the stack to be idle\n", d.Seconds())
	}
	return time.Since(start).Seconds()
}

// newPacer paces ticks of length tick for d (at most 10 at once when
// behind).
func newPacer(tick, d time.Duration) *safety.Pacer {
	return safety.NewPacer(1/tick.Seconds(), int64(d/tick)+1, 10)
}
