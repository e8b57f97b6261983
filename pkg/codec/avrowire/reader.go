package avrowire

import (
	"encoding/binary"
	"math"

	"github.com/linkedin/goavro/v2"
)

// Reader reads Avro binary values from a byte slice, front to back. A
// read whose check fails records a Fault and returns a zero value, and so
// does every read after it (the first fault sticks). The zero Reader reads
// an empty input; NewReader reads b.
type Reader struct {
	b     []byte
	pos   int
	fault Fault
}

// NewReader returns a Reader of b.
func NewReader(b []byte) Reader { return Reader{b: b} }

// A Fault is the first check a Reader's input failed.
type Fault uint8

// Faults. Truncated is the only one a longer input could have avoided.
const (
	NoFault Fault = iota
	// Truncated: the input ends inside a value (a varint, a string or
	// bytes, a double, a boolean), or a block counts more items than the
	// bytes left could hold.
	Truncated
	// VarintTooLong: a varint of more than 10 bytes (5 for an int or an
	// enum index).
	VarintTooLong
	// IntOutOfRange: an int beyond 32 bits.
	IntOutOfRange
	// NegativeLength: a string or bytes of negative length.
	NegativeLength
	// BadBoolean: a boolean byte other than 0 and 1.
	BadBoolean
	// UnionOutOfRange: a union index other than 0 and 1 (Some).
	UnionOutOfRange
	// EnumOutOfRange: an enum index beyond the enum's symbols.
	EnumOutOfRange
	// BlockCountOutOfRange: a block count of more than
	// goavro.MaxBlockCount items, which goavro refuses, or the negative
	// count that has no positive one.
	BlockCountOutOfRange
	// NegativeBlockSize: the byte size of a block (after a negative
	// count) is negative.
	NegativeBlockSize
	// DuplicateKey: a map key given twice, which goavro refuses; the
	// caller finds it, and reports it with Fail.
	DuplicateKey
	// TrailingBytes: bytes are left after the value (End).
	TrailingBytes
)

var faultText = [...]string{
	NoFault:              "no fault",
	Truncated:            "truncated",
	VarintTooLong:        "varint too long",
	IntOutOfRange:        "int out of range",
	NegativeLength:       "negative length",
	BadBoolean:           "boolean neither 0 nor 1",
	UnionOutOfRange:      "union index out of range",
	EnumOutOfRange:       "enum index out of range",
	BlockCountOutOfRange: "block count out of range",
	NegativeBlockSize:    "negative block size",
	DuplicateKey:         "map key given twice",
	TrailingBytes:        "bytes after the value",
}

func (f Fault) String() string {
	if int(f) < len(faultText) {
		return faultText[f]
	}
	return "unknown fault"
}

// Fault returns the first fault, NoFault when every read so far succeeded.
func (r *Reader) Fault() Fault { return r.fault }

// Failed reports whether a read has failed.
func (r *Reader) Failed() bool { return r.fault != NoFault }

// Offset returns how many bytes of the input have been read; after a
// fault, where the failed check found it.
func (r *Reader) Offset() int { return r.pos }

// Fail records f, unless a fault is recorded already, and empties what is
// left of the input, so that every later read fails.
func (r *Reader) Fail(f Fault) {
	if r.fault == NoFault {
		r.fault = f
	}
	r.b = r.b[:r.pos]
}

// End reports whether the input held exactly the values read: no read
// failed, and no bytes are left (else it records TrailingBytes).
func (r *Reader) End() bool {
	if r.pos != len(r.b) {
		r.Fail(TrailingBytes)
	}
	return r.fault == NoFault
}

// Long reads a long: a zig-zag varint of at most 10 bytes.
func (r *Reader) Long() int64 {
	if v, ok := r.oneByte(); ok {
		return v
	}
	return r.varint(10)
}

// Int reads an int: a zig-zag varint of at most 5 bytes that fits in 32
// bits.
func (r *Reader) Int() int32 {
	if v, ok := r.oneByte(); ok {
		return int32(v)
	}
	return r.int()
}

// int reads an int the long way.
func (r *Reader) int() int32 {
	v := r.varint(5)
	if v < math.MinInt32 || v > math.MaxInt32 {
		r.Fail(IntOutOfRange)
		return 0
	}
	return int32(v)
}

