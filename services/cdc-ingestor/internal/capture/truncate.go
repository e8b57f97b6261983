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
	left := map[int32]int64{} // partition: the end offset still to reach
	offsets := map[int32]kgo.Offset{}
	for p, b := range bounds {
		if b.Start < b.Stable {
			left[p] = b.Stable
			offsets[p] = kgo.NewOffset().At(b.Start)
		}
	}
	if len(left) == 0 {
		return nil, nil
	}
	reader, err := kgo.NewClient(append(slices.Clip(cl.Opts()), // never append into the client's own slice
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets}),
		kgo.FetchMaxWait(500*time.Millisecond),
	)...)
	if err != nil {
		return nil, err
	}
	defer reader.Close()
	live := map[string]bool{} // key: its last record so far has a value
	quiet := time.Now()
	for len(left) > 0 {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		fs := reader.PollFetches(pctx)
		cancel()
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := fs.Err0(); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			return nil, err
		}
		n := 0
		fs.EachRecord(func(r *kgo.Record) {
			end, ok := left[r.Partition]
			if !ok || r.Offset >= end {
				return
			}
			n++
			if r.Offset >= end-1 {
				delete(left, r.Partition)
			}
			if len(r.Key) > 0 { // profiles are keyed by user id
				live[string(r.Key)] = r.Value != nil
			}
		})
		if n > 0 {
			quiet = time.Now()
		} else if time.Since(quiet) > liveKeysQuiet {
			break // the tails still left were compacted away
		}
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
