package engine

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/freshet/freshet/pkg/codec"
	"github.com/freshet/freshet/pkg/events"
	"github.com/freshet/freshet/pkg/logging"
	"github.com/freshet/freshet/pkg/pipeline"
	"github.com/freshet/freshet/services/personalizer/internal/scoring"
	"github.com/freshet/freshet/services/personalizer/internal/wire"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"
)

// StageName is the trace stage the personalizer appends to a delivery.
const StageName = "personalizer"

// maxProfilesPerTransaction bounds the profile records applied in one
// transaction.
const maxProfilesPerTransaction = 10000

// step polls changes and profiles and, when there is anything, processes
// them in one transaction.
func (e *Engine) step(ctx context.Context) error {
	var changes []*kgo.Record
	profileWait := e.cfg.PollWait
	switch {
	case len(e.carry) > 0:
		changes, e.carry = e.carry, nil
		profileWait = time.Millisecond
	case e.content != nil:
		changes = poll(ctx, e.log, e.cfg.PollWait, func(c context.Context) kgo.Fetches {
			return e.content.PollRecords(c, e.cfg.MaxChangesPerTransaction)
		})
		profileWait = time.Millisecond
	}
	profs := poll(ctx, e.log, profileWait, func(c context.Context) kgo.Fetches {
		return e.sess.PollRecords(c, maxProfilesPerTransaction)
	})
	if ctx.Err() != nil {
		return nil
	}
	// Partitions assigned or revoked meanwhile: apply that first. The
	// content consumer moves, so the changes polled from it are dropped
	// (it reads them again); the profile records are kept, as the group
	// consumer has moved past them.
	if e.pendingAssignment() {
		if err := e.handleAssignment(ctx); err != nil {
			return err
		}
		changes = nil
	}
	if len(changes) == 0 && len(profs) == 0 {
		e.sess.AllowRebalance()
		return nil
	}
	err := e.transact(ctx, changes, profs)
	e.sess.AllowRebalance()
	return err
}

func (e *Engine) pendingAssignment() bool {
	e.events.mu.Lock()
	defer e.events.mu.Unlock()
	return len(e.events.added)+len(e.events.removed) > 0
}

// poll polls with a timeout and returns the records, logging fetch errors
// other than the timeout.
func poll(ctx context.Context, log *zap.Logger, wait time.Duration, f func(context.Context) kgo.Fetches) []*kgo.Record {
	pctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	fetches := f(pctx)
	fetches.EachError(func(t string, p int32, err error) {
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) || errors.Is(err, kgo.ErrClientClosed) {
			return
		}
		log.Warn("fetch", logging.Topic(t), logging.Partition(p), logging.Error(err))
	})
	return fetches.Records()
}

// txn collects what one transaction produces, and the first produce error.
type txn struct {
	e       *Engine
	ctx     context.Context
	mu      sync.Mutex
	err     error
	users   int
	channel int
	dlq     map[string]int
	// retry is why the transaction must be aborted and its input read
	// again later: a record did not decode for a reason that is not its
	// own (the schema registry did not answer).
	retry error
}

func (t *txn) produce(r *kgo.Record) {
	t.e.sess.Produce(t.ctx, r, func(_ *kgo.Record, err error) {
		if err != nil {
			t.mu.Lock()
			if t.err == nil {
				t.err = err
			}
			t.mu.Unlock()
		}
	})
}

func (t *txn) toDLQ(r *kgo.Record, reason error) {
	d := t.e.dlq.Record(r, reason, t.e.now())
	t.produce(d)
	t.dlq[r.Topic]++
	t.e.log.Warn("record sent to the DLQ", logging.Record(r), logging.Error(reason))
}

