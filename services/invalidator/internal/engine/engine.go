package engine

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/freshet/freshet/pkg/codec"
	"github.com/freshet/freshet/pkg/events"
	"github.com/freshet/freshet/pkg/kafka"
	"github.com/freshet/freshet/pkg/lifecycle"
	"github.com/freshet/freshet/pkg/logging"
	"github.com/freshet/freshet/pkg/pipeline"
	"github.com/freshet/freshet/services/invalidator/internal/target"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
)

// Headers a dead-lettered purge carries besides pkg/kafka's freshet.dlq.*
// ones (whose freshet.dlq.error holds the reason).
const (
	HeaderTarget   = "freshet.purge.target"   // the target's name
	HeaderKeys     = "freshet.purge.keys"     // the keys it was to purge there, space-separated
	HeaderURLs     = "freshet.purge.urls"     // the urls, space-separated
	HeaderPrefixes = "freshet.purge.prefixes" // the prefixes, space-separated
)

// Stage is the stage name of the latency samples: from the source commit
// to the last target's ack.
const Stage = "commit_to_purged"

// StageConsumed is the trace stage the invalidator marks when it read a
// change; the audit and latency records carry it.
const StageConsumed = "invalidator_consumed"

// Option tunes New.
type Option func(*options)

type options struct {
	reg   prometheus.Registerer
	codec *codec.Codec
}

// WithRegisterer registers the metrics with reg instead of
// prometheus.DefaultRegisterer.
func WithRegisterer(reg prometheus.Registerer) Option { return func(o *options) { o.reg = reg } }

// WithCodec uses c instead of a codec of the engine's own.
func WithCodec(c *codec.Codec) Option { return func(o *options) { o.codec = c } }

// Engine is the invalidator. See the package doc.
type Engine struct {
	cfg     Config
	log     *zap.Logger
	codec   *codec.Codec
	m       *metrics
	cl      *kgo.Client
	adm     *kadm.Client
	dlq     *kafka.DLQ
	senders []*sender
	flight  *inflight
	ready   lifecycle.ReadyFlag

	readyMu  sync.Mutex
	prepared bool // the topics are there
	joined   bool // the consumer joined its group (kgo called assigned)

	mu    sync.Mutex
	parts map[string]map[int32]*partition

	commitMu  sync.Mutex // one commit at a time
	closeOnce sync.Once
}

// New builds an Engine; Run connects.
func New(cfg Config, log *zap.Logger, opts ...Option) (*Engine, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	o := options{reg: prometheus.DefaultRegisterer}
	for _, opt := range opts {
		opt(&o)
	}
	if log == nil {
		log = zap.NewNop()
	}
	if err := cfg.Pipeline.CheckEnv(cfg.Lookup); err != nil {
		return nil, err
	}
	e := &Engine{cfg: cfg, log: log, codec: o.codec, flight: newInflight(), parts: map[string]map[int32]*partition{}}
	if e.codec == nil {
		var err error
		if e.codec, err = codec.New(codec.WithRegistry(cfg.Kafka.SchemaRegistryURL)); err != nil {
			return nil, fmt.Errorf("engine: codec: %w", err)
		}
	}
	var err error
	if e.m, err = newMetrics(o.reg); err != nil {
		return nil, fmt.Errorf("engine: metrics: %w", err)
	}
	for i := range cfg.Pipeline.Invalidation.Targets {
		t := &cfg.Pipeline.Invalidation.Targets[i]
		tgt, err := target.New(t, cfg.Lookup, cfg.HTTPClient)
		if err != nil {
			return nil, fmt.Errorf("engine: %w", err)
		}
		e.senders = append(e.senders, newSender(t, tgt, logging.Named(log, "target").With(zap.String("target", t.Name)), e.m, cfg.MaxInFlight/2, e.finishBatch))
	}
	kopts, err := kafka.Opts(cfg.Kafka, logging.Named(log, "kafka"))
	if err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	kopts = append(kopts,
		kgo.ConsumerGroup(cfg.Group),
		kgo.ConsumeTopics(cfg.Topics.Content),
		kgo.DisableAutoCommit(),
		// A rebalance waits until a poll's records are tracked (AllowRebalance
		// in poll), so a revoked partition never gets records after its
		// tracker was committed and dropped.
		kgo.BlockRebalanceOnPoll(),
		kgo.SessionTimeout(cfg.SessionTimeout),
		kgo.HeartbeatInterval(min(3*time.Second, cfg.SessionTimeout/3)),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.OnPartitionsAssigned(e.assigned),
		kgo.OnPartitionsRevoked(e.revoked),
		kgo.OnPartitionsLost(e.lost),
	)
	if e.cl, err = kgo.NewClient(kopts...); err != nil {
		return nil, fmt.Errorf("engine: kafka client: %w", err)
	}
	e.adm = kadm.NewClient(e.cl)
	e.dlq = kafka.NewDLQ(e.cl, kafka.DLQOptions{Component: "invalidator/decode"})
	e.setReadiness()
	return e, nil
}

