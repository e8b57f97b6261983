package app_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/freshet/freshet/pkg/events"
	"github.com/freshet/freshet/pkg/lifecycle"
	"github.com/freshet/freshet/pkg/servers"
	"github.com/freshet/freshet/pkg/testenv"
	"github.com/freshet/freshet/services/metrics-sink/internal/app"
	"github.com/freshet/freshet/services/metrics-sink/internal/sinktest"
)

func TestMain(m *testing.M) {
	// The crash and outage tests run the sink as a separate process: this
	// binary, in service mode.
	testenv.ServiceMain(m, func() { lifecycle.Main("metrics-sink", app.Main(nil, os.Stdout)) }, testenv.NeedKafka, testenv.NeedClickHouse)
}

func TestCheck(t *testing.T) {
	var out bytes.Buffer
	repoPipeline := filepath.Join("..", "..", "..", "..", "pipelines", "freshet.yaml")
	if err := app.Main([]string{"check", repoPipeline}, &out)(context.Background()); err != nil {
		t.Fatalf("check of the repository's pipeline: %v", err)
	}
	if !strings.Contains(out.String(), "ok") {
		t.Errorf("check printed %q", out.String())
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("version: 1\ntopics:\n  rum.beacons: {partitions: many}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := app.Main([]string{"check", bad}, &out)(context.Background()); err == nil || !strings.Contains(err.Error(), "bad.yaml:3") {
		t.Errorf("check of a bad file: %v", err)
	}
	if err := app.Main([]string{"frobnicate"}, &out)(context.Background()); err == nil {
		t.Error("an unknown command was accepted")
	}
	if err := app.Main([]string{"query", "nosuch"}, &out)(context.Background()); err == nil || !strings.Contains(err.Error(), "freshness") {
		t.Errorf("an unknown query: %v", err)
	}
}

// sinkEnv is one test's topics, group, database and the service's
// variables for them.
type sinkEnv struct {
	kt     testenv.KafkaTest
	topics sinktest.Topics
	group  string
	db     testenv.ClickHouseDB
	env    []string
	prod   *sinktest.Producer
}

func newSinkEnv(t *testing.T, group string, extra ...string) *sinkEnv {
	t.Helper()
	kt := testenv.Kafka(t)
	e := &sinkEnv{kt: kt, topics: sinktest.NewTopics(kt), group: kt.Group(group), db: testenv.ClickHouse(t)}
	_, path := sinktest.Pipeline(t)
	e.env = append(sinktest.Env(kt.Seeds, e.topics, e.group, path, e.db.Addr(), e.db.Database), extra...)
	e.prod = sinktest.NewProducer(t, kt.Seeds, e.topics)
	return e
}

func start(t testing.TB, env []string) *testenv.Service {
	t.Helper()
	return testenv.StartService(t, testenv.ServiceOptions{Name: "metrics-sink", Env: env})
}

// metric sums the samples of a counter or gauge on the service's /metrics.
func metric(t testing.TB, svc *testenv.Service, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + svc.AdminAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sum := 0.0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == name || strings.HasPrefix(line, name+" ") || strings.HasPrefix(line, name+"{") {
			f := strings.Fields(line)
			v, err := strconv.ParseFloat(f[len(f)-1], 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			sum += v
		}
	}
	return sum
}

// TestStartsWithTheRunnersVariables runs the sink as the local stack runner
// does: from the repository root, with only its variables set.
func TestStartsWithTheRunnersVariables(t *testing.T) {
	kt := testenv.Kafka(t)
	db := testenv.ClickHouse(t)
	root, err := filepath.Abs(filepath.Join("..", "..", "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	c := testenv.StartService(t, testenv.ServiceOptions{Name: "metrics-sink", Dir: root, Env: []string{
		"FRESHET_KAFKA_BROKERS=" + strings.Join(kt.Seeds, ","),
		"FRESHET_PIPELINE=pipelines/freshet.yaml",
		"FRESHET_CLICKHOUSE_ADDR=" + db.Addr(),
		"FRESHET_CLICKHOUSE_DATABASE=" + db.Database,
		"FRESHET_SINK_GROUP=" + kt.Group("metrics-sink"),
	}})
	c.Stop(t) // SIGTERM: a clean exit, status 0
	conn := sinktest.Conn(t, db.Options())
	if n := sinktest.Count(t, conn, "SELECT toUInt64(max(version)) FROM schema_migrations"); n < 2 {
		t.Errorf("schema at version %d after a start", n)
	}
}

