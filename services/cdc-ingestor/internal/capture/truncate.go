package capture

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/freshet/freshet/pkg/events"
	"github.com/freshet/freshet/pkg/kafka"
	"github.com/freshet/freshet/pkg/logging"
	"github.com/freshet/freshet/pkg/pipeline"
)

// truncateProfiles turns a TRUNCATE of the profile table into the deletion
// of every profile its compacted topic holds, which has no delete-all: each
// live key (its last record is not a tombstone) gets what a DELETE of its row
// gives, a deleted snapshot and a tombstone, in the truncating transaction
// (confirmed once they are acked). Everything produced before is flushed
// first, so that the read of the topic sees it; the changes that follow in the
// stream are produced after, so a profile inserted again after the truncate
// is not lost.
func (s *stream) truncateProfiles(ctx context.Context, t *pipeline.Table, walStart uint64) error {
	c := s.c
	start := time.Now()
	if err := c.opts.Client.Flush(ctx); err != nil {
		return fmt.Errorf("truncate of %s: flush: %w", t.Name, err)
	}
	keys, err := liveKeys(ctx, c.opts.Client, t.Topic)
	if err != nil {
		return fmt.Errorf("truncate of %s: read %s: %w", t.Name, t.Topic, err)
	}
	for _, key := range keys {
		src := s.source(walStart)
		src.Table = t.Name
		u := events.UserProfile{
			EventID: events.ChangeID(src.DB, src.Table, src.LSN, key), Source: src,
			Trace:  events.Trace{CommittedAt: src.CommitTime, ProducedAt: time.Now()},
			UserID: key, Deleted: true, UpdatedAt: src.CommitTime,
		}
		c.snap.touched(t.Name, key)
		c.produceEvent(ctx, s.tracker, s.tx.txn, t.Topic, key, u, t.Name, string(events.OpTruncate), src)
		if c.held(t.Topic, u.EventID, src.CommitLSN, true) {
			continue
		}
		c.produce(s.tracker, s.tx.txn, &kgo.Record{Topic: t.Topic, Key: []byte(key)}, t.Name, "tombstone", src, "")
	}
	c.log.Info("truncate of the profile table: every profile on its topic deleted",
		zap.String("table", t.Name), logging.Topic(t.Topic), zap.Int("profiles", len(keys)), zap.Duration("took", time.Since(start)))
	return nil
}

// liveKeysQuiet ends the read of a partition that returns nothing for this
// long before its end offset: the records up to it were compacted away.
const liveKeysQuiet = 5 * time.Second

// liveKeys reads topic from its start to its current end and returns, sorted,
// the keys whose last record has a value.
func liveKeys(ctx context.Context, cl *kgo.Client, topic string) ([]string, error) {
	bounds, err := kafka.LogBounds(ctx, kadm.NewClient(cl), topic)
	if err != nil {
		return nil, err
	}
	spans := map[int32]span{}
	for p, b := range bounds {
		if b.Start < b.Stable {
			spans[p] = span{from: b.Start, to: b.Stable}
		}
	}
	live := map[string]bool{} // key: its last record so far has a value
	err = readSpans(ctx, cl, map[string]map[int32]span{topic: spans}, liveKeysQuiet, func(r *kgo.Record) {
		if len(r.Key) > 0 { // profiles are keyed by user id
			live[string(r.Key)] = r.Value != nil
		}
	})
	if err != nil {
		return nil, err
	}
	var keys []string
	for k, ok := range live {
		if ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys, nil
}

// span is the offsets [from, to) of a partition to read.
type span struct{ from, to int64 }

// readSpans reads the span of each partition of spans (topic, partition)
// with a reader of its own, configured like cl, and calls fn with each record
// in a span, in offset order per partition. A partition that returns nothing
// for quiet before its span's end is left (the records up to the end were
// compacted away, or the end is a control record).
func readSpans(ctx context.Context, cl *kgo.Client, spans map[string]map[int32]span, quiet time.Duration, fn func(*kgo.Record)) error {
	type tp struct {
		topic string
		p     int32
	}
	left := map[tp]span{}
	offsets := map[string]map[int32]kgo.Offset{}
	for topic, ps := range spans {
		for p, s := range ps {
			if s.from >= s.to {
				continue
			}
			if offsets[topic] == nil {
				offsets[topic] = map[int32]kgo.Offset{}
			}
			offsets[topic][p] = kgo.NewOffset().At(s.from)
			left[tp{topic, p}] = s
		}
	}
	if len(left) == 0 {
		return nil
	}
	reader, err := kgo.NewClient(append(slices.Clip(cl.Opts()), // never append into the client's own slice
		kgo.ConsumePartitions(offsets),
		kgo.FetchMaxWait(200*time.Millisecond),
	)...)
	if err != nil {
		return err
	}
	defer reader.Close()
	last := time.Now()
	for len(left) > 0 {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		fs := reader.PollFetches(pctx)
		cancel()
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fs.Err0(); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			return err
		}
		n := 0
		fs.EachRecord(func(r *kgo.Record) {
			k := tp{r.Topic, r.Partition}
			s, ok := left[k]
			if !ok {
				return
			}
			if r.Offset >= s.to {
				delete(left, k) // past the span: what was missing of it is gone
				return
			}
			n++
			if r.Offset >= s.to-1 {
				delete(left, k)
			}
			fn(r)
		})
		if n > 0 {
			last = time.Now()
		} else if time.Since(last) > quiet {
			break
		}
	}
	return nil
}
