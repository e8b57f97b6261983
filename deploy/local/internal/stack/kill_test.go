package stack

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/freshet/freshet/pkg/servers"
)

// TestStackKillOneServiceAtATime runs the whole stack as `make run` does
// and, while an app keeps updating content rows, kills each service in
// turn with SIGKILL: the runner restarts it (its supervisor, see
// supervise.go), and then the next one is killed. After the writes stop,
// every change written meanwhile has reached:
//
//   - the page of its row through Varnish (each page holds its row's last
//     title; pages are read all along, so they were cached and had to be
//     purged);
//   - u1's stream, read both by a Go client that resumes with Last-Event-ID
//     as EventSource does, and by the gateway's browser client in headless
//     Chromium: each change exactly once on the wire, with no gap (the
//     cdc-ingestor reads back what Kafka holds before it streams again, so
//     its kill re-sends nothing), and not on u3's stream;
//   - ClickHouse, with exact counts: one change per delivery, one latency
//     sample per change and stage, one browser lag per delivery, after the
//     sink's de-duplication; no Kafka record stored twice although the sink
//     itself was killed.
func TestStackKillOneServiceAtATime(t *testing.T) {
	p := startWithApp(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	victims := []string{"sse-gateway", "personalizer", "cdc-ingestor", "invalidator", "origin", "metrics-sink"}
	sctx, stopStreams := context.WithCancel(ctx)
	defer stopStreams()
	u1 := followStream(sctx, t, p.gateway+"/v1/stream", p.tokens["u1"])
	u3 := followStream(sctx, t, p.gateway+"/v1/stream", p.tokens["u3"])
	u1Tab := p.openUser("u1")

	// Three articles by ada: u1 follows her; u3 matches none of them.
	conn := p.pg(ctx)
	var rows []change
	stamp := time.Now().UnixNano()
	for i := range 3 {
		rows = append(rows, insertAda(ctx, t, conn, fmt.Sprintf("Kill test %d %d", i, stamp), fmt.Sprintf("/tech/kill-test-%d-%d", i, stamp)))
	}
	w := startWriter(ctx, t, p, rows)
	pctx, stopPages := context.WithCancel(ctx)
	defer stopPages()
	go readPages(pctx, p.edge, rows) // keeps every page in Varnish's cache

	// Kill each service in turn while the writes go on.
	time.Sleep(2 * time.Second)
	for _, name := range victims {
		before := readPid(t, p, name)
		t0 := time.Now()
		if err := syscall.Kill(before, syscall.SIGKILL); err != nil {
			t.Fatalf("kill -9 %s (pid %d): %v", name, before, err)
		}
		p.r.waitFor(t, "freshet: "+name+" restarted (pid", 3*time.Minute)
		after := readPid(t, p, name)
		if after == before || !servers.ProcessAlive(after) {
			t.Fatalf("%s: pid file says %d after the restart (was %d), alive %v", name, after, before, servers.ProcessAlive(after))
		}
		t.Logf("%s: killed (pid %d), restarted and ready %s later (pid %d); %d changes written so far",
			name, before, time.Since(t0).Round(10*time.Millisecond), after, w.count())
		time.Sleep(2 * time.Second) // writes go on with the new process
	}
	if !strings.Contains(p.r.all.String(), "exited (signal: killed); restarting it in") {
		t.Errorf("the runner did not report a killed service:\n%s", p.r.all)
	}
	changes := w.stop(t)
	all := append(append([]change(nil), rows...), changes...)
	t.Logf("%d changes written (3 inserts, %d updates) while %d services were killed and restarted", len(all), len(changes), len(victims))

	// The pages: each row's last title, through Varnish.
	for _, r := range rows {
		last := r
		for _, c := range changes {
			if c.id == r.id {
				last = c
			}
		}
		f := pollFresh(ctx, t, p.edge+last.url, last.title, last.at)
		t.Logf("page %s: last title after %s (X-Cache %s)", last.url, f.took.Round(time.Millisecond), f.cache)
	}
	stopPages()

	// The streams.
	waitAll(t, "u1's Go SSE client", u1.counts, all, 3*time.Minute)
	u1Tab.waitJS("every change in u1's browser", fmt.Sprintf("%s.every(k => window.got.some(d => d.key === k))", jsKeys(all)), 3*time.Minute)
	time.Sleep(time.Second) // a late duplicate would be here by now
	p.checkWire(ctx, "u1's Go SSE client (every delivery event on the stream)", u1.receipts(), all, true)
	appCounts := map[string]int{}
	for _, k := range eval[[]string](u1Tab, "window.got.map(d => d.key)") {
		appCounts[k]++
	}
	exactlyOnce(t, "u1's browser app (what the client gave it)", appCounts, all)
	p.checkWire(ctx, "u1's browser (every delivery event EventSource received)", u1Tab.receipts(), all, true)
	// u3's stream is live: an item for u3 written now reaches it, so any
	// of the changes, had they gone to u3, would have too.
	forU3 := insertForU3(ctx, t, conn, fmt.Sprintf("Only for u3 %d", time.Now().UnixNano()))
	waitAll(t, "u3's Go SSE client", u3.counts, []change{forU3}, 3*time.Minute)
	noneOf(t, "u3's Go SSE client", u3.counts(), all)
	t.Logf("u1's Go client connected %d times; u1's browser client events: %v", u1.connections(), eval[[]string](u1Tab, "window.kinds"))

	{
		ch := p.clickHouse()
		eval[bool](u1Tab, "window.stream.flush()")
		var deliveries []string
		for _, c := range all {
			d, _ := u1.delivery(c.key())
			deliveries = append(deliveries, d.EventID)
		}
		c := readClickHouse(ctx, t, ch, deliveries, true, 3*time.Minute)
		checkClickHouseCounts(t, c, len(all), true)
		checkNoRowTwice(ctx, t, ch)
	}
	stopStreams()
	p.stop()
}

// readPid reads the pid file the runner keeps for a service.
func readPid(t *testing.T, p *proofStack, name string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(p.st.dir, "run", name+".pid"))
	if err != nil {
		t.Fatalf("pid file of %s: %v", name, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("pid file of %s: %v", name, err)
	}
	return pid
}

// writer updates rows in turn, every 100 ms, until stopped.
type writer struct {
	mu      sync.Mutex
	changes []change
	err     error
	cancel  context.CancelFunc
	done    chan struct{}
}

func startWriter(ctx context.Context, t *testing.T, p *proofStack, rows []change) *writer {
	conn := p.pg(ctx)
	stop, cancel := context.WithCancel(ctx)
	w := &writer{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for i := 0; stop.Err() == nil; i++ {
			r := rows[i%len(rows)]
			c := change{id: r.id, url: r.url, title: fmt.Sprintf("%s, edit %d", strings.SplitN(r.title, ",", 2)[0], i)}
			// The write itself is not cancelled by stop: every write
			// started is committed and recorded.
			err := conn.QueryRow(ctx, "update content set title = $1 where id = $2 returning version", c.title, c.id).Scan(&c.version)
			c.at = time.Now()
			w.mu.Lock()
			if err != nil {
				w.err = err
				w.mu.Unlock()
				return
			}
			w.changes = append(w.changes, c)
			w.mu.Unlock()
			select {
			case <-stop.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	return w
}

func (w *writer) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.changes)
}

// stop stops the writes and returns the changes committed.
func (w *writer) stop(t *testing.T) []change {
	t.Helper()
	w.cancel()
	<-w.done
	if w.err != nil {
		t.Fatalf("writer: %v", w.err)
	}
	return w.changes
}

// readPages GETs each row's page through Varnish, over and over, until ctx
// ends.
func readPages(ctx context.Context, edge string, rows []change) {
	for ctx.Err() == nil {
		for _, r := range rows {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, edge+r.url, nil)
			if resp, err := http.DefaultClient.Do(req); err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
}
