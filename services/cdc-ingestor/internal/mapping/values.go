package mapping

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/freshet/freshet/pkg/events"
)

// ErrValue is wrapped by the errors of the parse functions: a column's text
// cannot become the event field it is mapped to.
var ErrValue = errors.New("bad column value")

func valueErrorf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrValue}, args...)...)
}

// maxElements bounds the elements of one array value, so that a huge value
// cannot make a huge event.
const maxElements = 100_000

// ParseList reads a list field (tags, follows, segments, surrogate keys)
// from a column's text: a Postgres array literal ({a,"b c",NULL}), a JSON
// array of strings, or any other text as a one-element list (an empty text
// is an empty list). NULL elements are left out.
func ParseList(s string) ([]string, error) {
	t := strings.TrimSpace(s)
	switch {
	case t == "":
		return nil, nil
	case t[0] == '{' || (t[0] == '[' && strings.Contains(t, "]={")):
		return ParseArray(t)
	case t[0] == '[':
		var out []string
		if err := json.Unmarshal([]byte(t), &out); err != nil {
			return nil, valueErrorf("JSON list: %v", err)
		}
		if len(out) > maxElements {
			return nil, valueErrorf("list of %d elements, more than %d", len(out), maxElements)
		}
		return out, nil
	}
	return []string{s}, nil
}

// ParseArray reads a Postgres array literal in text output form: {a,b},
// {"quoted \"x\"",NULL}, {{1,2},{3,4}} (flattened), with an optional
// dimension decoration ([0:1]={a,b}). NULL elements are left out.
func ParseArray(s string) ([]string, error) {
	if strings.HasPrefix(s, "[") {
		i := strings.Index(s, "={")
		if i < 0 {
			return nil, valueErrorf("array: dimension decoration without =")
		}
		s = s[i+1:]
	}
	if len(s) < 2 || s[0] != '{' {
		return nil, valueErrorf("array: want {...}, got %.40q", s)
	}
	if out, ok := simpleArray(s); ok {
		return out, nil
	}
	return parseArraySlow(s)
}

// parseArraySlow reads any array literal s ({...}, without decoration).
func parseArraySlow(s string) ([]string, error) {
	if len(s) < 2 || s[0] != '{' {
		return nil, valueErrorf("array: want {...}, got %.40q", s)
	}
	var (
		out   []string
		depth int
		i     int
	)
	for i < len(s) {
		c := s[i]
		switch {
		case c == '{':
			depth++
			i++
		case c == '}':
			depth--
			i++
			if depth < 0 {
				return nil, valueErrorf("array: unbalanced }")
			}
			if depth == 0 {
				if strings.TrimSpace(s[i:]) != "" {
					return nil, valueErrorf("array: text after the closing }")
				}
				return out, nil
			}
		case c == ',' || c == ' ':
			i++
		case depth == 0:
			return nil, valueErrorf("array: text outside braces")
		case c == '"':
			var b strings.Builder
			i++
			closed := false
			for i < len(s) {
				c := s[i]
				if c == '\\' && i+1 < len(s) {
					b.WriteByte(s[i+1])
					i += 2
					continue
				}
				if c == '"' {
					i++
					closed = true
					break
				}
				b.WriteByte(c)
				i++
			}
			if !closed {
				return nil, valueErrorf("array: unterminated quoted element")
			}
			out = append(out, b.String())
		default:
			var b strings.Builder
			escaped := false
			for i < len(s) && s[i] != ',' && s[i] != '}' && s[i] != '{' {
				if s[i] == '\\' && i+1 < len(s) {
					b.WriteByte(s[i+1])
					i += 2
					escaped = true
					continue
				}
				b.WriteByte(s[i])
				i++
			}
			el := strings.TrimSpace(b.String())
			if escaped || !strings.EqualFold(el, "NULL") {
				out = append(out, el)
			}
		}
		if len(out) > maxElements {
			return nil, valueErrorf("array of more than %d elements", maxElements)
		}
	}
	return nil, valueErrorf("array: missing closing }")
}

