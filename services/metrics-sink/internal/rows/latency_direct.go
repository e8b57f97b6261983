package rows

import (
	"encoding/binary"
	"time"
	"unsafe"

	"github.com/freshet/freshet/pkg/codec"
	"github.com/freshet/freshet/pkg/events"
)

// The direct path of latency samples, the sink's busiest input: a record
// value becomes its row without an event in between (no struct, no label
// map, no string per field), which is most of what decoding cost. It reads
// one thing only, a value in single-object framing written with the
// version of dev.freshet.events.LatencySample it was written for
// (latencyFingerprint, the codec's current version: DirectLatency), and is
// stricter than the codec: whatever it does not take (another framing or
// version, bytes the codec would refuse, negative block counts, more than
// maxDirectLabels labels) it leaves to the codec and Add, which then give
// the same row, or the error that sends the record to the DLQ.
// FuzzAddLatencyValue holds the two paths to the same rows.

// latencyFingerprint is the fingerprint of the LatencySample version
// AddLatencyValue reads (schemas/avro). When the schema changes,
// TestDirectMatchesSchemas fails: update latencyValue, then this.
const latencyFingerprint = 0xa88711a1926ebdbc

// maxDirectLabels bounds the labels of a sample the direct path takes (it
// looks for a key given twice pair by pair).
const maxDirectLabels = 16

// DirectLatency reports whether AddLatencyValue reads the values c writes
// and decodes: c's current version of LatencySample is the one it was
// written for.
func DirectLatency(c *codec.Codec) bool {
	s, err := c.Schema(events.LatencySampleSchema)
	return err == nil && s.Fingerprint == latencyFingerprint
}

// AddLatencyValue appends the row of the latency sample in a record value
// read at partition and offset, decoding it directly, and reports whether
// it did. When it reports false it added nothing: decode the value with
// the codec and Add the event, which gives the same row as this would
// have, or the codec's error. Use it only where DirectLatency is true.
func (s *Set) AddLatencyValue(value []byte, partition int32, offset int64) bool {
	body, ok := singleObject(value, latencyFingerprint)
	var v latencyValue
	if !ok || !v.read(body) {
		return false
	}
	s.lat.addValue(s, &v)
	s.lat.position(partition, offset)
	return true
}

// latencyValue is a latency sample's fields the table keeps, as bytes of
// the value.
type latencyValue struct {
	eventID, subject, service, instance, stage []byte
	durationUS, atUS, committedUS              int64
	committed                                  bool // committedUS holds the source's, or else the trace's, commit time
	n                                          int
	keys, values                               [maxDirectLabels][]byte
}

// read reads a LatencySample body as pkg/codec's direct decoder does:
// event_id, source (["null", Source]), trace (["null", Trace]),
// subject_event_id, service, instance, stage, duration_us, at (timestamp-
// micros), labels (map of strings).
func (v *latencyValue) read(b []byte) bool {
	w := wire{b: b}
	v.eventID = w.bytes()
	if w.union() { // Source
		w.enum(8) // origin
		w.bytes() // db
		w.bytes() // table
		for range 4 {
			w.long() // lsn, commit_lsn, txid, seq
		}
		v.committedUS, v.committed = w.long(), true
	}
	if w.union() { // Trace
		committed := w.long()
		w.long() // produced_at
		for n := w.block(2); n > 0; n = w.block(2) {
			for range n {
				w.bytes() // stage name
				w.long()  // stage at
			}
		}
		if !v.committed {
			v.committedUS, v.committed = committed, true
		}
	}
	v.subject = w.bytes()
	v.service = w.bytes()
	v.instance = w.bytes()
	v.stage = w.bytes()
	v.durationUS = w.long()
	v.atUS = w.long()
	for n := w.block(2); n > 0; n = w.block(2) {
		if v.n+n > maxDirectLabels {
			return false
		}
		for range n {
			k, val := w.bytes(), w.bytes()
			for i := range v.n {
				if string(v.keys[i]) == string(k) {
					return false // the codec refuses a key given twice
				}
			}
			v.keys[v.n], v.values[v.n] = k, val
			v.n++
		}
	}
	return !w.bad && w.pos == len(b)
}

