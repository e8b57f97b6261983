package gateway

import (
	"bufio"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"
)

// An idle stream gets heartbeat comments; a stream whose token expires is
// told to reconnect (with a new token) and closed.
func TestHeartbeatAndTokenExpiry(t *testing.T) {
	e := newEnv(t)
	cfg := e.config()
	cfg.Gateway.Heartbeat = 50 * time.Millisecond
	g := e.start(cfg)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", streamURL(g.Gateway, e.token("olga", 1500*time.Millisecond)), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	var lines []string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() { // until the gateway closes the stream
		lines = append(lines, sc.Text())
	}
	text := strings.Join(lines, "\n")
	// At least 0.5s at 50ms: some heartbeats (not counted exactly: a starved
	// machine may drop ticks).
	if n := strings.Count(text, ": heartbeat"); n < 2 {
		t.Fatalf("%d heartbeats in at least 0.5s at 50ms", n)
	}
	if !strings.Contains(text, "event: reconnect\ndata: {\"reason\":\"token_expired\"}") {
		t.Fatalf("no reconnect event for the expired token; the stream ended with: %q", lines[len(lines)-4:])
	}
}

// A client that went away frees its stream slot at once, not at the next
// heartbeat: reloading a page is not refused by the per-user limit.
func TestUserSlotFreedWhenClientGoes(t *testing.T) {
	e := newEnv(t)
	cfg := e.config()
	cfg.Gateway.MaxConnsPerUser = 1
	cfg.Gateway.Heartbeat = time.Hour // only the peek can notice
	g := e.start(cfg)
	url := streamURL(g.Gateway, e.token("pat", time.Hour))

	for i := range 3 { // three page loads in a row
		s := e.subscribe(g.Gateway, url, nil)
		s.waitFor(t, "ready", func(r []received) bool { return countType(r, "ready") == 1 })
		s.close()
		if i == 2 {
			break
		}
	}
	status, body, _ := rawGet(t, url, nil)
	if status != 200 {
		t.Fatalf("after the previous client went: %d %v", status, body)
	}
	if n := counterValue(t, g.metrics.ended.WithLabelValues(reasonGone)); n < 2 {
		t.Fatalf("streams ended as client_gone: %v, want at least 2", n)
	}
}
