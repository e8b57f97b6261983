package config

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"strconv"
	"strings"
)

// Redacted is what a set Secret prints instead of its value.
const Redacted = "[redacted]"

// Secret holds a password, token or key. It never shows its value: String,
// GoString, Format (every fmt verb), MarshalJSON, MarshalText and LogValue all
// give [Redacted] when it is set and "" when it is empty, so a config struct
// can be printed or logged whole. Call Reveal where the value is really
// needed, and nowhere else. The zero value is an empty secret.
type Secret struct {
	value string
}

// NewSecret wraps s.
func NewSecret(s string) Secret { return Secret{value: s} }

// Reveal returns the secret's value.
func (s Secret) Reveal() string { return s.value }

// IsSet reports whether the secret is non-empty.
func (s Secret) IsSet() bool { return s.value != "" }

func (s Secret) redacted() string {
	if s.value == "" {
		return ""
	}
	return Redacted
}

// String returns [Redacted], or "" when the secret is empty.
func (s Secret) String() string { return s.redacted() }

// GoString is used by %#v; it never shows the value.
func (s Secret) GoString() string { return fmt.Sprintf("config.Secret(%q)", s.redacted()) }

// Format implements fmt.Formatter so that no verb (%s, %v, %+v, %#v, %x, %q,
// %d ...) prints the value.
func (s Secret) Format(f fmt.State, verb rune) {
	switch {
	case verb == 'v' && f.Flag('#'):
		_, _ = io.WriteString(f, s.GoString())
	case verb == 'q':
		_, _ = io.WriteString(f, strconv.Quote(s.redacted()))
	default:
		_, _ = io.WriteString(f, s.redacted())
	}
}

// MarshalJSON returns "[redacted]" (or "" when empty) as a JSON string.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(strconv.Quote(s.redacted())), nil }

// MarshalText returns [Redacted] (or nothing when empty): encoders that use
// it (YAML, XML, JSON map keys) never see the value.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.redacted()), nil }

// UnmarshalText sets the secret from text; it is how Load reads a Secret.
func (s *Secret) UnmarshalText(b []byte) error {
	s.value = string(b)
	return nil
}

// LogValue keeps the value out of log/slog output.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.redacted()) }

// ByteSize is a number of bytes, written as an integer with an optional unit:
// B, KB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024),
// case-insensitive, e.g. "512", "16KiB", "1.5MiB", "10MB". The zero value is
// 0 bytes.
type ByteSize int64

// Byte sizes.
const (
	Byte ByteSize = 1
	KiB           = 1024 * Byte
	MiB           = 1024 * KiB
	GiB           = 1024 * MiB
	TiB           = 1024 * GiB
)

var byteUnits = []struct {
	name string
	size float64
}{
	{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"tib", 1 << 40},
	{"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9}, {"tb", 1e12},
	{"b", 1},
}

// ParseByteSize parses s as described on [ByteSize]. Fractions are allowed
// with a unit and rounded down to a whole byte; negative sizes are not.
func ParseByteSize(s string) (ByteSize, error) {
	n, err := parseByteSize(s)
	if err != nil {
		return 0, fmt.Errorf("byte size %q: %w", s, err)
	}
	return n, nil
}

var errByteSizeSyntax = errors.New("want a number and a unit such as 512, 16KiB, 1MiB, 10MB")

func parseByteSize(s string) (ByteSize, error) {
	lower := strings.ToLower(strings.TrimSpace(s))
	num, mult := lower, 1.0
	for _, u := range byteUnits {
		if strings.HasSuffix(lower, u.name) {
			num, mult = strings.TrimSpace(strings.TrimSuffix(lower, u.name)), u.size
			break
		}
	}
	if num == "" {
		return 0, errByteSizeSyntax
	}
	for _, c := range num {
		if (c < '0' || c > '9') && c != '.' {
			return 0, errByteSizeSyntax
		}
	}
	if mult == 1 {
		if strings.Contains(num, ".") {
			return 0, errors.New("a fraction of a byte")
		}
		n, err := strconv.ParseInt(num, 10, 64)
		if err != nil {
			return 0, errors.New("out of range")
		}
		return ByteSize(n), nil
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, errByteSizeSyntax
	}
	f = math.Floor(f * mult)
	if f >= math.MaxInt64 {
		return 0, errors.New("out of range")
	}
	return ByteSize(f), nil
}

// String formats b with the largest binary unit that divides it exactly, e.g.
// "16KiB", "1536KiB", "100B".
func (b ByteSize) String() string {
	if b == 0 {
		return "0B"
	}
	units := []struct {
		name string
		size ByteSize
	}{{"TiB", TiB}, {"GiB", GiB}, {"MiB", MiB}, {"KiB", KiB}}
	for _, u := range units {
		if b%u.size == 0 {
			return strconv.FormatInt(int64(b/u.size), 10) + u.name
		}
	}
	return strconv.FormatInt(int64(b), 10) + "B"
}

// MarshalText returns String's form, which ParseByteSize reads back.
func (b ByteSize) MarshalText() ([]byte, error) { return []byte(b.String()), nil }

// UnmarshalText parses text with ParseByteSize.
func (b *ByteSize) UnmarshalText(text []byte) error {
	n, err := parseByteSize(string(text))
	if err != nil {
		return err
	}
	*b = n
	return nil
}