// Name implements lifecycle.Named.
func (e *Engine) Name() string { return "invalidator" }

// Ready implements lifecycle.Readier: ready once the topics are there and
// the consumer joined its group and got its first assignment (possibly
// empty: more instances than partitions), so a change produced after Ready
// is read at once and not after the join.
func (e *Engine) Ready() error { return e.ready.Ready() }

// setReadiness updates the ready flag from prepared and joined.
func (e *Engine) setReadiness() {
	e.readyMu.Lock()
	defer e.readyMu.Unlock()
	switch {
	case !e.prepared:
		e.ready.SetNotReady(errors.New("starting"))
	case !e.joined:
		e.ready.SetNotReady(fmt.Errorf("joining consumer group %s", e.cfg.Group))
	default:
		e.ready.SetReady()
	}
}

// Run consumes and purges until ctx is done; it returns nil then. The
// offsets of done changes are committed before it returns.
func (e *Engine) Run(ctx context.Context) error {
	if err := e.prepare(ctx); err != nil {
		return err
	}
	e.readyMu.Lock()
	e.prepared = true
	e.readyMu.Unlock()
	e.setReadiness()
	var wg sync.WaitGroup
	sendCtx, stopSenders := context.WithCancel(context.WithoutCancel(ctx))
	for _, s := range e.senders {
		wg.Add(1)
		go func() { defer wg.Done(); s.run(sendCtx) }()
	}
	commitDone := make(chan struct{})
	go func() {
		defer close(commitDone)
		every(ctx, e.cfg.CommitInterval, func() { e.commit(ctx) })
	}()
	stop := context.AfterFunc(ctx, e.flight.wake)
	defer stop()
	go every(ctx, 100*time.Millisecond, e.flight.wake) // a waiting poll loop looks again at failing targets
	err := e.poll(ctx)
	// Shutdown: stop sending (what is in flight is not committed and will
	// be purged again), commit what is done.
	stopSenders()
	wg.Wait()
	<-commitDone
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	e.commit(cctx)
	return err
}

// Close releases the Kafka client; safe to call twice.
func (e *Engine) Close(context.Context) error {
	e.closeOnce.Do(e.cl.Close)
	return nil
}

func (e *Engine) prepare(ctx context.Context) error {
	if !e.cfg.EnsureTopics {
		return nil
	}
	p, t := e.cfg.Pipeline, e.cfg.Topics
	specs := []kafka.TopicSpec{
		kafka.TopicSpecFor(p, pipeline.TopicContentChanges, t.Content),
		kafka.TopicSpecFor(p, pipeline.DLQTopicName(pipeline.TopicContentChanges), kafka.DLQTopic(t.Content)),
		kafka.TopicSpecFor(p, pipeline.TopicEdgePurges, t.Purges),
		kafka.TopicSpecFor(p, pipeline.TopicPipelineLatency, t.Latency),
	}
	drift, err := kafka.EnsureTopics(ctx, e.adm, specs...)
	if err != nil {
		return fmt.Errorf("engine: topics: %w", err)
	}
	for _, d := range drift {
		e.log.Warn("topic differs from the pipeline", zap.String("drift", d.String()))
	}
	return nil
}

