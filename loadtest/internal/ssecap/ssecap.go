// Package ssecap is scenario 3 of the load generator, SSE capacity: idle
// streams over several gateway replicas (server RSS per stream), the same
// streams active (a broadcast: events per second delivered), and a
// reconnect storm (every client of a set reconnecting at once with
// Last-Event-ID to another replica: time until all are resumed, gaps and
// duplicates counted), each beside a minimal net/http SSE writer run the
// same way. Clients live in worker processes (this binary's sse-worker
// subcommand), each under the 20,000 open files a process may hold here.
//
// The scenario drives its workers from one goroutine and stops every
// process it started before returning.
package ssecap

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/freshet/freshet/loadtest/internal/report"
	"github.com/freshet/freshet/loadtest/internal/safety"
	"github.com/freshet/freshet/loadtest/internal/scenario"
	"github.com/freshet/freshet/loadtest/internal/stack"
	"github.com/freshet/freshet/pkg/codec"
	"github.com/freshet/freshet/pkg/events"
	"github.com/freshet/freshet/pkg/servers"
)

// SSE is the scenario's configuration.
type SSE struct {
	// Idle streams opened over the replicas (50,000 in the issue).
	Idle int
	// Replicas of the gateway: the stack's own plus Replicas-1 more.
	Replicas int
	// Broadcast events sent to every idle stream once they are open.
	Broadcast int
	// Storm clients reconnecting at once (10,000 in the issue).
	Storm int
}

// PerWorker is how many streams one worker process opens at most: under
// the 20,000 open files of a process, with room to spare.
const PerWorker = 16000

var _ scenario.Scenario = (*SSE)(nil)

// Name implements scenario.Scenario.
func (s *SSE) Name() string { return "sse" }

// Title implements scenario.Scenario.
func (s *SSE) Title() string {
	return fmt.Sprintf("%d idle streams over %d gateway replicas, a broadcast of %d events to them, a reconnect storm of %d clients; beside a minimal net/http SSE writer",
		s.Idle, s.Replicas, s.Broadcast, s.Storm)
}

// Bound implements scenario.Scenario.
func (s *SSE) Bound() safety.Bound {
	return safety.Bound{Duration: 8 * time.Minute, Count: int64(s.Idle)*int64(s.Broadcast+1) + int64(s.Storm)*10}
}

