package engine_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/freshet/freshet/pkg/config"
	"github.com/freshet/freshet/pkg/edgefake"
	"github.com/freshet/freshet/pkg/events"
	"github.com/freshet/freshet/pkg/kafka"
	"github.com/freshet/freshet/pkg/pipeline"
	"github.com/freshet/freshet/services/invalidator/internal/engine"
	"github.com/freshet/freshet/services/invalidator/internal/itest"
	"github.com/twmb/franz-go/pkg/kgo"
)

// providersFile is a pipeline with a Fastly and a Cloudflare target at the
// fakes' addresses: keys content:{id} and tag:{tags[*]}, urls {url}.
func providersFile(fastly, cf string, cfRate float64, cfBurst int) string {
	return fmt.Sprintf(`invalidation:
  keys: ["content:{id}", "tag:{tags[*]}"]
  urls: ["{url}"]
  targets:
    - name: fastly
      type: fastly
      address: %s
      service_id: svc1
      token_env: FASTLY_TOKEN
      base_url: https://www.example.com
      purge: [keys]
      soft: true
      coalesce: 20ms
      retry: {attempts: 6, initial_backoff: 10ms, max_backoff: 200ms}
      dead_letter_after: 30s
    - name: cf
      type: cloudflare
      address: %s
      zone_id: zone1
      token_env: CF_TOKEN
      base_url: https://www.example.com
      plan: pro
      rate: %g
      burst: %d
      coalesce: 20ms
      retry: {attempts: 6, initial_backoff: 10ms, max_backoff: 200ms}
      dead_letter_after: 30s
`, fastly, cf, cfRate, cfBurst)
}

// fakes starts a Fastly fake (service svc1) and a Cloudflare fake (zone
// zone1) accepting the tokens given, closed when the test ends.
func fakes(t *testing.T, fastlyToken, cfToken string, cfOpts edgefake.Options) (fastly, cf *edgefake.Server) {
	t.Helper()
	fastly = edgefake.NewFastly(edgefake.Options{Token: fastlyToken, ID: "svc1"})
	t.Cleanup(fastly.Close)
	cfOpts.Token, cfOpts.ID = cfToken, "zone1"
	cf = edgefake.NewCloudflare(cfOpts)
	t.Cleanup(cf.Close)
	return fastly, cf
}

func manyChanges(n, from int) []events.ContentChange {
	cs := make([]events.ContentChange, n)
	for i := range cs {
		id := fmt.Sprint(from + i)
		cs[i] = events.ContentChange{Op: events.OpUpdate, ContentID: id, Version: 1, URLPath: "/p/" + id, Tags: []string{"t" + fmt.Sprint(i%7)}}
	}
	return cs
}

// Batches stay within each provider's limits, every key and url reaches
// both, soft purge reaches Fastly, and the rate limit holds: the
// Cloudflare fake, enforcing the same bucket, never had to answer 429.
func TestProvidersLimitsAndRate(t *testing.T) {
	e := newEnv(t)
	fastly, cf := fakes(t, "f-secret", "c-secret", edgefake.Options{Rate: 20, Burst: 4})
	e.start(t, providersFile(fastly.URL(), cf.URL(), 20, 3), map[string]string{"FASTLY_TOKEN": "f-secret", "CF_TOKEN": "c-secret"})

	const n = 700
	e.k.Changes(e.topics.Content, manyChanges(n, 0)...)
	e.caughtUp(t)

	for _, s := range []*edgefake.Server{fastly, cf} {
		if v := s.Violations(); len(v) > 0 {
			t.Errorf("limits broken: %q", v)
		}
	}
	for i := range n {
		if fastly.Purged(fmt.Sprint("content:", i)) == 0 || cf.Purged(fmt.Sprint("content:", i)) == 0 {
			t.Fatalf("content:%d not purged on both", i)
		}
		if cf.Purged(fmt.Sprint("https://www.example.com/p/", i)) == 0 {
			t.Fatalf("url /p/%d not purged on cloudflare", i)
		}
	}
	maxF, maxC := 0, 0
	for _, p := range fastly.Purges() {
		maxF = max(maxF, len(p.Keys))
		if !p.Soft {
			t.Errorf("fastly purge without Fastly-Soft-Purge: %d keys", len(p.Keys))
		}
	}
	for _, p := range cf.Purges() {
		maxC = max(maxC, len(p.Keys)+len(p.URLs))
	}
	if maxF > edgefake.FastlyMaxKeys || maxC > edgefake.CloudflareMaxPerRequest || maxF < 100 {
		t.Errorf("largest batches: fastly %d keys, cloudflare %d items (coalescing should fill them)", maxF, maxC)
	}
	if th := cf.Throttled(); th > 0 {
		t.Errorf("cloudflare answered 429 %d times: the invalidator's bucket let too much through", th)
	}
	t.Logf("%d changes: fastly %d requests (largest %d keys), cloudflare %d requests (largest %d items)", n, fastly.Requests(), maxF, cf.Requests(), maxC)
}

