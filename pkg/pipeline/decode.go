package pipeline

import (
	"encoding"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/freshet/freshet/pkg/config"
	"gopkg.in/yaml.v3"
)

// Error is one problem in a pipeline file, at a line and field.
type Error struct {
	// File is the name given to Parse (the path for Load).
	File string
	// Line is 1-based; 0 when the problem has no place in the file (a
	// pipeline built in code).
	Line int
	// Field is the path of the field, e.g. capture.tables[1].key; "" for the
	// file as a whole.
	Field string
	// Msg says what is wrong.
	Msg string
}

// Error returns "file:line: field: msg".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteString(":")
		b.WriteString(strconv.Itoa(e.Line))
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// joinErrors returns nil for no errors, errors.Join otherwise.
func joinErrors(errs []error) error { return errors.Join(errs...) }

// Limits that keep a hostile file from exhausting memory or the stack
// (aliases can make a small file expand to a huge tree).
const (
	maxDepth = 64
	maxNodes = 100_000
)

// decoder maps a yaml.Node tree onto the Go structs of this package using
// their yaml tags, records the line of every field, and collects errors
// instead of stopping at the first.
type decoder struct {
	file   string
	errs   []*Error
	lines  map[string]int
	nodes  int
	lookup config.LookupFunc // for fields tagged pipeline:"env"
}

func (d *decoder) errorf(line int, path, format string, args ...any) {
	d.errs = append(d.errs, &Error{File: d.file, Line: line, Field: path, Msg: fmt.Sprintf(format, args...)})
}

var (
	durationType        = reflect.TypeFor[time.Duration]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// decode sets v from n. Fields absent from n keep their value in v, so
// decoding into Default() applies the defaults; a list replaces the whole
// slice; a mapping merges into a map.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string, depth int) {
	d.nodes++
	if d.nodes > maxNodes {
		if d.nodes == maxNodes+1 {
			d.errorf(n.Line, path, "the file expands to more than %d nodes (aliases?)", maxNodes)
		}
		return
	}
	if depth > maxDepth {
		d.errorf(n.Line, path, "nested deeper than %d levels", maxDepth)
		return
	}
	if n.Kind == yaml.AliasNode {
		if n.Alias == nil {
			d.errorf(n.Line, path, "unknown alias")
			return
		}
		d.decode(n.Alias, v, path, depth+1)
		return
	}
	if _, ok := d.lines[path]; !ok {
		d.lines[path] = n.Line
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return // null: keep the default
	}
	t := v.Type()
	switch {
	case t == durationType:
		s, ok := d.scalar(n, path, "a duration (500ms, 10s, 1h30m)")
		if !ok {
			return
		}
		dur, err := time.ParseDuration(s)
		if err != nil {
			d.errorf(n.Line, path, "want a duration (500ms, 10s, 1h30m), got %q", s)
			return
		}
		v.SetInt(int64(dur))
		return
	case reflect.PointerTo(t).Implements(textUnmarshalerType):
		s, ok := d.scalar(n, path, "a string")
		if !ok {
			return
		}
		if err := v.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(s)); err != nil {
			d.errorf(n.Line, path, "%v", err)
		}
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		d.decodeStruct(n, v, path, depth)
	case reflect.Map:
		d.decodeMap(n, v, path, depth)
	case reflect.Slice:
		d.decodeSlice(n, v, path, depth)
	case reflect.String:
		if s, ok := d.scalar(n, path, "a string"); ok {
			if i := strings.IndexFunc(s, isControl); i >= 0 {
				d.errorf(n.Line, path, "control character at offset %d of %q", i, s)
				return
			}
			v.SetString(s)
		}
	case reflect.Bool:
		if !d.want(n, path, "true or false", "!!bool") {
			return
		}
		var b bool
		if err := n.Decode(&b); err != nil {
			d.errorf(n.Line, path, "want true or false, got %q", n.Value)
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if !d.want(n, path, "an integer", "!!int") {
			return
		}
		var i int64
		if err := n.Decode(&i); err != nil || v.OverflowInt(i) {
			d.errorf(n.Line, path, "integer %s out of range", n.Value)
			return
		}
		v.SetInt(i)
	case reflect.Float64:
		if !d.want(n, path, "a number", "!!float", "!!int") {
			return
		}
		var f float64
		if err := n.Decode(&f); err != nil {
			d.errorf(n.Line, path, "want a number, got %q", n.Value)
			return
		}
		v.SetFloat(f)
	default:
		// Only reached if a type of this package gains an unsupported field.
		d.errorf(n.Line, path, "cannot decode into %s", t)
	}
}

// scalar returns n's value if n is a scalar; what names the expected value.
func (d *decoder) scalar(n *yaml.Node, path, what string) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		d.errorf(n.Line, path, "want %s, got %s", what, describeNode(n))
		return "", false
	}
	return n.Value, true
}

// want checks that n is a scalar with one of tags.
func (d *decoder) want(n *yaml.Node, path, what string, tags ...string) bool {
	if n.Kind != yaml.ScalarNode {
		d.errorf(n.Line, path, "want %s, got %s", what, describeNode(n))
		return false
	}
	for _, t := range tags {
		if n.ShortTag() == t {
			return true
		}
	}
	d.errorf(n.Line, path, "want %s, got %s", what, describeNode(n))
	return false
}

func describeNode(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.DocumentNode:
		return "a document"
	case yaml.AliasNode:
		return "an alias"
	}
	switch n.ShortTag() {
	case "!!str":
		return fmt.Sprintf("the string %q", n.Value)
	case "!!int":
		return "the integer " + n.Value
	case "!!float":
		return "the number " + n.Value
	case "!!bool":
		return "the boolean " + n.Value
	}
	return fmt.Sprintf("%q", n.Value)
}

