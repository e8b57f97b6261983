package capture

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/freshet/freshet/pkg/events"
	"github.com/freshet/freshet/pkg/logging"
	"github.com/freshet/freshet/pkg/pipeline"
	"github.com/freshet/freshet/services/cdc-ingestor/internal/appevent"
	"github.com/freshet/freshet/services/cdc-ingestor/internal/mapping"
	"github.com/freshet/freshet/services/cdc-ingestor/internal/pgoutput"
)

// session connects, sets up the publication and slot, and streams until an
// error or ctx's end.
func (c *Capture) session(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, c.opts.DSN)
	if err != nil {
		c.count("connect")
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.Background())
	if err := c.waitForTables(ctx, conn); err != nil {
		return err
	}
	if err := c.ensurePublication(ctx, conn); err != nil {
		return err
	}
	repl, err := pgconn.Connect(ctx, replicationDSN(c.opts.DSN))
	if err != nil {
		c.count("connect")
		return fmt.Errorf("connect for replication: %w", err)
	}
	defer repl.Close(context.Background())
	slot, err := c.ensureSlot(ctx, conn, repl)
	if err != nil {
		return err
	}
	if err := c.snap.prepare(ctx, conn, slot.created); err != nil {
		return err
	}
	pub := c.opts.Pipeline.Capture.Publication
	args := []string{"proto_version '1'", "publication_names '" + pgx.Identifier{pub}.Sanitize() + "'", "messages 'true'"}
	if err := pglogrepl.StartReplication(ctx, repl, c.opts.Pipeline.Capture.Slot, 0, pglogrepl.StartReplicationOptions{PluginArgs: args}); err != nil {
		return fmt.Errorf("start replication from slot %s: %w", c.opts.Pipeline.Capture.Slot, err)
	}
	// A slot just created has sent nothing; one that existed may stream
	// again transactions whose events Kafka acked before a crash. Read back
	// once the slot is this session's, so that a standby does not.
	c.replay = nil
	if !slot.created {
		if c.replay, err = c.readBack(ctx, slot.confirmed); err != nil {
			c.count("read_back")
			return err
		}
	}
	c.log.Info("streaming", zap.String("slot", c.opts.Pipeline.Capture.Slot), zap.String("publication", pub), logging.LSN(slot.confirmed))
	s := &stream{c: c, repl: repl, tracker: newTracker(slot.confirmed), rels: map[uint32]*relState{}, sent: slot.confirmed}
	c.setReady(nil)

	sctx, stop := context.WithCancel(ctx)
	snapDone := make(chan struct{})
	go func() { defer close(snapDone); c.snap.run(sctx, s.tracker) }()
	defer func() { stop(); <-snapDone }()
	return s.run(ctx)
}

// relState is what the stream knows of a relation.
type relState struct {
	rel     *pgoutput.Relation
	plan    *mapping.Plan // nil: not captured
	planErr error         // the table is captured but cannot be mapped
}

// txState is the transaction being received.
type txState struct {
	xid        uint64
	commitLSN  uint64
	commitTime time.Time
	seq        int64
	txn        *txn
}

type stream struct {
	c       *Capture
	repl    *pgconn.PgConn
	tracker *tracker
	rels    map[uint32]*relState
	tx      *txState
	sent    uint64 // the LSN last confirmed to Postgres
}

// walMsg is one decoded message of the stream and where it starts, or a
// keepalive and the server's position in it.
type walMsg struct {
	walStart  uint64
	msg       pgoutput.Message
	keepalive bool
}

// batchSize bounds the messages the receiver hands over at once; a commit
// hands over what it has at once, so latency does not wait for a full batch.
const batchSize = 128

