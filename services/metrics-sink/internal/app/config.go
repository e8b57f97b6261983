package app

import (
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/freshet/freshet/pkg/config"
)

// Config is the metrics-sink's configuration, read from FRESHET_* variables.
type Config struct {
	config.Common
	ClickHouse ClickHouse `env:"CLICKHOUSE"`
	Sink       Sink       `env:"SINK"`
}

// ClickHouse says how to reach ClickHouse (native protocol). The local stack
// and docker compose set FRESHET_CLICKHOUSE_ADDR and
// FRESHET_CLICKHOUSE_DATABASE for every service.
type ClickHouse struct {
	// Addr lists the servers, host:port of the native protocol. Default
	// 127.0.0.1:9000.
	Addr []string `env:"ADDR" default:"127.0.0.1:9000" help:"ClickHouse servers, host:port of the native protocol."`
	// Database is created if missing. Default freshet.
	Database string `env:"DATABASE" default:"freshet" help:"Database of the tables (created if missing)."`
	// User is the ClickHouse user. Default default.
	User string `env:"USER" default:"default" help:"ClickHouse user."`
	// Password is the user's password; never printed.
	Password config.Secret `env:"PASSWORD" help:"Password of the ClickHouse user (never printed)."`
	// DialTimeout bounds a connection attempt. Default 5s.
	DialTimeout time.Duration `env:"DIAL_TIMEOUT" default:"5s" help:"How long a connection attempt to ClickHouse may take."`
	// ReadTimeout bounds the wait for an answer. Default 60s.
	ReadTimeout time.Duration `env:"READ_TIMEOUT" default:"60s" help:"How long the sink waits for ClickHouse to answer an insert or a query before it retries."`
}

// Validate checks the addresses and the database name.
func (c *ClickHouse) Validate() error {
	if len(c.Addr) == 0 {
		return config.FieldErrorf("Addr", "at least one address is needed")
	}
	for _, a := range c.Addr {
		if err := validHostPort(a); err != nil {
			return config.FieldErrorf("Addr", "%q: %v", a, err)
		}
	}
	if !identRe.MatchString(c.Database) {
		return config.FieldErrorf("Database", "%q: want letters, digits and underscores", c.Database)
	}
	if c.DialTimeout <= 0 || c.ReadTimeout <= 0 {
		return config.FieldErrorf("ReadTimeout", "timeouts must be positive")
	}
	return nil
}

// Options returns the clickhouse-go options. No settings are sent: 18.16
// takes only integer or boolean ones.
func (c *ClickHouse) Options() *clickhouse.Options {
	return &clickhouse.Options{
		Protocol:    clickhouse.Native,
		Addr:        c.Addr,
		Auth:        clickhouse.Auth{Database: c.Database, Username: c.User, Password: c.Password.Reveal()},
		DialTimeout: c.DialTimeout,
		ReadTimeout: c.ReadTimeout,
	}
}