// poll is the consume loop.
func (e *Engine) poll(ctx context.Context) error {
	for {
		e.flight.waitBelow(e.cfg.MaxInFlight, func() bool { return ctx.Err() != nil }, func() {
			for _, s := range e.senders {
				s.shedIfFailing()
			}
		})
		fs := e.cl.PollRecords(ctx, 10000)
		if ctx.Err() != nil {
			e.cl.AllowRebalance()
			return nil
		}
		if fs.IsClientClosed() {
			return errors.New("engine: kafka client closed")
		}
		fs.EachError(func(topic string, part int32, err error) {
			if !errors.Is(err, context.Canceled) {
				e.log.Warn("fetch", zap.String("topic", topic), zap.Int32("partition", part), zap.Error(err))
			}
		})
		var recs []*kgo.Record
		fs.EachRecord(func(r *kgo.Record) { recs = append(recs, r) })
		var err error
		if len(recs) > 0 {
			err = e.handle(ctx, recs)
		}
		e.cl.AllowRebalance()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
}

// handle decodes a poll's records, groups them by source transaction and
// queues the units on the targets.
func (e *Engine) handle(ctx context.Context, recs []*kgo.Record) error {
	e.flight.add(len(recs))
	e.m.inFlight.Add(float64(len(recs)))
	var order []txKey
	groups := map[txKey][]*change{}
	for _, r := range recs {
		c := &change{rec: r, slot: e.partition(r.Topic, r.Partition).add(r.Offset)}
		ev, err := e.decode(ctx, r)
		if err != nil {
			if !codec.IsDataError(err) {
				return err // ctx ended while the registry was away: nothing is dead-lettered
			}
			if err := e.deadLetter(ctx, r, err); err != nil {
				return err
			}
			e.m.changes.WithLabelValues("malformed").Inc()
			e.log.Warn("malformed record to the DLQ", zap.String("topic", r.Topic), zap.Int32("partition", r.Partition), zap.Int64("offset", r.Offset), zap.Error(err))
			e.done(c, false)
			continue
		}
		c.ev = ev
		c.commit = commitTime(ev, r)
		ev.Trace.Mark(StageConsumed, time.Now())
		c.purge = e.cfg.Pipeline.Invalidation.PurgeSet(pipeline.ContentFields(ev))
		if c.purge.Dropped > 0 {
			e.m.dropped.Add(float64(c.purge.Dropped))
		}
		k := txKey{txid: ev.Source.TxID, lsn: ev.Source.CommitLSN, db: ev.Source.DB}
		if k.txid == 0 && k.lsn == 0 {
			k.db = ev.EventID // no transaction: a unit of its own
		}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], c)
	}
	now := time.Now()
	for _, k := range order {
		cs := groups[k]
		units := make([]*unit, len(e.senders))
		for i, s := range e.senders {
			var parts []pipeline.Purge
			var members []*change
			for _, c := range cs {
				sel := s.cfg.Select(c.purge)
				if !sel.Empty() {
					parts = append(parts, sel)
					members = append(members, c)
				}
			}
			if len(members) > 0 {
				units[i] = &unit{changes: members, purge: union(parts), queuedAt: now}
				for _, c := range members {
					c.pending.Add(1)
				}
			}
		}
		for _, c := range cs {
			if c.pending.Load() == 0 {
				e.m.changes.WithLabelValues("nothing").Inc()
				e.done(c, false)
			}
		}
		for i, u := range units {
			if u != nil {
				e.senders[i].enqueue(u)
			}
		}
	}
	return nil
}

// done ends a change: its offset may be committed once those before it are
// done; with sample, its latency sample is produced.
func (e *Engine) done(c *change, sample bool) {
	if sample {
		now := time.Now()
		d := now.Sub(c.commit)
		e.m.lastAck.Observe(d.Seconds())
		outcome := "purged"
		if c.failed.Load() {
			outcome = "dead_lettered"
		}
		e.m.changes.WithLabelValues(outcome).Inc()
		e.produceLatency(c, d, now, outcome)
	}
	c.slot.finish()
	e.flight.done()
	e.m.inFlight.Dec()
}

// finishBatch is called by a sender when a batch ended: the failed
// requests' units go to the DLQ, the audit record is produced, and each
// change is told its target is done.
func (e *Engine) finishBatch(ctx context.Context, b *batch) {
	name := b.target.Name
	failed := map[int]error{}
	for _, r := range b.reqs {
		if r.err != nil {
			for _, i := range r.units {
				if _, ok := failed[i]; !ok {
					failed[i] = r.err
				}
			}
		}
	}
	for i, u := range b.units {
		err, bad := failed[i]
		if bad {
			for _, c := range u.changes {
				if !e.deadLetterPurge(ctx, c, b.target, err) {
					return // shutting down: not done, purged again after a restart
				}
				c.failed.Store(true)
			}
		}
	}
	e.produceAudit(b)
	for i, u := range b.units {
		_, bad := failed[i]
		for _, c := range u.changes {
			if !bad {
				e.m.latency.WithLabelValues(name).Observe(b.finished.Sub(c.commit).Seconds())
			}
			if c.pending.Add(-1) == 0 {
				e.done(c, true)
			}
		}
	}
}

