package pipeline

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/freshet/freshet/pkg/config"
)

// Version is the pipeline file format this package reads.
const Version = 1

// The design's topics. Every pipeline has them, with the defaults of
// [Default]; a file may change their settings and add topics of its own.
const (
	TopicContentChanges    = "content.changes"    // content events, keyed by content id
	TopicUserProfiles      = "user.profiles"      // profile snapshots, keyed by user id, compacted
	TopicContentDeliveries = "content.deliveries" // deliveries, keyed by user id (co-partitioned with user.profiles)
	TopicRUMBeacons        = "rum.beacons"        // browser beacons, keyed by session
	TopicPipelineLatency   = "pipeline.latency"   // latency samples
	TopicEdgePurges        = "edge.purges"        // purge audit records
)

// DLQSuffix is appended to a topic's name to name its dead-letter topic.
const DLQSuffix = ".dlq"

// DLQTopicName returns the dead-letter topic of topic: "<topic>.dlq".
func DLQTopicName(topic string) string { return topic + DLQSuffix }

// Cleanup policies of a topic.
const (
	CleanupDelete        = "delete"
	CleanupCompact       = "compact"
	CleanupCompactDelete = "compact,delete"
)

// Event kinds of a captured table.
const (
	EventContent = "content" // rows become ContentChange events
	EventProfile = "profile" // rows become UserProfile snapshots
)

// Operations of a content change.
const (
	OpCreate = "create"
	OpUpdate = "update"
	OpDelete = "delete"
)

// Fields of a content change: the names a content table maps columns to,
// and (with op and attributes.<name>) what templates and broadcast
// conditions read.
const (
	FieldID            = "id"
	FieldKind          = "kind"
	FieldTitle         = "title"
	FieldSummary       = "summary"
	FieldBody          = "body"
	FieldTags          = "tags" // list
	FieldSection       = "section"
	FieldLocale        = "locale"
	FieldURL           = "url"
	FieldVersion       = "version"
	FieldSurrogateKeys = "surrogate_keys" // list
	FieldOp            = "op"             // templates and conditions only: create, update or delete
)

// Fields of a user profile: the names a profile table maps columns to.
// FieldLocale is shared with content.
const (
	FieldUserID    = "user_id"
	FieldRegion    = "region"
	FieldInterests = "interests" // jsonb {"tag": weight} or text[] (weight 1 each)
	FieldFollows   = "follows"   // text[]
	FieldSegments  = "segments"  // text[]
	FieldDeleted   = "deleted"   // boolean: true makes the profile a tombstone
	FieldUpdatedAt = "updated_at"
)

// attributesPrefix starts an attribute reference: attributes.<name>.
const attributesPrefix = "attributes"

type fieldKind int

const (
	scalarField fieldKind = iota
	listField
	opField
)

var contentTemplateFields = map[string]fieldKind{
	FieldID: scalarField, FieldKind: scalarField, FieldTitle: scalarField, FieldSummary: scalarField,
	FieldBody: scalarField, FieldTags: listField, FieldSection: scalarField, FieldLocale: scalarField,
	FieldURL: scalarField, FieldVersion: scalarField, FieldSurrogateKeys: listField, FieldOp: opField,
}

var contentColumnFields = []string{
	FieldID, FieldKind, FieldTitle, FieldSummary, FieldBody, FieldTags, FieldSection,
	FieldLocale, FieldURL, FieldVersion, FieldSurrogateKeys,
}

var profileColumnFields = []string{
	FieldUserID, FieldLocale, FieldRegion, FieldInterests, FieldFollows, FieldSegments,
	FieldDeleted, FieldUpdatedAt,
}

