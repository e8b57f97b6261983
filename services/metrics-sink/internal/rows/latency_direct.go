package rows

import (
	"encoding/binary"
	"time"
	"unsafe"

	"github.com/freshet/freshet/pkg/codec"
	"github.com/freshet/freshet/pkg/codec/avrowire"
	"github.com/freshet/freshet/pkg/events"
)

// The direct path of latency samples, the sink's busiest input: a record
// value becomes its row without an event in between (no struct, no label
// map, no string per field), which is most of what decoding cost. It reads
// one thing only, a value in single-object framing written with the
// version of dev.freshet.events.LatencySample it was written for
// (latencyFingerprint, the codec's current version: DirectLatency), and is
// stricter than the codec: whatever it does not take (another framing or
// version, bytes the codec would refuse, more than maxDirectLabels
// labels) it leaves to the codec and Add, which then give the same row, or
// the error that sends the record to the DLQ. It reads with
// pkg/codec/avrowire, as the codec's direct decoder does, so the two
// refuse the same bytes. FuzzAddLatencyValue holds the two paths to the
// same rows.

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
	w := avrowire.NewReader(b)
	v.eventID = w.Bytes()
	if w.Some() { // Source
		w.Enum(8) // origin
		w.Bytes() // db
		w.Bytes() // table
		for range 4 {
			w.Long() // lsn, commit_lsn, txid, seq
		}
		v.committedUS, v.committed = w.Long(), true
	}
	if w.Some() { // Trace
		committed := w.Long()
		w.Long() // produced_at
		for n := w.Block(2); n > 0; n = w.Block(2) {
			for range n {
				w.Bytes() // stage name
				w.Long()  // stage at
			}
		}
		if !v.committed {
			v.committedUS, v.committed = committed, true
		}
	}
	v.subject = w.Bytes()
	v.service = w.Bytes()
	v.instance = w.Bytes()
	v.stage = w.Bytes()
	v.durationUS = w.Long()
	v.atUS = w.Long()
	for n := w.Block(2); n > 0; n = w.Block(2) {
		if v.n+n > maxDirectLabels {
			return false
		}
		for range n {
			k, val := w.Bytes(), w.Bytes()
			for i := range v.n {
				if string(v.keys[i]) == string(k) {
					return false // the codec refuses a key given twice
				}
			}
			v.keys[v.n], v.values[v.n] = k, val
			v.n++
		}
	}
	return w.End()
}

// addValue appends the row of v, as add does for the event.
func (t *latencyTable) addValue(s *Set, v *latencyValue) {
	t.eventID.addBytes(v.eventID)
	t.subject.addBytes(v.subject)
	t.service.addBytes(v.service)
	t.instance.addBytes(v.instance)
	t.stage.addBytes(v.stage)
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
		if val := view(v.values[i]); !isIP(val) { // addLabels copies it
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

// view returns b as a string without copying it: the string is valid
// only as long as b is, which for a record's value is until the sink
// recycles the record, so it must be copied (add) before the row is done.
func view(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
