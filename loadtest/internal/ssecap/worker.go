package ssecap

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/freshet/freshet/loadtest/internal/scenario"
	"github.com/freshet/freshet/loadtest/internal/sseclient"
	"github.com/freshet/freshet/loadtest/internal/stats"
)

// WorkerCommand is the subcommand that runs a client worker.
const WorkerCommand = "sse-worker"

// SecretEnv carries the JWT secret to workers (never on their command line).
const SecretEnv = "FRESHET_LOAD_SECRET"

// Worker protocol, one JSON line each way. The worker opens its streams,
// writes a reply to "open", then answers each command read from its
// standard input, and exits when its input closes or after -max:
//
//	count               {"events": n}          delivery events received so far
//	wait <k> <timeout>  {"ms": t, "behind": b} until every stream saw number k-1 (t since the last resume began)
//	drop                {}                     close every stream
//	resume              {"ms": t, "errors": e} reconnect every stream at once, with Last-Event-ID, to the next address; t = until all answered 200
//	check <k>           {"gaps": g, "dups": d, "reordered": r}
type reply struct {
	Opened    int     `json:"opened,omitempty"`
	Events    int64   `json:"events,omitempty"`
	Ms        float64 `json:"ms,omitempty"`
	Behind    int     `json:"behind,omitempty"`
	Errors    int     `json:"errors,omitempty"`
	Gaps      int     `json:"gaps,omitempty"`
	Dups      int     `json:"dups,omitempty"`
	Reordered int     `json:"reordered,omitempty"`
	Err       string  `json:"err,omitempty"`
}

// workerStream is one stream of a worker and what it saw.
type workerStream struct {
	c       *sseclient.Client
	addr    int // index in addrs
	mu      sync.Mutex
	seq     stats.Sequence
	reading sync.WaitGroup
}

