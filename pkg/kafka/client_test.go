package kafka

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap/zapcore"
)

func TestConfigValidate(t *testing.T) {
	ok := Config{Brokers: []string{"127.0.0.1:9092"}}
	with := func(f func(*Config)) Config {
		c := ok
		f(&c)
		return c
	}
	tests := []struct {
		name      string
		cfg       Config
		wantField string // empty means valid
	}{
		{name: "valid", cfg: ok},
		{name: "valid scram", cfg: with(func(c *Config) { c.SASL = SASLConfig{Mechanism: "SCRAM-SHA-512", User: "u", Password: "p"} })},
		{name: "no brokers", cfg: Config{}, wantField: "Brokers"},
		{name: "empty broker", cfg: Config{Brokers: []string{"a:1", " "}}, wantField: "Brokers[1]"},
		{name: "broker without port", cfg: Config{Brokers: []string{"kafka"}}, wantField: "Brokers[0]"},
		{name: "cert without key", cfg: with(func(c *Config) { c.TLS.CertFile = "c.pem" }), wantField: "TLS.KeyFile"},
		{name: "key without cert", cfg: with(func(c *Config) { c.TLS.KeyFile = "k.pem" }), wantField: "TLS.CertFile"},
		{name: "unknown mechanism", cfg: with(func(c *Config) { c.SASL = SASLConfig{Mechanism: "gssapi", User: "u", Password: "p"} }), wantField: "SASL.Mechanism"},
		{name: "mechanism without user", cfg: with(func(c *Config) { c.SASL = SASLConfig{Mechanism: "plain", Password: "p"} }), wantField: "SASL.User"},
		{name: "mechanism without password", cfg: with(func(c *Config) { c.SASL = SASLConfig{Mechanism: "plain", User: "u"} }), wantField: "SASL.Password"},
		{name: "user without mechanism", cfg: with(func(c *Config) { c.SASL = SASLConfig{User: "u", Password: "p"} }), wantField: "SASL.Mechanism"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.wantField == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			var ce *ConfigError
			if !errors.As(err, &ce) || ce.Field != tt.wantField {
				t.Fatalf("Validate = %v, want a *ConfigError for %s", err, tt.wantField)
			}
			if !strings.Contains(err.Error(), tt.wantField) {
				t.Fatalf("error %q does not name %s", err, tt.wantField)
			}
			if _, err := NewClient(tt.cfg, nil); !errors.As(err, &ce) {
				t.Fatalf("NewClient = %v, want the same *ConfigError", err)
			}
		})
	}
}

func TestConfigPasswordNotInErrors(t *testing.T) {
	cfg := Config{Brokers: []string{"127.0.0.1:1"}, SASL: SASLConfig{Mechanism: "kerberos", User: "u", Password: "s3cret-pw"}}
	if err := cfg.Validate(); err == nil || strings.Contains(err.Error(), "s3cret-pw") {
		t.Fatalf("Validate = %v, want an error without the password", err)
	}
}

func TestTLSFileErrors(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		tls       TLSConfig
		wantField string
	}{
		{name: "missing CA", tls: TLSConfig{CAFile: filepath.Join(dir, "nope.pem")}, wantField: "TLS.CAFile"},
		{name: "CA not PEM", tls: TLSConfig{CAFile: notPEM}, wantField: "TLS.CAFile"},
		{name: "bad key pair", tls: TLSConfig{CertFile: notPEM, KeyFile: notPEM}, wantField: "TLS.CertFile"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewClient(Config{Brokers: []string{"127.0.0.1:9092"}, TLS: tt.tls}, nil)
			var ce *ConfigError
			if !errors.As(err, &ce) || ce.Field != tt.wantField {
				t.Fatalf("NewClient = %v, want a *ConfigError for %s", err, tt.wantField)
			}
		})
	}
}

func TestClientProduceConsume(t *testing.T) {
	ctx := testCtx(t)
	topic := topicName(t, "")
	seedTopic(t, topic, 1, nil)
	cl := newTestClient(t)
	for i := range 10 {
		rec := &kgo.Record{Topic: topic, Key: []byte("k"), Value: fmt.Appendf(nil, "v%d", i)}
		if err := cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
			t.Fatalf("produce %d: %v", i, err)
		}
	}
	got := consume(t, topic, 10)
	for i, r := range got {
		if want := fmt.Sprintf("v%d", i); string(r.Value) != want || string(r.Key) != "k" {
			t.Fatalf("record %d = %q/%q, want k/%s (order per key)", i, r.Key, r.Value, want)
		}
	}
}

// testPKI is a CA with a server and a client certificate, as PEM files.
type testPKI struct {
	caFile, clientCert, clientKey string
	server                        tls.Certificate
	pool                          *x509.CertPool
}

func newTestPKI(t *testing.T) testPKI {
	t.Helper()
	dir := t.TempDir()
	caKey := mustKey(t)
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "freshet test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	issue := func(serial int64, usage x509.ExtKeyUsage) ([]byte, *ecdsa.PrivateKey) {
		key := mustKey(t)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial),
			Subject:      pkix.Name{CommonName: "localhost"},
			NotBefore:    time.Now().Add(-time.Hour),
			NotAfter:     time.Now().Add(time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{usage},
			DNSNames:     []string{"localhost"},
			IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return der, key
	}
	p := testPKI{
		caFile:     writePEM(t, dir, "ca.pem", "CERTIFICATE", caDER),
		clientCert: filepath.Join(dir, "client.pem"),
		clientKey:  filepath.Join(dir, "client-key.pem"),
		pool:       x509.NewCertPool(),
	}
	p.pool.AddCert(ca)
	serverDER, serverKey := issue(2, x509.ExtKeyUsageServerAuth)
	p.server = tls.Certificate{Certificate: [][]byte{serverDER}, PrivateKey: serverKey}
	clientDER, clientKey := issue(3, x509.ExtKeyUsageClientAuth)
	writePEM(t, dir, "client.pem", "CERTIFICATE", clientDER)
	keyDER, err := x509.MarshalECPrivateKey(clientKey)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, dir, "client-key.pem", "EC PRIVATE KEY", keyDER)
	return p
}

func mustKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func writePEM(t *testing.T, dir, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// produceAndConsume checks that cl can write a record to topic and read it
// back.
func produceAndConsume(ctx context.Context, cfg Config, topic string) error {
	cl, err := NewClient(cfg, nil, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := cl.Ping(ctx); err != nil {
		return fmt.Errorf("ping: %w", err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("secure")}).FirstErr(); err != nil {
		return fmt.Errorf("produce: %w", err)
	}
	fs := cl.PollFetches(ctx)
	if err := fs.Err0(); err != nil {
		return fmt.Errorf("fetch: %w", err)
	}
	if recs := fs.Records(); len(recs) == 0 || string(recs[0].Value) != "secure" {
		return fmt.Errorf("fetched %d records, want the one produced", len(recs))
	}
	return nil
}

func TestClientTLS(t *testing.T) {
	pki := newTestPKI(t)
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "tls"), kfake.TLS(&tls.Config{
		Certificates: []tls.Certificate{pki.server},
		ClientCAs:    pki.pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS12,
	}))
	if err != nil {
		t.Fatalf("start kfake with TLS: %v", err)
	}
	t.Cleanup(c.Close)

	tests := []struct {
		name   string
		tls    TLSConfig
		wantOK bool
	}{
		{name: "CA and client certificate", tls: TLSConfig{Enabled: true, CAFile: pki.caFile, CertFile: pki.clientCert, KeyFile: pki.clientKey}, wantOK: true},
		{name: "files imply enabled", tls: TLSConfig{CAFile: pki.caFile, CertFile: pki.clientCert, KeyFile: pki.clientKey}, wantOK: true},
		{name: "no client certificate", tls: TLSConfig{Enabled: true, CAFile: pki.caFile}},
		{name: "system roots do not trust the test CA", tls: TLSConfig{Enabled: true, CertFile: pki.clientCert, KeyFile: pki.clientKey}},
		{name: "plaintext", tls: TLSConfig{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := produceAndConsume(testCtx(t), Config{Brokers: c.ListenAddrs(), TLS: tt.tls}, "tls")
			if tt.wantOK && err != nil {
				t.Fatalf("over TLS: %v", err)
			}
			if !tt.wantOK && (err == nil || errors.Is(err, context.DeadlineExceeded)) {
				t.Fatalf("produceAndConsume = %v, want the broker's refusal", err)
			}
		})
	}
}

func TestClientSASL(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "sasl"), kfake.EnableSASL(),
		kfake.Superuser("PLAIN", "plain-user", "plain-pw"),
		kfake.Superuser("SCRAM-SHA-256", "scram256-user", "scram256-pw"),
		kfake.Superuser("SCRAM-SHA-512", "scram512-user", "scram512-pw"),
	)
	if err != nil {
		t.Fatalf("start kfake with SASL: %v", err)
	}
	t.Cleanup(c.Close)

	tests := []struct {
		name   string
		sasl   SASLConfig
		wantOK bool
	}{
		{name: "plain", sasl: SASLConfig{Mechanism: "plain", User: "plain-user", Password: "plain-pw"}, wantOK: true},
		{name: "scram-sha-256", sasl: SASLConfig{Mechanism: "scram-sha-256", User: "scram256-user", Password: "scram256-pw"}, wantOK: true},
		{name: "scram-sha-512 upper case", sasl: SASLConfig{Mechanism: "SCRAM-SHA-512", User: "scram512-user", Password: "scram512-pw"}, wantOK: true},
		{name: "wrong password", sasl: SASLConfig{Mechanism: "scram-sha-256", User: "scram256-user", Password: "nope"}},
		{name: "no SASL", sasl: SASLConfig{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := produceAndConsume(testCtx(t), Config{Brokers: c.ListenAddrs(), SASL: tt.sasl}, "sasl")
			if tt.wantOK && err != nil {
				t.Fatalf("with SASL %s: %v", tt.sasl.Mechanism, err)
			}
			if !tt.wantOK && (err == nil || errors.Is(err, context.DeadlineExceeded)) {
				t.Fatalf("produceAndConsume = %v, want the broker's refusal", err)
			}
			if err != nil {
				t.Logf("refused as expected: %v", err)
			}
		})
	}
}

func TestConfigNeverShowsPassword(t *testing.T) {
	cfg := Config{Brokers: []string{"k:9092"}, SASL: SASLConfig{Mechanism: "plain", User: "svc", Password: "s3cret-pw"}}
	enc := zapcore.NewMapObjectEncoder()
	if err := cfg.MarshalLogObject(enc); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		out  string
	}{
		{"%v", fmt.Sprintf("%v", cfg)},
		{"%+v", fmt.Sprintf("%+v", cfg)},
		{"%#v", fmt.Sprintf("%#v", cfg)},
		{"%s of SASL", fmt.Sprintf("%s", cfg.SASL)},
		{"zap object", fmt.Sprint(enc.Fields)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if strings.Contains(tt.out, "s3cret-pw") {
				t.Fatalf("password shown: %s", tt.out)
			}
			if !strings.Contains(tt.out, "svc") || !strings.Contains(tt.out, "[redacted]") {
				t.Fatalf("output %s: want the user and a redacted password", tt.out)
			}
		})
	}
}