// addValue appends the row of v, as add does for the event.
func (t *latencyTable) addValue(s *Set, v *latencyValue) {
	a := &s.arena
	t.eventID.add(a.str(v.eventID))
	t.subject.add(a.str(v.subject))
	t.service.add(a.str(v.service))
	t.instance.add(a.str(v.instance))
	t.stage.add(a.str(v.stage))
	t.duration.add(events.MicrosDuration(v.durationUS).Microseconds())
	at := avroTime(v.atUS)
	t.at.add(seconds(at))
	t.atMS.add(millis(at))
	var committed time.Time
	if v.committed {
		committed = avroTime(v.committedUS)
	}
	t.committed.add(seconds(committed))
	keys, values := s.keys[:0], s.values[:0]
	for i := range v.n {
		k := allowedLabel(v.keys[i])
		if k == "" {
			s.Minimized++
			continue
		}
		if val := a.str(v.values[i]); !isIP(val) {
			keys = append(keys, k)
			values = append(values, val)
		} else {
			s.Minimized++
		}
	}
	t.addLabels(s, keys, values)
}

// singleObject returns the body of value when it is in single-object
// framing (0xC3 0x01, then the fingerprint, little endian) with
// fingerprint fp.
func singleObject(value []byte, fp uint64) ([]byte, bool) {
	const header = 10
	if len(value) < header || value[0] != 0xC3 || value[1] != 0x01 || binary.LittleEndian.Uint64(value[2:header]) != fp {
		return nil, false
	}
	return value[header:], true
}

// allowedLabel returns the label of Labels that k names, "" when none.
func allowedLabel(k []byte) string {
	for _, l := range Labels {
		if string(k) == l {
			return l
		}
	}
	return ""
}

// avroTime converts a timestamp-micros as goavro (and pkg/codec) do.
func avroTime(us int64) time.Time {
	sec := us / 1e6
	return time.Unix(sec, (us-sec*1e6)*1e3).UTC()
}

// wire reads Avro binary with pkg/codec's checks, or stricter ones; bad
// sticks once set, and reads then return zero values.
type wire struct {
	b   []byte
	pos int
	bad bool
}

// varint reads a zig-zag varint of at most maxBytes bytes.
func (w *wire) varint(maxBytes int) int64 {
	var u uint64
	var shift uint
	for i := 0; ; i++ {
		if w.bad || w.pos >= len(w.b) || i >= maxBytes {
			w.bad = true
			return 0
		}
		c := w.b[w.pos]
		w.pos++
		u |= uint64(c&0x7f) << shift
		if c < 0x80 {
			break
		}
		shift += 7
	}
	return int64(u>>1) ^ -int64(u&1)
}

func (w *wire) long() int64 { return w.varint(10) }

// enum reads the index of a symbol of an enum of n symbols (0 once bad).
func (w *wire) enum(n int) int {
	i := w.varint(5)
	if i < 0 || i >= int64(n) {
		w.bad = true
		return 0
	}
	return int(i)
}

// bytes reads a string, as the bytes of the value it is.
func (w *wire) bytes() []byte {
	n := w.long()
	if w.bad || n < 0 || n > int64(len(w.b)-w.pos) {
		w.bad = true
		return nil
	}
	s := w.b[w.pos : w.pos+int(n)]
	w.pos += int(n)
	return s
}

// union reads the branch of a ["null", T] union: true when a T follows.
func (w *wire) union() bool {
	switch w.long() {
	case 0:
		return false
	case 1:
		return !w.bad
	}
	w.bad = true
	return false
}

// block reads the count of the next block of an array or map whose items
// take at least itemMin bytes; 0 ends it, and is returned once bad. A
// negative count (a block with its size) is left to the codec.
func (w *wire) block(itemMin int) int {
	n := w.long()
	if w.bad || n < 0 || n > int64((len(w.b)-w.pos)/itemMin) {
		w.bad = true
		return 0
	}
	return int(n)
}

// arena holds the strings of a batch's rows, copied out of the record
// values in chunks, so that a row costs no allocation of its
// own. A chunk is written once, front to back, and never reused: a string
// handed out points into bytes nothing writes again, and the chunks go
// with the rows (Set.Reset drops them).
type arena struct {
	b []byte
}

const arenaChunk = 64 << 10

// str returns b as a string of the arena.
func (a *arena) str(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if cap(a.b)-len(a.b) < len(b) {
		a.b = make([]byte, 0, max(arenaChunk, len(b)))
	}
	start := len(a.b)
	a.b = append(a.b, b...)
	return unsafe.String(&a.b[start], len(b))
}