// ContentTemplateFields returns the field names templates and broadcast
// conditions may read, besides attributes.<name>, sorted.
func ContentTemplateFields() []string {
	out := make([]string, 0, len(contentTemplateFields))
	for k := range contentTemplateFields {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// ColumnFields returns the event fields a table of the given event kind maps
// columns to, in the order of the design; nil for an unknown kind.
func ColumnFields(event string) []string {
	switch event {
	case EventContent:
		return append([]string(nil), contentColumnFields...)
	case EventProfile:
		return append([]string(nil), profileColumnFields...)
	}
	return nil
}

// Pipeline is a parsed, defaulted and validated pipeline file: what is
// captured and what follows from it. Services get one from [Load] or [Parse]
// and only read it; it is safe for concurrent reads.
type Pipeline struct {
	// Version of the file format; 1, the default, is the only one.
	Version int `yaml:"version"`
	// Topics by name. The design's six topics are always present.
	Topics map[string]Topic `yaml:"topics"`
	// DLQ configures the dead-letter topics, "<topic>.dlq".
	DLQ DLQ `yaml:"dlq"`
	// Capture is what the cdc-ingestor reads from Postgres.
	Capture Capture `yaml:"capture"`
	// Invalidation is what the invalidator purges, and where.
	Invalidation Invalidation `yaml:"invalidation"`
	// Personalization is how the personalizer matches changes to users.
	Personalization Personalization `yaml:"personalization"`

	file  string         // name given to Parse, for errors
	lines map[string]int // field path → line, from the file
}

// Topic is how a topic is created (and checked when it exists).
type Topic struct {
	// Name is the topic's name (its key in the file).
	Name string `yaml:"-"`
	// Partitions; zero means the default of [Default] (12 for the design's
	// keyed topics, 6 for beacons, latency and purges, 12 for others).
	Partitions int32 `yaml:"partitions"`
	// ReplicationFactor; zero (the default) means the broker's
	// default.replication.factor. kafka.TopicSpecFor turns a Topic into
	// the spec a service creates the topic with.
	ReplicationFactor int16 `yaml:"replication_factor"`
	// Retention of records: a duration ("168h", "7d") or "forever". Zero
	// means the default (7d; 1d for content.deliveries, 3d for beacons and
	// latency, forever for user.profiles).
	Retention Retention `yaml:"retention"`
	// Cleanup is delete, compact or "compact,delete". Empty means the
	// default: compact for user.profiles (required there), delete elsewhere.
	Cleanup string `yaml:"cleanup"`
	// Configs are further topic configs, passed as they are
	// (e.g. min.insync.replicas). Retention and cleanup have their own keys.
	Configs map[string]string `yaml:"configs,omitempty"`
}

// Retention is how long a topic keeps records. [Forever] keeps them for good.
// In the file: a Go duration ("72h", "90m"), whole days ("7d"), or
// "forever".
type Retention time.Duration

// Forever is the retention of a topic that never deletes by age.
const Forever Retention = -1

// Duration returns r as a time.Duration (-1ns for Forever).
func (r Retention) Duration() time.Duration { return time.Duration(r) }

// Millis returns r as Kafka's retention.ms: -1 for Forever.
func (r Retention) Millis() int64 {
	if r == Forever {
		return -1
	}
	return time.Duration(r).Milliseconds()
}

// String returns "forever" or the duration.
func (r Retention) String() string {
	if r == Forever {
		return "forever"
	}
	return time.Duration(r).String()
}

// MarshalText returns String's form.
func (r Retention) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText parses "forever", "7d" or a Go duration.
func (r *Retention) UnmarshalText(text []byte) error {
	s := strings.TrimSpace(string(text))
	switch {
	case s == "forever":
		*r = Forever
		return nil
	case strings.HasSuffix(s, "d") && !strings.HasSuffix(s, "nd"):
		days, err := strconv.ParseInt(strings.TrimSuffix(s, "d"), 10, 32)
		if err != nil || days < 0 {
			return fmt.Errorf("retention %q: want whole days (7d), a duration (72h) or forever", s)
		}
		*r = Retention(time.Duration(days) * 24 * time.Hour)
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("retention %q: want a duration (72h), whole days (7d) or forever", s)
	}
	*r = Retention(d)
	return nil
}

// DLQ configures every dead-letter topic ("<topic>.dlq"): records that
// cannot be decoded or delivered, with the error in headers.
type DLQ struct {
	// Partitions of each DLQ topic. Default 1.
	Partitions int32 `yaml:"partitions"`
	// ReplicationFactor; zero (the default) means the broker's default.
	ReplicationFactor int16 `yaml:"replication_factor"`
	// Retention; default 14d.
	Retention Retention `yaml:"retention"`
}

// Capture is what the cdc-ingestor reads: logical replication settings and
// the captured tables.
type Capture struct {
	// Publication is the Postgres publication, created when missing with the
	// captured tables. Default "freshet".
	Publication string `yaml:"publication"`
	// Slot is the logical replication slot (pgoutput). Default "freshet".
	Slot string `yaml:"slot"`
	// Heartbeat is how often a heartbeat message is written so the slot
	// advances while captured tables are quiet. Default 10s.
	Heartbeat time.Duration `yaml:"heartbeat"`
	// SlotLagWarning is the slot lag (bytes of WAL retained) past which the
	// ingestor warns; 0 disables the warning. Default 1GiB.
	SlotLagWarning config.ByteSize `yaml:"slot_lag_warning"`
	// Snapshot configures the initial snapshot of the captured tables.
	Snapshot Snapshot `yaml:"snapshot"`
	// Outbox turns pg_logical_emit_message messages into events.
	Outbox Outbox `yaml:"outbox"`
	// Tables are the captured tables. Empty is valid: events then come only
	// from HTTP ingest and the outbox.
	Tables []Table `yaml:"tables"`
}

// Snapshot modes.
const (
	SnapshotInitial = "initial" // snapshot each table once, before streaming it
	SnapshotNever   = "never"   // stream changes only
)

// Snapshot configures the initial snapshot.
type Snapshot struct {
	// Mode is initial (the default) or never.
	Mode string `yaml:"mode"`
	// ChunkSize is the number of rows read per primary-key chunk. Default
	// 10000.
	ChunkSize int `yaml:"chunk_size"`
}

// Outbox configures the transactional outbox: messages written with
// pg_logical_emit_message(true, prefix, payload) become events.
type Outbox struct {
	// Prefix of the messages that are events; empty disables the outbox.
	// Default "freshet.outbox".
	Prefix string `yaml:"prefix"`
	// Topic the events go to. Default content.changes.
	Topic string `yaml:"topic"`
}

// Table is one captured table.
type Table struct {
	// Name is "schema.table"; a name without a schema means public.
	Name string `yaml:"table"`
	// Event is content (rows become ContentChange events) or profile (rows
	// become UserProfile snapshots; at most one table).
	Event string `yaml:"event"`
	// Topic the events go to. Default content.changes for content,
	// user.profiles for profile (a profile topic must be compacted).
	Topic string `yaml:"topic"`
	// Key are the columns that identify a row: they key the Kafka record and
	// make the event id. Default: the column mapped to id (content) or
	// user_id (profile). Every key column must be mapped in Columns or
	// Attributes.
	Key []string `yaml:"key"`
	// Columns maps event fields to columns: field: column. id (content) or
	// user_id (profile) is required. See [ColumnFields].
	Columns map[string]string `yaml:"columns"`
	// Attributes maps attribute names to columns (content only): values
	// become attributes.<name> of the event, as text.
	Attributes map[string]string `yaml:"attributes,omitempty"`
	// DefaultKind is the content kind of rows whose kind column is NULL or
	// not mapped (content only). Empty means none.
	DefaultKind string `yaml:"default_kind,omitempty"`
}

// Schema returns the table's schema ("public").
func (t *Table) Schema() string { s, _, _ := strings.Cut(t.Name, "."); return s }

// Relation returns the table's name without its schema.
func (t *Table) Relation() string { _, r, _ := strings.Cut(t.Name, "."); return r }

// Column returns the column mapped to an event field (or attributes.<name>).
func (t *Table) Column(field string) (string, bool) {
	if a, ok := strings.CutPrefix(field, attributesPrefix+"."); ok {
		c, ok := t.Attributes[a]
		return c, ok
	}
	c, ok := t.Columns[field]
	return c, ok
}

// Invalidation is what a content change purges, and where.
type Invalidation struct {
	// Keys are the surrogate-key templates. Default content:{id} and
	// {surrogate_keys[*]}.
	Keys []Template `yaml:"keys"`
	// URLs are the url templates. Default {old.url} and {new.url}.
	URLs []Template `yaml:"urls"`
	// Prefixes are url-prefix templates ("/section/{section}/"): every
	// url starting with one is purged (Varnish BAN, Cloudflare prefixes).
	// Default none.
	Prefixes []Template `yaml:"prefixes"`
	// Targets are the edge caches to purge, each concurrently. Empty is valid
	// (the invalidator then only audits).
	Targets []Target `yaml:"targets"`
}

// Purge is the purge set of a change: what its templates expand to.
type Purge struct {
	// Keys are surrogate keys (xkey, Surrogate-Key, cache tags).
	Keys []string
	// URLs are url paths ("/a/b").
	URLs []string
	// Prefixes are url-path prefixes.
	Prefixes []string
	// Dropped counts the strings left out because they cannot travel: a
	// key holding whitespace or a control character, a url or prefix
	// holding a control character.
	Dropped int
}

// Empty reports whether the purge set holds nothing.
func (p *Purge) Empty() bool { return len(p.Keys)+len(p.URLs)+len(p.Prefixes) == 0 }

// PurgeSet returns the keys, urls and prefixes a change purges, each without
// duplicates. Keys travel space-separated in headers, so a key holding
// whitespace or a control character (from a field's value) is dropped, as
// is a url or prefix holding a control character; Dropped counts them.
func (inv *Invalidation) PurgeSet(f Fields) Purge {
	p := Purge{Keys: ExpandAll(inv.Keys, f), URLs: ExpandAll(inv.URLs, f), Prefixes: ExpandAll(inv.Prefixes, f)}
	n := len(p.Keys) + len(p.URLs) + len(p.Prefixes)
	p.Keys = filter(p.Keys, func(s string) bool {
		return !strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f })
	})
	noControl := func(s string) bool { return !strings.ContainsFunc(s, isControl) }
	p.URLs = filter(p.URLs, noControl)
	p.Prefixes = filter(p.Prefixes, noControl)
	p.Dropped = n - len(p.Keys) - len(p.URLs) - len(p.Prefixes)
	return p
}

