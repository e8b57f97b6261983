package stack

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/freshet/freshet/pkg/config"
	"github.com/freshet/freshet/pkg/servers"
	"github.com/freshet/freshet/pkg/testenv"
)

// repoRoot is where the runner must run: it reads pipelines/ and deploy/.
const repoRoot = "../../../.."

// buildRunner builds the runner binary once per test.
func buildRunner(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "freshet-local")
	cmd := exec.Command("go", "build", "-o", bin, "./deploy/local")
	cmd.Dir = repoRoot
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build runner: %v\n%s", err, b)
	}
	return bin
}

// runner is the runner binary started as its own process, its output
// piped into lines.
type runner struct {
	cmd   *exec.Cmd
	lines chan string
	all   *strings.Builder
}

func startRunner(t *testing.T, bin string, env []string, args ...string) *runner {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := &runner{cmd: cmd, lines: make(chan string, 1000), all: &strings.Builder{}}
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			r.lines <- sc.Text()
		}
		close(r.lines)
	}()
	go func() { _ = cmd.Wait(); pw.Close() }()
	t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
	return r
}

// waitFor reads lines until one contains want.
func (r *runner) waitFor(t *testing.T, want string, timeout time.Duration) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case l, ok := <-r.lines:
			if !ok {
				t.Fatalf("runner exited before printing %q:\n%s", want, r.all)
			}
			r.all.WriteString(l + "\n")
			if strings.Contains(l, want) {
				return
			}
		case <-deadline:
			t.Fatalf("no %q after %s:\n%s", want, timeout, r.all)
		}
	}
}

// stop sends sig and waits for the process to exit.
func (r *runner) stop(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := r.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	for l := range r.lines { // closed when the process's output ends
		r.all.WriteString(l + "\n")
	}
	deadline := time.Now().Add(60 * time.Second)
	for servers.ProcessAlive(r.cmd.Process.Pid) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if sig != syscall.SIGKILL && r.cmd.ProcessState != nil && !r.cmd.ProcessState.Success() {
		t.Fatalf("runner exited with %v after %v:\n%s", r.cmd.ProcessState, sig, r.all)
	}
}

// requirePackages skips (or fails, when servers are required) a test that
// needs the stack's Debian packages.
func requirePackages(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts the whole stack; skipped in -short mode")
	}
	if pkgs := missingPackages(requirements); len(pkgs) > 0 {
		err := &MissingPackagesError{Packages: pkgs}
		if os.Getenv(testenv.RequireServersEnv) == "1" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
}

func freePorts(t *testing.T, n int) []int {
	t.Helper()
	ports := make([]int, n)
	for i := range ports {
		p, err := servers.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = p
	}
	return ports
}

// processesUnder lists live processes whose command line names dir.
func processesUnder(dir string) []string {
	var found []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		cmdline := strings.ReplaceAll(string(b), "\x00", " ")
		if strings.Contains(cmdline, dir) && servers.ProcessAlive(pid) {
			found = append(found, fmt.Sprintf("%d: %s", pid, cmdline))
		}
	}
	return found
}

// readyWait bounds the wait for the stack in tests. On an idle machine the
// stack is ready in a few seconds (the 30 s goal of make run is checked by
// hand, see deploy/local/README.md); tests share the machine with the rest
// of the suite, so they wait longer rather than assert a time.
const readyWait = 3 * time.Minute

// stackEnv is the environment of a stack on free ports in a temporary
// folder.
type stackEnv struct {
	dir   string
	ports []int // postgres, clickhouse tcp, http, varnish, admin, kafka, ingest, gateway, admin base, origin
	env   []string
}

