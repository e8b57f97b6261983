package origin

import (
	"net/url"
	"strings"
	"testing"
)

var routeCases = []struct {
	path string
	want route
}{
	{"/tech/hello-freshet", route{kind: routeContent, path: "/tech/hello-freshet"}},
	{"/", route{kind: routeContent, path: "/"}},
	{"/tag/go", route{kind: routeTag, name: "go"}},
	{"/tag/a/b", route{kind: routeTag, name: "a/b"}},
	{"/section/tech", route{kind: routeSection, name: "tech"}},
	{"/author/ada", route{kind: routeAuthor, name: "ada"}},
	{"/tag", route{kind: routeContent, path: "/tag"}},
	{"/tag/", route{kind: routeNone}},
	{"/author/", route{kind: routeNone}},
	{"", route{kind: routeNone}},
	{"tech", route{kind: routeNone}},
	{"/a\x00b", route{kind: routeNone}},
	{"/tag/\x7f", route{kind: routeNone}},
	{"/\xff", route{kind: routeNone}},
	{"/" + strings.Repeat("a", maxPath), route{kind: routeNone}},
}

func TestParseRoute(t *testing.T) {
	for _, c := range routeCases {
		if got := parseRoute(c.path); got != c.want {
			t.Errorf("parseRoute(%q) = %+v; want %+v", c.path, got, c.want)
		}
	}
}

// FuzzParseRoute: any path parses without panic; a list route's name is
// never empty, and the route rebuilds the path it came from.
func FuzzParseRoute(f *testing.F) {
	for _, c := range routeCases {
		f.Add(c.path)
	}
	f.Fuzz(func(t *testing.T, path string) {
		r := parseRoute(path)
		switch r.kind {
		case routeNone:
		case routeContent:
			if r.path != path {
				t.Fatalf("content route of %q has path %q", path, r.path)
			}
		default:
			if r.name == "" || "/"+r.kind+"/"+r.name != path {
				t.Fatalf("list route %+v does not rebuild %q", r, path)
			}
			// The HTML links to lists escape the name as one segment; the
			// server's decoded path gives the name back.
			u, err := url.Parse("/" + r.kind + "/" + url.PathEscape(r.name))
			if err != nil || parseRoute(u.Path) != r {
				t.Fatalf("link to %+v does not route back: %v %v", r, u, err)
			}
		}
	})
}

var acceptCases = []struct {
	accept []string
	want   string
}{
	{nil, formatHTML},
	{[]string{""}, formatHTML},
	{[]string{"application/json"}, formatJSON},
	{[]string{"Application/JSON; charset=utf-8"}, formatJSON},
	{[]string{"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}, formatHTML},
	{[]string{"*/*"}, formatHTML},
	{[]string{"application/*"}, formatJSON},
	{[]string{"text/html;q=0.5, application/json;q=0.9"}, formatJSON},
	{[]string{"text/html", "application/json"}, formatHTML},
	{[]string{"application/json;q=0", "*/*"}, formatHTML},
	{[]string{"application/json;q=abc"}, formatHTML},
	{[]string{"application/json;q=2"}, formatHTML},
	{[]string{"application/json;q=NaN"}, formatHTML},
	{[]string{"image/png"}, formatHTML},
	{[]string{"*/*;q=0.1, application/json"}, formatJSON},
	{[]string{",,;/;q="}, formatHTML},
}

func TestNegotiate(t *testing.T) {
	for _, c := range acceptCases {
		if got := negotiate(c.accept); got != c.want {
			t.Errorf("negotiate(%q) = %s; want %s", c.accept, got, c.want)
		}
	}
}

// FuzzNegotiate: any Accept header picks one of the two formats, the same
// one whether it comes as one header or split at its commas.
func FuzzNegotiate(f *testing.F) {
	for _, c := range acceptCases {
		f.Add(strings.Join(c.accept, ","))
	}
	f.Fuzz(func(t *testing.T, accept string) {
		got := negotiate([]string{accept})
		if got != formatHTML && got != formatJSON {
			t.Fatalf("negotiate(%q) = %q", accept, got)
		}
		if split := negotiate(strings.Split(accept, ",")); split != got {
			t.Fatalf("negotiate(%q) = %s, split at commas %s", accept, got, split)
		}
	})
}

var inmCases = []struct {
	values []string
	want   bool
}{
	{nil, false},
	{[]string{`"abc"`}, true},
	{[]string{`W/"abc"`}, true},
	{[]string{`"x", "abc"`}, true},
	{[]string{`"x"`, `"abc"`}, true},
	{[]string{`"x,y", "abc"`}, true},
	{[]string{`*`}, true},
	{[]string{`"abcd"`}, false},
	{[]string{`abc`}, false},
	{[]string{`"ab`}, false},
	{[]string{`"x" junk "abc"`}, false},
	{[]string{``}, false},
}

func TestIfNoneMatch(t *testing.T) {
	for _, c := range inmCases {
		if got := ifNoneMatch(c.values, `"abc"`); got != c.want {
			t.Errorf("ifNoneMatch(%q) = %v; want %v", c.values, got, c.want)
		}
	}
}

// FuzzIfNoneMatch: any header parses without panic, and a list that ends
// with the tag always matches it.
func FuzzIfNoneMatch(f *testing.F) {
	for _, c := range inmCases {
		f.Add(strings.Join(c.values, ","))
	}
	f.Fuzz(func(t *testing.T, v string) {
		ifNoneMatch([]string{v}, `"abc"`)
		if !ifNoneMatch([]string{v, `"abc"`}, `"abc"`) {
			t.Fatalf("a second header with the tag does not match after %q", v)
		}
	})
}
