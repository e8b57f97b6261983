package pipeline

import (
	"math"
	"net/url"
	"time"

	"github.com/freshet/freshet/pkg/config"
)

const day = 24 * time.Hour

// topicDefaults are the settings of the design's topics; other topics get
// customTopic.
var topicDefaults = map[string]Topic{
	TopicContentChanges:    {Partitions: 12, Retention: Retention(7 * day), Cleanup: CleanupDelete},
	TopicUserProfiles:      {Partitions: 12, Retention: Forever, Cleanup: CleanupCompact},
	TopicContentDeliveries: {Partitions: 12, Retention: Retention(1 * day), Cleanup: CleanupDelete},
	TopicRUMBeacons:        {Partitions: 6, Retention: Retention(3 * day), Cleanup: CleanupDelete},
	TopicPipelineLatency:   {Partitions: 6, Retention: Retention(3 * day), Cleanup: CleanupDelete},
	TopicEdgePurges:        {Partitions: 6, Retention: Retention(7 * day), Cleanup: CleanupDelete},
}

var customTopic = Topic{Partitions: 12, Retention: Retention(7 * day), Cleanup: CleanupDelete}

// Default returns the pipeline of an empty file: the design's topics, no
// captured tables, the default purge templates, no targets and the default
// scoring rules. Parse applies a file on top of it; code that builds a
// pipeline by hand starts from it and calls Validate.
func Default() *Pipeline {
	p := &Pipeline{
		Version: Version,
		Topics:  map[string]Topic{},
		DLQ:     DLQ{Partitions: 1, Retention: Retention(14 * day)},
		Capture: Capture{
			Publication:    "freshet",
			Slot:           "freshet",
			Heartbeat:      10 * time.Second,
			SlotLagWarning: config.GiB,
			Snapshot:       Snapshot{Mode: SnapshotInitial, ChunkSize: 10000},
			Outbox:         Outbox{Prefix: "freshet.outbox", Topic: TopicContentChanges},
		},
		Invalidation: Invalidation{
			Keys: templates("content:{id}", "{surrogate_keys[*]}"),
			URLs: templates("{old.url}", "{new.url}"),
		},
		Personalization: Personalization{
			Interest:        Rule{Weight: 1, Keys: templates("{tags[*]}")},
			Follow:          Rule{Weight: 2, Keys: templates("section:{section}", "tag:{tags[*]}")},
			Segment:         Rule{Weight: 1},
			Region:          Rule{Weight: 0.5},
			Locale:          Rule{Weight: 0.5, Keys: templates("{locale}")},
			RecencyHalfLife: 6 * time.Hour,
			Threshold:       1,
			Deadline:        15 * time.Minute,
			Ops:             []string{OpCreate, OpUpdate},
		},
	}
	for name, t := range topicDefaults {
		t.Name = name
		p.Topics[name] = t
	}
	return p
}

func templates(srcs ...string) []Template {
	out := make([]Template, len(srcs))
	for i, s := range srcs {
		out[i] = MustParseTemplate(s)
	}
	return out
}

// Provider limits and defaults of purge targets.
type targetLimits struct {
	maxKeys, maxURLs         int // defaults
	maxKeysLimit, urlsLimit  int // upper limits; 0 means none
	address                  string
	soft                     bool // supports soft purge
	needsToken, needsBaseURL bool
	prefixes                 bool // supports prefix purges
}

var targetTypes = map[string]targetLimits{
	TargetVarnish:    {maxKeys: 100, maxURLs: 1, urlsLimit: 1, soft: true, prefixes: true},
	TargetFastly:     {maxKeys: 256, maxURLs: 1, maxKeysLimit: 256, urlsLimit: 1, address: "https://api.fastly.com", soft: true, needsToken: true, needsBaseURL: true},
	TargetCloudflare: {maxKeys: 100, maxURLs: 100, maxKeysLimit: 100, urlsLimit: 100, address: "https://api.cloudflare.com/client/v4", needsToken: true, needsBaseURL: true, prefixes: true},
	TargetHTTP:       {maxKeys: 100, maxURLs: 100, soft: true, prefixes: true},
}

// CloudflarePlan returns the purge rate limit of a Cloudflare plan (free,
// pro, business, enterprise): requests per second and bucket size, as
// documented at https://developers.cloudflare.com/cache/how-to/purge-cache/.
func CloudflarePlan(plan string) (rate float64, burst int, ok bool) {
	p, ok := cloudflarePlans[plan]
	return p.rate, p.burst, ok
}

// Cloudflare plans and their purge rate limits (requests per second, bucket).
var cloudflarePlans = map[string]struct {
	rate  float64
	burst int
}{
	"free":       {5.0 / 60, 25},
	"pro":        {5, 25},
	"business":   {10, 50},
	"enterprise": {50, 500},
}

