package codec

import (
	"github.com/freshet/freshet/pkg/events"
)

// The direct encoders and decoders of the six events, hand-written for the
// schemas of schemas/avro as of the fingerprints in directFingerprints: each
// record's fields in schema order, ["null", T] unions as branch 0 or 1,
// timestamps as timestamp-micros, enums by symbol index, arrays and maps in
// blocks. Encoder and decoder of a record sit side by side. Any change to a
// schema must be mirrored here; TestDirectPathMatchesSchemas fails until it
// is.

// Enum symbols, in schema order, by enum.
var (
	// SourceOrigin
	originSymbols = []events.Origin{
		events.OriginUnknown, events.OriginReplication, events.OriginSnapshot, events.OriginOutbox,
		events.OriginHTTP, events.OriginProducer, events.OriginBrowser, events.OriginService,
	}
	// ContentOp
	opSymbols = []events.Op{events.OpCreate, events.OpUpdate, events.OpDelete, events.OpTruncate}
	// PurgeOutcome
	outcomeSymbols = []events.PurgeOutcome{
		events.OutcomeUnknown, events.OutcomeAcked, events.OutcomeFailed, events.OutcomeSkipped,
	}
	// DeviceClass
	deviceSymbols = []events.DeviceClass{
		events.DeviceUnknown, events.DeviceMobile, events.DeviceTablet, events.DeviceDesktop,
	}
	// VitalName
	vitalSymbols = []events.VitalName{
		events.VitalLCP, events.VitalINP, events.VitalCLS, events.VitalTTFB, events.VitalFCP,
	}
	// VitalRating
	ratingSymbols = []events.VitalRating{
		events.RatingGood, events.RatingNeedsImprovement, events.RatingPoor,
	}
	// NavigationType
	navSymbols = []events.NavigationType{
		events.NavUnknown, events.NavNavigate, events.NavReload, events.NavBackForward,
		events.NavBackForwardCache, events.NavPrerender, events.NavRestore,
	}
)

// Fewest bytes an array item takes (node.minSize), which bounds the counts
// a decoder accepts.
const (
	minStage    = 1 + 1                 // name, at
	minReason   = 1 + 1 + 8             // rule, match, score
	minInterest = 1 + 8                 // tag, weight
	minVital    = 1 + 8 + 8 + 1 + 1 + 1 // name, value, delta, rating, navigation_type, id
	minLag      = 1 + 8                 // event_id, lag_ms
)

// ---- shared records ----

func (w *writer) source(s *events.Source) {
	w.enum(symbolIndex(originSymbols, s.Origin, events.OriginUnknown))
	w.str(s.DB)
	w.str(s.Table)
	w.long(int64(s.LSN))
	w.long(int64(s.CommitLSN))
	w.long(int64(s.TxID))
	w.long(s.Seq)
	w.time(s.CommitTime)
}

func (r *reader) source(s *events.Source) {
	s.Origin = enum(r, originSymbols)
	s.DB = r.str()
	s.Table = r.str()
	s.LSN = uint64(r.Long())
	s.CommitLSN = uint64(r.Long())
	s.TxID = uint64(r.Long())
	s.Seq = r.Long()
	s.CommitTime = r.time()
}

func (w *writer) trace(t *events.Trace) {
	w.time(t.CommittedAt)
	w.time(t.ProducedAt)
	w.array(len(t.Stages), func(i int) {
		w.str(t.Stages[i].Name)
		w.time(t.Stages[i].At)
	})
}

func (r *reader) trace(t *events.Trace) {
	t.CommittedAt = r.time()
	t.ProducedAt = r.time()
	t.Stages = array(r, minStage, func(r *reader, s *events.Stage) {
		s.Name = r.str()
		s.At = r.time()
	})
}

func (w *writer) projection(p *events.ContentProjection) {
	w.str(p.ID)
	w.str(p.Kind)
	w.str(p.Title)
	w.str(p.Summary)
	w.str(p.URLPath)
	w.str(p.Locale)
	w.str(p.Section)
	w.strs(p.Tags)
	w.optTime(p.PublishedAt)
	w.long(p.Version)
}

func (r *reader) projection(p *events.ContentProjection) {
	p.ID = r.str()
	p.Kind = r.str()
	p.Title = r.str()
	p.Summary = r.str()
	p.URLPath = r.str()
	p.Locale = r.str()
	p.Section = r.str()
	p.Tags = r.strs()
	p.PublishedAt = r.optTime()
	p.Version = r.Long()
}

// ---- ContentChange ----

