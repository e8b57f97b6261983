// Package report holds what Freshet's load generator found: figures, each
// with its target, its baseline from the same run (and the ratio to it) and
// the load average while it was measured; the summary table printed at the
// end of a run; and the same as JSON.
//
// A [Result] is filled by one scenario goroutine; the [Report] is written
// once, after every scenario returned.
package report

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/freshet/freshet/loadtest/internal/stats"
)

// Target is the target for a figure: at most (AtMost) or at least
// the value.
type Target struct {
	AtMost bool    `json:"at_most"`
	Value  float64 `json:"value"`
}

// Met reports whether v meets the target.
func (t Target) Met(v float64) bool {
	if t.AtMost {
		return v <= t.Value
	}
	return v >= t.Value
}

func (t Target) String() string {
	if t.AtMost {
		return "≤ " + num(t.Value)
	}
	return "≥ " + num(t.Value)
}

// Baseline is the same quantity measured, in the same run, on the simplest
// thing that does the job (raw decoding, a minimal SSE writer, a raw batch
// insert...).
type Baseline struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
}

// Figure is one number the run measured.
type Figure struct {
	Name     string          `json:"name"`
	Value    float64         `json:"value"`
	Unit     string          `json:"unit"`
	Target   *Target         `json:"target,omitempty"`
	Met      *bool           `json:"met,omitempty"`
	Baseline *Baseline       `json:"baseline,omitempty"`
	Ratio    *float64        `json:"ratio,omitempty"` // Value / Baseline.Value
	Load     stats.LoadStats `json:"load"`
	Note     string          `json:"note,omitempty"`
}

// F starts a figure.
func F(name string, value float64, unit string) *Figure {
	return &Figure{Name: name, Value: value, Unit: unit}
}

// AtMost sets a target the value must not exceed.
func (f *Figure) AtMost(v float64) *Figure { return f.want(Target{AtMost: true, Value: v}) }

// AtLeast sets a target the value must reach.
func (f *Figure) AtLeast(v float64) *Figure { return f.want(Target{Value: v}) }

func (f *Figure) want(t Target) *Figure {
	f.Target = &t
	met := t.Met(f.Value)
	f.Met = &met
	return f
}

// Against sets the baseline and the ratio to it (none when the baseline
// is 0).
func (f *Figure) Against(name string, v float64) *Figure {
	f.Baseline = &Baseline{Name: name, Value: v}
	if v != 0 && !math.IsNaN(v) {
		r := f.Value / v
		f.Ratio = &r
	}
	return f
}

// Noted adds a note.
func (f *Figure) Noted(format string, args ...any) *Figure {
	f.Note = fmt.Sprintf(format, args...)
	return f
}

// Result is one scenario's outcome.
type Result struct {
	Scenario string          `json:"scenario"`
	Title    string          `json:"title"`
	Started  time.Time       `json:"started"`
	Seconds  float64         `json:"seconds"`
	Load     stats.LoadStats `json:"load"`
	// SettleSeconds is how long the run waited, before the scenario, for
	// the stack to be idle (the previous scenario's backlog).
	SettleSeconds float64   `json:"settle_seconds"`
	Figures       []*Figure `json:"figures"`
	// CPU is the CPU time each part of the stack spent during the
	// scenario, in seconds, by part (postgres, kafka, cdc-ingestor...).
	CPU map[string]float64 `json:"cpu_seconds,omitempty"`
	// MachineBusy is the CPU time the whole machine spent busy during the
	// scenario, in seconds; Others is what of it no part of the stack nor
	// the load generator spent: the machine's other users.
	MachineBusy float64 `json:"machine_busy_seconds,omitempty"`
	Others      float64 `json:"others_seconds,omitempty"`
	// Profiles lists the CPU profiles written during the scenario.
	Profiles []string `json:"profiles,omitempty"`
	// Missing says what could not be measured, and why.
	Missing []string `json:"missing,omitempty"`
	Error   string   `json:"error,omitempty"`
}

// Add appends figures; those without a load of their own get the
// scenario's when the result is finished.
func (r *Result) Add(fs ...*Figure) { r.Figures = append(r.Figures, fs...) }

// Finish sets the duration and load, and gives every figure without a load
// of its own the scenario's.
func (r *Result) Finish(load stats.LoadStats) {
	r.Seconds = time.Since(r.Started).Seconds()
	r.Load = load
	for _, f := range r.Figures {
		if f.Load == (stats.LoadStats{}) {
			f.Load = load
		}
	}
}

// Machine describes where the run happened.
type Machine struct {
	Host     string `json:"host"`
	Cores    int    `json:"cores"`
	Go       string `json:"go"`
	Kernel   string `json:"kernel"`
	CPUModel string `json:"cpu_model"`
	MemGiB   int    `json:"mem_gib"`
}

// ThisMachine reads the machine's description.
func ThisMachine() Machine {
	m := Machine{Cores: runtime.NumCPU(), Go: runtime.Version()}
	m.Host, _ = os.Hostname()
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int
		if _, err := fmt.Sscanf(string(b), "MemTotal: %d kB", &kb); err == nil {
			m.MemGiB = (kb + 1<<19) >> 20
		}
	}
	return m
}

// Report is a whole run.
type Report struct {
	Command string    `json:"command"`
	Started time.Time `json:"started"`
	Machine Machine   `json:"machine"`
	Results []*Result `json:"results"`
}