func newStackEnv(t *testing.T, services string) stackEnv {
	t.Helper()
	dir := t.TempDir()
	// Postgres runs as the postgres user, which must be able to reach its
	// folder: open the test's temporary folders for traversal.
	for d := dir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	// One run of free ports below the ephemeral range: a port the kernel
	// picked (port 0) could be taken by one of the stack's own client
	// connections before the server that should listen there binds it.
	base := freeRun(t, 17)
	var p []int
	for i := range 8 {
		p = append(p, base+i)
	}
	p = append(p, base+8, base+16) // admin base (8 consecutive ports), origin
	return stackEnv{dir: dir, ports: p, env: []string{
		"FRESHET_LOCAL_DIR=" + dir,
		"FRESHET_LOCAL_POSTGRES_PORT=" + strconv.Itoa(p[0]),
		"FRESHET_LOCAL_CLICKHOUSE_TCP_PORT=" + strconv.Itoa(p[1]),
		"FRESHET_LOCAL_CLICKHOUSE_HTTP_PORT=" + strconv.Itoa(p[2]),
		"FRESHET_LOCAL_VARNISH_PORT=" + strconv.Itoa(p[3]),
		"FRESHET_LOCAL_VARNISH_ADMIN_PORT=" + strconv.Itoa(p[4]),
		"FRESHET_LOCAL_KAFKA_PORT=" + strconv.Itoa(p[5]),
		"FRESHET_LOCAL_INGEST_PORT=" + strconv.Itoa(p[6]),
		"FRESHET_LOCAL_GATEWAY_PORT=" + strconv.Itoa(p[7]),
		"FRESHET_LOCAL_ADMIN_BASE_PORT=" + strconv.Itoa(p[8]),
		"FRESHET_LOCAL_ORIGIN_PORT=" + strconv.Itoa(p[9]),
		"FRESHET_LOCAL_SERVICES=" + services,
		"FRESHET_LOCAL_INSTALL=false",
		"FRESHET_LOCAL_READY_TIMEOUT=2m",
		"FRESHET_KAFKA_BROKERS=",
	}}
}

func (s stackEnv) postgresDSN() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/freshet?sslmode=disable", s.ports[0])
}

// freeRun returns the first of n consecutive ports that are free now,
// between 10000 and the start of the ephemeral range (where the kernel
// picks the ports of outgoing connections), from a place that depends on
// the process id and the call, so that test processes running at once, and
// the stacks of one process, pick apart.
func freeRun(t *testing.T, n int) int {
	t.Helper()
	lo, span := 10000, ephemeralStart()-10000-n
	start := lo + (os.Getpid()*7919+int(freeRunCalls.Add(1))*4099)%span
	for i := 0; i < span; i += n {
		base := lo + (start-lo+i)%span
		ok := true
		for p := base; p < base+n && ok; p++ {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
			if err != nil {
				ok = false
				continue
			}
			l.Close()
		}
		if ok {
			return base
		}
	}
	t.Fatal("no run of free ports")
	return 0
}

var freeRunCalls atomic.Int32

// ephemeralStart is the first port of the kernel's ephemeral range
// (32768 when it cannot be read).
func ephemeralStart() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 32768
	}
	p, err := strconv.Atoi(f[0])
	if err != nil || p <= 11000 {
		return 32768
	}
	return p
}

