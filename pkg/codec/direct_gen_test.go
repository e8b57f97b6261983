package codec

import (
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/freshet/freshet/pkg/events"
)

// This file has the helpers of the direct path's differential tests: a
// seeded generator of random events, a canonical form of an Avro body that
// puts map entries in key order, and a comparison of decoded values that
// takes floats by their bits.

// gen makes random events. Every optional field is, at random, unset
// (nil, zero), empty (non-nil but empty) or set; strings mix ASCII,
// multi-byte Unicode and invalid UTF-8; numbers reach their extremes.
type gen struct{ r *rand.Rand }

func newGen(seed uint64) *gen { return &gen{rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))} }

func (g *gen) pick(n int) int { return g.r.IntN(n) }

var genWords = []string{
	"", "a", "news", "fr-FR", "/articles/42", "tag:weather", "author:7", "unknown",
	"Привет мир", "日本語のタイトル", "emoji 🌧️☀️", "e\u0301", "\x00nul", "bad \xff\xfe utf-8",
	"a longer string with spaces, punctuation; and \"quotes\" and \\ backslashes",
}

func (g *gen) str() string {
	switch g.pick(50) {
	case 0, 1, 2, 3, 4, 5, 6, 7:
		return ""
	case 8: // long, to cross varint length boundaries (127, 128, 16383, ...)
		return strings.Repeat("x", []int{127, 128, 129, 300, 16383, 16384, 70000}[g.pick(7)])
	default:
		s := genWords[g.pick(len(genWords))]
		if g.pick(2) == 0 {
			s += fmt.Sprint(g.r.Int64())
		}
		return s
	}
}

func (g *gen) strPtr() *string {
	if g.pick(3) == 0 {
		return nil
	}
	s := g.str()
	return &s
}

// count is the length of an array or map: mostly small, sometimes large.
func (g *gen) count() int {
	switch g.pick(20) {
	case 0:
		return 100 + g.pick(1000)
	case 1, 2, 3, 4, 5, 6:
		return 0
	default:
		return 1 + g.pick(5)
	}
}

func (g *gen) strs() []string {
	switch g.pick(4) {
	case 0:
		return nil
	case 1:
		return []string{}
	}
	s := make([]string, g.count())
	for i := range s {
		s[i] = g.str()
	}
	return s
}

func (g *gen) strMap() map[string]string {
	switch g.pick(4) {
	case 0:
		return nil
	case 1:
		return map[string]string{}
	}
	n := g.count()
	m := make(map[string]string, n)
	for i := range n {
		m[fmt.Sprintf("%s%d", g.str(), i)] = g.str()
	}
	return m
}

func (g *gen) long() int64 {
	switch g.pick(8) {
	case 0:
		return 0
	case 1:
		return math.MaxInt64
	case 2:
		return math.MinInt64
	case 3:
		return -1 - g.r.Int64N(1000)
	case 4:
		return g.r.Int64N(1000)
	default:
		if g.pick(2) == 0 {
			return -g.r.Int64()
		}
		return g.r.Int64()
	}
}

func (g *gen) double() float64 {
	switch g.pick(10) {
	case 0:
		return 0
	case 1:
		return math.Copysign(0, -1)
	case 2:
		return math.Inf(1 - 2*g.pick(2))
	case 3:
		return math.NaN()
	case 4:
		return math.SmallestNonzeroFloat64
	case 5:
		return -math.MaxFloat64
	default:
		return (g.r.Float64() - 0.5) * math.Pow(10, float64(g.pick(20)-10))
	}
}

// time is any instant, nanoseconds included (the codec keeps microseconds),
// from before 1970 to far ahead; never the zero time.
func (g *gen) time() time.Time {
	switch g.pick(6) {
	case 0:
		return time.Unix(0, 0).UTC()
	case 1:
		return time.Unix(-g.r.Int64N(1e11), g.r.Int64N(1e9)).UTC()
	case 2:
		return time.Unix(g.r.Int64N(1e12), g.r.Int64N(1e9)).In(time.FixedZone("X", 3600))
	default:
		return t0.Add(time.Duration(g.r.Int64N(1e15) - 5e14))
	}
}