// run streams with two goroutines, so that reading and decoding overlap
// with mapping, encoding and producing: the receiver owns the connection
// (reads, status updates) and decodes; this goroutine handles the messages
// in order.
func (s *stream) run(ctx context.Context) error {
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	batches := make(chan []walMsg, 16)
	errc := make(chan error, 1)
	go func() {
		err := s.receive(rctx, batches)
		close(batches)
		errc <- err
	}()
	var herr error
	for b := range batches {
		if herr != nil {
			continue // drain until the receiver stops
		}
		for _, m := range b {
			if m.keepalive {
				s.keepalive(m.walStart)
				continue
			}
			if err := s.handle(ctx, m.walStart, m.msg); err != nil {
				herr = err
				cancel()
				break
			}
		}
	}
	rerr := <-errc
	if ctx.Err() != nil {
		return s.shutdown()
	}
	if herr != nil {
		return herr
	}
	return rerr
}

// receive reads the replication stream, sends status updates, and hands
// decoded messages over in batches. It returns on ctx's end or an error.
func (s *stream) receive(ctx context.Context, out chan<- []walMsg) error {
	interval := s.c.opts.StatusInterval
	next := time.Now().Add(interval)
	// One deadline context per status interval, not per message: a
	// context with a timer per message costs more than the decoding.
	var rctx context.Context
	cancel := context.CancelFunc(func() {})
	renew := func() {
		cancel()
		rctx, cancel = context.WithDeadline(ctx, next)
	}
	renew()
	defer func() { cancel() }()
	batch := make([]walMsg, 0, batchSize)
	// flush hands the batch over. While the handler is behind (Kafka slow
	// or away) it keeps confirming what was acked, so that Postgres does not
	// end the connection after wal_sender_timeout.
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		for {
			wait := time.NewTimer(interval)
			select {
			case out <- batch:
				wait.Stop()
				batch = make([]walMsg, 0, batchSize)
				return nil
			case <-ctx.Done():
				wait.Stop()
				return ctx.Err()
			case <-wait.C:
				if err := s.sendStatus(); err != nil {
					return err
				}
			}
		}
	}
	for {
		if ctx.Err() != nil {
			return nil
		}
		if _, _, err := s.tracker.state(); err != nil {
			return fmt.Errorf("produce: %w", err)
		}
		if !time.Now().Before(next) || rctx.Err() != nil {
			if err := flush(); err != nil {
				return ctxOr(ctx, err)
			}
			if err := s.sendStatus(); err != nil {
				return err
			}
			next = time.Now().Add(interval)
			renew()
		}
		raw, err := s.repl.ReceiveMessage(rctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if pgconn.Timeout(err) || rctx.Err() != nil {
				continue
			}
			return fmt.Errorf("receive: %w", err)
		}
		switch m := raw.(type) {
		case *pgproto3.ErrorResponse:
			return fmt.Errorf("replication: %w", pgconn.ErrorResponseToPgError(m))
		case *pgproto3.CopyData:
			if len(m.Data) == 0 {
				continue
			}
			switch m.Data[0] {
			case pglogrepl.PrimaryKeepaliveMessageByteID:
				k, err := pglogrepl.ParsePrimaryKeepaliveMessage(m.Data[1:])
				if err != nil {
					return fmt.Errorf("keepalive: %w", err)
				}
				if k.ReplyRequested {
					next = time.Time{}
				}
				batch = append(batch, walMsg{walStart: uint64(k.ServerWALEnd), keepalive: true})
				if err := flush(); err != nil {
					return ctxOr(ctx, err)
				}
			case pglogrepl.XLogDataByteID:
				x, err := pglogrepl.ParseXLogData(m.Data[1:])
				if err != nil {
					return fmt.Errorf("xlog data: %w", err)
				}
				// pgconn reuses its buffer on the next receive: the
				// decoded values must own their bytes.
				msg, err := pgoutput.Parse(append([]byte(nil), x.WALData...))
				if err != nil {
					return err
				}
				batch = append(batch, walMsg{walStart: uint64(x.WALStart), msg: msg})
				_, commit := msg.(*pgoutput.Commit)
				if commit || len(batch) == cap(batch) {
					if err := flush(); err != nil {
						return ctxOr(ctx, err)
					}
				}
			}
		}
	}
}