// RunWorker is the worker subcommand.
func RunWorker(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet(WorkerCommand, flag.ContinueOnError)
	addrs := fs.String("addrs", "", "comma-separated stream servers (loopback)")
	n := fs.Int("n", 0, "streams")
	group := fs.Int("group", 0, "worker index: picks the source addresses and the user names")
	users := fs.String("users", "idle", "user name prefix")
	channels := fs.String("channels", "", "channels to subscribe to")
	path := fs.String("path", "", "request path instead of the gateway's /v1/stream with a token (the baseline server)")
	maxLife := fs.Duration("max", 15*time.Minute, "exit after this long whatever happens")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *maxLife)
	defer cancel()
	out := json.NewEncoder(os.Stdout)
	as := strings.Split(*addrs, ",")
	var chans []string
	if *channels != "" {
		chans = strings.Split(*channels, ",")
	}
	secret := os.Getenv(SecretEnv)
	streams := make([]*workerStream, *n)
	var events atomic.Int64
	err := scenario.Parallel(ctx, *n, 128, func(i int) error {
		p := *path
		if p == "" {
			tok, err := sseclient.Token(secret, fmt.Sprintf("%s-%d-%d", *users, *group, i), chans, time.Hour)
			if err != nil {
				return err
			}
			p = sseclient.StreamPath(tok, chans)
		}
		s := &workerStream{addr: i % len(as), c: &sseclient.Client{Addr: as[i%len(as)], Source: sseclient.Source(*group+1, i), Path: p}}
		if err := s.c.Connect(ctx); err != nil {
			return fmt.Errorf("stream %d to %s: %w", i, as[i%len(as)], err)
		}
		streams[i] = s
		return nil
	})
	if err != nil {
		out.Encode(reply{Err: err.Error()})
		return err
	}
	for _, s := range streams {
		s.start(&events)
	}
	out.Encode(reply{Opened: *n})

	in := bufio.NewScanner(os.Stdin)
	lines := make(chan string)
	go func() {
		defer close(lines)
		for in.Scan() {
			lines <- in.Text()
		}
	}()
	var resumeStart time.Time
	defer func() {
		for _, s := range streams {
			s.c.Close()
		}
	}()
	for {
		var line string
		select {
		case <-ctx.Done():
			return nil
		case l, ok := <-lines:
			if !ok {
				return nil
			}
			line = l
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "count":
			out.Encode(reply{Events: events.Load()})
		case "drop":
			for _, s := range streams {
				s.c.Close()
			}
			for _, s := range streams {
				s.reading.Wait()
			}
			out.Encode(reply{})
		case "resume":
			resumeStart = time.Now()
			var errs atomic.Int64
			var wg sync.WaitGroup
			for _, s := range streams {
				wg.Add(1)
				go func() {
					defer wg.Done()
					s.addr = (s.addr + 1) % len(as)
					s.c.Addr = as[s.addr]
					for attempt := 0; ; attempt++ {
						err := s.c.Connect(ctx)
						if err == nil {
							break
						}
						if attempt == 20 || ctx.Err() != nil {
							errs.Add(1)
							return
						}
						time.Sleep(50 * time.Millisecond)
					}
					s.start(&events)
				}()
			}
			wg.Wait()
			out.Encode(reply{Ms: stats.Ms(time.Since(resumeStart)), Errors: int(errs.Load())})
		case "wait":
			var k int64
			var timeout time.Duration
			if len(f) == 3 {
				fmt.Sscan(f[1], &k)
				timeout, _ = time.ParseDuration(f[2])
			}
			deadline := time.Now().Add(timeout)
			// Only the streams still behind are looked at again, every
			// 10 ms: the check must not take the CPU the gateways need.
			behind := streams
			for {
				still := behind[:0:0]
				for _, s := range behind {
					s.mu.Lock()
					if s.seq.Next() < k {
						still = append(still, s)
					}
					s.mu.Unlock()
				}
				behind = still
				if len(behind) == 0 || time.Now().After(deadline) || ctx.Err() != nil {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			ms := 0.0
			if !resumeStart.IsZero() {
				ms = stats.Ms(time.Since(resumeStart))
			}
			out.Encode(reply{Ms: ms, Behind: len(behind)})
		case "check":
			var k int64
			if len(f) == 2 {
				fmt.Sscan(f[1], &k)
			}
			var r reply
			for _, s := range streams {
				s.mu.Lock()
				g, d, o := s.seq.Result(k)
				s.mu.Unlock()
				r.Gaps += g
				r.Dups += d
				r.Reordered += o
			}
			out.Encode(r)
		default:
			out.Encode(reply{Err: "unknown command " + f[0]})
		}
	}
}

// start reads the stream in a goroutine: every delivery counts, and a
// delivery carrying a sequence number (content.version) is checked.
func (s *workerStream) start(events *atomic.Int64) {
	s.reading.Add(1)
	go func() {
		defer s.reading.Done()
		for {
			ev, err := s.c.Next()
			if err != nil {
				return
			}
			if ev.Type != "delivery" {
				continue
			}
			events.Add(1)
			if n, ok := sequenceOf(ev.Data); ok {
				s.mu.Lock()
				s.seq.Observe(n)
				s.mu.Unlock()
			}
		}
	}()
}

// sequenceOf reads the sequence number of a storm delivery: its
// content.version, when the content id says it is one ("seq-...").
func sequenceOf(data []byte) (int64, bool) {
	if !bytes.Contains(data, []byte(`"id":"seq-`)) {
		return 0, false // a broadcast: not decoded
	}
	var d struct {
		Content struct {
			ID      string `json:"id"`
			Version int64  `json:"version"`
		} `json:"content"`
	}
	if json.Unmarshal(data, &d) != nil || !strings.HasPrefix(d.Content.ID, "seq-") {
		return 0, false
	}
	return d.Content.Version, true
}

// worker is the coordinator's handle on a worker process.
type worker struct {
	cmd  interface{ Wait() error }
	in   io.WriteCloser
	out  *json.Decoder
	kill func()
}

func (w *worker) call(cmd string) (reply, error) {
	if _, err := fmt.Fprintln(w.in, cmd); err != nil {
		return reply{}, err
	}
	return w.read()
}

func (w *worker) read() (reply, error) {
	var r reply
	if err := w.out.Decode(&r); err != nil {
		return r, fmt.Errorf("worker: %w", err)
	}
	if r.Err != "" {
		return r, errors.New(r.Err)
	}
	return r, nil
}

func (w *worker) close() {
	w.in.Close()
	done := make(chan struct{})
	go func() { w.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		w.kill()
		<-done
	}
}
