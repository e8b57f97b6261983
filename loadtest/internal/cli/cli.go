// Package cli is freshet-load's command line: flags, the choice and sizes
// of scenarios (short by default, the sizes with -long), starting
// the stack, running the scenarios in order and writing the table and the
// JSON. Worker subcommands (client processes past one process's open-file
// limit, the baseline SSE server) are dispatched from here too.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/freshet/freshet/loadtest/internal/cdc"
	"github.com/freshet/freshet/loadtest/internal/freshness"
	"github.com/freshet/freshet/loadtest/internal/metricsflood"
	"github.com/freshet/freshet/loadtest/internal/purge"
	"github.com/freshet/freshet/loadtest/internal/report"
	"github.com/freshet/freshet/loadtest/internal/scenario"
	"github.com/freshet/freshet/loadtest/internal/ssecap"
	"github.com/freshet/freshet/loadtest/internal/stack"
)

// Subcommands run by the generator as child processes.
var subcommands = map[string]func(ctx context.Context, args []string) error{
	ssecap.WorkerCommand:  ssecap.RunWorker,
	ssecap.MinimalCommand: ssecap.RunMinimal,
	"markdown":            markdown,
}

// markdown is `freshet-load markdown results.json`: the figures of a run as
// a Markdown table, and the CPU by part of the stack, for
// docs/benchmarks.md.
func markdown(_ context.Context, args []string) error {
	if len(args) != 1 {
		return errors.New("usage: freshet-load markdown <results.json>")
	}
	f, err := os.Open(args[0])
	if err != nil {
		return err
	}
	defer f.Close()
	r, err := report.ReadJSON(f)
	if err != nil {
		return err
	}
	if err := r.WriteMarkdown(os.Stdout); err != nil {
		return err
	}
	fmt.Println()
	return r.WriteCPU(os.Stdout)
}

// Main is the command.
func Main(ctx context.Context) error {
	if len(os.Args) > 1 {
		if sub, ok := subcommands[os.Args[1]]; ok {
			return sub(ctx, os.Args[2:])
		}
	}
	return run(ctx, os.Args[1:], os.Stdout)
}

// options are the flags.
type options struct {
	scenarios string
	long      bool
	dir       string
	jsonPath  string
	keep      bool
	profile   bool

	clients   int
	rates     string
	broadcast time.Duration
	gateways  int

	sseIdle      int
	sseReplicas  int
	sseBroadcast int
	sseStorm     int

	purgeRate float64
	cdcRows   int
}

// allScenarios in the order they run.
// The cdc bulk runs after the others on the default stack (its backlog
// keeps the invalidator busy for a while); purge runs last, on a stack of
// its own with ten purge targets.
var allScenarios = []string{"freshness", "sse", "metrics", "cdc", "purge"}

func parseFlags(args []string, out io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("freshet-load", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&o.scenarios, "scenarios", strings.Join(allScenarios, ","), "scenarios to run, in this order: "+strings.Join(allScenarios, ", "))
	fs.BoolVar(&o.long, "long", false, "60 s write phases, a 500,000-row backlog and a 3,000,000-row flood (about 15 minutes) instead of the short run (15 s phases; the issue's client and stream counts either way)")
	fs.StringVar(&o.dir, "dir", "", "folder of the stack's data, logs and the results (default: a new temporary folder)")
	fs.StringVar(&o.jsonPath, "json", "", "also write the JSON results here (they are always written to <dir>/results.json)")
	fs.BoolVar(&o.keep, "keep", false, "keep the stack's data (Postgres, Kafka, logs) after the run; results and profiles are always kept")
	fs.BoolVar(&o.profile, "profile", true, "take CPU profiles while scenarios run (perf of the whole machine, pprof of services that serve it)")
	fs.IntVar(&o.clients, "clients", 10000, "freshness: SSE clients with profiles")
	fs.StringVar(&o.rates, "rates", "", "freshness: write phases rate:duration,... (default 1000:15s,5000:15s; -long 1000:60s,5000:60s)")
	fs.DurationVar(&o.broadcast, "broadcast-every", time.Second, "freshness: a breaking change (to every channel client) this often; 0 for none")
	fs.IntVar(&o.gateways, "gateways", 1, "freshness: gateway replicas the clients spread over")
	fs.IntVar(&o.sseIdle, "sse-idle", 0, "sse: idle streams (default 50,000)")
	fs.IntVar(&o.sseReplicas, "sse-replicas", 0, "sse: gateway replicas (default 4: ~12,500 streams each)")
	fs.IntVar(&o.sseBroadcast, "sse-broadcast", 20, "sse: events broadcast to every idle stream")
	fs.IntVar(&o.sseStorm, "sse-storm", 10000, "sse: clients of the reconnect storm")
	fs.Float64Var(&o.purgeRate, "purge-rate", 500, "purge: changes per second written while purges are measured")
	fs.IntVar(&o.cdcRows, "cdc-rows", 0, "cdc: rows of the bulk write (default 100,000; -long 500,000)")
	addScenarioFlags(fs)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	return o, nil
}