// transact applies profs, scores changes and produces the deliveries, the
// DLQ records and the progress in one transaction. On abort it rolls the
// in-memory progress back and rewinds the content consumer.
func (e *Engine) transact(parent context.Context, changes, profs []*kgo.Record) error {
	start := e.now()
	// A shutdown lets the batch under way finish: the transaction runs on a
	// context of its own, bounded by the transaction timeout.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(parent), e.cfg.TransactionTimeout)
	defer cancel()
	if err := e.sess.Begin(); err != nil {
		return fmt.Errorf("engine: begin transaction: %w", err)
	}
	t := &txn{e: e, ctx: ctx, dlq: map[string]int{}}
	e.applyProfiles(ctx, t, profs)
	for i, r := range changes {
		if t.retry != nil {
			break // the transaction is aborted: what is left is read again
		}
		if t.users+t.channel >= e.cfg.MaxDeliveriesPerTransaction {
			e.carry = changes[i:] // in order: the next transaction starts with them
			break
		}
		e.processChange(ctx, t, r)
	}

	// Flush first (kfake drops buffered records on an abort otherwise),
	// then commit only when every record was acknowledged.
	flushErr := e.sess.Client().Flush(ctx)
	t.mu.Lock()
	produceErr := t.err
	t.mu.Unlock()
	try := kgo.TryCommit
	switch {
	case flushErr != nil || produceErr != nil:
		try = kgo.TryAbort
		e.log.Warn("aborting transaction", logging.Error(errors.Join(flushErr, produceErr)))
	case t.retry != nil:
		try = kgo.TryAbort
		e.retryWait = min(max(2*e.retryWait, 100*time.Millisecond), 5*time.Second)
		e.log.Warn("aborting transaction: a record could not be decoded for now; it is read again", zap.Duration("after", e.retryWait), logging.Error(t.retry))
	}
	committed, err := e.sess.End(kgo.PreTxnCommitFnContext(ctx, e.addProgress), try)
	if committed {
		e.retryWait = 0
		for _, st := range e.owned {
			st.committed = maps.Clone(st.progress)
			st.profileCommitted = st.profileNext
		}
		e.m.txns.WithLabelValues("committed").Inc()
		e.m.deliveriesSent.Add(float64(t.users))
		e.m.channelSent.Add(float64(t.channel))
		for topic, n := range t.dlq {
			e.m.dlq.WithLabelValues(topic).Add(float64(n))
		}
		e.m.txnSeconds.Observe(e.now().Sub(start).Seconds())
	} else {
		e.m.txns.WithLabelValues("aborted").Inc()
		for _, st := range e.owned {
			st.progress = maps.Clone(st.committed)
			if st.progress == nil {
				st.progress = wire.Progress{}
			}
			st.profileNext = st.profileCommitted
		}
		if rerr := e.repositionContent(); rerr != nil {
			return errors.Join(err, rerr)
		}
		if err == nil {
			e.log.Info("transaction aborted (rebalance or produce failure); its input is processed again")
		}
	}
	if err != nil {
		return fmt.Errorf("engine: end transaction: %w", err)
	}
	if !committed && t.retry != nil {
		select { // the schema registry's outage: wait before reading again
		case <-parent.Done():
		case <-time.After(e.retryWait):
		}
	}
	return nil
}

// addProgress puts, into the transaction's offset commit, the offset and the
// progress of every owned partition, so that every transaction is fenced by
// the group generation and carries the progress of its deliveries.
func (e *Engine) addProgress(req *kmsg.TxnOffsetCommitRequest) error {
	var topic *kmsg.TxnOffsetCommitRequestTopic
	for i := range req.Topics {
		if req.Topics[i].Topic == e.cfg.Topics.Profiles {
			topic = &req.Topics[i]
		}
	}
	if topic == nil {
		nt := kmsg.NewTxnOffsetCommitRequestTopic()
		nt.Topic = e.cfg.Topics.Profiles
		req.Topics = append(req.Topics, nt)
		topic = &req.Topics[len(req.Topics)-1]
	}
	for p, st := range e.owned {
		meta := st.progress.String()
		found := false
		for i := range topic.Partitions {
			if tp := &topic.Partitions[i]; tp.Partition == p {
				tp.Metadata = &meta
				tp.Offset = max(tp.Offset, st.profileNext)
				found = true
			}
		}
		if !found {
			tp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
			tp.Partition = p
			tp.Offset = st.profileNext
			tp.LeaderEpoch = -1
			tp.Metadata = &meta
			topic.Partitions = append(topic.Partitions, tp)
		}
	}
	return nil
}

// applyProfiles applies the profile records of owned partitions that the
// table does not hold yet; malformed ones go to the DLQ.
func (e *Engine) applyProfiles(ctx context.Context, t *txn, rs []*kgo.Record) {
	keep := rs[:0:0]
	for _, r := range rs {
		if st, ok := e.owned[r.Partition]; ok && r.Offset >= st.profileNext {
			keep = append(keep, r)
		}
	}
	for i, d := range e.decodeProfiles(ctx, keep, nil) {
		r := keep[i]
		e.owned[r.Partition].profileNext = r.Offset + 1
		switch {
		case codec.IsTransient(d.Err):
			t.retry = d.Err
		case d.Err != nil:
			t.toDLQ(r, d.Err)
			e.m.profiles.WithLabelValues("dlq").Inc()
		case d.Deleted:
			e.applyProfile(r, d)
			e.m.profiles.WithLabelValues("delete").Inc()
		default:
			e.applyProfile(r, d)
			e.m.profiles.WithLabelValues("upsert").Inc()
		}
	}
}

