package config

import (
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// allTypes has one field of every supported type.
type allTypes struct {
	S        string            `env:"S" default:"dflt"`
	Enum     string            `env:"ENUM" default:"a" enum:"a,b"`
	B        bool              `env:"B"`
	I        int               `env:"I"`
	I8       int8              `env:"I8"`
	I32      int32             `env:"I32"`
	I64      int64             `env:"I64"`
	U        uint              `env:"U"`
	U16      uint16            `env:"U16"`
	F        float64           `env:"F"`
	D        time.Duration     `env:"D" default:"1s"`
	Size     ByteSize          `env:"SIZE" default:"16KiB"`
	URL      url.URL           `env:"URL"`
	URLPtr   *url.URL          `env:"URL_PTR"`
	List     []string          `env:"LIST" default:"x,y"`
	Ints     []int             `env:"INTS"`
	Durs     []time.Duration   `env:"DURS"`
	Pass     Secret            `env:"PASS"`
	Sub      subConfig         `env:"SUB"`
	Embedded                   // inline, no prefix
	Ignored  map[string]string `env:"-"`
}

type subConfig struct {
	N int `env:"N" default:"7"`
}

type Embedded struct {
	E string `env:"E" default:"e"`
}

func TestLoadAllTypes(t *testing.T) {
	env := map[string]string{
		"FRESHET_S":       "hello",
		"FRESHET_ENUM":    "b",
		"FRESHET_B":       "true",
		"FRESHET_I":       "-3",
		"FRESHET_I8":      "127",
		"FRESHET_I32":     "2147483647",
		"FRESHET_I64":     "-9000000000",
		"FRESHET_U":       "4",
		"FRESHET_U16":     "65535",
		"FRESHET_F":       "2.5",
		"FRESHET_D":       "1m30s",
		"FRESHET_SIZE":    "1MiB",
		"FRESHET_URL":     "https://registry.example:8081/x",
		"FRESHET_URL_PTR": "http://h:1",
		"FRESHET_LIST":    " a, b ,,c ",
		"FRESHET_INTS":    "1,2,3",
		"FRESHET_DURS":    "1s, 2ms",
		"FRESHET_PASS":    "hunter2",
		"FRESHET_SUB_N":   "9",
		"FRESHET_E":       "inline",
	}
	var c allTypes
	if err := Load(&c, WithLookup(MapLookup(env))); err != nil {
		t.Fatal(err)
	}
	want := allTypes{
		S: "hello", Enum: "b", B: true, I: -3, I8: 127, I32: 2147483647, I64: -9000000000,
		U: 4, U16: 65535, F: 2.5, D: 90 * time.Second, Size: MiB,
		URL:    url.URL{Scheme: "https", Host: "registry.example:8081", Path: "/x"},
		URLPtr: &url.URL{Scheme: "http", Host: "h:1"},
		List:   []string{"a", "b", "c"}, Ints: []int{1, 2, 3}, Durs: []time.Duration{time.Second, 2 * time.Millisecond},
		Pass: NewSecret("hunter2"), Sub: subConfig{N: 9}, Embedded: Embedded{E: "inline"},
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got  %+v\nwant %+v", c, want)
	}
}

func TestLoadDefaults(t *testing.T) {
	// Empty values count as unset.
	var c allTypes
	if err := Load(&c, WithLookup(MapLookup(map[string]string{"FRESHET_S": ""}))); err != nil {
		t.Fatal(err)
	}
	if c.S != "dflt" || c.D != time.Second || c.Size != 16*KiB || c.Sub.N != 7 || c.E != "e" ||
		!reflect.DeepEqual(c.List, []string{"x", "y"}) || c.URLPtr != nil || c.Pass.IsSet() {
		t.Errorf("defaults not applied: %+v", c)
	}
}

func TestLoadBadValueNamesVariable(t *testing.T) {
	tests := []struct {
		name, env, value, want string
	}{
		{"bool", "FRESHET_B", "yes please", "not a boolean"},
		{"int", "FRESHET_I", "ten", "not an integer"},
		{"int8 overflow", "FRESHET_I8", "128", "out of range for int8"},
		{"int32 overflow", "FRESHET_I32", "2147483648", "out of range for int32"},
		{"uint negative", "FRESHET_U", "-1", "not a non-negative integer"},
		{"uint16 overflow", "FRESHET_U16", "65536", "out of range"},
		{"float", "FRESHET_F", "1,5", "not a number"},
		{"float nan", "FRESHET_F", "NaN", "finite"},
		{"duration", "FRESHET_D", "10", "not a duration"},
		{"byte size", "FRESHET_SIZE", "16 potatoes", "want a number and a unit"},
		{"byte size negative", "FRESHET_SIZE", "-1KiB", "want a number and a unit"},
		{"url relative", "FRESHET_URL", "/just/a/path", "not an absolute URL"},
		{"url garbage", "FRESHET_URL_PTR", "http://[::1", "not a URL"},
		{"enum", "FRESHET_ENUM", "c", "must be one of a, b"},
		{"int list item", "FRESHET_INTS", "1,two,3", `item 2 "two": not an integer`},
		{"duration list", "FRESHET_DURS", "1s,soon", "not a duration"},
		{"nested", "FRESHET_SUB_N", "many", "not an integer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c allTypes
			err := Load(&c, WithLookup(MapLookup(map[string]string{tt.env: tt.value})))
			if err == nil {
				t.Fatalf("%s=%q: no error", tt.env, tt.value)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "config: "+tt.env+": ") {
				t.Errorf("error does not name %s: %q", tt.env, msg)
			}
			if !strings.Contains(msg, tt.want) {
				t.Errorf("error %q does not say %q", msg, tt.want)
			}
			var ve *VarError
			if !errors.As(err, &ve) || ve.Var != tt.env {
				t.Errorf("errors.As VarError: got %+v", ve)
			}
		})
	}
}

