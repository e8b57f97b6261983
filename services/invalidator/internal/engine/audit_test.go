package engine_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/freshet/freshet/pkg/events"
	"github.com/freshet/freshet/services/invalidator/internal/engine"
)

// A backlog whose batch audit once exceeded the broker's 1 MB message limit
// (MESSAGE_TOO_LARGE on edge.purges, and the audit lost): its audit is
// split into records under engine.MaxAuditBytes, every change id in
// exactly one of them, every url in one, each record with its own event id.
// The records of a batch are parts 1..n of n, one after the other, with the
// batch's attempts, outcome, times and latency on each (readers count the
// batch from part 1 only), and part i's event id is events.ID(batch id, i,
// n), the batch id being that of the union of the parts' change ids.
func TestLargeBatchAuditIsSplit(t *testing.T) {
	e := newEnv(t)
	var requests atomic.Int64
	hook := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { requests.Add(1) }))
	t.Cleanup(hook.Close)

	file := fmt.Sprintf(`invalidation:
  keys: ["content:{id}"]
  urls: ["{url}"]
  targets:
    - {name: hook, type: http, address: %q, coalesce: 300ms, max_keys: 5000, max_urls: 5000}
`, hook.URL)
	e.startCancelable(t, file, nil)() // the topics, as the pipeline has them
	// 12,000 changes of ~250 bytes of audit each (id, key, url): ~3 MB of
	// audit for a batch, were it one record. Produced while the engine is
	// stopped (after a first run made the topics), so they arrive as a
	// backlog and coalesce into large batches.
	const n = 12000
	pad := strings.Repeat("x", 180)
	cs := make([]events.ContentChange, n)
	for i := range cs {
		id := fmt.Sprint(i)
		cs[i] = events.ContentChange{Op: events.OpUpdate, ContentID: id, Version: 1, URLPath: "/articles/" + id + "/" + pad}
	}
	for start := 0; start < n; start += 1000 {
		e.k.Changes(e.topics.Content, cs[start:start+1000]...)
	}
	e.start(t, file, nil)
	e.caughtUp(t)

	seen := map[string]int{}
	eventIDs := map[string]bool{}
	urlsSeen := map[string]int{}
	largest := 0
	batch := map[string][]*events.PurgeAudit{} // by target: the parts of its batch read so far
	batches, split := 0, 0
	for _, r := range e.k.ReadAll(e.topics.Purges) { // one target: one partition, in order
		largest = max(largest, len(r.Value))
		if len(r.Value) > engine.MaxAuditBytes {
			t.Errorf("audit record of %d bytes, over the bound of %d", len(r.Value), engine.MaxAuditBytes)
		}
		ev, _, err := e.k.Codec.DecodeTyped(context.Background(), r.Value)
		if err != nil {
			t.Fatal(err)
		}
		a := ev.(*events.PurgeAudit)
		if eventIDs[a.EventID] {
			t.Errorf("event id %s on two audit records", a.EventID)
		}
		eventIDs[a.EventID] = true
		if a.Outcome != events.OutcomeAcked {
			t.Errorf("audit %s: outcome %s (%s)", a.EventID, a.Outcome, a.Error)
		}
		for _, id := range a.ChangeEventIDs {
			seen[id]++
		}
		for _, u := range a.URLs {
			urlsSeen[u]++
		}
		parts := append(batch[a.Target], a)
		batch[a.Target] = parts
		if first := parts[0]; a.Part != len(parts) || a.Parts != first.Parts || a.Parts < 1 {
			t.Fatalf("audit %s: part %d of %d, after %d parts of a batch of %d", a.EventID, a.Part, a.Parts, len(parts)-1, first.Parts)
		} else if a.Attempts != first.Attempts || a.Outcome != first.Outcome || a.LatencyFromCommit != first.LatencyFromCommit ||
			!a.StartedAt.Equal(first.StartedAt) || !a.FinishedAt.Equal(first.FinishedAt) {
			t.Errorf("part %d of %d differs from part 1: %+v", a.Part, a.Parts, a)
		}
		if a.Part == a.Parts {
			checkBatchIDs(t, parts)
			batches++
			if a.Parts > 1 {
				split++
			}
			delete(batch, a.Target)
		}
	}
	for target, parts := range batch {
		t.Errorf("target %s: a batch of %d parts ends after %d", target, parts[0].Parts, len(parts))
	}
	for _, c := range cs {
		id := events.ID("test-change", c.ContentID, "1")
		if seen[id] != 1 {
			t.Fatalf("change %s (content %s) in %d audit records, want 1", id, c.ContentID, seen[id])
		}
		if urlsSeen[c.URLPath] != 1 {
			t.Fatalf("url of content %s in %d audit records, want 1", c.ContentID, urlsSeen[c.URLPath])
		}
	}
	if len(seen) != n {
		t.Errorf("%d change ids in the audits, want %d", len(seen), n)
	}
	if split == 0 {
		t.Errorf("%d audit records of %d batches for ~3 MB of audit: none split", len(eventIDs), batches)
	}
	t.Logf("%d changes: %d batches (%d split), %d audit records, the largest %d bytes; %d requests", n, batches, split, len(eventIDs), largest, requests.Load())
}

// A batch whose audit fits in one record is part 1 of 1, with the batch's
// id as its event id.
func TestSmallBatchAuditIsOnePart(t *testing.T) {
	e := newEnv(t)
	hook := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	t.Cleanup(hook.Close)
	e.start(t, fmt.Sprintf(`invalidation:
  keys: ["content:{id}"]
  urls: ["{url}"]
  targets:
    - {name: hook, type: http, address: %q}
`, hook.URL), nil)
	e.k.Changes(e.topics.Content, events.ContentChange{Op: events.OpUpdate, ContentID: "7", Version: 1, URLPath: "/articles/7"})
	e.caughtUp(t)
	audits := e.k.Audits(e.topics.Purges)
	if len(audits) != 1 {
		t.Fatalf("%d audit records, want 1", len(audits))
	}
	if a := audits[0]; a.Part != 1 || a.Parts != 1 || len(a.ChangeEventIDs) != 1 || a.Outcome != events.OutcomeAcked {
		t.Errorf("audit: part %d of %d, %d change ids, outcome %s", a.Part, a.Parts, len(a.ChangeEventIDs), a.Outcome)
	}
	checkBatchIDs(t, audits)
}

// checkBatchIDs checks the event ids of the parts of one batch's audit:
// events.ID(target, change ids...) for a single record, and for part i of n
// events.ID(that id, i, n).
func checkBatchIDs(t *testing.T, parts []*events.PurgeAudit) {
	t.Helper()
	id := []string{parts[0].Target}
	for _, p := range parts {
		id = append(id, p.ChangeEventIDs...)
	}
	batchID := events.ID(id...)
	for _, p := range parts {
		want := batchID
		if len(parts) > 1 {
			want = events.ID(batchID, strconv.Itoa(p.Part), strconv.Itoa(p.Parts))
		}
		if p.EventID != want {
			t.Errorf("part %d of %d: event id %s, want %s", p.Part, p.Parts, p.EventID, want)
		}
	}
}
