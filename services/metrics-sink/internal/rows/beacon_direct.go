package rows

import (
	"github.com/freshet/freshet/pkg/codec"
	"github.com/freshet/freshet/pkg/codec/avrowire"
	"github.com/freshet/freshet/pkg/events"
)

// The direct path of RUM beacons, as latency_direct.go is that of latency
// samples: a record value becomes its row without an event in between (no
// struct, no slice per array, no string per field), its arrays appended
// to the table's flat columns. It reads a value in single-object framing
// written with the version of dev.freshet.events.RumBeacon it was written
// for (beaconFingerprint, the codec's current version: DirectBeacon), and
// is stricter than the codec: whatever it does not take (another framing
// or version, bytes the codec would refuse, more than maxDirectVitals
// vitals or maxDirectLags lags) it leaves to the codec and Add, which then
// give the same row, or the error that sends the record to the DLQ.
// FuzzAddBeaconValue holds the two paths to the same rows.

// beaconFingerprint is the fingerprint of the RumBeacon version
// AddBeaconValue reads (schemas/avro). When the schema changes,
// TestDirectMatchesSchemas fails: update beaconValue.read, then this.
const beaconFingerprint = 0x4660b18f325a80a3

// The most vitals and lags of a beacon the direct path takes (a browser
// sends five vitals at most, and the lags of a few seconds).
const (
	maxDirectVitals = 16
	maxDirectLags   = 64
)

// Symbols of the enums of RumBeacon, in schema order.
var (
	deviceSymbols = [...]string{
		string(events.DeviceUnknown), string(events.DeviceMobile), string(events.DeviceTablet), string(events.DeviceDesktop),
	}
	vitalSymbols = [...]string{
		string(events.VitalLCP), string(events.VitalINP), string(events.VitalCLS), string(events.VitalTTFB), string(events.VitalFCP),
	}
	ratingSymbols = [...]string{string(events.RatingGood), string(events.RatingNeedsImprovement), string(events.RatingPoor)}
	navSymbols    = [...]string{
		string(events.NavUnknown), string(events.NavNavigate), string(events.NavReload), string(events.NavBackForward),
		string(events.NavBackForwardCache), string(events.NavPrerender), string(events.NavRestore),
	}
)

// DirectBeacon reports whether AddBeaconValue reads the values c writes
// and decodes: c's current version of RumBeacon is the one it was written
// for.
func DirectBeacon(c *codec.Codec) bool {
	s, err := c.Schema(events.RumBeaconSchema)
	return err == nil && s.Fingerprint == beaconFingerprint
}

// AddBeaconValue appends the row of the RUM beacon in a record value read
// at partition and offset, decoding it directly, and reports whether it
// did. When it reports false it added nothing: decode the value with the
// codec and Add the event, which gives the same row as this would have,
// or the codec's error. Use it only where DirectBeacon is true.
func (s *Set) AddBeaconValue(value []byte, partition int32, offset int64) bool {
	body, ok := singleObject(value, beaconFingerprint)
	v := &s.beacon
	if !ok || !v.read(body) {
		return false
	}
	s.rum.addValue(s, v)
	s.rum.position(partition, offset)
	return true
}

// beaconValue is a beacon's fields the table keeps, as bytes of the value
// and indexes of enum symbols.
type beaconValue struct {
	eventID, userHash, route, connection, region []byte
	receivedUS                                   int64
	device                                       int
	nVitals, nLags                               int
	vitals                                       [maxDirectVitals]struct {
		name, rating, nav int
		value             float64
	}
	lags [maxDirectLags]struct {
		id []byte
		ms float64
	}
}

// read reads a RumBeacon body as pkg/codec's direct decoder does:
// event_id, source (["null", Source]), trace (["null", Trace]),
// received_at, client_time (["null", timestamp-micros]), session_id,
// user_hash, route, device_class, connection_class, region, metrics
// (array of WebVital: name, value, delta, rating, navigation_type, id),
// sse_lags (array of SseLag: event_id, lag_ms).
func (v *beaconValue) read(b []byte) bool {
	w := avrowire.NewReader(b)
	v.nVitals, v.nLags = 0, 0
	v.eventID = w.Bytes()
	skipSource(&w)
	skipTrace(&w)
	v.receivedUS = w.Long()
	if w.Some() { // client_time
		w.Long()
	}
	w.Bytes() // session_id
	v.userHash = w.Bytes()
	v.route = w.Bytes()
	v.device = w.Enum(len(deviceSymbols))
	v.connection = w.Bytes()
	v.region = w.Bytes()
	const minVital, minLag = 1 + 8 + 8 + 1 + 1 + 1, 1 + 8
	for n := w.Block(minVital); n > 0; n = w.Block(minVital) {
		if v.nVitals+n > maxDirectVitals {
			return false
		}
		for range n {
			m := &v.vitals[v.nVitals]
			m.name = w.Enum(len(vitalSymbols))
			m.value = w.Double()
			w.Double() // delta
			m.rating = w.Enum(len(ratingSymbols))
			m.nav = w.Enum(len(navSymbols))
			w.Bytes() // id
			v.nVitals++
		}
	}
	for n := w.Block(minLag); n > 0; n = w.Block(minLag) {
		if v.nLags+n > maxDirectLags {
			return false
		}
		for range n {
			l := &v.lags[v.nLags]
			l.id = w.Bytes()
			l.ms = w.Double()
			v.nLags++
		}
	}
	return w.End()
}

// addValue appends the row of v, as add does for the event.
func (t *beaconTable) addValue(s *Set, v *beaconValue) {
	t.eventID.addBytes(v.eventID)
	at := avroTime(v.receivedUS)
	t.received.add(seconds(at))
	t.receivedMS.add(millis(at))
	var hash []byte
	if len(v.userHash) > 0 {
		if isHash(v.userHash) {
			hash = v.userHash
		} else {
			s.Minimized++ // not a keyed hash: it could be anything, a raw id included
		}
	}
	t.userHash.addBytes(hash)
	t.route.addBytes(v.route)
	t.device.add(deviceSymbols[v.device])
	t.connection.addBytes(v.connection)
	region := view(v.region) // add copies it
	if isIP(region) {
		region = ""
		s.Minimized++
	}
	t.region.add(region)
	for _, m := range v.vitals[:v.nVitals] {
		t.vital(vitalSymbols[m.name], m.value, ratingSymbols[m.rating], navSymbols[m.nav])
	}
	for _, l := range v.lags[:v.nLags] {
		t.lagIDs.pushBytes(l.id)
		t.lags.push(l.ms)
	}
	t.endArrays()
}

// isHash reports whether b is what hashRe matches: 64 lowercase hex
// digits.
func isHash(b []byte) bool {
	if len(b) != 64 {
		return false
	}
	for _, c := range b {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// skipSource skips a ["null", Source] union: origin, db, table, lsn,
// commit_lsn, txid, seq, commit_time.
func skipSource(w *avrowire.Reader) {
	if w.Some() {
		w.Enum(8)
		w.Bytes()
		w.Bytes()
		for range 5 {
			w.Long()
		}
	}
}

// skipTrace skips a ["null", Trace] union: committed_at, produced_at,
// stages (array of name, at).
func skipTrace(w *avrowire.Reader) {
	if w.Some() {
		w.Long()
		w.Long()
		for n := w.Block(2); n > 0; n = w.Block(2) {
			for range n {
				w.Bytes()
				w.Long()
			}
		}
	}
}
