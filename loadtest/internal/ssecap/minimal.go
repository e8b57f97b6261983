package ssecap

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/freshet/freshet/loadtest/internal/safety"
)

// MinimalCommand is the subcommand that runs the baseline SSE server.
const MinimalCommand = "minimal-sse"

// minimal is the baseline of the SSE figures: the smallest correct
// net/http SSE writer, a goroutine per connection blocked on its own
// channel, a broadcast that hands each event to every channel. No auth, no
// cursor, no history, no heartbeat, no slow-client policy: what a stream
// costs before any of Freshet's guarantees.
type minimal struct {
	mu    sync.Mutex
	conns map[chan []byte]struct{}
}

func (m *minimal) stream(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	fl := w.(http.Flusher)
	fl.Flush()
	ch := make(chan []byte, 64)
	m.mu.Lock()
	m.conns[ch] = struct{}{}
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		delete(m.conns, ch)
		m.mu.Unlock()
	}()
	for {
		select {
		case <-r.Context().Done():
			return
		case ev := <-ch:
			if _, err := w.Write(ev); err != nil {
				return
			}
			// Write what queued up meanwhile in the same flush.
			for more := true; more; {
				select {
				case ev := <-ch:
					if _, err := w.Write(ev); err != nil {
						return
					}
				default:
					more = false
				}
			}
			fl.Flush()
		}
	}
}

// publish sends n events to every stream.
func (m *minimal) publish(w http.ResponseWriter, r *http.Request) {
	n, _ := strconv.Atoi(r.URL.Query().Get("n"))
	m.mu.Lock()
	conns := make([]chan []byte, 0, len(m.conns))
	for c := range m.conns {
		conns = append(conns, c)
	}
	m.mu.Unlock()
	for i := range n {
		ev := fmt.Appendf(nil, "id: %d\nevent: delivery\ndata: {\"event_id\":\"b%d\",\"content\":{\"id\":\"b%d\"}}\n\n", i, i, i)
		for _, c := range conns {
			c <- ev
		}
	}
	fmt.Fprintf(w, "%d\n", len(conns))
}

// RunMinimal is the baseline server subcommand; it listens on -addr
// (loopback only) until its context ends or -max passes.
func RunMinimal(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet(MinimalCommand, flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:0", "listen address (loopback)")
	maxLife := fs.Duration("max", 15*time.Minute, "exit after this long")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := safety.CheckAddr(*addr); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *maxLife)
	defer cancel()
	m := &minimal{conns: map[chan []byte]struct{}{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /stream", m.stream)
	mux.HandleFunc("POST /publish", m.publish)
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {})
	l, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux}
	go func() { <-ctx.Done(); srv.Close() }()
	err = srv.Serve(l)
	if ctx.Err() != nil {
		return nil
	}
	return err
}
