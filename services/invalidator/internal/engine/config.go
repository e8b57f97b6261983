package engine

import (
	"errors"
	"net/http"
	"os"
	"time"

	"github.com/freshet/freshet/pkg/config"
	"github.com/freshet/freshet/pkg/kafka"
	"github.com/freshet/freshet/pkg/pipeline"
)

// Config configures an Engine.
type Config struct {
	// Kafka is the client configuration.
	Kafka kafka.Config
	// Pipeline holds the invalidation templates and the targets. Required.
	Pipeline *pipeline.Pipeline
	// Topics names the topics.
	Topics Topics
	// Group is the consumer group. Required.
	Group string
	// Instance names this instance in latency samples; empty is allowed.
	Instance string
	// CommitInterval is how often done offsets are committed. Zero means
	// 100ms.
	CommitInterval time.Duration
	// SessionTimeout is the consumer group session timeout. Zero means
	// 10s.
	SessionTimeout time.Duration
	// MaxInFlight bounds the changes consumed and not yet done; polling
	// pauses past it. A target holding more than half of it (slow or
	// down) dead-letters its oldest queued changes unsent, so one target
	// never pauses the others. Zero means 100000.
	MaxInFlight int
	// EnsureTopics creates missing topics with the pipeline's settings.
	EnsureTopics bool
	// Lookup reads the targets' tokens and secret headers. Nil means
	// os.LookupEnv.
	Lookup config.LookupFunc
	// HTTPClient makes the purge requests. Nil means a client of its own.
	HTTPClient *http.Client
}

// Topics names the topics an Engine reads and writes.
type Topics struct {
	Content string // content.changes; its DLQ is Content + ".dlq"
	Purges  string // edge.purges
	Latency string // pipeline.latency
}

func (c *Config) setDefaults() {
	if c.CommitInterval == 0 {
		c.CommitInterval = 100 * time.Millisecond
	}
	if c.SessionTimeout == 0 {
		c.SessionTimeout = 10 * time.Second
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = 100000
	}
	if c.Lookup == nil {
		c.Lookup = os.LookupEnv
	}
	if c.Topics.Content == "" {
		c.Topics.Content = pipeline.TopicContentChanges
	}
	if c.Topics.Purges == "" {
		c.Topics.Purges = pipeline.TopicEdgePurges
	}
	if c.Topics.Latency == "" {
		c.Topics.Latency = pipeline.TopicPipelineLatency
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Transport: &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			MaxIdleConnsPerHost: 64,
			IdleConnTimeout:     90 * time.Second,
			ForceAttemptHTTP2:   true,
		}}
	}
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	switch {
	case c.Pipeline == nil:
		return errors.New("engine: no pipeline")
	case c.Group == "":
		return errors.New("engine: no consumer group")
	case c.CommitInterval < 0:
		return errors.New("engine: negative commit interval")
	case c.MaxInFlight < 1:
		return errors.New("engine: MaxInFlight must be at least 1")
	}
	return c.Kafka.Validate()
}