func TestLoadCollectsEveryProblem(t *testing.T) {
	env := map[string]string{
		"FRESHET_B":     "maybe",
		"FRESHET_I":     "x",
		"FRESHET_SUB_N": "y",
	}
	var c allTypes
	err := Load(&c, WithLookup(MapLookup(env)))
	if err == nil {
		t.Fatal("no error")
	}
	for name := range env {
		if !strings.Contains(err.Error(), "config: "+name+": ") {
			t.Errorf("error does not mention %s:\n%v", name, err)
		}
	}
	if n := len(flatten(err)); n != 3 {
		t.Errorf("got %d errors, want 3:\n%v", n, err)
	}
}

func TestLoadSecretNotEchoed(t *testing.T) {
	type withSecretList struct {
		Keys []Secret `env:"KEYS"`
		Pass Secret   `env:"PASS" required:"true"`
	}
	var c withSecretList
	err := Load(&c, WithLookup(MapLookup(map[string]string{"FRESHET_KEYS": "k1,k2"})))
	if err == nil || !strings.Contains(err.Error(), "config: FRESHET_PASS: required") {
		t.Fatalf("want a required error for FRESHET_PASS, got %v", err)
	}
	if len(c.Keys) != 2 || c.Keys[1].Reveal() != "k2" {
		t.Errorf("secret list: %v", c.Keys)
	}
}

func TestLoadRequired(t *testing.T) {
	type req struct {
		Token string `env:"TOKEN" required:"true"`
	}
	var c req
	err := Load(&c, WithLookup(MapLookup(nil)))
	if err == nil || err.Error() != "config: FRESHET_TOKEN: required, but not set" {
		t.Fatalf("got %v", err)
	}
	if err := Load(&c, WithLookup(MapLookup(map[string]string{"FRESHET_TOKEN": "t"}))); err != nil || c.Token != "t" {
		t.Fatalf("got %v, %q", err, c.Token)
	}
}

func TestLoadPrefix(t *testing.T) {
	var c subConfig
	if err := Load(&c, WithPrefix("APP_"), WithLookup(MapLookup(map[string]string{"APP_N": "3"}))); err != nil || c.N != 3 {
		t.Fatalf("got %v, %d", err, c.N)
	}
	if err := Load(&c, WithPrefix(""), WithLookup(MapLookup(map[string]string{"N": "4"}))); err != nil || c.N != 4 {
		t.Fatalf("got %v, %d", err, c.N)
	}
}

