package pipeline

import (
	"errors"
	"os"
	"strings"
	"testing"
)

// FuzzParse: parsing never panics; every error is an *Error naming the
// file; and what parses, marshalled and parsed again, gives the same
// pipeline.
func FuzzParse(f *testing.F) {
	if data, err := os.ReadFile(repoPipeline); err == nil {
		f.Add(data)
	} else {
		f.Fatal(err)
	}
	for _, c := range badCases {
		f.Add([]byte(c.yaml))
	}
	f.Add([]byte(""))
	f.Add([]byte(allTargetsYAML))
	f.Add([]byte("invalidation:\n  targets:\n    - name: h\n      type: http\n      address: 'https://h/p'\n      headers: {X-A: \"null\", X-B: \"\\x01 two\\n\"}\n      header_env: {X-Key: KEY}\n"))
	f.Add([]byte("x-a: &a {attempts: 2}\ninvalidation:\n  targets:\n    - {name: a, type: varnish, address: 'http://a:1', retry: *a}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse("fuzz.yaml", data)
		if err != nil {
			if p != nil {
				t.Fatal("a pipeline returned with an error")
			}
			for _, line := range strings.Split(err.Error(), "\n") {
				if !strings.HasPrefix(line, "fuzz.yaml") {
					t.Fatalf("error line without the file name: %q", line)
				}
			}
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("not an *Error: %v", err)
			}
			return
		}
		out, err := p.Marshal()
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		back, err := Parse("again.yaml", out)
		if err != nil {
			t.Fatalf("the marshalled pipeline does not parse: %v\n%s", err, out)
		}
		if !samePipeline(p, back) {
			t.Fatalf("round trip differs:\n%s", out)
		}
	})
}

// FuzzTemplate: compiling never panics, the source round-trips, a
// template expands to something when every field it reads has values, and
// to nothing when they are all empty.
func FuzzTemplate(f *testing.F) {
	for _, s := range []string{"content:{id}", "tag:{tags[*]}", "{old.url}", "{{x}}:{attributes.a}", "{", "}", "{tags}", "{a{b}}", "{ id }"} {
		f.Add(s, "v1", "v2")
	}
	f.Fuzz(func(t *testing.T, src, a, b string) {
		tmpl, err := ParseTemplate(src)
		if err != nil {
			return
		}
		if tmpl.String() != src {
			t.Fatalf("String() = %q, want %q", tmpl.String(), src)
		}
		var again Template
		if err := again.UnmarshalText([]byte(src)); err != nil {
			t.Fatalf("UnmarshalText: %v", err)
		}
		refs := tmpl.Refs()
		fields := Fields{}
		for _, r := range refs {
			fields[r.Key()] = []string{a, b}
		}
		out := tmpl.Expand(fields)
		switch {
		case len(refs) > 0 && a == "" && b == "":
			if len(out) != 0 {
				t.Fatalf("%q over empty values expands to %q", src, out)
			}
		case a != "" && b != "" && src != "":
			if len(out) == 0 {
				t.Fatalf("%q over %q, %q expands to nothing", src, a, b)
			}
		}
	})
}
