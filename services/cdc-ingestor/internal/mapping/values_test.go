package mapping

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/freshet/freshet/pkg/events"
)

func TestParseList(t *testing.T) {
	for in, want := range map[string][]string{
		``:                           nil,
		`{}`:                         nil,
		`{go,kafka}`:                 {"go", "kafka"},
		`{"a b","c\"d",NULL,"NULL"}`: {"a b", `c"d`, "NULL"},
		`{{1,2},{3,4}}`:              {"1", "2", "3", "4"},
		`[0:1]={x,y}`:                {"x", "y"},
		`{a\,b,c}`:                   {"a,b", "c"},
		`["x","y z"]`:                {"x", "y z"},
		`plain text`:                 {"plain text"},
		`{"back\\slash"}`:            {`back\slash`},
	} {
		got, err := ParseList(in)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("ParseList(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{`{a`, `{"a}`, `{a}}`, `{a} x`, `[1,2`, `[0:1]{a}`} {
		if got, err := ParseList(bad); !errors.Is(err, ErrValue) {
			t.Errorf("ParseList(%q) = %q, %v; want ErrValue", bad, got, err)
		}
	}
}

func TestParseInterests(t *testing.T) {
	for in, want := range map[string][]events.Interest{
		`{"postgres": 1.0, "go": 0.5}`: {{Tag: "go", Weight: 0.5}, {Tag: "postgres", Weight: 1}},
		`{}`:                           nil,
		`{go,kafka,go}`:                {{Tag: "go", Weight: 1}, {Tag: "kafka", Weight: 1}},
		`["b","a"]`:                    {{Tag: "a", Weight: 1}, {Tag: "b", Weight: 1}},
		``:                             nil,
	} {
		got, err := ParseInterests(in)
		if err != nil || (len(got) != 0 || len(want) != 0) && !reflect.DeepEqual(got, want) {
			t.Errorf("ParseInterests(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{`{"a": "x"}`, `{"a": 1e999}`, `{"a`} {
		if got, err := ParseInterests(bad); !errors.Is(err, ErrValue) {
			t.Errorf("ParseInterests(%q) = %v, %v; want ErrValue", bad, got, err)
		}
	}
}

func TestParseScalars(t *testing.T) {
	for in, want := range map[string]bool{"t": true, "f": false, "true": true, "FALSE": false} {
		if got, err := ParseBool(in); err != nil || got != want {
			t.Errorf("ParseBool(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseBool("maybe"); !errors.Is(err, ErrValue) {
		t.Errorf("ParseBool(maybe) error = %v", err)
	}
	if n, err := ParseInt("-42"); err != nil || n != -42 {
		t.Errorf("ParseInt(-42) = %v, %v", n, err)
	}
	if _, err := ParseInt("4.5"); !errors.Is(err, ErrValue) {
		t.Errorf("ParseInt(4.5) error = %v", err)
	}
	want := time.Date(2026, 11, 25, 14, 46, 34, 123456000, time.UTC)
	for _, in := range []string{"2026-11-25 15:46:34.123456+01", "2026-11-25 14:46:34.123456+00", "2026-11-25 20:16:34.123456+05:30", "2026-11-25T14:46:34.123456Z", "2026-11-25 14:46:34.123456"} {
		if got, err := ParseTime(in); err != nil || !got.Equal(want) {
			t.Errorf("ParseTime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"infinity", "-infinity", "0044-03-15 00:00:00+00 BC", "yesterday"} {
		if _, err := ParseTime(bad); !errors.Is(err, ErrValue) {
			t.Errorf("ParseTime(%q) error = %v, want ErrValue", bad, err)
		}
	}
}

// FuzzValues: no text a column can hold panics a parser; an array written
// by FormatArray reads back the same; every error wraps ErrValue.
func FuzzValues(f *testing.F) {
	for _, s := range []string{`{go,kafka}`, `{"a b","c\"d",NULL}`, `{{1,2},{3}}`, `[0:1]={x,y}`, `["x"]`, `{"go": 0.5}`,
		`2026-11-25 15:46:34.123456+01`, `t`, `-9223372036854775808`, `{`, `"`, `{"\`, "{\xff}", `{a\`} {
		f.Add(s)
	}
	check := func(t *testing.T, err error) {
		if err != nil && !errors.Is(err, ErrValue) {
			t.Fatalf("error %v does not wrap ErrValue", err)
		}
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, err := ParseList(s)
		check(t, err)
		_, err = ParseInterests(s)
		check(t, err)
		_, err = ParseBool(s)
		check(t, err)
		_, err = ParseInt(s)
		check(t, err)
		_, err = ParseTime(s)
		check(t, err)
		if err == nil && len(l) > 0 {
			back, err := ParseArray(FormatArray(l))
			if err != nil || !reflect.DeepEqual(back, l) {
				t.Fatalf("FormatArray(%q) reads back as %q, %v", l, back, err)
			}
		}
	})
}

// FuzzSimpleArray: the fast path reads what the general parser reads.
func FuzzSimpleArray(f *testing.F) {
	for _, s := range []string{`{a,b}`, `{}`, `{NULL,x}`, `{a,,b}`, `{a b}`, `{"a"}`, `{a}}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if len(s) < 2 || s[0] != '{' {
			return
		}
		fast, ok := simpleArray(s)
		if !ok {
			return
		}
		// The general parser, without the fast path.
		slow, err := parseArraySlow(s)
		if err != nil || !reflect.DeepEqual(fast, slow) && (len(fast) != 0 || len(slow) != 0) {
			t.Fatalf("simpleArray(%q) = %q, general parser = %q, %v", s, fast, slow, err)
		}
	})
}