// processChange scores one content.changes record for the owned partitions
// that have not processed it yet, produces their deliveries, and advances
// their progress.
func (e *Engine) processChange(ctx context.Context, t *txn, r *kgo.Record) {
	c := r.Partition
	var need []int32 // owned partitions that still need this change
	for p, st := range e.owned {
		if st.progress[c] <= r.Offset {
			need = append(need, p)
			st.progress[c] = r.Offset + 1
		}
	}
	if len(need) == 0 {
		return
	}
	needs := func(p int32) bool {
		for _, q := range need {
			if q == p {
				return true
			}
		}
		return false
	}
	change, err := e.codec.DecodeChange(ctx, r.Topic, r.Value)
	if codec.IsTransient(err) {
		t.retry = err
		return
	}
	if err != nil {
		// One instance sends it to the DLQ: the owner of the user
		// partition numbered like the content partition (mod the count).
		if needs(c % e.profilesN) {
			t.toDLQ(r, err)
			e.m.changes.WithLabelValues("dlq").Inc()
		}
		return
	}
	now := e.now()
	committedAt := change.Trace.CommittedAt
	if committedAt.IsZero() {
		committedAt = change.Source.CommitTime
	}
	if committedAt.IsZero() {
		committedAt = r.Timestamp
	}
	var deadline time.Time
	if d := e.rules.Deadline; d > 0 {
		deadline = committedAt.Add(d)
		if now.After(deadline) {
			e.m.changes.WithLabelValues("stale").Inc()
			return
		}
	}
	fields := pipeline.ContentFields(change)
	base := events.Delivery{
		ChangeEventID: change.EventID,
		Source:        change.Source,
		Trace:         change.Trace.Clone(),
		Op:            change.Op,
		Content:       change.Projection(),
		Deadline:      deadline,
	}
	base.Trace.Mark(StageName, now)
	base.Trace.ProducedAt = now

	// Broadcast: one delivery per channel, from the owner of the
	// channel key's partition.
	channels, personalize := e.channels(change, fields)
	for _, ch := range channels {
		key := "channel:" + ch
		part := int32(kafkaHash([]byte(key), int(e.profilesN)))
		if !needs(part) {
			continue
		}
		d := base
		d.Channel = ch
		d.EventID = events.ID(change.EventID, "channel", ch)
		val, err := e.codec.EncodeEvent(ctx, e.cfg.Topics.Deliveries, d)
		if err != nil {
			e.log.Error("encode channel delivery", logging.EventID(change.EventID), logging.Error(err))
			continue
		}
		t.produce(&kgo.Record{Topic: e.cfg.Topics.Deliveries, Partition: part, Key: []byte(key), Value: val})
		t.channel++
	}
	// One latency sample a change, from the instance that would
	// dead-letter it: commit to deliveries produced.
	if needs(c % e.profilesN) {
		defer e.sampleLatency(ctx, t, change, committedAt)
	}
	if !personalize || !e.rules.Personalizes(string(change.Op)) {
		e.m.changes.WithLabelValues("skipped").Inc()
		return
	}
	q := e.scorer.Prepare(e.table, fields, now.Sub(committedAt))
	q.Spread = scoring.SpreadOf(change.EventID)
	hits, candidates := e.scorer.Score(e.table, &q, e.hitScratch[:0])
	e.hitScratch = hits
	e.m.candidates.Observe(float64(candidates))
	e.m.changes.WithLabelValues("scored").Inc()
	if len(hits) == 0 {
		e.m.deliveries.Observe(0)
		return
	}
	// A template costs about two encodings (it checks itself against the
	// codec): worth it from a few deliveries on.
	var tpl *wire.Template
	if len(hits) >= templateMin {
		if tpl, err = e.template(ctx, base); err != nil {
			e.log.Warn("delivery template", logging.Error(err))
		}
	}
	recs := make([]kgo.Record, len(hits)) // one allocation for the change
	if len(hits) < parallelEncodeMin {
		e.encodeDeliveries(ctx, tpl, base, &q, hits, recs, needs)
	} else {
		// Encode on every core when the fan-out is large; produce in order.
		workers := runtime.GOMAXPROCS(0)
		chunk := (len(hits) + workers - 1) / workers
		var wg sync.WaitGroup
		for w := range workers {
			lo, hi := w*chunk, min((w+1)*chunk, len(hits))
			if lo >= hi {
				break
			}
			wg.Go(func() {
				e.encodeDeliveries(ctx, tpl, base, &q, hits[lo:hi], recs[lo:hi], needs)
			})
		}
		wg.Wait()
	}
	sent := 0
	for i := range recs {
		if recs[i].Topic != "" {
			t.produce(&recs[i])
			sent++
		}
	}
	t.users += sent
	e.m.deliveries.Observe(float64(sent))
}

