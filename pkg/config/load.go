package config

import (
	"encoding"
	"errors"
	"fmt"
	"net/url"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// Prefix is the prefix of every Freshet environment variable.
const Prefix = "FRESHET_"

// LookupFunc returns the value of an environment variable and whether it is
// set. os.LookupEnv is one.
type LookupFunc func(name string) (string, bool)

// Option changes how Load, Vars and Markdown read a config struct.
type Option func(*options)

type options struct {
	prefix string
	lookup LookupFunc
}

// WithLookup reads variables through f instead of os.LookupEnv (tests use a
// map).
func WithLookup(f LookupFunc) Option {
	return func(o *options) { o.lookup = f }
}

// WithPrefix replaces the prefix [Prefix] of every variable name; "" means
// none.
func WithPrefix(p string) Option {
	return func(o *options) { o.prefix = p }
}

// MapLookup returns a LookupFunc over m, for tests.
func MapLookup(m map[string]string) LookupFunc {
	return func(name string) (string, bool) {
		v, ok := m[name]
		return v, ok
	}
}

func newOptions(opts []Option) options {
	o := options{prefix: Prefix, lookup: os.LookupEnv}
	for _, opt := range opts {
		opt(&o)
	}
	if o.lookup == nil {
		o.lookup = os.LookupEnv
	}
	return o
}

// Validator is implemented by config structs that check themselves. Load
// calls Validate after every field of the struct (and of its children) was
// set without error. To blame one field, return [FieldErrorf]; several
// problems may be joined with errors.Join.
//
// An embedded struct's Validate is not called separately when its parent has
// a Validate method: the parent's is either the same method, promoted, or
// shadows it and must call it.
type Validator interface {
	Validate() error
}

// Load fills cfg, a pointer to a struct, from the environment: each tagged
// field gets its variable's value, or its default when the variable is unset or
// empty. Then it calls Validate on every struct that has one. The error joins
// every problem found, each a [*VarError] naming the variable.
func Load(cfg any, opts ...Option) error {
	o := newOptions(opts)
	v := reflect.ValueOf(cfg)
	if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("config: Load needs a non-nil pointer to a struct, got %T", cfg)
	}
	root, err := describe(v.Elem().Type(), o.prefix)
	if err != nil {
		return err
	}
	var errs []error
	load(root, v.Elem(), o, &errs)
	return errors.Join(errs...)
}

// load sets the fields of s in v and validates it; it reports whether s and
// its children were all parsed without error. A failed Validate does not stop
// the parent's: every problem is reported. A parse error does, since
// Validate may rely on the values.
func load(s *structSpec, v reflect.Value, o options, errs *[]error) bool {
	ok := true
	for _, f := range s.fields {
		if err := setField(f, v.Field(f.index), o); err != nil {
			*errs = append(*errs, err)
			ok = false
		}
	}
	for _, c := range s.children {
		if !load(c, v.Field(c.index), o, errs) {
			ok = false
		}
	}
	if !ok || s.skipValidate {
		return ok
	}
	val, isValidator := v.Addr().Interface().(Validator)
	if !isValidator {
		return true
	}
	if err := val.Validate(); err != nil {
		for _, e := range flatten(err) {
			*errs = append(*errs, s.blame(e))
		}
	}
	return true
}

// flatten undoes errors.Join, one level deep.
func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			if e != nil {
				out = append(out, e)
			}
		}
		return out
	}
	return []error{err}
}

func setField(f *fieldSpec, v reflect.Value, o options) error {
	raw, set := o.lookup(f.name)
	if !set || raw == "" {
		if f.required {
			return &VarError{Var: f.name, Err: errors.New("required, but not set")}
		}
		if !f.hasDefault {
			v.SetZero()
			return nil
		}
		if err := parseInto(v, f.def, f); err != nil {
			return &VarError{Var: f.name, Err: fmt.Errorf("bad default %q: %w", f.def, err)}
		}
		return nil
	}
	if err := parseInto(v, raw, f); err != nil {
		if f.secret {
			// Never echo a secret, even a malformed one.
			return &VarError{Var: f.name, Err: errors.New("invalid value")}
		}
		return &VarError{Var: f.name, Err: fmt.Errorf("%q: %w", raw, err)}
	}
	return nil
}

