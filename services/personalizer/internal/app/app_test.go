package app_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/freshet/freshet/pkg/events"
	"github.com/freshet/freshet/pkg/lifecycle"
	"github.com/freshet/freshet/pkg/testenv"
	"github.com/freshet/freshet/services/personalizer/internal/app"
	"github.com/freshet/freshet/services/personalizer/internal/ptest"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestMain(m *testing.M) {
	// The crash tests run the personalizer as a separate process: this
	// binary, in service mode.
	testenv.ServiceMain(m, func() { lifecycle.Main("personalizer", app.Main(nil, os.Stdout)) }, testenv.NeedKafka)
}

// startPersonalizer runs the personalizer as a separate process, with only
// the variables the local stack runner sets plus env, in dir ("" for the
// test's), and waits until it is ready.
func startPersonalizer(tb testing.TB, dir string, env []string) *testenv.Service {
	tb.Helper()
	return testenv.StartService(tb, testenv.ServiceOptions{Name: "personalizer", Dir: dir, Env: env})
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
	c := startPersonalizer(t, root, []string{
		"FRESHET_KAFKA_BROKERS=" + strings.Join(kt.Seeds, ","),
		"FRESHET_PIPELINE=pipelines/freshet.yaml",
		"FRESHET_POSTGRES_DSN=postgres://unused",
	})
	c.Stop(t) // SIGTERM: a clean exit, status 0
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

// crashEnv is the setting of the crash tests: the service's variables for
// the test's topics and group (without a transactional id), and 100 users
// interested in tag "t".
type crashEnv struct {
	kt     testenv.KafkaTest
	topics ptest.Topics
	group  string
	env    []string
	users  []string
	ids    []string // change event ids produced
	prod   *ptest.Producer
	adm    *kadm.Client
}

func newCrashEnv(t *testing.T) *crashEnv {
	kt := testenv.Kafka(t)
	_, pipelinePath := ptest.Pipeline(t, 4, 3)
	topics := ptest.Topics{Content: kt.Topic("content.changes"), Profiles: kt.Topic("user.profiles"), Deliveries: kt.Topic("content.deliveries"), Latency: kt.Topic("pipeline.latency")}
	c := &crashEnv{kt: kt, topics: topics, group: kt.Group("personalizer")}
	c.env = []string{
		"FRESHET_KAFKA_BROKERS=" + strings.Join(kt.Seeds, ","),
		"FRESHET_PIPELINE=" + pipelinePath,
		"FRESHET_PERSONALIZER_GROUP=" + c.group,
		"FRESHET_PERSONALIZER_CONTENT_TOPIC=" + topics.Content,
		"FRESHET_PERSONALIZER_PROFILES_TOPIC=" + topics.Profiles,
		"FRESHET_PERSONALIZER_DELIVERIES_TOPIC=" + topics.Deliveries,
		"FRESHET_PERSONALIZER_LATENCY_TOPIC=" + topics.Latency,
		"FRESHET_PERSONALIZER_MAX_CHANGES_PER_TRANSACTION=20",
		"FRESHET_PERSONALIZER_SESSION_TIMEOUT=6s", // the broker's minimum: the group waits this long for a killed instance
		"FRESHET_PERSONALIZER_TRANSACTION_TIMEOUT=5s",
	}
	c.prod = ptest.NewProducer(t, kt.Seeds, topics)
	cl, err := kgo.NewClient(kgo.SeedBrokers(kt.Seeds...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	c.adm = kadm.NewClient(cl)
	return c
}

// start starts an instance with transactional id txn.
func (c *crashEnv) start(t *testing.T, txn string) *testenv.Service {
	return startPersonalizer(t, "", append(append([]string{}, c.env...), "FRESHET_PERSONALIZER_TRANSACTIONAL_ID="+c.kt.Group(txn)))
}

// profiles produces the 100 users' profiles.
func (c *crashEnv) profiles(t *testing.T) {
	var ups []events.UserProfile
	for i := range 100 {
		u := fmt.Sprintf("user-%03d", i)
		c.users = append(c.users, u)
		ups = append(ups, events.UserProfile{UserID: u, Interests: []events.Interest{{Tag: "t", Weight: 1}}})
	}
	c.prod.Profiles(ups...)
}

// changes produces up to k more of the n changes that each reach the 100
// users, and reports whether all n were produced.
func (c *crashEnv) changes(k, n int) bool {
	var cs []events.ContentChange
	for ; k > 0 && len(c.ids) < n; k-- {
		id := fmt.Sprint(len(c.ids))
		cs = append(cs, events.ContentChange{Op: events.OpCreate, ContentID: id, Version: 1, Title: "t", Tags: []string{"t"}})
		c.ids = append(c.ids, events.ID("test-change", id, "1"))
	}
	if len(cs) > 0 {
		c.prod.Changes(cs...)
	}
	return len(c.ids) >= n
}

// killAtCommit makes the broker itself kill victim (SIGKILL) at the moment
// victim asks to commit a transaction that holds deliveries, once skip such
// commits went through: the EndTxn request is held, the process killed, and
// the request dropped with its connection. So the kill lands in the middle of
// a transaction every time: its deliveries are written and its progress
// staged, and nothing of it is committed. The returned channel gets the
// outcome of the kill once victim is dead.
func (c *crashEnv) killAtCommit(t *testing.T, victim *testenv.Service, txnID string, skip int) <-chan error {
	t.Helper()
	holdsDeliveries := testenv.ProducesTo(t, c.kt, c.topics.Deliveries)
	var (
		mu       sync.Mutex
		holds    bool // victim's open transaction holds deliveries
		done     = make(chan error, 1)
		finished bool
		cl       = c.kt.Cluster
	)
	cl.Control(func(r kmsg.Request) (kmsg.Response, error, bool) {
		mu.Lock()
		defer mu.Unlock()
		if finished {
			cl.DropControl()
			return nil, nil, false
		}
		switch req := r.(type) {
		case *kmsg.ProduceRequest: // observed only
			if id := req.TransactionID; id != nil && *id == txnID && holdsDeliveries(req) {
				holds = true
			}
		case *kmsg.EndTxnRequest:
			if req.TransactionalID != txnID || !req.Commit || !holds {
				break
			}
			holds = false
			if skip > 0 {
				skip--
				break
			}
			done <- victim.Kill()
			finished = true
			return nil, errors.New("test: the process that sent this was killed"), true // closes the connection; the control is dropped
		}
		return nil, nil, false // handled by the broker as usual
	})
	t.Cleanup(func() { // the broker is the package's: leave no control behind
		mu.Lock()
		finished = true
		mu.Unlock()
	})
	return done
}

// killMidTransaction produces changes, ten at a time, until the broker has
// killed victim at its third commit of deliveries (killAtCommit), and checks
// that victim's transaction was left open.
func (c *crashEnv) killMidTransaction(t *testing.T, victim *testenv.Service, txn string, n int) {
	t.Helper()
	killed := c.killAtCommit(t, victim, c.kt.Group(txn), 2)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var timeout <-chan time.Time // runs once every change is out
	landed := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
		if !openTransaction(t, c.adm, c.topics.Deliveries) {
			t.Fatal("no transaction open on the deliveries topic right after the kill at commit")
		}
	}
	for {
		select {
		case err := <-killed:
			landed(err)
			return
		case <-victim.Done(): // the kill, or a crash of its own
			select {
			case err := <-killed:
				landed(err)
				return
			case <-time.After(30 * time.Second):
				t.Fatalf("the personalizer (transactional id %s) exited by itself", txn)
			}
		case <-timeout:
			t.Fatalf("the personalizer (transactional id %s) committed no third transaction of deliveries within 90s of the last change", txn)
		case <-tick.C:
			if timeout == nil && c.changes(10, n) {
				timeout = time.After(90 * time.Second)
			}
		}
	}
}

// finish produces the rest of the n changes, waits until the group's
// progress covers them, and checks that every delivery arrived once.
func (c *crashEnv) finish(t *testing.T, n int, stop ...*testenv.Service) int {
	t.Helper()
	for !c.changes(20, n) { // the rest of the changes
	}
	ptest.WaitCaughtUp(t, c.kt.Seeds, c.group, c.topics, 4, 90*time.Second)
	for _, s := range stop {
		s.Stop(t)
	}
	ds := ptest.Deliveries(t, c.kt.Seeds, c.topics.Deliveries)
	ptest.ExactlyOnce(t, ds, c.ids, c.users)
	return len(ds)
}

// TestKill9MidTransactionThenRestartDeliversExactlyOnce kills the
// personalizer, a separate process, with SIGKILL while a transaction of it is
// open, restarts it (same transactional id), twice, and checks that a
// read_committed reader sees each delivery exactly once.
func TestKill9MidTransactionThenRestartDeliversExactlyOnce(t *testing.T) {
	ce := newCrashEnv(t)
	c := ce.start(t, "txn")
	ce.profiles(t)
	const n = 400
	for range 2 {
		ce.killMidTransaction(t, c, "txn", n) // its transaction stays open until the restart fences it
		c = ce.start(t, "txn")
	}
	total := ce.finish(t, n, c)
	t.Logf("%d deliveries, each exactly once, across 2 kill -9 in the middle of a transaction", total)
}

// TestKill9OneOfTwoInstances kills one of two instances mid-transaction and
// does not restart it: the other takes its partitions over once the group
// gives up on it, waits for its open transaction to be aborted by the broker
// (RequireStable), and delivers the rest; each delivery arrives once.
func TestKill9OneOfTwoInstances(t *testing.T) {
	ce := newCrashEnv(t)
	a := ce.start(t, "txn-a")
	ce.profiles(t)
	b := ce.start(t, "txn-b")
	const n = 300
	ce.killMidTransaction(t, a, "txn-a", n)
	total := ce.finish(t, n, b)
	t.Logf("%d deliveries, each exactly once, after one of two instances was killed", total)
}