// optTime is the zero time (null) or an instant.
func (g *gen) optTime() time.Time {
	if g.pick(3) == 0 {
		return time.Time{}
	}
	return g.time()
}

func (g *gen) duration() time.Duration {
	switch g.pick(4) {
	case 0:
		return 0
	case 1:
		return time.Duration(g.long())
	default:
		return time.Duration(g.r.Int64N(1e12) - 1e11)
	}
}

// symbol picks one of symbols or, for enums with a default, "".
func symbol[T ~string](g *gen, symbols []T, emptyOK bool) T {
	if emptyOK && g.pick(len(symbols)+1) == 0 {
		return ""
	}
	return symbols[g.pick(len(symbols))]
}

func (g *gen) source() events.Source {
	return events.Source{
		Origin: symbol(g, originSymbols, true), DB: g.str(), Table: g.str(),
		LSN: uint64(g.long()), CommitLSN: uint64(g.long()), TxID: uint64(g.long()), Seq: g.long(),
		CommitTime: g.time(),
	}
}

func (g *gen) trace() events.Trace {
	t := events.Trace{CommittedAt: g.time(), ProducedAt: g.time()}
	if g.pick(4) == 0 {
		t.Stages = []events.Stage{}
	}
	for range g.count() {
		t.Mark(g.str(), g.time())
	}
	return t
}

func (g *gen) optSource() *events.Source {
	if g.pick(3) == 0 {
		return nil
	}
	s := g.source()
	return &s
}

func (g *gen) optTrace() *events.Trace {
	if g.pick(3) == 0 {
		return nil
	}
	t := g.trace()
	return &t
}

func (g *gen) contentChange() events.ContentChange {
	c := events.ContentChange{
		EventID: g.str(), Source: g.source(), Trace: g.trace(), Op: symbol(g, opSymbols, false),
		ContentID: g.str(), Kind: g.str(), Title: g.str(), Summary: g.str(), Body: g.strPtr(),
		Tags: g.strs(), Section: g.str(), Locale: g.str(), Authors: g.strs(), Regions: g.strs(),
		URLPath: g.str(), SurrogateKeys: g.strs(), Version: g.long(), PublishedAt: g.optTime(),
		Broadcast: g.pick(2) == 0, Channels: g.strs(), Attributes: g.strMap(), MissingFields: g.strs(),
	}
	if g.pick(2) == 0 {
		c.Before = &events.ContentBefore{
			Kind: g.str(), Title: g.str(), Tags: g.strs(), Section: g.str(), Locale: g.str(),
			URLPath: g.str(), SurrogateKeys: g.strs(), Version: g.long(), Attributes: g.strMap(),
		}
	}
	return c
}

func (g *gen) userProfile() events.UserProfile {
	u := events.UserProfile{
		EventID: g.str(), Source: g.source(), Trace: g.trace(), UserID: g.str(), Deleted: g.pick(2) == 0,
		Locale: g.str(), Region: g.str(), Follows: g.strs(), Segments: g.strs(), UpdatedAt: g.time(),
		Attributes: g.strMap(), MissingFields: g.strs(),
	}
	for range g.count() {
		u.Interests = append(u.Interests, events.Interest{Tag: g.str(), Weight: g.double()})
	}
	return u
}

