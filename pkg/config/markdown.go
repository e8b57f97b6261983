package config

import (
	"fmt"
	"reflect"
	"strings"
)

// Var describes one environment variable of a config struct, as declared by
// its tags.
type Var struct {
	Name     string   // full name, e.g. FRESHET_KAFKA_BROKERS
	Field    string   // Go path of the field, e.g. Kafka.Brokers
	Type     string   // human type: string, bool, int, duration, byte size, url, secret, list of ...
	Default  string   // the default tag, "" when none
	Help     string   // the help tag
	Required bool     // required:"true"
	Enum     []string // allowed values, from the enum tag
}

// Vars lists the variables of cfg (a struct or a pointer to one) in field
// order. It reports the same tag errors as Load.
func Vars(cfg any, opts ...Option) ([]Var, error) {
	o := newOptions(opts)
	t := reflect.TypeOf(cfg)
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct {
		return nil, fmt.Errorf("config: Vars needs a struct, got %T", cfg)
	}
	root, err := describe(t, o.prefix)
	if err != nil {
		return nil, err
	}
	var out []Var
	var walk func(s *structSpec)
	walk = func(s *structSpec) {
		// Fields and children in declaration order.
		i, j := 0, 0
		for i < len(s.fields) || j < len(s.children) {
			if j == len(s.children) || (i < len(s.fields) && s.fields[i].index < s.children[j].index) {
				f := s.fields[i]
				out = append(out, Var{
					Name: f.name, Field: f.path, Type: typeName(f.typ), Default: f.def,
					Help: f.help, Required: f.required, Enum: f.enum,
				})
				i++
				continue
			}
			walk(s.children[j])
			j++
		}
	}
	walk(root)
	return out, nil
}

func typeName(t reflect.Type) string {
	switch t {
	case durationType:
		return "duration"
	case urlType, urlPtrType:
		return "url"
	case secretType:
		return "secret"
	case byteSizeType:
		return "byte size"
	}
	if isScalar(t) {
		return strings.ToLower(t.Name())
	}
	switch t.Kind() {
	case reflect.Slice:
		return "list of " + typeName(t.Elem())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "int"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "uint"
	case reflect.Float32, reflect.Float64:
		return "number"
	}
	return t.Kind().String()
}

// Markdown documents the variables of cfg (a struct or a pointer to one) as
// a Markdown table: variable, type, default, description. Allowed values
// (enum) are appended to the description; lists are comma-separated.
func Markdown(cfg any, opts ...Option) (string, error) {
	vars, err := Vars(cfg, opts...)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString("| Variable | Type | Default | Description |\n")
	b.WriteString("|---|---|---|---|\n")
	for _, v := range vars {
		def := "none"
		switch {
		case v.Required:
			def = "required"
		case v.Default != "":
			def = "`" + strings.ReplaceAll(v.Default, "`", "'") + "`"
		}
		help := v.Help
		if len(v.Enum) > 0 {
			help = strings.TrimSpace(help + " One of: " + strings.Join(v.Enum, ", ") + ".")
		}
		if strings.HasPrefix(v.Type, "list of ") {
			help = strings.TrimSpace(help + " Comma-separated.")
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", v.Name, v.Type, def, escapeCell(help))
	}
	return b.String(), nil
}

func escapeCell(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	return strings.ReplaceAll(s, "\n", " ")
}
