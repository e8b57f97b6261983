package gateway

import (
	"net"
	"sync"
	"time"

	"github.com/freshet/freshet/services/sse-gateway/internal/cursor"
)

// event is one Delivery as the gateway streams it, rendered once and shared
// by every connection it goes to. Read-only after the consumer made it.
type event struct {
	partition int32
	offset    int64
	key       string // routing key: "u:<user>" or "c:<channel>"
	contentID string // conflation key
	eventID   string
	deadline  time.Time // zero: never stale
	committed time.Time
	received  time.Time // when the consumer got the record
	data      []byte    // JSON of the delivery, one line
}

// userKey and channelKey are the routing keys of a connection's streams.
func userKey(id string) string    { return "u:" + id }
func channelKey(ch string) string { return "c:" + ch }

// partitionState is the bounded history of one partition: every delivery
// the consumer read from offset low on, newest last, at most size of them.
// Records older than low are only in Kafka.
type partitionState struct {
	ring  []*event
	head  int // index of the oldest event
	n     int
	low   int64 // the history holds every record with offset >= low
	next  int64 // next offset the consumer will hand over
	ready bool  // next reached the end offset seen at start
	end   int64
}

func (ps *partitionState) push(ev *event) {
	if len(ps.ring) == 0 {
		ps.low = ev.offset + 1
		return
	}
	if ps.n == len(ps.ring) {
		old := ps.ring[ps.head]
		ps.ring[ps.head] = nil
		ps.head = (ps.head + 1) % len(ps.ring)
		ps.n--
		ps.low = old.offset + 1
	}
	ps.ring[(ps.head+ps.n)%len(ps.ring)] = ev
	ps.n++
}

// each calls f on the events with offset >= from, oldest first.
func (ps *partitionState) each(from int64, f func(*event)) {
	for i := 0; i < ps.n; i++ {
		ev := ps.ring[(ps.head+i)%len(ps.ring)]
		if ev.offset >= from {
			f(ev)
		}
	}
}

// hub routes the consumer's events to the connections that want them and
// keeps the history that resumes come from. Its lock orders everything:
// an event is either in a connection's backlog (it was published before
// the connection subscribed) or offered to its queue (after), never both.
type hub struct {
	mu     sync.Mutex
	parts  []*partitionState
	subs   map[string]map[*conn]struct{}
	conns  map[*conn]struct{}
	closed bool
	killed bool

	batches uint64  // publishBatch calls, to wake each connection once
	touched []*conn // publishBatch's scratch, reused (only the consumer calls it)
}

func newHub(start, end []int64, history int) *hub {
	h := &hub{subs: map[string]map[*conn]struct{}{}, conns: map[*conn]struct{}{}}
	for p := range start {
		h.parts = append(h.parts, &partitionState{
			ring: make([]*event, history), low: start[p], next: start[p], end: end[p],
			ready: start[p] >= end[p],
		})
	}
	return h
}

// ready reports whether the consumer has read every partition up to where
// it ended when the gateway started: before that, "now" is not known.
func (h *hub) ready() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, ps := range h.parts {
		if !ps.ready {
			return false
		}
	}
	return true
}

// advance records that the consumer is past offset o of partition p
// without an event for the connections (a control record, a record that went
// to the dead letter topic).
func (h *hub) advance(p int32, o int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.advanceLocked(p, o)
}

func (h *hub) advanceLocked(p int32, o int64) {
	ps := h.parts[p]
	if o+1 > ps.next {
		ps.next = o + 1
	}
	if !ps.ready && ps.next >= ps.end {
		ps.ready = true
	}
}

// publish adds ev to the history and offers it to the connections of its key.
func (h *hub) publish(ev *event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	ps := h.parts[ev.partition]
	if ev.offset < ps.next {
		return // already seen (a re-fetch)
	}
	ps.push(ev)
	h.advanceLocked(ev.partition, ev.offset)
	for c := range h.subs[ev.key] {
		c.offer(ev)
	}
}

