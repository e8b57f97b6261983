package gateway

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// replay writes to s what c missed in ranges the history no longer holds,
// reading them from Kafka with a client of its own. A range that starts
// before the partition's log start (retention removed it) first gets a
// "missed" event saying which offsets are gone, then what is left.
// At most ReplayConcurrency replays read Kafka at once.
func (g *Gateway) replay(ctx context.Context, c *conn, ranges []replay, s *stream) error {
	ctx, cancel := context.WithTimeout(ctx, g.cfg.Gateway.ReplayTimeout)
	defer cancel()
	select {
	case g.replays <- struct{}{}:
		defer func() { <-g.replays }()
	case <-ctx.Done():
		return ctx.Err()
	}
	starts, err := g.adm.ListStartOffsets(ctx, g.topic)
	if err != nil {
		return fmt.Errorf("list start offsets: %w", err)
	}
	offsets := map[int32]kgo.Offset{}
	to := map[int32]int64{}
	for _, rg := range ranges {
		from := rg.from
		if so, ok := starts.Lookup(g.topic, rg.partition); ok && so.Err == nil && so.Offset > from {
			from = min(so.Offset, rg.to)
			g.metrics.resumes.WithLabelValues("missed").Inc()
			s.cur = s.cur.With(rg.partition, from)
			s.control("missed", fmt.Sprintf(`{"reason":"retention","partition":%d,"from":%d,"to":%d}`, rg.partition, rg.from, from))
		}
		if from < rg.to {
			offsets[rg.partition] = kgo.NewOffset().At(from)
			to[rg.partition] = rg.to
		}
	}
	if len(offsets) == 0 {
		return s.flush()
	}
	opts := append(append([]kgo.Opt(nil), g.kopts...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{g.topic: offsets}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	for len(to) > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("read %s: %w", g.topic, err)
		}
		var ferr error
		fs.EachError(func(_ string, p int32, err error) { ferr = fmt.Errorf("fetch partition %d: %w", p, err) })
		if ferr != nil {
			return ferr
		}
		fs.EachRecord(func(r *kgo.Record) {
			end, ok := to[r.Partition]
			if !ok {
				return
			}
			if r.Offset >= end {
				// Past the range: what was at end-1 was skipped (an aborted
				// transaction's record), and the range is done.
				delete(to, r.Partition)
				return
			}
			if r.Offset+1 >= end {
				delete(to, r.Partition)
			}
			if r.Attrs.IsControl() {
				return
			}
			ev, err := g.toEvent(ctx, r)
			if err != nil {
				return // the live consumer dead-lettered it
			}
			if c.wants(ev.key) {
				s.event(ev, time.Now())
			}
		})
		if err := s.flush(); err != nil {
			return err
		}
	}
	return nil
}
