package app

import (
	"os"
	"time"

	"github.com/freshet/freshet/pkg/config"
)

// Config is the invalidator's configuration, read from FRESHET_* variables.
type Config struct {
	config.Common
	Invalidator Invalidator `env:"INVALIDATOR"`
}

// Invalidator holds the variables of the invalidator itself. The targets,
// their limits, retries and breakers are in the pipeline file
// (invalidation.targets).
type Invalidator struct {
	// Group is the consumer group of the instances. Default invalidator.
	Group string `env:"GROUP" default:"invalidator" help:"Consumer group of the invalidator instances over content.changes; instances of one deployment share it and split the partitions."`
	// Instance names this instance in latency samples; empty means the
	// host name.
	Instance string `env:"INSTANCE" help:"Name of this instance in latency samples. Empty means the host name."`
	// SessionTimeout is how long the group waits for a crashed instance.
	SessionTimeout time.Duration `env:"SESSION_TIMEOUT" default:"10s" help:"How long the group waits for a silent (crashed) instance before its partitions move to the others (and their unacked purges are redone there)."`
	// CommitInterval is how often offsets of done changes are committed.
	CommitInterval time.Duration `env:"COMMIT_INTERVAL" default:"100ms" help:"How often the offsets of changes every target acked (or dead-lettered) are committed."`
	// MaxInFlight bounds the changes consumed and not yet done.
	MaxInFlight int `env:"MAX_IN_FLIGHT" default:"100000" help:"Most changes consumed and not yet acked (or dead-lettered) by every target; consuming pauses past it. A failing target (its last request failed, or its breaker is open) that holds more than half of it dead-letters its oldest queued changes unsent, so it never pauses the others."`
	// EnsureTopics creates missing topics. Default true.
	EnsureTopics bool `env:"ENSURE_TOPICS" default:"true" help:"Create missing topics (content.changes and its DLQ, edge.purges, pipeline.latency) with the pipeline's settings; refuse incompatible existing ones."`
	// ContentTopic, PurgesTopic and LatencyTopic rename the topics.
	ContentTopic string `env:"CONTENT_TOPIC" default:"content.changes" help:"Topic of the content changes; malformed records and dead-lettered purges go to this name plus .dlq."`
	PurgesTopic  string `env:"PURGES_TOPIC" default:"edge.purges" help:"Topic of the purge audit records (one per target batch)."`
	LatencyTopic string `env:"LATENCY_TOPIC" default:"pipeline.latency" help:"Topic of the latency samples (one per change: commit to the last target's ack)."`
	// Pprof serves /debug/pprof/ on the admin listener.
	Pprof bool `env:"PPROF" default:"false" help:"Serve /debug/pprof/ on the admin listener."`
}

// Validate checks what Load cannot.
func (c *Invalidator) Validate() error {
	if c.CommitInterval <= 0 {
		return config.FieldErrorf("CommitInterval", "must be positive")
	}
	if c.SessionTimeout < time.Second {
		return config.FieldErrorf("SessionTimeout", "must be at least 1s")
	}
	if c.MaxInFlight < 1 {
		return config.FieldErrorf("MaxInFlight", "must be at least 1")
	}
	return nil
}

func (c *Invalidator) instance() string {
	if c.Instance != "" {
		return c.Instance
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		return "invalidator"
	}
	return host
}
