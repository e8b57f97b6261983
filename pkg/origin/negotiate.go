package origin

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// Route kinds.
const (
	routeNone    = "none"
	routeContent = "content"
	routeTag     = "tag"
	routeSection = "section"
	routeAuthor  = "author"
)

// route is what a request path asks for.
type route struct {
	kind string
	name string // the tag, section or author of a list
	path string // the content url of a content page
}

// listPrefixes map a path prefix to its list route.
var listPrefixes = []struct{ prefix, kind string }{
	{"/tag/", routeTag},
	{"/section/", routeSection},
	{"/author/", routeAuthor},
}

// maxPath bounds the paths looked up: longer ones are 404 without a query.
const maxPath = 2048

// parseRoute maps a decoded request path to a route. A path that is not
// valid UTF-8, holds a control character, is longer than maxPath or names
// an empty list is routeNone (404).
func parseRoute(path string) route {
	if path == "" || path[0] != '/' || len(path) > maxPath || !utf8.ValidString(path) ||
		strings.ContainsFunc(path, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return route{kind: routeNone}
	}
	for _, l := range listPrefixes {
		if name, ok := strings.CutPrefix(path, l.prefix); ok {
			if name == "" {
				return route{kind: routeNone}
			}
			return route{kind: l.kind, name: name}
		}
	}
	return route{kind: routeContent, path: path}
}

// Formats.
const (
	formatHTML = "html"
	formatJSON = "json"

	contentTypeHTML = "text/html; charset=utf-8"
	contentTypeJSON = "application/json"
)

// negotiate picks JSON when the Accept header values prefer
// application/json to text/html (by q-value, the most specific range
// deciding for each), and HTML otherwise, including when Accept is absent.
func negotiate(accept []string) string {
	jq, hq := mediaQ(accept, "application", "json"), mediaQ(accept, "text", "html")
	if jq > hq {
		return formatJSON
	}
	return formatHTML
}

// mediaQ returns the q-value the Accept values give typ/sub: that of the
// most specific matching range (exact, then typ/*, then */*), or 0. No
// Accept at all accepts everything (q 1).
func mediaQ(accept []string, typ, sub string) float64 {
	if len(accept) == 0 {
		return 1
	}
	best, spec := 0.0, -1
	for _, v := range accept {
		for r := range strings.SplitSeq(v, ",") {
			mt, params, _ := strings.Cut(r, ";")
			t, s, ok := strings.Cut(strings.TrimSpace(mt), "/")
			if !ok {
				continue
			}
			t, s = strings.ToLower(strings.TrimSpace(t)), strings.ToLower(strings.TrimSpace(s))
			sp := -1
			switch {
			case t == typ && s == sub:
				sp = 2
			case t == typ && s == "*":
				sp = 1
			case t == "*" && s == "*":
				sp = 0
			}
			if sp <= spec {
				continue
			}
			spec, best = sp, qValue(params)
		}
	}
	return best
}

// qValue reads q from the parameters of a media range: 1 when absent, 0
// when malformed or out of range.
func qValue(params string) float64 {
	for p := range strings.SplitSeq(params, ";") {
		k, v, ok := strings.Cut(p, "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(k), "q") {
			continue
		}
		q, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || q < 0 || q > 1 || q != q {
			return 0
		}
		return q
	}
	return 1
}

// ifNoneMatch reports whether the If-None-Match values match etag (a
// quoted strong tag) by the weak comparison RFC 9110 prescribes for it:
// "*", or a listed tag, W/ or not, with the same opaque text. A malformed
// list matches only up to where it breaks.
func ifNoneMatch(values []string, etag string) bool {
	for _, v := range values {
		s := v
		for {
			s = strings.TrimLeft(s, " \t,")
			if s == "" {
				break
			}
			if s[0] == '*' {
				return true
			}
			s = strings.TrimPrefix(s, "W/")
			if s == "" || s[0] != '"' {
				break
			}
			end := strings.IndexByte(s[1:], '"')
			if end < 0 {
				break
			}
			if s[:end+2] == etag {
				return true
			}
			s = s[end+2:]
		}
	}
	return false
}