func filter(list []string, keep func(string) bool) []string {
	out := list[:0]
	for _, s := range list {
		if keep(s) {
			out = append(out, s)
		}
	}
	return out
}

// Target types.
const (
	TargetVarnish    = "varnish"
	TargetFastly     = "fastly"
	TargetCloudflare = "cloudflare"
	TargetHTTP       = "http"
)

// What a target purges.
const (
	PurgeKeys     = "keys"
	PurgeURLs     = "urls"
	PurgePrefixes = "prefixes"
)

// Target is an edge cache to purge. Fields marked with a type apply to that
// type only; setting them on another type is an error. Zero values mean the
// type's default (see docs/pipelines.md).
type Target struct {
	// Name identifies the target in metrics, logs and audit records.
	Name string `yaml:"name"`
	// Type is varnish, fastly, cloudflare or http.
	Type string `yaml:"type"`
	// Address is where purge requests go: the Varnish listener
	// (http://127.0.0.1:6081), the http endpoint, or the provider's API
	// (default https://api.fastly.com, https://api.cloudflare.com/client/v4).
	// ${VAR} and ${VAR:-default} are read from the environment.
	Address string `yaml:"address" pipeline:"env"`
	// Host is the Host header of url purges (varnish). Default: the host of
	// Address. ${VAR} and ${VAR:-default} are read from the environment.
	Host string `yaml:"host,omitempty" pipeline:"env"`
	// ServiceID is the Fastly service (fastly).
	ServiceID string `yaml:"service_id,omitempty"`
	// ZoneID is the Cloudflare zone (cloudflare).
	ZoneID string `yaml:"zone_id,omitempty"`
	// Plan is the Cloudflare plan, which sets the default rate and burst:
	// free (the default), pro, business or enterprise (cloudflare).
	Plan string `yaml:"plan,omitempty"`
	// TokenEnv names the environment variable holding the API token
	// (required for fastly and cloudflare; for http, sent as a bearer
	// token). Secrets never go in the file.
	TokenEnv string `yaml:"token_env,omitempty"`
	// Method of http purge requests. Default POST (http).
	Method string `yaml:"method,omitempty"`
	// Headers are extra, non-secret headers of http purge requests (http).
	Headers map[string]string `yaml:"headers,omitempty"`
	// HeaderEnv maps header names to environment variables holding their
	// (secret) values (http).
	HeaderEnv map[string]string `yaml:"header_env,omitempty"`
	// BaseURL turns url paths into absolute URLs
	// (https://www.example.com); required for fastly and cloudflare when
	// they purge urls or prefixes. ${VAR} and ${VAR:-default} are read
	// from the environment.
	BaseURL string `yaml:"base_url,omitempty" pipeline:"env"`
	// Body is the JSON body of http purge requests (http); zero means
	// DefaultBody.
	Body BodyTemplate `yaml:"body,omitempty"`
	// Purge lists what the target purges: keys, urls, prefixes. Default
	// keys and urls, plus prefixes where the pipeline has prefix templates
	// and the type can purge them (not fastly).
	Purge []string `yaml:"purge"`
	// Soft marks objects stale instead of removing them, where the target
	// supports it (varnish keys, fastly); cloudflare refuses it.
	Soft bool `yaml:"soft"`
	// URLKeys purges urls as the surrogate keys "url:<path>", many a
	// request, coalesced with the other keys, rather than one PURGE a url
	// (varnish). The VCL must tag every object with "url:" and its url, as
	// the reference VCL (deploy/varnish/default.vcl) does; a url holding
	// whitespace is still purged by its own PURGE. Such a purge takes the
	// path on every host the Varnish caches it for.
	URLKeys bool `yaml:"url_keys,omitempty"`
	// Coalesce is how long purges to this target are gathered before a
	// batch is sent. Default 20ms.
	Coalesce time.Duration `yaml:"coalesce"`
	// MaxKeys per request. Default and upper limit: varnish 100 (default;
	// no limit), fastly 256, cloudflare 100, http 100 (no limit).
	MaxKeys int `yaml:"max_keys"`
	// MaxURLs per request. varnish and fastly purge one url per request;
	// cloudflare 100 (500 on enterprise); http 100 (no limit).
	MaxURLs int `yaml:"max_urls"`
	// Rate limits requests per second; zero means unlimited, except on
	// cloudflare, where it defaults to the plan's (free 5/min, pro 5/s,
	// business 10/s, enterprise 50/s).
	Rate float64 `yaml:"rate"`
	// Burst is the token bucket size of Rate. Default: the plan's
	// (cloudflare), else max(1, Rate).
	Burst int `yaml:"burst"`
	// Concurrency is the number of requests in flight. Default 4.
	Concurrency int `yaml:"concurrency"`
	// Timeout of one request. Default 5s.
	Timeout time.Duration `yaml:"timeout"`
	// Retry governs retries of a failed request, with exponential backoff
	// and full jitter; after the last attempt the purge goes to the DLQ.
	Retry Retry `yaml:"retry"`
	// Breaker is the target's circuit breaker.
	Breaker Breaker `yaml:"breaker"`
	// DeadLetterAfter is how long a purge is retried (attempts allowing)
	// before it goes to the DLQ. Default 5m.
	DeadLetterAfter time.Duration `yaml:"dead_letter_after"`
}

