package engine_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
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
	for _, r := range e.k.ReadAll(e.topics.Purges) {
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
	if len(eventIDs) < 2 {
		t.Errorf("%d audit records for ~3 MB of audit: not split", len(eventIDs))
	}
	t.Logf("%d changes: %d audit records, the largest %d bytes; %d requests", n, len(eventIDs), largest, requests.Load())
}
