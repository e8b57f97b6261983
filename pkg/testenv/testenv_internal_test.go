package testenv

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/freshet/freshet/pkg/servers"
)

// recordingTB records what check asks of a test instead of doing it.
type recordingTB struct {
	testing.TB
	skipped, fatal string
}

func (r *recordingTB) Helper()                          {}
func (r *recordingTB) Skipf(format string, args ...any) { r.skipped = fmt.Sprintf(format, args...) }
func (r *recordingTB) Fatalf(format string, args ...any) {
	r.fatal = fmt.Sprintf(format, args...)
}

func TestCheck(t *testing.T) {
	missing := fmt.Errorf("start: %w", &servers.NotInstalledError{Binary: "clickhouse-server", Packages: []string{"clickhouse-server", "clickhouse-client"}})
	tests := []struct {
		name      string
		err       error
		require   string
		wantSkip  string // substring; "" means no skip
		wantFatal string // substring; "" means no failure
	}{
		{"no error", nil, "", "", ""},
		{"missing binary skips with the install command", missing, "", "apt-get install -y clickhouse-server clickhouse-client", ""},
		{"missing binary fails when servers are required", missing, "1", "", "apt-get install -y clickhouse-server clickhouse-client"},
		{"other errors fail", errors.New("boom"), "", "", "boom"},
		{"other errors fail when required too", errors.New("boom"), "1", "", "boom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(RequireServersEnv, tt.require)
			r := &recordingTB{TB: t}
			check(r, "testenv: clickhouse", tt.err)
			if (tt.wantSkip == "") != (r.skipped == "") || !strings.Contains(r.skipped, tt.wantSkip) {
				t.Errorf("skip %q; want one containing %q", r.skipped, tt.wantSkip)
			}
			if (tt.wantFatal == "") != (r.fatal == "") || !strings.Contains(r.fatal, tt.wantFatal) {
				t.Errorf("fatal %q; want one containing %q", r.fatal, tt.wantFatal)
			}
		})
	}
}

// namedTB gives uniqueName a test name of our choosing.
type namedTB struct {
	testing.TB
	name string
}

func (n namedTB) Name() string { return n.name }

func TestUniqueName(t *testing.T) {
	valid := regexp.MustCompile(`^t[0-9]+_[a-z0-9_]*$`)
	tests := []struct {
		name string
		max  int
		want string // the name's part after the sequence number, when short enough
	}{
		{"TestCapture", 63, "testcapture"},
		{"TestCapture/insert then update", 63, "testcapture_insert_then_update"},
		{"TestX/Ünïcode-and.dots#01", 63, "testx_n_code_and_dots_01"},
		{"Test" + strings.Repeat("Long", 40), 63, ""},
		{"TestKafka/a", 100, "testkafka_a"},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := uniqueName(namedTB{TB: t, name: tt.name}, tt.max)
			if len(got) > tt.max || !valid.MatchString(got) {
				t.Fatalf("uniqueName = %q: longer than %d or not [a-z0-9_]", got, tt.max)
			}
			if tt.want != "" && !strings.HasSuffix(got, "_"+tt.want) {
				t.Fatalf("uniqueName = %q; want it to end in %q", got, tt.want)
			}
			if seen[got] {
				t.Fatalf("uniqueName = %q twice", got)
			}
			seen[got] = true
		})
	}
}
