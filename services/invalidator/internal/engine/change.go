package engine

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/freshet/freshet/pkg/events"
	"github.com/freshet/freshet/pkg/pipeline"
	"github.com/twmb/franz-go/pkg/kgo"
)

// change is one consumed content change on its way through the targets.
type change struct {
	rec    *kgo.Record
	ev     *events.ContentChange
	commit time.Time // source commit time (or the record's timestamp)
	slot   *slot
	purge  pipeline.Purge

	pending atomic.Int32 // targets not done yet
	failed  atomic.Bool  // some target dead-lettered it
}

// unit is what one target gets from one source transaction: the union of
// its changes' purges there. It is never split across batches.
type unit struct {
	changes  []*change
	purge    pipeline.Purge
	queuedAt time.Time
}

// txKey identifies a source transaction within one poll.
type txKey struct {
	txid, lsn uint64
	db        string
}

// union returns the purge sets' union, each list without duplicates, in
// first-seen order.
func union(ps []pipeline.Purge) pipeline.Purge {
	if len(ps) == 1 {
		return ps[0]
	}
	var out pipeline.Purge
	seen := map[string]struct{}{}
	add := func(dst []string, kind byte, list []string) []string {
		for _, s := range list {
			k := string(kind) + s
			if _, ok := seen[k]; !ok {
				seen[k] = struct{}{}
				dst = append(dst, s)
			}
		}
		return dst
	}
	for _, p := range ps {
		out.Keys = add(out.Keys, 'k', p.Keys)
		out.URLs = add(out.URLs, 'u', p.URLs)
		out.Prefixes = add(out.Prefixes, 'p', p.Prefixes)
	}
	return out
}

// inflight bounds the changes not yet done.
type inflight struct {
	mu   sync.Mutex
	cond *sync.Cond
	n    int
}

func newInflight() *inflight {
	f := &inflight{}
	f.cond = sync.NewCond(&f.mu)
	return f
}

func (f *inflight) add(n int) {
	f.mu.Lock()
	f.n += n
	f.mu.Unlock()
}

func (f *inflight) done() {
	f.mu.Lock()
	f.n--
	f.mu.Unlock()
	f.cond.Broadcast()
}

// waitBelow blocks while more than limit changes are in flight, or until
// stop reports true; both are checked on every wake-up (a change done, or
// wake). While it waits, onWait runs on every wake-up, without the lock.
func (f *inflight) waitBelow(limit int, stop func() bool, onWait func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for f.n > limit && !stop() {
		f.mu.Unlock()
		onWait()
		f.mu.Lock()
		if f.n <= limit || stop() {
			return
		}
		f.cond.Wait()
	}
}

// wake wakes a waiter to check again.
func (f *inflight) wake() { f.cond.Broadcast() }