var (
	durationType        = reflect.TypeFor[time.Duration]()
	urlType             = reflect.TypeFor[url.URL]()
	urlPtrType          = reflect.TypeFor[*url.URL]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
	secretType          = reflect.TypeFor[Secret]()
	byteSizeType        = reflect.TypeFor[ByteSize]()
)

// parseInto parses raw into v, whose type was accepted by leafType.
func parseInto(v reflect.Value, raw string, f *fieldSpec) error {
	t := v.Type()
	if t.Kind() == reflect.Slice && !isScalar(t) {
		parts := splitList(raw)
		s := reflect.MakeSlice(t, len(parts), len(parts))
		for i, p := range parts {
			if err := parseScalar(s.Index(i), p, f); err != nil {
				if len(parts) > 1 {
					return fmt.Errorf("item %d %q: %w", i+1, p, err)
				}
				return err
			}
		}
		v.Set(s)
		return nil
	}
	return parseScalar(v, strings.TrimSpace(raw), f)
}

func splitList(raw string) []string {
	var out []string
	for _, p := range strings.Split(raw, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func parseScalar(v reflect.Value, raw string, f *fieldSpec) error {
	t := v.Type()
	switch {
	case t == durationType:
		d, err := time.ParseDuration(raw)
		if err != nil {
			return errors.New("not a duration (examples: 500ms, 10s, 1m30s)")
		}
		v.SetInt(int64(d))
		return nil
	case t == urlType || t == urlPtrType:
		u, err := parseURL(raw)
		if err != nil {
			return err
		}
		if t == urlType {
			v.Set(reflect.ValueOf(*u))
		} else {
			v.Set(reflect.ValueOf(u))
		}
		return nil
	case reflect.PointerTo(t).Implements(textUnmarshalerType):
		return v.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(raw))
	}
	switch t.Kind() {
	case reflect.String:
		if len(f.enum) > 0 && !contains(f.enum, raw) {
			return fmt.Errorf("must be one of %s", strings.Join(f.enum, ", "))
		}
		v.SetString(raw)
	case reflect.Bool:
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return errors.New("not a boolean (true or false)")
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(raw, 10, t.Bits())
		if err != nil {
			return numError(err, "an integer", t)
		}
		v.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, err := strconv.ParseUint(raw, 10, t.Bits())
		if err != nil {
			return numError(err, "a non-negative integer", t)
		}
		v.SetUint(n)
	case reflect.Float32, reflect.Float64:
		n, err := strconv.ParseFloat(raw, t.Bits())
		if err != nil {
			return numError(err, "a number", t)
		}
		if n != n || n > maxFloat || n < -maxFloat {
			return errors.New("must be a finite number")
		}
		v.SetFloat(n)
	default:
		return fmt.Errorf("unsupported type %s", t)
	}
	return nil
}

const maxFloat = 1.7976931348623157e308

func numError(err error, what string, t reflect.Type) error {
	if errors.Is(err, strconv.ErrRange) {
		return fmt.Errorf("out of range for %s", t)
	}
	return fmt.Errorf("not %s", what)
}

func parseURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errors.New("not a URL")
	}
	if u.Scheme == "" || u.Host == "" {
		return nil, errors.New("not an absolute URL (scheme://host[:port]/...)")
	}
	return u, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// isScalar reports whether t is parsed from one value even if it is a slice
// (a TextUnmarshaler such as net.IP).
func isScalar(t reflect.Type) bool {
	return t == durationType || t == urlType || t == urlPtrType ||
		reflect.PointerTo(t).Implements(textUnmarshalerType)
}

// structSpec describes one struct of a config: its leaves and nested structs.
type structSpec struct {
	prefix       string // variable prefix of the struct's fields, e.g. FRESHET_KAFKA_
	path         string // Go path from the root, embedded structs left out
	index        int    // field index in the parent
	fields       []*fieldSpec
	children     []*structSpec
	skipValidate bool
	// names maps the Go path of every leaf and struct below (relative to this
	// struct) to its variable name or prefix, for FieldError.
	names map[string]string
}

// fieldSpec describes one variable.
type fieldSpec struct {
	name       string // full variable name
	path       string // Go path from the root
	index      int
	typ        reflect.Type
	def        string
	hasDefault bool
	help       string
	required   bool
	enum       []string
	secret     bool
}