func (w *writer) contentChange(c *events.ContentChange) {
	w.str(c.EventID)
	w.source(&c.Source)
	w.trace(&c.Trace)
	w.enum(symbolIndex(opSymbols, c.Op, ""))
	w.str(c.ContentID)
	w.str(c.Kind)
	w.str(c.Title)
	w.str(c.Summary)
	if c.Body == nil {
		w.null()
	} else {
		w.some()
		w.str(*c.Body)
	}
	w.strs(c.Tags)
	w.str(c.Section)
	w.str(c.Locale)
	w.strs(c.Authors)
	w.strs(c.Regions)
	w.str(c.URLPath)
	w.strs(c.SurrogateKeys)
	w.long(c.Version)
	w.optTime(c.PublishedAt)
	w.boolean(c.Broadcast)
	w.strs(c.Channels)
	w.strMap(c.Attributes)
	if b := c.Before; b == nil {
		w.null()
	} else {
		w.some()
		w.str(b.Kind)
		w.str(b.Title)
		w.strs(b.Tags)
		w.str(b.Section)
		w.str(b.Locale)
		w.str(b.URLPath)
		w.strs(b.SurrogateKeys)
		w.long(b.Version)
		w.strMap(b.Attributes)
	}
	w.strs(c.MissingFields)
}

func (r *reader) contentChange(c *events.ContentChange) {
	c.EventID = r.str()
	r.source(&c.Source)
	r.trace(&c.Trace)
	c.Op = enum(r, opSymbols)
	c.ContentID = r.str()
	c.Kind = r.str()
	c.Title = r.str()
	c.Summary = r.str()
	if r.Some() {
		body := r.str()
		c.Body = &body
	}
	c.Tags = r.strs()
	c.Section = r.str()
	c.Locale = r.str()
	c.Authors = r.strs()
	c.Regions = r.strs()
	c.URLPath = r.str()
	c.SurrogateKeys = r.strs()
	c.Version = r.Long()
	c.PublishedAt = r.optTime()
	c.Broadcast = r.Boolean()
	c.Channels = r.strs()
	c.Attributes = r.strMap()
	if r.Some() {
		b := new(events.ContentBefore)
		b.Kind = r.str()
		b.Title = r.str()
		b.Tags = r.strs()
		b.Section = r.str()
		b.Locale = r.str()
		b.URLPath = r.str()
		b.SurrogateKeys = r.strs()
		b.Version = r.Long()
		b.Attributes = r.strMap()
		c.Before = b
	}
	c.MissingFields = r.strs()
}

// ---- UserProfile ----

func (w *writer) userProfile(u *events.UserProfile) {
	w.str(u.EventID)
	w.source(&u.Source)
	w.trace(&u.Trace)
	w.str(u.UserID)
	w.boolean(u.Deleted)
	w.str(u.Locale)
	w.str(u.Region)
	w.array(len(u.Interests), func(i int) {
		w.str(u.Interests[i].Tag)
		w.double(u.Interests[i].Weight)
	})
	w.strs(u.Follows)
	w.strs(u.Segments)
	w.time(u.UpdatedAt)
	w.strMap(u.Attributes)
	w.strs(u.MissingFields)
}

func (r *reader) userProfile(u *events.UserProfile) {
	u.EventID = r.str()
	r.source(&u.Source)
	r.trace(&u.Trace)
	u.UserID = r.str()
	u.Deleted = r.Boolean()
	u.Locale = r.str()
	u.Region = r.str()
	u.Interests = array(r, minInterest, func(r *reader, in *events.Interest) {
		in.Tag = r.str()
		in.Weight = r.Double()
	})
	u.Follows = r.strs()
	u.Segments = r.strs()
	u.UpdatedAt = r.time()
	u.Attributes = r.strMap()
	u.MissingFields = r.strs()
}

// ---- Delivery ----

func (w *writer) delivery(d *events.Delivery) {
	w.str(d.EventID)
	w.str(d.ChangeEventID)
	w.source(&d.Source)
	w.trace(&d.Trace)
	w.enum(symbolIndex(opSymbols, d.Op, ""))
	w.str(d.UserID)
	w.str(d.Channel)
	w.projection(&d.Content)
	w.double(d.Score)
	w.array(len(d.Reasons), func(i int) {
		w.str(d.Reasons[i].Rule)
		w.str(d.Reasons[i].Match)
		w.double(d.Reasons[i].Score)
	})
	w.optTime(d.Deadline)
}

func (r *reader) delivery(d *events.Delivery) {
	d.EventID = r.str()
	d.ChangeEventID = r.str()
	r.source(&d.Source)
	r.trace(&d.Trace)
	d.Op = enum(r, opSymbols)
	d.UserID = r.str()
	d.Channel = r.str()
	r.projection(&d.Content)
	d.Score = r.Double()
	d.Reasons = array(r, minReason, func(r *reader, x *events.Reason) {
		x.Rule = r.str()
		x.Match = r.str()
		x.Score = r.Double()
	})
	d.Deadline = r.optTime()
}

// ---- PurgeAudit ----

