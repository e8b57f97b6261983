package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestSecretNeverPrinted(t *testing.T) {
	const pw = "hunter2-very-secret"
	type holder struct {
		User     string
		Password Secret
		Ptr      *Secret
	}
	s := NewSecret(pw)
	h := holder{User: "u", Password: s, Ptr: &s}
	outputs := map[string]string{}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%10s", "%T"} {
		outputs["fmt "+verb+" secret"] = fmt.Sprintf(verb, s)
		outputs["fmt "+verb+" struct"] = fmt.Sprintf(verb, h)
		outputs["fmt "+verb+" pointer"] = fmt.Sprintf(verb, &s)
	}
	outputs["Sprint"] = fmt.Sprint(s, h)
	outputs["Sprintln"] = fmt.Sprintln(s)
	outputs["String"] = s.String()
	j, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	outputs["json"] = string(j)
	txt, _ := s.MarshalText()
	outputs["text"] = string(txt)
	var sb strings.Builder
	slog.New(slog.NewJSONHandler(&sb, nil)).Info("cfg", "password", s, "holder", h)
	outputs["slog"] = sb.String()
	outputs["error"] = fmt.Errorf("connect with %v: %w", s, errors.New("x")).Error()

	for name, out := range outputs {
		if strings.Contains(out, pw) || strings.Contains(out, fmt.Sprintf("%x", pw)) {
			t.Errorf("%s reveals the secret: %s", name, out)
		}
	}
	if outputs["fmt %v secret"] != Redacted || outputs["json"] != `{"User":"u","Password":"[redacted]","Ptr":"[redacted]"}` {
		t.Errorf("unexpected redaction: %q, %s", outputs["fmt %v secret"], outputs["json"])
	}
	if s.Reveal() != pw {
		t.Errorf("Reveal: %q", s.Reveal())
	}
	if (Secret{}).String() != "" || (Secret{}).IsSet() {
		t.Error("the zero Secret should print empty and not be set")
	}
}

func TestByteSize(t *testing.T) {
	tests := []struct {
		in   string
		want ByteSize
		err  bool
	}{
		{"0", 0, false},
		{"512", 512, false},
		{"512B", 512, false},
		{"16KiB", 16 * KiB, false},
		{"16kib", 16 * KiB, false},
		{"1MiB", MiB, false},
		{"1.5MiB", MiB + MiB/2, false},
		{"2GiB", 2 * GiB, false},
		{"1TiB", TiB, false},
		{"10KB", 10000, false},
		{"10 MB", 10_000_000, false},
		{"1GB", 1_000_000_000, false},
		{"", 0, true},
		{"KiB", 0, true},
		{"-1", 0, true},
		{"1.5", 0, true},
		{"1.5B", 0, true},
		{"12XB", 0, true},
		{"1e3KiB", 0, true},
		{"9999999999TiB", 0, true},
		{"99999999999999999999", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseByteSize(tt.in)
			if tt.err {
				if err == nil {
					t.Fatalf("ParseByteSize(%q) = %d, want an error", tt.in, got)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseByteSize(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestByteSizeString(t *testing.T) {
	tests := map[ByteSize]string{0: "0B", 100: "100B", 16 * KiB: "16KiB", MiB + MiB/2: "1536KiB", 3 * GiB: "3GiB", 2 * TiB: "2TiB", 1000: "1000B"}
	for b, want := range tests {
		if got := b.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int64(b), got, want)
		}
	}
}

// FuzzParseByteSize: never panics, and what parses formats back to the same
// size.
func FuzzParseByteSize(f *testing.F) {
	for _, s := range []string{"0", "512", "16KiB", "1.5MiB", "10MB", "", "-1", "1e3", "9223372036854775807", "8388608TiB"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, err := ParseByteSize(s)
		if err != nil {
			return
		}
		if b < 0 {
			t.Fatalf("ParseByteSize(%q) = %d, negative", s, b)
		}
		back, err := ParseByteSize(b.String())
		if err != nil || back != b {
			t.Fatalf("round trip of %q: %d -> %q -> %d, %v", s, b, b.String(), back, err)
		}
	})
}