// decode decodes a content change. A failure that is not the record's
// fault (the schema registry unreachable) is retried, with backoff, until it
// decodes, fails for good, or ctx ends: a good record is never dead-lettered
// for a registry outage.
func (e *Engine) decode(ctx context.Context, r *kgo.Record) (*events.ContentChange, error) {
	for backoff := 100 * time.Millisecond; ; backoff = min(2*backoff, 5*time.Second) {
		ev, err := e.codec.DecodeChange(ctx, r.Topic, r.Value)
		if !codec.IsTransient(err) {
			return ev, err
		}
		e.log.Warn("decode (transient), retrying", logging.Record(r), zap.Duration("backoff", backoff), zap.Error(err))
		select {
		case <-ctx.Done():
			return nil, errors.Join(err, ctx.Err())
		case <-time.After(backoff):
		}
	}
}

// deadLetter sends an undecodable record to the DLQ, retrying while Kafka
// refuses, until ctx is done.
func (e *Engine) deadLetter(ctx context.Context, r *kgo.Record, reason error) error {
	for {
		err := e.dlq.Send(ctx, r, reason)
		if err == nil {
			return nil
		}
		e.log.Warn("dlq produce failed, retrying", zap.Error(err))
		if sleep(ctx, time.Second) != nil {
			return ctx.Err()
		}
	}
}

// deadLetterPurge sends a change whose purge on t failed to the DLQ with
// the target and what it was to purge there, retrying while Kafka refuses.
// It reports false when it gave up because ctx is done (shutting down).
func (e *Engine) deadLetterPurge(ctx context.Context, c *change, t *pipeline.Target, reason error) bool {
	dead := e.dlq.Record(c.rec, reason, time.Now())
	sel := t.Select(c.purge)
	for i, h := range dead.Headers {
		if h.Key == kafka.HeaderComponent {
			dead.Headers[i].Value = []byte("invalidator/purge")
		}
	}
	dead.Headers = append(dead.Headers,
		kgo.RecordHeader{Key: HeaderTarget, Value: []byte(t.Name)},
		kgo.RecordHeader{Key: HeaderKeys, Value: []byte(strings.Join(sel.Keys, " "))},
		kgo.RecordHeader{Key: HeaderURLs, Value: []byte(strings.Join(sel.URLs, " "))},
		kgo.RecordHeader{Key: HeaderPrefixes, Value: []byte(strings.Join(sel.Prefixes, " "))},
	)
	e.log.Warn("purge to the DLQ", zap.String("event_id", c.ev.EventID), zap.String("target", t.Name), zap.Error(reason))
	for {
		pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := e.cl.ProduceSync(pctx, dead).FirstErr()
		cancel()
		if err == nil {
			return true
		}
		if ctx.Err() != nil || errors.Is(err, kgo.ErrClientClosed) {
			return false
		}
		e.log.Warn("dlq produce failed, retrying", zap.String("target", t.Name), zap.Error(err))
		if sleep(ctx, time.Second) != nil {
			return false
		}
	}
}

// MaxAuditBytes bounds the encoded size of an audit record, well below the
// broker's message limit (1 MB by default): the audit of a batch whose
// change ids, keys and urls take more is split into several records (see
// produceAudit).
const MaxAuditBytes = 512 << 10

// auditListBytes is what the lists of one audit record (change ids, keys,
// urls) may take, encoded; the rest of MaxAuditBytes is left for its other
// fields: the oldest change's source and trace, and an error (a target's
// errors keep at most 512 bytes of an answer).
const auditListBytes = 384 << 10

