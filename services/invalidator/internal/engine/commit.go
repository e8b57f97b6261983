package engine

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"
)

// partition returns the tracker of a partition, made on first use.
func (e *Engine) partition(topic string, part int32) *partition {
	e.mu.Lock()
	defer e.mu.Unlock()
	ps := e.parts[topic]
	if ps == nil {
		ps = map[int32]*partition{}
		e.parts[topic] = ps
	}
	p := ps[part]
	if p == nil {
		p = newPartition(topic, part)
		ps[part] = p
	}
	return p
}

// every calls f every d until ctx is done.
func every(ctx context.Context, d time.Duration, f func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f()
		}
	}
}

// commit commits, for every tracked partition (only, when given), the
// offset after its done prefix, once the audit and latency records
// produced so far are flushed.
func (e *Engine) commit(ctx context.Context, only ...map[string][]int32) {
	e.commitMu.Lock()
	defer e.commitMu.Unlock()
	offsets := map[string]map[int32]kgo.EpochOffset{}
	var moved []*partition
	e.mu.Lock()
	for topic, ps := range e.parts {
		for part, p := range ps {
			if len(only) > 0 && !contains32(only[0][topic], part) {
				continue
			}
			off, ok := p.toCommit()
			if !ok {
				continue
			}
			if offsets[topic] == nil {
				offsets[topic] = map[int32]kgo.EpochOffset{}
			}
			offsets[topic][part] = kgo.EpochOffset{Epoch: -1, Offset: off}
			moved = append(moved, p)
		}
	}
	e.mu.Unlock()
	if len(offsets) == 0 {
		return
	}
	if err := e.cl.Flush(ctx); err != nil {
		return // shutting down: committed next time, or consumed again
	}
	var failed bool
	e.cl.CommitOffsetsSync(ctx, offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			failed = true
			if ctx.Err() == nil {
				e.log.Warn("commit offsets", zap.Error(err))
			}
			return
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if p.ErrorCode != 0 {
					failed = true
				}
			}
		}
	})
	if failed {
		return
	}
	e.m.commits.Inc()
	for _, p := range moved {
		off, _ := offsets[p.topic][p.part]
		p.markCommitted(off.Offset)
	}
}

func contains32(list []int32, x int32) bool {
	for _, v := range list {
		if v == x {
			return true
		}
	}
	return false
}

// assigned is kgo's OnPartitionsAssigned (called after every join, even
// with nothing new assigned, before fetching): new partitions start
// tracking at their first record. The first call makes the engine ready.
func (e *Engine) assigned(_ context.Context, _ *kgo.Client, m map[string][]int32) {
	e.log.Info("partitions assigned", zap.Any("partitions", m))
	e.readyMu.Lock()
	e.joined = true
	e.readyMu.Unlock()
	e.setReadiness()
}

// revoked is kgo's OnPartitionsRevoked: commit what is done of the
// revoked partitions, then stop tracking them. Their changes still in
// flight finish, but their offsets are the next owner's to commit: it
// consumes them again (a repeated purge is harmless).
func (e *Engine) revoked(ctx context.Context, _ *kgo.Client, m map[string][]int32) {
	e.commit(ctx, m)
	e.drop(m)
}

// lost is kgo's OnPartitionsLost: the partitions are someone else's
// already; stop tracking them without committing.
func (e *Engine) lost(_ context.Context, _ *kgo.Client, m map[string][]int32) {
	e.drop(m)
}

func (e *Engine) drop(m map[string][]int32) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for topic, parts := range m {
		for _, part := range parts {
			if p := e.parts[topic][part]; p != nil {
				p.mu.Lock()
				p.revoked = true
				p.mu.Unlock()
				delete(e.parts[topic], part)
			}
		}
	}
}
