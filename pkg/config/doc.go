// Package config reads a service's configuration from environment variables.
//
// A service declares one struct whose fields carry tags, embeds [Common] (the
// settings every Freshet service shares: logging, the admin listener, Kafka, the
// pipeline file, the shutdown deadline) and calls [Load] once at start, before
// anything connects:
//
//	type Config struct {
//		config.Common
//		Listen string `env:"LISTEN" default:":8080" help:"Address of the public HTTP listener."`
//	}
//
//	var cfg Config
//	if err := config.Load(&cfg); err != nil {
//		return err // e.g. "config: FRESHET_KAFKA_BROKERS: ..."
//	}
//
// Tags:
//
//   - env:"NAME" names the variable, after the prefix (FRESHET_ by default). On a
//     field of struct type it is a sub-prefix joined with "_" (a Kafka struct
//     tagged env:"KAFKA" reads FRESHET_KAFKA_BROKERS). An embedded struct without
//     a tag is read with its parent's prefix. env:"-" skips a field. Every other
//     exported field must have an env tag.
//   - default:"value" is used when the variable is unset or empty.
//   - help:"text" documents the variable (see [Markdown]).
//   - required:"true" makes an unset variable an error.
//   - enum:"a,b,c" restricts a string to those values (the empty string, meaning
//     unset, is always allowed when the default is empty).
//
// Supported field types: string, bool, every int and uint type, float32,
// float64, time.Duration, [ByteSize], [Secret], url.URL and *url.URL (absolute
// URLs only), any type implementing encoding.TextUnmarshaler, slices of these
// (comma-separated), and nested structs.
//
// After the values are set, Load calls Validate() error on every struct that has
// one, children first. A Validate method blames a field with [FieldErrorf], which
// Load turns into the variable's name. Every problem is reported, joined with
// errors.Join, each as a [*VarError].
//
// Secrets are held in [Secret], whose String, Format, MarshalJSON and
// MarshalText never reveal the value, so a whole Config can be logged.
//
// The structs in this package are plain data (no client library types): pkg/kafka
// and pkg/logging build clients from them.
//
// Concurrency: Load, Vars and Markdown keep no state and may be called from any
// goroutine; a loaded Config is a plain value, safe to read concurrently.
package config
