package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/freshet/freshet/pkg/codec"
	"github.com/freshet/freshet/pkg/kafka"
	"github.com/freshet/freshet/pkg/lifecycle"
	"github.com/freshet/freshet/pkg/logging"
	"github.com/freshet/freshet/pkg/pipeline"
	"github.com/freshet/freshet/services/personalizer/internal/profiles"
	"github.com/freshet/freshet/services/personalizer/internal/scoring"
	"github.com/freshet/freshet/services/personalizer/internal/wire"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
)

// Engine is the personalizer's consume-score-produce loop. See the package
// doc for its guarantees.
type Engine struct {
	cfg    Config
	log    *zap.Logger
	codec  *codec.Codec
	now    func() time.Time
	m      *metrics
	opts   []kgo.Opt // the brokers, TLS, SASL, logger
	sess   *kgo.GroupTransactSession
	adm    *kadm.Client
	dlq    *kafka.DLQ
	table  *profiles.Table
	scorer *scoring.Scorer
	rules  *pipeline.Personalization

	// content is the direct consumer of content.changes; nil while the
	// instance owns no partition.
	content *kgo.Client
	// carry are changes polled and not yet scored: a transaction ended at
	// MaxDeliveriesPerTransaction. The next one starts with them.
	carry     []*kgo.Record
	contentN  int32 // content.changes partitions
	profilesN int32 // user.profiles (= content.deliveries) partitions
	dlqParts  map[string]int32
	owned     map[int32]*partState
	ownedN    atomic.Int32 // len(owned), for the group's callbacks
	ready     lifecycle.ReadyFlag
	events    assignEvents
	closeOnce sync.Once
	// retryWait is the wait after a transaction aborted for a record that
	// could not be decoded for now (doubling to 5s; 0 after a commit).
	retryWait  time.Duration
	hitScratch []scoring.Hit
}

// partState is what the engine knows of one owned user.profiles partition.
type partState struct {
	// progress is the next content offset to process, by content
	// partition, for this partition's users; committed is its value at
	// the last commit.
	progress, committed wire.Progress
	// profileNext is the next user.profiles offset to apply;
	// profileCommitted its value at the last commit.
	profileNext, profileCommitted int64
}

// assignEvents carries the group's callbacks to the loop.
type assignEvents struct {
	mu      sync.Mutex
	added   []int32
	removed []int32
}

func (a *assignEvents) push(added bool, parts []int32) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if added {
		a.added = append(a.added, parts...)
	} else {
		a.removed = append(a.removed, parts...)
	}
}

func (a *assignEvents) take() (added, removed []int32) {
	a.mu.Lock()
	defer a.mu.Unlock()
	added, removed = a.added, a.removed
	a.added, a.removed = nil, nil
	return added, removed
}

// New builds an Engine. It does not connect: Run does.
func New(cfg Config, log *zap.Logger, opts ...Option) (*Engine, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	o := options{reg: prometheus.DefaultRegisterer, now: time.Now}
	for _, opt := range opts {
		opt(&o)
	}
	if log == nil {
		log = zap.NewNop()
	}
	c := o.codec
	if c == nil {
		var err error
		if c, err = codec.New(codec.WithRegistry(cfg.Kafka.SchemaRegistryURL)); err != nil {
			return nil, fmt.Errorf("engine: codec: %w", err)
		}
	}
	up, _ := cfg.Pipeline.Topic(pipeline.TopicUserProfiles)
	e := &Engine{
		cfg:       cfg,
		log:       log,
		codec:     c,
		now:       o.now,
		table:     profiles.New(0),
		rules:     &cfg.Pipeline.Personalization,
		owned:     map[int32]*partState{},
		profilesN: up.Partitions,
	}
	e.scorer = scoring.New(e.rules, int(up.Partitions))
	e.ready.SetNotReady(errors.New("waiting for partitions"))
	var err error
	if e.m, err = newMetrics(o.reg, func() float64 { return float64(e.table.Len()) }); err != nil {
		return nil, fmt.Errorf("engine: metrics: %w", err)
	}
	if e.opts, err = kafka.Opts(cfg.Kafka, logging.Named(log, "kafka")); err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	e.dlqParts = map[string]int32{}
	for _, t := range []string{cfg.Topics.Content, cfg.Topics.Profiles} {
		e.dlqParts[kafka.DLQTopic(t)] = cfg.Pipeline.DLQ.Partitions
	}
	sessOpts := append(append([]kgo.Opt{}, e.opts...),
		kgo.ConsumerGroup(cfg.Group),
		kgo.ConsumeTopics(cfg.Topics.Profiles),
		kgo.TransactionalID(cfg.TransactionalID),
		kgo.TransactionTimeout(cfg.TransactionTimeout),
		kgo.SessionTimeout(cfg.SessionTimeout),
		kgo.HeartbeatInterval(min(3*time.Second, cfg.SessionTimeout/3)),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.BlockRebalanceOnPoll(),
		kgo.RecordPartitioner(kgo.BasicConsistentPartitioner(e.partitioner)),
		kgo.MaxBufferedRecords(1<<20),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			e.events.push(true, m[cfg.Topics.Profiles])
			// franz-go calls this after every join, even when nothing is
			// assigned: an instance that owns nothing and has nothing to
			// restore is ready (and idle).
			if len(m[cfg.Topics.Profiles]) == 0 && e.ownedN.Load() == 0 && !e.pendingAssignment() {
				e.ready.SetReady()
			}
		}),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			e.events.push(false, m[cfg.Topics.Profiles])
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			e.events.push(false, m[cfg.Topics.Profiles])
		}),
	)
	if e.sess, err = kgo.NewGroupTransactSession(sessOpts...); err != nil {
		return nil, fmt.Errorf("engine: kafka session: %w", err)
	}
	e.adm = kadm.NewClient(e.sess.Client())
	e.dlq = kafka.NewDLQ(e.sess.Client(), kafka.DLQOptions{Component: "personalizer/decode"})
	return e, nil
}