// Sink holds the variables of the metrics-sink itself (FRESHET_SINK_*).
type Sink struct {
	// Group is the consumer group of the sink instances. Default
	// metrics-sink.
	Group string `env:"GROUP" default:"metrics-sink" help:"Consumer group of the metrics-sink instances; instances of one deployment share it and split the partitions."`
	// BeaconsTopic, LatencyTopic, PurgesTopic and DeliveriesTopic name the
	// inputs; an empty name leaves the input out.
	BeaconsTopic    string `env:"BEACONS_TOPIC" default:"rum.beacons" help:"Topic of the RUM beacons (table rum_beacons); empty: not read."`
	LatencyTopic    string `env:"LATENCY_TOPIC" default:"pipeline.latency" help:"Topic of the latency samples (table latency_samples); empty: not read."`
	PurgesTopic     string `env:"PURGES_TOPIC" default:"edge.purges" help:"Topic of the purge audits (table edge_purges); empty: not read."`
	DeliveriesTopic string `env:"DELIVERIES_TOPIC" default:"content.deliveries" help:"Topic of the deliveries, read for their ids only (table deliveries: which change a browser's SSE lag belongs to); empty: not read, and freshness has no browser path."`
	// DLQTopics are counted in dlq_records.
	DLQTopics []string `env:"DLQ_TOPICS" default:"content.changes.dlq,user.profiles.dlq,content.deliveries.dlq,rum.beacons.dlq,pipeline.latency.dlq,edge.purges.dlq" help:"Dead letter topics whose records are counted in dlq_records (headers only: source topic, component, error)."`
	// BatchRows flushes at this many rows. Default 50000.
	BatchRows int `env:"BATCH_ROWS" default:"50000" help:"Rows of a batch: an insert is sent when this many rows wait."`
	// BatchBytes flushes at this many bytes of record values. Default 16MiB.
	BatchBytes config.ByteSize `env:"BATCH_BYTES" default:"16MiB" help:"Bytes of record values in a batch: an insert is sent when this many wait, whatever the rows (large rows, such as beacons, take several times their bytes in memory)."`
	// BatchInterval flushes a batch this long after its first row.
	// Default 1s.
	BatchInterval time.Duration `env:"BATCH_INTERVAL" default:"1s" help:"Longest wait of a row before its batch is sent."`
	// MaxBackoff bounds the wait between attempts at an insert. Default 30s.
	MaxBackoff time.Duration `env:"MAX_BACKOFF" default:"30s" help:"Longest wait between two attempts at an insert while ClickHouse is unavailable (exponential from 200ms)."`
	// FetchMaxBytes bounds a fetch response. Default 4MiB.
	FetchMaxBytes config.ByteSize `env:"FETCH_MAX_BYTES" default:"4MiB" help:"Largest fetch response: bounds what the Kafka client buffers while ClickHouse is unavailable."`
	// FetchMaxWait is how long a fetch waits for data. Default 250ms.
	FetchMaxWait time.Duration `env:"FETCH_MAX_WAIT" default:"250ms" help:"Longest wait of a fetch at the broker for a quarter of FETCH_MAX_BYTES before it returns what there is: fewer, larger fetches for the broker to serve; at most this much added to a row's wait."`
	// SessionTimeout is how long the group waits for a crashed instance.
	// Default 10s.
	SessionTimeout time.Duration `env:"SESSION_TIMEOUT" default:"10s" help:"How long the group waits for a silent (crashed) instance before its partitions move to the others (at least the broker's minimum, 6s on Kafka)."`
	// MemoryLimit is the Go runtime's soft memory limit. Default 200MiB.
	MemoryLimit config.ByteSize `env:"MEMORY_LIMIT" default:"200MiB" help:"Soft memory limit of the Go runtime (debug.SetMemoryLimit): the garbage collector works harder near it, and with a limit it runs when the heap is 5 times what is live (GOGC 400) rather than twice. GOMEMLIMIT and GOGC, when set, win. 0: none."`
	// RetentionDays is how long rows are kept. Default 30.
	RetentionDays int `env:"RETENTION_DAYS" default:"30" help:"Days rows are kept: a TTL on ClickHouse 19.6 and later, dropped day partitions (hourly) before."`
	// EnsureTopics creates missing topics. Default true.
	EnsureTopics bool `env:"ENSURE_TOPICS" default:"true" help:"Create missing input topics and their DLQs with the pipeline's settings; refuse incompatible existing ones."`
	// Pprof serves /debug/pprof/ on the admin listener. Default false.
	Pprof bool `env:"PPROF" default:"false" help:"Serve /debug/pprof/ on the admin listener."`
}

// Validate checks what Load cannot.
func (s *Sink) Validate() error {
	if s.BatchRows < 1 {
		return config.FieldErrorf("BatchRows", "must be at least 1")
	}
	if s.BatchBytes < 1 {
		return config.FieldErrorf("BatchBytes", "must be at least 1 byte")
	}
	if s.BatchInterval <= 0 {
		return config.FieldErrorf("BatchInterval", "must be positive")
	}
	if s.MaxBackoff < 200*time.Millisecond {
		return config.FieldErrorf("MaxBackoff", "must be at least 200ms")
	}
	if s.FetchMaxBytes < 64*config.KiB || s.FetchMaxBytes > 1<<30 {
		return config.FieldErrorf("FetchMaxBytes", "must be between 64KiB and 1GiB")
	}
	if s.FetchMaxWait < 10*time.Millisecond || s.FetchMaxWait > 10*time.Second {
		return config.FieldErrorf("FetchMaxWait", "must be between 10ms (the Kafka client's least) and 10s")
	}
	if s.SessionTimeout < time.Second {
		return config.FieldErrorf("SessionTimeout", "must be at least 1s")
	}
	if s.MemoryLimit < 0 {
		return config.FieldErrorf("MemoryLimit", "must not be negative")
	}
	if s.RetentionDays < 1 {
		return config.FieldErrorf("RetentionDays", "must be at least 1")
	}
	if s.Group == "" {
		return config.FieldErrorf("Group", "must not be empty")
	}
	return nil
}
