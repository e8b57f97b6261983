// Command sse is the load generator of the sse-gateway (docs/sse-gateway.md,
// "Benchmarks"). It starts an in-process Kafka-protocol broker (kfake), runs
// a gateway binary against it as a separate process, opens streams to it and
// measures one of:
//
//	-mode idle       gateway RSS per idle stream (VmRSS before and after)
//	-mode broadcast  deliveries per second written across all streams, every
//	                 stream subscribed to one channel
//	-mode latency    Kafka-record-to-client latency (p50/p99/max) with every
//	                 stream getting its own delivery every second
//
// Build the gateway first, from the repository root:
//
//	go build -o bin/sse-gateway ./services/sse-gateway
//	go run ./loadtest/sse -mode idle -conns 10000
//
// The broker, the producer and the clients share this process; the gateway
// runs alone in its own, so its RSS is its own. Both sides are limited to
// 20,000 open files here: at most ~19,000 streams per gateway process.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/freshet/freshet/pkg/codec"
	"github.com/freshet/freshet/pkg/events"
	"github.com/freshet/freshet/pkg/servers"
)

const secret = "loadtest-secret-loadtest-secret-0123456789"

func main() {
	mode := flag.String("mode", "idle", "idle, broadcast or latency")
	gatewayBin := flag.String("gateway", "bin/sse-gateway", "gateway binary (go build -o bin/sse-gateway ./services/sse-gateway)")
	conns := flag.Int("conns", 1000, "streams to open")
	events := flag.Int("events", 200, "broadcast: deliveries to the channel")
	duration := flag.Duration("duration", 20*time.Second, "latency: how long to measure")
	replicas := flag.Int("replicas", 1, "idle: gateway processes (a process holds at most ~19,000 streams here)")
	workers := flag.Int("workers", 1, "idle: client processes opening the streams (same limit)")
	workerOf := flag.String("worker-of", "", "internal: run as a client worker of these gateway addresses")
	workerIndex := flag.Int("worker-index", 0, "internal: index of this worker")
	flag.Parse()
	if *workerOf != "" {
		if err := worker(strings.Split(*workerOf, ","), *workerIndex, *conns); err != nil {
			fmt.Fprintln(os.Stderr, "loadtest worker:", err)
			os.Exit(1)
		}
		return
	}
	if *mode == "idle" && (*replicas > 1 || *workers > 1) {
		if err := idleScaled(*gatewayBin, *conns, *replicas, *workers); err != nil {
			fmt.Fprintln(os.Stderr, "loadtest:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(*mode, *gatewayBin, *conns, *events, *duration); err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(1)
	}
}

func run(mode, bin string, n, nEvents int, duration time.Duration) error {
	ctx := context.Background()
	broker, err := startBroker(ctx)
	if err != nil {
		return err
	}
	defer broker.Stop(ctx)

	gw, err := startGateway(bin, broker.Seeds())
	if err != nil {
		return err
	}
	defer gw.stop()

	cl, err := kgo.NewClient(kgo.SeedBrokers(broker.Seeds()...), kgo.ProducerLinger(2*time.Millisecond))
	if err != nil {
		return err
	}
	defer cl.Close()
	c, err := codec.New()
	if err != nil {
		return err
	}

	rssBefore := gw.rss()
	clients := &clients{}
	start := time.Now()
	for i := range n {
		user := fmt.Sprintf("user%d", i)
		tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
			"iss": "freshet", "aud": "freshet-sse", "sub": user, "channels": []string{"breaking"},
			"exp": time.Now().Add(time.Hour).Unix(),
		}).SignedString([]byte(secret))
		if err != nil {
			return err
		}
		channels := ""
		if mode == "broadcast" {
			channels = "&channels=breaking"
		}
		if err := clients.open(gw.addr, 0, i, "/v1/stream?token="+tok+channels); err != nil {
			return fmt.Errorf("stream %d: %w", i, err)
		}
	}
	fmt.Printf("opened %d streams in %v\n", n, time.Since(start).Round(time.Millisecond))

	switch mode {
	case "idle":
		time.Sleep(3 * time.Second)
		rss := gw.rss()
		fmt.Printf("gateway RSS: %d KiB before, %d KiB with %d idle streams: %.1f KiB per stream\n",
			rssBefore, rss, n, float64(rss-rssBefore)/float64(n))
	case "broadcast":
		// The deliveries are produced at once (asynchronously, then
		// flushed): the gateway's consumer gets them in batches, and each
		// stream's writer writes what queued up in one syscall.
		start := time.Now()
		for i := range nEvents {
			d := delivery("", "breaking", i)
			v, err := c.EncodeEvent(ctx, "content.deliveries", d)
			if err != nil {
				return err
			}
			cl.Produce(ctx, &kgo.Record{Topic: "content.deliveries", Key: []byte("channel:breaking"), Value: v}, nil)
		}
		if err := cl.Flush(ctx); err != nil {
			return err
		}
		want := int64(nEvents) * int64(n)
		for clients.received.Load() < want {
			if time.Since(start) > 2*time.Minute {
				return fmt.Errorf("received %d of %d", clients.received.Load(), want)
			}
			time.Sleep(time.Millisecond)
		}
		el := time.Since(start)
		fmt.Printf("broadcast: %d deliveries x %d streams = %d events in %v: %.0f events/s\n",
			nEvents, n, want, el.Round(time.Millisecond), float64(want)/el.Seconds())
	case "latency":
		warm := time.Now().Add(3 * time.Second)
		end := time.Now().Add(duration)
		// Each stream gets one delivery a second, the n of a second spread
		// evenly over it (not one burst); the timestamp in the title is
		// taken right before the record is handed to the producer.
		gap := time.Second / time.Duration(n)
		for round := 0; time.Now().Before(end); round++ {
			clients.measure.Store(time.Now().After(warm))
			roundStart := time.Now()
			for i := range n {
				if wait := time.Until(roundStart.Add(time.Duration(i) * gap)); wait > 0 {
					time.Sleep(wait)
				}
				d := delivery(fmt.Sprintf("user%d", i), "", round)
				d.Content.Title = "t=0000000000000000000"
				v, err := c.EncodeEvent(ctx, "content.deliveries", d)
				if err != nil {
					return err
				}
				// Patch the timestamp into the encoded value (same length).
				ts := strconv.FormatInt(time.Now().UnixNano(), 10)
				j := bytes.Index(v, []byte("t=0000000000000000000"))
				copy(v[j+2:], ts)
				cl.Produce(ctx, &kgo.Record{Topic: "content.deliveries", Key: []byte(d.UserID), Value: v}, nil)
			}
		}
		time.Sleep(time.Second)
		lat := clients.latencies()
		if len(lat) == 0 {
			return errors.New("no latency measured")
		}
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		fmt.Printf("latency, Kafka produce to client receipt, %d streams at 1 delivery/s each, %d samples: p50 %v p99 %v max %v\n",
			n, len(lat), lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1])
	default:
		return fmt.Errorf("unknown mode %q", mode)
	}
	fmt.Printf("gateway RSS at the end: %d KiB\n", gw.rss())
	return nil
}