// scenarioFlags are registered by the scenarios' files of this package.
var scenarioFlagFuncs []func(*flag.FlagSet)

func addScenarioFlags(fs *flag.FlagSet) {
	for _, f := range scenarioFlagFuncs {
		f(fs)
	}
}

// builders make a scenario from the options, by name.
var builders = map[string]func(o *options) (scenario.Scenario, error){
	"freshness": func(o *options) (scenario.Scenario, error) {
		rates := o.rates
		if rates == "" {
			rates = "1000:15s,5000:15s"
			if o.long {
				rates = "1000:60s,5000:60s"
			}
		}
		phases, err := parsePhases(rates)
		if err != nil {
			return nil, err
		}
		return &freshness.Freshness{Clients: o.clients, Phases: phases, BroadcastEvery: o.broadcast, Gateways: o.gateways}, nil
	},
	"cdc": func(o *options) (scenario.Scenario, error) {
		c := &cdc.CDC{Rows: 100000, SteadyRate: 5000, SteadyDuration: 10 * time.Second}
		if o.long {
			c.Rows, c.SteadyDuration = 500000, time.Minute
		}
		if o.cdcRows > 0 {
			c.Rows = o.cdcRows
		}
		return c, nil
	},
	"metrics": func(o *options) (scenario.Scenario, error) {
		f := &metricsflood.Flood{Samples: 200000, Beacons: 100000, Service: "metrics-sink"}
		if o.long {
			f.Samples, f.Beacons = 2000000, 1000000
		}
		return f, nil
	},
	"purge": func(o *options) (scenario.Scenario, error) {
		p := &purge.Purge{Rate: o.purgeRate, Duration: 15 * time.Second, Fakes: 3}
		if o.long {
			p.Duration = time.Minute
		}
		return p, nil
	},
	"sse": func(o *options) (scenario.Scenario, error) {
		// The sizes are cheap enough for the short run too.
		s := &ssecap.SSE{Idle: 50000, Replicas: 4, Broadcast: o.sseBroadcast, Storm: o.sseStorm}
		if o.sseIdle > 0 {
			s.Idle = o.sseIdle
		}
		if o.sseReplicas > 0 {
			s.Replicas = o.sseReplicas
		}
		return s, nil
	},
}

// parsePhases reads "rate:duration,...".
func parsePhases(s string) ([]freshness.Phase, error) {
	var out []freshness.Phase
	for _, part := range strings.Split(s, ",") {
		r, d, ok := strings.Cut(strings.TrimSpace(part), ":")
		if !ok {
			return nil, fmt.Errorf("-rates: %q is not rate:duration", part)
		}
		rate, err := strconv.ParseFloat(r, 64)
		if err != nil || rate <= 0 || rate > 100_000 {
			return nil, fmt.Errorf("-rates: rate %q must be in (0, 100000]", r)
		}
		dur, err := time.ParseDuration(d)
		if err != nil || dur <= 0 || dur > time.Hour {
			return nil, fmt.Errorf("-rates: duration %q must be in (0, 1h]", d)
		}
		out = append(out, freshness.Phase{Rate: rate, Duration: dur})
	}
	return out, nil
}

