package capture

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/freshet/freshet/pkg/codec"
	"github.com/freshet/freshet/pkg/events"
	"github.com/freshet/freshet/pkg/kafka"
	"github.com/freshet/freshet/pkg/pipeline"
)

// Message prefixes of the ingestor's own logical messages.
const (
	HeartbeatPrefix = "freshet.heartbeat"
	WatermarkPrefix = "freshet.watermark"
)

// GCPercent is the garbage collector target the service runs with (unless
// GOGC is set): each row leaves about 2 KB of garbage and the live heap is
// small (the producer's buffer), so Go's default of 100 collects several
// hundred times a second at full speed. 400 roughly doubled the rows per
// second in BenchmarkThroughput, for a heap of at most 5 times the live one.
const GCPercent = 400

// Options configure a Capture.
type Options struct {
	// DSN is the Postgres connection string (a database, not replication:
	// the replication connection adds replication=database). Required.
	DSN string
	// Pipeline declares the captured tables, publication, slot, heartbeat,
	// outbox and snapshot. Required.
	Pipeline *pipeline.Pipeline
	// Client produces the events; it must be idempotent with acks from all
	// replicas (pkg/kafka.NewClient's defaults). Required.
	Client *kgo.Client
	// Codec encodes the events. Required.
	Codec *codec.Codec
	// Metrics, when not nil, are updated.
	Metrics *Metrics
	// Latency, when not nil, receives commit-to-ack samples.
	Latency *LatencySampler
	// StatusInterval is how often the confirmed LSN is sent to Postgres.
	// Zero means 1s.
	StatusInterval time.Duration
	// MaxBackoff caps the wait between reconnections. Zero means 10s.
	MaxBackoff time.Duration
	// TableWait is how often missing tables are looked for. Zero means 2s.
	TableWait time.Duration
	// AckObserver, when not nil, is called with the commit-to-ack time of
	// every event acked (from the producer's goroutines): for benchmarks.
	AckObserver func(time.Duration)
}

// Capture is the replication component: New, then Run.
type Capture struct {
	opts  Options
	log   *zap.Logger
	db    string // database name, source.db of events
	dlq   *kafka.DLQ
	ready atomic.Value // error: nil when streaming
	snap  *snapshotter
	// replay holds what Kafka has of the transactions the session streams
	// again (readback.go); nil once past them. The stream's goroutine only.
	replay *replay
	hooks  hooks
}

// hooks let the package's tests end a session where a crash would; they are
// zero in the service.
type hooks struct {
	// holdConfirm, while true, keeps the slot where it is: a crash after
	// Kafka acked, before the slot was confirmed.
	holdConfirm atomic.Bool
	// drop, when it returns true, keeps a record from being produced, and
	// so its transaction from being confirmed: a crash in the middle of a
	// transaction's produce.
	drop func(*kgo.Record) bool
	// readBackChunk, when not zero, replaces readBackChunk.
	readBackChunk int64
}

// New checks the options; it does not connect.
func New(opts Options, log *zap.Logger) (*Capture, error) {
	if opts.DSN == "" || opts.Pipeline == nil || opts.Client == nil || opts.Codec == nil {
		return nil, errors.New("capture: DSN, Pipeline, Client and Codec are required")
	}
	u, err := url.Parse(opts.DSN)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return nil, fmt.Errorf("capture: DSN must be a postgres:// URL")
	}
	db := strings.TrimPrefix(u.Path, "/")
	if db == "" {
		return nil, fmt.Errorf("capture: DSN names no database")
	}
	if opts.StatusInterval <= 0 {
		opts.StatusInterval = time.Second
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 10 * time.Second
	}
	if opts.TableWait <= 0 {
		opts.TableWait = 2 * time.Second
	}
	c := &Capture{
		opts: opts, log: log, db: db,
		dlq: kafka.NewDLQ(opts.Client, kafka.DLQOptions{Component: "cdc-ingestor/capture"}),
	}
	c.ready.Store(readyErr{errors.New("not connected yet")})
	c.snap = newSnapshotter(c)
	return c, nil
}

