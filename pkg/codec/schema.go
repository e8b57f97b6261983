package codec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// kind is the Avro type of a schema node.
type kind uint8

const (
	kNull kind = iota
	kBoolean
	kInt
	kLong
	kFloat
	kDouble
	kBytes
	kString
	kRecord
	kEnum
	kArray
	kMap
	kUnion
	kFixed
)

var primitives = map[string]kind{
	"null": kNull, "boolean": kBoolean, "int": kInt, "long": kLong,
	"float": kFloat, "double": kDouble, "bytes": kBytes, "string": kString,
}

var kindNames = [...]string{
	kNull: "null", kBoolean: "boolean", kInt: "int", kLong: "long", kFloat: "float",
	kDouble: "double", kBytes: "bytes", kString: "string", kRecord: "record",
	kEnum: "enum", kArray: "array", kMap: "map", kUnion: "union", kFixed: "fixed",
}

func (k kind) String() string { return kindNames[k] }

// goavroLogical lists the logical types goavro turns into their own native
// form (time.Time, time.Duration); it keys union branches of those types as
// "<primitive>.<logicalType>".
var goavroLogical = map[string]kind{
	"timestamp-millis": kLong, "timestamp-micros": kLong, "time-micros": kLong,
	"time-millis": kInt, "date": kInt,
}

// node is one type of a parsed Avro schema. Named types referenced more than
// once are the same *node, so a recursive schema is a cyclic graph.
type node struct {
	kind     kind
	name     string // full name of a record, enum or fixed
	aliases  []string
	logical  string // logicalType goavro understands, "" otherwise
	fields   []*field
	symbols  []string
	enumDef  string // enum default symbol, "" when none
	items    *node  // array
	values   *node  // map
	branches []*node
	size     int // fixed

	minSize int // fewest bytes an encoded value takes; -1 while computing
	sized   bool
}

// field is one field of a record.
type field struct {
	name       string
	aliases    []string
	typ        *node
	def        any // JSON default (numbers as json.Number)
	hasDefault bool
}

// shortName is the unqualified part of a full name.
func shortName(full string) string {
	if i := strings.LastIndexByte(full, '.'); i >= 0 {
		return full[i+1:]
	}
	return full
}

// unionKey is the key goavro uses for a value of n inside a union.
func (n *node) unionKey() string {
	switch n.kind {
	case kRecord, kEnum, kFixed:
		return n.name
	case kArray, kMap:
		return n.kind.String()
	}
	if n.logical != "" {
		return n.kind.String() + "." + n.logical
	}
	return n.kind.String()
}

// computeMinSize returns the fewest bytes a value of n can be encoded in.
func (n *node) computeMinSize() int {
	if n.sized {
		return n.minSize
	}
	if n.minSize < 0 { // recursion: a cycle adds nothing
		return 0
	}
	n.minSize = -1
	m := 0
	switch n.kind {
	case kNull:
	case kFloat:
		m = 4
	case kDouble:
		m = 8
	case kFixed:
		m = n.size
	case kRecord:
		for _, f := range n.fields {
			m += f.typ.computeMinSize()
		}
	case kUnion:
		m = 1
		for _, b := range n.branches {
			b.computeMinSize()
		}
	case kArray:
		m = 1
		n.items.computeMinSize()
	case kMap:
		m = 1
		n.values.computeMinSize()
	default: // boolean, int, long, bytes, string, enum
		m = 1
	}
	n.minSize, n.sized = m, true
	return m
}

// decodeJSON decodes a schema text keeping numbers exact.
func decodeJSON(text []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(text))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	if d.More() {
		return nil, fmt.Errorf("trailing data after the schema")
	}
	return v, nil
}

// qualify returns the full name of a type name used in namespace ns.
func qualify(name, ns string) string {
	if strings.ContainsRune(name, '.') || ns == "" {
		return name
	}
	return ns + "." + name
}

// definedName returns the full name a named type's definition declares, and
// the namespace its children inherit.
func definedName(m map[string]any, ns string) (string, error) {
	name, ok := m["name"].(string)
	if !ok || name == "" {
		return "", fmt.Errorf("named type without a name")
	}
	if strings.ContainsRune(name, '.') {
		return name, nil
	}
	if s, ok := m["namespace"].(string); ok {
		ns = s
	}
	return qualify(name, ns), nil
}

