package capture

import (
	"sync"
	"time"
)

// tracker holds the transactions whose events are in flight, in commit
// order, and the LSN that may be confirmed to Postgres: the end of the last
// transaction such that it and every transaction before it are complete
// (commit seen) and every one of their events was acked by Kafka.
//
// This is the ingestor's guarantee: the slot never moves past a change that
// is not on Kafka, so a crash at any point loses nothing (a restart streams
// again from the confirmed LSN; events sent twice keep their ids).
type tracker struct {
	mu        sync.Mutex
	queue     []*txn
	confirmed uint64
	err       error // the first produce failure: nothing after it may be confirmed
	changed   chan struct{}
}

// txn is one transaction (or one lone message) being produced.
type txn struct {
	endLSN     uint64
	commitTime time.Time
	pending    int
	sealed     bool
	acked      chan struct{} // closed once confirmed
}

func newTracker(confirmed uint64) *tracker {
	return &tracker{confirmed: confirmed, changed: make(chan struct{}, 1)}
}

// begin appends a transaction; its events are added with add and it is
// sealed with seal once its commit arrived.
func (t *tracker) begin(commitTime time.Time) *txn {
	x := &txn{commitTime: commitTime, acked: make(chan struct{})}
	t.mu.Lock()
	t.queue = append(t.queue, x)
	t.mu.Unlock()
	return x
}

// add counts one more event of x in flight.
func (t *tracker) add(x *txn) {
	t.mu.Lock()
	x.pending++
	t.mu.Unlock()
}

// done records the ack (err nil) or failure of one event of x.
func (t *tracker) done(x *txn, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err != nil {
		if t.err == nil {
			t.err = err
		}
		return
	}
	x.pending--
	t.advance()
}

// seal marks x complete: its commit ends at endLSN.
func (t *tracker) seal(x *txn, endLSN uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	x.endLSN = endLSN
	x.sealed = true
	t.advance()
}

func (t *tracker) advance() {
	n := 0
	for _, x := range t.queue {
		if !x.sealed || x.pending > 0 || t.err != nil {
			break
		}
		if x.endLSN > t.confirmed {
			t.confirmed = x.endLSN
		}
		close(x.acked)
		n++
	}
	if n > 0 {
		clear(t.queue[:n])
		t.queue = t.queue[n:]
		select {
		case t.changed <- struct{}{}:
		default:
		}
	}
}

// state returns the confirmable LSN, the transactions in flight and the
// first failure.
func (t *tracker) state() (confirmed uint64, inFlight int, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.confirmed, len(t.queue), t.err
}
