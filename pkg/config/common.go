package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"time"
)

// Common holds what every Freshet service reads. Embed it, untagged, in the
// service's Config so that its variables keep their names:
//
//	FRESHET_LOG_*, FRESHET_ADMIN_ADDR, FRESHET_KAFKA_*, FRESHET_PIPELINE,
//	FRESHET_SHUTDOWN_TIMEOUT
type Common struct {
	// Log configures logging (pkg/logging builds the zap logger from it).
	Log Log `env:"LOG"`
	// Admin is the listener of /healthz, /readyz and /metrics.
	Admin Admin `env:"ADMIN"`
	// Kafka is the cluster every service talks to (pkg/kafka builds the
	// client from it).
	Kafka Kafka `env:"KAFKA"`
	// Pipeline is the path of the pipeline file. Default
	// "pipelines/freshet.yaml", relative to the working directory.
	Pipeline string `env:"PIPELINE" default:"pipelines/freshet.yaml" help:"Path of the pipeline file (what is captured and what follows from it; see docs/pipelines.md)."`
	// ShutdownTimeout bounds a graceful shutdown. Default 15s.
	ShutdownTimeout time.Duration `env:"SHUTDOWN_TIMEOUT" default:"15s" help:"How long a graceful shutdown may take before the service exits anyway."`
}

// Validate checks the fields of Common itself (its nested structs validate
// themselves).
func (c *Common) Validate() error {
	var errs []error
	if c.Pipeline == "" {
		errs = append(errs, FieldErrorf("Pipeline", "must name the pipeline file"))
	}
	if c.ShutdownTimeout <= 0 {
		errs = append(errs, FieldErrorf("ShutdownTimeout", "must be positive, got %s", c.ShutdownTimeout))
	}
	return errors.Join(errs...)
}

// Log levels and formats accepted by [Log].
const (
	LogDebug = "debug"
	LogInfo  = "info"
	LogWarn  = "warn"
	LogError = "error"

	LogJSON    = "json"
	LogConsole = "console"
)

// Log configures logging.
type Log struct {
	// Level is the minimum level logged: debug, info, warn or error. Default
	// info.
	Level string `env:"LEVEL" default:"info" enum:"debug,info,warn,error" help:"Minimum level logged."`
	// Format is json (one object a line, the default) or console (for
	// humans).
	Format string `env:"FORMAT" default:"json" enum:"json,console" help:"Log encoding: json for machines, console for humans."`
}

// Admin configures the admin HTTP listener (health, readiness, metrics).
type Admin struct {
	// Addr is the listen address, host:port. Default ":9090"; an empty host
	// listens on every interface, port 0 picks a free port.
	Addr string `env:"ADDR" default:":9090" help:"Listen address (host:port) of /healthz, /readyz and /metrics."`
}

// Validate checks that Addr is host:port.
func (a *Admin) Validate() error {
	if err := checkHostPort(a.Addr, true); err != nil {
		return FieldErrorf("Addr", "%v", err)
	}
	return nil
}

// SASL mechanisms accepted by [SASL].
const (
	SASLPlain       = "plain"
	SASLScramSHA256 = "scram-sha-256"
	SASLScramSHA512 = "scram-sha-512"
)

// Kafka says how to reach the Kafka cluster and how events are framed. It is
// plain data: pkg/kafka turns it into franz-go options.
type Kafka struct {
	// Brokers are the seed brokers, host:port. Default 127.0.0.1:9092 (the
	// local stack's embedded broker).
	Brokers []string `env:"BROKERS" default:"127.0.0.1:9092" help:"Seed brokers (host:port)."`
	// ClientID is sent to the brokers; empty means the service's name.
	ClientID string `env:"CLIENT_ID" help:"Client id sent to the brokers; empty means the service's name."`
	// TLS encrypts the connections to the brokers.
	TLS TLS `env:"TLS"`
	// SASL authenticates to the brokers.
	SASL SASL `env:"SASL"`
	// SchemaRegistryURL is the Confluent Schema Registry (http or https).
	// Empty (the default) means Avro single-object encoding with the
	// compiled-in schemas; set, records use the registry's framing.
	SchemaRegistryURL string `env:"SCHEMA_REGISTRY_URL" help:"Confluent Schema Registry URL; empty means Avro single-object encoding with compiled-in schemas."`
}

