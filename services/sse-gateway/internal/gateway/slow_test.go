package gateway

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/r3labs/sse/v2"

	"github.com/freshet/freshet/services/sse-gateway/internal/cursor"
)

// The queue keeps the latest version of each content item when full, in
// offset order; a full queue with nothing to conflate ends the stream.
func TestConnSlowClientPolicy(t *testing.T) {
	ev := func(off int64, item string) *event { return &event{partition: 0, offset: off, contentID: item} }

	c := newConn([]string{"u:x"}, []int32{0}, 3)
	for i, item := range []string{"a", "b", "c", "a", "b", "a"} {
		c.offer(ev(int64(i), item))
	}
	got, reason, conflated := c.take(nil)
	if reason != "" || conflated != 3 {
		t.Fatalf("reason %q, conflated %d; want none and 3", reason, conflated)
	}
	var offs []int64
	for _, e := range got {
		offs = append(offs, e.offset)
	}
	if !slices.Equal(offs, []int64{2, 4, 5}) { // c@2, b@4, a@5: the latest of each, in order
		t.Fatalf("queue after conflation: %v", offs)
	}

	c = newConn([]string{"u:x"}, []int32{0}, 3)
	for i := range 4 {
		c.offer(ev(int64(i), fmt.Sprint(i)))
	}
	if _, reason, _ := c.take(nil); reason != reasonResync {
		t.Fatalf("a full queue of distinct items: reason %q, want %q", reason, reasonResync)
	}

	// The resync refills the stream from the history, from its cursor on.
	h := newHub([]int64{0}, []int64{0}, 8)
	c = newConn([]string{"u:x"}, []int32{0}, 2)
	if _, _, ok := h.subscribe(c, nil); !ok {
		t.Fatal("subscribe refused")
	}
	for i := range 5 {
		h.publish(&event{partition: 0, offset: int64(i), key: "u:x", contentID: fmt.Sprint(i)})
	}
	if _, reason, _ := c.take(nil); reason != reasonResync {
		t.Fatalf("reason %q, want resync", reason)
	}
	if !h.resync(c, Cursor0(1)) || len(c.backlog) != 4 || c.backlog[0].offset != 1 {
		t.Fatalf("resync from offset 1: backlog %d", len(c.backlog))
	}
	for i := 5; i < 12; i++ { // the history (8) drops offsets 0 to 3
		h.publish(&event{partition: 0, offset: int64(i), key: "u:x", contentID: fmt.Sprint(i)})
	}
	c.take(nil)
	if h.resync(c, Cursor0(2)) {
		t.Fatal("resync from an offset the history no longer holds succeeded")
	}
}

