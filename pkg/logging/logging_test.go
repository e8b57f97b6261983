package logging

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/freshet/freshet/pkg/config"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// newBuffered builds a logger as New does, writing to a buffer.
func newBuffered(t *testing.T, cfg Config) (*zap.Logger, *bytes.Buffer) {
	t.Helper()
	var buf bytes.Buffer
	l, err := build(cfg, zapcore.AddSync(&buf))
	if err != nil {
		t.Fatalf("build(%+v): %v", cfg, err)
	}
	return l, &buf
}

// lines decodes every JSON line written to buf.
func lines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("line %q is not JSON: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

func TestNewConfig(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string // substring; empty means no error
	}{
		{name: "zero value", cfg: Config{}},
		{name: "debug console", cfg: Config{Level: "DEBUG", Format: "console"}},
		{name: "warn json", cfg: Config{Level: "warn", Format: "json"}},
		{name: "bad level", cfg: Config{Level: "verbose"}, wantErr: `level "verbose"`},
		{name: "bad format", cfg: Config{Format: "xml"}, wantErr: `format "xml"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := New(tt.cfg)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				if l == nil {
					t.Fatal("New returned a nil logger")
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("New error = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestLevelFilters(t *testing.T) {
	l, buf := newBuffered(t, Config{Level: "warn"})
	l.Info("dropped")
	l.Warn("kept")
	got := lines(t, buf)
	if len(got) != 1 || got[0]["msg"] != "kept" || got[0]["level"] != "warn" {
		t.Fatalf("lines = %v, want only the warn line", got)
	}
}

func TestSharedFieldNames(t *testing.T) {
	l, buf := newBuffered(t, Config{})
	l = Named(l, "consumer").With(Service("invalidator"))
	l.Info("processed",
		Topic("content.changes"),
		Partition(3),
		Offset(42),
		UserID("u-1"),
		EventID("ev-9"),
		Target("varnish"),
		LSN(0x16_B374D848),
		Error(errors.New("boom")),
	)
	l.Info("record", Record(&kgo.Record{Topic: "user.profiles", Partition: 7, Offset: 1000, Value: []byte("private")}))

	got := lines(t, buf)
	if len(got) != 2 {
		t.Fatalf("got %d lines, want 2: %s", len(got), buf)
	}
	want := map[string]any{
		"logger":    "consumer",
		"component": "consumer",
		"service":   "invalidator",
		"topic":     "content.changes",
		"partition": float64(3),
		"offset":    float64(42),
		"user_id":   "u-1",
		"event_id":  "ev-9",
		"target":    "varnish",
		"lsn":       "16/B374D848",
		"error":     "boom",
		"msg":       "processed",
		"level":     "info",
	}
	for k, v := range want {
		if got[0][k] != v {
			t.Errorf("field %q = %v (%T), want %v", k, got[0][k], got[0][k], v)
		}
	}
	if _, ok := got[0]["ts"]; !ok {
		t.Errorf("no ts field in %v", got[0])
	}
	rec := got[1]
	if rec["topic"] != "user.profiles" || rec["partition"] != float64(7) || rec["offset"] != float64(1000) {
		t.Errorf("Record fields = %v, want topic, partition and offset at top level", rec)
	}
	if strings.Contains(buf.String(), "private") {
		t.Errorf("Record logged the value: %s", buf)
	}
}

func TestRecordNil(t *testing.T) {
	l, buf := newBuffered(t, Config{})
	l.Info("nil record", Record(nil))
	got := lines(t, buf)
	if _, ok := got[0]["topic"]; ok {
		t.Fatalf("a nil record added fields: %v", got[0])
	}
}

func TestFormatLSN(t *testing.T) {
	tests := []struct {
		lsn  uint64
		want string
	}{
		{0, "0/0"},
		{0x1_00000000, "1/0"},
		{0x16_B374D848, "16/B374D848"},
		{^uint64(0), "FFFFFFFF/FFFFFFFF"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := FormatLSN(tt.lsn); got != tt.want {
				t.Fatalf("FormatLSN(%#x) = %q, want %q", tt.lsn, got, tt.want)
			}
		})
	}
}

func TestRedaction(t *testing.T) {
	const jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1LTEifQ.c2lnbmF0dXJlLXNlY3JldA"
	const password = "hunter2"
	l, buf := newBuffered(t, Config{Level: "debug"})
	l.Info("authenticated", Token("token", jwt), Redacted("password"), Token("empty", ""))
	out := buf.String()
	for _, secret := range []string{jwt, password, "c2lnbmF0dXJl"} {
		if strings.Contains(out, secret) {
			t.Fatalf("log line contains secret %q: %s", secret, out)
		}
	}
	got := lines(t, buf)[0]
	if got["token"] != Fingerprint(jwt) {
		t.Errorf("token = %v, want fingerprint %q", got["token"], Fingerprint(jwt))
	}
	if got["password"] != RedactedText {
		t.Errorf("password = %v, want %q", got["password"], RedactedText)
	}
	if got["empty"] != "" {
		t.Errorf("empty token = %v, want empty", got["empty"])
	}
}

func TestFingerprint(t *testing.T) {
	a, b := Fingerprint("token-a"), Fingerprint("token-b")
	if a == b {
		t.Fatalf("different tokens share fingerprint %q", a)
	}
	if a != Fingerprint("token-a") {
		t.Fatal("fingerprint is not stable")
	}
	if !strings.HasPrefix(a, "sha256:") || len(a) != len("sha256:")+12 {
		t.Fatalf("fingerprint %q: want sha256: and 12 hex digits", a)
	}
}

func TestConsoleFormat(t *testing.T) {
	l, buf := newBuffered(t, Config{Format: "console"})
	l.Info("hello", Topic("t1"))
	out := buf.String()
	if json.Valid(bytes.TrimSpace(buf.Bytes())) {
		t.Fatalf("console output is JSON: %s", out)
	}
	if !strings.Contains(out, "INFO") || !strings.Contains(out, "hello") || !strings.Contains(out, `"topic": "t1"`) {
		t.Fatalf("console output = %q, want level, message and fields", out)
	}
}

func TestKgo(t *testing.T) {
	l, buf := newBuffered(t, Config{Level: "info"})
	kl := Kgo(Named(l, "kafka"))
	if kl.Level() != kgo.LogLevelInfo {
		t.Fatalf("Level() = %v, want info", kl.Level())
	}
	kl.Log(kgo.LogLevelDebug, "hidden")
	kl.Log(kgo.LogLevelWarn, "metadata update failed", "broker", "1", "err", "boom")
	got := lines(t, buf)
	if len(got) != 1 {
		t.Fatalf("got %d lines, want 1 (debug is below info): %s", len(got), buf)
	}
	if got[0]["msg"] != "metadata update failed" || got[0]["broker"] != "1" || got[0]["component"] != "kafka" {
		t.Fatalf("kgo line = %v", got[0])
	}
}

// ForService takes the shared FRESHET_LOG_* settings: a bad level is the
// same error New gives, a good one a logger.
func TestForService(t *testing.T) {
	if _, err := ForService("svc", config.Log{Level: "loud", Format: "json"}); err == nil || !strings.Contains(err.Error(), "loud") {
		t.Fatalf("ForService with level loud: %v, want an error naming the value", err)
	}
	log, err := ForService("svc", config.Log{Level: "info", Format: "console"})
	if err != nil || log == nil {
		t.Fatalf("ForService: %v", err)
	}
}
