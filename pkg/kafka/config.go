package kafka

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
	"go.uber.org/zap/zapcore"
)

// DefaultClientID is the client id when [Config.ClientID] is empty.
const DefaultClientID = "freshet"

// SASL mechanisms accepted in [SASLConfig.Mechanism] (case-insensitive).
const (
	MechanismPlain       = "plain"
	MechanismScramSHA256 = "scram-sha-256"
	MechanismScramSHA512 = "scram-sha-512"
)

// Config says how to reach Kafka. It is plain data, filled by the service's
// configuration; [Config.Validate] checks it and [NewClient] uses it.
type Config struct {
	// Brokers are the seed brokers, host:port each. At least one is
	// required; the client discovers the rest of the cluster from them.
	Brokers []string
	// ClientID names the client to the brokers (in their logs, quotas and
	// metrics). Empty means DefaultClientID ("freshet"); services set
	// their own name.
	ClientID string
	// TLS configures encryption. Off by default.
	TLS TLSConfig
	// SASL configures authentication. Off by default.
	SASL SASLConfig
	// SchemaRegistryURL is the Confluent-compatible schema registry used
	// by the Avro codec. Empty means Avro single-object encoding with the
	// compiled-in schemas. Not used by this package; kept here because it
	// is configured with Kafka.
	SchemaRegistryURL string
}

// TLSConfig configures TLS to the brokers. TLS is used when Enabled is true
// or when any of the files is set.
type TLSConfig struct {
	// Enabled turns TLS on, with the system's root CAs unless CAFile is
	// set.
	Enabled bool
	// CAFile is a PEM file of CA certificates that sign the brokers'
	// certificates. Empty means the system's roots.
	CAFile string
	// CertFile and KeyFile are the PEM client certificate and key, for
	// brokers that require mutual TLS. Set both or neither.
	CertFile string
	// KeyFile: see CertFile.
	KeyFile string
	// InsecureSkipVerify accepts any broker certificate. For tests only:
	// it allows anyone on the path to read and change the traffic.
	InsecureSkipVerify bool
}

// SASLConfig configures SASL authentication.
type SASLConfig struct {
	// Mechanism is MechanismPlain, MechanismScramSHA256,
	// MechanismScramSHA512 (case-insensitive; "SCRAM-SHA-256" works too)
	// or empty for no SASL.
	Mechanism string
	// User is the SASL user name. Required with a mechanism.
	User string
	// Password is the SASL password. Required with a mechanism. Never
	// logged by this package. PLAIN sends it as is: use it with TLS.
	Password string
}

// ConfigError is an invalid [Config] field. Field is the field's path in
// Config ("Brokers", "TLS.CAFile", "SASL.Mechanism"), for the caller to map
// to the variable or file line it came from.
type ConfigError struct {
	// Field is the path of the field in Config.
	Field string
	// Err says what is wrong.
	Err error
}

// Error implements error.
func (e *ConfigError) Error() string { return fmt.Sprintf("kafka config: %s: %v", e.Field, e.Err) }

// Unwrap returns Err.
func (e *ConfigError) Unwrap() error { return e.Err }

func configErr(field string, format string, args ...any) error {
	return &ConfigError{Field: field, Err: fmt.Errorf(format, args...)}
}

// Validate checks the fields that can be checked without I/O. It returns a
// [*ConfigError] naming the first bad field. Files named by TLS are read only
// by NewClient.
func (c Config) Validate() error {
	if len(c.Brokers) == 0 {
		return configErr("Brokers", "at least one seed broker (host:port) is required")
	}
	for i, b := range c.Brokers {
		b = strings.TrimSpace(b)
		if b == "" {
			return configErr(fmt.Sprintf("Brokers[%d]", i), "empty broker address")
		}
		host, port, err := net.SplitHostPort(b)
		if err != nil || host == "" || port == "" {
			return configErr(fmt.Sprintf("Brokers[%d]", i), "%q is not host:port", b)
		}
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		if c.TLS.CertFile == "" {
			return configErr("TLS.CertFile", "required with TLS.KeyFile")
		}
		return configErr("TLS.KeyFile", "required with TLS.CertFile")
	}
	if _, err := c.SASL.mechanism(); err != nil {
		return err
	}
	return nil
}

