package app_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/freshet/freshet/pkg/edgefake"
	"github.com/freshet/freshet/pkg/events"
	"github.com/freshet/freshet/pkg/lifecycle"
	"github.com/freshet/freshet/pkg/testenv"
	"github.com/freshet/freshet/services/invalidator/internal/app"
	"github.com/freshet/freshet/services/invalidator/internal/itest"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestMain(m *testing.M) {
	// The crash test runs the invalidator as a separate process: this
	// binary, in service mode.
	testenv.ServiceMain(m, func() { lifecycle.Main("invalidator", app.Main(nil, os.Stdout)) }, testenv.NeedKafka)
}

func TestCheck(t *testing.T) {
	var out bytes.Buffer
	repoPipeline := filepath.Join("..", "..", "..", "..", "pipelines", "freshet.yaml")
	if err := app.Main([]string{"check", repoPipeline}, &out)(context.Background()); err != nil {
		t.Fatalf("check of the repository's pipeline: %v", err)
	}
	if !strings.Contains(out.String(), "varnish (varnish)") {
		t.Errorf("check printed %q", out.String())
	}
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("invalidation:\n  targets:\n    - {name: v, type: varnish, address: \"http://v:1\", colaesce: 1s}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := app.Main([]string{"check", bad}, &out)(context.Background())
	if err == nil || !strings.Contains(err.Error(), "bad.yaml:3") || !strings.Contains(err.Error(), `did you mean "coalesce"`) {
		t.Errorf("check of a bad file: %v", err)
	}
	// The invalidator's check also wants the targets' tokens.
	tok := filepath.Join(dir, "tok.yaml")
	if err := os.WriteFile(tok, []byte("invalidation:\n  targets:\n    - {name: f, type: fastly, service_id: s, token_env: FRESHET_TEST_UNSET_FASTLY_TOKEN, purge: [keys]}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := app.Main([]string{"check", tok}, &out)(context.Background()); err == nil || !strings.Contains(err.Error(), "FRESHET_TEST_UNSET_FASTLY_TOKEN (token_env) is not set") {
		t.Errorf("check without the token: %v", err)
	}
	if err := app.Main([]string{"frobnicate"}, &out)(context.Background()); err == nil {
		t.Error("an unknown command was accepted")
	}
}

// TestStartsWithTheRunnersVariables runs the invalidator as the local stack
// runner does: from the repository root, with only its variables set.
func TestStartsWithTheRunnersVariables(t *testing.T) {
	kt := testenv.Kafka(t)
	root, err := filepath.Abs(filepath.Join("..", "..", "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	c := testenv.StartService(t, testenv.ServiceOptions{Name: "invalidator", Dir: root, Env: []string{
		"FRESHET_KAFKA_BROKERS=" + strings.Join(kt.Seeds, ","),
		"FRESHET_PIPELINE=pipelines/freshet.yaml",
		"FRESHET_VARNISH_URL=http://127.0.0.1:1",
		"FRESHET_INVALIDATOR_GROUP=" + kt.Group("invalidator"),
		"FRESHET_INVALIDATOR_CONTENT_TOPIC=" + kt.Topic("content.changes"),
		"FRESHET_INVALIDATOR_PURGES_TOPIC=" + kt.Topic("edge.purges"),
		"FRESHET_INVALIDATOR_LATENCY_TOPIC=" + kt.Topic("pipeline.latency"),
	}})
	// The admin listener serves the per-target metrics of the pipeline's
	// varnish target.
	resp, err := http.Get("http://" + c.AdminAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, m := range []string{`freshet_invalidator_breaker_state{target="varnish"} 0`, `freshet_invalidator_queue_depth{target="varnish"} 0`, "freshet_invalidator_in_flight_changes 0"} {
		if !strings.Contains(string(body), m) {
			t.Errorf("/metrics lacks %s", m)
		}
	}
	c.Stop(t) // SIGTERM: a clean exit, status 0
}

// killAtCommit makes the broker kill victim (SIGKILL) when it asks to
// commit offsets past zero for group: at that moment its purges were acked
// (offsets commit only after every target acked) and the commit has not
// happened. The request is held, the process killed, the request dropped
// with its connection. The returned channel gets the outcome of the kill.
func killAtCommit(t *testing.T, kt testenv.KafkaTest, victim *testenv.Service, group string) <-chan error {
	t.Helper()
	var (
		mu       sync.Mutex
		finished bool
		done     = make(chan error, 1)
		cl       = kt.Cluster
	)
	cl.ControlKey(int16(kmsg.OffsetCommit), func(r kmsg.Request) (kmsg.Response, error, bool) {
		mu.Lock()
		defer mu.Unlock()
		if finished {
			cl.DropControl()
			return nil, nil, false
		}
		req := r.(*kmsg.OffsetCommitRequest)
		if req.Group != group {
			return nil, nil, false
		}
		moved := false
		for _, tp := range req.Topics {
			for _, p := range tp.Partitions {
				moved = moved || p.Offset > 0
			}
		}
		if !moved {
			return nil, nil, false
		}
		done <- victim.Kill()
		finished = true
		return nil, errors.New("test: the process that sent this was killed"), true
	})
	t.Cleanup(func() {
		mu.Lock()
		finished = true
		mu.Unlock()
	})
	return done
}

// TestKillBetweenPurgeAndCommit: kill -9 of the invalidator after its
// purges were acked and before their offsets were committed. The restarted
// invalidator purges them again: repeated, never lost.
func TestKillBetweenPurgeAndCommit(t *testing.T) {
	kt := testenv.Kafka(t)
	k := itest.NewKafka(t, kt)
	topics := itest.NewTopics(kt)
	group := kt.Group("invalidator")
	fastly := edgefake.NewFastly(edgefake.Options{Token: "kill-test-token", ID: "svc"})
	defer fastly.Close()
	dir := t.TempDir()
	pipelinePath := filepath.Join(dir, "pipeline.yaml")
	file := fmt.Sprintf(`invalidation:
  keys: ["content:{id}"]
  urls: []
  targets:
    - {name: fastly, type: fastly, address: %q, service_id: svc, token_env: KILL_TEST_FASTLY_TOKEN, coalesce: 5ms}
`, fastly.URL())
	if err := os.WriteFile(pipelinePath, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{
		"FRESHET_KAFKA_BROKERS=" + strings.Join(kt.Seeds, ","),
		"FRESHET_PIPELINE=" + pipelinePath,
		"KILL_TEST_FASTLY_TOKEN=kill-test-token",
		"FRESHET_INVALIDATOR_GROUP=" + group,
		"FRESHET_INVALIDATOR_CONTENT_TOPIC=" + topics.Content,
		"FRESHET_INVALIDATOR_PURGES_TOPIC=" + topics.Purges,
		"FRESHET_INVALIDATOR_LATENCY_TOPIC=" + topics.Latency,
		"FRESHET_INVALIDATOR_COMMIT_INTERVAL=20ms",
		"FRESHET_INVALIDATOR_SESSION_TIMEOUT=6s", // the broker's minimum: the group waits this long for the killed instance
	}
	victim := testenv.StartService(t, testenv.ServiceOptions{Name: "invalidator", Env: env})
	killed := killAtCommit(t, kt, victim, group)

	const n = 50
	cs := make([]events.ContentChange, n)
	for i := range cs {
		cs[i] = events.ContentChange{Op: events.OpUpdate, ContentID: fmt.Sprint(i), Version: 1}
	}
	k.Changes(topics.Content, cs...)
	select {
	case err := <-killed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the invalidator never asked to commit")
	}
	// Killed at its first commit: what it purged is acked and not committed.
	before := map[int]int{}
	purgedBefore := 0
	for i := range n {
		before[i] = fastly.Purged(fmt.Sprint("content:", i))
		if before[i] > 0 {
			purgedBefore++
		}
	}
	if purgedBefore == 0 {
		t.Fatal("killed at commit, yet nothing was purged: offsets would have moved past unpurged changes")
	}
	if k.CaughtUp(group, topics.Content) {
		t.Fatal("the offsets were committed despite the kill")
	}
	again := testenv.StartService(t, testenv.ServiceOptions{Name: "invalidator", Env: env})
	itest.Eventually(t, 60*time.Second, func() bool { return k.CaughtUp(group, topics.Content) }, func() string { return "the restarted invalidator did not commit to the end" })
	again.Stop(t)
	repeated := 0
	for i := range n {
		after := fastly.Purged(fmt.Sprint("content:", i))
		if after == 0 {
			t.Errorf("content:%d was never purged: lost", i)
		}
		if before[i] > 0 && after > before[i] {
			repeated++
		}
	}
	if repeated != purgedBefore {
		t.Errorf("%d changes purged before the kill, %d purged again after it; want every one repeated", purgedBefore, repeated)
	}
	t.Logf("%d of %d changes purged before the kill at commit; all purged again after the restart", purgedBefore, n)
}