// PurgesKeys reports whether the target purges surrogate keys.
func (t *Target) PurgesKeys() bool { return contains(t.Purge, PurgeKeys) }

// PurgesURLs reports whether the target purges urls.
func (t *Target) PurgesURLs() bool { return contains(t.Purge, PurgeURLs) }

// PurgesPrefixes reports whether the target purges url prefixes.
func (t *Target) PurgesPrefixes() bool { return contains(t.Purge, PurgePrefixes) }

// Select returns the part of p that t purges (p's slices, not copies).
func (t *Target) Select(p Purge) Purge {
	var out Purge
	if t.PurgesKeys() {
		out.Keys = p.Keys
	}
	if t.PurgesURLs() {
		out.URLs = p.URLs
	}
	if t.PurgesPrefixes() {
		out.Prefixes = p.Prefixes
	}
	return out
}

// Token returns the target's API token from the variable TokenEnv names,
// read through lookup (os.LookupEnv in services). A target without
// token_env returns the empty Secret.
func (t *Target) Token(lookup config.LookupFunc) (config.Secret, error) {
	if t.TokenEnv == "" {
		return config.Secret{}, nil
	}
	v, ok := lookup(t.TokenEnv)
	if !ok || v == "" {
		return config.Secret{}, fmt.Errorf("pipeline: target %s: environment variable %s (token_env) is not set", t.Name, t.TokenEnv)
	}
	return config.NewSecret(v), nil
}

