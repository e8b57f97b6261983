package pipeline

import (
	"errors"
	"fmt"
	"strings"
)

// Fields holds the values of one change, by field name, for templates and
// broadcast conditions. A scalar field has one value, a list field (tags,
// surrogate_keys) any number. Keys:
//
//   - "url", "tags", "attributes.author": the current value (after the change;
//     before it for a delete)
//   - "old.url", "new.url": the value before and after the change; a create
//     has no old values, a delete no new ones
//   - "op": create, update or delete
//
// [ChangeFields] builds such a map from the old and new values of a change.
type Fields map[string][]string

// ChangeFields builds the Fields of a change from its op and the field values
// before (old) and after (new) it, both keyed by plain field names ("url",
// "attributes.author"). Either may be nil. A field missing from new (an
// unchanged TOAST value, or a delete) takes its current value from old.
func ChangeFields(op string, old, new Fields) Fields {
	f := make(Fields, 2*len(new)+2*len(old)+1)
	for k, v := range new {
		f[k] = v
		f["new."+k] = v
	}
	for k, v := range old {
		f["old."+k] = v
		if _, ok := f[k]; !ok {
			f[k] = v
		}
	}
	if op != "" {
		f[FieldOp] = []string{op}
	}
	return f
}

// Template is a compiled purge or match template: literal text with
// placeholders in braces. A placeholder names a field of a content change,
// optionally prefixed with old. or new., and a list field takes [*]:
//
//	content:{id}   tag:{tags[*]}   {old.url}   author:{attributes.author}
//
// "{{" and "}}" stand for literal braces. A template holds at most one list
// placeholder, so it expands to at most as many strings as the list has
// values. The zero Template expands to nothing. Templates are immutable and
// safe for concurrent use.
type Template struct {
	src   string
	parts []part
}

// part is a literal (ref nil) or a placeholder.
type part struct {
	lit string
	ref *Ref
}

// Ref is a field reference inside a template or a broadcast condition.
type Ref struct {
	// Version is "", "old" or "new".
	Version string
	// Name is the field name: a content field such as "url" or "tags", or
	// "attributes.<name>".
	Name string
	// Each is set by [*]: one expansion per value of a list field.
	Each bool
}

// Key returns the Fields key of the reference: "old.url", "tags".
func (r Ref) Key() string {
	if r.Version == "" {
		return r.Name
	}
	return r.Version + "." + r.Name
}

// String returns the reference as written in a template, without braces.
func (r Ref) String() string {
	if r.Each {
		return r.Key() + "[*]"
	}
	return r.Key()
}

// Attribute returns the attribute name of an attributes.<name> reference,
// or "".
func (r Ref) Attribute() string {
	if a, ok := strings.CutPrefix(r.Name, attributesPrefix+"."); ok {
		return a
	}
	return ""
}

// ParseTemplate compiles src. Errors name the position and the problem:
// an unknown field, [*] on a scalar or its absence on a list, a stray brace,
// or more than one list placeholder.
func ParseTemplate(src string) (Template, error) {
	t := Template{src: src}
	if i := strings.IndexFunc(src, isControl); i >= 0 {
		return Template{}, fmt.Errorf("template %q: control character at offset %d", src, i)
	}
	var lit strings.Builder
	lists := 0
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == '{' && i+1 < len(src) && src[i+1] == '{':
			lit.WriteByte('{')
			i += 2
		case c == '}' && i+1 < len(src) && src[i+1] == '}':
			lit.WriteByte('}')
			i += 2
		case c == '}':
			return Template{}, fmt.Errorf("template %q: unmatched } at offset %d (write }} for a literal brace)", src, i)
		case c == '{':
			end := strings.IndexByte(src[i+1:], '}')
			if end < 0 {
				return Template{}, fmt.Errorf("template %q: unclosed { at offset %d", src, i)
			}
			expr := src[i+1 : i+1+end]
			if strings.ContainsRune(expr, '{') {
				return Template{}, fmt.Errorf("template %q: { inside a placeholder at offset %d", src, i)
			}
			ref, err := ParseRef(expr)
			if err != nil {
				return Template{}, fmt.Errorf("template %q: %w", src, err)
			}
			if ref.Each {
				lists++
				if lists > 1 {
					return Template{}, fmt.Errorf("template %q: more than one list placeholder ([*]); split it into several templates", src)
				}
			}
			if lit.Len() > 0 {
				t.parts = append(t.parts, part{lit: lit.String()})
				lit.Reset()
			}
			t.parts = append(t.parts, part{ref: &ref})
			i += end + 2
		default:
			lit.WriteByte(c)
			i++
		}
	}
	if lit.Len() > 0 {
		t.parts = append(t.parts, part{lit: lit.String()})
	}
	return t, nil
}

// MustParseTemplate is ParseTemplate that panics on error, for templates
// fixed in code and tests.
func MustParseTemplate(src string) Template {
	t, err := ParseTemplate(src)
	if err != nil {
		panic(err)
	}
	return t
}