// runGroup starts a stack for scenarios, with what they prepare, runs
// them in order and stops it.
func runGroup(ctx context.Context, o *options, scs []scenario.Scenario, sdir, self, dir string, out io.Writer, rep *report.Report) error {
	fmt.Fprintf(out, "freshet-load: starting a stack (make run's runner) for %s\n", names(scs))
	t0 := time.Now()
	prep := &scenario.Prep{Dir: dir}
	for _, sc := range scs {
		if p, ok := sc.(scenario.Preparer); ok {
			cleanup, err := p.Prepare(ctx, prep)
			if cleanup != nil {
				defer cleanup()
			}
			if err != nil {
				return fmt.Errorf("%s: prepare: %w", sc.Name(), err)
			}
		}
	}
	if err := os.MkdirAll(sdir, 0o755); err != nil {
		return err
	}
	pipe, err := writePipeline(sdir, prep.Targets)
	if err != nil {
		return err
	}
	st, err := stack.Start(ctx, stack.Options{Dir: sdir, Log: out, Pipeline: pipe, Env: append(stack.PprofEnv(), prep.Env...)})
	if err != nil {
		return err
	}
	defer st.Stop()
	fmt.Fprintf(out, "freshet-load: stack ready in %s: %s\n", time.Since(t0).Round(100*time.Millisecond), strings.Join(st.Services(), ", "))
	env := &scenario.Env{Stack: st, Out: out, Self: self, Dir: dir, Profile: o.profile}
	for _, sc := range scs {
		if ctx.Err() != nil {
			break
		}
		res := scenario.Run(ctx, sc, env)
		rep.Results = append(rep.Results, res)
		if res.Error != "" {
			fmt.Fprintf(out, "== %s failed: %s\n", sc.Name(), res.Error)
		}
	}
	return nil
}

func names(scs []scenario.Scenario) string {
	var n []string
	for _, sc := range scs {
		n = append(n, sc.Name())
	}
	return strings.Join(n, ", ")
}

func run(ctx context.Context, args []string, out io.Writer) error {
	o, err := parseFlags(args, out)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	var scs []scenario.Scenario
	for _, name := range strings.Split(o.scenarios, ",") {
		name = strings.TrimSpace(name)
		b, ok := builders[name]
		if !ok {
			return fmt.Errorf("-scenarios: unknown scenario %q (have %s)", name, strings.Join(allScenarios, ", "))
		}
		sc, err := b(o)
		if err != nil {
			return err
		}
		if err := sc.Bound().Validate(); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		scs = append(scs, sc)
	}
	dir := o.dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "freshet-load-"); err != nil {
			return err
		}
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if old, _ := filepath.Glob(filepath.Join(dir, "stack*")); len(old) > 0 {
		return fmt.Errorf("-dir %s holds a previous run's stack: give a new folder (every run starts from scratch)", dir)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	rep := &report.Report{Command: "freshet-load " + strings.Join(args, " "), Started: time.Now(), Machine: report.ThisMachine()}
	fmt.Fprintf(out, "freshet-load: %d scenario(s), data in %s\n", len(scs), dir)
	// Scenarios that shape the stack (the purge scenario's ten targets)
	// get a stack of their own, after the others, which run the default
	// pipeline as `make run` does.
	var plain, prepared []scenario.Scenario
	for _, sc := range scs {
		if _, ok := sc.(scenario.Preparer); ok {
			prepared = append(prepared, sc)
		} else {
			plain = append(plain, sc)
		}
	}
	for i, group := range [][]scenario.Scenario{plain, prepared} {
		if len(group) == 0 || ctx.Err() != nil {
			continue
		}
		sdir := filepath.Join(dir, fmt.Sprintf("stack-%d", i+1))
		if !o.keep {
			// The stack's data is large; the results and profiles stay.
			defer os.RemoveAll(sdir)
		}
		if err := runGroup(ctx, o, group, sdir, self, dir, out, rep); err != nil {
			return err
		}
	}
	fmt.Fprintln(out)
	rep.WriteTable(out)
	fmt.Fprintln(out)
	rep.WriteCPU(out)
	for _, path := range []string{filepath.Join(dir, "results.json"), o.jsonPath} {
		if path == "" {
			continue
		}
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		err = rep.WriteJSON(f)
		f.Close()
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "results: %s\n", path)
	}
	return ctx.Err()
}

// writePipeline writes the pipeline the stack runs under dir, the default
// one with targets added to invalidation.targets, and returns its path.
func writePipeline(dir string, targets []string) (string, error) {
	b, err := os.ReadFile("pipelines/freshet.yaml")
	if err != nil {
		return "", fmt.Errorf("read the default pipeline (run from the repository root): %w", err)
	}
	text := string(b)
	if len(targets) > 0 {
		const anchor = "\n  targets:\n"
		i := strings.Index(text, anchor)
		if i < 0 {
			return "", fmt.Errorf("pipelines/freshet.yaml: no invalidation targets list to add the load test's targets to")
		}
		i += len(anchor)
		text = text[:i] + strings.Join(targets, "") + text[i:]
	}
	path := filepath.Join(dir, "freshet.yaml")
	return path, os.WriteFile(path, []byte(text), 0o644)
}