type readyErr struct{ err error }

// Name implements lifecycle.Named.
func (c *Capture) Name() string { return "capture" }

// Ready implements lifecycle.Readier: nil while a replication session
// streams.
func (c *Capture) Ready() error { return c.ready.Load().(readyErr).err }

func (c *Capture) setReady(err error) {
	c.ready.Store(readyErr{err})
	if m := c.opts.Metrics; m != nil {
		if err == nil {
			m.Streaming.Set(1)
		} else {
			m.Streaming.Set(0)
		}
	}
}

// Run streams until ctx is cancelled, reconnecting after failures. It
// returns nil on cancellation.
func (c *Capture) Run(ctx context.Context) error {
	hbDone := make(chan struct{})
	go func() { defer close(hbDone); c.heartbeatLoop(ctx) }()
	defer func() { <-hbDone }()

	backoff := 100 * time.Millisecond
	for attempt := 0; ; attempt++ {
		started := time.Now()
		err := c.session(ctx)
		c.setReady(fmt.Errorf("replication session ended: %v", err))
		if ctx.Err() != nil {
			return nil
		}
		// Let the events in flight finish (bounded), so the next session,
		// which streams again from the confirmed LSN, re-sends as few as
		// possible; those it re-sends keep their ids.
		fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_ = c.opts.Client.Flush(fctx)
		cancel()
		if time.Since(started) > time.Minute {
			backoff = 100 * time.Millisecond
		}
		wait := backoff/2 + rand.N(backoff/2+1)
		c.count("stream")
		if c.opts.Metrics != nil {
			c.opts.Metrics.Reconnects.Inc()
		}
		c.log.Warn("replication session ended; connecting again", zap.Error(err), zap.Duration("backoff", wait), zap.Int("attempt", attempt+1))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		backoff = min(backoff*2, c.opts.MaxBackoff)
	}
}

// Close implements lifecycle.Closer. Run releases its connections before it
// returns and the Kafka client belongs to the caller, so there is nothing
// left to release; it is safe to call any number of times.
func (c *Capture) Close(context.Context) error { return nil }

func (c *Capture) count(kind string) {
	if c.opts.Metrics != nil {
		c.opts.Metrics.Errors.WithLabelValues(kind).Inc()
	}
}

// replicationDSN adds replication=database to the DSN.
func replicationDSN(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return dsn
	}
	q := u.Query()
	q.Set("replication", "database")
	u.RawQuery = q.Encode()
	return u.String()
}

// LatencySampler sends commit-to-ack samples to pipeline.latency, at most
// Rate a second; extra samples are dropped (the histogram metric still sees
// every event).
type LatencySampler struct {
	client *kgo.Client
	codec  *codec.Codec
	topic  string
	ch     chan events.LatencySample
	rate   int
}

// NewLatencySampler returns a sampler producing to topic, at most rate
// samples a second (zero: 100).
func NewLatencySampler(client *kgo.Client, c *codec.Codec, topic string, rate int) *LatencySampler {
	if rate <= 0 {
		rate = 100
	}
	return &LatencySampler{client: client, codec: c, topic: topic, ch: make(chan events.LatencySample, rate), rate: rate}
}

// offer hands over a sample without blocking.
func (s *LatencySampler) offer(ls events.LatencySample) {
	select {
	case s.ch <- ls:
	default:
	}
}

// Name implements lifecycle.Named.
func (s *LatencySampler) Name() string { return "latency-sampler" }

// Run produces the samples until ctx is cancelled.
func (s *LatencySampler) Run(ctx context.Context) error {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	budget := s.rate
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			budget = s.rate
		case ls := <-s.ch:
			if budget == 0 {
				continue
			}
			budget--
			ls.EventID = events.ID(ls.SubjectEventID, ls.Service, ls.Stage)
			val, err := s.codec.EncodeEvent(ctx, s.topic, ls)
			if err != nil {
				continue
			}
			s.client.Produce(ctx, &kgo.Record{Topic: s.topic, Key: []byte(ls.Service), Value: val}, nil)
		}
	}
}
