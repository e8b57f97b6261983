package edgetest

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/freshet/freshet/pkg/kafka"
	"github.com/freshet/freshet/pkg/pipeline"
	"github.com/freshet/freshet/services/invalidator/internal/engine"
	"github.com/freshet/freshet/services/invalidator/internal/itest"
)

// expectPurged checks every page on edge i after a change that purged
// keys and urls: a page is a MISS exactly when the origin tags it with one
// of the keys (or it is one of the urls), and a HIT otherwise.
func (e *env) expectPurged(i int, ps pipeline.Purge, before map[string][]string) {
	e.t.Helper()
	for _, p := range pages {
		want := "HIT"
		if slices.Contains(ps.URLs, p) || slices.ContainsFunc(before[p], func(k string) bool { return slices.Contains(ps.Keys, k) }) {
			want = "MISS"
		}
		e.cached(i, p, want)
	}
}

// TestUpdatePurgesBothVarnishes: pages fetched through each Varnish are a
// HIT on the second read; after an UPDATE of a row, its page is a MISS
// with the new content on both caches, and the xkey purge removed exactly
// the objects tagged with the change's keys: the others are still HITs.
// Then a changed slug purges the old url too.
func TestUpdatePurgesBothVarnishes(t *testing.T) {
	e := newEnv(t)
	e.start(e.pipelineFile(""))
	for i := range e.edges {
		e.cached(i, "/t/a", "MISS")
		e.cached(i, "/t/a", "HIT")
	}
	e.warm()
	keys := e.pageKeys()

	c := e.update("/t/a", "/t/a", "update content set title = 'Alpha, updated' where url = '/t/a'")
	e.caughtUp()
	ps := e.p.Invalidation.PurgeSet(pipeline.ContentFields(&c))
	if !slices.Contains(ps.Keys, "tag:go") || slices.Contains(ps.Keys, "tag:rust") {
		t.Fatalf("purge set %q", ps.Keys)
	}
	for i := range e.edges {
		e.expectPurged(i, ps, keys) // /t/a among the MISSes
		if a := e.cached(i, "/t/a", "HIT"); !strings.Contains(a.body, "Alpha, updated") {
			t.Errorf("edge-%d serves the old page after the purge:\n%s", i, a.body)
		}
	}

	// A changed slug: the old url and the new one are purged on both.
	e.warm()
	c = e.update("/m/c", "/m/c2", "update content set url = '/m/c2', title = 'Gamma moved' where url = '/m/c'")
	e.caughtUp()
	ps = e.p.Invalidation.PurgeSet(pipeline.ContentFields(&c))
	if !slices.Equal(ps.URLs, []string{"/m/c", "/m/c2"}) {
		t.Fatalf("urls purged: %q", ps.URLs)
	}
	for i := range e.edges {
		if a := get(t, e.edges[i].URL()+"/m/c"); a.code != 404 {
			t.Errorf("edge-%d still serves the old url: %d %s", i, a.code, a.cache)
		}
		if a := e.cached(i, "/m/c2", "MISS"); !strings.Contains(a.body, "Gamma moved") {
			t.Errorf("edge-%d: new url %s", i, a.body)
		}
		e.cached(i, "/tag/rust", "MISS")
		e.cached(i, "/t/b", "HIT")
	}
}

// TestSoftPurgeServesStaleWhileRevalidating: with soft: true the change's
// page is marked stale: the next read gets the stale page (while Varnish
// refetches it), the ones after the new page.
func TestSoftPurgeServesStaleWhileRevalidating(t *testing.T) {
	e := newEnv(t)
	e.start(e.pipelineFile(", soft: true, purge: [keys]"))
	e.warm()
	e.update("/t/b", "/t/b", "update content set title = 'Beta, soft' where url = '/t/b'")
	e.caughtUp()
	for i := range e.edges {
		stale := e.cached(i, "/t/b", "HIT")
		if !strings.Contains(stale.body, "Beta") || strings.Contains(stale.body, "Beta, soft") {
			t.Fatalf("edge-%d: first read after a soft purge is not the stale page:\n%s", i, stale.body)
		}
		itest.Eventually(t, 30*time.Second, func() bool {
			return strings.Contains(get(t, e.edges[i].URL()+"/t/b").body, "Beta, soft")
		}, func() string { return "the refetched page never came on edge-" + string(rune('0'+i)) })
		e.cached(i, "/m/c", "HIT") // untouched
	}
}