// oneByte reads the varint at the reader's offset when it takes one byte,
// as most lengths, counts, indexes and small numbers do: the fast path of
// every read of a varint, inlined where it is read.
func (r *Reader) oneByte() (int64, bool) {
	if uint(r.pos) < uint(len(r.b)) {
		if c := r.b[r.pos]; c < 0x80 {
			r.pos++
			return int64(c>>1) ^ -int64(c&1), true
		}
	}
	return 0, false
}

// varint reads a varint of at most maxBytes bytes, the long way.
func (r *Reader) varint(maxBytes int) int64 {
	v, n := Varint(r.b[r.pos:], maxBytes)
	if n <= 0 {
		if n == 0 {
			r.pos = len(r.b)
			r.Fail(Truncated)
		} else {
			r.pos += maxBytes
			r.Fail(VarintTooLong)
		}
		return 0
	}
	r.pos += n
	return v
}

// Varint decodes the zig-zag varint at the start of b, of at most
// maxBytes bytes, and returns it with the bytes it took: n == 0 when b
// ends before it does, n < 0 when its first maxBytes bytes do not end it.
func Varint(b []byte, maxBytes int) (v int64, n int) {
	var u uint64
	for i, c := range b {
		if i >= maxBytes {
			return 0, -1
		}
		u |= uint64(c&0x7f) << uint(7*i)
		if c < 0x80 {
			return int64(u>>1) ^ -int64(u&1), i + 1
		}
	}
	return 0, 0
}

// Boolean reads a boolean: one byte, 0 or 1.
func (r *Reader) Boolean() bool {
	if r.pos >= len(r.b) {
		r.Fail(Truncated)
		return false
	}
	c := r.b[r.pos]
	if c > 1 {
		r.Fail(BadBoolean)
		return false
	}
	r.pos++
	return c == 1
}

// Double reads a double: 8 bytes, little endian.
func (r *Reader) Double() float64 {
	if len(r.b)-r.pos < 8 {
		r.Fail(Truncated)
		return 0
	}
	v := math.Float64frombits(binary.LittleEndian.Uint64(r.b[r.pos:]))
	r.pos += 8
	return v
}

// Bytes reads bytes or a string: a long length, then that many bytes,
// which it returns as a slice of the input (empty after a fault).
func (r *Reader) Bytes() []byte {
	n, ok := r.oneByte()
	if !ok {
		n = r.varint(10)
	}
	if uint64(n) > uint64(len(r.b)-r.pos) {
		r.badLength(n)
		return nil
	}
	b := r.b[r.pos : r.pos+int(n)]
	r.pos += int(n)
	return b
}

func (r *Reader) badLength(n int64) {
	if n < 0 {
		r.Fail(NegativeLength)
	} else {
		r.Fail(Truncated)
	}
}

// Enum reads the index of a symbol of an enum of n symbols (0 after a
// fault).
func (r *Reader) Enum(n int) int {
	i, ok := r.oneByte()
	if !ok {
		i = int64(r.int())
	}
	if uint64(i) >= uint64(n) {
		r.Fail(EnumOutOfRange)
		return 0
	}
	return int(i)
}

// Some reads the branch index of a ["null", T] union: false for null (and
// after a fault), true when a T follows.
func (r *Reader) Some() bool {
	i, ok := r.oneByte()
	if !ok {
		i = r.varint(10)
	}
	switch i {
	case 0:
		return false
	case 1:
		return true
	}
	r.Fail(UnionOutOfRange)
	return false
}

// Block reads the count of the next block of an array or map whose items
// take at least itemMin (> 0) bytes each: 0 ends the array or map, and is
// returned after a fault. A negative count, which a byte size follows, is
// read as its positive. The count is checked against the bytes left, so
// what a caller sizes by it is bounded by the input.
func (r *Reader) Block(itemMin int) int {
	n, ok := r.oneByte()
	if !ok {
		n = r.varint(10)
	}
	if n < 0 {
		n = r.sizedBlock(n)
	}
	if n == 0 {
		return 0
	}
	if n > goavro.MaxBlockCount {
		r.Fail(BlockCountOutOfRange)
		return 0
	}
	if n > int64((len(r.b)-r.pos)/itemMin) {
		r.Fail(Truncated)
		return 0
	}
	return int(n)
}

// sizedBlock reads the byte size after negative block count n, and
// returns the count (0 after a fault).
func (r *Reader) sizedBlock(n int64) int64 {
	if n == math.MinInt64 {
		r.Fail(BlockCountOutOfRange)
		return 0
	}
	if size := r.Long(); size < 0 {
		r.Fail(NegativeBlockSize)
	}
	if r.fault != NoFault {
		return 0
	}
	return -n
}