// publishBatch publishes the events of one fetch in order (nil entries
// stand for records that only advance the position: control records, dead
// letters, given by skips) and wakes each connection it enqueued to once,
// after the batch, so that its writer writes them with one syscall.
func (h *hub) publishBatch(evs []*event, skips []skip) {
	h.mu.Lock()
	h.batches++
	gen := h.batches
	touched := h.touched[:0]
	si := 0
	for _, ev := range evs {
		if ev == nil {
			h.advanceLocked(skips[si].partition, skips[si].offset)
			si++
			continue
		}
		ps := h.parts[ev.partition]
		if ev.offset < ps.next {
			continue
		}
		ps.push(ev)
		h.advanceLocked(ev.partition, ev.offset)
		for c := range h.subs[ev.key] {
			c.enqueue(ev)
			if c.batch != gen {
				c.batch = gen
				touched = append(touched, c)
			}
		}
	}
	h.mu.Unlock()
	for _, c := range touched {
		c.wake()
	}
	clear(touched)
	h.touched = touched
}

// skip is a record that only moves a partition's position.
type skip struct {
	partition int32
	offset    int64
}

// replay is a range of a partition a connection must read from Kafka
// because the history no longer holds it: offsets [from, to).
type replay struct {
	partition int32
	from, to  int64
}

// subscribe registers c for its keys and returns where its stream starts:
// the cursor (every partition of c at the resume offset, or at the
// consumer's position for a new stream) and the ranges to read from Kafka.
// Events of the history that c missed go to c's backlog.
func (h *hub) subscribe(c *conn, resume cursor.Cursor) (cursor.Cursor, []replay, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, nil, false
	}
	var cur cursor.Cursor
	var replays []replay
	for _, p := range c.partitions {
		ps := h.parts[p]
		from, ok := resume.Offset(p)
		switch {
		case !ok || from >= ps.next:
			// A new stream starts now. A cursor ahead of this replica's
			// consumer (another replica was faster) starts where it says:
			// the writer skips what is below it.
			if !ok {
				from = ps.next
			}
		case from >= ps.low:
			ps.each(from, func(ev *event) {
				if c.wants(ev.key) {
					c.backlog = append(c.backlog, ev)
				}
			})
		default:
			replays = append(replays, replay{partition: p, from: from, to: ps.next})
		}
		cur = cur.With(p, from)
	}
	for _, k := range c.keys {
		m := h.subs[k]
		if m == nil {
			m = map[*conn]struct{}{}
			h.subs[k] = m
		}
		m[c] = struct{}{}
	}
	h.conns[c] = struct{}{}
	return cur, replays, true
}

func (h *hub) unsubscribe(c *conn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, k := range c.keys {
		if m := h.subs[k]; m != nil {
			delete(m, c)
			if len(m) == 0 {
				delete(h.subs, k)
			}
		}
	}
	delete(h.conns, c)
}

// shutdown tells every connection to reconnect elsewhere and refuses new
// ones.
func (h *hub) shutdown() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for c := range h.conns {
		c.kick(reasonShutdown)
	}
}

// attach records the hijacked connection of c and reports whether c may go
// on: false when kill came first (c is then ended by its caller).
func (h *hub) attach(c *conn, nc net.Conn) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	c.mu.Lock()
	c.nc = nc
	c.mu.Unlock()
	return !h.killed
}

// kill ends every stream at once, without a last event, and closes their
// connections: Close, the abrupt path.
func (h *hub) kill() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed, h.killed = true, true
	for c := range h.conns {
		c.kick(reasonKilled)
		if nc := c.netConn(); nc != nil {
			nc.Close()
		}
	}
}

// count returns the number of subscribed connections.
func (h *hub) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.conns)
}

// resync refills c after its queue overflowed: the events of the history
// from cur on go to c's backlog, and c takes offers again. It reports false
// when the history no longer holds everything from cur on (the stream fell
// behind it), and leaves c overflowed.
func (h *hub) resync(c *conn, cur cursor.Cursor) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, pos := range cur {
		if pos.Offset < h.parts[pos.Partition].low {
			return false
		}
	}
	for _, pos := range cur {
		h.parts[pos.Partition].each(pos.Offset, func(ev *event) {
			if c.wants(ev.key) {
				c.backlog = append(c.backlog, ev)
			}
		})
	}
	c.mu.Lock()
	c.overflowed = false
	c.mu.Unlock()
	return true
}
