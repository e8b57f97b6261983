package pipeline

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// DefaultBody is the body of http purge requests when a target sets none.
const DefaultBody = `{"keys": "@keys", "urls": "@urls", "prefixes": "@prefixes", "soft": "@soft"}`

// Placeholders of a BodyTemplate: a JSON string that is exactly one of
// these is replaced by the value it names. "@@..." stands for the string
// "@..." itself.
const (
	BodyKeys     = "@keys"     // the keys, a JSON array of strings
	BodyURLs     = "@urls"     // the urls (absolute with base_url), an array
	BodyPrefixes = "@prefixes" // the prefixes (absolute with base_url), an array
	BodySoft     = "@soft"     // true for a soft purge, a JSON boolean
	BodyTarget   = "@target"   // the target's name, a JSON string
)

var bodyPlaceholders = []string{BodyKeys, BodyURLs, BodyPrefixes, BodySoft, BodyTarget}

// BodyTemplate is the JSON body of a webhook (http target) purge: any JSON
// value in which strings such as "@keys" stand for what a request purges.
//
//	{"purge": {"tags": "@keys", "paths": "@urls"}, "soft": "@soft", "by": "freshet"}
//
// The zero BodyTemplate renders DefaultBody. It is immutable and safe for
// concurrent use.
type BodyTemplate struct {
	src  string
	root any // decoded JSON with placeholders as bodyRef
}

// bodyRef is a placeholder inside a decoded template.
type bodyRef string

// BodyValues are what a BodyTemplate's placeholders stand for.
type BodyValues struct {
	Keys, URLs, Prefixes []string
	Soft                 bool
	Target               string
}

// ParseBodyTemplate parses src, a JSON value. A string starting with "@"
// must be a placeholder (BodyKeys...) or start with "@@".
func ParseBodyTemplate(src string) (BodyTemplate, error) {
	dec := json.NewDecoder(strings.NewReader(src))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return BodyTemplate{}, fmt.Errorf("body: not JSON: %w", err)
	}
	if _, err := dec.Token(); err == nil {
		return BodyTemplate{}, errors.New("body: more than one JSON value")
	}
	root, err := compileBody(v, 0)
	if err != nil {
		return BodyTemplate{}, err
	}
	return BodyTemplate{src: src, root: root}, nil
}

const maxBodyDepth = 32

func compileBody(v any, depth int) (any, error) {
	if depth > maxBodyDepth {
		return nil, fmt.Errorf("body: nested deeper than %d levels", maxBodyDepth)
	}
	switch x := v.(type) {
	case string:
		if !strings.HasPrefix(x, "@") {
			return x, nil
		}
		if rest, ok := strings.CutPrefix(x, "@@"); ok {
			return "@" + rest, nil
		}
		for _, p := range bodyPlaceholders {
			if x == p {
				return bodyRef(x), nil
			}
		}
		return nil, fmt.Errorf("body: unknown placeholder %q (known: %s; write @@ for a literal @)", x, strings.Join(bodyPlaceholders, ", "))
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			c, err := compileBody(e, depth+1)
			if err != nil {
				return nil, err
			}
			out[i] = c
		}
		return out, nil
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			c, err := compileBody(e, depth+1)
			if err != nil {
				return nil, err
			}
			out[k] = c
		}
		return out, nil
	}
	return v, nil
}

// Render returns the body for v: valid JSON, object keys sorted.
func (b BodyTemplate) Render(v BodyValues) []byte {
	root := b.root
	if b.src == "" {
		root = defaultBody.root
	}
	var buf bytes.Buffer
	renderBody(&buf, root, &v)
	return buf.Bytes()
}

var defaultBody = func() BodyTemplate {
	b, err := ParseBodyTemplate(DefaultBody)
	if err != nil {
		panic(err)
	}
	return b
}()

func renderBody(buf *bytes.Buffer, v any, vals *BodyValues) {
	switch x := v.(type) {
	case bodyRef:
		switch string(x) {
		case BodyKeys:
			writeJSON(buf, nonNil(vals.Keys))
		case BodyURLs:
			writeJSON(buf, nonNil(vals.URLs))
		case BodyPrefixes:
			writeJSON(buf, nonNil(vals.Prefixes))
		case BodySoft:
			writeJSON(buf, vals.Soft)
		case BodyTarget:
			writeJSON(buf, vals.Target)
		}
	case []any:
		buf.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				buf.WriteByte(',')
			}
			renderBody(buf, e, vals)
		}
		buf.WriteByte(']')
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		buf.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				buf.WriteByte(',')
			}
			writeJSON(buf, k)
			buf.WriteByte(':')
			renderBody(buf, x[k], vals)
		}
		buf.WriteByte('}')
	default:
		writeJSON(buf, x)
	}
}

func writeJSON(buf *bytes.Buffer, v any) {
	b, err := json.Marshal(v)
	if err != nil { // only json.Number and plain values reach here
		b = []byte("null")
	}
	buf.Write(b)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// String returns the template's source ("" for the default).
func (b BodyTemplate) String() string { return b.src }

// IsZero reports whether b is the zero BodyTemplate (DefaultBody).
func (b BodyTemplate) IsZero() bool { return b.src == "" }

// MarshalText returns the source.
func (b BodyTemplate) MarshalText() ([]byte, error) { return []byte(b.src), nil }

// UnmarshalText parses text with ParseBodyTemplate; empty text is the
// default.
func (b *BodyTemplate) UnmarshalText(text []byte) error {
	if len(bytes.TrimSpace(text)) == 0 {
		*b = BodyTemplate{}
		return nil
	}
	t, err := ParseBodyTemplate(string(text))
	if err != nil {
		return err
	}
	*b = t
	return nil
}