func (g *gen) delivery() events.Delivery {
	d := events.Delivery{
		EventID: g.str(), ChangeEventID: g.str(), Source: g.source(), Trace: g.trace(),
		Op: symbol(g, opSymbols, false), UserID: g.str(), Channel: g.str(),
		Content: events.ContentProjection{
			ID: g.str(), Kind: g.str(), Title: g.str(), Summary: g.str(), URLPath: g.str(),
			Locale: g.str(), Section: g.str(), Tags: g.strs(), PublishedAt: g.optTime(), Version: g.long(),
		},
		Score: g.double(), Deadline: g.optTime(),
	}
	for range g.count() {
		d.Reasons = append(d.Reasons, events.Reason{Rule: g.str(), Match: g.str(), Score: g.double()})
	}
	return d
}

func (g *gen) purgeAudit() events.PurgeAudit {
	p := events.PurgeAudit{
		EventID: g.str(), Source: g.source(), Trace: g.trace(), PurgeID: g.str(), Target: g.str(),
		Provider: g.str(), ChangeEventIDs: g.strs(), Keys: g.strs(), URLs: g.strs(), Soft: g.pick(2) == 0,
		Attempts: int(g.long()), Outcome: symbol(g, outcomeSymbols, true), StatusCode: int(g.long()),
		StartedAt: g.time(), FinishedAt: g.time(), LatencyFromCommit: g.duration(),
	}
	if g.pick(2) == 0 {
		p.Attempts, p.StatusCode = g.pick(5), 200+g.pick(400)
	}
	if g.pick(2) == 0 {
		p.Error = g.str()
	}
	switch g.pick(3) {
	case 0: // unset: encoded as 1 of 1
	case 1:
		p.Parts = 1 + g.pick(20)
		p.Part = 1 + g.pick(p.Parts)
	default:
		p.Part, p.Parts = int(g.long()), int(g.long())
	}
	return p
}

func (g *gen) rumBeacon() events.RumBeacon {
	b := events.RumBeacon{
		EventID: g.str(), Source: g.optSource(), Trace: g.optTrace(), ReceivedAt: g.time(),
		ClientTime: g.optTime(), SessionID: g.str(), UserHash: g.str(), Route: g.str(),
		DeviceClass: symbol(g, deviceSymbols, true), ConnectionClass: g.str(), Region: g.str(),
	}
	for range g.count() {
		b.Metrics = append(b.Metrics, events.WebVital{
			Name: symbol(g, vitalSymbols, false), Value: g.double(), Delta: g.double(),
			Rating: symbol(g, ratingSymbols, false), NavigationType: symbol(g, navSymbols, true), ID: g.str(),
		})
	}
	for range g.count() {
		b.SSELags = append(b.SSELags, events.SSELag{EventID: g.str(), LagMS: g.double()})
	}
	return b
}

func (g *gen) latencySample() events.LatencySample {
	return events.LatencySample{
		EventID: g.str(), Source: g.optSource(), Trace: g.optTrace(), SubjectEventID: g.str(),
		Service: g.str(), Instance: g.str(), Stage: g.str(), Duration: g.duration(), At: g.time(),
		Labels: g.strMap(),
	}
}

// event returns a random event of the i-th schema (i modulo 6), as a value
// or as a pointer.
func (g *gen) event(i int) events.Event {
	var ev events.Event
	switch i % 6 {
	case 0:
		ev = g.contentChange()
	case 1:
		ev = g.delivery()
	case 2:
		ev = g.userProfile()
	case 3:
		ev = g.latencySample()
	case 4:
		ev = g.rumBeacon()
	default:
		ev = g.purgeAudit()
	}
	if g.pick(2) == 0 {
		return asPointer(ev)
	}
	return ev
}

// canonicalBody returns body, a value of n, with the entries of every map
// in key order: the form in which goavro's output (whose map order is Go's
// map iteration order) and the direct encoder's (sorted) are compared.
// Everything else is copied as it is.
func canonicalBody(n *node, body []byte) ([]byte, error) {
	s := &scanner{b: body}
	out, err := canonical(n, s, nil)
	if err != nil {
		return nil, err
	}
	if s.pos != len(body) {
		return nil, fmt.Errorf("%d bytes after the value", len(body)-s.pos)
	}
	return out, nil
}

