package engine

import (
	"sync"
)

// partition tracks the changes of one assigned partition in offset order,
// to commit up to the first one not done.
type partition struct {
	topic string
	part  int32

	mu        sync.Mutex
	pending   []*slot // in offset order; done ones at the front are popped
	next      int64   // offset to commit: after the last done prefix; -1 none yet
	committed int64   // last offset committed
	revoked   bool
}

// slot is one consumed record's place in its partition.
type slot struct {
	p      *partition
	offset int64
	done   bool
}

func newPartition(topic string, part int32) *partition {
	return &partition{topic: topic, part: part, next: -1, committed: -1}
}

// add appends the record at offset; records come in offset order.
func (p *partition) add(offset int64) *slot {
	s := &slot{p: p, offset: offset}
	p.mu.Lock()
	p.pending = append(p.pending, s)
	p.mu.Unlock()
	return s
}

// finish marks s done and advances the committable offset past the done
// prefix.
func (s *slot) finish() {
	p := s.p
	p.mu.Lock()
	defer p.mu.Unlock()
	s.done = true
	i := 0
	for i < len(p.pending) && p.pending[i].done {
		p.next = p.pending[i].offset + 1
		i++
	}
	if i > 0 {
		clear(p.pending[:i])
		p.pending = p.pending[i:]
	}
}

// toCommit returns the offset to commit and whether it moved since the
// last commit.
func (p *partition) toCommit() (int64, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.next, !p.revoked && p.next > p.committed
}

func (p *partition) markCommitted(off int64) {
	p.mu.Lock()
	if off > p.committed {
		p.committed = off
	}
	p.mu.Unlock()
}
