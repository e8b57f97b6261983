package app_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/freshet/freshet/pkg/events"
	"github.com/freshet/freshet/pkg/lifecycle"
	"github.com/freshet/freshet/pkg/testenv"
	"github.com/freshet/freshet/services/personalizer/internal/app"
	"github.com/freshet/freshet/services/personalizer/internal/ptest"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// childEnv makes the test binary run the personalizer instead of the tests:
// the kill -9 test starts it as a separate process.
const childEnv = "FRESHET_PERSONALIZER_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		lifecycle.Main("personalizer", app.Main(nil, os.Stdout))
		return
	}
	testenv.Main(m, testenv.NeedKafka)
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
	if err := os.WriteFile(bad, []byte("version: 1\npersonalization:\n  threshold: many\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := app.Main([]string{"check", bad}, &out)(context.Background())
	if err == nil || !strings.Contains(err.Error(), "bad.yaml:3") {
		t.Errorf("check of a bad file: %v", err)
	}
	if err := app.Main([]string{"frobnicate"}, &out)(context.Background()); err == nil {
		t.Error("an unknown command was accepted")
	}
}

// TestStartsWithTheRunnersVariables runs the personalizer as the local stack
// runner does: from the repository root, with only its variables set.
func TestStartsWithTheRunnersVariables(t *testing.T) {
	kt := testenv.Kafka(t)
	root, err := filepath.Abs(filepath.Join("..", "..", "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	c := startChildIn(t, root, []string{
		"FRESHET_KAFKA_BROKERS=" + strings.Join(kt.Seeds, ","),
		"FRESHET_PIPELINE=pipelines/freshet.yaml",
		"FRESHET_POSTGRES_DSN=postgres://unused",
	})
	c.stop(t) // SIGTERM: a clean exit, status 0
}

// child is the personalizer running as a separate process.
type child struct {
	cmd *exec.Cmd
	out *bytes.Buffer
	mu  *sync.Mutex
}

func freePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// startChild starts the personalizer with only the variables the local stack
// runner sets, plus test topic names, group and transactional id, and waits
// until /readyz answers 200.
func startChild(t testing.TB, env []string) *child {
	return startChildIn(t, "", env)
}

// startChildIn is startChild with the working directory dir ("" for the
// test's).
func startChildIn(t testing.TB, dir string, env []string) *child {
	t.Helper()
	admin := freePort(t)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), childEnv+"=1", "FRESHET_ADMIN_ADDR="+admin, "FRESHET_LOG_FORMAT=console"), env...)
	c := &child{cmd: cmd, out: &bytes.Buffer{}, mu: &sync.Mutex{}}
	cmd.Stdout = lockedWriter{c.mu, c.out}
	cmd.Stderr = lockedWriter{c.mu, c.out}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
		if t.Failed() {
			c.mu.Lock()
			t.Logf("personalizer output:\n%s", c.out.String())
			c.mu.Unlock()
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + admin + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return c
			}
		}
		if time.Now().After(deadline) {
			c.mu.Lock()
			defer c.mu.Unlock()
			t.Fatalf("personalizer not ready after 60s:\n%s", c.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (c *child) kill9(t *testing.T) {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = c.cmd.Wait()
}

func (c *child) stop(t testing.TB) {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Wait(); err != nil {
		t.Errorf("personalizer exited with %v", err)
	}
}

// openTransaction reports whether a partition of topic holds records of a
// transaction not yet ended (its end offset is past its last stable offset).
func openTransaction(t *testing.T, adm *kadm.Client, topic string) bool {
	t.Helper()
	ctx := context.Background()
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	stable, err := adm.ListCommittedOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	open := false
	ends.Each(func(o kadm.ListedOffset) {
		if s, ok := stable.Lookup(topic, o.Partition); ok && s.Offset < o.Offset {
			open = true
		}
	})
	return open
}

func TestKill9MidTransactionThenRestartDeliversExactlyOnce(t *testing.T) {
	kt := testenv.Kafka(t)
	_, pipelinePath := ptest.Pipeline(t, 4, 3)
	topics := ptest.Topics{Content: kt.Topic("content.changes"), Profiles: kt.Topic("user.profiles"), Deliveries: kt.Topic("content.deliveries"), Latency: kt.Topic("pipeline.latency")}
	group := kt.Group("personalizer")
	env := []string{
		"FRESHET_KAFKA_BROKERS=" + strings.Join(kt.Seeds, ","),
		"FRESHET_PIPELINE=" + pipelinePath,
		"FRESHET_PERSONALIZER_GROUP=" + group,
		"FRESHET_PERSONALIZER_TRANSACTIONAL_ID=" + kt.Group("txn"),
		"FRESHET_PERSONALIZER_CONTENT_TOPIC=" + topics.Content,
		"FRESHET_PERSONALIZER_PROFILES_TOPIC=" + topics.Profiles,
		"FRESHET_PERSONALIZER_DELIVERIES_TOPIC=" + topics.Deliveries,
		"FRESHET_PERSONALIZER_LATENCY_TOPIC=" + topics.Latency,
		"FRESHET_PERSONALIZER_MAX_CHANGES_PER_TRANSACTION=20",
		"FRESHET_PERSONALIZER_SESSION_TIMEOUT=6s", // the broker's minimum: the restarted instance waits this long for the killed one
	}
	c := startChild(t, env)
	prod := ptest.NewProducer(t, kt.Seeds, topics)
	var users []string
	var ups []events.UserProfile
	for i := range 100 {
		u := fmt.Sprintf("user-%03d", i)
		users = append(users, u)
		ups = append(ups, events.UserProfile{UserID: u, Interests: []events.Interest{{Tag: "t", Weight: 1}}})
	}
	prod.Profiles(ups...)

	cl, err := kgo.NewClient(kgo.SeedBrokers(kt.Seeds...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)

	// Produce changes that each reach the 100 users while the personalizer
	// runs; kill it with SIGKILL at a moment a transaction of it is open,
	// restart it, and repeat a few times.
	const n = 400
	var ids []string
	next := 0
	produce := func(k int) {
		var cs []events.ContentChange
		for ; k > 0 && next < n; k-- {
			cs = append(cs, events.ContentChange{Op: events.OpCreate, ContentID: fmt.Sprint(next), Version: 1, Title: "t", Tags: []string{"t"}})
			ids = append(ids, events.ID("test-change", fmt.Sprint(next), "1"))
			next++
		}
		if len(cs) > 0 {
			prod.Changes(cs...)
		}
	}
	kills := 0
	for round := 0; round < 2; round++ {
		killed := false
		for tries := 0; tries < 400 && !killed; tries++ {
			produce(10)
			if openTransaction(t, adm, topics.Deliveries) {
				c.kill9(t)
				killed = true
			}
		}
		if !killed {
			t.Fatalf("round %d: never saw an open transaction to kill", round)
		}
		// The dead process's transaction stays open until the restart
		// fences it; read_committed readers see none of it.
		if openTransaction(t, adm, topics.Deliveries) {
			kills++
		}
		c = startChild(t, env)
	}
	if kills == 0 {
		t.Fatal("no kill landed in the middle of a transaction")
	}
	for next < n {
		produce(20)
	}
	ptest.WaitCaughtUp(t, kt.Seeds, group, topics, 4, 90*time.Second)
	c.stop(t)

	ds := ptest.Deliveries(t, kt.Seeds, topics.Deliveries)
	seen := map[string]int{}
	for _, d := range ds {
		seen[d.ChangeEventID+"/"+d.UserID]++
	}
	missing, doubled := 0, 0
	for _, id := range ids {
		for _, u := range users {
			switch seen[id+"/"+u] {
			case 0:
				missing++
			case 1:
			default:
				doubled++
			}
		}
	}
	if missing > 0 || doubled > 0 || len(ds) != len(ids)*len(users) {
		t.Fatalf("%d deliveries after %d kills mid-transaction: %d missing, %d doubled (want %d, each once)",
			len(ds), kills, missing, doubled, len(ids)*len(users))
	}
	t.Logf("%d deliveries, each exactly once, across %d kill -9 in the middle of a transaction", len(ds), kills)
}
