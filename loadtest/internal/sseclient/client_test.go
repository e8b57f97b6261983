package sseclient

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	stream := "retry: 2000\nid: 0-1\nevent: ready\ndata: {\"cursor\":\"0-1\"}\n\n" +
		": heartbeat\n\n" +
		"id: 3-5.7-9\nevent: delivery\ndata: line1\ndata: line2\n\n" +
		"data: plain\n\n" +
		"id: 3-6\r\nevent: delivery\r\ndata: " + strings.Repeat("x", 10000) + "\r\n\r\n"
	r := bufio.NewReaderSize(strings.NewReader(stream), 4096)
	var data []byte
	last := ""
	want := []struct{ id, typ, data string }{
		{"0-1", "ready", `{"cursor":"0-1"}`},
		{"3-5.7-9", "delivery", "line1\nline2"},
		{"", "message", "plain"},
		{"3-6", "delivery", strings.Repeat("x", 10000)},
	}
	for i, w := range want {
		ev, err := parse(r, &data, &last)
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if ev.ID != w.id || ev.Type != w.typ || string(ev.Data) != w.data {
			t.Fatalf("event %d = %q %q %.40q, want %q %q %.40q", i, ev.ID, ev.Type, ev.Data, w.id, w.typ, w.data)
		}
	}
	if last != "3-6" {
		t.Fatalf("last id %q", last)
	}
	if _, err := parse(r, &data, &last); err == nil {
		t.Fatal("no error at the end of the stream")
	}
}

// TestConnectResume: the client sends Last-Event-ID on reconnect, and a
// refusal is ErrStatus.
func TestConnectResume(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("token") == "bad" {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprintf(w, "id: after-%s\nevent: delivery\ndata: x\n\n", r.Header.Get("Last-Event-ID"))
		w.(http.Flusher).Flush()
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := &Client{Addr: addr, Source: Source(0, 7), Path: StreamPath("ok", nil)}
	defer c.Close()
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	ev, err := c.Next()
	if err != nil || ev.ID != "after-" {
		t.Fatalf("first: %+v %v", ev, err)
	}
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	ev, err = c.Next()
	if err != nil || ev.ID != "after-after-" {
		t.Fatalf("resumed: %+v %v", ev, err)
	}
	bad := &Client{Addr: addr, Path: StreamPath("bad", nil)}
	if err := bad.Connect(ctx); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("refused stream: %v", err)
	}
}

func TestToken(t *testing.T) {
	tok, err := Token("0123456789abcdef0123456789abcdef", "u1", []string{"breaking"}, time.Minute)
	if err != nil || strings.Count(tok, ".") != 2 {
		t.Fatalf("token %q %v", tok, err)
	}
	if p := StreamPath("T", []string{"a", "b"}); p != "/v1/stream?token=T&channels=a,b" {
		t.Fatal(p)
	}
}