// Validate checks brokers and the registry URL; TLS and SASL validate
// themselves.
func (k *Kafka) Validate() error {
	var errs []error
	if len(k.Brokers) == 0 {
		errs = append(errs, FieldErrorf("Brokers", "at least one broker is needed"))
	}
	for _, b := range k.Brokers {
		if err := checkHostPort(b, false); err != nil {
			errs = append(errs, FieldErrorf("Brokers", "broker %q: %v", b, err))
		}
	}
	if k.SchemaRegistryURL != "" {
		u, err := url.Parse(k.SchemaRegistryURL)
		switch {
		case err != nil:
			errs = append(errs, FieldErrorf("SchemaRegistryURL", "not a URL: %v", err))
		case u.Scheme != "http" && u.Scheme != "https":
			errs = append(errs, FieldErrorf("SchemaRegistryURL", "scheme must be http or https, got %q", u.Scheme))
		case u.Host == "":
			errs = append(errs, FieldErrorf("SchemaRegistryURL", "no host"))
		case u.User != nil:
			errs = append(errs, FieldErrorf("SchemaRegistryURL", "credentials do not belong in the URL"))
		}
	}
	return errors.Join(errs...)
}

// TLS configures TLS to the brokers. With Enabled and no CAFile, the system
// roots verify the brokers.
type TLS struct {
	// Enabled turns TLS on. Default false.
	Enabled bool `env:"ENABLED" default:"false" help:"Use TLS to the brokers."`
	// CAFile is a PEM bundle of the CAs that sign the brokers' certificates;
	// empty means the system roots.
	CAFile string `env:"CA_FILE" help:"PEM file of the CAs that sign the brokers' certificates; empty means the system roots."`
	// CertFile and KeyFile are the client certificate and key (PEM), for
	// mutual TLS; both or neither.
	CertFile string `env:"CERT_FILE" help:"PEM client certificate, for mutual TLS (with FRESHET_KAFKA_TLS_KEY_FILE)."`
	// KeyFile is the client certificate's private key (PEM).
	KeyFile string `env:"KEY_FILE" help:"PEM private key of the client certificate."`
	// InsecureSkipVerify accepts any broker certificate. For tests only.
	InsecureSkipVerify bool `env:"INSECURE_SKIP_VERIFY" default:"false" help:"Accept any broker certificate (tests only)."`
}

// Validate checks that the files exist and go together.
func (t *TLS) Validate() error {
	var errs []error
	files := []struct{ field, path string }{{"CAFile", t.CAFile}, {"CertFile", t.CertFile}, {"KeyFile", t.KeyFile}}
	for _, f := range files {
		if f.path == "" {
			continue
		}
		if !t.Enabled {
			errs = append(errs, FieldErrorf(f.field, "set, but TLS is not enabled (FRESHET_KAFKA_TLS_ENABLED=true)"))
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			errs = append(errs, FieldErrorf(f.field, "%v", err))
		}
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		field := "KeyFile"
		if t.CertFile == "" {
			field = "CertFile"
		}
		errs = append(errs, FieldErrorf(field, "a client certificate needs both a certificate and a key file"))
	}
	if t.InsecureSkipVerify && !t.Enabled {
		errs = append(errs, FieldErrorf("InsecureSkipVerify", "set, but TLS is not enabled"))
	}
	return errors.Join(errs...)
}

// SASL configures SASL authentication to the brokers.
type SASL struct {
	// Mechanism is plain, scram-sha-256 or scram-sha-512; empty (the default)
	// means no SASL.
	Mechanism string `env:"MECHANISM" enum:"plain,scram-sha-256,scram-sha-512" help:"SASL mechanism; empty means no SASL."`
	// User is the SASL user name.
	User string `env:"USER" help:"SASL user name."`
	// Password is the SASL password; it is never printed.
	Password Secret `env:"PASSWORD" help:"SASL password (never printed)."`
}

// Validate checks that a mechanism comes with its credentials.
func (s *SASL) Validate() error {
	var errs []error
	if s.Mechanism == "" {
		if s.User != "" || s.Password.IsSet() {
			errs = append(errs, FieldErrorf("Mechanism", "a SASL user or password is set, but no mechanism"))
		}
		return errors.Join(errs...)
	}
	if s.User == "" {
		errs = append(errs, FieldErrorf("User", "required with SASL mechanism %s", s.Mechanism))
	}
	if !s.Password.IsSet() {
		errs = append(errs, FieldErrorf("Password", "required with SASL mechanism %s", s.Mechanism))
	}
	return errors.Join(errs...)
}

// checkHostPort checks a host:port address; listen allows an empty host
// (every interface) and port 0 (any free port).
func checkHostPort(addr string, listen bool) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("want host:port: %v", err)
	}
	if host == "" && !listen {
		return fmt.Errorf("want host:port, the host is missing")
	}
	min := 1
	if listen {
		min = 0
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < min || n > 65535 {
		return fmt.Errorf("port %q is not a number from %d to 65535", port, min)
	}
	return nil
}