// ctxOr returns nil when ctx is done (a shutdown, not a failure), else err.
func ctxOr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// sendStatus confirms the LSN every event before which is on Kafka.
func (s *stream) sendStatus() error {
	confirmed, _, _ := s.tracker.state()
	if s.c.hooks.holdConfirm.Load() {
		confirmed = s.sent
	}
	if err := pglogrepl.SendStandbyStatusUpdate(context.Background(), s.repl, pglogrepl.StandbyStatusUpdate{WALWritePosition: pglogrepl.LSN(confirmed)}); err != nil {
		return fmt.Errorf("send standby status: %w", err)
	}
	if confirmed != s.sent {
		s.sent = confirmed
		if m := s.c.opts.Metrics; m != nil {
			m.Confirmed.Set(float64(confirmed))
		}
	}
	return nil
}

// shutdown waits (a bounded time) for the events in flight, confirms what
// was acked, and ends the session.
func (s *stream) shutdown() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.c.opts.Client.Flush(ctx); err != nil {
		s.c.log.Warn("events still in flight at shutdown; they will be streamed again", zap.Error(err))
	}
	_ = s.sendStatus()
	confirmed, inFlight, _ := s.tracker.state()
	s.c.log.Info("replication session stopped", logging.LSN(confirmed), zap.Int("transactions_in_flight", inFlight))
	return context.Canceled
}

// keepalive lets the slot move to pos, the server's position in a
// keepalive (everything before it was sent before the keepalive), once all
// that came before is acked: past WAL that sends nothing (tables that are
// not captured, snapshot progress, aborted transactions). Without it a
// fast shutdown of Postgres waits, until wal_sender_timeout, for this
// client to confirm the walsender's last position. Inside a transaction
// pos may be before its commit: nothing to do until the next one.
func (s *stream) keepalive(pos uint64) {
	if s.tx != nil {
		return
	}
	s.tracker.seal(s.tracker.begin(time.Time{}), pos)
}

func (s *stream) handle(ctx context.Context, walStart uint64, msg pgoutput.Message) error {
	switch m := msg.(type) {
	case *pgoutput.Begin:
		s.c.pastReplay(m.FinalLSN)
		s.tx = &txState{xid: uint64(m.Xid), commitLSN: m.FinalLSN, commitTime: m.CommitTime, txn: s.tracker.begin(m.CommitTime)}
	case *pgoutput.Commit:
		if s.tx == nil {
			return errors.New("pgoutput: commit without begin")
		}
		s.tracker.seal(s.tx.txn, m.EndLSN)
		s.tx = nil
	case *pgoutput.Relation:
		s.relation(m)
	case *pgoutput.Insert:
		return s.change(ctx, m.RelationID, mapping.Change{Op: events.OpCreate, New: m.New}, walStart)
	case *pgoutput.Update:
		return s.change(ctx, m.RelationID, mapping.Change{Op: events.OpUpdate, New: m.New, Old: m.Old, OldKind: m.OldKind}, walStart)
	case *pgoutput.Delete:
		return s.change(ctx, m.RelationID, mapping.Change{Op: events.OpDelete, Old: m.Old, OldKind: m.OldKind}, walStart)
	case *pgoutput.Truncate:
		return s.truncate(ctx, m, walStart)
	case *pgoutput.LogicalMessage:
		return s.message(ctx, m)
	}
	return nil
}

// relation records what Postgres said about a table, and rebuilds the
// table's plan: a column added while streaming appears from here on.
func (s *stream) relation(m *pgoutput.Relation) {
	rs := &relState{rel: m}
	if t := s.c.opts.Pipeline.Table(m.Namespace + "." + m.Name); t != nil {
		rs.plan, rs.planErr = mapping.NewPlan(t, m)
		if rs.planErr != nil {
			s.c.log.Error("captured table cannot be mapped; its changes go to the dead-letter topic", zap.String("table", t.Name), zap.Error(rs.planErr))
			rs.plan = &mapping.Plan{Table: t, Relation: m} // names the table and topic of the dead letters
		}
	}
	s.rels[m.ID] = rs
}