func TestLoadFromProcessEnvironment(t *testing.T) {
	t.Setenv("FRESHET_SUB_N", "11")
	var c allTypes
	if err := Load(&c); err != nil {
		t.Fatal(err)
	}
	if c.Sub.N != 11 {
		t.Errorf("FRESHET_SUB_N: got %d", c.Sub.N)
	}
}

func TestLoadProgrammingErrors(t *testing.T) {
	type untagged struct {
		X int
	}
	type dup struct {
		A int `env:"X"`
		B int `env:"X"`
	}
	type unsupported struct {
		M map[string]string `env:"M"`
	}
	type structNoTag struct {
		S subConfig
	}
	type badDefault struct {
		D time.Duration `env:"D" default:"soon"`
	}
	tests := []struct {
		name string
		cfg  any
		want string
	}{
		{"not a pointer", allTypes{}, "non-nil pointer to a struct"},
		{"untagged field", &untagged{}, "X: field needs an env tag"},
		{"duplicate name", &dup{}, "FRESHET_X: used by both A and B"},
		{"unsupported type", &unsupported{}, "FRESHET_M: unsupported type"},
		{"struct without prefix", &structNoTag{}, "S: struct field needs an env tag"},
		{"bad default", &badDefault{}, `config: FRESHET_D: bad default "soon"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Load(tt.cfg, WithLookup(MapLookup(nil)))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
		})
	}
}

// Validated records the calls of its Validate method.
type Validated struct {
	N     int `env:"N"`
	calls *int
}

func (v *Validated) Validate() error {
	if v.calls != nil {
		*v.calls++
	}
	if v.N < 0 {
		return FieldErrorf("N", "must not be negative, got %d", v.N)
	}
	if v.N == 13 {
		return errors.New("unlucky")
	}
	return nil
}

type outer struct {
	Validated
	Inner Validated `env:"INNER"`
}

func TestValidateBlamesVariable(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"field error, embedded", map[string]string{"FRESHET_N": "-1"}, []string{"config: FRESHET_N: must not be negative, got -1"}},
		{"field error, nested", map[string]string{"FRESHET_INNER_N": "-2"}, []string{"config: FRESHET_INNER_N: must not be negative, got -2"}},
		{"plain error names the group", map[string]string{"FRESHET_INNER_N": "13"}, []string{"config: FRESHET_INNER_*: unlucky"}},
		{"both", map[string]string{"FRESHET_N": "-1", "FRESHET_INNER_N": "-2"}, []string{"FRESHET_N:", "FRESHET_INNER_N:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c outer
			err := Load(&c, WithLookup(MapLookup(tt.env)))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestValidateCalledOnceAndSkippedAfterParseErrors(t *testing.T) {
	outerCalls, innerCalls := 0, 0
	c := outer{Validated: Validated{calls: &outerCalls}, Inner: Validated{calls: &innerCalls}}
	if err := Load(&c, WithLookup(MapLookup(nil))); err != nil {
		t.Fatal(err)
	}
	// The embedded Validate is promoted to outer: called once, as outer's.
	if outerCalls != 1 || innerCalls != 1 {
		t.Errorf("Validate calls: embedded/outer %d, inner %d; want 1 and 1", outerCalls, innerCalls)
	}
	outerCalls, innerCalls = 0, 0
	err := Load(&c, WithLookup(MapLookup(map[string]string{"FRESHET_INNER_N": "x"})))
	if err == nil {
		t.Fatal("no error")
	}
	if innerCalls != 0 || outerCalls != 0 {
		t.Errorf("Validate ran on a struct whose fields failed to parse (inner %d, outer %d)", innerCalls, outerCalls)
	}
}

func TestCommonDefaults(t *testing.T) {
	var c Common
	if err := Load(&c, WithLookup(MapLookup(nil))); err != nil {
		t.Fatal(err)
	}
	want := Common{
		Log:             Log{Level: LogInfo, Format: LogJSON},
		Admin:           Admin{Addr: ":9090"},
		Kafka:           Kafka{Brokers: []string{"127.0.0.1:9092"}},
		Pipeline:        "pipelines/freshet.yaml",
		ShutdownTimeout: 15 * time.Second,
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got  %+v\nwant %+v", c, want)
	}
}

func TestCommonValidation(t *testing.T) {
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, []byte("pem"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		env  map[string]string
		want []string // each must appear; nil means valid
	}{
		{"valid tls and sasl", map[string]string{
			"FRESHET_KAFKA_TLS_ENABLED": "true", "FRESHET_KAFKA_TLS_CA_FILE": ca,
			"FRESHET_KAFKA_SASL_MECHANISM": "scram-sha-512", "FRESHET_KAFKA_SASL_USER": "u", "FRESHET_KAFKA_SASL_PASSWORD": "p",
			"FRESHET_KAFKA_SCHEMA_REGISTRY_URL": "http://127.0.0.1:8081",
		}, nil},
		{"log level", map[string]string{"FRESHET_LOG_LEVEL": "verbose"}, []string{"config: FRESHET_LOG_LEVEL: \"verbose\": must be one of debug, info, warn, error"}},
		{"log format", map[string]string{"FRESHET_LOG_FORMAT": "xml"}, []string{"config: FRESHET_LOG_FORMAT:"}},
		{"admin addr", map[string]string{"FRESHET_ADMIN_ADDR": "9090"}, []string{"config: FRESHET_ADMIN_ADDR: want host:port"}},
		{"broker without port", map[string]string{"FRESHET_KAFKA_BROKERS": "a:9092,b"}, []string{`config: FRESHET_KAFKA_BROKERS: broker "b": want host:port`}},
		{"broker port zero", map[string]string{"FRESHET_KAFKA_BROKERS": "a:0"}, []string{`config: FRESHET_KAFKA_BROKERS: broker "a:0": port "0"`}},
		{"sasl without user and password", map[string]string{"FRESHET_KAFKA_SASL_MECHANISM": "plain"}, []string{
			"config: FRESHET_KAFKA_SASL_USER: required with SASL mechanism plain",
			"config: FRESHET_KAFKA_SASL_PASSWORD: required with SASL mechanism plain",
		}},
		{"sasl mechanism unknown", map[string]string{"FRESHET_KAFKA_SASL_MECHANISM": "gssapi"}, []string{"config: FRESHET_KAFKA_SASL_MECHANISM:"}},
		{"sasl user without mechanism", map[string]string{"FRESHET_KAFKA_SASL_USER": "u"}, []string{"config: FRESHET_KAFKA_SASL_MECHANISM: a SASL user or password is set"}},
		{"tls file without tls", map[string]string{"FRESHET_KAFKA_TLS_CA_FILE": ca}, []string{"config: FRESHET_KAFKA_TLS_CA_FILE: set, but TLS is not enabled"}},
		{"tls missing file", map[string]string{"FRESHET_KAFKA_TLS_ENABLED": "1", "FRESHET_KAFKA_TLS_CA_FILE": filepath.Join(dir, "nope.pem")}, []string{"config: FRESHET_KAFKA_TLS_CA_FILE:", "no such file"}},
		{"tls cert without key", map[string]string{"FRESHET_KAFKA_TLS_ENABLED": "true", "FRESHET_KAFKA_TLS_CERT_FILE": ca}, []string{"config: FRESHET_KAFKA_TLS_KEY_FILE: a client certificate needs both"}},
		{"registry scheme", map[string]string{"FRESHET_KAFKA_SCHEMA_REGISTRY_URL": "ftp://r:1"}, []string{"config: FRESHET_KAFKA_SCHEMA_REGISTRY_URL: scheme must be http or https"}},
		{"registry credentials", map[string]string{"FRESHET_KAFKA_SCHEMA_REGISTRY_URL": "http://u:p@r:1"}, []string{"config: FRESHET_KAFKA_SCHEMA_REGISTRY_URL: credentials do not belong"}},
		{"shutdown", map[string]string{"FRESHET_SHUTDOWN_TIMEOUT": "-1s"}, []string{"config: FRESHET_SHUTDOWN_TIMEOUT: must be positive"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			type service struct {
				Common
				Listen string `env:"LISTEN" default:":8080"`
			}
			var c service
			err := Load(&c, WithLookup(MapLookup(tt.env)))
			if tt.want == nil {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
		})
	}
}