// TestStackUpAndDown runs `make run`'s program as a user would: every part
// reports ready, answers a real request, keeps its data across a restart,
// and nothing is left running after Ctrl-C.
func TestStackUpAndDown(t *testing.T) {
	requirePackages(t)
	bin := buildRunner(t)
	st := newStackEnv(t, "origin")
	env, dir, p := st.env, st.dir, st.ports
	pgDSN := st.postgresDSN()
	seeds := []string{fmt.Sprintf("127.0.0.1:%d", p[5])}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	r := startRunner(t, bin, env)
	r.waitFor(t, "all parts ready", readyWait)
	for _, part := range []string{"postgres", "clickhouse", "varnish", "kafka"} {
		if !strings.Contains(r.all.String(), "  "+part+" ") {
			t.Errorf("no ready line for %s:\n%s", part, r.all)
		}
	}

	// Postgres: the example schema is loaded; write a row.
	conn, err := pgx.Connect(ctx, pgDSN)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "insert into content (title, url, tags) values ('Hello', '/hello', '{news}')"); err != nil {
		t.Fatalf("insert into the example schema: %v", err)
	}
	conn.Close(ctx)

	// ClickHouse: native ping and the freshet database.
	ch, err := clickhouse.Open(&clickhouse.Options{Addr: []string{fmt.Sprintf("127.0.0.1:%d", p[1])}, Auth: clickhouse.Auth{Database: "freshet"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.Ping(ctx); err != nil {
		t.Fatalf("clickhouse ping: %v", err)
	}
	ch.Close()

	// Varnish: a page of the reference origin, then from the cache; and
	// purges from loopback.
	page := fmt.Sprintf("http://127.0.0.1:%d/tech/hello-freshet", p[3])
	for _, want := range []string{"MISS", "HIT"} {
		code, cache, body := getPage(ctx, t, page)
		if code != http.StatusOK || cache != want || !strings.Contains(body, "Hello, Freshet") {
			t.Fatalf("GET %s: %d, X-Cache %q; want 200 %s with the page:\n%s", page, code, cache, want, body)
		}
	}
	req, _ := http.NewRequestWithContext(ctx, "PURGE", fmt.Sprintf("http://127.0.0.1:%d/", p[3]), nil)
	req.Header.Set("xkey", "content:1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("varnish: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("xkey purge through varnish: %s; want 200", resp.Status)
	}

	// The broker: produce, then consume and commit with a group.
	produceConsume(ctx, t, seeds, "local.test", "g", 100, 40)

	r.stop(t, syscall.SIGINT)
	if !strings.Contains(r.all.String(), "stopped 5 parts") {
		t.Errorf("runner did not report stopping every part:\n%s", r.all)
	}
	if left := processesUnder(dir); len(left) > 0 {
		t.Fatalf("processes left after Ctrl-C:\n%s", strings.Join(left, "\n"))
	}

	// A second start reuses the data: the row, the records and the group's
	// committed offsets are still there.
	r = startRunner(t, bin, env)
	r.waitFor(t, "all parts ready", readyWait)
	conn, err = pgx.Connect(ctx, pgDSN)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := conn.QueryRow(ctx, "select count(*) from content where url = '/hello'").Scan(&n); err != nil || n != 1 {
		t.Fatalf("row after restart: count %d, err %v; want 1", n, err)
	}
	conn.Close(ctx)
	checkTopic(ctx, t, seeds, "local.test", "g", 100, 40)
	r.stop(t, syscall.SIGTERM)
	if left := processesUnder(dir); len(left) > 0 {
		t.Fatalf("processes left after SIGTERM:\n%s", strings.Join(left, "\n"))
	}
}

// getPage GETs url and returns the status, X-Cache and body.
func getPage(ctx context.Context, t *testing.T, url string) (int, string, string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, resp.Header.Get("X-Cache"), string(b)
}

// TestBrokerProcessRestart runs the embedded broker as its own process, as
// the local stack's services see it: records and committed group offsets
// survive both a graceful restart and a kill -9 of that process.
func TestBrokerProcessRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the broker process; skipped in -short mode")
	}
	bin := buildRunner(t)
	dir := t.TempDir()
	port := freePorts(t, 1)[0]
	seeds := []string{fmt.Sprintf("127.0.0.1:%d", port)}
	args := []string{"broker", "-dir", dir, "-port", strconv.Itoa(port), "-partitions", "3"}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	r := startRunner(t, bin, nil, args...)
	r.waitFor(t, "broker ready", 30*time.Second)
	produceConsume(ctx, t, seeds, "kept", "g", 1000, 600)
	r.stop(t, syscall.SIGTERM)

	r = startRunner(t, bin, nil, args...)
	r.waitFor(t, "broker ready", 30*time.Second)
	checkTopic(ctx, t, seeds, "kept", "g", 1000, 600)
	// More records and a further commit, then kill -9.
	produceConsume(ctx, t, seeds, "kept", "g", 500, 900)
	r.stop(t, syscall.SIGKILL)

	r = startRunner(t, bin, nil, args...)
	r.waitFor(t, "broker ready", 30*time.Second)
	checkTopic(ctx, t, seeds, "kept", "g", 1500, 900)
	r.stop(t, syscall.SIGTERM)
}

