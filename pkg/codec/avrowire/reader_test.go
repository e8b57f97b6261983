package avrowire

import (
	"encoding/binary"
	"math"
	"testing"
)

// TestVarint: every int64 encoded as Avro (and encoding/binary) writes it
// reads back, in as many bytes; a varint the input cuts short, or that
// runs past maxBytes, is refused.
func TestVarint(t *testing.T) {
	for _, v := range []int64{0, -1, 1, 63, -64, 64, -65, 1 << 20, math.MaxInt32, math.MinInt32, math.MaxInt64, math.MinInt64} {
		b := binary.AppendVarint(nil, v)
		if got, n := Varint(append(b, 0x55), 10); got != v || n != len(b) {
			t.Errorf("Varint(% x) = %d, %d; want %d, %d", b, got, n, v, len(b))
		}
		r := NewReader(b)
		if got := r.Long(); got != v || !r.End() {
			t.Errorf("Long(% x) = %d, fault %v; want %d", b, got, r.Fault(), v)
		}
	}
	for _, tc := range []struct {
		name     string
		b        []byte
		maxBytes int
		want     int
	}{
		{"empty", nil, 10, 0},
		{"cut short", []byte{0x80, 0x80}, 10, 0},
		{"cut short at maxBytes", []byte{0x80, 0x80}, 2, 0},
		{"longer than maxBytes", []byte{0x80, 0x80, 0x01}, 2, -1},
		{"11 bytes", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, 10, -1},
	} {
		if v, n := Varint(tc.b, tc.maxBytes); v != 0 || n != tc.want {
			t.Errorf("%s: Varint = %d, %d; want 0, %d", tc.name, v, n, tc.want)
		}
	}
}

// TestReaderFaults: each check refuses what it should with its fault, at
// the byte it found it, and every read after a fault fails too.
func TestReaderFaults(t *testing.T) {
	for _, tc := range []struct {
		name   string
		b      []byte
		read   func(r *Reader)
		want   Fault
		offset int
	}{
		{"long of no bytes", nil, func(r *Reader) { r.Long() }, Truncated, 0},
		{"long cut short", []byte{0x80}, func(r *Reader) { r.Long() }, Truncated, 1},
		{"long of 11 bytes", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, func(r *Reader) { r.Long() }, VarintTooLong, 10},
		{"int of 6 bytes", []byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x00}, func(r *Reader) { r.Int() }, VarintTooLong, 5},
		{"int beyond 32 bits", []byte{0x80, 0x80, 0x80, 0x80, 0x10}, func(r *Reader) { r.Int() }, IntOutOfRange, 5},
		{"bytes cut short", []byte{0x06, 'a', 'b'}, func(r *Reader) { r.Bytes() }, Truncated, 1},
		{"bytes of 2^40", []byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x40}, func(r *Reader) { r.Bytes() }, Truncated, 6},
		{"negative length", []byte{0x01}, func(r *Reader) { r.Bytes() }, NegativeLength, 1},
		{"boolean 2", []byte{0x02}, func(r *Reader) { r.Boolean() }, BadBoolean, 0},
		{"boolean of no bytes", nil, func(r *Reader) { r.Boolean() }, Truncated, 0},
		{"double of 7 bytes", make([]byte, 7), func(r *Reader) { r.Double() }, Truncated, 0},
		{"union index 2", []byte{0x04}, func(r *Reader) { r.Some() }, UnionOutOfRange, 1},
		{"union index -1", []byte{0x01}, func(r *Reader) { r.Some() }, UnionOutOfRange, 1},
		{"enum index 3 of 3", []byte{0x06}, func(r *Reader) { r.Enum(3) }, EnumOutOfRange, 1},
		{"enum index -1", []byte{0x01}, func(r *Reader) { r.Enum(3) }, EnumOutOfRange, 1},
		{"block beyond the bytes", []byte{0x06, 0, 0, 0, 0, 0}, func(r *Reader) { r.Block(2) }, Truncated, 1},
		{"block count beyond goavro's", []byte{0x80, 0x80, 0x80, 0x80, 0x10}, func(r *Reader) { r.Block(1) }, BlockCountOutOfRange, 5},
		{"block count -2^63", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, func(r *Reader) { r.Block(1) }, BlockCountOutOfRange, 10},
		{"negative block size", []byte{0x01, 0x01, 0x00}, func(r *Reader) { r.Block(1) }, NegativeBlockSize, 2},
		{"bytes after the value", []byte{0x02, 0x00}, func(r *Reader) { r.Long() }, TrailingBytes, 1},
		{"first fault sticks", []byte{0x04, 0x02}, func(r *Reader) { r.Some(); r.Fail(DuplicateKey) }, UnionOutOfRange, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := NewReader(tc.b)
			tc.read(&r)
			if r.End() || r.Fault() != tc.want || r.Offset() != tc.offset {
				t.Fatalf("fault %v at byte %d, want %v at byte %d", r.Fault(), r.Offset(), tc.want, tc.offset)
			}
			if r.Long() != 0 || r.Int() != 0 || len(r.Bytes()) != 0 || r.Boolean() || r.Double() != 0 ||
				r.Some() || r.Enum(1) != 0 || r.Block(1) != 0 || r.Fault() != tc.want || r.Offset() != tc.offset {
				t.Fatalf("a read after the fault read on: fault %v at byte %d", r.Fault(), r.Offset())
			}
		})
	}
}