// A 429 with Retry-After is retried after it, and the purge lands.
func TestRetryAfterIsHonoured(t *testing.T) {
	e := newEnv(t)
	fastly, cf := fakes(t, "f", "c", edgefake.Options{})
	fastly.FailNext(2, http.StatusTooManyRequests, time.Second)
	cf.FailNext(1, http.StatusTooManyRequests, time.Second)
	e.start(t, providersFile(fastly.URL(), cf.URL(), 0, 0), map[string]string{"FASTLY_TOKEN": "f", "CF_TOKEN": "c"})
	e.k.Changes(e.topics.Content, manyChanges(1, 42)...)
	e.caughtUp(t)
	if fastly.Throttled() != 2 || fastly.Purged("content:42") != 1 || cf.Throttled() != 1 || cf.Purged("content:42") != 1 {
		t.Fatalf("fastly: %d throttled, %d purges; cloudflare: %d throttled, %d purges", fastly.Throttled(), fastly.Purged("content:42"), cf.Throttled(), cf.Purged("content:42"))
	}
	var ps []edgefake.Purge = fastly.Purges()
	if len(ps) != 1 {
		t.Fatalf("fastly purges: %+v", ps)
	}
	audits := e.k.Audits(e.topics.Purges)
	found := false
	for _, a := range audits {
		if a.Target == "fastly" {
			found = true
			if a.Attempts != 3 || a.Outcome != events.OutcomeAcked || a.FinishedAt.Sub(a.StartedAt) < 2*time.Second {
				t.Errorf("fastly audit: attempts %d, outcome %s, took %s (two Retry-After: 1)", a.Attempts, a.Outcome, a.FinishedAt.Sub(a.StartedAt))
			}
		}
	}
	if !found {
		t.Errorf("no fastly audit among %d", len(audits))
	}
	if s := e.k.Samples(e.topics.Latency); len(s) != 1 || s[0].Stage != engine.Stage {
		t.Errorf("latency samples: %+v", s)
	}
}

// A refused token fails at once with a clear error, and the change goes to
// the DLQ with the target and the reason; the other target is purged and
// the stream goes on.
func TestBadTokenGoesToTheDLQ(t *testing.T) {
	e := newEnv(t)
	fastly, cf := fakes(t, "f", "right", edgefake.Options{})
	e.start(t, providersFile(fastly.URL(), cf.URL(), 0, 0), map[string]string{"FASTLY_TOKEN": "f", "CF_TOKEN": "wrong-token-value"})
	e.k.Changes(e.topics.Content, manyChanges(3, 0)...)
	e.caughtUp(t)
	dlq := e.k.DLQ(e.topics.Content)
	if len(dlq) != 3 {
		t.Fatalf("%d DLQ records, want 3 (one per change)", len(dlq))
	}
	for _, r := range dlq {
		reason := itest.Header(r, kafka.HeaderError)
		if itest.Header(r, engine.HeaderTarget) != "cf" || !strings.Contains(reason, "CF_TOKEN") || !strings.Contains(reason, "refused") || strings.Contains(reason, "wrong-token-value") {
			t.Errorf("DLQ record: target %q, reason %q", itest.Header(r, engine.HeaderTarget), reason)
		}
		if !strings.HasPrefix(itest.Header(r, engine.HeaderKeys), "content:") {
			t.Errorf("DLQ record keys: %q", itest.Header(r, engine.HeaderKeys))
		}
	}
	if cf.Refused() != 2 || cf.Requests() != 2 {
		t.Errorf("cloudflare got %d requests, refused %d; want 2 (tags, files of one batch), not retried", cf.Requests(), cf.Refused())
	}
	if fastly.Purged("content:2") != 1 {
		t.Error("fastly was not purged")
	}
	var failed int
	for _, a := range e.k.Audits(e.topics.Purges) {
		if a.Target == "cf" && a.Outcome == events.OutcomeFailed && a.Error != "" {
			failed++
		}
	}
	if failed == 0 {
		t.Error("no failed audit for cf")
	}
}