func delivery(user, channel string, i int) *events.Delivery {
	now := time.Now().UTC()
	return &events.Delivery{
		EventID: events.ID("load", user, channel, strconv.Itoa(i)), ChangeEventID: events.ID("change", strconv.Itoa(i)),
		Source: events.Source{Origin: events.OriginProducer, CommitTime: now}, Trace: events.Trace{CommittedAt: now, ProducedAt: now},
		Op: events.OpUpdate, UserID: user, Channel: channel,
		Content: events.ContentProjection{ID: "c" + strconv.Itoa(i), Title: "load", Summary: "A delivery of the load test.", URLPath: "/a/" + strconv.Itoa(i)},
	}
}

// gateway is the gateway process.
type gateway struct {
	cmd  *exec.Cmd
	addr string
}

func startGateway(bin string, seeds []string) (*gateway, error) {
	port, err := servers.FreePort()
	if err != nil {
		return nil, err
	}
	admin, err := servers.FreePort()
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(),
		"FRESHET_KAFKA_BROKERS="+strings.Join(seeds, ","),
		"FRESHET_GATEWAY_ADDR="+addr,
		fmt.Sprintf("FRESHET_ADMIN_ADDR=127.0.0.1:%d", admin),
		"FRESHET_AUTH_HS256_SECRET="+secret,
		"FRESHET_RUM_HASH_KEY=loadtest-hash-key-0123",
		"FRESHET_LOG_LEVEL=warn",
		"FRESHET_GATEWAY_MAX_CONNS=19800",
		"FRESHET_GATEWAY_MAX_CONNS_PER_IP=0",
		"FRESHET_GATEWAY_MAX_CONNS_PER_USER=0",
		"FRESHET_GATEWAY_CONNECT_RATE=0",
		"FRESHET_GATEWAY_QUEUE_SIZE=1024",
	)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	g := &gateway{cmd: cmd, addr: addr}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/readyz", admin))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return g, nil
			}
		}
		if time.Now().After(deadline) {
			g.stop()
			return nil, errors.New("gateway not ready within 30s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (g *gateway) stop() {
	g.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { g.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		g.cmd.Process.Kill()
		<-done
	}
}

// rss is the gateway's resident set in KiB (0 when it cannot be read).
func (g *gateway) rss() int64 {
	m, err := servers.ProcessMemory(g.cmd.Process.Pid)
	if err != nil {
		return 0
	}
	return m.RSS >> 10
}

// clients are the streams: one goroutine each, counting deliveries and,
// when measuring, the latency from the produce time in the title.
type clients struct {
	received atomic.Int64
	measure  atomic.Bool
	mu       sync.Mutex
	lat      []time.Duration
}

func (cs *clients) open(addr string, w, i int, path string) error {
	// Spread source addresses over 127.0.0.0/8 so that ephemeral ports last.
	local := &net.TCPAddr{IP: net.IPv4(127, byte(w), byte(1+i/20000), byte(1+i%250))}
	d := net.Dialer{LocalAddr: local, Timeout: 10 * time.Second}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: gateway\r\nAccept: text/event-stream\r\n\r\n", path)
	r := bufio.NewReaderSize(conn, 4096)
	status, err := r.ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.Contains(status, " 200 ") {
		return fmt.Errorf("status %q", strings.TrimSpace(status))
	}
	go cs.read(r)
	return nil
}

var titleMark = []byte(`"title":"t=`)

func (cs *clients) read(r *bufio.Reader) {
	for {
		line, err := r.ReadSlice('\n')
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return
		}
		if !bytes.HasPrefix(line, []byte("data: {\"event_id\"")) {
			continue
		}
		cs.received.Add(1)
		if i := bytes.Index(line, titleMark); i >= 0 && cs.measure.Load() {
			rest := line[i+len(titleMark):]
			if j := bytes.IndexByte(rest, '"'); j > 0 {
				if ns, err := strconv.ParseInt(string(rest[:j]), 10, 64); err == nil {
					d := time.Since(time.Unix(0, ns))
					cs.mu.Lock()
					cs.lat = append(cs.lat, d)
					cs.mu.Unlock()
				}
			}
		}
	}
}