// TestReaderReads reads one value of each kind.
func TestReaderReads(t *testing.T) {
	b := []byte{0x03, 0x02, 0x06, 'a', 'b', 'c', 0x01, 0x00, 0x04, 0x03, 0x08, 0x02, 0x00}
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(2.5))
	r := NewReader(b)
	if v := r.Long(); v != -2 {
		t.Errorf("Long = %d", v)
	}
	if !r.Some() {
		t.Error("Some = false")
	}
	if s := r.Bytes(); string(s) != "abc" {
		t.Errorf("Bytes = %q", s)
	}
	if !r.Boolean() || r.Some() {
		t.Error("Boolean, Some")
	}
	if i := r.Enum(3); i != 2 {
		t.Errorf("Enum = %d", i)
	}
	if n := r.Block(1); n != 2 { // -2 items, 4 bytes
		t.Errorf("Block = %d", n)
	}
	if i := r.Int(); i != 1 {
		t.Errorf("Int = %d", i)
	}
	if n := r.Block(1); n != 0 {
		t.Errorf("Block = %d", n)
	}
	if f := r.Double(); f != 2.5 {
		t.Errorf("Double = %v", f)
	}
	if !r.End() {
		t.Errorf("fault %v at byte %d", r.Fault(), r.Offset())
	}
}

// FuzzReader: no input makes a read panic or read past the input, and a
// varint reads as encoding/binary reads it wherever that takes it.
func FuzzReader(f *testing.F) {
	f.Add([]byte{0x03, 0x02, 0x06, 'a', 'b', 'c', 0x01}, "lsbzeBid")
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, "l")
	f.Fuzz(func(t *testing.T, b []byte, ops string) {
		if v, n := Varint(b, 10); n > 0 {
			if w, m := binary.Varint(b); m == n && w != v {
				t.Fatalf("Varint(% x) = %d, encoding/binary reads %d", b, v, w)
			}
		}
		r := NewReader(b)
		for _, op := range []byte(ops) {
			before, failed := r.Offset(), r.Failed()
			switch op % 8 {
			case 0:
				r.Long()
			case 1:
				r.Int()
			case 2:
				r.Bytes()
			case 3:
				r.Boolean()
			case 4:
				r.Double()
			case 5:
				r.Enum(int(op/8) + 1)
			case 6:
				r.Some()
			case 7:
				r.Block(int(op/8) + 1)
			}
			if r.Offset() < before || r.Offset() > len(b) {
				t.Fatalf("offset %d after %d, of %d bytes", r.Offset(), before, len(b))
			}
			if failed && r.Offset() != before {
				t.Fatalf("a read after the fault moved from byte %d to %d", before, r.Offset())
			}
		}
		r.End()
	})
}
