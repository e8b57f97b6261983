package app_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/freshet/freshet/pkg/edgefake"
	"github.com/freshet/freshet/pkg/events"
	"github.com/freshet/freshet/pkg/testenv"
	"github.com/freshet/freshet/services/invalidator/internal/itest"
)

// Tokens and secret headers never reach the logs: the invalidator, a
// separate process logging at debug level, purges a Fastly stand-in that
// refuses its token (errors logged, a DLQ record) and a webhook with a
// token and a secret header; its whole output then holds none of them.
func TestTokensNeverLogged(t *testing.T) {
	const (
		fastlyToken = "fastly-token-never-logged-0123"
		hookToken   = "hook-token-never-logged-4567"
		hookKey     = "hook-header-never-logged-89ab"
	)
	kt := testenv.Kafka(t)
	k := itest.NewKafka(t, kt)
	topics := itest.NewTopics(kt)
	group := kt.Group("invalidator")
	fastly := edgefake.NewFastly(edgefake.Options{Token: "another-token", ID: "svc"})
	defer fastly.Close()
	hook := edgefake.NewCloudflare(edgefake.Options{}) // any endpoint that answers 200 to a POST with a JSON body
	defer hook.Close()
	dir := t.TempDir()
	path := filepath.Join(dir, "pipeline.yaml")
	file := fmt.Sprintf(`invalidation:
  keys: ["content:{id}"]
  urls: []
  targets:
    - {name: fastly, type: fastly, address: %q, service_id: svc, token_env: SECRET_TEST_FASTLY, coalesce: 5ms}
    - name: hook
      type: http
      address: %q
      token_env: SECRET_TEST_HOOK
      header_env: {X-Api-Key: SECRET_TEST_HOOK_KEY}
      body: '{"tags": "@keys"}'
      coalesce: 5ms
`, fastly.URL(), hook.URL()+"/zones/z/purge_cache")
	if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	svc := testenv.StartService(t, testenv.ServiceOptions{Name: "invalidator", Env: []string{
		"FRESHET_KAFKA_BROKERS=" + strings.Join(kt.Seeds, ","),
		"FRESHET_PIPELINE=" + path,
		"FRESHET_LOG_LEVEL=debug",
		"SECRET_TEST_FASTLY=" + fastlyToken,
		"SECRET_TEST_HOOK=" + hookToken,
		"SECRET_TEST_HOOK_KEY=" + hookKey,
		"FRESHET_INVALIDATOR_GROUP=" + group,
		"FRESHET_INVALIDATOR_CONTENT_TOPIC=" + topics.Content,
		"FRESHET_INVALIDATOR_PURGES_TOPIC=" + topics.Purges,
		"FRESHET_INVALIDATOR_LATENCY_TOPIC=" + topics.Latency,
	}})
	k.Changes(topics.Content, events.ContentChange{Op: events.OpUpdate, ContentID: "1", Version: 1})
	itest.Eventually(t, 60*time.Second, func() bool { return k.CaughtUp(group, topics.Content) }, func() string { return "not caught up" })
	svc.Stop(t)
	if hook.Purged("content:1") != 1 || fastly.Refused() == 0 || len(k.DLQ(topics.Content)) != 1 {
		t.Fatalf("hook purges %d, fastly refused %d, DLQ %d", hook.Purged("content:1"), fastly.Refused(), len(k.DLQ(topics.Content)))
	}
	// The whole log: StartService writes it to <a TempDir of the test's>/invalidator.log
	// (Output has only its tail).
	logs, err := filepath.Glob(filepath.Join(filepath.Dir(dir), "*", "invalidator.log"))
	if err != nil || len(logs) != 1 {
		t.Fatalf("the service's log: %v %v", logs, err)
	}
	whole, err := os.ReadFile(logs[0])
	if err != nil {
		t.Fatal(err)
	}
	out := string(whole)
	if !strings.Contains(out, "SECRET_TEST_FASTLY") {
		t.Errorf("the refused token's error is not in the output (is the output whole?):\n%s", out)
	}
	for _, secret := range []string{fastlyToken, hookToken, hookKey} {
		if strings.Contains(out, secret) {
			t.Errorf("%q is in the output", secret)
		}
	}
	for _, r := range k.DLQ(topics.Content) {
		for _, h := range r.Headers {
			if strings.Contains(string(h.Value), fastlyToken) {
				t.Errorf("the token is in DLQ header %s", h.Key)
			}
		}
	}
}