// SecretHeaders returns the headers of HeaderEnv with their values read
// through lookup.
func (t *Target) SecretHeaders(lookup config.LookupFunc) (map[string]config.Secret, error) {
	if len(t.HeaderEnv) == 0 {
		return nil, nil
	}
	out := make(map[string]config.Secret, len(t.HeaderEnv))
	for _, h := range sortedKeys(t.HeaderEnv) {
		name := t.HeaderEnv[h]
		v, ok := lookup(name)
		if !ok || v == "" {
			return nil, fmt.Errorf("pipeline: target %s: environment variable %s (header_env %s) is not set", t.Name, name, h)
		}
		out[h] = config.NewSecret(v)
	}
	return out, nil
}

// Retry configures retries of a failed purge request.
type Retry struct {
	// Attempts, the first included; 1 disables retries. Default 8.
	Attempts int `yaml:"attempts"`
	// InitialBackoff before the first retry; doubled each time up to
	// MaxBackoff, with full jitter. Default 100ms.
	InitialBackoff time.Duration `yaml:"initial_backoff"`
	// MaxBackoff caps the backoff. Default 10s.
	MaxBackoff time.Duration `yaml:"max_backoff"`
}

// Breaker configures a target's circuit breaker: after Failures consecutive
// failed requests it opens for Cooldown (requests wait and purges keep
// coalescing; none is sent), then lets one request through to probe.
type Breaker struct {
	// Failures that open the breaker. Default 5.
	Failures int `yaml:"failures"`
	// Cooldown while open. Default 30s.
	Cooldown time.Duration `yaml:"cooldown"`
}