// produceAudit produces the audit of a finished batch: one record, or, when
// its lists take more than auditListBytes, several, each with a slice of
// the change ids, keys and urls (every one in exactly one record) and the
// batch's other fields. Each record says which part it is (Part, from 1)
// of how many (Parts), 1 of 1 for a single record, so that readers count a
// batch, its attempts and its latency once (from part 1), not once per
// part. The event id of a single record is events.ID(target, change
// ids...), that of part i of n events.ID(that id, i, n): the same for the
// same batch after a replay.
func (e *Engine) produceAudit(b *batch) {
	oldest := b.units[0].changes[0]
	var ids []string
	var keys, urls []string
	for _, u := range b.units {
		for _, c := range u.changes {
			ids = append(ids, c.ev.EventID)
			if c.commit.Before(oldest.commit) {
				oldest = c
			}
		}
	}
	a := events.PurgeAudit{
		EventID:    events.ID(append([]string{b.target.Name}, ids...)...),
		Source:     oldest.ev.Source,
		Trace:      oldest.ev.Trace.Clone(),
		Target:     b.target.Name,
		Provider:   b.target.Type,
		Soft:       b.target.Soft,
		Outcome:    events.OutcomeAcked,
		StartedAt:  b.started,
		FinishedAt: b.finished,
	}
	a.Trace.Mark("purged", b.finished)
	for _, r := range b.reqs {
		if r.urls != nil {
			urls = append(urls, r.urls...) // their url keys are how they went
		} else {
			keys = append(keys, r.req.Keys...)
		}
		urls = append(urls, r.req.URLs...)
		for _, p := range r.req.Prefixes {
			urls = append(urls, p+"*") // a prefix, in the audit's urls
		}
		a.Attempts += r.attempts
		a.StatusCode = r.status
		if r.purgeID != "" {
			a.PurgeID = r.purgeID
		}
		if r.err != nil {
			a.Outcome, a.Error = events.OutcomeFailed, r.err.Error()
		}
	}
	a.LatencyFromCommit = b.finished.Sub(oldest.commit)
	parts := splitAudit(auditListBytes, ids, keys, urls)
	for i, p := range parts {
		part := a
		part.ChangeEventIDs, part.Keys, part.URLs = p[0], p[1], p[2]
		part.Part, part.Parts = i+1, len(parts)
		if len(parts) > 1 {
			part.EventID = events.ID(a.EventID, strconv.Itoa(i+1), strconv.Itoa(len(parts)))
		}
		e.produce(e.cfg.Topics.Purges, []byte(b.target.Name), part)
	}
}

// splitAudit cuts an audit's change ids, keys and urls into parts whose
// encoded lists take at most budget bytes each, filling each part in
// order: ids, then keys, then urls. A string costs its length and its
// length's varint (at most 5 bytes); a string over the budget alone is a
// part of its own. Each part holds the three lists in that order (ids,
// keys, urls), nil where empty; there is always at least one part.
func splitAudit(budget int, ids, keys, urls []string) [][3][]string {
	parts := [][3][]string{{}}
	used := 0
	for l, list := range [3][]string{ids, keys, urls} {
		for _, s := range list {
			cost := len(s) + binary.MaxVarintLen32
			if used > 0 && used+cost > budget {
				parts = append(parts, [3][]string{})
				used = 0
			}
			p := &parts[len(parts)-1]
			p[l] = append(p[l], s)
			used += cost
		}
	}
	return parts
}

func (e *Engine) produceLatency(c *change, d time.Duration, at time.Time, outcome string) {
	src, tr := c.ev.Source, c.ev.Trace.Clone()
	tr.Mark(Stage, at)
	s := events.LatencySample{
		EventID:        events.ID(c.ev.EventID, "invalidator", Stage),
		Source:         &src,
		Trace:          &tr,
		SubjectEventID: c.ev.EventID,
		Service:        "invalidator",
		Instance:       e.cfg.Instance,
		Stage:          Stage,
		Duration:       d,
		At:             at,
		Labels:         map[string]string{"outcome": outcome, "topic": c.rec.Topic, "partition": strconv.Itoa(int(c.rec.Partition))},
	}
	e.produce(e.cfg.Topics.Latency, []byte("invalidator"), s)
}

// produce sends an audit or latency record without waiting; the commit
// loop flushes before it commits.
func (e *Engine) produce(topic string, key []byte, ev events.Event) {
	val, err := e.codec.EncodeEvent(context.Background(), topic, ev)
	if err != nil {
		e.log.Error("encode", zap.String("topic", topic), zap.Error(err))
		return
	}
	e.cl.Produce(context.Background(), &kgo.Record{Topic: topic, Key: key, Value: val}, func(_ *kgo.Record, err error) {
		if err != nil && !errors.Is(err, kgo.ErrClientClosed) {
			e.log.Warn("produce", zap.String("topic", topic), zap.Error(err))
		}
	})
}

// commitTime is the change's source commit time; the trace's, or the
// record's timestamp, when the source has none.
func commitTime(ev *events.ContentChange, r *kgo.Record) time.Time {
	switch {
	case !ev.Source.CommitTime.IsZero():
		return ev.Source.CommitTime
	case !ev.Trace.CommittedAt.IsZero():
		return ev.Trace.CommittedAt
	}
	return r.Timestamp
}