// produceConsume creates topic (3 partitions) if needed, produces n
// records, then consumes with group until it has committed `commit`
// records in total across its life.
func produceConsume(ctx context.Context, t *testing.T, seeds []string, topic, group string, n, commit int) {
	t.Helper()
	adm := kadm.NewClient(mustClient(t, kgo.SeedBrokers(seeds...)))
	defer adm.Close()
	if _, err := adm.CreateTopic(ctx, 3, 1, nil, topic); err != nil && !strings.Contains(err.Error(), "TOPIC_ALREADY_EXISTS") {
		t.Fatalf("create topic: %v", err)
	}
	prod := mustClient(t, kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic(topic))
	defer prod.Close()
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = &kgo.Record{Key: []byte(strconv.Itoa(i % 7)), Value: []byte(fmt.Sprintf("v%d", i))}
	}
	if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	committed := committedTotal(ctx, t, adm, topic, group)
	cons := mustClient(t, kgo.SeedBrokers(seeds...), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.DisableAutoCommit(), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	defer cons.Close()
	for committed < commit {
		fs := cons.PollRecords(ctx, commit-committed)
		if err := fs.Err(); err != nil {
			t.Fatalf("consume: %v", err)
		}
		got := fs.Records()
		if err := cons.CommitRecords(ctx, got...); err != nil {
			t.Fatalf("commit: %v", err)
		}
		committed += len(got)
	}
}

// checkTopic checks that topic holds total records and that group has
// committed exactly `committed` of them.
func checkTopic(ctx context.Context, t *testing.T, seeds []string, topic, group string, total, committed int) {
	t.Helper()
	adm := kadm.NewClient(mustClient(t, kgo.SeedBrokers(seeds...)))
	defer adm.Close()
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	sum := 0
	ends.Each(func(o kadm.ListedOffset) { sum += int(o.Offset) })
	if sum != total {
		t.Errorf("topic %s holds %d records after restart; want %d", topic, sum, total)
	}
	if got := committedTotal(ctx, t, adm, topic, group); got != committed {
		t.Errorf("group %s committed %d records after restart; want %d", group, got, committed)
	}
}

func committedTotal(ctx context.Context, t *testing.T, adm *kadm.Client, topic, group string) int {
	t.Helper()
	offs, err := adm.FetchOffsets(ctx, group)
	if errors.Is(err, kerr.GroupIDNotFound) {
		return 0
	}
	if err != nil {
		t.Fatalf("fetch offsets: %v", err)
	}
	sum := 0
	offs.Each(func(o kadm.OffsetResponse) {
		if o.Topic == topic && o.At > 0 {
			sum += int(o.At)
		}
	})
	return sum
}

func mustClient(t *testing.T, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// A port of the stack that something else holds stops the runner before
// anything starts, with an error naming the port, what uses it and the
// variable that moves it.
func TestPortInUseNamesTheVariable(t *testing.T) {
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	busy := held.Addr().(*net.TCPAddr).Port
	var cfg Config
	if err := config.Load(&cfg, config.WithLookup(config.MapLookup(map[string]string{
		"FRESHET_LOCAL_DIR":        t.TempDir(),
		"FRESHET_LOCAL_KAFKA_PORT": strconv.Itoa(busy),
		"FRESHET_LOCAL_SERVICES":   "none",
		"FRESHET_LOCAL_INSTALL":    "false",
	}))); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	err = Run(context.Background(), cfg, &out)
	var pe *PortsInUseError
	if !errors.As(err, &pe) || len(pe.Ports) == 0 || pe.Ports[len(pe.Ports)-1].Port != busy {
		t.Fatalf("Run with port %d taken: %v", busy, err)
	}
	if msg := err.Error(); !strings.Contains(msg, "FRESHET_LOCAL_KAFKA_PORT") || !strings.Contains(msg, strconv.Itoa(busy)) {
		t.Errorf("the error does not name the port and its variable: %s", msg)
	}
	if out.Len() != 0 {
		t.Errorf("something started before the check:\n%s", out.String())
	}
}