func (s *stream) source(walStart uint64) events.Source {
	src := events.Source{Origin: events.OriginReplication, DB: s.c.db, LSN: walStart, CommitLSN: s.tx.commitLSN, TxID: s.tx.xid, Seq: s.tx.seq, CommitTime: s.tx.commitTime}
	s.tx.seq++
	return src
}

func (s *stream) change(ctx context.Context, relID uint32, ch mapping.Change, walStart uint64) error {
	if s.tx == nil {
		return errors.New("pgoutput: change outside a transaction")
	}
	rs := s.rels[relID]
	if rs == nil {
		return fmt.Errorf("pgoutput: change of relation %d before its relation message", relID)
	}
	if rs.plan == nil {
		return nil // in the publication, not in the pipeline
	}
	ch.Source = s.source(walStart)
	s.c.emitChange(ctx, s.tracker, s.tx.txn, rs, ch)
	return nil
}

// emitChange maps one change and produces its events (or dead letter) as
// part of x. The snapshotter learns the keys it touched.
func (c *Capture) emitChange(ctx context.Context, tr *tracker, x *txn, rs *relState, ch mapping.Change) {
	table := rs.plan.Table
	if rs.planErr != nil {
		c.deadLetter(tr, x, table.Topic, nil, rowOf(rs.rel, ch), fmt.Errorf("table %s: %w", table.Name, rs.planErr))
		return
	}
	if oldKey, ok := rs.plan.OldKey(ch); ok {
		// The key changed: the item under the old key is gone.
		del := mapping.Change{Op: events.OpDelete, Old: ch.Old, OldKind: ch.OldKind, Source: ch.Source}
		if ch.OldKind != pgoutput.OldFull {
			del.OldKind = pgoutput.OldKey
		}
		c.snap.touched(table.Name, oldKey)
		c.emitMapped(ctx, tr, x, rs, del)
	}
	c.emitMapped(ctx, tr, x, rs, ch)
}

func (c *Capture) emitMapped(ctx context.Context, tr *tracker, x *txn, rs *relState, ch mapping.Change) {
	table := rs.plan.Table
	switch table.Event {
	case pipeline.EventContent:
		ev, err := rs.plan.Content(ch)
		if err != nil {
			c.deadLetter(tr, x, table.Topic, nil, rowOf(rs.rel, ch), err)
			return
		}
		c.snap.touched(table.Name, ev.ContentID)
		ev.Trace.ProducedAt = time.Now()
		c.produceEvent(ctx, tr, x, table.Topic, ev.ContentID, ev, table.Name, string(ev.Op), ev.Source)
	case pipeline.EventProfile:
		u, err := rs.plan.Profile(ch)
		if err != nil {
			c.deadLetter(tr, x, table.Topic, nil, rowOf(rs.rel, ch), err)
			return
		}
		c.snap.touched(table.Name, u.UserID)
		u.Trace.ProducedAt = time.Now()
		c.produceEvent(ctx, tr, x, table.Topic, u.UserID, u, table.Name, string(ch.Op), u.Source)
		if u.Deleted && !c.held(table.Topic, u.EventID, u.Source.CommitLSN, true) {
			// The tombstone lets compaction drop the profile; the deleted
			// snapshot before it tells consumers that catch up late.
			c.produce(tr, x, &kgo.Record{Topic: table.Topic, Key: []byte(u.UserID)}, table.Name, "tombstone", u.Source, "")
		}
	}
}

func rowOf(rel *pgoutput.Relation, ch mapping.Change) map[string]any {
	out := map[string]any{"op": string(ch.Op)}
	if ch.New != nil {
		out["new"] = mapping.RawValues(rel, ch.New)
	}
	if ch.Old != nil {
		out["old"] = mapping.RawValues(rel, ch.Old)
	}
	return out
}

