// Package stack runs Freshet's whole stack for the load generator the way
// `make run` does: it builds deploy/local's runner and runs it as a child
// process with FRESHET_LOCAL_* variables (free loopback ports, a data
// folder of its own), so Postgres, ClickHouse, Varnish, the embedded kfake
// broker and every service under services/ run as they do for users. It
// adds what load tests need: more sse-gateway replicas, the CPU time of
// each part of the stack, and the services' metrics.
//
// A Stack is safe for concurrent use once Start returned. Every process it
// starts is killed when the load generator dies (process groups and a
// parent-death signal), and Stop stops them all.
package stack

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/freshet/freshet/loadtest/internal/safety"
	"github.com/freshet/freshet/pkg/servers"
)

// Options configures Start.
type Options struct {
	// Dir is the folder of the stack's data, binaries and logs (a fresh
	// temporary folder: the stack starts from scratch). Required.
	Dir string
	// Env is added to the runner's environment, which every service
	// inherits (e.g. PprofEnv()).
	Env []string
	// Pipeline is the pipeline file every service reads; empty means
	// the runner's default, pipelines/freshet.yaml.
	Pipeline string
	// Services is FRESHET_LOCAL_SERVICES; empty means all.
	Services string
	// Log receives the runner's output lines (nil: discarded).
	Log io.Writer
	// ReadyTimeout bounds the whole start, builds included. Zero means 5
	// minutes.
	ReadyTimeout time.Duration
}

// Stack is the running stack.
type Stack struct {
	dir      string
	pipeline string
	cmd      *exec.Cmd
	done     chan struct{}
	ports    map[string]int
	admin    map[string]string // service name -> admin host:port
	secrets  map[string]string

	mu       sync.Mutex
	gateways []*Service // replicas started by AddGateway
	stopped  bool
	// goneGateways is the CPU time of the replicas stopped so far, read
	// just before each stopped: once reaped, a child's time is added to
	// this process's (cutime), where CPU takes it back out.
	goneGateways float64
}

// portVars are the runner's port variables, by the short name used here.
var portVars = []struct{ name, env string }{
	{"postgres", "FRESHET_LOCAL_POSTGRES_PORT"},
	{"clickhouse", "FRESHET_LOCAL_CLICKHOUSE_TCP_PORT"},
	{"clickhouse-http", "FRESHET_LOCAL_CLICKHOUSE_HTTP_PORT"},
	{"varnish", "FRESHET_LOCAL_VARNISH_PORT"},
	{"varnish-admin", "FRESHET_LOCAL_VARNISH_ADMIN_PORT"},
	{"origin", "FRESHET_LOCAL_ORIGIN_PORT"},
	{"kafka", "FRESHET_LOCAL_KAFKA_PORT"},
	{"ingest", "FRESHET_LOCAL_INGEST_PORT"},
	{"gateway", "FRESHET_LOCAL_GATEWAY_PORT"},
}

// GatewayEnv is what every gateway replica of a load test runs with: no
// per-address limits (the clients share a few source addresses) and room
// for ~19,800 streams per replica (the open-file limit is 20,000).
var GatewayEnv = []string{
	"FRESHET_GATEWAY_MAX_CONNS=19800",
	"FRESHET_GATEWAY_MAX_CONNS_PER_IP=0",
	"FRESHET_GATEWAY_MAX_CONNS_PER_USER=0",
	"FRESHET_GATEWAY_CONNECT_RATE=0",
	"FRESHET_RUM_RATE_PER_IP=0",
	"FRESHET_RUM_RATE_PER_SESSION=0",
}

// PprofVars is the variable that turns on /debug/pprof/ on a service's
// admin port, by the name the stack runs the service under (its folder
// under services/). The origin has none. TestPprofVarsDocumented keeps the
// list in step with the services' docs.
var PprofVars = map[string]string{
	"cdc-ingestor": "FRESHET_CDC_PPROF",
	"invalidator":  "FRESHET_INVALIDATOR_PPROF",
	"metrics-sink": "FRESHET_SINK_PPROF",
	"personalizer": "FRESHET_PERSONALIZER_PPROF",
	"sse-gateway":  "FRESHET_GATEWAY_PPROF",
}

// PprofEnv sets every variable of PprofVars to true, for [Options.Env]:
// each service then serves the CPU profiles the load test takes.
func PprofEnv() []string {
	var env []string
	for _, v := range PprofVars {
		env = append(env, v+"=true")
	}
	slices.Sort(env)
	return env
}

var readyLine = regexp.MustCompile(`^\s+(\S+)\s+ready in \S+\s+admin http://(\S+)`)

