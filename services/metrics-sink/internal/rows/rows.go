package rows

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/freshet/freshet/pkg/events"
)

// Kind names an input of the sink: which table its records fill.
type Kind int

// The inputs.
const (
	Latency Kind = iota
	Purges
	Beacons
	Deliveries
	DLQ
	kinds
)

// Kinds lists every input.
var Kinds = []Kind{Latency, Purges, Beacons, Deliveries, DLQ}

// String returns the input's name.
func (k Kind) String() string {
	switch k {
	case Latency:
		return "latency"
	case Purges:
		return "purges"
	case Beacons:
		return "beacons"
	case Deliveries:
		return "deliveries"
	case DLQ:
		return "dlq"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Table returns the ClickHouse table of the input.
func (k Kind) Table() string {
	return [...]string{"latency_samples", "edge_purges", "rum_beacons", "deliveries", "dlq_records"}[k]
}

// Event returns the event schema the input carries ("" for DLQ records,
// which are not decoded).
func (k Kind) Event() string {
	switch k {
	case Latency:
		return events.LatencySampleSchema
	case Purges:
		return events.PurgeAuditSchema
	case Beacons:
		return events.RumBeaconSchema
	case Deliveries:
		return events.DeliverySchema
	}
	return ""
}

// ErrWrongEvent is returned for an event of another type than the input's.
var ErrWrongEvent = errors.New("wrong event type for this topic")

// Set holds the rows of every table.
type Set struct {
	tables [kinds]*Table
	lat    latencyTable
	pur    purgeTable
	rum    beaconTable
	del    deliveryTable
	dlq    dlqTable
	// keys and values are scratch for the labels of a latency sample.
	keys, values []string
	beacon       beaconValue // the beacon AddBeaconValue reads
	// Minimized counts the values left out to keep personal data out
	// (a user hash that is not a hash, labels, IP addresses in errors).
	Minimized int
}

// NewSet returns an empty Set.
func NewSet() *Set {
	s := &Set{}
	s.lat.init()
	s.pur.init()
	s.rum.init()
	s.del.init()
	s.dlq.init()
	s.tables = [kinds]*Table{s.lat.Table, s.pur.Table, s.rum.Table, s.del.Table, s.dlq.Table}
	return s
}

// Table returns the rows of input k.
func (s *Set) Table(k Kind) *Table { return s.tables[k] }

// Len is the number of rows held in every table.
func (s *Set) Len() int {
	n := 0
	for _, t := range s.tables {
		n += t.Len()
	}
	return n
}

// Reset empties every table, keeping its memory.
func (s *Set) Reset() {
	for _, t := range s.tables {
		t.Reset()
	}
}

// Add appends the row of event ev, read from partition and offset of the
// topic of input k.
func (s *Set) Add(k Kind, ev events.Event, partition int32, offset int64) error {
	ok := false
	switch k {
	case Latency:
		var e *events.LatencySample
		if e, ok = ev.(*events.LatencySample); ok {
			s.lat.add(s, e)
		}
	case Purges:
		var e *events.PurgeAudit
		if e, ok = ev.(*events.PurgeAudit); ok {
			s.pur.add(s, e)
		}
	case Beacons:
		var e *events.RumBeacon
		if e, ok = ev.(*events.RumBeacon); ok {
			s.rum.add(s, e)
		}
	case Deliveries:
		var e *events.Delivery
		if e, ok = ev.(*events.Delivery); ok {
			s.del.add(e)
		}
	default:
		return fmt.Errorf("rows: input %s takes no event", k)
	}
	if !ok {
		return fmt.Errorf("%w: %s wants %s, got %T", ErrWrongEvent, k, k.Event(), ev)
	}
	s.tables[k].position(partition, offset)
	return nil
}

// AddDLQ appends the row of a dead letter record read from topic at
// partition and offset, from its headers (pkg/kafka's freshet.dlq.*).
func (s *Set) AddDLQ(topic string, headers map[string]string, recordTime time.Time, partition int32, offset int64) {
	s.dlq.add(s, topic, headers, recordTime)
	s.dlq.position(partition, offset)
}

func seconds(t time.Time) time.Time {
	if t.IsZero() || t.Unix() < 0 {
		return time.Unix(0, 0).UTC()
	}
	if t.Unix() > 4294967295 {
		return time.Unix(4294967295, 0).UTC()
	}
	return t.Truncate(time.Second).UTC()
}

func millis(t time.Time) uint16 {
	if t.IsZero() {
		return 0
	}
	return uint16(t.Nanosecond() / 1e6)
}

type latencyTable struct {
	*Table
	eventID, subject, service, instance, stage, target *strCol
	duration                                           *col[int64]
	at                                                 *col[time.Time]
	atMS                                               *col[uint16]
	committed                                          *col[time.Time]
	keys, values                                       *strArrCol
}

func (t *latencyTable) init() {
	t.Table = newTable(Latency.Table())
	t.eventID = newStrCol(t.Table, "event_id")
	t.subject = newStrCol(t.Table, "subject_event_id")
	t.service = newStrCol(t.Table, "service")
	t.instance = newStrCol(t.Table, "instance")
	t.stage = newStrCol(t.Table, "stage")
	t.target = newStrCol(t.Table, "target")
	t.duration = newCol[int64](t.Table, "duration_us")
	t.at = newCol[time.Time](t.Table, "at")
	t.atMS = newCol[uint16](t.Table, "at_ms")
	t.committed = newCol[time.Time](t.Table, "committed_at")
	t.keys = newStrArrCol(t.Table, "label_keys")
	t.values = newStrArrCol(t.Table, "label_values")
	t.finish()
}

// Labels is the allow-list of latency sample labels kept: dimensions of
// the pipeline, never of a user.
var Labels = []string{"table", "target", "provider", "topic", "partition", "channel", "op", "outcome", "route", "region", "kind"}

func (t *latencyTable) add(s *Set, e *events.LatencySample) {
	t.eventID.add(e.EventID)
	t.subject.add(e.SubjectEventID)
	t.service.add(e.Service)
	t.instance.add(e.Instance)
	t.stage.add(e.Stage)
	t.duration.add(e.Duration.Microseconds())
	t.at.add(seconds(e.At))
	t.atMS.add(millis(e.At))
	var committed time.Time
	switch {
	case e.Source != nil:
		committed = e.Source.CommitTime
	case e.Trace != nil:
		committed = e.Trace.CommittedAt
	}
	t.committed.add(seconds(committed))
	keys, values := s.keys[:0], s.values[:0]
	for k, v := range e.Labels {
		if !slices.Contains(Labels, k) || isIP(v) {
			s.Minimized++
			continue
		}
		keys = append(keys, k)
		values = append(values, v)
	}
	t.addLabels(s, keys, values)
}

// addLabels appends the labels kept, sorted by key, and the target label;
// keys and values are copied, and kept as the set's scratch.
func (t *latencyTable) addLabels(s *Set, keys, values []string) {
	sortPairs(keys, values)
	target := ""
	if i := slices.Index(keys, "target"); i >= 0 {
		target = values[i]
	}
	t.target.add(target)
	t.keys.add(keys)
	t.values.add(values)
	s.keys, s.values = keys[:0], values[:0]
}

func sortPairs(keys, values []string) {
	for i := 1; i < len(keys); i++ {
		for j := i; j > 0 && keys[j] < keys[j-1]; j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
			values[j], values[j-1] = values[j-1], values[j]
		}
	}
}

type purgeTable struct {
	*Table
	eventID                            *strCol
	part, parts                        *col[uint16]
	purgeID, target, provider, outcome *strCol
	soft                               *col[uint8]
	attempts                           *col[uint32]
	status                             *col[uint16]
	errText                            *strCol
	keyCount, urlCount                 *col[uint32]
	changes                            *strArrCol
	committed, started, finished       *col[time.Time]
	finishedMS                         *col[uint16]
	latency                            *col[int64]
}

func (t *purgeTable) init() {
	t.Table = newTable(Purges.Table())
	t.eventID = newStrCol(t.Table, "event_id")
	t.part = newCol[uint16](t.Table, "part")
	t.parts = newCol[uint16](t.Table, "parts")
	t.purgeID = newStrCol(t.Table, "purge_id")
	t.target = newStrCol(t.Table, "target")
	t.provider = newStrCol(t.Table, "provider")
	t.outcome = newStrCol(t.Table, "outcome")
	t.soft = newCol[uint8](t.Table, "soft")
	t.attempts = newCol[uint32](t.Table, "attempts")
	t.status = newCol[uint16](t.Table, "status_code")
	t.errText = newStrCol(t.Table, "error")
	t.keyCount = newCol[uint32](t.Table, "key_count")
	t.urlCount = newCol[uint32](t.Table, "url_count")
	t.changes = newStrArrCol(t.Table, "change_event_ids")
	t.committed = newCol[time.Time](t.Table, "committed_at")
	t.started = newCol[time.Time](t.Table, "started_at")
	t.finished = newCol[time.Time](t.Table, "finished_at")
	t.finishedMS = newCol[uint16](t.Table, "finished_ms")
	t.latency = newCol[int64](t.Table, "latency_from_commit_us")
	t.finish()
}

func (t *purgeTable) add(s *Set, e *events.PurgeAudit) {
	t.eventID.add(e.EventID)
	t.part.add(count16(e.Part))
	t.parts.add(count16(e.Parts))
	t.purgeID.add(e.PurgeID)
	t.target.add(e.Target)
	t.provider.add(e.Provider)
	outcome := e.Outcome
	if outcome == "" {
		outcome = events.OutcomeUnknown
	}
	t.outcome.add(string(outcome))
	var soft uint8
	if e.Soft {
		soft = 1
	}
	t.soft.add(soft)
	t.attempts.add(uint32(max(e.Attempts, 0)))
	t.status.add(uint16(min(max(e.StatusCode, 0), 65535)))
	t.errText.add(scrub(s, e.Error, MaxError))
	t.keyCount.add(uint32(len(e.Keys)))
	t.urlCount.add(uint32(len(e.URLs)))
	t.changes.add(e.ChangeEventIDs)
	t.committed.add(seconds(e.Source.CommitTime))
	t.started.add(seconds(e.StartedAt))
	t.finished.add(seconds(e.FinishedAt))
	t.finishedMS.add(millis(e.FinishedAt))
	t.latency.add(e.LatencyFromCommit.Microseconds())
}

// count16 is a count from 1 (a PurgeAudit's part or parts) in a UInt16
// column: 1 below 1 (a zero, unset, is the batch's only record), 65535
// above it.
func count16(n int) uint16 {
	return uint16(min(max(n, 1), 65535))
}

type beaconTable struct {
	*Table
	eventID                                     *strCol
	received                                    *col[time.Time]
	receivedMS                                  *col[uint16]
	userHash, route, device, connection, region *strCol
	names                                       *strArrCol
	values                                      *arrCol[float64]
	ratings, navigation                         *strArrCol
	lagIDs                                      *strArrCol
	lags                                        *arrCol[float64]
}

func (t *beaconTable) init() {
	t.Table = newTable(Beacons.Table())
	t.eventID = newStrCol(t.Table, "event_id")
	t.received = newCol[time.Time](t.Table, "received_at")
	t.receivedMS = newCol[uint16](t.Table, "received_ms")
	t.userHash = newStrCol(t.Table, "user_hash")
	t.route = newStrCol(t.Table, "route")
	t.device = newStrCol(t.Table, "device_class")
	t.connection = newStrCol(t.Table, "connection_class")
	t.region = newStrCol(t.Table, "region")
	t.names = newStrArrCol(t.Table, "vital_names")
	t.values = newArrCol[float64](t.Table, "vital_values")
	t.ratings = newStrArrCol(t.Table, "vital_ratings")
	t.navigation = newStrArrCol(t.Table, "vital_navigation_types")
	t.lagIDs = newStrArrCol(t.Table, "lag_event_ids")
	t.lags = newArrCol[float64](t.Table, "lag_ms")
	t.finish()
}

var hashRe = regexp.MustCompile(`^[0-9a-f]{64}$`)

func (t *beaconTable) add(s *Set, e *events.RumBeacon) {
	t.eventID.add(e.EventID)
	t.received.add(seconds(e.ReceivedAt))
	t.receivedMS.add(millis(e.ReceivedAt))
	hash := e.UserHash
	if hash != "" && !hashRe.MatchString(hash) {
		hash = "" // not a keyed hash: it could be anything, a raw id included
		s.Minimized++
	}
	t.userHash.add(hash)
	t.route.add(e.Route)
	device := e.DeviceClass
	if device == "" {
		device = events.DeviceUnknown
	}
	t.device.add(string(device))
	t.connection.add(e.ConnectionClass)
	region := e.Region
	if isIP(region) {
		region = ""
		s.Minimized++
	}
	t.region.add(region)
	for _, m := range e.Metrics {
		nav := string(m.NavigationType)
		if nav == "" {
			nav = string(events.NavUnknown)
		}
		t.vital(string(m.Name), m.Value, string(m.Rating), nav)
	}
	for _, l := range e.SSELags {
		t.lag(l.EventID, l.LagMS)
	}
	t.endArrays()
}

// vital appends a web vital to the row endArrays closes.
func (t *beaconTable) vital(name string, value float64, rating, nav string) {
	t.names.push(name)
	t.values.push(value)
	t.ratings.push(rating)
	t.navigation.push(nav)
}

// lag appends an SSE lag to the row endArrays closes.
func (t *beaconTable) lag(id string, ms float64) {
	t.lagIDs.push(id)
	t.lags.push(ms)
}

// endArrays closes the arrays of the row.
func (t *beaconTable) endArrays() {
	t.names.end()
	t.values.end()
	t.ratings.end()
	t.navigation.end()
	t.lagIDs.end()
	t.lags.end()
}

type deliveryTable struct {
	*Table
	eventID, change, channel *strCol
	committed, produced      *col[time.Time]
	producedMS               *col[uint16]
}

func (t *deliveryTable) init() {
	t.Table = newTable(Deliveries.Table())
	t.eventID = newStrCol(t.Table, "event_id")
	t.change = newStrCol(t.Table, "change_event_id")
	t.channel = newStrCol(t.Table, "channel")
	t.committed = newCol[time.Time](t.Table, "committed_at")
	t.produced = newCol[time.Time](t.Table, "produced_at")
	t.producedMS = newCol[uint16](t.Table, "produced_ms")
	t.finish()
}

func (t *deliveryTable) add(e *events.Delivery) {
	t.eventID.add(e.EventID)
	t.change.add(e.ChangeEventID)
	t.channel.add(e.Channel) // never the user id
	committed := e.Trace.CommittedAt
	if committed.IsZero() {
		committed = e.Source.CommitTime
	}
	t.committed.add(seconds(committed))
	t.produced.add(seconds(e.Trace.ProducedAt))
	t.producedMS.add(millis(e.Trace.ProducedAt))
}

type dlqTable struct {
	*Table
	at                                *col[time.Time]
	topic, source, component, errText *strCol
}

func (t *dlqTable) init() {
	t.Table = newTable("dlq_records")
	t.at = newCol[time.Time](t.Table, "at")
	t.topic = newStrCol(t.Table, "dlq_topic")
	t.Table.topic = t.topic
	t.source = newStrCol(t.Table, "source_topic")
	t.component = newStrCol(t.Table, "component")
	t.errText = newStrCol(t.Table, "error")
	t.finish()
}

func (t *dlqTable) add(s *Set, topic string, h map[string]string, recordTime time.Time) {
	at := recordTime
	if v, err := time.Parse(time.RFC3339Nano, h["freshet.dlq.time"]); err == nil {
		at = v
	}
	t.at.add(seconds(at))
	t.topic.add(topic)
	src := h["freshet.dlq.topic"]
	if src == "" {
		src = strings.TrimSuffix(topic, ".dlq")
	}
	t.source.add(scrub(s, src, 256))
	t.component.add(scrub(s, h["freshet.dlq.component"], 256))
	t.errText.add(scrub(s, h["freshet.dlq.error"], MaxError))
}

// MaxError bounds the error texts kept.
const MaxError = 512

var ipRe = regexp.MustCompile(`\b(?:\d{1,3}\.){3}\d{1,3}\b|\[?[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}\]?`)

// scrub masks IP addresses in a free text (an error, a name read from a
// header) and bounds it to n bytes. Invalid UTF-8 is dropped first: dropped
// after, it could join the pieces of an address ("10\xea.0.0.1"). A text cut
// to n loses its trailing run of address characters, which the cut could
// have turned into an address ("10.1.2.345" into "10.1.2.3").
func scrub(s *Set, text string, n int) string {
	out := ipRe.ReplaceAllStringFunc(strings.ToValidUTF8(text, ""), func(m string) string {
		if !isIP(strings.Trim(m, "[]")) {
			return m
		}
		s.Minimized++
		return "<ip>"
	})
	if len(out) <= n {
		return out
	}
	return strings.TrimRightFunc(clean(out, n), func(r rune) bool { return r < utf8.RuneSelf && addrByte(byte(r)) })
}

// clean cuts s to at most n bytes at a rune boundary and drops invalid
// UTF-8.
func clean(s string, n int) string {
	s = strings.ToValidUTF8(s, "")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// isIP reports whether s is an IP address, with or without a port.
func isIP(s string) bool {
	if !ipChars(s) {
		return false // most labels: no parse, and none of its error values
	}
	if _, err := netip.ParseAddr(s); err == nil {
		return true
	}
	if _, err := netip.ParseAddrPort(s); err == nil {
		return true
	}
	return false
}

// ipChars reports whether s holds only what an address with or without a
// port holds before a zone ('%'): hex digits, dots, colons, brackets.
func ipChars(s string) bool {
	if s == "" {
		return false
	}
	for i := range len(s) {
		switch c := s[i]; {
		case c == '%':
			return true
		case !addrByte(c):
			return false
		}
	}
	return true
}

// addrByte reports whether c can be part of an IP address as text, with
// its port or zone: hex digits, '.', ':', '[', ']' and '%'.
func addrByte(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' ||
		c == '.' || c == ':' || c == '[' || c == ']' || c == '%'
}
