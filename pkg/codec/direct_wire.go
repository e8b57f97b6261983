package codec

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/linkedin/goavro/v2"

	"github.com/freshet/freshet/pkg/codec/avrowire"
	"github.com/freshet/freshet/pkg/events"
)

// This file holds the Avro binary primitives of the direct path
// (direct.go): a writer that appends values exactly as goavro's encoder
// does, and a reader (on avrowire.Reader) that accepts exactly what Decode
// accepts (scanValue's checks, then goavro's), bounding every length and
// count by the bytes left.

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

// reader decodes Avro binary values from a body into events, with the
// scanner's checks (scan.go): an avrowire.Reader, whose first fault
// sticks, so a decoder reads on and checks for it at the end (finish) and
// in its loops.
type reader struct {
	avrowire.Reader
	// s is the body as one string; decoded strings are cut from it, so a
	// value costs one string allocation however many strings it holds.
	s string
	// spare is room for the string arrays of the value, so that small
	// ones share an allocation (strs).
	spare []string
	// lossy is set when the event cannot hold a value exactly as the
	// bytes have it (see decodeDirect).
	lossy bool
}

func newReader(body []byte) *reader {
	return &reader{Reader: avrowire.NewReader(body), s: string(body)}
}

// finish returns nil when the body held exactly the value read, else an
// error that wraps ErrTruncated or ErrMalformed.
func (r *reader) finish() error {
	if r.End() {
		return nil
	}
	sentinel := ErrMalformed
	switch r.Fault() {
	case avrowire.Truncated:
		sentinel = ErrTruncated
	case avrowire.TrailingBytes:
		return fmt.Errorf("%w: %d bytes after the value", sentinel, len(r.s)-r.Offset())
	}
	return fmt.Errorf("%w: %v at byte %d", sentinel, r.Fault(), r.Offset())
}

func (r *reader) str() string {
	n := len(r.Bytes())
	end := r.Offset()
	return r.s[end-n : end]
}

// time reads a timestamp-micros, converted as goavro converts it.
func (r *reader) time() time.Time {
	us := r.Long()
	sec := us / 1e6
	return time.Unix(sec, (us-sec*1e6)*1e3).UTC()
}

// readOpt reads a ["null", record] union: nil for null, else the record as
// read reads it.
func readOpt[T any](r *reader, read func(*reader, *T)) *T {
	if !r.Some() {
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
	if !r.Some() {
		return time.Time{}
	}
	t := r.time()
	r.lossy = r.lossy || t.IsZero()
	return t
}

// micros reads a long of microseconds as a Duration, which is lossy where
// the Duration saturates.
func (r *reader) micros() time.Duration {
	us := r.Long()
	d := events.MicrosDuration(us)
	r.lossy = r.lossy || d.Microseconds() != us
	return d
}

// enum reads a symbol of an enum.
func enum[T ~string](r *reader, symbols []T) T {
	return symbols[r.Enum(len(symbols))]
}

// array reads an array whose items take at least itemMin bytes, item
// reading each into the pointer it is given. An empty array is nil, as
// pkg/events decodes it.
func array[T any](r *reader, itemMin int, item func(r *reader, v *T)) []T {
	var out []T
	for {
		n := r.Block(itemMin)
		if n == 0 {
			return out
		}
		out = slices.Grow(out, n)
		for range n {
			out = append(out, *new(T))
			item(r, &out[len(out)-1])
			if r.Failed() {
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
		n := r.Block(1)
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
		if r.Failed() {
			return nil
		}
	}
}

// strMap reads a map of strings; an empty map is nil, as pkg/events decodes
// it. A key given twice is malformed, as goavro has it.
func (r *reader) strMap() map[string]string {
	var m map[string]string
	for {
		n := r.Block(2)
		if n == 0 {
			return m
		}
		if m == nil {
			m = make(map[string]string, n)
		}
		for range n {
			k, v := r.str(), r.str()
			if r.Failed() {
				return nil
			}
			if _, dup := m[k]; dup {
				r.Fail(avrowire.DuplicateKey)
				return nil
			}
			m[k] = v
		}
	}
}