// tlsEnabled reports whether TLS is asked for.
func (t TLSConfig) tlsEnabled() bool {
	return t.Enabled || t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" || t.InsecureSkipVerify
}

// config builds the crypto/tls configuration, reading the files. It returns
// nil when TLS is off.
func (t TLSConfig) config() (*tls.Config, error) {
	if !t.tlsEnabled() {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: t.InsecureSkipVerify} //nolint:gosec // opt-in, documented as tests only
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, &ConfigError{Field: "TLS.CAFile", Err: err}
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, configErr("TLS.CAFile", "%s: no PEM certificate found", t.CAFile)
		}
		cfg.RootCAs = pool
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, &ConfigError{Field: "TLS.CertFile", Err: fmt.Errorf("load key pair %s, %s: %w", t.CertFile, t.KeyFile, err)}
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// mechanism builds the SASL mechanism, or nil when SASL is off.
func (s SASLConfig) mechanism() (sasl.Mechanism, error) {
	m := strings.ToLower(strings.TrimSpace(s.Mechanism))
	if m == "" {
		if s.User != "" {
			return nil, configErr("SASL.Mechanism", "required with SASL.User (want %s, %s or %s)", MechanismPlain, MechanismScramSHA256, MechanismScramSHA512)
		}
		return nil, nil
	}
	if m != MechanismPlain && m != MechanismScramSHA256 && m != MechanismScramSHA512 {
		return nil, configErr("SASL.Mechanism", "unknown mechanism %q (want %s, %s or %s)", s.Mechanism, MechanismPlain, MechanismScramSHA256, MechanismScramSHA512)
	}
	if s.User == "" {
		return nil, configErr("SASL.User", "required with SASL.Mechanism %q", s.Mechanism)
	}
	if s.Password == "" {
		return nil, configErr("SASL.Password", "required with SASL.Mechanism %q", s.Mechanism)
	}
	switch m {
	case MechanismPlain:
		return plain.Auth{User: s.User, Pass: s.Password}.AsMechanism(), nil
	case MechanismScramSHA256:
		return scram.Auth{User: s.User, Pass: s.Password}.AsSha256Mechanism(), nil
	default:
		return scram.Auth{User: s.User, Pass: s.Password}.AsSha512Mechanism(), nil
	}
}

// redactedPassword stands for a password in String, GoString and logs.
const redactedPassword = "[redacted]"

// String describes the SASL settings with the password redacted, so that
// printing a Config with %v or %+v never shows it.
func (s SASLConfig) String() string {
	pw := ""
	if s.Password != "" {
		pw = redactedPassword
	}
	return fmt.Sprintf("{Mechanism:%s User:%s Password:%s}", s.Mechanism, s.User, pw)
}

// GoString is String, for %#v.
func (s SASLConfig) GoString() string { return "kafka.SASLConfig" + s.String() }

var _ zapcore.ObjectMarshaler = Config{}

// MarshalLogObject logs the configuration with zap.Object("kafka", cfg),
// with the SASL password redacted.
func (c Config) MarshalLogObject(e zapcore.ObjectEncoder) error {
	e.AddString("brokers", strings.Join(c.Brokers, ","))
	e.AddString("client_id", c.ClientID)
	e.AddBool("tls", c.TLS.tlsEnabled())
	if c.TLS.CAFile != "" {
		e.AddString("tls_ca_file", c.TLS.CAFile)
	}
	if c.TLS.CertFile != "" {
		e.AddString("tls_cert_file", c.TLS.CertFile)
	}
	if c.TLS.InsecureSkipVerify {
		e.AddBool("tls_insecure_skip_verify", true)
	}
	if c.SASL.Mechanism != "" {
		e.AddString("sasl_mechanism", c.SASL.Mechanism)
		e.AddString("sasl_user", c.SASL.User)
		e.AddString("sasl_password", redactedPassword)
	}
	if c.SchemaRegistryURL != "" {
		e.AddString("schema_registry_url", c.SchemaRegistryURL)
	}
	return nil
}