// templateMin is the fan-out from which a change's user deliveries are
// encoded with a wire.Template rather than one by one with the codec.
const templateMin = 4

// parallelEncodeMin is the fan-out from which a change's deliveries are
// encoded on every core. Below it, one goroutine is faster: with the broker
// on the same 2 cores (the benchmarks), encoding on both cores slowed a
// 10,000-user change down by about 15%.
const parallelEncodeMin = 16384

// encodeDeliveries fills recs[i] with the delivery of hits[i] when its
// partition needs the change (else leaves recs[i] zero). It only reads the
// engine's state, so several run at once on disjoint ranges.
func (e *Engine) encodeDeliveries(ctx context.Context, tpl *wire.Template, base events.Delivery, q *scoring.Query,
	hits []scoring.Hit, recs []kgo.Record, needs func(int32) bool) {
	var (
		reasons []events.Reason
		slab    []byte // keys and values, sliced per record
	)
	// perRecord bounds a record's bytes beside its user id (in the key and
	// in the value): the shared parts, the event id, score and reasons.
	perRecord := 1024
	if tpl != nil {
		perRecord = tpl.Size() + 256
	}
	for i, h := range hits {
		if !needs(h.Partition) {
			continue
		}
		reasons = e.scorer.Reasons(e.table, q, h, reasons[:0])
		id := events.ID(base.ChangeEventID, "user", h.UserID)
		if need := perRecord + 2*len(h.UserID); cap(slab)-len(slab) < need {
			// Sized for what is left of the range, at most 64 KiB: a
			// fixed 64 KiB slab a change cost the loop a third of its
			// CPU in clearing and GC at 5,000 small changes a second.
			slab = make([]byte, 0, min(64<<10, (len(hits)-i)*need))
		}
		n := len(slab)
		slab = append(slab, h.UserID...)
		key := slab[n:len(slab):len(slab)]
		var val []byte
		if tpl != nil {
			n = len(slab)
			slab = tpl.Append(slab, id, h.UserID, h.Score, reasons)
			val = slab[n:len(slab):len(slab)]
		} else {
			d := base
			d.EventID, d.UserID, d.Score, d.Reasons = id, h.UserID, h.Score, slices.Clone(reasons)
			var err error
			if val, err = e.codec.EncodeEvent(ctx, e.cfg.Topics.Deliveries, d); err != nil {
				e.log.Error("encode delivery", logging.EventID(base.ChangeEventID), logging.Error(err))
				continue
			}
		}
		r := &recs[i]
		r.Topic, r.Partition, r.Key, r.Value = e.cfg.Topics.Deliveries, h.Partition, key, val
	}
}

// LatencyStage is the stage of the personalizer's latency samples: from
// the change's commit to its deliveries produced (in the transaction).
const LatencyStage = "commit_to_deliver"

// sampleLatency produces the change's LatencySample to pipeline.latency, in
// the transaction, keyed by service.
func (e *Engine) sampleLatency(ctx context.Context, t *txn, change *events.ContentChange, committedAt time.Time) {
	now := e.now()
	src := change.Source
	ls := events.LatencySample{
		EventID:        events.ID(change.EventID, "personalizer", LatencyStage),
		Source:         &src,
		SubjectEventID: change.EventID,
		Service:        "personalizer",
		Instance:       e.cfg.TransactionalID,
		Stage:          LatencyStage,
		Duration:       max(now.Sub(committedAt), 0),
		At:             now,
	}
	val, err := e.codec.EncodeEvent(ctx, e.cfg.Topics.Latency, ls)
	if err != nil {
		e.log.Error("encode latency sample", logging.EventID(change.EventID), logging.Error(err))
		return
	}
	t.produce(&kgo.Record{Topic: e.cfg.Topics.Latency, Key: []byte("personalizer"), Value: val})
}

func (e *Engine) template(ctx context.Context, base events.Delivery) (*wire.Template, error) {
	return wire.NewTemplate(ctx, e.codec, e.cfg.Topics.Deliveries, base)
}

// channels returns the broadcast channels of a change and whether it is
// also personalized: the channels the change names when it is marked
// broadcast, else the first pipeline channel it matches (personalized too
// when that channel says so).
func (e *Engine) channels(c *events.ContentChange, f pipeline.Fields) ([]string, bool) {
	if c.Broadcast && len(c.Channels) > 0 {
		return c.Channels, false
	}
	if ch := e.rules.Channel(f); ch != nil {
		return []string{ch.Name}, ch.Personalize
	}
	if c.Broadcast {
		if names := e.cfg.Pipeline.Channels(); len(names) > 0 {
			return names[:1], false
		}
	}
	return nil, true
}
