package cursor

import (
	"errors"
	"strings"
	"testing"
)

var parseCases = []struct {
	in   string
	want Cursor
	err  bool
}{
	{in: "0-0", want: Cursor{{0, 0}}},
	{in: "3-1042.7-88", want: Cursor{{3, 1042}, {7, 88}}},
	{in: "2147483647-9223372036854775807", want: Cursor{{2147483647, 9223372036854775807}}},
	{in: "", err: true},
	{in: "3", err: true},
	{in: "3-", err: true},
	{in: "-3", err: true},
	{in: "3--1", err: true},
	{in: "03-1", err: true},
	{in: "3-01", err: true},
	{in: "+3-1", err: true},
	{in: "7-1.3-1", err: true},
	{in: "3-1.3-2", err: true},
	{in: "3-1.", err: true},
	{in: "2147483648-0", err: true},
	{in: "1-9223372036854775808", err: true},
	{in: "1-1 ", err: true},
	{in: "42", err: true}, // an r3labs/sse integer id is not a cursor
	{in: strings.Repeat("1-1.", 300) + "1-1", err: true},
}

func TestParse(t *testing.T) {
	for _, tc := range parseCases {
		t.Run(tc.in, func(t *testing.T) {
			got, err := Parse(tc.in)
			if tc.err {
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("Parse(%q) = %v, %v; want ErrMalformed", tc.in, got, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v", tc.in, err)
			}
			if got.String() != tc.in || len(got) != len(tc.want) {
				t.Fatalf("Parse(%q) = %v", tc.in, got)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("Parse(%q)[%d] = %v, want %v", tc.in, i, got[i], tc.want[i])
				}
			}
		})
	}
}

func TestWithAndOffset(t *testing.T) {
	c := Cursor{{3, 10}}
	c2 := c.With(7, 5).With(1, 2).With(3, 11)
	if c2.String() != "1-2.3-11.7-5" {
		t.Fatalf("With: %s", c2)
	}
	if c.String() != "3-10" {
		t.Fatalf("With modified its receiver: %s", c)
	}
	if o, ok := c2.Offset(7); !ok || o != 5 {
		t.Fatalf("Offset(7) = %d, %v", o, ok)
	}
	if _, ok := c2.Offset(4); ok {
		t.Fatal("Offset(4) found a partition that is not there")
	}
}

// FuzzParse: Parse never panics, and what it accepts round-trips exactly.
func FuzzParse(f *testing.F) {
	for _, tc := range parseCases {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := Parse(s)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error does not wrap ErrMalformed: %v", err)
			}
			return
		}
		if c.String() != s {
			t.Fatalf("round trip: %q -> %q", s, c.String())
		}
		c2, err := Parse(c.String())
		if err != nil || len(c2) != len(c) {
			t.Fatalf("reparse: %v", err)
		}
	})
}