func (c *Capture) produceEvent(ctx context.Context, tr *tracker, x *txn, topic, key string, ev events.Event, table, op string, src events.Source) {
	if c.held(topic, ev.ID(), src.CommitLSN, false) {
		return // on Kafka already, from before a restart
	}
	val, err := c.opts.Codec.AppendEncodeEvent(ctx, nil, topic, ev)
	if err != nil {
		c.deadLetter(tr, x, topic, []byte(key), map[string]any{"event_id": ev.ID(), "schema": ev.Schema()}, fmt.Errorf("encode %s: %w", ev.Schema(), err))
		return
	}
	c.produce(tr, x, &kgo.Record{Topic: topic, Key: []byte(key), Value: val}, table, op, src, ev.ID())
}

// produce sends rec as one event of x; x is confirmed once all are acked.
func (c *Capture) produce(tr *tracker, x *txn, rec *kgo.Record, table, op string, src events.Source, eventID string) {
	tr.add(x)
	if c.hooks.drop != nil && c.hooks.drop(rec) {
		return // never sent, never acked: x stays unconfirmed
	}
	m := c.opts.Metrics
	observe := c.opts.AckObserver
	c.opts.Client.Produce(context.Background(), rec, func(r *kgo.Record, err error) {
		if tooLarge(err) && eventID != "" {
			// Retrying cannot help, and failing would stop the stream on
			// this row for good: the DLQ gets what fits, and the reason.
			go c.deadLetterTooLarge(tr, x, r, eventID, err)
			return
		}
		if err == nil && observe != nil && !src.CommitTime.IsZero() {
			observe(time.Since(src.CommitTime))
		}
		if err == nil && m != nil {
			m.Events.WithLabelValues(table, op, string(src.Origin)).Inc()
			if !src.CommitTime.IsZero() {
				lat := time.Since(src.CommitTime)
				m.CommitToAck.Observe(lat.Seconds())
				if c.opts.Latency != nil && src.Seq == 0 && eventID != "" {
					c.opts.Latency.offer(events.LatencySample{Source: &src, SubjectEventID: eventID, Service: "cdc-ingestor", Stage: "commit_to_ack", Duration: lat, At: time.Now(), Labels: map[string]string{"table": table}})
				}
			}
		}
		if err != nil {
			c.count("produce")
		}
		tr.done(x, err)
	})
}

// tooLarge reports whether err says a record is larger than the producer
// or the broker accept.
func tooLarge(err error) bool {
	return errors.Is(err, kerr.MessageTooLarge) || errors.Is(err, kerr.RecordListTooLarge)
}

// deadLetterTooLarge sends, in place of an event too large for Kafka, a
// dead letter with its key, id, size and the reason (the value itself
// cannot fit either), and settles the event's place in x when it is acked.
func (c *Capture) deadLetterTooLarge(tr *tracker, x *txn, r *kgo.Record, eventID string, reason error) {
	val, _ := json.Marshal(map[string]any{"event_id": eventID, "value_bytes": len(r.Value), "value": "dropped: larger than Kafka accepts"})
	rec := c.dlq.Record(&kgo.Record{Topic: r.Topic, Key: r.Key, Value: val}, fmt.Errorf("event %s of %d bytes: %w", eventID, len(r.Value), reason), time.Now())
	c.log.Warn("event too large for Kafka; sent to the dead-letter topic without its value", logging.Topic(rec.Topic), logging.EventID(eventID), zap.Int("value_bytes", len(r.Value)))
	if m := c.opts.Metrics; m != nil {
		m.DeadLetters.WithLabelValues(r.Topic).Inc()
	}
	c.opts.Client.Produce(context.Background(), rec, func(_ *kgo.Record, err error) {
		if err != nil {
			c.count("produce")
		}
		tr.done(x, err)
	})
}