// Personalization configures the personalizer's scoring. For a change, each
// rule expands its key templates over the change and compares the keys with
// the user's profile:
//
//	score = (interest.weight × Σ interests[k] for k in interest keys
//	       + follow.weight   × |follows ∩ follow keys|
//	       + segment.weight  × |segments ∩ segment keys|
//	       + region.weight   × [region in region keys]
//	       + locale.weight   × [locale in locale keys])
//	       × 0.5^(age / recency_half_life)
//
// where age is the time since the change was committed. Candidates are the
// users whose interests, follows or segments match a key; region and locale
// only adjust their scores (they never make a user a candidate alone). A
// candidate with score ≥ threshold gets a delivery, at most
// max_deliveries_per_change per change (the highest scores).
type Personalization struct {
	// Interest matches the profile's interests (tag → weight). Default
	// weight 1, keys {tags[*]}.
	Interest Rule `yaml:"interest"`
	// Follow matches the profile's follows. Default weight 2, keys
	// section:{section} and tag:{tags[*]}.
	Follow Rule `yaml:"follow"`
	// Segment matches the profile's segments. Default weight 1, no keys.
	Segment Rule `yaml:"segment"`
	// Region matches the profile's region. Default weight 0.5, no keys.
	Region Rule `yaml:"region"`
	// Locale matches the profile's locale. Default weight 0.5, keys
	// {locale}.
	Locale Rule `yaml:"locale"`
	// RecencyHalfLife halves the score of a change per half-life of age; 0
	// disables the decay. Default 6h.
	RecencyHalfLife time.Duration `yaml:"recency_half_life"`
	// Threshold is the lowest score that gets a delivery. Default 1.
	Threshold float64 `yaml:"threshold"`
	// MaxDeliveriesPerChange caps deliveries per change, keeping the highest
	// scores; 0 (the default) means no cap.
	MaxDeliveriesPerChange int `yaml:"max_deliveries_per_change"`
	// Deadline is how long after commit a delivery stays fresh; the
	// delivery's deadline is the commit time plus this. Default 15m.
	Deadline time.Duration `yaml:"deadline"`
	// Ops are the operations personalized. Default create and update.
	Ops []string `yaml:"ops"`
	// Broadcast channels: content matching a channel goes to it once
	// instead of to each user. The first matching channel wins.
	Broadcast []Channel `yaml:"broadcast"`
}

// Rule is one scoring rule: its weight and the key templates that expand to
// the keys compared with the profile. A rule without keys never matches.
type Rule struct {
	// Weight of a match; 0 disables the rule.
	Weight float64 `yaml:"weight"`
	// Keys are templates over the change.
	Keys []Template `yaml:"keys"`
}

// Match returns the keys the rule compares with profiles for f.
func (r *Rule) Match(f Fields) []string { return ExpandAll(r.Keys, f) }

// Channel is a broadcast channel.
type Channel struct {
	// Name of the channel (what clients subscribe to with ?channels=).
	Name string `yaml:"channel"`
	// When maps fields to accepted values: content matches when every field
	// has one of its values (for a list field, any element). Required.
	When map[string][]string `yaml:"when"`
	// Personalize also delivers matching content to users, as if it were not
	// broadcast. Default false.
	Personalize bool `yaml:"personalize"`
}

