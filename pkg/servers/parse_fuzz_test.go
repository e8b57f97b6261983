package servers

import (
	"strings"
	"testing"
)

func TestParseProcStat(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		wantState byte
		wantPgid  int
		wantOK    bool
	}{
		{"plain", "123 (postgres) S 1 123 123 0 -1", 'S', 123, true},
		{"comm with spaces and parens", "77 (a (b) c) Z 1 70 70 0", 'Z', 70, true},
		{"no comm", "123 postgres S 1 123", 0, 0, false},
		{"truncated", "123 (x) S 1", 0, 0, false},
		{"bad pgid", "123 (x) S 1 abc", 0, 0, false},
		{"empty", "", 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			state, pgid, ok := parseProcStat([]byte(tt.in))
			if state != tt.wantState || pgid != tt.wantPgid || ok != tt.wantOK {
				t.Fatalf("parseProcStat(%q) = %c, %d, %v; want %c, %d, %v", tt.in, state, pgid, ok, tt.wantState, tt.wantPgid, tt.wantOK)
			}
		})
	}
}

func FuzzParseProcStat(f *testing.F) {
	for _, s := range []string{"123 (postgres) S 1 123 123 0 -1", "77 (a (b) c) Z 1 70 70 0", "", ")", "1 () S 1 -5"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		state, _, ok := parseProcStat(b)
		if ok && state == 0 {
			t.Fatalf("ok with no state for %q", b)
		}
	})
}

const varnishstatSample = `{
  "version": 1,
  "timestamp": "2026-11-22T05:17:00",
  "counters": {
    "MGT.uptime": {"description": "Management process uptime", "flag": "c", "format": "d", "value": 3},
    "MAIN.cache_hit": {"description": "Cache hits", "flag": "c", "format": "i", "value": 2}
  }
}`

func TestParseVarnishStats(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    map[string]uint64
		wantErr string
	}{
		{"varnishstat 7.1 output", varnishstatSample, map[string]uint64{"MGT.uptime": 3, "MAIN.cache_hit": 2}, ""},
		{"not json", "varnishstat: Could not open shared memory", nil, "decode varnishstat output"},
		{"no counters", `{"version": 1}`, nil, "no counters"},
		{"negative value", `{"counters": {"x": {"value": -1}}}`, nil, "decode varnishstat output"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseVarnishStats([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v; want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %v; want %v", got, tt.want)
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Fatalf("%s = %d; want %d", k, got[k], v)
				}
			}
		})
	}
}

func FuzzParseVarnishStats(f *testing.F) {
	f.Add([]byte(varnishstatSample))
	f.Add([]byte(`{"counters": {}}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		stats, err := parseVarnishStats(b)
		if err == nil && stats == nil {
			t.Fatal("nil stats without an error")
		}
	})
}