// A client that stops reading does not delay the others: a reader of the
// same channel gets every delivery, in order, while the stalled one fills
// its socket and queue; the stalled stream is then ended by the policy, and
// resuming from the last id it fully received loses nothing.
func TestSlowClientDoesNotDelayOthers(t *testing.T) {
	e := newEnv(t)
	cfg := e.config()
	cfg.Gateway.QueueSize = 16
	cfg.Gateway.WriteTimeout = time.Second
	g := e.start(cfg)

	fast := e.subscribe(g.Gateway, streamURL(g.Gateway, e.token("fast", time.Hour, "breaking"), "breaking"), nil)
	fast.waitFor(t, "ready", func(r []received) bool { return countType(r, "ready") == 1 })

	const n = 300
	summary := strings.Repeat("s", 16<<10) // 16 KiB a delivery: a stalled socket fills fast
	producedAt := map[string]time.Time{}
	var want []string
	// burst produces n deliveries of distinct items (nothing to conflate)
	// and returns the reading client's delays, produce-ack to receipt.
	burst := func(round int) []time.Duration {
		before := len(fast.deliveries())
		var ids []string
		for i := range n {
			dl := mkDelivery("c:breaking", fmt.Sprintf("item%d-%d", round, i), i)
			dl.Content.Summary = summary
			id := e.produce(dl)
			producedAt[id[0]] = time.Now()
			ids = append(ids, id...)
		}
		want = append(want, ids...)
		got := fast.waitFor(t, "every delivery at the reading client", hasDeliveries(before+n))
		var delays []time.Duration
		for _, r := range got {
			if at, ok := producedAt[r.EventID]; ok && slices.Contains(ids, r.EventID) {
				delays = append(delays, r.At.Sub(at))
			}
		}
		sort.Slice(delays, func(i, j int) bool { return delays[i] < delays[j] })
		return delays
	}
	report := func(what string, d []time.Duration) {
		t.Logf("reading client, produce-ack to receipt, %s: p50 %v, p99 %v, max %v (n=%d)",
			what, d[len(d)/2], d[len(d)*99/100], d[len(d)-1], len(d))
	}
	report("alone", burst(0))
	waitStreams(t, g.Gateway, 1)

	// The stalled client: a tiny receive buffer, and it never reads.
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 2048) })
	}}
	slow, err := d.Dial("tcp", g.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	fmt.Fprintf(slow, "GET /v1/stream?channels=breaking&token=%s HTTP/1.1\r\nHost: x\r\n\r\n", e.token("slow", time.Hour, "breaking"))
	waitStreams(t, g.Gateway, 2)
	slowFrom := len(want)

	report("with a stalled client", burst(1))
	wantIDs(t, fast.deliveries(), want)
	if r := countType(fast.events(), "ready") + countType(fast.events(), "disconnect"); r != 1 {
		t.Fatalf("the reading client was disconnected (%d ready/disconnect events)", r)
	}
	t.Logf("queue overflows of bursts, re-read from the history: %v", counterValue(t, g.metrics.resyncs))
	want = want[slowFrom:] // what the stalled client should get

	// The stalled stream is ended by the policy (queue full, or a missed
	// write deadline, whichever comes first).
	deadline := time.Now().Add(10 * time.Second)
	for counterValue(t, g.metrics.ended.WithLabelValues(reasonQueueFull))+counterValue(t, g.metrics.ended.WithLabelValues(reasonWriteStall)) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the stalled stream was not ended")
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("stalled stream ended: slow_client=%v write_timeout=%v",
		counterValue(t, g.metrics.ended.WithLabelValues(reasonQueueFull)), counterValue(t, g.metrics.ended.WithLabelValues(reasonWriteStall)))

	// The stalled client now reads what reached it, and resumes from the
	// last complete event: nothing is lost.
	slow.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(slow), nil)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body) // ends when the gateway closed it
	var before []string
	lastID := ""
	for _, block := range strings.Split(string(raw), "\n\n") {
		if !strings.Contains(block, "event: delivery") || !strings.HasSuffix(block, "}") {
			continue
		}
		for _, line := range strings.Split(block, "\n") {
			if id, ok := strings.CutPrefix(line, "id: "); ok {
				lastID = id
			}
			if data, ok := strings.CutPrefix(line, "data: "); ok {
				i := strings.Index(data, `"event_id":"`)
				before = append(before, data[i+12:i+12+32])
			}
		}
	}
	if len(before) >= len(want) {
		t.Fatalf("the stalled client got all %d deliveries: it was not slow", len(before))
	}
	client := sse.NewClient("")
	client.ReconnectStrategy = &noRetry{}
	if lastID != "" {
		client.LastEventID.Store([]byte(lastID))
	}
	rest := e.subscribe(g.Gateway, streamURL(g.Gateway, e.token("slow", time.Hour, "breaking"), "breaking"), client)
	rest.waitFor(t, "the rest", hasDeliveries(len(want)-len(before)))
	wantIDs(t, append(before, rest.deliveries()...), want)
	t.Logf("stalled client: %d deliveries before it was ended, %d on resume", len(before), len(rest.deliveries()))
}

// Cursor0 is a cursor at offset o of partition 0.
func Cursor0(o int64) cursor.Cursor { return cursor.Cursor{{Partition: 0, Offset: o}} }

func waitStreams(t *testing.T, g *Gateway, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for g.hub.Load().count() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d streams, want %d", g.hub.Load().count(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