func canonical(n *node, s *scanner, out []byte) ([]byte, error) {
	switch n.kind {
	case kRecord:
		for _, f := range n.fields {
			var err error
			if out, err = canonical(f.typ, s, out); err != nil {
				return nil, err
			}
		}
		return out, nil
	case kUnion:
		start := s.pos
		i, err := s.long()
		if err != nil {
			return nil, err
		}
		if i < 0 || i >= int64(len(n.branches)) {
			return nil, fmt.Errorf("union index %d", i)
		}
		return canonical(n.branches[i], s, append(out, s.b[start:s.pos]...))
	case kArray, kMap:
		var entries [][]byte
		w := writer{}
		for {
			count, err := s.long()
			if err != nil {
				return nil, err
			}
			if count == 0 {
				break
			}
			if count < 0 {
				return nil, fmt.Errorf("negative block count: neither encoder writes one")
			}
			if n.kind == kArray {
				w.long(count)
			}
			for range count {
				var e []byte
				if n.kind == kMap {
					start := s.pos
					l, err := s.long()
					if err != nil {
						return nil, err
					}
					if err := s.skip(l); err != nil {
						return nil, err
					}
					e = append(e, s.b[start:s.pos]...)
				}
				item := n.items
				if n.kind == kMap {
					item = n.values
				}
				if e, err = canonical(item, s, e); err != nil {
					return nil, err
				}
				if n.kind == kArray {
					w.b = append(w.b, e...)
				} else {
					entries = append(entries, e)
				}
			}
		}
		if n.kind == kMap && len(entries) > 0 {
			// An entry starts with its key; sort by the key's bytes.
			key := func(e []byte) string {
				r := newReader(e)
				return r.str()
			}
			slices.SortFunc(entries, func(a, b []byte) int { return strings.Compare(key(a), key(b)) })
			w.long(int64(len(entries)))
			for _, e := range entries {
				w.b = append(w.b, e...)
			}
		}
		return append(append(out, w.b...), 0), nil
	default:
		start := s.pos
		if err := s.value(n, 0); err != nil {
			return nil, err
		}
		return append(out, s.b[start:s.pos]...), nil
	}
}

var timeType = reflect.TypeFor[time.Time]()

// sameValue is reflect.DeepEqual except that floats are compared by their
// bits, so that a NaN equals the same NaN.
func sameValue(a, b any) bool {
	return sameValues(reflect.ValueOf(a), reflect.ValueOf(b))
}

func sameValues(a, b reflect.Value) bool {
	if a.IsValid() != b.IsValid() {
		return false
	}
	if !a.IsValid() {
		return true
	}
	if a.Type() != b.Type() {
		return false
	}
	if a.Type() == timeType {
		return reflect.DeepEqual(a.Interface(), b.Interface())
	}
	switch a.Kind() {
	case reflect.Float32, reflect.Float64:
		return math.Float64bits(a.Float()) == math.Float64bits(b.Float())
	case reflect.Pointer, reflect.Interface:
		if a.IsNil() || b.IsNil() {
			return a.IsNil() == b.IsNil()
		}
		return sameValues(a.Elem(), b.Elem())
	case reflect.Struct:
		for i := range a.NumField() {
			if !sameValues(a.Field(i), b.Field(i)) {
				return false
			}
		}
		return true
	case reflect.Slice:
		if a.IsNil() != b.IsNil() || a.Len() != b.Len() {
			return false
		}
		for i := range a.Len() {
			if !sameValues(a.Index(i), b.Index(i)) {
				return false
			}
		}
		return true
	case reflect.Map:
		if a.IsNil() != b.IsNil() || a.Len() != b.Len() {
			return false
		}
		for _, k := range a.MapKeys() {
			bv := b.MapIndex(k)
			if !bv.IsValid() || !sameValues(a.MapIndex(k), bv) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(a.Interface(), b.Interface())
}