// Defaults of every target.
const (
	defaultCoalesce       = 20 * time.Millisecond
	defaultConcurrency    = 4
	defaultTimeout        = 5 * time.Second
	defaultAttempts       = 8
	defaultInitialBackoff = 100 * time.Millisecond
	defaultMaxBackoff     = 10 * time.Second
	defaultFailures       = 5
	defaultCooldown       = 30 * time.Second
	defaultDeadLetter     = 5 * time.Minute
)

// setDefaults fills what the file left zero and what derives from other
// fields. It runs after decoding and before validation, and is idempotent.
func (p *Pipeline) setDefaults() {
	if p.Version == 0 {
		p.Version = Version
	}
	if p.Topics == nil {
		p.Topics = map[string]Topic{}
	}
	for name, d := range topicDefaults {
		if _, ok := p.Topics[name]; !ok {
			d.Name = name
			p.Topics[name] = d
		}
	}
	for name, t := range p.Topics {
		d, ok := topicDefaults[name]
		if !ok {
			d = customTopic
		}
		t.Name = name
		if t.Partitions == 0 {
			t.Partitions = d.Partitions
		}
		if t.Retention == 0 {
			t.Retention = d.Retention
		}
		if t.Cleanup == "" {
			t.Cleanup = d.Cleanup
		}
		p.Topics[name] = t
	}
	if p.DLQ.Partitions == 0 {
		p.DLQ.Partitions = 1
	}
	if p.DLQ.Retention == 0 {
		p.DLQ.Retention = Retention(14 * day)
	}

	c := &p.Capture
	if c.Snapshot.Mode == "" {
		c.Snapshot.Mode = SnapshotInitial
	}
	if c.Snapshot.ChunkSize == 0 {
		c.Snapshot.ChunkSize = 10000
	}
	if c.Outbox.Topic == "" {
		c.Outbox.Topic = TopicContentChanges
	}
	for i := range c.Tables {
		t := &c.Tables[i]
		t.Name = qualify(t.Name)
		if t.Topic == "" {
			switch t.Event {
			case EventContent:
				t.Topic = TopicContentChanges
			case EventProfile:
				t.Topic = TopicUserProfiles
			}
		}
		if len(t.Key) == 0 {
			id := FieldID
			if t.Event == EventProfile {
				id = FieldUserID
			}
			if col, ok := t.Columns[id]; ok && col != "" {
				t.Key = []string{col}
			}
		}
	}

	for i := range p.Invalidation.Targets {
		p.Invalidation.Targets[i].setDefaults()
	}
}

func (t *Target) setDefaults() {
	lim, ok := targetTypes[t.Type]
	if !ok {
		return // reported by validation
	}
	if t.Address == "" {
		t.Address = lim.address
	}
	if t.Type == TargetVarnish && t.Host == "" {
		if u, err := url.Parse(t.Address); err == nil {
			t.Host = u.Host
		}
	}
	if t.Type == TargetCloudflare {
		if t.Plan == "" {
			t.Plan = "free"
		}
		if plan, ok := cloudflarePlans[t.Plan]; ok {
			if t.Rate == 0 {
				t.Rate = plan.rate
			}
			if t.Burst == 0 {
				t.Burst = plan.burst
			}
		}
	}
	if t.Type == TargetHTTP && t.Method == "" {
		t.Method = "POST"
	}
	if t.Rate > 0 && t.Burst == 0 && !math.IsInf(t.Rate, 0) {
		t.Burst = int(math.Max(1, math.Ceil(math.Min(t.Rate, 1e6))))
	}
	if len(t.Purge) == 0 {
		t.Purge = []string{PurgeKeys, PurgeURLs}
		if lim.prefixes {
			t.Purge = append(t.Purge, PurgePrefixes)
		}
	}
	if t.DeadLetterAfter == 0 {
		t.DeadLetterAfter = defaultDeadLetter
	}
	if t.Coalesce == 0 {
		t.Coalesce = defaultCoalesce
	}
	if t.MaxKeys == 0 {
		t.MaxKeys = lim.maxKeys
	}
	if t.MaxURLs == 0 {
		t.MaxURLs = lim.maxURLs
	}
	if t.Concurrency == 0 {
		t.Concurrency = defaultConcurrency
	}
	if t.Timeout == 0 {
		t.Timeout = defaultTimeout
	}
	if t.Retry.Attempts == 0 {
		t.Retry.Attempts = defaultAttempts
	}
	if t.Retry.InitialBackoff == 0 {
		t.Retry.InitialBackoff = defaultInitialBackoff
	}
	if t.Retry.MaxBackoff == 0 {
		t.Retry.MaxBackoff = defaultMaxBackoff
	}
	if t.Breaker.Failures == 0 {
		t.Breaker.Failures = defaultFailures
	}
	if t.Breaker.Cooldown == 0 {
		t.Breaker.Cooldown = defaultCooldown
	}
}
