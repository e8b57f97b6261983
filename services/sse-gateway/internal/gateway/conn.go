package gateway

import (
	"net"
	"sync"
)

// Why a stream ends, as its last event says ("disconnect" or "reconnect").
const (
	reasonShutdown   = "shutdown"      // the replica is stopping: reconnect
	reasonQueueFull  = "slow_client"   // fell behind the whole history
	reasonWriteStall = "write_timeout" // a write missed its deadline
	reasonExpired    = "token_expired" // the token ran out: reconnect with a new one
	reasonResync     = "resync"        // not an end: the queue overflowed
	reasonKilled     = "killed"        // Close: cut without a last event
	reasonGone       = "client_gone"   // a write failed: the client went away
)

// conn is one stream's subscription: what it wants and the bounded queue
// between the consumer (offer, never blocks) and the stream's writer.
//
// Slow-client policy (docs/sse-gateway.md): the queue holds at most max
// events, and offer never blocks the consumer.
//  1. When the queue is full, a queued event of the same content item is
//     dropped and the new one appended: conflation to the latest version.
//  2. When no queued event shares the item, the queue is dropped and the
//     stream marked overflowed: its writer re-reads from its cursor out of
//     the history (every dropped event is there), so a bursty client loses
//     nothing and stays connected.
//  3. A stream whose cursor has fallen out of the history is ended with
//     reason slow_client, and one whose write misses the write deadline
//     with reason write_timeout; either way the client resumes from its
//     last id, from Kafka if need be.
type conn struct {
	keys       []string
	partitions []int32
	max        int

	// backlog is filled by hub.subscribe under the hub's lock, before any
	// offer; only the writer reads it afterwards.
	backlog []*event

	mu         sync.Mutex
	nc         net.Conn // the hijacked connection, nil over HTTP/2
	queue      []*event
	batch      uint64 // the last publishBatch that enqueued to c (hub's lock)
	kicked     string // reason the stream must end, "" while it runs
	overflowed bool   // the queue was dropped: resync from the history
	conflated  int
	notify     chan struct{} // capacity 1: "there is something to do"
}

func newConn(keys []string, partitions []int32, max int) *conn {
	return &conn{keys: keys, partitions: partitions, max: max, notify: make(chan struct{}, 1)}
}

func (c *conn) wants(key string) bool {
	for _, k := range c.keys {
		if k == key {
			return true
		}
	}
	return false
}

// offer queues ev without blocking, applying the slow-client policy, and
// wakes the writer.
func (c *conn) offer(ev *event) {
	c.enqueue(ev)
	c.wake()
}

// enqueue is offer without the wake-up, for batches: the caller wakes c
// once after the batch, so that its writer writes the batch in one go.
func (c *conn) enqueue(ev *event) {
	c.mu.Lock()
	if c.kicked != "" || c.overflowed {
		c.mu.Unlock()
		return
	}
	if len(c.queue) >= c.max {
		i := -1
		if ev.contentID != "" {
			for j, q := range c.queue {
				if q.contentID == ev.contentID {
					i = j
					break
				}
			}
		}
		if i < 0 {
			c.overflowed = true
			clear(c.queue)
			c.queue = c.queue[:0]
			c.mu.Unlock()
			return
		}
		// Remove the older version and append the new one at the end, so
		// that the queue stays in offset order per partition (the cursor
		// of each event covers everything before it).
		copy(c.queue[i:], c.queue[i+1:])
		c.queue[len(c.queue)-1] = ev
		c.conflated++
	} else {
		c.queue = append(c.queue, ev)
	}
	c.mu.Unlock()
}

// kick ends the stream for reason, unless it is already ending.
func (c *conn) kick(reason string) {
	c.mu.Lock()
	if c.kicked == "" {
		c.kicked = reason
	}
	c.mu.Unlock()
	c.wake()
}

func (c *conn) wake() {
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

// take returns the queued events (and empties the queue), or the reason the
// stream must end, or reasonResync when the queue overflowed.
func (c *conn) take(buf []*event) ([]*event, string, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.kicked != "" {
		return nil, c.kicked, c.conflated
	}
	if c.overflowed {
		return nil, reasonResync, c.conflated
	}
	buf = append(buf[:0], c.queue...)
	clear(c.queue)
	c.queue = c.queue[:0]
	n := c.conflated
	c.conflated = 0
	return buf, "", n
}

// netConn returns the hijacked connection, or nil.
func (c *conn) netConn() net.Conn {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nc
}
