package engine

import (
	"errors"
	"fmt"
	"time"

	"github.com/freshet/freshet/pkg/codec"
	"github.com/freshet/freshet/pkg/kafka"
	"github.com/freshet/freshet/pkg/pipeline"
	"github.com/prometheus/client_golang/prometheus"
)

// Config is what an Engine needs. It is plain data.
type Config struct {
	// Kafka says how to reach the brokers.
	Kafka kafka.Config
	// Pipeline holds the scoring rules and the topics' settings. Required.
	Pipeline *pipeline.Pipeline
	// Topics are the names of the topics. Zero fields mean the design's
	// names (content.changes, user.profiles, content.deliveries).
	Topics Topics
	// Group is the consumer group of the instances over user.profiles.
	// Required.
	Group string
	// TransactionalID is this instance's transactional id. Required; it must
	// be unique per instance and stable across its restarts, so that a
	// restarted instance fences and aborts what its previous run left open.
	TransactionalID string
	// TransactionTimeout is how long the broker waits before aborting a
	// transaction whose producer vanished. Zero means 30s.
	TransactionTimeout time.Duration
	// SessionTimeout is how long the group waits for a silent instance
	// before it hands the instance's partitions to the others (after a
	// crash). Zero means 10s.
	SessionTimeout time.Duration
	// MaxChangesPerTransaction bounds the changes scored in one
	// transaction. Zero means 5,000.
	MaxChangesPerTransaction int
	// MaxDeliveriesPerTransaction ends a transaction once its changes
	// produced this many deliveries: the changes polled and not scored yet
	// wait for the next one. Zero means 100,000.
	MaxDeliveriesPerTransaction int
	// PollWait is how long an idle loop waits for a change before it looks
	// at profiles and rebalances again. Zero means 50ms.
	PollWait time.Duration
	// MinTransactionInterval spaces transactions: the content consumer's
	// fetch waits at the broker this long (at least 10ms, the client's
	// least) unless a megabyte of changes is there, and the changes that
	// came meanwhile go in one transaction. Every fetch and every
	// transaction costs the broker requests (a transaction several, and a
	// marker per partition), whatever they hold; unspaced, the loop ran
	// about a hundred of each a second at any rate. Zero: none.
	MinTransactionInterval time.Duration
	// EnsureTopics creates the topics that do not exist, with the
	// pipeline's settings, and refuses incompatible existing ones.
	EnsureTopics bool
}

// Topics names the topics an Engine reads and writes.
type Topics struct {
	Content    string // content.changes
	Profiles   string // user.profiles
	Deliveries string // content.deliveries
	Latency    string // pipeline.latency
}

func (c *Config) setDefaults() {
	if c.Topics.Content == "" {
		c.Topics.Content = pipeline.TopicContentChanges
	}
	if c.Topics.Profiles == "" {
		c.Topics.Profiles = pipeline.TopicUserProfiles
	}
	if c.Topics.Latency == "" {
		c.Topics.Latency = pipeline.TopicPipelineLatency
	}
	if c.Topics.Deliveries == "" {
		c.Topics.Deliveries = pipeline.TopicContentDeliveries
	}
	if c.TransactionTimeout == 0 {
		c.TransactionTimeout = 30 * time.Second
	}
	if c.SessionTimeout == 0 {
		c.SessionTimeout = 10 * time.Second
	}
	if c.MaxChangesPerTransaction == 0 {
		c.MaxChangesPerTransaction = 5000
	}
	if c.MaxDeliveriesPerTransaction == 0 {
		c.MaxDeliveriesPerTransaction = 100_000
	}
	if c.PollWait == 0 {
		c.PollWait = 50 * time.Millisecond
	}
}

// Validate checks the config after defaults.
func (c *Config) Validate() error {
	var errs []error
	if c.Pipeline == nil {
		errs = append(errs, errors.New("engine: no pipeline"))
	} else {
		up, _ := c.Pipeline.Topic(pipeline.TopicUserProfiles)
		dp, _ := c.Pipeline.Topic(pipeline.TopicContentDeliveries)
		if up.Partitions != dp.Partitions {
			errs = append(errs, fmt.Errorf("engine: %s has %d partitions and %s %d: they must be co-partitioned (same count)",
				pipeline.TopicUserProfiles, up.Partitions, pipeline.TopicContentDeliveries, dp.Partitions))
		}
		if ts := c.Pipeline.ContentTopics(); len(ts) > 1 {
			errs = append(errs, fmt.Errorf("engine: the pipeline writes content to %d topics %v; the personalizer reads one", len(ts), ts))
		}
	}
	if c.Group == "" {
		errs = append(errs, errors.New("engine: no consumer group"))
	}
	if c.TransactionalID == "" {
		errs = append(errs, errors.New("engine: no transactional id"))
	}
	if err := c.Kafka.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Option changes how New builds an Engine.
type Option func(*options)

type options struct {
	reg   prometheus.Registerer
	now   func() time.Time
	codec *codec.Codec
}

// WithRegisterer registers the engine's metrics with r instead of
// prometheus.DefaultRegisterer (tests run several engines in one process).
func WithRegisterer(r prometheus.Registerer) Option { return func(o *options) { o.reg = r } }

// WithClock replaces time.Now, for recency and deadlines in tests.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithCodec uses c instead of a codec built from Config.Kafka.
func WithCodec(c *codec.Codec) Option { return func(o *options) { o.codec = c } }
