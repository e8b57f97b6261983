package capture

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/freshet/freshet/pkg/events"
	"github.com/freshet/freshet/pkg/kafka"
	"github.com/freshet/freshet/pkg/logging"
)

// How a restart avoids producing twice: the slot's confirmed LSN moves only
// after Kafka acked every event of a commit (tracker.go), so a crash between
// the ack and the confirmation makes Postgres stream those transactions
// again, and they would become the same events (same ids) a second time at
// new offsets. So before streaming from a slot that existed, a session reads
// back, from the end of each partition of the topics the stream produces to,
// the events of transactions committed at or past the slot's confirmed LSN,
// in chunks, until a chunk holds none of them (or the log's start, or
// readBackMax records). While the stream replays transactions up to the
// highest commit LSN found, an event whose id Kafka holds on its topic, from
// the same commit, is not produced again; a profile's tombstone is not
// produced again when Kafka holds it right after its deleted profile. Every
// other event of those transactions is: a crash in the middle of a
// transaction's produce gets exactly the missing ones. Past that LSN the
// check stops and its set is freed.

const (
	// readBackChunk is how many records of a partition are read back at a
	// time.
	readBackChunk = 1000
	// readBackMax bounds the records read back per partition (a log full
	// of events newer than the slot, which should not happen, or of other
	// producers' records): what lies before it may be produced again.
	readBackMax = 100_000
	// readBackQuiet ends a chunk's read that returns nothing for this long
	// before its last offset (compacted away, or a control record).
	readBackQuiet = 2 * time.Second
)

// replay is what the read-back found on Kafka: the ids of the events of
// transactions at or past the slot's confirmed LSN. It is used only by the
// stream's goroutine.
type replay struct {
	upTo    uint64 // the highest commit LSN of those events
	held    map[heldKey]struct{}
	skipped int
}

// heldKey names an event on Kafka: its topic, id and commit LSN, or the
// tombstone that follows the deleted profile of that id.
type heldKey struct {
	topic     string
	id        string
	commitLSN uint64
	tombstone bool
}

// tail is one partition being read back, from its end towards its start.
type tail struct {
	topic         string
	partition     int32
	start         int64 // the log's first offset
	from, to      int64 // the chunk being read: [from, to)
	read          int64
	done          bool
	recent, older bool // the chunk held events at or past the confirmed LSN, before it
	records       []heldRecord
}

// heldRecord is a record read back: an event of the stream, or a tombstone.
type heldRecord struct {
	offset    int64
	key       string
	id        string
	commitLSN uint64
	recent    bool // commitLSN at or past the confirmed LSN
	tombstone bool
}

// streamTopics returns the topics the stream produces events to.
func (c *Capture) streamTopics() []string {
	var topics []string
	for _, t := range c.opts.Pipeline.Capture.Tables {
		topics = append(topics, t.Topic)
	}
	if ob := c.opts.Pipeline.Capture.Outbox; ob.Prefix != "" {
		topics = append(topics, ob.Topic)
	}
	slices.Sort(topics)
	return slices.Compact(topics)
}

// readBack reads back what Kafka holds of the transactions at or past
// confirmed (see above).
func (c *Capture) readBack(ctx context.Context, confirmed uint64) (*replay, error) {
	start := time.Now()
	topics := c.streamTopics()
	adm := kadm.NewClient(c.opts.Client)
	details, err := adm.ListTopics(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("read back: list topics: %w", err)
	}
	var tails []*tail
	for _, topic := range topics {
		d, ok := details[topic]
		if !ok || errors.Is(d.Err, kerr.UnknownTopicOrPartition) {
			continue // nothing produced there yet
		}
		if d.Err != nil {
			return nil, fmt.Errorf("read back %s: %w", topic, d.Err)
		}
		bounds, err := kafka.LogBounds(ctx, adm, topic)
		if err != nil {
			return nil, fmt.Errorf("read back: %w", err)
		}
		for p, b := range bounds {
			if b.Start < b.Stable {
				tails = append(tails, &tail{topic: topic, partition: p, start: b.Start, to: b.Stable})
			}
		}
	}
	chunk := int64(readBackChunk)
	if c.hooks.readBackChunk > 0 {
		chunk = c.hooks.readBackChunk
	}
	for {
		var open []*tail
		for _, t := range tails {
			if !t.done {
				t.from = max(t.start, t.to-chunk)
				t.recent, t.older = false, false
				open = append(open, t)
			}
		}
		if len(open) == 0 {
			break
		}
		if err := c.readChunks(ctx, open, confirmed); err != nil {
			return nil, fmt.Errorf("read back: %w", err)
		}
		for _, t := range open {
			t.read += t.to - t.from
			switch {
			case t.from == t.start, t.older && !t.recent:
				t.done = true
			case t.read >= readBackMax:
				t.done = true
				c.log.Warn("read back the most records allowed without reaching the slot's confirmed LSN; older events may be produced again",
					logging.Topic(t.topic), logging.Partition(t.partition), zap.Int64("records", t.read), logging.LSN(confirmed))
			}
			t.to = t.from
		}
	}
	r := &replay{held: map[heldKey]struct{}{}}
	var read int64
	for _, t := range tails {
		read += t.read
		slices.SortFunc(t.records, func(a, b heldRecord) int { return cmp.Compare(a.offset, b.offset) })
		last := map[string]heldRecord{} // key: its last event before this record
		for _, h := range t.records {
			if h.tombstone {
				if ev, ok := last[h.key]; ok && ev.recent {
					r.held[heldKey{topic: t.topic, id: ev.id, commitLSN: ev.commitLSN, tombstone: true}] = struct{}{}
				}
				delete(last, h.key)
				continue
			}
			last[h.key] = h
			if h.recent {
				r.held[heldKey{topic: t.topic, id: h.id, commitLSN: h.commitLSN}] = struct{}{}
				r.upTo = max(r.upTo, h.commitLSN)
			}
		}
	}
	c.log.Info("read back the events Kafka holds past the slot's confirmed position", logging.LSN(confirmed),
		zap.Int64("records_read", read), zap.Int("events", len(r.held)), zap.String("up_to", logging.FormatLSN(r.upTo)), zap.Duration("took", time.Since(start)))
	if len(r.held) == 0 {
		return nil, nil
	}
	return r, nil
}