// ParseRef parses a field reference as written inside braces, e.g. "url",
// "old.tags[*]", "attributes.author". The field must be a content field (see
// [ContentTemplateFields]) or attributes.<name>; [*] is required on list
// fields and refused on scalars; op takes no old./new. prefix.
func ParseRef(expr string) (Ref, error) {
	s := strings.TrimSpace(expr)
	if s == "" {
		return Ref{}, errors.New("empty placeholder {}")
	}
	var r Ref
	if rest, ok := strings.CutSuffix(s, "[*]"); ok {
		r.Each, s = true, rest
	}
	for _, v := range []string{"old", "new"} {
		if rest, ok := strings.CutPrefix(s, v+"."); ok {
			r.Version, s = v, rest
			break
		}
	}
	r.Name = s
	if attr, ok := strings.CutPrefix(s, attributesPrefix+"."); ok {
		if !isIdent(attr) {
			return Ref{}, fmt.Errorf("field %q: attribute name %q is not an identifier", expr, attr)
		}
		if r.Each {
			return Ref{}, fmt.Errorf("field %q: attributes are single values, [*] does not apply", expr)
		}
		return r, nil
	}
	kind, ok := contentTemplateFields[s]
	if !ok {
		return Ref{}, fmt.Errorf("unknown field %q (known: %s, attributes.<name>)", strings.TrimSpace(expr), strings.Join(ContentTemplateFields(), ", "))
	}
	switch {
	case kind == listField && !r.Each:
		return Ref{}, fmt.Errorf("field %q is a list: write {%s[*]}", s, r.Key())
	case kind != listField && r.Each:
		return Ref{}, fmt.Errorf("field %q is a single value: [*] does not apply", s)
	case kind == opField && r.Version != "":
		return Ref{}, fmt.Errorf("field %q takes no old. or new. prefix", s)
	}
	return r, nil
}

// String returns the template's source.
func (t Template) String() string { return t.src }

// IsZero reports whether t is the zero Template.
func (t Template) IsZero() bool { return t.src == "" && t.parts == nil }

// Refs returns the fields the template reads, in order.
func (t Template) Refs() []Ref {
	var out []Ref
	for _, p := range t.parts {
		if p.ref != nil {
			out = append(out, *p.ref)
		}
	}
	return out
}

// MarshalText returns the template's source.
func (t Template) MarshalText() ([]byte, error) { return []byte(t.src), nil }

// UnmarshalText compiles text with ParseTemplate.
func (t *Template) UnmarshalText(text []byte) error {
	c, err := ParseTemplate(string(text))
	if err != nil {
		return err
	}
	*t = c
	return nil
}

// Expand returns the strings t produces from f, without duplicates. A
// placeholder whose field is missing or empty produces nothing (never
// "tag:"); a list placeholder produces one string per non-empty value.
func (t Template) Expand(f Fields) []string { return t.AppendExpand(nil, f) }

// AppendExpand appends what Expand returns to dst, skipping strings dst
// already holds from this call, and returns the extended slice.
func (t Template) AppendExpand(dst []string, f Fields) []string {
	if t.IsZero() {
		return dst
	}
	start := len(dst)
	// Resolve scalars first; find the list placeholder, if any.
	var list []string
	hasList := false
	for _, p := range t.parts {
		if p.ref == nil {
			continue
		}
		if p.ref.Each {
			list, hasList = f[p.ref.Key()], true
			continue
		}
		if scalar(f, p.ref) == "" {
			return dst
		}
	}
	if !hasList {
		return append(dst, t.render(f, ""))
	}
	var u uniq
	for _, v := range list {
		if v != "" {
			dst = u.add(dst, start, t.render(f, v))
		}
	}
	return dst
}

// uniq appends strings to a slice without duplicates: a linear scan for
// short slices, a set past that.
type uniq struct {
	seen map[string]struct{}
}

const uniqLinear = 32

// add appends s to dst unless dst[start:] holds it.
func (u *uniq) add(dst []string, start int, s string) []string {
	if u.seen == nil && len(dst)-start < uniqLinear {
		for _, x := range dst[start:] {
			if x == s {
				return dst
			}
		}
		return append(dst, s)
	}
	if u.seen == nil {
		u.seen = make(map[string]struct{}, 2*uniqLinear)
		for _, x := range dst[start:] {
			u.seen[x] = struct{}{}
		}
	}
	if _, ok := u.seen[s]; ok {
		return dst
	}
	u.seen[s] = struct{}{}
	return append(dst, s)
}

func (t Template) render(f Fields, each string) string {
	var b strings.Builder
	for _, p := range t.parts {
		switch {
		case p.ref == nil:
			b.WriteString(p.lit)
		case p.ref.Each:
			b.WriteString(each)
		default:
			b.WriteString(scalar(f, p.ref))
		}
	}
	return b.String()
}

func scalar(f Fields, r *Ref) string {
	if v := f[r.Key()]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// Literal returns the template's literal text (what is not a placeholder).
func (t Template) Literal() string {
	var b strings.Builder
	for _, p := range t.parts {
		b.WriteString(p.lit)
	}
	return b.String()
}

// ExpandAll expands every template over f and returns the union, in order,
// without duplicates: the purge set (or match keys) of one change.
func ExpandAll(ts []Template, f Fields) []string {
	var out, scratch []string
	var u uniq
	for _, t := range ts {
		scratch = t.AppendExpand(scratch[:0], f)
		for _, s := range scratch {
			out = u.add(out, 0, s)
		}
	}
	return out
}
