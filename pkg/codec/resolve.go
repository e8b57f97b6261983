package codec

import (
	"encoding/json"
	"fmt"
	"math"
	"time"
)

// This file implements Avro schema resolution (the specification's "Schema
// Resolution" section) on goavro's native values: a value decoded with the
// writer's schema is turned into the value the reader's schema describes.
// goavro has no reader/writer resolution of its own.

// resolve converts v, a native value of writer schema w, into a native value
// of reader schema r.
func resolve(w, r *node, v any) (any, error) {
	if w.kind == kUnion {
		wb, inner, err := unionBranch(w, v)
		if err != nil {
			return nil, err
		}
		return resolve(wb, r, inner)
	}
	if r.kind == kUnion {
		rb := pickBranch(w, r)
		if rb == nil {
			return nil, fmt.Errorf("writer type %s matches no branch of the reader's union", describe(w))
		}
		out, err := resolve(w, rb, v)
		if err != nil || rb.kind == kNull {
			return nil, err
		}
		return map[string]any{rb.unionKey(): out}, nil
	}
	switch r.kind {
	case kRecord:
		if w.kind != kRecord || !namesMatch(w, r) {
			return nil, mismatch(w, r)
		}
		return resolveRecord(w, r, v)
	case kEnum:
		if w.kind != kEnum || !namesMatch(w, r) {
			return nil, mismatch(w, r)
		}
		sym, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("enum %s: value %T is not a string", r.name, v)
		}
		for _, s := range r.symbols {
			if s == sym {
				return sym, nil
			}
		}
		if r.enumDef != "" {
			return r.enumDef, nil
		}
		return nil, fmt.Errorf("enum %s: symbol %q unknown to the reader, which has no default", r.name, sym)
	case kFixed:
		if w.kind != kFixed || !namesMatch(w, r) || w.size != r.size {
			return nil, mismatch(w, r)
		}
		return v, nil
	case kArray:
		if w.kind != kArray {
			return nil, mismatch(w, r)
		}
		in, ok := v.([]any)
		if !ok {
			return nil, fmt.Errorf("array: value %T is not []any", v)
		}
		out := make([]any, len(in))
		for i, e := range in {
			x, err := resolve(w.items, r.items, e)
			if err != nil {
				return nil, fmt.Errorf("item %d: %w", i, err)
			}
			out[i] = x
		}
		return out, nil
	case kMap:
		if w.kind != kMap {
			return nil, mismatch(w, r)
		}
		in, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("map: value %T is not map[string]any", v)
		}
		out := make(map[string]any, len(in))
		for k, e := range in {
			x, err := resolve(w.values, r.values, e)
			if err != nil {
				return nil, fmt.Errorf("map value %q: %w", k, err)
			}
			out[k] = x
		}
		return out, nil
	}
	return resolvePrimitive(w, r, v)
}

func resolveRecord(w, r *node, v any) (any, error) {
	in, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("record %s: value %T is not map[string]any", r.name, v)
	}
	out := make(map[string]any, len(r.fields))
	for _, rf := range r.fields {
		wf := writerField(w, rf)
		if wf == nil {
			if !rf.hasDefault {
				return nil, fmt.Errorf("record %s: field %q is not in the writer's schema and has no default", r.name, rf.name)
			}
			d, err := defaultValue(rf.typ, rf.def)
			if err != nil {
				return nil, fmt.Errorf("record %s field %q default: %w", r.name, rf.name, err)
			}
			out[rf.name] = d
			continue
		}
		x, err := resolve(wf.typ, rf.typ, in[wf.name])
		if err != nil {
			return nil, fmt.Errorf("record %s field %q: %w", r.name, rf.name, err)
		}
		out[rf.name] = x
	}
	return out, nil
}

// writerField finds the writer's field for reader field rf, by name or by
// one of rf's aliases.
func writerField(w *node, rf *field) *field {
	for _, wf := range w.fields {
		if wf.name == rf.name {
			return wf
		}
	}
	for _, a := range rf.aliases {
		for _, wf := range w.fields {
			if wf.name == a {
				return wf
			}
		}
	}
	return nil
}

// namesMatch reports whether two named types resolve to each other: same
// unqualified name, or the reader lists the writer's name as an alias.
func namesMatch(w, r *node) bool {
	if shortName(w.name) == shortName(r.name) {
		return true
	}
	for _, a := range r.aliases {
		if a == w.name || shortName(a) == shortName(w.name) {
			return true
		}
	}
	return false
}