// deadLetter sends what could not become an event to the topic's DLQ, as
// part of x, with the reason.
func (c *Capture) deadLetter(tr *tracker, x *txn, topic string, key []byte, raw any, reason error) {
	val, err := json.Marshal(raw)
	if err != nil {
		val = []byte(fmt.Sprintf("%q", fmt.Sprint(raw)))
	}
	rec := c.dlq.Record(&kgo.Record{Topic: topic, Key: key, Value: val}, reason, time.Now())
	c.log.Warn("change sent to the dead-letter topic", logging.Topic(rec.Topic), zap.Error(reason))
	if m := c.opts.Metrics; m != nil {
		m.DeadLetters.WithLabelValues(topic).Inc()
	}
	c.produce(tr, x, rec, topic, "dead_letter", events.Source{}, "")
}

func (s *stream) truncate(ctx context.Context, m *pgoutput.Truncate, walStart uint64) error {
	if s.tx == nil {
		return errors.New("pgoutput: truncate outside a transaction")
	}
	for _, id := range m.RelationIDs {
		rs := s.rels[id]
		if rs == nil || rs.plan == nil {
			continue
		}
		t := rs.plan.Table
		if t.Event == pipeline.EventProfile {
			if err := s.truncateProfiles(ctx, t, walStart); err != nil {
				s.c.count("truncate_profiles")
				return err // the session restarts and the transaction comes again
			}
			continue
		}
		src := s.source(walStart)
		src.Table = t.Name
		ev := events.ContentChange{
			EventID: events.ChangeID(src.DB, src.Table, src.LSN, ""), Source: src,
			Trace: events.Trace{CommittedAt: src.CommitTime, ProducedAt: time.Now()}, Op: events.OpTruncate, Version: int64(src.CommitLSN),
		}
		s.c.produceEvent(ctx, s.tracker, s.tx.txn, t.Topic, "", ev, t.Name, string(events.OpTruncate), src)
	}
	return nil
}

func (s *stream) message(ctx context.Context, m *pgoutput.LogicalMessage) error {
	lone := s.tx == nil // a non-transactional message: its own unit of confirmation
	if lone {
		s.c.pastReplay(m.LSN)
		s.tx = &txState{commitLSN: m.LSN, commitTime: time.Now(), txn: s.tracker.begin(time.Time{})}
		defer func() { s.tracker.seal(s.tx.txn, m.LSN); s.tx = nil }()
	}
	switch {
	case m.Prefix == HeartbeatPrefix:
	case m.Prefix == WatermarkPrefix:
		s.c.snap.watermark(ctx, s.tracker, s.tx.txn, m, s.tx)
	case m.Prefix != "" && m.Prefix == s.c.opts.Pipeline.Capture.Outbox.Prefix:
		s.outbox(ctx, m)
	}
	return nil
}

func (s *stream) outbox(ctx context.Context, m *pgoutput.LogicalMessage) {
	ob := s.c.opts.Pipeline.Capture.Outbox
	lsn := strconv.FormatUint(m.LSN, 10)
	src := s.source(m.LSN)
	ev, err := appevent.Decode(s.c.opts.Codec, m.Content, appevent.Meta{
		Origin: events.OriginOutbox, DB: s.c.db, Table: ob.Prefix, LSN: m.LSN, CommitLSN: src.CommitLSN, TxID: src.TxID, Seq: src.Seq,
		At: src.CommitTime, IDParts: []string{"outbox", s.c.db}, DefaultID: lsn,
	})
	if err != nil {
		s.c.count("outbox")
		s.c.deadLetter(s.tracker, s.tx.txn, ob.Topic, nil, map[string]any{"prefix": m.Prefix, "lsn": lsn, "content": string(m.Content)}, fmt.Errorf("outbox message at %s: %w", logging.FormatLSN(m.LSN), err))
		return
	}
	ev.Trace.ProducedAt = time.Now()
	s.c.produceEvent(ctx, s.tracker, s.tx.txn, ob.Topic, ev.ContentID, ev, "outbox", string(ev.Op), ev.Source)
}
