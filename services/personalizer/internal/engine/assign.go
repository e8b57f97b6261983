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
	"github.com/freshet/freshet/pkg/kafka"
	"github.com/freshet/freshet/pkg/logging"
	"github.com/freshet/freshet/services/personalizer/internal/input"
	"github.com/freshet/freshet/services/personalizer/internal/wire"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
)

// handleAssignment applies the group's assignment changes: revoked or lost
// partitions leave the table, new ones are restored, and the content
// consumer is moved to the lowest progress of the owned partitions.
func (e *Engine) handleAssignment(ctx context.Context) error {
	added, removed := e.events.take()
	if len(added) == 0 && len(removed) == 0 {
		return nil
	}
	for _, p := range removed {
		if _, ok := e.owned[p]; !ok {
			continue
		}
		delete(e.owned, p)
		n := e.table.DropPartition(p)
		e.log.Info("partition handed over", logging.Partition(p), zap.Int("profiles", n))
	}
	var fresh []int32
	for _, p := range added {
		if _, ok := e.owned[p]; !ok && !slices.Contains(fresh, p) {
			fresh = append(fresh, p)
		}
	}
	if len(fresh) > 0 {
		e.ready.SetNotReady(fmt.Errorf("restoring partitions %v", fresh))
		committed, err := e.fetchCommitted(ctx, fresh)
		if err != nil {
			return err
		}
		if err := e.restore(ctx, committed); err != nil {
			return err
		}
	}
	e.ownedN.Store(int32(len(e.owned)))
	e.m.partitions.Set(float64(len(e.owned)))
	e.ready.SetReady()
	return e.repositionContent()
}

// committedOffset is a partition's committed offset and the progress in its
// metadata.
type committedOffset struct {
	offset   int64 // -1: none
	progress wire.Progress
}

// fetchCommitted reads the group's committed offsets of parts, waiting while
// a transaction of the previous owner is pending (RequireStable).
func (e *Engine) fetchCommitted(ctx context.Context, parts []int32) (map[int32]committedOffset, error) {
	for {
		resps, err := e.adm.FetchOffsets(kadm.RequireStable(ctx), e.cfg.Group)
		if err == nil {
			err = resps.Error()
		}
		if errors.Is(err, kerr.UnstableOffsetCommit) || errors.Is(err, kerr.CoordinatorLoadInProgress) {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("engine: fetch committed offsets of group %s: %w", e.cfg.Group, err)
		}
		out := make(map[int32]committedOffset, len(parts))
		for _, p := range parts {
			co := committedOffset{offset: -1, progress: wire.Progress{}}
			if r, ok := resps.Lookup(e.cfg.Topics.Profiles, p); ok && r.At >= 0 {
				co.offset = r.At
				prog, err := wire.ParseProgress(r.Metadata)
				switch {
				case errors.Is(err, wire.ErrNotProgress):
					e.log.Warn("committed offset without personalizer progress: reading content from the start",
						logging.Partition(p))
				case err != nil:
					return nil, fmt.Errorf("engine: partition %d: %w", p, err)
				default:
					co.progress = prog
				}
			}
			out[p] = co
		}
		return out, nil
	}
}

// restore reads the profiles of the given partitions below their committed
// offsets into the table and makes them owned. Records at and after the
// committed offset are left to the group consumer, which applies them in
// transactions (and sends the malformed ones to the DLQ, once).
func (e *Engine) restore(ctx context.Context, committed map[int32]committedOffset) error {
	start := e.now()
	ends := map[int32]int64{}
	for p, co := range committed {
		st := &partState{progress: co.progress, committed: maps.Clone(co.progress)}
		if co.offset > 0 {
			st.profileNext, st.profileCommitted = co.offset, co.offset
			ends[p] = co.offset
		}
		e.owned[p] = st
	}
	if len(ends) == 0 {
		return nil
	}
	if err := e.boundEnds(ctx, ends); err != nil {
		return err
	}
	var left int64
	for _, end := range ends {
		left += end
	}
	e.m.restoreLeft.Set(float64(left))
	e.table.Reserve(int(min(left, 1<<26)))
	defer e.m.restoreLeft.Set(0)
	offsets := map[int32]kgo.Offset{}
	for p := range ends {
		offsets[p] = kgo.NewOffset().AtStart()
	}
	cl, err := kgo.NewClient(append(append([]kgo.Opt{}, e.opts...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{e.cfg.Topics.Profiles: offsets}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
		// Bounded buffers: the table, not the fetches, should hold the
		// memory (see docs/personalizer.md, "Memory").
		kgo.FetchMaxBytes(8<<20), kgo.FetchMaxPartitionBytes(2<<20),
	)...)
	if err != nil {
		return fmt.Errorf("engine: restore client: %w", err)
	}
	defer cl.Close()
	var (
		n, bad  int
		batch   []*kgo.Record
		decoded []input.Profile
	)
	for len(ends) > 0 {
		fetches := cl.PollRecords(ctx, restoreBatch)
		if err := ctx.Err(); err != nil {
			return err
		}
		fetches.EachError(func(t string, p int32, err error) {
			e.log.Warn("restore fetch", logging.Topic(t), logging.Partition(p), logging.Error(err))
		})
		batch = batch[:0]
		fetches.EachRecord(func(r *kgo.Record) {
			end, ok := ends[r.Partition]
			if !ok {
				return
			}
			if r.Offset >= end-1 {
				delete(ends, r.Partition)
			}
			if r.Offset < end && !r.Attrs.IsControl() {
				batch = append(batch, r)
			}
		})
		decoded = e.decodeProfiles(ctx, batch, decoded[:0])
		for i := range decoded {
			// A profile the schema registry could not help decode is
			// decoded again until it can: skipping it would leave the
			// user out of the table.
			for wait := 100 * time.Millisecond; codec.IsTransient(decoded[i].Err); wait = min(2*wait, 5*time.Second) {
				e.log.Warn("restore: decode (transient), retrying", logging.Record(batch[i]), zap.Duration("after", wait), logging.Error(decoded[i].Err))
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(wait):
				}
				decoded[i] = input.DecodeProfile(ctx, e.codec, batch[i])
			}
		}
		for i, d := range decoded {
			if d.Err != nil {
				bad++ // sent to the DLQ by the owner that first consumed it
				continue
			}
			e.applyProfile(batch[i], d)
		}
		n += len(batch)
		e.m.restoreRecords.Add(float64(len(batch)))
		left -= int64(len(batch))
		e.m.restoreLeft.Set(float64(max(left, 0)))
	}
	took := e.now().Sub(start)
	e.m.restoreSeconds.Observe(took.Seconds())
	e.log.Info("profiles restored", zap.Int("records", n), zap.Int("malformed", bad),
		zap.Int("profiles", e.table.Len()), zap.Duration("took", took), zap.Any("partitions", slices.Sorted(maps.Keys(committed))))
	return nil
}