// TestVarnishDownReceivesWhatItMissed: one Varnish is down (stopped, its
// cache kept) while changes flow: the other is purged meanwhile; when it
// comes back it receives every purge it missed, and only then are the
// offsets committed.
func TestVarnishDownReceivesWhatItMissed(t *testing.T) {
	e := newEnv(t)
	e.start(e.pipelineFile(", timeout: 300ms, retry: {attempts: 1000, initial_backoff: 20ms, max_backoff: 300ms}, breaker: {failures: 3, cooldown: 500ms}, dead_letter_after: 5m"))
	e.warm()
	e.pause(1, true)
	resumed := false
	defer func() {
		if !resumed {
			e.pause(1, false)
		}
	}()
	e.update("/t/a", "/t/a", "update content set title = 'Alpha while down' where url = '/t/a'")
	e.update("/m/c", "/m/c", "update content set title = 'Gamma while down' where url = '/m/c'")
	for _, want := range []struct{ path, title string }{{"/t/a", "Alpha while down"}, {"/m/c", "Gamma while down"}} {
		itest.Eventually(t, 30*time.Second, func() bool {
			a := get(t, e.edges[0].URL()+want.path)
			return strings.Contains(a.body, want.title)
		}, func() string { return "edge-0 was not purged while edge-1 was down: " + want.path })
	}
	if e.k.CaughtUp(e.group, e.topics.Content) {
		t.Fatal("offsets committed while edge-1 had not acked")
	}
	e.pause(1, false)
	resumed = true
	e.caughtUp()
	for _, want := range []struct{ path, title string }{{"/t/a", "Alpha while down"}, {"/m/c", "Gamma while down"}} {
		if a := e.cached(1, want.path, "MISS"); !strings.Contains(a.body, want.title) {
			t.Errorf("edge-1 after it came back: %s\n%s", want.path, a.body)
		}
	}
	e.cached(1, "/t/b", "MISS") // tagged tag:go, like /t/a
	if dlq := e.k.DLQ(e.topics.Content); len(dlq) != 0 {
		t.Errorf("%d DLQ records; nothing was past the DLQ time", len(dlq))
	}
}

// TestVarnishDownPastTheDLQTime: a Varnish down for longer than
// dead_letter_after: its purges go to the DLQ with the target and the
// reason, the other Varnish is purged, and the offsets move on.
func TestVarnishDownPastTheDLQTime(t *testing.T) {
	e := newEnv(t)
	e.start(e.pipelineFile(", timeout: 300ms, retry: {attempts: 1000, initial_backoff: 20ms, max_backoff: 200ms}, breaker: {failures: 3, cooldown: 300ms}, dead_letter_after: 1500ms"))
	e.warm()
	e.pause(1, true)
	defer e.pause(1, false)
	c := e.update("/t/a", "/t/a", "update content set title = 'Alpha, never reached' where url = '/t/a'")
	e.caughtUp()
	if a := e.cached(0, "/t/a", "MISS"); !strings.Contains(a.body, "Alpha, never reached") {
		t.Errorf("edge-0 not purged:\n%s", a.body)
	}
	dlq := e.k.DLQ(e.topics.Content)
	if len(dlq) != 1 {
		t.Fatalf("%d DLQ records, want 1", len(dlq))
	}
	r := dlq[0]
	reason := itest.Header(r, kafka.HeaderError)
	if itest.Header(r, engine.HeaderTarget) != "edge-1" || !strings.Contains(reason, "edge-1") || !strings.Contains(reason, "dead_letter_after") {
		t.Errorf("DLQ record: target %q, reason %q", itest.Header(r, engine.HeaderTarget), reason)
	}
	if !strings.Contains(itest.Header(r, engine.HeaderKeys), "content:"+c.ContentID) || itest.Header(r, engine.HeaderURLs) != "/t/a" {
		t.Errorf("DLQ record: keys %q, urls %q", itest.Header(r, engine.HeaderKeys), itest.Header(r, engine.HeaderURLs))
	}
}

// TestPrefixPurgeBans: a target that purges url prefixes only (template
// /section/{section}) bans the pages under the change's prefix on both
// caches (BAN with X-Ban-Url and X-Ban-Host), and nothing else.
func TestPrefixPurgeBans(t *testing.T) {
	e := newEnv(t)
	file := strings.Replace(e.pipelineFile(", purge: [prefixes]"), "  targets:\n", "  prefixes: [\"/section/{section}\"]\n  targets:\n", 1)
	e.start(file)
	e.warm()
	e.update("/t/a", "/t/a", "update content set title = 'Alpha, banned' where url = '/t/a'")
	e.caughtUp()
	for i := range e.edges {
		for _, p := range pages {
			want := "HIT"
			if p == "/section/tech" {
				want = "MISS"
			}
			e.cached(i, p, want)
		}
	}
}

// TestURLKeysPurgeURLs: with url_keys, urls are purged by the "url:" keys
// the reference VCL tags every object with: a changed slug purges the old
// url and the new one (in one request) on both caches, and nothing else
// (the target purges no other keys here).
func TestURLKeysPurgeURLs(t *testing.T) {
	e := newEnv(t)
	e.start(e.pipelineFile(", purge: [urls], url_keys: true"))
	e.warm()
	c := e.update("/m/c", "/m/c2", "update content set url = '/m/c2', title = 'Gamma moved' where url = '/m/c'")
	e.caughtUp()
	if ps := e.p.Invalidation.PurgeSet(pipeline.ContentFields(&c)); !slices.Equal(ps.URLs, []string{"/m/c", "/m/c2"}) {
		t.Fatalf("urls purged: %q", ps.URLs)
	}
	for i := range e.edges {
		if a := get(t, e.edges[i].URL()+"/m/c"); a.code != 404 {
			t.Errorf("edge-%d still serves the old url: %d %s", i, a.code, a.cache)
		}
		for _, p := range pages {
			if p != "/m/c" {
				e.cached(i, p, "HIT") // /m/c2 was never cached; the rest stay
			}
		}
	}
}
