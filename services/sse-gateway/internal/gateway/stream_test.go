package gateway

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/r3labs/sse/v2"
)

// wantIDs fails unless got is exactly want: every delivery once, in order.
func wantIDs(t *testing.T, got, want []string) {
	t.Helper()
	if slices.Equal(got, want) {
		return
	}
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			t.Fatalf("deliveries: got %d, want %d; first difference at %d: got %s, want %s", len(got), len(want), i, got[i], want[i])
		}
	}
	t.Fatalf("deliveries: got %d, want %d (one is a prefix of the other)", len(got), len(want))
}

// wantPerRecipient checks got against the deliveries of each recipient:
// order holds per recipient (per key, so per partition), not across them.
// Anything in got that no list has is an error too.
func wantPerRecipient(t *testing.T, got []string, wants ...[]string) {
	t.Helper()
	owner := map[string]int{}
	for i, w := range wants {
		for _, id := range w {
			owner[id] = i
		}
	}
	split := make([][]string, len(wants))
	for _, id := range got {
		i, ok := owner[id]
		if !ok {
			t.Fatalf("delivery %s was not for this stream", id)
		}
		split[i] = append(split[i], id)
	}
	for i := range wants {
		wantIDs(t, split[i], wants[i])
	}
}

func hasDeliveries(n int) func([]received) bool {
	return func(r []received) bool { return countType(r, "delivery") >= n }
}

// A stream gets its user's deliveries and its channels', nothing else, in
// order; a Go client (r3labs/sse/v2) that comes back with Last-Event-ID gets
// what it missed from the history, with no gap and no duplicate.
func TestStreamResumeFromMemory(t *testing.T) {
	e := newEnv(t)
	g := e.start(e.config())
	tok := e.token("alice", time.Hour, "breaking")

	s := e.subscribe(g.Gateway, streamURL(g.Gateway, tok, "breaking"), nil)
	s.waitFor(t, "ready", func(r []received) bool { return countType(r, "ready") == 1 })

	var wantUser, wantChannel []string
	for i := range 3 {
		wantUser = append(wantUser, e.produce(mkDelivery("u:alice", fmt.Sprintf("a%d", i), i))...)
		e.produce(mkDelivery("u:bob", fmt.Sprintf("b%d", i), i)) // not alice's
		wantChannel = append(wantChannel, e.produce(mkDelivery("c:breaking", fmt.Sprintf("n%d", i), i))...)
		e.produce(mkDelivery("c:sports", fmt.Sprintf("s%d", i), i)) // not asked for
	}
	s.waitFor(t, "6 deliveries", hasDeliveries(6))
	time.Sleep(100 * time.Millisecond) // anything wrongly routed would show up by now
	wantPerRecipient(t, s.deliveries(), wantUser, wantChannel)

	// Disconnect, miss some, come back with the same client (its Last-Event-ID).
	s.close()
	var missed []string
	for i := 3; i < 8; i++ {
		missed = append(missed, e.produce(mkDelivery("u:alice", fmt.Sprintf("a%d", i), i))...)
	}
	missedChannel := e.produce(mkDelivery("c:breaking", "n9", 9))
	s2 := e.subscribe(g.Gateway, streamURL(g.Gateway, tok, "breaking"), s.client)
	s2.waitFor(t, "the missed deliveries", hasDeliveries(len(missed)+1))
	live := e.produce(mkDelivery("u:alice", "a-live", 1))
	s2.waitFor(t, "a live delivery after the resume", hasDeliveries(len(missed)+2))
	time.Sleep(100 * time.Millisecond)
	wantPerRecipient(t, s2.deliveries(), append(missed, live...), missedChannel)
	if n := counterValue(t, g.metrics.resumes.WithLabelValues("memory")); n != 1 {
		t.Fatalf("resumes from memory = %v, want 1", n)
	}
}

// When the history no longer holds what a client missed, the resume reads it
// from Kafka, on any replica: here a second replica that never saw the
// client, with a history of 2 per partition.
func TestStreamResumeFromKafkaOnAnotherReplica(t *testing.T) {
	e := newEnv(t)
	cfg := e.config()
	cfg.Gateway.History = 2
	a := e.start(cfg)
	tok := e.token("carol", time.Hour)

	s := e.subscribe(a.Gateway, streamURL(a.Gateway, tok), nil)
	s.waitFor(t, "ready", func(r []received) bool { return countType(r, "ready") == 1 })
	first := e.produce(mkDelivery("u:carol", "c0", 0), mkDelivery("u:carol", "c1", 1))
	s.waitFor(t, "2 deliveries", hasDeliveries(2))
	wantIDs(t, s.deliveries(), first)
	s.close()

	var missed []string
	for i := 2; i < 22; i++ {
		missed = append(missed, e.produce(mkDelivery("u:carol", fmt.Sprintf("c%d", i), i))...)
	}
	b := e.start(cfg) // another replica
	s2 := e.subscribe(b.Gateway, streamURL(b.Gateway, tok), s.client)
	s2.waitFor(t, "the missed deliveries", hasDeliveries(len(missed)))
	live := e.produce(mkDelivery("u:carol", "c-live", 1))
	s2.waitFor(t, "a live delivery", hasDeliveries(len(missed)+1))
	time.Sleep(100 * time.Millisecond)
	wantIDs(t, s2.deliveries(), append(missed, live...))
	if n := counterValue(t, b.metrics.resumes.WithLabelValues("kafka")); n != 1 {
		t.Fatalf("resumes from Kafka = %v, want 1", n)
	}
}

var _ = sse.NewClient