// The freshness query over a scripted run gives, for a known change, the
// latency each of its stages recorded and the browsers' lags; and every
// ready-made query runs through the command.
func TestQueryFreshnessOfAChange(t *testing.T) {
	e := newSinkEnv(t, "metrics-sink", "FRESHET_SINK_BATCH_INTERVAL=100ms")
	svc := start(t, e.env)
	e.prod.Events(sinktest.Script(10)...)
	conn := sinktest.Conn(t, e.db.Options())
	sinktest.WaitRows(t, conn, "rum_beacons", 10, 30*time.Second)
	sinktest.WaitRows(t, conn, "deliveries", 20, 30*time.Second)
	sinktest.WaitRows(t, conn, "edge_purges", 10, 30*time.Second)
	sinktest.WaitRows(t, conn, "latency_samples", 20, 30*time.Second)
	svc.Stop(t)

	t.Setenv("FRESHET_CLICKHOUSE_ADDR", e.db.Addr())
	t.Setenv("FRESHET_CLICKHOUSE_DATABASE", e.db.Database)
	var out bytes.Buffer
	since := time.Since(sinktest.Base) + time.Hour
	err := app.Main([]string{"query", "freshness", "-since", since.String(), "-event", sinktest.ChangeID(4)}, &out)(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("freshness of change 4:\n%s", out.String())
	// change 4: ack 14 ms, deliver 38 ms, purge 62 ms, browsers 120 and 140 ms
	want := map[string]string{
		"commit → cdc-ingestor commit_to_ack":     "1 1 14 14 14 14",
		"commit → personalizer commit_to_deliver": "1 1 38 38 38 38",
		"commit → purge varnish":                  "1 1 62 62 62 62",
		"commit → browser":                        "2 1 130 139 139.8 140",
	}
	got := map[string]string{}
	for _, line := range strings.Split(out.String(), "\n")[2:] {
		f := strings.Fields(line)
		if len(f) < 7 {
			continue
		}
		got[strings.Join(f[:len(f)-6], " ")] = strings.Join(f[len(f)-6:], " ")
	}
	if !maps.Equal(got, want) {
		t.Errorf("freshness of change 4:\n got %v\nwant %v", got, want)
	}
	for _, name := range []string{"purge_latency", "web_vitals", "sse_lag", "dlq", "freshness"} {
		out.Reset()
		if err := app.Main([]string{"query", name, "-since", since.String()}, &out)(context.Background()); err != nil {
			t.Errorf("query %s: %v", name, err)
		}
		if name != "dlq" && strings.Contains(out.String(), "(no rows)") {
			t.Errorf("query %s: no rows:\n%s", name, out.String())
		}
	}
}

// killAtCommit makes the broker kill victim (SIGKILL) when victim's group
// asks to commit offsets for the skip+1-th time: the insert of that batch
// went through (the sink commits only after it), its offsets are not
// committed. The channel gets the outcome of the kill.
func killAtCommit(t *testing.T, kt testenv.KafkaTest, victim *testenv.Service, group string, skip int) <-chan error {
	t.Helper()
	var (
		mu       sync.Mutex
		done     = make(chan error, 1)
		finished bool
		cl       = kt.Cluster
	)
	cl.Control(func(r kmsg.Request) (kmsg.Response, error, bool) {
		mu.Lock()
		defer mu.Unlock()
		if finished {
			cl.DropControl()
			return nil, nil, false
		}
		if req, ok := r.(*kmsg.OffsetCommitRequest); ok && req.Group == group {
			if skip > 0 {
				skip--
				return nil, nil, false
			}
			done <- victim.Kill()
			finished = true
			return nil, errors.New("test: the process that sent this was killed"), true
		}
		return nil, nil, false
	})
	t.Cleanup(func() {
		mu.Lock()
		finished = true
		mu.Unlock()
	})
	return done
}

// committed sums the group's committed offsets over its topics.
func committed(t *testing.T, seeds []string, group string) int64 {
	t.Helper()
	n, err := sinktest.Committed(seeds, group)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// rawRows counts the rows of the raw tables.
func rawRows(t *testing.T, e *sinkEnv) uint64 {
	conn := sinktest.Conn(t, e.db.Options())
	return sinktest.Count(t, conn, `SELECT (SELECT count() FROM rum_beacons) + (SELECT count() FROM latency_samples)
		+ (SELECT count() FROM edge_purges) + (SELECT count() FROM deliveries)`)
}

// kill -9 of the sink after an insert and before its offset commit: the
// rows of that batch are stored, their offsets not committed. The sink
// started again reads them again, finds them stored and leaves them out:
// every ready-made query and rollup answers as a run without the crash.
func TestKillBetweenInsertAndCommit(t *testing.T) {
	const n = 40 // changes: 240 records
	e := newSinkEnv(t, "victim", "FRESHET_SINK_BATCH_ROWS=50", "FRESHET_SINK_BATCH_INTERVAL=50ms",
		"FRESHET_SINK_SESSION_TIMEOUT=6s") // the broker's minimum: the group waits this long for the killed sink
	ref := testenv.ClickHouse(t) // the run without the crash, over the same topics
	refEnv := append(append([]string{}, e.env...), "FRESHET_CLICKHOUSE_DATABASE="+ref.Database, "FRESHET_SINK_GROUP="+e.kt.Group("reference"))

	victim := start(t, e.env)
	killed := killAtCommit(t, e.kt, victim, e.group, 2)
	e.prod.Events(sinktest.Script(n)...)
	select {
	case err := <-killed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the sink committed no third batch within 60s")
	}
	stored, done := rawRows(t, e), committed(t, e.kt.Seeds, e.group)
	if int64(stored) <= done {
		t.Fatalf("killed with %d rows stored and %d offsets committed: the kill missed the window between insert and commit", stored, done)
	}
	t.Logf("killed with %d rows stored, %d records committed", stored, done)

	again := start(t, e.env)
	reference := start(t, refEnv)
	conn, refConn := sinktest.Conn(t, e.db.Options()), sinktest.Conn(t, ref.Options())
	for table, rows := range map[string]uint64{"rum_beacons": n, "latency_samples": 2 * n, "edge_purges": n, "deliveries": 2 * n} {
		sinktest.WaitRows(t, conn, table, rows, 60*time.Second)
		sinktest.WaitRows(t, refConn, table, rows, 60*time.Second)
	}
	if skipped := metric(t, again, "freshet_sink_duplicates_skipped_total"); skipped == 0 {
		t.Error("the restarted sink skipped no stored row")
	}
	again.Stop(t)
	reference.Stop(t)
	got, want := sinktest.Answers(t, conn), sinktest.Answers(t, refConn)
	for name := range want {
		if got[name] != want[name] {
			t.Errorf("%s after the crash:\n%s\nwithout it:\n%s", name, got[name], want[name])
		}
	}
}

// ClickHouse stopped for a while mid-stream, and started again: the sink
// retries, stops fetching (it reads a bounded number of the records
// produced meanwhile), and once ClickHouse is back every row is there,
// exactly once.
func TestClickHouseOutage(t *testing.T) {
	dir := t.TempDir()
	ch, err := servers.StartClickHouse(context.Background(), servers.ClickHouseOptions{Dir: dir})
	if err != nil {
		t.Skipf("clickhouse-server: %v", err) // testenv already required it
	}
	t.Cleanup(func() { _ = ch.Stop(context.Background()) })
	const batch, fetchMax = 2000, 64 << 10
	e := newSinkEnv(t, "metrics-sink", fmt.Sprintf("FRESHET_SINK_BATCH_ROWS=%d", batch), fmt.Sprintf("FRESHET_SINK_FETCH_MAX_BYTES=%d", fetchMax),
		"FRESHET_SINK_MAX_BACKOFF=500ms", "FRESHET_CLICKHOUSE_ADDR="+ch.NativeAddr(), "FRESHET_CLICKHOUSE_DATABASE=outage",
		"FRESHET_CLICKHOUSE_READ_TIMEOUT=5s", "FRESHET_CLICKHOUSE_DIAL_TIMEOUT=1s")
	svc := start(t, e.env)
	conn := sinktest.Conn(t, ch.Options("outage"))

	produce := func(from, n int) int {
		size := 0
		var recs []*kgo.Record
		for i := from; i < from+n; i++ {
			s := events.LatencySample{EventID: events.ID("outage", strconv.Itoa(i)), SubjectEventID: strconv.Itoa(i), Service: "svc", Stage: "stage",
				Duration: time.Duration(i) * time.Microsecond, At: sinktest.Base.Add(time.Duration(i) * time.Millisecond)}
			b, err := e.prod.Codec().EncodeEvent(context.Background(), e.topics.Latency, s)
			if err != nil {
				t.Fatal(err)
			}
			size += len(b)
			recs = append(recs, &kgo.Record{Topic: e.topics.Latency, Key: []byte(strconv.Itoa(i)), Value: b})
		}
		e.prod.Records(recs...)
		return size / n
	}
	produce(0, 5000)
	sinktest.WaitRows(t, conn, "latency_samples", 5000, 60*time.Second)
	readBefore := metric(t, svc, "freshet_sink_records_total")

	if err := ch.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	const during = 60000
	recSize := produce(5000, during)
	deadline := time.Now().Add(60 * time.Second)
	for metric(t, svc, "freshet_sink_insert_errors_total") < 4 { // failed and retried for a while
		if time.Now().After(deadline) {
			t.Fatal("the sink reported no failed insert within 60s of the outage")
		}
		time.Sleep(100 * time.Millisecond)
	}
	read := metric(t, svc, "freshet_sink_records_total") - readBefore
	pending := metric(t, svc, "freshet_sink_pending_rows")
	mem, err := servers.ProcessMemory(svc.Pid())
	if err != nil {
		t.Fatal(err)
	}
	// At most the batch being retried and the batch in hand (each filled by
	// polls of at most what it lacks), plus a fetch buffered per broker.
	bound := float64(2*batch + 3*fetchMax/recSize)
	t.Logf("while ClickHouse was down: %.0f of %d records read (bound %.0f), %.0f rows pending, RSS %.0f MiB (peak %.0f MiB)",
		read, during, bound, pending, servers.MiB(mem.RSS), servers.MiB(mem.Peak))
	if read > bound || pending > batch {
		t.Errorf("the sink kept fetching while ClickHouse was down: read %.0f records (bound %.0f), %.0f rows pending", read, bound, pending)
	}

	ch2, err := servers.StartClickHouse(context.Background(), servers.ClickHouseOptions{Dir: dir, TCPPort: portOf(t, ch.NativeAddr()), HTTPPort: portOf(t, ch.HTTPAddr())})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ch2.Stop(context.Background()) })
	conn = sinktest.Conn(t, ch2.Options("outage"))
	sinktest.WaitRows(t, conn, "latency_samples", 5000+during, 120*time.Second)
	if n := sinktest.Count(t, conn, "SELECT uniqExact(event_id) FROM latency_samples"); n != 5000+during {
		t.Errorf("%d distinct events stored", n)
	}
	if n := sinktest.Count(t, conn, "SELECT countMerge(n) FROM latency_1m"); n != 5000+during {
		t.Errorf("the rollup counts %d samples", n)
	}
	svc.Stop(t)
}

func portOf(t *testing.T, addr string) int {
	t.Helper()
	i := strings.LastIndexByte(addr, ':')
	p, err := strconv.Atoi(addr[i+1:])
	if err != nil {
		t.Fatal(err)
	}
	return p
}
