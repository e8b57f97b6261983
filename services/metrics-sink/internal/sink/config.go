package sink

import (
	"errors"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/freshet/freshet/pkg/kafka"
	"github.com/freshet/freshet/pkg/pipeline"
	"github.com/freshet/freshet/services/metrics-sink/internal/rows"
)

// Config configures a Sink.
type Config struct {
	// Kafka is the cluster.
	Kafka kafka.Config
	// Pipeline gives the topics' settings (EnsureTopics).
	Pipeline *pipeline.Pipeline
	// Group is the consumer group. Required.
	Group string
	// Topics names the topic of each decoded input; an empty name leaves
	// the input out.
	Topics map[rows.Kind]string
	// DLQTopics are the dead letter topics whose records are counted in
	// dlq_records (headers only).
	DLQTopics []string
	// ClickHouse are the connection options; Auth.Database is created if
	// missing.
	ClickHouse *clickhouse.Options
	// BatchRows flushes a batch at this many rows. Zero means 50,000.
	BatchRows int
	// BatchBytes flushes a batch when the record values it took reach this
	// many bytes: it bounds the memory of a batch of large rows (beacons),
	// whose decoded rows and insert columns take several times their
	// bytes. Zero means 16 MiB.
	BatchBytes int
	// BatchInterval flushes a batch this long after its first row. Zero
	// means 1s.
	BatchInterval time.Duration
	// MaxBackoff bounds the wait between two attempts at an insert. Zero
	// means 30s.
	MaxBackoff time.Duration
	// FetchMaxBytes bounds a fetch response, hence what the client buffers
	// while the loop waits for ClickHouse. Zero means 16 MiB.
	FetchMaxBytes int32
	// FetchMaxWait is how long a fetch waits at the broker for a quarter of
	// FetchMaxBytes before it returns what there is. Zero means 250ms.
	FetchMaxWait time.Duration
	// SessionTimeout is how long the group waits for a silent member
	// before its partitions move. Zero means 10s.
	SessionTimeout time.Duration
	// RetentionDays is how long rows are kept. Zero means 30.
	RetentionDays int
	// EnsureTopics creates the topics that are missing.
	EnsureTopics bool
	// SkipMigrations leaves the schema alone (it must be current).
	SkipMigrations bool
}

// DefaultBatchBytes is the default Config.BatchBytes.
const DefaultBatchBytes = 16 << 20

func (c *Config) setDefaults() {
	if c.BatchRows == 0 {
		c.BatchRows = 50_000
	}
	if c.BatchBytes == 0 {
		c.BatchBytes = DefaultBatchBytes
	}
	if c.BatchInterval == 0 {
		c.BatchInterval = time.Second
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = 30 * time.Second
	}
	if c.FetchMaxBytes == 0 {
		c.FetchMaxBytes = 16 << 20
	}
	if c.FetchMaxWait == 0 {
		c.FetchMaxWait = 250 * time.Millisecond
	}
	if c.SessionTimeout == 0 {
		c.SessionTimeout = 10 * time.Second
	}
	if c.RetentionDays == 0 {
		c.RetentionDays = 30
	}
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	var errs []error
	if c.Group == "" {
		errs = append(errs, errors.New("sink: a consumer group is needed"))
	}
	if c.ClickHouse == nil || len(c.ClickHouse.Addr) == 0 {
		errs = append(errs, errors.New("sink: a ClickHouse address is needed"))
	}
	if c.BatchRows < 1 {
		errs = append(errs, errors.New("sink: BatchRows must be at least 1"))
	}
	if c.BatchBytes < 1 {
		errs = append(errs, errors.New("sink: BatchBytes must be at least 1"))
	}
	if c.RetentionDays < 1 {
		errs = append(errs, errors.New("sink: RetentionDays must be at least 1"))
	}
	if c.Pipeline == nil {
		errs = append(errs, errors.New("sink: a pipeline is needed"))
	}
	n := len(c.DLQTopics)
	for _, t := range c.Topics {
		if t != "" {
			n++
		}
	}
	if n == 0 {
		errs = append(errs, errors.New("sink: no topic to read"))
	}
	return errors.Join(errs...)
}