func namespaceOf(full string) string {
	if i := strings.LastIndexByte(full, '.'); i >= 0 {
		return full[:i]
	}
	return ""
}

// inliner makes a schema self-contained: the first reference to a shared
// named type that the schema does not define is replaced by a copy of that
// type's definition (from lib), and later references stay names.
type inliner struct {
	lib     map[string]map[string]any // full name -> definition
	defined map[string]bool
}

func (in *inliner) walk(s any, ns string) (any, error) {
	switch t := s.(type) {
	case string:
		if _, ok := primitives[t]; ok {
			return t, nil
		}
		full := qualify(t, ns)
		if in.defined[full] || in.defined[t] {
			return t, nil
		}
		def, ok := in.lib[full]
		if !ok {
			def, ok = in.lib[t]
		}
		if !ok {
			return nil, fmt.Errorf("unknown type %q", t)
		}
		return in.walk(deepCopy(def), ns)
	case []any:
		for i, b := range t {
			r, err := in.walk(b, ns)
			if err != nil {
				return nil, err
			}
			t[i] = r
		}
		return t, nil
	case map[string]any:
		return in.walkObject(t, ns)
	default:
		return nil, fmt.Errorf("invalid schema element %T", s)
	}
}

func (in *inliner) walkObject(m map[string]any, ns string) (any, error) {
	switch typ := m["type"].(type) {
	case string:
		switch typ {
		case "record", "error", "enum", "fixed":
			full, err := definedName(m, ns)
			if err != nil {
				return nil, err
			}
			if in.defined[full] {
				return nil, fmt.Errorf("type %q defined twice", full)
			}
			in.defined[full] = true
			if typ == "enum" || typ == "fixed" {
				return m, nil
			}
			fields, ok := m["fields"].([]any)
			if !ok {
				return nil, fmt.Errorf("record %q: fields must be an array", full)
			}
			for _, f := range fields {
				fm, ok := f.(map[string]any)
				if !ok {
					return nil, fmt.Errorf("record %q: field must be an object", full)
				}
				r, err := in.walk(fm["type"], namespaceOf(full))
				if err != nil {
					return nil, fmt.Errorf("record %q field %v: %w", full, fm["name"], err)
				}
				fm["type"] = r
			}
			return m, nil
		case "array":
			r, err := in.walk(m["items"], ns)
			if err != nil {
				return nil, fmt.Errorf("array items: %w", err)
			}
			m["items"] = r
			return m, nil
		case "map":
			r, err := in.walk(m["values"], ns)
			if err != nil {
				return nil, fmt.Errorf("map values: %w", err)
			}
			m["values"] = r
			return m, nil
		}
		if _, ok := primitives[typ]; ok {
			return m, nil
		}
		r, err := in.walk(typ, ns)
		if err != nil {
			return nil, err
		}
		m["type"] = r
		return m, nil
	case nil:
		return nil, fmt.Errorf("object without a type")
	default:
		r, err := in.walk(typ, ns)
		if err != nil {
			return nil, err
		}
		m["type"] = r
		return m, nil
	}
}

func deepCopy(v any) any {
	switch t := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(t))
		for k, e := range t {
			m[k] = deepCopy(e)
		}
		return m
	case []any:
		s := make([]any, len(t))
		for i, e := range t {
			s[i] = deepCopy(e)
		}
		return s
	default:
		return v
	}
}

// parser turns self-contained schema JSON into a node graph.
type parser struct {
	names map[string]*node
}

func parseSchema(s any) (*node, error) {
	p := &parser{names: map[string]*node{}}
	n, err := p.parse(s, "")
	if err != nil {
		return nil, err
	}
	n.computeMinSize()
	return n, nil
}