// Start builds the runner, starts the stack and waits until every part is
// ready. It must run from the repository root (the runner reads
// pipelines/ and deploy/).
func Start(ctx context.Context, o Options) (*Stack, error) {
	if o.ReadyTimeout == 0 {
		o.ReadyTimeout = 5 * time.Minute
	}
	if _, err := os.Stat("deploy/local"); err != nil {
		return nil, errors.New("run the load generator from the repository root (deploy/local not found)")
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	runner := filepath.Join(dir, "freshet-local")
	if b, err := exec.CommandContext(ctx, "go", "build", "-o", runner, "./deploy/local").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build deploy/local: %w\n%s", err, b)
	}
	s := &Stack{dir: dir, pipeline: o.Pipeline, ports: map[string]int{}, admin: map[string]string{}, done: make(chan struct{})}
	if s.pipeline == "" {
		s.pipeline = "pipelines/freshet.yaml"
	}
	env := append(os.Environ(), "FRESHET_LOCAL_DIR="+filepath.Join(dir, "stack"), "FRESHET_LOCAL_INSTALL=false")
	for _, pv := range portVars {
		p, err := FreePort()
		if err != nil {
			return nil, err
		}
		s.ports[pv.name] = p
		env = append(env, fmt.Sprintf("%s=%d", pv.env, p))
	}
	// The admin ports are consecutive from a base: take a run of free ones.
	base, err := freeRun(8)
	if err != nil {
		return nil, err
	}
	env = append(env, fmt.Sprintf("FRESHET_LOCAL_ADMIN_BASE_PORT=%d", base))
	if o.Services != "" {
		env = append(env, "FRESHET_LOCAL_SERVICES="+o.Services)
	}
	env = append(env, "FRESHET_LOG_LEVEL=warn", "FRESHET_PIPELINE="+s.pipeline)
	env = append(env, GatewayEnv...)
	env = append(env, o.Env...)

	s.cmd = exec.Command(runner)
	s.cmd.Env = env
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	pr, pw := io.Pipe()
	s.cmd.Stdout, s.cmd.Stderr = pw, pw
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the runner: %w", err)
	}
	go func() { _ = s.cmd.Wait(); pw.Close(); close(s.done) }()

	ready := make(chan error, 1)
	var tail []string
	go func() {
		sc := bufio.NewScanner(pr)
		sent := false
		for sc.Scan() {
			line := sc.Text()
			if o.Log != nil {
				fmt.Fprintln(o.Log, "  [stack] "+line)
			}
			if !sent {
				tail = append(tail, line)
				if m := readyLine.FindStringSubmatch(line); m != nil {
					s.admin[m[1]] = m[2]
				}
				if strings.Contains(line, "all parts ready") {
					sent = true
					ready <- nil
				}
			}
		}
		if !sent {
			ready <- fmt.Errorf("the runner exited before the stack was ready:\n%s", strings.Join(tail, "\n"))
		}
	}()
	select {
	case err := <-ready:
		if err != nil {
			s.Stop()
			return nil, err
		}
	case <-time.After(o.ReadyTimeout):
		s.Stop()
		return nil, fmt.Errorf("stack not ready after %s:\n%s", o.ReadyTimeout, strings.Join(tail, "\n"))
	case <-ctx.Done():
		s.Stop()
		return nil, ctx.Err()
	}
	if s.secrets, err = readSecrets(filepath.Join(dir, "stack", "secrets.env")); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// Ports are picked below the ephemeral range (32768-60999 here): a port
// the kernel hands out for outgoing connections can be taken by one of the
// stack's own clients between the pick and the bind.
const portLow, portHigh = 20000, 32700

var (
	portMu    sync.Mutex
	portTaken = map[int]bool{}
)

// FreePort returns a free loopback port below the ephemeral range, never
// the same twice in a process.
func FreePort() (int, error) { return freeRun(1) }

// freeRun finds n consecutive free ports below the ephemeral range.
func freeRun(n int) (int, error) {
	portMu.Lock()
	defer portMu.Unlock()
	for range 200 {
		p := portLow + rand.IntN(portHigh-portLow-n)
		ok := true
		for i := 0; i < n && ok; i++ {
			ok = !portTaken[p+i] && portFree(p+i)
		}
		if ok {
			for i := range n {
				portTaken[p+i] = true
			}
			return p, nil
		}
	}
	return 0, errors.New("no free ports found below the ephemeral range")
}

func portFree(p int) bool {
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

func readSecrets(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("the stack's secrets: %w", err)
	}
	out := map[string]string{}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(l), "="); ok && !strings.HasPrefix(k, "#") {
			out[k] = v
		}
	}
	return out, nil
}

// Dir is the stack's folder.
func (s *Stack) Dir() string { return s.dir }

// Secret returns a generated secret, e.g. FRESHET_AUTH_HS256_SECRET.
func (s *Stack) Secret(name string) string { return s.secrets[name] }

// PostgresDSN is the captured database.
func (s *Stack) PostgresDSN() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/freshet?sslmode=disable", s.ports["postgres"])
}

// ClickHouseAddr is ClickHouse's native address.
func (s *Stack) ClickHouseAddr() string { return fmt.Sprintf("127.0.0.1:%d", s.ports["clickhouse"]) }

// VarnishAddr is the edge cache's address.
func (s *Stack) VarnishAddr() string { return fmt.Sprintf("127.0.0.1:%d", s.ports["varnish"]) }

// Brokers are the embedded broker's seeds.
func (s *Stack) Brokers() []string { return []string{fmt.Sprintf("127.0.0.1:%d", s.ports["kafka"])} }