func describe(t reflect.Type, prefix string) (*structSpec, error) {
	d := describer{seen: map[string]string{}}
	root := d.structure(t, prefix, "", -1, map[reflect.Type]bool{})
	if len(d.errs) > 0 {
		return nil, errors.Join(d.errs...)
	}
	return root, nil
}

type describer struct {
	seen map[string]string // variable name → Go path, to catch duplicates
	errs []error
}

func (d *describer) structure(t reflect.Type, prefix, path string, index int, stack map[reflect.Type]bool) *structSpec {
	s := &structSpec{prefix: prefix, path: path, index: index, names: map[string]string{}}
	if stack[t] {
		d.errs = append(d.errs, fmt.Errorf("config: %s: recursive struct %s", t, t))
		return s
	}
	stack[t] = true
	defer delete(stack, t)
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		tag, hasTag := sf.Tag.Lookup("env")
		if tag == "-" {
			continue
		}
		fpath := sf.Name
		if sf.Anonymous {
			fpath = ""
		}
		full := joinPath(path, fpath)
		if sf.Type.Kind() == reflect.Struct && !isScalar(sf.Type) && sf.Type != secretType {
			sub := prefix
			if hasTag && tag != "" {
				sub = prefix + strings.TrimSuffix(tag, "_") + "_"
			} else if !sf.Anonymous {
				d.errs = append(d.errs, fmt.Errorf("config: %s.%s: struct field needs an env tag (its prefix), or env:\"-\"", t, sf.Name))
				continue
			}
			c := d.structure(sf.Type, sub, full, i, stack)
			if sf.Anonymous && reflect.PointerTo(t).Implements(reflect.TypeFor[Validator]()) {
				c.skipValidate = true
			}
			s.children = append(s.children, c)
			s.names[fpath] = sub + "*"
			for k, v := range c.names {
				s.names[joinPath(fpath, k)] = v
			}
			continue
		}
		if !hasTag || tag == "" {
			d.errs = append(d.errs, fmt.Errorf("config: %s.%s: field needs an env tag, or env:\"-\"", t, sf.Name))
			continue
		}
		f := &fieldSpec{
			name:  prefix + tag,
			path:  full,
			index: i,
			typ:   sf.Type,
			help:  sf.Tag.Get("help"),
		}
		f.def, f.hasDefault = sf.Tag.Lookup("default")
		f.required = sf.Tag.Get("required") == "true"
		if e := sf.Tag.Get("enum"); e != "" {
			f.enum = splitList(e)
		}
		f.secret = sf.Type == secretType || (sf.Type.Kind() == reflect.Slice && sf.Type.Elem() == secretType)
		if err := checkType(sf.Type); err != nil {
			d.errs = append(d.errs, fmt.Errorf("config: %s: %w", f.name, err))
			continue
		}
		if prev, dup := d.seen[f.name]; dup {
			d.errs = append(d.errs, fmt.Errorf("config: %s: used by both %s and %s", f.name, prev, full))
			continue
		}
		d.seen[f.name] = full
		s.fields = append(s.fields, f)
		s.names[fpath] = f.name
	}
	return s
}

func joinPath(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + "." + b
}

func checkType(t reflect.Type) error {
	if isScalar(t) {
		return nil
	}
	if t.Kind() == reflect.Slice {
		if isScalar(t.Elem()) || isBasic(t.Elem().Kind()) {
			return nil
		}
		return fmt.Errorf("unsupported type %s", t)
	}
	if isBasic(t.Kind()) {
		return nil
	}
	return fmt.Errorf("unsupported type %s", t)
}

func isBasic(k reflect.Kind) bool {
	switch k {
	case reflect.String, reflect.Bool,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return true
	}
	return false
}

// blame turns an error of s's Validate into a VarError: a FieldError names
// its field's variable, anything else names the struct's prefix.
func (s *structSpec) blame(err error) error {
	var fe *FieldError
	if errors.As(err, &fe) {
		if name, ok := s.names[fe.Field]; ok {
			return &VarError{Var: name, Err: fe.Err}
		}
		return &VarError{Var: s.prefix + "*", Err: fmt.Errorf("%s: %w", fe.Field, fe.Err)}
	}
	return &VarError{Var: s.prefix + "*", Err: err}
}