func (p *parser) parse(s any, ns string) (*node, error) {
	switch t := s.(type) {
	case string:
		if k, ok := primitives[t]; ok {
			return &node{kind: k}, nil
		}
		if n, ok := p.names[qualify(t, ns)]; ok {
			return n, nil
		}
		if n, ok := p.names[t]; ok {
			return n, nil
		}
		return nil, fmt.Errorf("unknown type %q", t)
	case []any:
		u := &node{kind: kUnion}
		seen := map[string]bool{}
		for _, b := range t {
			bn, err := p.parse(b, ns)
			if err != nil {
				return nil, err
			}
			if bn.kind == kUnion {
				return nil, fmt.Errorf("union inside a union")
			}
			key := bn.unionKey()
			if seen[key] {
				return nil, fmt.Errorf("union holds %q twice", key)
			}
			seen[key] = true
			u.branches = append(u.branches, bn)
		}
		if len(u.branches) == 0 {
			return nil, fmt.Errorf("empty union")
		}
		return u, nil
	case map[string]any:
		return p.parseObject(t, ns)
	default:
		return nil, fmt.Errorf("invalid schema element %T", s)
	}
}

func (p *parser) parseObject(m map[string]any, ns string) (*node, error) {
	typ, ok := m["type"].(string)
	if !ok {
		if m["type"] == nil {
			return nil, fmt.Errorf("object without a type")
		}
		return p.parse(m["type"], ns)
	}
	switch typ {
	case "record", "error", "enum", "fixed":
		full, err := definedName(m, ns)
		if err != nil {
			return nil, err
		}
		if _, dup := p.names[full]; dup {
			return nil, fmt.Errorf("type %q defined twice", full)
		}
		n := &node{name: full, aliases: aliasesOf(m["aliases"], namespaceOf(full))}
		p.names[full] = n
		switch typ {
		case "enum":
			n.kind = kEnum
			syms, _ := m["symbols"].([]any)
			for _, s := range syms {
				str, ok := s.(string)
				if !ok {
					return nil, fmt.Errorf("enum %q: symbol must be a string", full)
				}
				n.symbols = append(n.symbols, str)
			}
			if len(n.symbols) == 0 {
				return nil, fmt.Errorf("enum %q without symbols", full)
			}
			if d, ok := m["default"].(string); ok {
				n.enumDef = d
			}
		case "fixed":
			n.kind = kFixed
			size, err := jsonInt(m["size"])
			if err != nil || size < 0 {
				return nil, fmt.Errorf("fixed %q: bad size", full)
			}
			n.size = int(size)
		default:
			n.kind = kRecord
			fields, ok := m["fields"].([]any)
			if !ok {
				return nil, fmt.Errorf("record %q: fields must be an array", full)
			}
			for _, f := range fields {
				fm, ok := f.(map[string]any)
				if !ok {
					return nil, fmt.Errorf("record %q: field must be an object", full)
				}
				name, _ := fm["name"].(string)
				if name == "" {
					return nil, fmt.Errorf("record %q: field without a name", full)
				}
				ft, err := p.parse(fm["type"], namespaceOf(full))
				if err != nil {
					return nil, fmt.Errorf("record %q field %q: %w", full, name, err)
				}
				def, has := fm["default"]
				n.fields = append(n.fields, &field{
					name: name, aliases: aliasesOf(fm["aliases"], ""), typ: ft,
					def: def, hasDefault: has,
				})
			}
		}
		return n, nil
	case "array":
		items, err := p.parse(m["items"], ns)
		if err != nil {
			return nil, fmt.Errorf("array items: %w", err)
		}
		return &node{kind: kArray, items: items}, nil
	case "map":
		values, err := p.parse(m["values"], ns)
		if err != nil {
			return nil, fmt.Errorf("map values: %w", err)
		}
		return &node{kind: kMap, values: values}, nil
	}
	if k, ok := primitives[typ]; ok {
		n := &node{kind: k}
		if lt, ok := m["logicalType"].(string); ok && goavroLogical[lt] == k && k != kNull {
			n.logical = lt
		}
		return n, nil
	}
	return p.parse(typ, ns)
}

func aliasesOf(v any, ns string) []string {
	list, _ := v.([]any)
	var out []string
	for _, a := range list {
		if s, ok := a.(string); ok {
			out = append(out, qualify(s, ns))
		}
	}
	return out
}

func jsonInt(v any) (int64, error) {
	switch t := v.(type) {
	case json.Number:
		return t.Int64()
	case float64:
		return int64(t), nil
	}
	return 0, fmt.Errorf("not a number: %v", v)
}
