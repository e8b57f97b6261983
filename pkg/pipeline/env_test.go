package pipeline

import (
	"strings"
	"testing"

	"github.com/freshet/freshet/pkg/config"
)

func TestExpandEnv(t *testing.T) {
	env := config.MapLookup(map[string]string{"V": "http://varnish:6081", "EMPTY": ""})
	tests := []struct{ in, want, err string }{
		{"http://127.0.0.1:6081", "http://127.0.0.1:6081", ""},
		{"${V}", "http://varnish:6081", ""},
		{"${V:-http://x:1}", "http://varnish:6081", ""},
		{"${UNSET:-http://127.0.0.1:6081}", "http://127.0.0.1:6081", ""},
		{"${EMPTY:-d}", "d", ""},
		{"${V}/purge", "http://varnish:6081/purge", ""},
		{"a$$b", "a$b", ""},
		{"a$b", "a$b", ""},
		{"${UNSET}", "", "environment variable UNSET is not set"},
		{"${EMPTY}", "", "environment variable EMPTY is not set"},
		{"${V", "", "unclosed ${"},
		{"${1V}", "", "want ${VAR} or ${VAR:-default}"},
	}
	for _, tt := range tests {
		got, err := expandEnv(tt.in, env)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("expandEnv(%q) = %q, %v; want error %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("expandEnv(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestParseExpandsTargetAddresses(t *testing.T) {
	file := `invalidation:
  urls: ["{url}"]
  targets:
    - name: v
      type: varnish
      address: ${FRESHET_VARNISH_URL:-http://127.0.0.1:6081}
      host: ${SITE_HOST:-www.example.com}
    - name: c
      type: cloudflare
      zone_id: "${NOT_EXPANDED}"
      token_env: CF
      base_url: ${SITE}
`
	p, err := ParseEnv("e.yaml", []byte(file), config.MapLookup(map[string]string{"FRESHET_VARNISH_URL": "http://varnish:6081", "SITE": "https://www.example.com"}))
	if err != nil {
		t.Fatal(err)
	}
	v, c := p.Invalidation.Targets[0], p.Invalidation.Targets[1]
	if v.Address != "http://varnish:6081" || v.Host != "www.example.com" || c.BaseURL != "https://www.example.com" || c.ZoneID != "${NOT_EXPANDED}" {
		t.Errorf("expanded: %q %q %q %q", v.Address, v.Host, c.BaseURL, c.ZoneID)
	}
	// The default applies when the variable is unset.
	p, err = ParseEnv("e.yaml", []byte(file), config.MapLookup(map[string]string{"SITE": "https://s"}))
	if err != nil || p.Invalidation.Targets[0].Address != "http://127.0.0.1:6081" {
		t.Fatalf("default: %v", err)
	}
	// An unset variable without a default names the file, line and field.
	_, err = ParseEnv("e.yaml", []byte(file), config.MapLookup(nil))
	want := "e.yaml:12: invalidation.targets[1].base_url: environment variable SITE is not set"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("got %v; want %q", err, want)
	}
}

// FuzzExpandEnv: expansion of outside text never panics, and text
// without "$" is left as it is.
func FuzzExpandEnv(f *testing.F) {
	for _, s := range []string{"${A}", "${A:-b}", "$$", "${", "x${A}y${B:-}", "$"} {
		f.Add(s)
	}
	env := config.MapLookup(map[string]string{"A": "a"})
	f.Fuzz(func(t *testing.T, s string) {
		out, err := expandEnv(s, env)
		if !strings.Contains(s, "$") && (err != nil || out != s) {
			t.Fatalf("%q -> %q, %v", s, out, err)
		}
	})
}