// Run implements scenario.Scenario.
func (s *SSE) Run(ctx context.Context, env *scenario.Env, res *report.Result) error {
	st := env.Stack
	if s.Replicas < 1 || s.Idle < 1 || s.Storm < 1 {
		return fmt.Errorf("sse: need replicas, idle streams and storm clients")
	}
	for range s.Replicas - 1 {
		if _, err := st.AddGateway(ctx); err != nil {
			return err
		}
	}
	defer st.StopGateways()
	type replica struct {
		addr string
		rss  func() int64
	}
	own := st.Pids("sse-gateway")
	if len(own) != 1 {
		return fmt.Errorf("sse: want the stack's gateway process, found %d", len(own))
	}
	reps := []replica{{st.GatewayAddr(), func() int64 { return rssOf(own[0]) }}}
	for _, g := range st.Gateways() {
		reps = append(reps, replica{g.Addr, g.RSS})
	}
	addrs := make([]string, len(reps))
	for i, r := range reps {
		addrs[i] = r.addr
	}
	secret := st.Secret("FRESHET_AUTH_HS256_SECRET")

	// Freshet: idle, then active.
	rssBefore := make([]int64, len(reps))
	for i, r := range reps {
		rssBefore[i] = r.rss()
	}
	idle, err := s.idle(ctx, env, "freshet", addrs, secret, "", func() int64 {
		var sum int64
		for i, r := range reps {
			sum += r.rss() - rssBefore[i]
		}
		return sum
	}, func(n int) error { return produceBroadcast(ctx, env, n) })
	if err != nil {
		return err
	}

	// Baseline: the minimal writer, the same number of processes.
	var mins []*minProc
	defer func() {
		for _, m := range mins {
			m.stop()
		}
	}()
	var minAddrs []string
	for range reps {
		m, err := startMinimal(ctx, env)
		if err != nil {
			return err
		}
		mins = append(mins, m)
		minAddrs = append(minAddrs, m.addr)
	}
	minBefore := make([]int64, len(mins))
	for i, m := range mins {
		minBefore[i] = rssOf(m.cmd.Process.Pid)
	}
	base, err := s.idle(ctx, env, "minimal", minAddrs, "", "/stream", func() int64 {
		var sum int64
		for i, m := range mins {
			sum += rssOf(m.cmd.Process.Pid) - minBefore[i]
		}
		return sum
	}, func(n int) error {
		for _, m := range mins {
			if err := m.publish(n); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	opened := report.F(fmt.Sprintf("idle streams open (%d replicas)", len(reps)), float64(idle.opened), "streams").
		Against("minimal net/http SSE writer, same clients", float64(base.opened)).
		Noted("opened in %.1f s (minimal writer: %.1f s)", idle.openSecs, base.openSecs)
	if s.Idle >= 50000 {
		opened.AtLeast(50000)
	}
	res.Add(
		opened,
		report.F("server RSS per idle stream", idle.kibPerStream, "KiB").AtMost(16).Against("minimal net/http SSE writer", base.kibPerStream),
		report.F(fmt.Sprintf("broadcast to %d active streams", idle.opened), idle.eventsPerSec, "events/s").
			Against("minimal net/http SSE writer", base.eventsPerSec).Noted("%d events each; %d of %d delivered", s.Broadcast, idle.delivered, idle.opened*s.Broadcast),
	)
	for _, m := range mins {
		m.stop()
	}
	mins = nil

	// The reconnect storm, on Freshet, then on the minimal writer (which
	// has no resume: the baseline is the time to reconnect at all).
	storm, err := s.storm(ctx, env, addrs, secret)
	if err != nil {
		return err
	}
	m, err := startMinimal(ctx, env)
	if err != nil {
		return err
	}
	mins = append(mins, m)
	baseStorm, err := s.stormBaseline(ctx, env, m.addr)
	if err != nil {
		res.Missing = append(res.Missing, "storm baseline: "+err.Error())
	}
	res.Add(
		report.F(fmt.Sprintf("reconnect storm, %d clients: all resumed", s.Storm), storm.ms/1000, "s").AtMost(5).
			Against("minimal writer: all reconnected", baseStorm/1000).
			Noted("reconnected (200) in %.2f s, %d connect failures, %d streams behind at the end", storm.connectMs/1000, storm.errors, storm.behind),
		report.F("reconnect storm: gaps", float64(storm.gaps), "count").AtMost(0),
		report.F("reconnect storm: duplicates", float64(storm.dups), "count").AtMost(0),
	)
	if storm.reordered > 0 {
		res.Missing = append(res.Missing, fmt.Sprintf("reconnect storm: %d deliveries arrived out of order", storm.reordered))
	}
	return nil
}

type idleResult struct {
	opened       int
	openSecs     float64
	kibPerStream float64
	eventsPerSec float64
	delivered    int64
}

// idle opens s.Idle streams over addrs from worker processes, measures the
// servers' added RSS per stream, then broadcasts s.Broadcast events (by
// publish) and measures events per second delivered across all streams.
func (s *SSE) idle(ctx context.Context, env *scenario.Env, what string, addrs []string, secret, path string, addedRSS func() int64, publish func(n int) error) (idleResult, error) {
	var r idleResult
	nw := (s.Idle + PerWorker - 1) / PerWorker
	t0 := time.Now()
	workers, err := startWorkers(ctx, env, what, nw, s.Idle, addrs, secret, path, "idle", "breaking")
	defer func() {
		for _, w := range workers {
			w.close()
		}
	}()
	if err != nil {
		return r, err
	}
	r.opened = s.Idle / nw * nw
	r.openSecs = time.Since(t0).Seconds()
	env.Logf("%s: %d idle streams open over %d servers from %d workers in %.1f s", what, r.opened, len(addrs), nw, r.openSecs)
	time.Sleep(3 * time.Second) // let the servers settle
	r.kibPerStream = float64(addedRSS()) / float64(r.opened)
	env.Logf("%s: %.1f KiB of server RSS per idle stream", what, r.kibPerStream)

	count := func() (int64, error) {
		var sum int64
		for _, w := range workers {
			rep, err := w.call("count")
			if err != nil {
				return 0, err
			}
			sum += rep.Events
		}
		return sum, nil
	}
	before, err := count()
	if err != nil {
		return r, err
	}
	want := int64(r.opened) * int64(s.Broadcast)
	t0 = time.Now()
	if err := publish(s.Broadcast); err != nil {
		return r, err
	}
	for {
		n, err := count()
		if err != nil {
			return r, err
		}
		r.delivered = n - before
		if r.delivered >= want || time.Since(t0) > 2*time.Minute || ctx.Err() != nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.eventsPerSec = float64(r.delivered) / time.Since(t0).Seconds()
	env.Logf("%s: broadcast of %d events to %d streams: %d delivered, %.0f events/s", what, s.Broadcast, r.opened, r.delivered, r.eventsPerSec)
	return r, nil
}

type stormResult struct {
	ms, connectMs         float64
	errors, behind        int
	gaps, dups, reordered int
}

// storm: s.Storm clients, each its own user, get rounds of numbered
// deliveries; all drop, two more rounds are produced, all reconnect at once
// (each to the next replica) with Last-Event-ID; the time until every one
// has every delivery, then one more live round and the gap and duplicate
// counts over all rounds.
func (s *SSE) storm(ctx context.Context, env *scenario.Env, addrs []string, secret string) (stormResult, error) {
	var r stormResult
	nw := (s.Storm + PerWorker - 1) / PerWorker
	per := s.Storm / nw
	workers, err := startWorkers(ctx, env, "storm", nw, s.Storm, addrs, secret, "", "storm", "")
	defer func() {
		for _, w := range workers {
			w.close()
		}
	}()
	if err != nil {
		return r, err
	}
	p, err := newProducer(env)
	if err != nil {
		return r, err
	}
	defer p.close()
	users := func(yield func(string) bool) {
		for w := range nw {
			for i := range per {
				if !yield(userName("storm", "storm", w, i)) {
					return
				}
			}
		}
	}
	all := func(cmd string) ([]reply, error) {
		var out []reply
		for _, w := range workers {
			rep, err := w.call(cmd)
			if err != nil {
				return nil, err
			}
			out = append(out, rep)
		}
		return out, nil
	}
	for round := range 3 {
		if err := p.round(ctx, users, round); err != nil {
			return r, err
		}
	}
	if _, err := all("wait 3 60s"); err != nil {
		return r, err
	}
	if _, err := all("drop"); err != nil {
		return r, err
	}
	for round := 3; round < 5; round++ {
		if err := p.round(ctx, users, round); err != nil {
			return r, err
		}
	}
	env.Logf("storm: %d clients dropped; 2 rounds produced while they were away; all reconnect now", s.Storm)
	// Every worker reconnects all its streams at once, concurrently.
	type res struct {
		rep reply
		err error
	}
	ch := make(chan res, len(workers))
	for _, w := range workers {
		go func() { rep, err := w.call("resume"); ch <- res{rep, err} }()
	}
	for range workers {
		x := <-ch
		if x.err != nil {
			return r, x.err
		}
		r.connectMs = max(r.connectMs, x.rep.Ms)
		r.errors += x.rep.Errors
	}
	reps, err := all("wait 5 60s")
	if err != nil {
		return r, err
	}
	for _, x := range reps {
		r.ms = max(r.ms, x.Ms)
		r.behind += x.Behind
	}
	env.Logf("storm: all resumed in %.2f s (connected in %.2f s)", r.ms/1000, r.connectMs/1000)
	if err := p.round(ctx, users, 5); err != nil {
		return r, err
	}
	if _, err := all("wait 6 30s"); err != nil {
		return r, err
	}
	reps, err = all("check 6")
	if err != nil {
		return r, err
	}
	for _, x := range reps {
		r.gaps += x.Gaps
		r.dups += x.Dups
		r.reordered += x.Reordered
	}
	return r, nil
}

// stormBaseline: the same number of clients connected to the minimal
// writer drop and reconnect at once; the time until all answered 200.
func (s *SSE) stormBaseline(ctx context.Context, env *scenario.Env, addr string) (float64, error) {
	nw := (s.Storm + PerWorker - 1) / PerWorker
	workers, err := startWorkers(ctx, env, "storm-minimal", nw, s.Storm, []string{addr}, "", "/stream", "storm", "")
	defer func() {
		for _, w := range workers {
			w.close()
		}
	}()
	if err != nil {
		return 0, err
	}
	for _, w := range workers {
		if _, err := w.call("drop"); err != nil {
			return 0, err
		}
	}
	var ms float64
	ch := make(chan reply, len(workers))
	errs := make(chan error, len(workers))
	for _, w := range workers {
		go func() {
			rep, err := w.call("resume")
			if err != nil {
				errs <- err
				return
			}
			ch <- rep
		}()
	}
	for range workers {
		select {
		case rep := <-ch:
			ms = max(ms, rep.Ms)
		case err := <-errs:
			return 0, err
		}
	}
	return ms, nil
}

// startWorkers starts nw worker processes opening n streams in all over
// addrs, and waits until each has opened its streams.
func startWorkers(ctx context.Context, env *scenario.Env, what string, nw, n int, addrs []string, secret, path, users, channels string) ([]*worker, error) {
	for _, a := range addrs {
		if err := safety.CheckAddr(a); err != nil {
			return nil, err
		}
	}
	var ws []*worker
	type opened struct {
		i   int
		err error
	}
	ch := make(chan opened, nw)
	for i := range nw {
		args := []string{WorkerCommand, "-addrs", strings.Join(addrs, ","), "-n", strconv.Itoa(n / nw), "-group", strconv.Itoa(i + groupBase(what)),
			"-users", users + "-" + what, "-max", "15m"} // user names: userName
		if channels != "" {
			args = append(args, "-channels", channels)
		}
		if path != "" {
			args = append(args, "-path", path)
		}
		cmd := exec.Command(env.Self, args...)
		cmd.Env = append(os.Environ(), SecretEnv+"="+secret)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		logf, err := os.Create(filepath.Join(env.Dir, fmt.Sprintf("worker-%s-%d.log", what, i)))
		if err != nil {
			return ws, err
		}
		cmd.Stderr = logf
		in, err := cmd.StdinPipe()
		if err != nil {
			return ws, err
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			return ws, err
		}
		if err := cmd.Start(); err != nil {
			return ws, err
		}
		logf.Close()
		w := &worker{cmd: cmd, in: in, out: json.NewDecoder(out), kill: func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }}
		ws = append(ws, w)
		go func() { _, err := w.read(); ch <- opened{i, err} }()
	}
	for range nw {
		select {
		case o := <-ch:
			if o.err != nil {
				return ws, fmt.Errorf("%s worker %d: %w", what, o.i, o.err)
			}
		case <-ctx.Done():
			return ws, ctx.Err()
		}
	}
	return ws, nil
}

// userName is the user of stream i of worker w of a worker set, as the
// worker names it ("<users>-<group>-<i>").
func userName(users, what string, w, i int) string {
	return fmt.Sprintf("%s-%s-%d-%d", users, what, w+groupBase(what), i)
}

// groupBase keeps the source addresses of different worker sets apart.
func groupBase(what string) int {
	switch what {
	case "freshet":
		return 10
	case "minimal":
		return 30
	case "storm":
		return 50
	}
	return 70
}

func rssOf(pid int) int64 {
	m, err := servers.ProcessMemory(pid)
	if err != nil {
		return 0
	}
	return m.RSS >> 10
}

// minProc is a baseline server process.
type minProc struct {
	cmd  *exec.Cmd
	addr string
}

func startMinimal(ctx context.Context, env *scenario.Env) (*minProc, error) {
	port, err := stack.FreePort()
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	cmd := exec.Command(env.Self, MinimalCommand, "-addr", addr, "-max", "15m")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	m := &minProc{cmd: cmd, addr: addr}
	if err := stack.WaitReady(ctx, addr, 20*time.Second); err != nil {
		m.stop()
		return nil, fmt.Errorf("minimal SSE server: %w", err)
	}
	return m, nil
}

func (m *minProc) publish(n int) error {
	cl := safety.HTTPClient(2 * time.Minute)
	resp, err := cl.Post(fmt.Sprintf("http://%s/publish?n=%d", m.addr, n), "text/plain", nil)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

func (m *minProc) stop() {
	syscall.Kill(-m.cmd.Process.Pid, syscall.SIGTERM)
	done := make(chan struct{})
	go func() { m.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		syscall.Kill(-m.cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
}

// producer writes deliveries straight to content.deliveries, as the
// personalizer would.
type producer struct {
	cl *kgo.Client
	cd *codec.Codec
}

func newProducer(env *scenario.Env) (*producer, error) {
	cl, err := env.Kafka(kgo.ProducerLinger(2 * time.Millisecond))
	if err != nil {
		return nil, err
	}
	cd, err := codec.New()
	if err != nil {
		cl.Close()
		return nil, err
	}
	return &producer{cl: cl, cd: cd}, nil
}

func (p *producer) close() { p.cl.Close() }

// round produces delivery number round to every user.
func (p *producer) round(ctx context.Context, users func(func(string) bool), round int) error {
	var mu sync.Mutex
	var err error
	for u := range users {
		d := delivery(u, "", "seq-"+strconv.Itoa(round), int64(round))
		v, e := p.cd.EncodeEvent(ctx, "content.deliveries", d)
		if e != nil {
			return e
		}
		p.cl.Produce(ctx, &kgo.Record{Topic: "content.deliveries", Key: []byte(u), Value: v}, func(_ *kgo.Record, e error) {
			if e != nil {
				mu.Lock()
				err = e
				mu.Unlock()
			}
		})
	}
	if e := p.cl.Flush(ctx); e != nil {
		return e
	}
	mu.Lock()
	defer mu.Unlock()
	return err
}

// produceBroadcast sends n deliveries to the "breaking" channel.
func produceBroadcast(ctx context.Context, env *scenario.Env, n int) error {
	p, err := newProducer(env)
	if err != nil {
		return err
	}
	defer p.close()
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	for i := range n {
		d := delivery("", "breaking", "bcast-"+run+"-"+strconv.Itoa(i), 1)
		v, err := p.cd.EncodeEvent(ctx, "content.deliveries", d)
		if err != nil {
			return err
		}
		p.cl.Produce(ctx, &kgo.Record{Topic: "content.deliveries", Key: []byte("channel:breaking"), Value: v}, nil)
	}
	return p.cl.Flush(ctx)
}

func delivery(user, channel, contentID string, version int64) *events.Delivery {
	now := time.Now().UTC()
	return &events.Delivery{
		EventID: events.ID("loadtest", user, channel, contentID), ChangeEventID: events.ID("loadtest-change", contentID),
		Source: events.Source{Origin: events.OriginProducer, CommitTime: now}, Trace: events.Trace{CommittedAt: now, ProducedAt: now},
		Op: events.OpUpdate, UserID: user, Channel: channel,
		Content: events.ContentProjection{ID: contentID, Title: "load", Summary: "A delivery of the load test.", URLPath: "/lt/" + contentID, Version: version},
	}
}
