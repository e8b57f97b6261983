package gateway

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/r3labs/sse/v2"
)

// Behind a server that speaks HTTP/2 (the gateway's handler served by
// net/http over TLS here), a stream cannot be hijacked: it is written through
// the ResponseWriter, with its write deadline and flushes. Deliveries
// arrive, a resume with Last-Event-ID gets what was missed with no gap and
// no duplicate, and a graceful shutdown tells the client to reconnect.
func TestStreamOverHTTP2(t *testing.T) {
	e := newEnv(t)
	g := e.start(e.config())
	ts := httptest.NewUnstartedServer(g.srv.Handler)
	ts.EnableHTTP2 = true
	ts.StartTLS()
	t.Cleanup(ts.Close)
	url := ts.URL + "/v1/stream?token=" + e.token("alice", time.Hour)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatalf("GET /v1/stream over HTTP/2: %v", err)
	}
	if resp.ProtoMajor != 2 || resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("GET /v1/stream: %s %s, Content-Type %q; want HTTP/2 200 text/event-stream", resp.Proto, resp.Status, resp.Header.Get("Content-Type"))
	}
	resp.Body.Close()

	client := sse.NewClient(url)
	client.Connection = ts.Client()
	client.ReconnectStrategy = &noRetry{}
	s := e.subscribe(g.Gateway, url, client)
	s.waitFor(t, "ready", func(r []received) bool { return countType(r, "ready") == 1 })
	var want []string
	for i := range 3 {
		want = append(want, e.produce(mkDelivery("u:alice", fmt.Sprintf("a%d", i), i))...)
	}
	s.waitFor(t, "3 deliveries", hasDeliveries(3))
	wantIDs(t, s.deliveries(), want)

	s.close()
	var missed []string
	for i := 3; i < 6; i++ {
		missed = append(missed, e.produce(mkDelivery("u:alice", fmt.Sprintf("a%d", i), i))...)
	}
	s2 := e.subscribe(g.Gateway, url, s.client) // with its Last-Event-ID
	s2.waitFor(t, "the missed deliveries", hasDeliveries(3))
	time.Sleep(100 * time.Millisecond) // a duplicate would show up by now
	wantIDs(t, s2.deliveries(), missed)

	g.stop(t)
	got := s2.waitFor(t, "the reconnect event", func(r []received) bool { return countType(r, "reconnect") == 1 })
	if last := got[len(got)-1]; last.Type != "reconnect" || !strings.Contains(last.Data, "shutdown") {
		t.Fatalf("the last event before a shutdown is %+v, want reconnect (shutdown)", last)
	}
}
