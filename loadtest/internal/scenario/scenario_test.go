package scenario

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/freshet/freshet/loadtest/internal/report"
	"github.com/freshet/freshet/loadtest/internal/safety"
)

// runaway never finishes on its own: only its bound stops it.
type runaway struct{ bound safety.Bound }

func (r *runaway) Name() string        { return "runaway" }
func (r *runaway) Title() string       { return "a scenario that would run forever" }
func (r *runaway) Bound() safety.Bound { return r.bound }
func (r *runaway) Run(ctx context.Context, env *Env, res *report.Result) error {
	<-ctx.Done()
	res.Add(report.F("stopped", 1, "count"))
	return ctx.Err()
}

// TestRunStopsAtBound: Run ends a scenario at its bound and says so.
func TestRunStopsAtBound(t *testing.T) {
	env := &Env{Out: io.Discard}
	done := make(chan *report.Result, 1)
	go func() {
		done <- Run(context.Background(), &runaway{safety.Bound{Duration: 50 * time.Millisecond, Count: 1}}, env)
	}()
	select {
	case res := <-done:
		if !strings.Contains(res.Error, "stopped at its bound") || len(res.Figures) != 1 {
			t.Fatalf("result %+v", res)
		}
	case <-time.After(time.Minute):
		t.Fatal("Run did not stop the scenario at its bound")
	}
}

// TestRunRefusesUnbounded: a scenario without a bound never runs.
func TestRunRefusesUnbounded(t *testing.T) {
	res := Run(context.Background(), &runaway{}, &Env{Out: io.Discard})
	if res.Error == "" || len(res.Figures) != 0 {
		t.Fatalf("an unbounded scenario ran: %+v", res)
	}
}