// GatewayAddr is the stack's own gateway replica.
func (s *Stack) GatewayAddr() string { return fmt.Sprintf("127.0.0.1:%d", s.ports["gateway"]) }

// IngestAddr is the cdc-ingestor's HTTP ingest.
func (s *Stack) IngestAddr() string { return fmt.Sprintf("127.0.0.1:%d", s.ports["ingest"]) }

// Admin returns a service's admin address ("" when it does not run).
func (s *Stack) Admin(service string) string { return s.admin[service] }

// Services lists the services that run.
func (s *Stack) Services() []string {
	var out []string
	for k := range s.admin {
		out = append(out, k)
	}
	return out
}

// Bin is the path of a service's binary, as the runner built it.
func (s *Stack) Bin(service string) string { return filepath.Join(s.dir, "stack", "bin", service) }

// LogDir holds the services' logs.
func (s *Stack) LogDir() string { return filepath.Join(s.dir, "stack", "logs") }

// Service is a process the load generator started beside the stack.
type Service struct {
	Name  string
	Addr  string // its public listener
	Admin string
	cmd   *servers.Command
}

// Pid is the process id.
func (g *Service) Pid() int { return g.cmd.Pid() }

// RSS is the resident set in KiB (0 when unknown).
func (g *Service) RSS() int64 { return rss(g.cmd.Pid()) }

func rss(pid int) int64 {
	m, err := servers.ProcessMemory(pid)
	if err != nil {
		return 0
	}
	return m.RSS >> 10
}

// Stop stops it (SIGTERM, then SIGKILL after grace).
func (g *Service) Stop(grace time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), grace+10*time.Second)
	defer cancel()
	return g.cmd.Stop(ctx, grace)
}

// AddGateway starts one more sse-gateway replica on free ports, against
// the stack's broker and with its secrets, and waits until it is ready.
func (s *Stack) AddGateway(ctx context.Context, env ...string) (*Service, error) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	admin, err := FreePort()
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	n := len(s.gateways)
	s.mu.Unlock()
	g := &Service{Name: fmt.Sprintf("sse-gateway-%d", n+2), Addr: fmt.Sprintf("127.0.0.1:%d", port), Admin: fmt.Sprintf("127.0.0.1:%d", admin)}
	full := append(os.Environ(),
		"FRESHET_KAFKA_BROKERS="+strings.Join(s.Brokers(), ","),
		"FRESHET_PIPELINE="+s.pipeline,
		"FRESHET_ADMIN_ADDR="+g.Admin,
		"FRESHET_GATEWAY_ADDR="+g.Addr,
		"FRESHET_AUTH_HS256_SECRET="+s.Secret("FRESHET_AUTH_HS256_SECRET"),
		"FRESHET_RUM_HASH_KEY="+s.Secret("FRESHET_RUM_HASH_KEY"),
		"FRESHET_LOG_LEVEL=warn",
	)
	full = append(full, GatewayEnv...)
	full = append(full, env...)
	cmd, err := servers.StartCommand(servers.CommandOptions{
		Name: g.Name, Path: s.Bin("sse-gateway"), Env: full, LogFile: filepath.Join(s.LogDir(), g.Name+".log"),
	})
	if err != nil {
		return nil, err
	}
	g.cmd = cmd
	if err := WaitReady(ctx, g.Admin, 60*time.Second); err != nil {
		_ = g.Stop(time.Second)
		return nil, fmt.Errorf("%s: %w\n%s", g.Name, err, cmd.Output())
	}
	s.mu.Lock()
	s.gateways = append(s.gateways, g)
	s.mu.Unlock()
	return g, nil
}

// Gateways are the replicas started by AddGateway and still running.
func (s *Stack) Gateways() []*Service {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*Service(nil), s.gateways...)
}

// StopGateways stops the replicas started by AddGateway.
func (s *Stack) StopGateways() {
	s.mu.Lock()
	gws := s.gateways
	s.gateways = nil
	procs := allProcs()
	for _, g := range gws {
		s.goneGateways += float64(procs[g.Pid()].ticks) / clockTicks
	}
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, g := range gws {
		wg.Add(1)
		go func() { defer wg.Done(); _ = g.Stop(20 * time.Second) }()
	}
	wg.Wait()
}

// WaitReady polls admin's /readyz until it answers 200.
func WaitReady(ctx context.Context, admin string, timeout time.Duration) error {
	cl := safety.HTTPClient(2 * time.Second)
	deadline := time.Now().Add(timeout)
	for {
		resp, err := cl.Get("http://" + admin + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %s (%s/readyz)", timeout, admin)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Stop stops the extra replicas, then the runner (SIGINT, as Ctrl-C: it
// stops the services, then the servers), killing its process group if it
// takes more than a minute. Safe to call twice.
func (s *Stack) Stop() {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return
	}
	s.stopped = true
	s.mu.Unlock()
	s.StopGateways()
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-s.done:
	case <-time.After(60 * time.Second):
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.done
	}
}

// RunnerPid is the runner's process id (the embedded broker runs in it).
func (s *Stack) RunnerPid() int { return s.cmd.Process.Pid }