// A record that does not decode goes to the DLQ and the stream continues.
func TestMalformedRecordToTheDLQ(t *testing.T) {
	e := newEnv(t)
	fastly, cf := fakes(t, "f", "c", edgefake.Options{})
	e.start(t, providersFile(fastly.URL(), cf.URL(), 0, 0), map[string]string{"FASTLY_TOKEN": "f", "CF_TOKEN": "c"})
	e.k.Changes(e.topics.Content, manyChanges(1, 1)...)
	e.k.Produce(&kgo.Record{Topic: e.topics.Content, Key: []byte("1"), Value: []byte("not avro")})
	e.k.Changes(e.topics.Content, manyChanges(1, 2)...)
	e.caughtUp(t)
	dlq := e.k.DLQ(e.topics.Content)
	if len(dlq) != 1 || string(dlq[0].Value) != "not avro" || itest.Header(dlq[0], kafka.HeaderComponent) != "invalidator/decode" {
		t.Fatalf("DLQ: %v", dlq)
	}
	if fastly.Purged("content:1") != 1 || fastly.Purged("content:2") != 1 {
		t.Error("the changes around the malformed record were not purged")
	}
}

// Two instances, a rebalance mid-stream (the second joins, then the first
// leaves): every change is purged, and the group commits to the end.
func TestRebalanceMidStreamLosesNothing(t *testing.T) {
	e := newEnv(t)
	fastly, cf := fakes(t, "f", "c", edgefake.Options{})
	file := "topics: {content.changes: {partitions: 4}}\n" + providersFile(fastly.URL(), cf.URL(), 0, 0)
	vars := map[string]string{"FASTLY_TOKEN": "f", "CF_TOKEN": "c"}
	first := e.startCancelable(t, file, vars)
	const n = 400
	for i := 0; i < n; i += 20 {
		e.k.Changes(e.topics.Content, manyChanges(20, i)...)
		switch i {
		case 100:
			e.start(t, file, vars) // joins: partitions move
		case 240:
			first() // leaves: its partitions move to the second
		}
		time.Sleep(10 * time.Millisecond)
	}
	e.caughtUp(t)
	for i := range n {
		if fastly.Purged(fmt.Sprint("content:", i)) == 0 || cf.Purged(fmt.Sprint("content:", i)) == 0 {
			t.Fatalf("content:%d lost in the rebalance", i)
		}
	}
}

// A target that is down never holds up the others: with at most 40
// changes in flight, Fastly failing every request keeps at most 20 of them
// (half) and dead-letters the older ones unsent, while Cloudflare gets all
// 300 changes.
func TestFailingTargetNeverHoldsUpTheOthers(t *testing.T) {
	e := newEnv(t)
	fastly, cf := fakes(t, "f", "c", edgefake.Options{})
	fastly.FailNext(1_000_000, http.StatusServiceUnavailable, 0)
	vars := map[string]string{"FASTLY_TOKEN": "f", "CF_TOKEN": "c"}
	file := strings.Replace(providersFile(fastly.URL(), cf.URL(), 0, 0), "attempts: 6", "attempts: 100000", 1)
	file = strings.Replace(file, "      dead_letter_after: 30s\n", "      dead_letter_after: 30s\n      breaker: {failures: 3, cooldown: 500ms}\n", 1) // fastly's
	p, err := pipeline.ParseEnv("test.yaml", []byte(file), config.MapLookup(vars))
	if err != nil {
		t.Fatal(err)
	}
	cfg := e.config(p, vars)
	cfg.MaxInFlight = 40
	itest.StartEngine(t, cfg)
	// Waves of 30: each must reach cloudflare before the next is produced,
	// while fastly fails every request. Past the first wave, consuming
	// goes on only because fastly's backlog is shed.
	const n, wave = 300, 30
	for i := 0; i < n; i += wave {
		e.k.Changes(e.topics.Content, manyChanges(wave, i)...)
		missing := func() int {
			m := 0
			for j := i; j < i+wave; j++ {
				if cf.Purged(fmt.Sprint("content:", j)) == 0 {
					m++
				}
			}
			return m
		}
		itest.Eventually(t, 30*time.Second, func() bool { return missing() == 0 }, func() string {
			return fmt.Sprintf("cloudflare was held up by the failing fastly: %d changes of the wave from %d not purged", missing(), i)
		})
	}
	var shed int
	itest.Eventually(t, 30*time.Second, func() bool {
		shed = 0
		for _, r := range e.k.DLQ(e.topics.Content) {
			if itest.Header(r, engine.HeaderTarget) == "fastly" && strings.Contains(itest.Header(r, kafka.HeaderError), "failing, with more than 20 changes waiting") {
				shed++
			}
		}
		return shed >= n-60
	}, func() string {
		return fmt.Sprintf("%d changes dead-lettered for fastly's backlog, want at least %d", shed, n-60)
	})
	if fastly.Purged("content:0") != 0 {
		t.Error("the failing fastly acked a purge")
	}
}