// keyHash is Kafka's default partitioner (murmur2) for keyed records: for
// a non-nil key it is a pure function of the key, safe for concurrent use.
// It is built once: building one seeds a random source, which cost 5-11%
// of the personalizer's CPU when it was done for every record.
var keyHash = kgo.StickyKeyPartitioner(nil).ForTopic("")

// kafkaHash is the partition of a key among n, as Kafka's default
// partitioner (murmur2) chooses it.
func kafkaHash(key []byte, n int) int {
	if key == nil {
		key = []byte{} // a nil key would take the sticky (random, stateful) path
	}
	return keyHash.Partition(&kgo.Record{Key: key}, n)
}

// partitioner sends deliveries to the partition set on the record (the
// user's partition, or the channel's) and other records by their key, as
// Kafka's default partitioner does.
func (e *Engine) partitioner(topic string) func(*kgo.Record, int) int {
	if topic == e.cfg.Topics.Deliveries {
		return func(r *kgo.Record, _ int) int { return int(r.Partition) }
	}
	return func(r *kgo.Record, n int) int {
		if len(r.Key) == 0 {
			return 0
		}
		return kafkaHash(r.Key, n)
	}
}

// Name implements lifecycle.Named.
func (e *Engine) Name() string { return "personalizer" }

// Ready implements lifecycle.Readier: ready once the partitions of the first
// assignment are restored.
func (e *Engine) Ready() error { return e.ready.Ready() }

// Run consumes, scores and produces until ctx is cancelled; it returns nil
// then. It returns an error when the transactional producer fails for good
// (fenced by another instance with the same transactional id, or the broker
// refused a commit for a reason that is not a rebalance).
func (e *Engine) Run(ctx context.Context) error {
	if err := e.prepare(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	for ctx.Err() == nil {
		if err := e.handleAssignment(ctx); err != nil {
			if ctx.Err() != nil {
				break
			}
			return err
		}
		if err := e.step(ctx); err != nil {
			if ctx.Err() != nil {
				break
			}
			return err
		}
	}
	return nil
}

// prepare ensures the topics and learns their partition counts.
func (e *Engine) prepare(ctx context.Context) error {
	t := e.cfg.Topics
	if e.cfg.EnsureTopics {
		var specs []kafka.TopicSpec
		for name, canonical := range map[string]string{t.Content: pipeline.TopicContentChanges, t.Profiles: pipeline.TopicUserProfiles,
			t.Deliveries: pipeline.TopicContentDeliveries, t.Latency: pipeline.TopicPipelineLatency} {
			spec := kafka.TopicSpecFor(e.cfg.Pipeline, canonical, name)
			specs = append(specs, spec)
			if name == t.Content || name == t.Profiles {
				dlq := e.cfg.Pipeline.DLQTopic(canonical)
				specs = append(specs, kafka.TopicSpec{Name: kafka.DLQTopic(name), Partitions: dlq.Partitions,
					ReplicationFactor: dlq.ReplicationFactor, CleanupPolicy: kafka.CleanupDelete, Retention: dlq.Retention.Duration()})
			}
		}
		drift, err := kafka.EnsureTopics(ctx, e.adm, specs...)
		if err != nil {
			return fmt.Errorf("engine: topics: %w", err)
		}
		for _, d := range drift {
			e.log.Warn("topic differs from the pipeline", zap.String("drift", d.String()))
		}
	}
	// Topics just created take a moment to show in the metadata.
	var details kadm.TopicDetails
	for attempt := 0; ; attempt++ {
		var err error
		if details, err = e.adm.ListTopics(ctx, t.Content, t.Profiles, t.Deliveries); err != nil {
			return fmt.Errorf("engine: list topics: %w", err)
		}
		missing := ""
		for _, name := range []string{t.Content, t.Profiles, t.Deliveries} {
			if d, ok := details[name]; !ok || d.Err != nil || len(d.Partitions) == 0 {
				missing = name
			}
		}
		if missing == "" {
			break
		}
		if attempt == 50 {
			return fmt.Errorf("engine: topic %s does not exist (set FRESHET_PERSONALIZER_ENSURE_TOPICS or create it)", missing)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	e.contentN = int32(len(details[t.Content].Partitions))
	up, dp := int32(len(details[t.Profiles].Partitions)), int32(len(details[t.Deliveries].Partitions))
	if up != dp {
		return fmt.Errorf("engine: %s has %d partitions and %s %d: they must be co-partitioned", t.Profiles, up, t.Deliveries, dp)
	}
	if up != e.profilesN {
		e.profilesN = up
		e.scorer = scoring.New(e.rules, int(up))
	}
	for dlqTopic := range e.dlqParts {
		if d, ok := details[dlqTopic]; ok && len(d.Partitions) > 0 {
			e.dlqParts[dlqTopic] = int32(len(d.Partitions))
		}
	}
	return nil
}

// Close leaves the group and closes the clients. It is safe to call twice.
func (e *Engine) Close(context.Context) error {
	e.closeOnce.Do(func() {
		if e.content != nil {
			e.content.Close()
		}
		e.sess.CloseAllowingRebalance()
	})
	return nil
}