// boundEnds makes the restore end at what the log holds. A committed offset
// past the log's last stable offset (the topic was recreated, or its records
// deleted) is lowered to it, and a partition whose log starts at or past its
// end has nothing to read and is dropped: the restore would wait forever for
// records that no longer exist.
func (e *Engine) boundEnds(ctx context.Context, ends map[int32]int64) error {
	bounds, err := kafka.LogBounds(ctx, e.adm, e.cfg.Topics.Profiles)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		// Not worth failing the restore for: read up to the committed
		// offsets, as a log that still holds them lets it.
		e.log.Warn("restore: the profiles log's bounds are unknown", logging.Error(err))
		return nil
	}
	for p, end := range ends {
		b, ok := bounds[p]
		if !ok {
			continue
		}
		if b.Stable < end {
			e.log.Warn("committed offset past the end of the profiles log (topic recreated or records deleted?): restoring what the log holds",
				logging.Partition(p), logging.Offset(end), zap.Int64("log_end", b.Stable))
			end = b.Stable
		}
		if b.Start >= end {
			delete(ends, p) // nothing left below the end
			continue
		}
		ends[p] = end
	}
	return nil
}

// restoreBatch bounds the records decoded at once while restoring.
const restoreBatch = 16384

// decodeProfiles decodes rs, in parallel for large batches, and appends the
// results to dst in the order of rs.
func (e *Engine) decodeProfiles(ctx context.Context, rs []*kgo.Record, dst []input.Profile) []input.Profile {
	dst = slices.Grow(dst, len(rs))[:len(rs)]
	workers := min(runtime.GOMAXPROCS(0), len(rs)/256+1)
	var wg sync.WaitGroup
	chunk := (len(rs) + workers - 1) / workers
	for w := range workers {
		lo, hi := w*chunk, min((w+1)*chunk, len(rs))
		if lo >= hi {
			break
		}
		wg.Go(func() {
			for i := lo; i < hi; i++ {
				dst[i] = input.DecodeProfile(ctx, e.codec, rs[i])
			}
		})
	}
	wg.Wait()
	return dst
}

// applyProfile applies a decoded profile record to the table.
func (e *Engine) applyProfile(r *kgo.Record, d input.Profile) {
	if d.Deleted {
		e.table.Delete(d.UserID)
		return
	}
	d.Profile.Partition = r.Partition
	e.table.Upsert(d.Profile)
}

// repositionContent (re)starts the content consumer at the lowest progress
// of the owned partitions, by content partition. The changes carried over,
// polled from the old consumer, are dropped: the new one reads them again.
func (e *Engine) repositionContent() error {
	e.carry = nil
	if e.content != nil {
		e.content.Close()
		e.content = nil
	}
	if len(e.owned) == 0 {
		return nil
	}
	offsets := make(map[int32]kgo.Offset, e.contentN)
	for c := range e.contentN {
		low := int64(-1)
		for _, st := range e.owned {
			o := st.progress[c] // 0 when missing: from the start
			if low < 0 || o < low {
				low = o
			}
		}
		if low <= 0 {
			offsets[c] = kgo.NewOffset().AtStart()
		} else {
			offsets[c] = kgo.NewOffset().At(low)
		}
	}
	fetch := []kgo.Opt{kgo.FetchMaxWait(max(e.cfg.PollWait, 10*time.Millisecond))} // franz-go's minimum
	if e.cfg.MinTransactionInterval > 0 {
		// Transactions are spaced by their fetches: the broker holds a
		// fetch until the interval has passed (or a megabyte waits), and
		// returns every change that came meanwhile at once. Waiting in
		// the loop instead left all but the first change of a window to
		// the next fetch, and polling through the window fetched each
		// few changes on their own (more requests for the broker).
		fetch = []kgo.Opt{kgo.FetchMaxWait(max(e.cfg.MinTransactionInterval, 10*time.Millisecond)), kgo.FetchMinBytes(1 << 20)}
	}
	opts := append([]kgo.Opt{}, e.opts...)
	opts = append(opts,
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{e.cfg.Topics.Content: offsets}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)
	cl, err := kgo.NewClient(append(opts, fetch...)...)
	if err != nil {
		return fmt.Errorf("engine: content consumer: %w", err)
	}
	e.content = cl
	return nil
}
