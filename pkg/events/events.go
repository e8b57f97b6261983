package events

import (
	"time"
)

// Namespace is the Avro namespace of every Freshet schema.
const Namespace = "dev.freshet.events"

// Full names of the event schemas.
const (
	ContentChangeSchema = Namespace + ".ContentChange"
	UserProfileSchema   = Namespace + ".UserProfile"
	DeliverySchema      = Namespace + ".Delivery"
	PurgeAuditSchema    = Namespace + ".PurgeAudit"
	RumBeaconSchema     = Namespace + ".RumBeacon"
	LatencySampleSchema = Namespace + ".LatencySample"
)

// Event is implemented by the six event types (as values and as pointers).
type Event interface {
	// Schema returns the full name of the event's Avro schema.
	Schema() string
	// Native returns the event in goavro's native form, ready for
	// pkg/codec. It allocates a new map on every call.
	Native() map[string]any
	// ID returns the event's event_id.
	ID() string
}

var (
	_ Event = ContentChange{}
	_ Event = UserProfile{}
	_ Event = Delivery{}
	_ Event = PurgeAudit{}
	_ Event = RumBeacon{}
	_ Event = LatencySample{}
)

// Origin says how an event entered the pipeline (Source.origin).
type Origin string

// Origins. OriginUnknown is what a reader sees for an origin added after it
// was built; an empty Origin is encoded as OriginUnknown.
const (
	OriginUnknown     Origin = "unknown"
	OriginReplication Origin = "replication"
	OriginSnapshot    Origin = "snapshot"
	OriginOutbox      Origin = "outbox"
	OriginHTTP        Origin = "http"
	OriginProducer    Origin = "producer"
	OriginBrowser     Origin = "browser"
	OriginService     Origin = "service"
)

// Op is what happened to a content item (ContentOp).
type Op string

// Content operations.
const (
	OpCreate   Op = "create"
	OpUpdate   Op = "update"
	OpDelete   Op = "delete"
	OpTruncate Op = "truncate"
)

// Source is where an event came from; see schemas/avro/types/Source.avsc.
type Source struct {
	Origin     Origin
	DB         string
	Table      string
	LSN        uint64
	CommitLSN  uint64
	TxID       uint64
	Seq        int64
	CommitTime time.Time
}

// Stage is one step an event went through.
type Stage struct {
	Name string
	At   time.Time
}

// Trace holds the timestamps end-to-end latency is computed from; see
// schemas/avro/types/Trace.avsc.
type Trace struct {
	CommittedAt time.Time
	ProducedAt  time.Time
	Stages      []Stage
}

// Mark appends a stage that finished at at.
func (t *Trace) Mark(name string, at time.Time) {
	t.Stages = append(t.Stages, Stage{Name: name, At: at})
}

// Clone returns a copy of t that shares no memory with it, for a derived
// event that appends its own stages.
func (t Trace) Clone() Trace {
	t.Stages = append([]Stage(nil), t.Stages...)
	return t
}

// ContentChange is a change to a content item; see
// schemas/avro/ContentChange.avsc for the meaning of each field.
type ContentChange struct {
	EventID       string
	Source        Source
	Trace         Trace
	Op            Op
	ContentID     string
	Kind          string
	Title         string
	Summary       string
	Body          *string // nil: not mapped or not sent
	Tags          []string
	Section       string
	Locale        string
	Authors       []string
	Regions       []string
	URLPath       string
	SurrogateKeys []string
	Version       int64
	PublishedAt   time.Time // zero: null
	Broadcast     bool
	Channels      []string
	Attributes    map[string]string
	Before        *ContentBefore // nil: no old row
	MissingFields []string
}

// ContentBefore holds the values of a row before an update.
type ContentBefore struct {
	Kind          string
	Title         string
	Tags          []string
	Section       string
	Locale        string
	URLPath       string
	SurrogateKeys []string
	Version       int64
	Attributes    map[string]string
}

// Projection returns the part of the change a subscriber needs.
func (c ContentChange) Projection() ContentProjection {
	return ContentProjection{
		ID: c.ContentID, Kind: c.Kind, Title: c.Title, Summary: c.Summary,
		URLPath: c.URLPath, Locale: c.Locale, Section: c.Section,
		Tags: append([]string(nil), c.Tags...), PublishedAt: c.PublishedAt, Version: c.Version,
	}
}

// ContentProjection is what a subscriber needs to show a content item.
type ContentProjection struct {
	ID          string
	Kind        string
	Title       string
	Summary     string
	URLPath     string
	Locale      string
	Section     string
	Tags        []string
	PublishedAt time.Time // zero: null
	Version     int64
}

// UserProfile is a snapshot of a user's profile; see
// schemas/avro/UserProfile.avsc.
type UserProfile struct {
	EventID       string
	Source        Source
	Trace         Trace
	UserID        string
	Deleted       bool
	Locale        string
	Region        string
	Interests     []Interest
	Follows       []string
	Segments      []string
	UpdatedAt     time.Time
	Attributes    map[string]string
	MissingFields []string
}

// Interest is how much a user cares about a tag.
type Interest struct {
	Tag    string
	Weight float64
}

// Delivery is a content change addressed to one user or channel; see
// schemas/avro/Delivery.avsc.
type Delivery struct {
	EventID       string
	ChangeEventID string
	Source        Source
	Trace         Trace
	Op            Op
	UserID        string
	Channel       string
	Content       ContentProjection
	Score         float64
	Reasons       []Reason
	Deadline      time.Time // zero: never stale
}

