package codec

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/linkedin/goavro/v2"

	"github.com/freshet/freshet/pkg/events"
)

// This file holds the Avro binary primitives of the direct path
// (direct.go): a writer that appends values exactly as goavro's encoder
// does, and a reader that accepts exactly what Decode accepts (scanValue's
// checks, then goavro's), bounding every length and count by the bytes
// left.

// writer appends the Avro binary encoding of values to b. ok turns false
// when a value has no encoding (an enum symbol the schema does not have);
// the caller then falls back to goavro, which reports the error.
type writer struct {
	b  []byte
	ok bool
}

// long appends a zig-zag varint, as goavro's longBinaryFromNative does (and
// its intBinaryFromNative, for values that fit an int).
func (w *writer) long(v int64) {
	u := uint64(v<<1) ^ uint64(v>>63)
	for u >= 0x80 {
		w.b = append(w.b, byte(u)|0x80)
		u >>= 7
	}
	w.b = append(w.b, byte(u))
}

func (w *writer) boolean(v bool) {
	if v {
		w.b = append(w.b, 1)
	} else {
		w.b = append(w.b, 0)
	}
}

func (w *writer) double(f float64) {
	w.b = binary.LittleEndian.AppendUint64(w.b, math.Float64bits(f))
}

func (w *writer) str(s string) {
	w.long(int64(len(s)))
	w.b = append(w.b, s...)
}

// time appends a timestamp-micros, converted as goavro converts a
// time.Time.
func (w *writer) time(t time.Time) {
	w.long(t.Unix()*1e6 + int64(t.Nanosecond()/1e3))
}

// null appends branch 0 of a ["null", T] union; some appends branch 1, to
// be followed by the T.
func (w *writer) null() { w.b = append(w.b, 0) }
func (w *writer) some() { w.b = append(w.b, 2) }

// optTime appends a ["null", timestamp-micros] union: null for the zero
// time.
func (w *writer) optTime(t time.Time) {
	if t.IsZero() {
		w.null()
		return
	}
	w.some()
	w.time(t)
}

// writeOpt appends a ["null", record] union: null for nil, else the record
// as write writes it.
func writeOpt[T any](w *writer, v *T, write func(*writer, *T)) {
	if v == nil {
		w.null()
		return
	}
	w.some()
	write(w, v)
}

// enum appends a symbol's index, from symbolIndex.
func (w *writer) enum(i int) {
	if i < 0 {
		w.ok = false
		return
	}
	w.long(int64(i))
}

// array appends n items in blocks as goavro does: blocks of at most
// goavro.MaxBlockCount items, then the 0 that ends the array.
func (w *writer) array(n int, item func(i int)) {
	for done := 0; done < n; {
		k := n - done
		if int64(k) > goavro.MaxBlockCount {
			k = int(goavro.MaxBlockCount)
		}
		w.long(int64(k))
		for i := done; i < done+k; i++ {
			item(i)
		}
		done += k
	}
	w.b = append(w.b, 0)
}

func (w *writer) strs(s []string) {
	w.array(len(s), func(i int) { w.str(s[i]) })
}