// unionBranch returns the writer branch a native union value was written with.
func unionBranch(u *node, v any) (*node, any, error) {
	if v == nil {
		for _, b := range u.branches {
			if b.kind == kNull {
				return b, nil, nil
			}
		}
		return nil, nil, fmt.Errorf("union value is null but the union has no null")
	}
	m, ok := v.(map[string]any)
	if !ok || len(m) != 1 {
		return nil, nil, fmt.Errorf("union value %T is not a one-key map", v)
	}
	var key string
	var inner any
	for key, inner = range m {
	}
	for _, b := range u.branches {
		if b.unionKey() == key {
			return b, inner, nil
		}
	}
	return nil, nil, fmt.Errorf("union has no branch %q", key)
}

// pickBranch returns the reader union branch a writer type resolves to: the
// first of the same type, else the first it can be promoted to.
func pickBranch(w, r *node) *node {
	for _, b := range r.branches {
		if sameType(w, b) {
			return b
		}
	}
	for _, b := range r.branches {
		if promotable(w.kind, b.kind) {
			return b
		}
	}
	return nil
}

func sameType(w, r *node) bool {
	if w.kind != r.kind {
		return false
	}
	switch w.kind {
	case kRecord, kEnum, kFixed:
		return namesMatch(w, r)
	}
	return true
}

// promotable reports whether the specification lets a writer primitive be
// read as a reader primitive of another type.
func promotable(w, r kind) bool {
	switch w {
	case kInt:
		return r == kLong || r == kFloat || r == kDouble
	case kLong:
		return r == kFloat || r == kDouble
	case kFloat:
		return r == kDouble
	case kString:
		return r == kBytes
	case kBytes:
		return r == kString
	}
	return false
}

func resolvePrimitive(w, r *node, v any) (any, error) {
	if w.kind != r.kind && !promotable(w.kind, r.kind) {
		return nil, mismatch(w, r)
	}
	// Timestamps (and times of day) of another unit keep their value.
	if sameFamily(w.logical, r.logical) {
		switch t := v.(type) {
		case time.Time:
			if r.logical == "timestamp-millis" {
				return t.Truncate(time.Millisecond), nil
			}
			return t, nil
		case time.Duration:
			if r.logical == "time-millis" {
				return t.Truncate(time.Millisecond), nil
			}
			return t, nil
		}
	}
	raw, err := toRaw(w, v)
	if err != nil {
		return nil, err
	}
	switch r.kind {
	case kLong:
		if i, ok := raw.(int32); ok {
			raw = int64(i)
		}
	case kFloat:
		switch t := raw.(type) {
		case int32:
			raw = float32(t)
		case int64:
			raw = float32(t)
		}
	case kDouble:
		switch t := raw.(type) {
		case int32:
			raw = float64(t)
		case int64:
			raw = float64(t)
		case float32:
			raw = float64(t)
		}
	case kBytes:
		if s, ok := raw.(string); ok {
			raw = []byte(s)
		}
	case kString:
		if b, ok := raw.([]byte); ok {
			raw = string(b)
		}
	}
	return fromRaw(r, raw)
}

// sameFamily reports whether two logical types are the same quantity in
// possibly different units.
func sameFamily(a, b string) bool {
	family := func(l string) string {
		switch l {
		case "timestamp-millis", "timestamp-micros":
			return "timestamp"
		case "time-millis", "time-micros":
			return "time"
		}
		return ""
	}
	return a != "" && b != "" && family(a) != "" && family(a) == family(b)
}

// toRaw turns goavro's native form of a logical type back into its
// primitive (int32 or int64).
func toRaw(n *node, v any) (any, error) {
	switch n.logical {
	case "":
		return v, nil
	case "timestamp-micros":
		t, ok := v.(time.Time)
		if !ok {
			return v, nil
		}
		return t.Unix()*1e6 + int64(t.Nanosecond()/1e3), nil
	case "timestamp-millis":
		t, ok := v.(time.Time)
		if !ok {
			return v, nil
		}
		return t.Unix()*1e3 + int64(t.Nanosecond()/1e6), nil
	case "date":
		t, ok := v.(time.Time)
		if !ok {
			return v, nil
		}
		return int32(t.Unix() / 86400), nil
	case "time-millis":
		d, ok := v.(time.Duration)
		if !ok {
			return v, nil
		}
		return int32(d / time.Millisecond), nil
	case "time-micros":
		d, ok := v.(time.Duration)
		if !ok {
			return v, nil
		}
		return int64(d / time.Microsecond), nil
	}
	return v, nil
}

