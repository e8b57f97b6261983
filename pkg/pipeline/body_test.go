package pipeline

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestBodyTemplate(t *testing.T) {
	vals := BodyValues{Keys: []string{"k1", `k"2`}, URLs: []string{"https://s/a"}, Soft: true, Target: "hook"}
	tests := []struct{ src, want string }{
		{"", `{"keys":["k1","k\"2"],"prefixes":[],"soft":true,"urls":["https://s/a"]}`},
		{`{"purge": {"tags": "@keys"}, "n": 1.50, "by": "@target", "lit": "@@keys", "x": [null, "@soft"]}`,
			`{"by":"hook","lit":"@keys","n":1.50,"purge":{"tags":["k1","k\"2"]},"x":[null,true]}`},
		{`"@urls"`, `["https://s/a"]`},
	}
	for _, tt := range tests {
		var b BodyTemplate
		if err := b.UnmarshalText([]byte(tt.src)); err != nil {
			t.Fatalf("%q: %v", tt.src, err)
		}
		if got := string(b.Render(vals)); got != tt.want {
			t.Errorf("%q renders\n%s\nwant\n%s", tt.src, got, tt.want)
		}
	}
	for _, bad := range []string{`{"a": "@key"}`, `{`, `{} {}`, `nope`} {
		if _, err := ParseBodyTemplate(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestBodyOnlyOnHTTPTargets(t *testing.T) {
	for file, want := range map[string]string{
		`{name: v, type: varnish, address: "http://v:1", body: "{}"}`:         "b.yaml:3: invalidation.targets[0].body: does not apply to varnish targets",
		`{name: h, type: http, address: "http://h:1", body: '{"k": "@kes"}'}`: `b.yaml:3: invalidation.targets[0].body: body: unknown placeholder "@kes"`,
	} {
		_, err := Parse("b.yaml", []byte("invalidation:\n  targets:\n    - "+file+"\n"))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("got %v; want %q", err, want)
		}
	}
}

// FuzzBodyTemplate: a template from outside text never panics, renders
// valid JSON, and its source round-trips.
func FuzzBodyTemplate(f *testing.F) {
	for _, s := range []string{DefaultBody, `"@keys"`, `[1, "@@x", {"a": "@soft"}]`, `{"a":`, `[[[[[[`} {
		f.Add(s, "k")
	}
	f.Fuzz(func(t *testing.T, src, key string) {
		b, err := ParseBodyTemplate(src)
		if err != nil {
			return
		}
		out := b.Render(BodyValues{Keys: []string{key}, URLs: []string{key}, Target: key})
		if !json.Valid(out) {
			t.Fatalf("%q renders invalid JSON %q", src, out)
		}
		if b.String() != src {
			t.Fatalf("String() = %q", b.String())
		}
	})
}