// strMap appends a map of strings with its keys in sorted order, so that
// the same map always encodes to the same bytes. (goavro writes them in Go's
// map iteration order, which varies; any order decodes to the same map.)
func (w *writer) strMap(m map[string]string) {
	if len(m) == 0 {
		w.b = append(w.b, 0)
		return
	}
	var buf [16]string
	keys := buf[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	w.array(len(keys), func(i int) {
		w.str(keys[i])
		w.str(m[keys[i]])
	})
}

// symbolIndex returns the index of v among an enum's symbols, taking "" as
// def when def is not "" (the events' convention for enums with an unknown
// default), or -1.
func symbolIndex[T ~string](symbols []T, v, def T) int {
	if v == "" {
		v = def
	}
	for i, s := range symbols {
		if s == v {
			return i
		}
	}
	return -1
}

// reader decodes Avro binary values from b, with the scanner's checks
// (scan.go) and errors. The first error sticks: once err is set every
// method returns a zero value without reading, so a decoder reads on and
// checks err at the end (and in its loops).
type reader struct {
	scanner
	// s is b as one string; decoded strings are cut from it, so a value
	// costs one string allocation however many strings it holds.
	s   string
	err error
	// spare is room for the string arrays of the value, so that small
	// ones share an allocation (strs).
	spare []string
	// lossy is set when the event cannot hold a value exactly as the
	// bytes have it (see decodeDirect).
	lossy bool
}

func newReader(body []byte) *reader {
	return &reader{scanner: scanner{b: body}, s: string(body)}
}

func (r *reader) keep(err error) {
	if err != nil && r.err == nil { // no store, and no write barrier, when nil
		r.err = err
	}
}

func (r *reader) fail(sentinel error, format string, args ...any) {
	r.keep(fmt.Errorf("%w: %s", sentinel, fmt.Sprintf(format, args...)))
}

// finish returns the first error, or ErrMalformed when bytes are left
// after the value.
func (r *reader) finish() error {
	if r.err == nil && r.pos != len(r.b) {
		r.fail(ErrMalformed, "%d bytes after the value", len(r.b)-r.pos)
	}
	return r.err
}

func (r *reader) long() int64 {
	if r.err != nil {
		return 0
	}
	if r.pos < len(r.b) && r.b[r.pos] < 0x80 { // one byte: most lengths, counts and indexes
		c := r.b[r.pos]
		r.pos++
		return int64(c>>1) ^ -int64(c&1)
	}
	v, err := r.scanner.long()
	r.keep(err)
	return v
}

func (r *reader) int() int32 {
	if r.err != nil {
		return 0
	}
	v, err := r.scanner.int()
	r.keep(err)
	return int32(v)
}

func (r *reader) boolean() bool {
	if r.err != nil {
		return false
	}
	if r.remaining() < 1 {
		r.fail(ErrTruncated, "boolean at byte %d", r.pos)
		return false
	}
	c := r.b[r.pos]
	if c > 1 {
		r.fail(ErrMalformed, "boolean byte %#x", c)
		return false
	}
	r.pos++
	return c == 1
}

func (r *reader) double() float64 {
	if r.err != nil {
		return 0
	}
	start := r.pos
	if err := r.skip(8); err != nil {
		r.keep(err)
		return 0
	}
	return math.Float64frombits(binary.LittleEndian.Uint64(r.b[start:]))
}

func (r *reader) str() string {
	n := r.long()
	if r.err != nil {
		return ""
	}
	start := r.pos
	if err := r.skip(n); err != nil {
		r.keep(err)
		return ""
	}
	return r.s[start:r.pos]
}

// time reads a timestamp-micros, converted as goavro converts it.
func (r *reader) time() time.Time {
	us := r.long()
	if r.err != nil {
		return time.Time{}
	}
	sec := us / 1e6
	return time.Unix(sec, (us-sec*1e6)*1e3).UTC()
}

// some reads the branch index of a ["null", T] union: false for null, true
// when a T follows.
func (r *reader) some() bool {
	i := r.long()
	if r.err == nil && (i < 0 || i > 1) {
		r.fail(ErrMalformed, "union index %d out of range", i)
	}
	return i == 1 && r.err == nil
}

// readOpt reads a ["null", record] union: nil for null, else the record as
// read reads it.
func readOpt[T any](r *reader, read func(*reader, *T)) *T {
	if !r.some() {
		return nil
	}
	v := new(T)
	read(r, v)
	return v
}

// optTime reads a ["null", timestamp-micros] union: the zero time for
// null. A timestamp that is the zero time itself is lossy, since the event
// then reads as null.
func (r *reader) optTime() time.Time {
	if !r.some() {
		return time.Time{}
	}
	t := r.time()
	r.lossy = r.lossy || t.IsZero()
	return t
}

// micros reads a long of microseconds as a Duration, which is lossy where
// the Duration saturates.
func (r *reader) micros() time.Duration {
	us := r.long()
	d := events.MicrosDuration(us)
	r.lossy = r.lossy || d.Microseconds() != us
	return d
}

// enum reads a symbol of an enum.
func enum[T ~string](r *reader, symbols []T) T {
	i := r.int()
	if r.err != nil {
		return ""
	}
	if i < 0 || int(i) >= len(symbols) {
		r.fail(ErrMalformed, "enum index %d out of range", i)
		return ""
	}
	return symbols[i]
}

// block reads the count of the next block of an array or map whose items
// take at least itemMin (> 0) bytes each; 0 ends it (and is returned on
// error). The count is checked against the bytes left, so what a caller
// allocates for it is bounded by the input.
func (r *reader) block(itemMin int) int {
	n := r.long()
	if r.err != nil || n == 0 {
		return 0
	}
	if n < 0 {
		if n == math.MinInt64 {
			r.fail(ErrMalformed, "block count out of range")
			return 0
		}
		n = -n
		if size := r.long(); size < 0 {
			r.fail(ErrMalformed, "negative block size %d", size)
		}
		if r.err != nil {
			return 0
		}
	}
	if n > goavro.MaxBlockCount {
		r.fail(ErrMalformed, "block count %d exceeds %d", n, goavro.MaxBlockCount)
		return 0
	}
	if n > int64(r.remaining()/itemMin) {
		r.fail(ErrTruncated, "block of %d items at byte %d, %d bytes left", n, r.pos, r.remaining())
		return 0
	}
	return int(n)
}

// array reads an array whose items take at least itemMin bytes, item
// reading each into the pointer it is given. An empty array is nil, as
// pkg/events decodes it.
func array[T any](r *reader, itemMin int, item func(r *reader, v *T)) []T {
	var out []T
	for {
		n := r.block(itemMin)
		if n == 0 {
			return out
		}
		out = slices.Grow(out, n)
		for range n {
			out = append(out, *new(T))
			item(r, &out[len(out)-1])
			if r.err != nil {
				return nil
			}
		}
	}
}

// strs reads an array of strings. Small arrays are cut from a shared
// spare slice, each capped at its length so that appending to one never
// writes into the next.
func (r *reader) strs() []string {
	var out []string
	for {
		n := r.block(1)
		if n == 0 {
			return out
		}
		if out == nil {
			if n > len(r.spare) {
				r.spare = make([]string, max(n, 16))
			}
			out, r.spare = r.spare[:0:n], r.spare[n:]
		}
		for range n {
			out = append(out, r.str())
		}
		if r.err != nil {
			return nil
		}
	}
}

// strMap reads a map of strings; an empty map is nil, as pkg/events decodes
// it. A key given twice is malformed, as goavro has it.
func (r *reader) strMap() map[string]string {
	var m map[string]string
	for {
		n := r.block(2)
		if n == 0 {
			return m
		}
		if m == nil {
			m = make(map[string]string, n)
		}
		for range n {
			k, v := r.str(), r.str()
			if r.err != nil {
				return nil
			}
			if _, dup := m[k]; dup {
				r.fail(ErrMalformed, "map key %q twice", k)
				return nil
			}
			m[k] = v
		}
	}
}