// WriteJSON writes the report, indented.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteTable writes the summary table: one line a figure, with its
// target, whether it was met, its baseline, the ratio and the load.
func (r *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "scenario\tfigure\tvalue\ttarget\tmet\tbaseline\tratio\tload (max)")
	for _, res := range r.Results {
		if res.Error != "" {
			fmt.Fprintf(tw, "%s\tERROR: %s\t\t\t\t\t\t\n", res.Scenario, oneLine(res.Error))
		}
		for _, f := range res.Figures {
			target, met, base, ratio := "", "", "", ""
			if f.Target != nil {
				target = f.Target.String() + " " + f.Unit
				met = "yes"
				if !*f.Met {
					met = "NO"
				}
			}
			if f.Baseline != nil {
				base = fmt.Sprintf("%s %s (%s)", num(f.Baseline.Value), f.Unit, f.Baseline.Name)
			}
			if f.Ratio != nil {
				ratio = fmt.Sprintf("%.2f", *f.Ratio)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s %s\t%s\t%s\t%s\t%s\t%.1f (%.1f)\n", res.Scenario, f.Name, num(f.Value), f.Unit,
				target, met, base, ratio, f.Load.Mean, f.Load.Max)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, res := range r.Results {
		for _, m := range res.Missing {
			fmt.Fprintf(w, "%s: MISSING: %s\n", res.Scenario, oneLine(m))
		}
	}
	return nil
}

// WriteCPU writes, per scenario, the CPU seconds of each part of the stack
// and its share.
func (r *Report) WriteCPU(w io.Writer) error {
	for _, res := range r.Results {
		if len(res.CPU) == 0 {
			continue
		}
		fmt.Fprintf(w, "CPU during %s (%.0f s, %d cores = %.0f core-seconds):", res.Scenario, res.Seconds, r.Machine.Cores, res.Seconds*float64(r.Machine.Cores))
		var total float64
		for _, v := range res.CPU {
			total += v
		}
		for _, kv := range SortedCPU(res.CPU) {
			fmt.Fprintf(w, " %s %.1fs (%.0f%%)", kv.Part, kv.Seconds, 100*kv.Seconds/max(total, 1e-9))
		}
		if res.MachineBusy > 0 {
			fmt.Fprintf(w, "; the machine was busy %.0f%% of the time, and %.1fs of CPU went to processes outside the stack and the load generator", 100*res.MachineBusy/max(res.Seconds*float64(r.Machine.Cores), 1e-9), res.Others)
		}
		fmt.Fprintln(w)
	}
	return nil
}

// PartCPU is one part's CPU time.
type PartCPU struct {
	Part    string
	Seconds float64
}

// SortedCPU lists cpu by decreasing time.
func SortedCPU(cpu map[string]float64) []PartCPU {
	out := make([]PartCPU, 0, len(cpu))
	for k, v := range cpu {
		out = append(out, PartCPU{k, v})
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && (out[j].Seconds > out[j-1].Seconds || out[j].Seconds == out[j-1].Seconds && out[j].Part < out[j-1].Part); j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

func oneLine(s string) string { return strings.ReplaceAll(s, "\n", " ") }

// num formats a figure: integers with thousands separators, small values
// with up to two decimals.
func num(v float64) string {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return fmt.Sprint(v)
	case math.Abs(v) >= 1000:
		return thousands(int64(math.Round(v)))
	case v == math.Trunc(v):
		return fmt.Sprintf("%.0f", v)
	case math.Abs(v) >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

func thousands(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// WriteMarkdown writes the figures as a Markdown table (for
// docs/benchmarks.md): scenario, figure, value, target and whether it was
// met, baseline, ratio, load average, note.
func (r *Report) WriteMarkdown(w io.Writer) error {
	fmt.Fprintln(w, "| scenario | figure | value | target | baseline (same run) | ratio | load 1-min mean (max) | note |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|")
	for _, res := range r.Results {
		if res.Error != "" {
			fmt.Fprintf(w, "| %s | error: %s | | | | | | |\n", res.Scenario, mdEscape(res.Error))
		}
		for _, f := range res.Figures {
			target := ""
			if f.Target != nil {
				target = f.Target.String() + " " + f.Unit
				if *f.Met {
					target += ": met"
				} else {
					target += ": **missed**"
				}
			}
			base, ratio := "", ""
			if f.Baseline != nil {
				base = fmt.Sprintf("%s %s (%s)", num(f.Baseline.Value), f.Unit, f.Baseline.Name)
			}
			if f.Ratio != nil {
				ratio = fmt.Sprintf("%.2f", *f.Ratio)
			}
			fmt.Fprintf(w, "| %s | %s | %s %s | %s | %s | %s | %.1f (%.1f) | %s |\n", res.Scenario, mdEscape(f.Name), num(f.Value), f.Unit,
				target, mdEscape(base), ratio, f.Load.Mean, f.Load.Max, mdEscape(f.Note))
		}
		for _, m := range res.Missing {
			fmt.Fprintf(w, "| %s | missing: %s | | | | | | |\n", res.Scenario, mdEscape(m))
		}
	}
	return nil
}

func mdEscape(s string) string { return strings.ReplaceAll(oneLine(s), "|", `\|`) }

// ReadJSON reads a report written by WriteJSON.
func ReadJSON(rd io.Reader) (*Report, error) {
	var r Report
	if err := json.NewDecoder(rd).Decode(&r); err != nil {
		return nil, err
	}
	return &r, nil
}
