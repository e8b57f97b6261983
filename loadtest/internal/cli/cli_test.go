package cli

import (
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/freshet/freshet/pkg/pipeline"
)

func TestParsePhases(t *testing.T) {
	ph, err := parsePhases("1000:15s, 5000:1m")
	if err != nil || len(ph) != 2 || ph[0].Rate != 1000 || ph[1].Duration != time.Minute {
		t.Fatalf("parsePhases = %+v, %v", ph, err)
	}
	for _, bad := range []string{"1000", "0:10s", "1000:0s", "1000:2h", "x:10s", "200000:10s"} {
		if _, err := parsePhases(bad); err == nil {
			t.Errorf("parsePhases(%q) accepted", bad)
		}
	}
}

// TestEveryScenarioBounded: with the defaults and with -long, every
// scenario builds and its bound validates (a run always stops by itself).
func TestEveryScenarioBounded(t *testing.T) {
	for _, args := range [][]string{nil, {"-long"}} {
		o, err := parseFlags(args, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range allScenarios {
			sc, err := builders[name](o)
			if err != nil {
				t.Fatalf("%s %v: %v", name, args, err)
			}
			if err := sc.Bound().Validate(); err != nil {
				t.Errorf("%s %v: %v", name, args, err)
			}
		}
	}
}

func TestUnknownScenario(t *testing.T) {
	err := run(t.Context(), []string{"-scenarios", "nope"}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "unknown scenario") {
		t.Fatalf("run -scenarios nope: %v", err)
	}
}

// TestWritePipeline: the load test's pipeline is the default one with the
// scenarios' targets added; it still validates, and its broadcast rule
// matches a captured row (pgoutput sends breaking = true as "t").
func TestWritePipeline(t *testing.T) {
	dir := t.TempDir()
	t.Chdir("../../..")
	t.Setenv("FRESHET_LOAD_EDGE_TOKEN", "x")
	target := "    - name: hook-1\n      type: http\n      address: http://127.0.0.1:9/purge\n      coalesce: 20ms\n"
	path, err := writePipeline(dir, []string{target})
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	p, err := pipeline.Load(path)
	if err != nil {
		t.Fatalf("the load test's pipeline does not validate: %v\n%s", err, b)
	}
	if c := p.Personalization.Channel(pipeline.Fields{"attributes.breaking": {"t"}}); c == nil {
		t.Error("a captured row with breaking = true (\"t\") is broadcast to no channel")
	}
	names := []string{}
	for _, tg := range p.Invalidation.Targets {
		names = append(names, tg.Name)
	}
	if len(names) != 2 || names[0] != "hook-1" {
		t.Fatalf("targets %v, want hook-1 then the default's", names)
	}
}