// Matches reports whether a change with fields f belongs to the channel.
func (c *Channel) Matches(f Fields) bool {
	if len(c.When) == 0 {
		return false
	}
	for field, accepted := range c.When {
		ok := false
		for _, v := range f[field] {
			if contains(accepted, v) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// Channel returns the first broadcast channel f matches, or nil.
func (p *Personalization) Channel(f Fields) *Channel {
	for i := range p.Broadcast {
		if p.Broadcast[i].Matches(f) {
			return &p.Broadcast[i]
		}
	}
	return nil
}

// Personalizes reports whether changes with op are personalized.
func (p *Personalization) Personalizes(op string) bool { return contains(p.Ops, op) }

// File returns the name the pipeline was parsed from ("" when built in
// code).
func (p *Pipeline) File() string { return p.file }

// Topic returns the named topic, or one with the dead-letter settings for a
// "<topic>.dlq" name; ok is false when the topic is not declared.
func (p *Pipeline) Topic(name string) (Topic, bool) {
	if t, ok := p.Topics[name]; ok {
		return t, true
	}
	if base, ok := strings.CutSuffix(name, DLQSuffix); ok {
		if _, ok := p.Topics[base]; ok {
			return p.DLQTopic(base), true
		}
	}
	return Topic{}, false
}

// DLQTopic returns the dead-letter topic of topic.
func (p *Pipeline) DLQTopic(topic string) Topic {
	return Topic{
		Name:              DLQTopicName(topic),
		Partitions:        p.DLQ.Partitions,
		ReplicationFactor: p.DLQ.ReplicationFactor,
		Retention:         p.DLQ.Retention,
		Cleanup:           CleanupDelete,
	}
}

// TopicNames returns the declared topics' names, sorted.
func (p *Pipeline) TopicNames() []string { return sortedKeys(p.Topics) }

// ContentTables returns the captured tables whose event is content.
func (p *Pipeline) ContentTables() []*Table {
	var out []*Table
	for i := range p.Capture.Tables {
		if p.Capture.Tables[i].Event == EventContent {
			out = append(out, &p.Capture.Tables[i])
		}
	}
	return out
}

// ProfileTable returns the table that holds user profiles, or nil.
func (p *Pipeline) ProfileTable() *Table {
	for i := range p.Capture.Tables {
		if p.Capture.Tables[i].Event == EventProfile {
			return &p.Capture.Tables[i]
		}
	}
	return nil
}

// Table returns the captured table named "schema.table" (or "table", in
// public), or nil.
func (p *Pipeline) Table(name string) *Table {
	name = qualify(name)
	for i := range p.Capture.Tables {
		if p.Capture.Tables[i].Name == name {
			return &p.Capture.Tables[i]
		}
	}
	return nil
}

// ContentTopics returns the topics content events are written to (by
// tables, the outbox and HTTP ingest), sorted: what the invalidator and the
// personalizer consume.
func (p *Pipeline) ContentTopics() []string {
	set := map[string]bool{TopicContentChanges: true}
	for _, t := range p.ContentTables() {
		set[t.Topic] = true
	}
	if p.Capture.Outbox.Prefix != "" {
		set[p.Capture.Outbox.Topic] = true
	}
	return sortedKeys(set)
}

// Channels returns the broadcast channel names, in file order.
func (p *Pipeline) Channels() []string {
	out := make([]string, 0, len(p.Personalization.Broadcast))
	for _, c := range p.Personalization.Broadcast {
		out = append(out, c.Name)
	}
	return out
}

// CheckEnv checks that every environment variable the targets name
// (token_env, header_env) is set, through lookup. The invalidator calls it
// at start; other services need not.
func (p *Pipeline) CheckEnv(lookup config.LookupFunc) error {
	var errs []error
	for i := range p.Invalidation.Targets {
		t := &p.Invalidation.Targets[i]
		if _, err := t.Token(lookup); err != nil {
			errs = append(errs, err)
		}
		if _, err := t.SecretHeaders(lookup); err != nil {
			errs = append(errs, err)
		}
	}
	return joinErrors(errs)
}

func qualify(name string) string {
	if name != "" && !strings.Contains(name, ".") {
		return "public." + name
	}
	return name
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