// yamlFields lists the yaml keys of a struct type and their field indexes.
func yamlFields(t reflect.Type) (names []string, index map[string]int) {
	index = map[string]int{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		names = append(names, name)
		index[name] = i
	}
	return names, index
}

// secretKeys are keys people write when they try to put a secret in the
// file; the error says what to do instead.
var secretKeys = regexp.MustCompile(`(?i)^(token|api_?token|api_?key|password|passwd|secret|credentials?|auth|authorization)$`)

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string, depth int) {
	if n.Kind != yaml.MappingNode {
		d.errorf(n.Line, path, "want a mapping, got %s", describeNode(n))
		return
	}
	names, index := yamlFields(v.Type())
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.errorf(k.Line, path, "keys must be names, got %s", describeNode(k))
			continue
		}
		key := k.Value
		fpath := joinField(path, key)
		if k.ShortTag() == "!!merge" {
			d.errorf(k.Line, path, "merge keys (<<) are not supported")
			continue
		}
		if prev, dup := seen[key]; dup {
			d.errorf(k.Line, fpath, "duplicate key (first at line %d)", prev)
			continue
		}
		seen[key] = k.Line
		if path == "" && strings.HasPrefix(key, "x-") {
			continue // extension keys hold anchors for aliases elsewhere
		}
		fi, ok := index[key]
		if !ok {
			d.errorf(k.Line, fpath, "%s", unknownKey(key, names))
			continue
		}
		d.lines[fpath] = k.Line
		if v.Type().Field(fi).Tag.Get("pipeline") == "env" && val.Kind == yaml.ScalarNode && val.ShortTag() == "!!str" && d.lookup != nil {
			s, err := expandEnv(val.Value, d.lookup)
			if err != nil {
				d.errorf(val.Line, fpath, "%v", err)
				continue
			}
			expanded := *val
			expanded.Value = s
			val = &expanded
		}
		d.decode(val, v.Field(fi), fpath, depth+1)
	}
}

func unknownKey(key string, names []string) string {
	if secretKeys.MatchString(key) {
		return fmt.Sprintf("unknown key %q: secrets never go in the pipeline file; name an environment variable with token_env", key)
	}
	msg := fmt.Sprintf("unknown key %q", key)
	if s := suggest(key, names); s != "" {
		return msg + fmt.Sprintf(" (did you mean %q?)", s)
	}
	return msg + " (known: " + strings.Join(names, ", ") + ")"
}

// suggest returns the name closest to key, if close enough to be a typo.
func suggest(key string, names []string) string {
	best, bestDist := "", 3
	for _, n := range names {
		if dist := editDistance(strings.ToLower(key), n); dist < bestDist {
			best, bestDist = n, dist
		}
	}
	return best
}

func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 99
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func (d *decoder) decodeMap(n *yaml.Node, v reflect.Value, path string, depth int) {
	if n.Kind != yaml.MappingNode {
		d.errorf(n.Line, path, "want a mapping, got %s", describeNode(n))
		return
	}
	t := v.Type()
	if len(n.Content) > 0 && v.IsNil() {
		v.Set(reflect.MakeMap(t))
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.ShortTag() == "!!null" {
			d.errorf(k.Line, path, "keys must be names, got %s", describeNode(k))
			continue
		}
		if k.ShortTag() == "!!merge" {
			d.errorf(k.Line, path, "merge keys (<<) are not supported")
			continue
		}
		key := k.Value
		fpath := mapField(path, key)
		if i := strings.IndexFunc(key, isControl); i >= 0 {
			d.errorf(k.Line, path, "control character at offset %d of key %q", i, key)
			continue
		}
		if prev, dup := seen[key]; dup {
			d.errorf(k.Line, fpath, "duplicate key (first at line %d)", prev)
			continue
		}
		seen[key] = k.Line
		d.lines[fpath] = k.Line
		elem := reflect.New(t.Elem()).Elem()
		if old := v.MapIndex(reflect.ValueOf(key)); old.IsValid() {
			elem.Set(old)
		}
		d.decode(val, elem, fpath, depth+1)
		v.SetMapIndex(reflect.ValueOf(key), elem)
	}
}

func (d *decoder) decodeSlice(n *yaml.Node, v reflect.Value, path string, depth int) {
	t := v.Type()
	if n.Kind == yaml.ScalarNode {
		// A single value stands for a list of one, where items are scalars.
		et := t.Elem()
		if et.Kind() == reflect.String || reflect.PointerTo(et).Implements(textUnmarshalerType) {
			s := reflect.MakeSlice(t, 1, 1)
			d.decode(n, s.Index(0), path+"[0]", depth+1)
			v.Set(s)
			return
		}
	}
	if n.Kind != yaml.SequenceNode {
		d.errorf(n.Line, path, "want a list, got %s", describeNode(n))
		return
	}
	if len(n.Content) == 0 {
		v.SetZero()
		return
	}
	s := reflect.MakeSlice(t, len(n.Content), len(n.Content))
	for i, item := range n.Content {
		ipath := fmt.Sprintf("%s[%d]", path, i)
		d.lines[ipath] = item.Line
		d.decode(item, s.Index(i), ipath, depth+1)
	}
	v.Set(s)
}

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func isIdent(s string) bool { return identRE.MatchString(s) }

// joinField appends a struct key to a path: capture.tables.
func joinField(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// mapField appends a map key to a path: columns.title, or
// topics[content.changes] when the key is not an identifier.
func mapField(path, key string) string {
	if isIdent(key) {
		return joinField(path, key)
	}
	return path + "[" + key + "]"
}

// sortErrors orders errors by line, keeping the order of errors on one line.
func sortErrors(errs []*Error) {
	sort.SliceStable(errs, func(i, j int) bool { return errs[i].Line < errs[j].Line })
}
