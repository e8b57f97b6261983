package report

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/freshet/freshet/loadtest/internal/stats"
)

func TestFigure(t *testing.T) {
	f := F("p99", 120, "ms").AtMost(100).Against("raw", 60)
	if *f.Met || *f.Ratio != 2 {
		t.Fatalf("met %v ratio %v", *f.Met, *f.Ratio)
	}
	g := F("rate", 60000, "changes/s").AtLeast(50000).Against("zero", 0)
	if !*g.Met || g.Ratio != nil {
		t.Fatalf("met %v ratio %v", *g.Met, g.Ratio)
	}
}

func TestNum(t *testing.T) {
	for v, want := range map[float64]string{1234567: "1,234,567", 12: "12", 12.34: "12.3", 1.234: "1.23", -2500: "-2,500", 999.5: "999.5"} {
		if got := num(v); got != want {
			t.Errorf("num(%v) = %q, want %q", v, got, want)
		}
	}
}

func TestReportOutputs(t *testing.T) {
	res := &Result{Scenario: "freshness", Started: time.Now()}
	res.Add(F("commit to receipt p99", 80, "ms").AtMost(100).Against("raw pgoutput", 10))
	res.Missing = []string{"stage shares: no trace"}
	res.CPU = map[string]float64{"postgres": 2, "kafka": 5}
	res.Finish(stats.LoadStats{Mean: 1.5, Max: 2})
	r := &Report{Machine: Machine{Cores: 2}, Results: []*Result{res}}
	var tbl, js, cpu bytes.Buffer
	if err := r.WriteTable(&tbl); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"commit to receipt p99", "≤ 100 ms", "yes", "8.00", "1.5 (2.0)", "MISSING: stage shares"} {
		if !strings.Contains(tbl.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, tbl.String())
		}
	}
	if err := r.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || back.Results[0].Figures[0].Load.Mean != 1.5 {
		t.Fatalf("JSON round trip: %v %+v", err, back)
	}
	r.WriteCPU(&cpu)
	if !strings.Contains(cpu.String(), "kafka 5.0s (71%) postgres 2.0s (29%)") {
		t.Errorf("cpu line: %s", cpu.String())
	}
}

func TestMarkdown(t *testing.T) {
	res := &Result{Scenario: "sse"}
	res.Add(F("storm | all resumed", 4.2, "s").AtMost(5).Against("minimal", 2.1))
	res.Missing = []string{"x"}
	var b bytes.Buffer
	(&Report{Results: []*Result{res}}).WriteMarkdown(&b)
	for _, want := range []string{`storm \| all resumed`, "≤ 5 s: met", "2.00", "missing: x"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("markdown lacks %q:\n%s", want, b.String())
		}
	}
	back, err := ReadJSON(strings.NewReader(`{"results":[{"scenario":"cdc"}]}`))
	if err != nil || back.Results[0].Scenario != "cdc" {
		t.Fatalf("ReadJSON: %v %+v", err, back)
	}
}