func (cs *clients) latencies() []time.Duration {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return append([]time.Duration(nil), cs.lat...)
}

// idleScaled opens n idle streams over several gateway processes from
// several client processes (each process here holds at most 20,000 files),
// and reports the RSS of every gateway.
func idleScaled(bin string, n, replicas, workers int) error {
	ctx := context.Background()
	broker, err := startBroker(ctx)
	if err != nil {
		return err
	}
	defer broker.Stop(ctx)
	var gws []*gateway
	var addrs []string
	for range replicas {
		gw, err := startGateway(bin, broker.Seeds())
		if err != nil {
			return err
		}
		defer gw.stop()
		gws = append(gws, gw)
		addrs = append(addrs, gw.addr)
	}
	before := make([]int64, len(gws))
	for i, gw := range gws {
		before[i] = gw.rss()
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	start := time.Now()
	var cmds []*exec.Cmd
	var stdins []interface{ Close() error }
	ready := make(chan error, workers)
	for w := range workers {
		cmd := exec.Command(self, "-worker-of", strings.Join(addrs, ","), "-worker-index", strconv.Itoa(w), "-conns", strconv.Itoa(n/workers))
		cmd.Stderr = os.Stderr
		in, err := cmd.StdinPipe()
		if err != nil {
			return err
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			return err
		}
		if err := cmd.Start(); err != nil {
			return err
		}
		cmds, stdins = append(cmds, cmd), append(stdins, in)
		go func() {
			line, err := bufio.NewReader(out).ReadString('\n')
			if err == nil && !strings.HasPrefix(line, "ready") {
				err = fmt.Errorf("worker: %s", line)
			}
			ready <- err
		}()
	}
	defer func() {
		for i, c := range cmds {
			stdins[i].Close()
			c.Wait()
		}
	}()
	for range workers {
		if err := <-ready; err != nil {
			return err
		}
	}
	fmt.Printf("opened %d streams over %d gateways from %d client processes in %v\n", n/workers*workers, replicas, workers, time.Since(start).Round(time.Millisecond))
	time.Sleep(3 * time.Second)
	var total int64
	for i, gw := range gws {
		rss := gw.rss()
		total += rss - before[i]
		fmt.Printf("gateway %d: RSS %d KiB before, %d KiB after\n", i, before[i], rss)
	}
	fmt.Printf("idle streams: %d, gateway RSS added: %d KiB, %.1f KiB per stream\n", n/workers*workers, total, float64(total)/float64(n/workers*workers))
	return nil
}

// worker opens n streams round-robin over addrs, says "ready", and holds
// them until its standard input closes.
func worker(addrs []string, w, n int) error {
	cs := &clients{}
	for i := range n {
		tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
			"iss": "freshet", "aud": "freshet-sse", "sub": fmt.Sprintf("w%d-user%d", w, i),
			"exp": time.Now().Add(time.Hour).Unix(),
		}).SignedString([]byte(secret))
		if err != nil {
			return err
		}
		if err := cs.open(addrs[i%len(addrs)], w+1, i, "/v1/stream?token="+tok); err != nil {
			return fmt.Errorf("stream %d: %w", i, err)
		}
	}
	fmt.Println("ready")
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	return nil
}

// startBroker starts the in-process broker on a fixed free port, so that the
// gateway processes can reach it.
func startBroker(ctx context.Context) (*servers.Kfake, error) {
	port, err := servers.FreePort()
	if err != nil {
		return nil, err
	}
	return servers.StartKfake(ctx, servers.KfakeOptions{Ports: []int{port}})
}