// readChunks reads the chunk [from, to) of each tail and notes its records.
func (c *Capture) readChunks(ctx context.Context, open []*tail, confirmed uint64) error {
	spans := map[string]map[int32]span{}
	tails := map[string]map[int32]*tail{}
	for _, t := range open {
		if spans[t.topic] == nil {
			spans[t.topic], tails[t.topic] = map[int32]span{}, map[int32]*tail{}
		}
		spans[t.topic][t.partition] = span{from: t.from, to: t.to}
		tails[t.topic][t.partition] = t
	}
	return readSpans(ctx, c.opts.Client, spans, readBackQuiet, func(r *kgo.Record) {
		c.noteRecord(ctx, tails[r.Topic][r.Partition], r, confirmed)
	})
}

// noteRecord keeps what the read-back needs of r: a tombstone's key, or an
// event of this database's stream. Other records (HTTP ingest, other
// producers, values that do not decode) are not the stream's and are left
// out.
func (c *Capture) noteRecord(ctx context.Context, t *tail, r *kgo.Record, confirmed uint64) {
	if r.Value == nil {
		t.records = append(t.records, heldRecord{offset: r.Offset, key: string(r.Key), tombstone: true})
		return
	}
	ev, _, err := c.opts.Codec.DecodeTyped(ctx, r.Value)
	if err != nil {
		return
	}
	var src events.Source
	switch e := ev.(type) {
	case *events.ContentChange:
		src = e.Source
	case events.ContentChange:
		src = e.Source
	case *events.UserProfile:
		src = e.Source
	case events.UserProfile:
		src = e.Source
	default:
		return
	}
	switch src.Origin {
	case events.OriginReplication, events.OriginSnapshot, events.OriginOutbox:
	default:
		return
	}
	if src.DB != c.db {
		return
	}
	recent := src.CommitLSN >= confirmed
	if recent {
		t.recent = true
	} else {
		t.older = true
	}
	t.records = append(t.records, heldRecord{offset: r.Offset, key: string(r.Key), id: ev.ID(), commitLSN: src.CommitLSN, recent: recent})
}

// held reports whether Kafka already holds the event id of topic from the
// transaction committed at commitLSN (or, with tombstone, the tombstone that
// follows it), and then counts it as skipped. Called by the stream's
// goroutine only.
func (c *Capture) held(topic, id string, commitLSN uint64, tombstone bool) bool {
	r := c.replay
	if r == nil || id == "" || commitLSN > r.upTo {
		return false
	}
	if _, ok := r.held[heldKey{topic: topic, id: id, commitLSN: commitLSN, tombstone: tombstone}]; !ok {
		return false
	}
	r.skipped++
	if m := c.opts.Metrics; m != nil {
		m.ReplaySkipped.Inc()
	}
	return true
}

// pastReplay ends the check once the stream reaches a transaction committed
// after everything the read-back found.
func (c *Capture) pastReplay(commitLSN uint64) {
	r := c.replay
	if r == nil || commitLSN <= r.upTo {
		return
	}
	c.log.Info("streamed again past the events Kafka held; those were not produced twice",
		zap.Int("skipped", r.skipped), zap.Int("held", len(r.held)), zap.String("up_to", logging.FormatLSN(r.upTo)))
	c.replay = nil
}