// simpleArray reads the common case, {a,b,c} without quotes, escapes,
// spaces or nesting, without building each element byte by byte; ok is
// false for anything else (ParseArray reads it).
func simpleArray(s string) ([]string, bool) {
	if s[len(s)-1] != '}' {
		return nil, false
	}
	inner := s[1 : len(s)-1]
	if strings.ContainsAny(inner, "{}\\\" \t\n\r\v\f") {
		return nil, false
	}
	if inner == "" {
		return nil, true
	}
	n := strings.Count(inner, ",") + 1
	if n > maxElements {
		return nil, false
	}
	out := make([]string, 0, n)
	for el := range strings.SplitSeq(inner, ",") {
		if el == "" || strings.EqualFold(el, "NULL") {
			continue
		}
		out = append(out, el)
	}
	return out, true
}

// FormatArray writes a list as a Postgres array literal that ParseArray
// reads back (every element quoted).
func FormatArray(list []string) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, s := range list {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('"')
		for j := 0; j < len(s); j++ {
			if s[j] == '"' || s[j] == '\\' {
				b.WriteByte('\\')
			}
			b.WriteByte(s[j])
		}
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String()
}

// ParseInterests reads a profile's interests: a JSON object {"tag": weight},
// or a list (JSON array or Postgres array) where each tag weighs 1. The
// result is sorted by tag, one entry per tag.
func ParseInterests(s string) ([]events.Interest, error) {
	t := strings.TrimSpace(s)
	if t == "" || t == "null" {
		return nil, nil
	}
	if t[0] != '{' {
		tags, err := ParseList(t)
		if err != nil {
			return nil, err
		}
		return weighOne(tags), nil
	}
	if !json.Valid([]byte(t)) {
		// Not JSON: a Postgres array such as {go,kafka}.
		tags, err := ParseArray(t)
		if err != nil {
			return nil, valueErrorf("interests: want a JSON object {\"tag\": weight} or a list: %v", err)
		}
		return weighOne(tags), nil
	}
	var m map[string]json.Number
	d := json.NewDecoder(strings.NewReader(t))
	d.UseNumber()
	if err := d.Decode(&m); err != nil {
		return nil, valueErrorf("interests: want a JSON object {\"tag\": weight}: %v", err)
	}
	if len(m) > maxElements {
		return nil, valueErrorf("interests: %d tags, more than %d", len(m), maxElements)
	}
	out := make([]events.Interest, 0, len(m))
	for tag, n := range m {
		w, err := n.Float64()
		if err != nil || math.IsInf(w, 0) || math.IsNaN(w) {
			return nil, valueErrorf("interests: weight of %q is not a finite number: %s", tag, n)
		}
		out = append(out, events.Interest{Tag: tag, Weight: w})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Tag < out[j].Tag })
	return out, nil
}

func weighOne(tags []string) []events.Interest {
	seen := make(map[string]bool, len(tags))
	out := make([]events.Interest, 0, len(tags))
	for _, t := range tags {
		if !seen[t] {
			seen[t] = true
			out = append(out, events.Interest{Tag: t, Weight: 1})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Tag < out[j].Tag })
	return out
}

// ParseBool reads a boolean column: t, true, f, false, 1, 0, yes, no, on,
// off (case-insensitive), as Postgres accepts them.
func ParseBool(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "t", "true", "1", "yes", "y", "on":
		return true, nil
	case "f", "false", "0", "no", "n", "off", "":
		return false, nil
	}
	return false, valueErrorf("want a boolean, got %.40q", s)
}

// ParseInt reads an integer column (int2, int4, int8, or numeric without
// fraction).
func ParseInt(s string) (int64, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return 0, valueErrorf("want an integer, got %.40q", s)
	}
	return n, nil
}

var timeLayouts = []string{
	"2006-01-02 15:04:05.999999999Z07:00:00",
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999Z07",
	"2006-01-02T15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999", // timestamp without time zone: UTC
	"2006-01-02",
}

// ParseTime reads a timestamptz, timestamp or date column in Postgres's ISO
// output (2026-11-25 15:46:34.123456+00), or RFC 3339. infinity and
// -infinity, and years outside 1..9999, are errors (an event cannot hold
// them).
func ParseTime(s string) (time.Time, error) {
	t := strings.TrimSpace(s)
	if strings.HasSuffix(t, " BC") {
		return time.Time{}, valueErrorf("timestamp before the common era: %.40q", s)
	}
	for _, l := range timeLayouts {
		if v, err := time.Parse(l, t); err == nil {
			return v.UTC(), nil
		}
	}
	return time.Time{}, valueErrorf("want a timestamp, got %.40q", s)
}

// validUTF8 replaces invalid UTF-8 (a bytea or SQL_ASCII column) so that the
// Avro string stays valid.
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}