// Reason is one rule's contribution to a delivery's score.
type Reason struct {
	Rule  string
	Match string
	Score float64
}

// PurgeOutcome is how a purge ended.
type PurgeOutcome string

// Purge outcomes. An empty outcome is encoded as OutcomeUnknown.
const (
	OutcomeUnknown PurgeOutcome = "unknown"
	OutcomeAcked   PurgeOutcome = "acked"
	OutcomeFailed  PurgeOutcome = "failed"
	OutcomeSkipped PurgeOutcome = "skipped"
)

// PurgeAudit is the outcome of one purge batch on one target; see
// schemas/avro/PurgeAudit.avsc.
type PurgeAudit struct {
	EventID           string
	Source            Source
	Trace             Trace
	PurgeID           string
	Target            string
	Provider          string
	ChangeEventIDs    []string
	Keys              []string
	URLs              []string
	Soft              bool
	Attempts          int
	Outcome           PurgeOutcome
	StatusCode        int
	Error             string // "": null
	StartedAt         time.Time
	FinishedAt        time.Time
	LatencyFromCommit time.Duration // microsecond precision
	// Part is which record of the batch's audit this is, from 1 to Parts,
	// when the audit is split (its lists too large for one record); every
	// part holds the batch's other fields, so a batch is counted from part
	// 1 only. Zero is encoded as 1, as is a zero Parts: a batch's only
	// record.
	Part, Parts int
}

// DeviceClass is the coarse class of a browser's device.
type DeviceClass string

// Device classes. An empty class is encoded as DeviceUnknown.
const (
	DeviceUnknown DeviceClass = "unknown"
	DeviceMobile  DeviceClass = "mobile"
	DeviceTablet  DeviceClass = "tablet"
	DeviceDesktop DeviceClass = "desktop"
)

// VitalName names a web-vitals metric.
type VitalName string

// Web-vitals metrics.
const (
	VitalLCP  VitalName = "LCP"
	VitalINP  VitalName = "INP"
	VitalCLS  VitalName = "CLS"
	VitalTTFB VitalName = "TTFB"
	VitalFCP  VitalName = "FCP"
)

// VitalRating is the web-vitals rating of a measurement.
type VitalRating string

// Ratings; web-vitals' "needs-improvement" is RatingNeedsImprovement.
const (
	RatingGood             VitalRating = "good"
	RatingNeedsImprovement VitalRating = "needs_improvement"
	RatingPoor             VitalRating = "poor"
)

// NavigationType is how a page was reached (web-vitals navigationType with
// '-' written '_').
type NavigationType string

// Navigation types. An empty type is encoded as NavUnknown.
const (
	NavUnknown          NavigationType = "unknown"
	NavNavigate         NavigationType = "navigate"
	NavReload           NavigationType = "reload"
	NavBackForward      NavigationType = "back_forward"
	NavBackForwardCache NavigationType = "back_forward_cache"
	NavPrerender        NavigationType = "prerender"
	NavRestore          NavigationType = "restore"
)

// RumBeacon is what a browser measured; see schemas/avro/RumBeacon.avsc.
type RumBeacon struct {
	EventID         string
	Source          *Source // nil: null
	Trace           *Trace  // nil: null
	ReceivedAt      time.Time
	ClientTime      time.Time // zero: null
	SessionID       string
	UserHash        string
	Route           string
	DeviceClass     DeviceClass
	ConnectionClass string
	Region          string
	Metrics         []WebVital
	SSELags         []SSELag
}

// WebVital is one web-vitals measurement.
type WebVital struct {
	Name           VitalName
	Value          float64
	Delta          float64
	Rating         VitalRating
	NavigationType NavigationType
	ID             string
}

// SSELag is how late one delivery reached the page.
type SSELag struct {
	EventID string
	LagMS   float64
}

// LatencySample is how long one stage took for one event; see
// schemas/avro/LatencySample.avsc.
type LatencySample struct {
	EventID        string
	Source         *Source // nil: null
	Trace          *Trace  // nil: null
	SubjectEventID string
	Service        string
	Instance       string
	Stage          string
	Duration       time.Duration // microsecond precision
	At             time.Time
	Labels         map[string]string
}

// Schema implements Event.
func (ContentChange) Schema() string { return ContentChangeSchema }

// Schema implements Event.
func (UserProfile) Schema() string { return UserProfileSchema }

// Schema implements Event.
func (Delivery) Schema() string { return DeliverySchema }

// Schema implements Event.
func (PurgeAudit) Schema() string { return PurgeAuditSchema }

// Schema implements Event.
func (RumBeacon) Schema() string { return RumBeaconSchema }

// Schema implements Event.
func (LatencySample) Schema() string { return LatencySampleSchema }

// ID implements Event.
func (e ContentChange) ID() string { return e.EventID }

// ID implements Event.
func (e UserProfile) ID() string { return e.EventID }

// ID implements Event.
func (e Delivery) ID() string { return e.EventID }

// ID implements Event.
func (e PurgeAudit) ID() string { return e.EventID }

// ID implements Event.
func (e RumBeacon) ID() string { return e.EventID }

// ID implements Event.
func (e LatencySample) ID() string { return e.EventID }