// fromRaw turns a primitive into goavro's native form of n's logical type.
func fromRaw(n *node, v any) (any, error) {
	switch n.logical {
	case "timestamp-micros":
		if i, ok := v.(int64); ok {
			return time.Unix(i/1e6, (i%1e6)*1e3).UTC(), nil
		}
	case "timestamp-millis":
		if i, ok := v.(int64); ok {
			return time.Unix(i/1e3, (i%1e3)*1e6).UTC(), nil
		}
	case "date":
		if i, ok := v.(int32); ok {
			return time.Unix(int64(i)*86400, 0).UTC(), nil
		}
	case "time-millis":
		if i, ok := v.(int32); ok {
			return time.Duration(i) * time.Millisecond, nil
		}
	case "time-micros":
		if i, ok := v.(int64); ok {
			return time.Duration(i) * time.Microsecond, nil
		}
	}
	return v, nil
}

// defaultValue turns a field's JSON default into the native value of n.
func defaultValue(n *node, d any) (any, error) {
	switch n.kind {
	case kNull:
		if d != nil {
			return nil, fmt.Errorf("default %v for null", d)
		}
		return nil, nil
	case kBoolean:
		b, ok := d.(bool)
		if !ok {
			return nil, fmt.Errorf("default %v is not a boolean", d)
		}
		return b, nil
	case kInt, kLong, kFloat, kDouble:
		num, ok := d.(json.Number)
		if !ok {
			return nil, fmt.Errorf("default %v is not a number", d)
		}
		var raw any
		switch n.kind {
		case kInt:
			i, err := num.Int64()
			if err != nil || i < math.MinInt32 || i > math.MaxInt32 {
				return nil, fmt.Errorf("default %v is not an int", d)
			}
			raw = int32(i)
		case kLong:
			i, err := num.Int64()
			if err != nil {
				return nil, fmt.Errorf("default %v is not a long", d)
			}
			raw = i
		case kFloat:
			f, err := num.Float64()
			if err != nil {
				return nil, fmt.Errorf("default %v is not a float", d)
			}
			raw = float32(f)
		default:
			f, err := num.Float64()
			if err != nil {
				return nil, fmt.Errorf("default %v is not a double", d)
			}
			raw = f
		}
		return fromRaw(n, raw)
	case kString, kEnum:
		s, ok := d.(string)
		if !ok {
			return nil, fmt.Errorf("default %v is not a string", d)
		}
		return s, nil
	case kBytes, kFixed:
		s, ok := d.(string)
		if !ok {
			return nil, fmt.Errorf("default %v is not a string", d)
		}
		b := make([]byte, 0, len(s))
		for _, r := range s {
			if r > 0xff {
				return nil, fmt.Errorf("default %q has a code point above U+00FF", s)
			}
			b = append(b, byte(r))
		}
		return b, nil
	case kArray:
		list, ok := d.([]any)
		if !ok {
			return nil, fmt.Errorf("default %v is not an array", d)
		}
		out := make([]any, len(list))
		for i, e := range list {
			x, err := defaultValue(n.items, e)
			if err != nil {
				return nil, err
			}
			out[i] = x
		}
		return out, nil
	case kMap:
		m, ok := d.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("default %v is not an object", d)
		}
		out := make(map[string]any, len(m))
		for k, e := range m {
			x, err := defaultValue(n.values, e)
			if err != nil {
				return nil, err
			}
			out[k] = x
		}
		return out, nil
	case kRecord:
		m, ok := d.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("default %v is not an object", d)
		}
		out := make(map[string]any, len(n.fields))
		for _, f := range n.fields {
			e, ok := m[f.name]
			if !ok {
				if !f.hasDefault {
					return nil, fmt.Errorf("default of record %s lacks field %q", n.name, f.name)
				}
				e = f.def
			}
			x, err := defaultValue(f.typ, e)
			if err != nil {
				return nil, err
			}
			out[f.name] = x
		}
		return out, nil
	case kUnion:
		// A union's default is a value of its first branch.
		b := n.branches[0]
		x, err := defaultValue(b, d)
		if err != nil || b.kind == kNull {
			return nil, err
		}
		return map[string]any{b.unionKey(): x}, nil
	}
	return nil, fmt.Errorf("no default for %s", n.kind)
}

func describe(n *node) string {
	if n.name != "" {
		return n.name
	}
	return n.unionKey()
}

func mismatch(w, r *node) error {
	return fmt.Errorf("writer type %s cannot be read as %s", describe(w), describe(r))
}