func (w *writer) purgeAudit(p *events.PurgeAudit) {
	w.str(p.EventID)
	w.source(&p.Source)
	w.trace(&p.Trace)
	w.str(p.PurgeID)
	w.str(p.Target)
	w.str(p.Provider)
	w.strs(p.ChangeEventIDs)
	w.strs(p.Keys)
	w.strs(p.URLs)
	w.boolean(p.Soft)
	w.long(int64(int32(p.Attempts))) // Native converts with int32()
	w.enum(symbolIndex(outcomeSymbols, p.Outcome, events.OutcomeUnknown))
	w.long(int64(int32(p.StatusCode)))
	if p.Error == "" {
		w.null()
	} else {
		w.some()
		w.str(p.Error)
	}
	w.time(p.StartedAt)
	w.time(p.FinishedAt)
	w.long(p.LatencyFromCommit.Microseconds())
	w.long(int64(oneIfZero(p.Part))) // as Native: an unset part is 1 of 1
	w.long(int64(oneIfZero(p.Parts)))
}

// oneIfZero is an int field counted from 1, as Native writes it: 1 for 0,
// else converted with int32().
func oneIfZero(n int) int32 {
	if n == 0 {
		return 1
	}
	return int32(n)
}

func (r *reader) purgeAudit(p *events.PurgeAudit) {
	p.EventID = r.str()
	r.source(&p.Source)
	r.trace(&p.Trace)
	p.PurgeID = r.str()
	p.Target = r.str()
	p.Provider = r.str()
	p.ChangeEventIDs = r.strs()
	p.Keys = r.strs()
	p.URLs = r.strs()
	p.Soft = r.Boolean()
	p.Attempts = int(r.Int())
	p.Outcome = enum(r, outcomeSymbols)
	p.StatusCode = int(r.Int())
	if r.Some() {
		p.Error = r.str()
		r.lossy = r.lossy || p.Error == "" // the event reads as null
	}
	p.StartedAt = r.time()
	p.FinishedAt = r.time()
	p.LatencyFromCommit = r.micros()
	p.Part = int(r.Int())
	p.Parts = int(r.Int())
	r.lossy = r.lossy || p.Part == 0 || p.Parts == 0 // the event reads as 1
}

// ---- RumBeacon ----

func (w *writer) rumBeacon(b *events.RumBeacon) {
	w.str(b.EventID)
	writeOpt(w, b.Source, (*writer).source)
	writeOpt(w, b.Trace, (*writer).trace)
	w.time(b.ReceivedAt)
	w.optTime(b.ClientTime)
	w.str(b.SessionID)
	w.str(b.UserHash)
	w.str(b.Route)
	w.enum(symbolIndex(deviceSymbols, b.DeviceClass, events.DeviceUnknown))
	w.str(b.ConnectionClass)
	w.str(b.Region)
	w.array(len(b.Metrics), func(i int) {
		m := &b.Metrics[i]
		w.enum(symbolIndex(vitalSymbols, m.Name, ""))
		w.double(m.Value)
		w.double(m.Delta)
		w.enum(symbolIndex(ratingSymbols, m.Rating, ""))
		w.enum(symbolIndex(navSymbols, m.NavigationType, events.NavUnknown))
		w.str(m.ID)
	})
	w.array(len(b.SSELags), func(i int) {
		w.str(b.SSELags[i].EventID)
		w.double(b.SSELags[i].LagMS)
	})
}

func (r *reader) rumBeacon(b *events.RumBeacon) {
	b.EventID = r.str()
	b.Source = readOpt(r, (*reader).source)
	b.Trace = readOpt(r, (*reader).trace)
	b.ReceivedAt = r.time()
	b.ClientTime = r.optTime()
	b.SessionID = r.str()
	b.UserHash = r.str()
	b.Route = r.str()
	b.DeviceClass = enum(r, deviceSymbols)
	b.ConnectionClass = r.str()
	b.Region = r.str()
	b.Metrics = array(r, minVital, func(r *reader, m *events.WebVital) {
		m.Name = enum(r, vitalSymbols)
		m.Value = r.Double()
		m.Delta = r.Double()
		m.Rating = enum(r, ratingSymbols)
		m.NavigationType = enum(r, navSymbols)
		m.ID = r.str()
	})
	b.SSELags = array(r, minLag, func(r *reader, l *events.SSELag) {
		l.EventID = r.str()
		l.LagMS = r.Double()
	})
}

// ---- LatencySample ----

func (w *writer) latencySample(l *events.LatencySample) {
	w.str(l.EventID)
	writeOpt(w, l.Source, (*writer).source)
	writeOpt(w, l.Trace, (*writer).trace)
	w.str(l.SubjectEventID)
	w.str(l.Service)
	w.str(l.Instance)
	w.str(l.Stage)
	w.long(l.Duration.Microseconds())
	w.time(l.At)
	w.strMap(l.Labels)
}

func (r *reader) latencySample(l *events.LatencySample) {
	l.EventID = r.str()
	l.Source = readOpt(r, (*reader).source)
	l.Trace = readOpt(r, (*reader).trace)
	l.SubjectEventID = r.str()
	l.Service = r.str()
	l.Instance = r.str()
	l.Stage = r.str()
	l.Duration = r.micros()
	l.At = r.time()
	l.Labels = r.strMap()
}
