package codec

import (
	"github.com/freshet/freshet/pkg/events"
)

// The direct path encodes the typed events of pkg/events straight into Avro
// binary and decodes Avro binary straight into them, without goavro's
// native maps in between: what EncodeEvent, AppendEncodeEvent and
// DecodeEvent use when it applies. Its output is byte for byte goavro's
// (map entries aside, which it sorts by key), and it accepts exactly the
// bodies Decode accepts; the tests in direct_test.go and FuzzFastDecode
// hold it to that.

// directFingerprints are the fingerprints of the schema versions the direct
// encoders and decoders (direct_events.go) were written for. A Codec uses
// the direct path for a schema only when its current version has this
// fingerprint, so schemas loaded with WithSchemas, or a changed schema file,
// fall back to goavro. TestDirectPathMatchesSchemas fails when a schema of
// schemas/avro no longer matches: update direct_events.go for the new schema,
// then the fingerprint here.
var directFingerprints = map[string]uint64{
	events.ContentChangeSchema: 0xd7fdda313e9ecfd0,
	events.DeliverySchema:      0x2e87b19763e6eeab,
	events.LatencySampleSchema: 0xa88711a1926ebdbc,
	events.PurgeAuditSchema:    0x4c1a4972ca94484c,
	events.RumBeaconSchema:     0x4660b18f325a80a3,
	events.UserProfileSchema:   0x62cb3b55a657f775,
}

// withoutDirect turns the direct path off, so that tests and benchmarks can
// compare it with goavro's.
func withoutDirect() Option { return func(o *options) { o.noDirect = true } }

// event appends the body of ev, reporting false when ev is not one of the
// six event types (or a nil pointer to one).
func (w *writer) event(ev events.Event) bool {
	switch v := ev.(type) {
	case events.ContentChange:
		w.contentChange(&v)
	case *events.ContentChange:
		if v == nil {
			return false
		}
		w.contentChange(v)
	case events.Delivery:
		w.delivery(&v)
	case *events.Delivery:
		if v == nil {
			return false
		}
		w.delivery(v)
	case events.UserProfile:
		w.userProfile(&v)
	case *events.UserProfile:
		if v == nil {
			return false
		}
		w.userProfile(v)
	case events.LatencySample:
		w.latencySample(&v)
	case *events.LatencySample:
		if v == nil {
			return false
		}
		w.latencySample(v)
	case events.RumBeacon:
		w.rumBeacon(&v)
	case *events.RumBeacon:
		if v == nil {
			return false
		}
		w.rumBeacon(v)
	case events.PurgeAudit:
		w.purgeAudit(&v)
	case *events.PurgeAudit:
		if v == nil {
			return false
		}
		w.purgeAudit(v)
	default:
		return false
	}
	return true
}

// appendDirect appends the Avro body of ev with the direct encoders. ok is
// false, and b returned unchanged, when the direct path does not apply: ev
// is not one of the six event types, or holds an enum value its schema does
// not have (which goavro then reports).
func appendDirect(b []byte, ev events.Event) (_ []byte, ok bool) {
	w := writer{b: b, ok: true}
	if !w.event(ev) || !w.ok {
		return b, false
	}
	return w.b, true
}

// decodeDirect decodes the Avro body of a value of the current version of
// schema, returning a pointer to its event. Its errors wrap ErrTruncated or
// ErrMalformed. lossy is true when the event holds a value differently from
// the bytes, as events.FromNative would too, so that ev.Native() is not
// what goavro decodes: a timestamp-micros union holding the zero time, a
// duration beyond what a time.Duration holds, PurgeAudit.error holding "",
// PurgeAudit.part or parts holding 0.
func decodeDirect(schema string, body []byte) (_ events.Event, lossy bool, _ error) {
	r := newReader(body)
	var ev events.Event
	switch schema {
	case events.ContentChangeSchema:
		v := new(events.ContentChange)
		r.contentChange(v)
		ev = v
	case events.DeliverySchema:
		v := new(events.Delivery)
		r.delivery(v)
		ev = v
	case events.UserProfileSchema:
		v := new(events.UserProfile)
		r.userProfile(v)
		ev = v
	case events.LatencySampleSchema:
		v := new(events.LatencySample)
		r.latencySample(v)
		ev = v
	case events.RumBeaconSchema:
		v := new(events.RumBeacon)
		r.rumBeacon(v)
		ev = v
	case events.PurgeAuditSchema:
		v := new(events.PurgeAudit)
		r.purgeAudit(v)
		ev = v
	default:
		return nil, false, ErrUnknownSchema
	}
	if err := r.finish(); err != nil {
		return nil, false, err
	}
	return ev, r.lossy, nil
}
