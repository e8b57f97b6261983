package app

import (
	"os"
	"time"

	"github.com/freshet/freshet/pkg/config"
)

// Config is the personalizer's configuration, read from FRESHET_* variables.
type Config struct {
	config.Common
	Personalizer Personalizer `env:"PERSONALIZER"`
}

// Personalizer holds the variables of the personalizer itself.
type Personalizer struct {
	// Group is the consumer group of the instances. Default personalizer.
	Group string `env:"GROUP" default:"personalizer" help:"Consumer group of the personalizer instances over user.profiles; instances of one deployment share it."`
	// TransactionalID identifies this instance's transactions; empty means
	// "personalizer-" and the host name. Unique per instance, stable across
	// restarts.
	TransactionalID string `env:"TRANSACTIONAL_ID" help:"Transactional id of this instance: unique per instance and stable across its restarts (a restart then aborts what the previous run left open at once). Empty means personalizer-<hostname>."`
	// TransactionTimeout bounds how long the broker keeps the transaction of
	// a vanished instance open. Default 30s.
	TransactionTimeout time.Duration `env:"TRANSACTION_TIMEOUT" default:"30s" help:"How long the broker keeps the open transaction of a crashed instance before aborting it (a restart with the same transactional id aborts it at once)."`
	// SessionTimeout is how long the group waits for a crashed instance.
	// Default 10s.
	SessionTimeout time.Duration `env:"SESSION_TIMEOUT" default:"10s" help:"How long the group waits for a silent (crashed) instance before its partitions move to the others."`
	// MaxChangesPerTransaction bounds the changes scored in one
	// transaction. Default 5000.
	MaxChangesPerTransaction int `env:"MAX_CHANGES_PER_TRANSACTION" default:"5000" help:"Most content changes scored in one transaction: a loop that fell behind catches up this many at a time."`
	// MaxDeliveriesPerTransaction ends a transaction at this many
	// deliveries. Default 100000.
	MaxDeliveriesPerTransaction int `env:"MAX_DELIVERIES_PER_TRANSACTION" default:"100000" help:"A transaction ends once its changes produced this many deliveries; the changes left wait for the next one (bounds a transaction of changes with large audiences)."`
	// PollWait is how long an idle loop waits for a change. Default 50ms.
	PollWait time.Duration `env:"POLL_WAIT" default:"50ms" help:"How long an idle loop waits for a content change before looking at profiles and rebalances again."`
	// MinTransactionInterval spaces transactions. Default 12ms.
	MinTransactionInterval time.Duration `env:"MIN_TRANSACTION_INTERVAL" default:"12ms" help:"Spacing of transactions: a fetch of changes waits this long at the broker (unless a megabyte is there) and the changes that came meanwhile go in one transaction. Fewer fetches and transactions cost the broker less (a transaction is several requests and a marker per partition) for at most this much added latency; 0: none, else at least 10ms."`
	// EnsureTopics creates missing topics with the pipeline's settings.
	// Default true.
	EnsureTopics bool `env:"ENSURE_TOPICS" default:"true" help:"Create missing topics (content.changes, user.profiles, content.deliveries, pipeline.latency and the DLQs) with the pipeline's settings; refuse incompatible existing ones."`
	// ContentTopic, ProfilesTopic, DeliveriesTopic and LatencyTopic rename
	// the topics.
	ContentTopic    string `env:"CONTENT_TOPIC" default:"content.changes" help:"Topic of the content changes."`
	ProfilesTopic   string `env:"PROFILES_TOPIC" default:"user.profiles" help:"Compacted topic of the user profiles."`
	DeliveriesTopic string `env:"DELIVERIES_TOPIC" default:"content.deliveries" help:"Topic the deliveries go to (co-partitioned with the profiles)."`
	LatencyTopic    string `env:"LATENCY_TOPIC" default:"pipeline.latency" help:"Topic of the latency samples (one a change: commit to deliveries produced)."`
	// Pprof serves /debug/pprof/ on the admin listener. Default false.
	Pprof bool `env:"PPROF" default:"false" help:"Serve /debug/pprof/ on the admin listener."`
}

// Validate checks what Load cannot.
func (p *Personalizer) Validate() error {
	if p.MaxChangesPerTransaction < 1 {
		return config.FieldErrorf("MaxChangesPerTransaction", "must be at least 1")
	}
	if p.PollWait <= 0 {
		return config.FieldErrorf("PollWait", "must be positive")
	}
	if p.MinTransactionInterval != 0 && (p.MinTransactionInterval < 10*time.Millisecond || p.MinTransactionInterval > time.Second) {
		return config.FieldErrorf("MinTransactionInterval", "must be 0 (none) or between 10ms (the Kafka client's least fetch wait) and 1s")
	}
	if p.SessionTimeout < time.Second {
		return config.FieldErrorf("SessionTimeout", "must be at least 1s")
	}
	if p.TransactionTimeout < time.Second {
		return config.FieldErrorf("TransactionTimeout", "must be at least 1s")
	}
	return nil
}

// transactionalID returns the configured id or personalizer-<hostname>.
func (p *Personalizer) transactionalID() string {
	if p.TransactionalID != "" {
		return p.TransactionalID
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "local"
	}
	return "personalizer-" + host
}
