package origin_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/freshet/freshet/pkg/events"
	"github.com/freshet/freshet/pkg/origin"
	"github.com/freshet/freshet/pkg/pipeline"
)

// jsonPage is the JSON of a page.
type jsonPage struct {
	Kind  string        `json:"kind"`
	Name  string        `json:"name"`
	Item  *origin.Item  `json:"item"`
	Items []origin.Item `json:"items"`
	Keys  []string      `json:"keys"`
}

func decode(t *testing.T, a answer) jsonPage {
	t.Helper()
	var pg jsonPage
	if err := json.Unmarshal([]byte(a.body), &pg); err != nil {
		t.Fatalf("page JSON: %v\n%s", err, a.body)
	}
	return pg
}

const (
	hello   = "/tech/hello-freshet"       // content 1: tags freshet, streaming; section tech; author ada
	logical = "/tech/logical-replication" // content 2: tags postgres, cdc; section tech; author grace
	launch  = "/news/launch-day"          // content 3: tag launch; section news; author ada
)

// TestPageMissThenHit: a page through Varnish is fetched once, then served
// from the cache; the surrogate keys reach Varnish but not the client, and
// Cache-Control is the configured one.
func TestPageMissThenHit(t *testing.T) {
	e := newEnv(t, origin.Options{SMaxAge: 2 * time.Minute, StaleWhileRevalidate: 15 * time.Second}, true)
	a := e.cached(hello, "MISS")
	if !strings.Contains(a.body, "<h1>Hello, Freshet</h1>") {
		t.Errorf("page body lacks the title:\n%s", a.body)
	}
	if got, want := a.h.Get("Cache-Control"), "public, max-age=0, s-maxage=120, stale-while-revalidate=15"; got != want {
		t.Errorf("Cache-Control %q; want %q", got, want)
	}
	if a.h.Get("Xkey") != "" || a.h.Get("Surrogate-Key") != "" || a.h.Get("X-Url") != "" {
		t.Errorf("Varnish delivered its internal headers: %v", a.h)
	}
	if ct := a.h.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	b := e.cached(hello, "HIT")
	if b.body != a.body {
		t.Error("the hit differs from the miss")
	}
	// Straight from the origin, the keys are on the response.
	d := e.do(http.MethodGet, e.origin+hello)
	want := "content:1 tag:freshet tag:streaming section:tech author:ada"
	if d.h.Get("Xkey") != want || d.h.Get("Surrogate-Key") != want {
		t.Errorf("xkey %q, Surrogate-Key %q; want %q", d.h.Get("Xkey"), d.h.Get("Surrogate-Key"), want)
	}
	if d.h.Get("Vary") != "Accept" {
		t.Errorf("Vary %q; want Accept", d.h.Get("Vary"))
	}
}

// TestCacheControlDefaults: the zero Options give s-maxage 10m and
// stale-while-revalidate 30s; negative values turn them off.
func TestCacheControlDefaults(t *testing.T) {
	e := newEnv(t, origin.Options{}, false)
	if got, want := e.do(http.MethodGet, e.origin+hello).h.Get("Cache-Control"), "public, max-age=0, s-maxage=600, stale-while-revalidate=30"; got != want {
		t.Errorf("default Cache-Control %q; want %q", got, want)
	}
	e = newEnv(t, origin.Options{SMaxAge: -1, StaleWhileRevalidate: -1, MaxAge: 5 * time.Second}, false)
	if got, want := e.do(http.MethodGet, e.origin+hello).h.Get("Cache-Control"), "public, max-age=5, s-maxage=0"; got != want {
		t.Errorf("Cache-Control %q; want %q", got, want)
	}
}

// TestJSONAndHTML: Accept picks the representation, each has its own
// strong ETag, and Varnish keeps one variant of each.
func TestJSONAndHTML(t *testing.T) {
	e := newEnv(t, origin.Options{}, true)
	j := e.cached(hello, "MISS", "Accept", "application/json")
	if ct := j.h.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q; want application/json", ct)
	}
	pg := decode(t, j)
	if pg.Kind != "content" || pg.Item == nil || pg.Item.Title != "Hello, Freshet" || pg.Item.ID != "1" ||
		!slices.Equal(pg.Item.Tags, []string{"freshet", "streaming"}) || pg.Item.Attributes["author"] != "ada" || pg.Item.Version != "1" {
		t.Errorf("JSON page: %+v", pg.Item)
	}
	// Values are Postgres's text output, as pgoutput sends them to the
	// cdc-ingestor: a boolean is f, not false.
	if b := pg.Item.Attributes["breaking"]; b != "f" {
		t.Errorf("attributes.breaking = %q; want f, as in events", b)
	}
	h := e.cached(hello, "MISS", "Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
	if !strings.HasPrefix(h.body, "<!doctype html>") {
		t.Errorf("a browser's Accept got %q", h.body[:min(len(h.body), 40)])
	}
	if j.h.Get("ETag") == "" || j.h.Get("ETag") == h.h.Get("ETag") || strings.HasPrefix(j.h.Get("ETag"), "W/") {
		t.Errorf("ETags: JSON %q, HTML %q; want two different strong tags", j.h.Get("ETag"), h.h.Get("ETag"))
	}
	// Other Accept strings share those two variants.
	e.cached(hello, "HIT", "Accept", "application/json;q=1, */*;q=0.1")
	e.cached(hello, "HIT")
	if a := e.do(http.MethodGet, e.origin+hello, "Accept", "text/html;q=0.5, application/json;q=0.9"); a.h.Get("Content-Type") != "application/json" {
		t.Errorf("q-values: Content-Type %q; want application/json", a.h.Get("Content-Type"))
	}
}

// TestETagNotModified: If-None-Match with the page's ETag gets 304 with no
// body, from the origin and from Varnish; a changed page has a new ETag.
func TestETagNotModified(t *testing.T) {
	e := newEnv(t, origin.Options{}, true)
	a := e.cached(hello, "MISS")
	etag := a.h.Get("ETag")
	// Varnish compares If-None-Match with the ETag as one value; the origin
	// reads lists and * too.
	for _, base := range []string{e.origin, e.edge.URL()} {
		inms := []string{etag, "W/" + etag}
		if base == e.origin {
			inms = append(inms, `"x", `+etag, "*")
		}
		for _, inm := range inms {
			nm := e.do(http.MethodGet, base+hello, "If-None-Match", inm)
			if nm.code != http.StatusNotModified || nm.body != "" || nm.h.Get("ETag") != etag {
				t.Errorf("%s If-None-Match %s: %d ETag %q body %q; want 304", base, inm, nm.code, nm.h.Get("ETag"), nm.body)
			}
		}
		if o := e.do(http.MethodGet, base+hello, "If-None-Match", `"other"`); o.code != http.StatusOK {
			t.Errorf("%s: If-None-Match of another tag: %d; want 200", base, o.code)
		}
	}
	e.exec("update content set title = 'Hello again' where id = 1")
	if b := e.do(http.MethodGet, e.origin+hello, "If-None-Match", etag); b.code != http.StatusOK || b.h.Get("ETag") == etag {
		t.Errorf("after an edit: %d ETag %q; want 200 and a new ETag", b.code, b.h.Get("ETag"))
	}
}

// TestXkeyPurgeRemovesExactlyTagged: a purge of content:1 removes the
// objects tagged with it (the page and the lists that show it), in both
// representations, and no other.
func TestXkeyPurgeRemovesExactlyTagged(t *testing.T) {
	e := newEnv(t, origin.Options{}, true)
	paths := []string{hello, logical, launch, "/tag/freshet", "/section/tech", "/section/news", "/author/grace"}
	for _, p := range paths {
		e.cached(p, "MISS")
		e.cached(p, "MISS", "Accept", "application/json")
	}
	a := e.purge("PURGE", "/", "xkey", "content:1")
	// hello, /tag/freshet and /section/tech, two variants each.
	if !strings.Contains(a.body, "Purged 6") {
		t.Errorf("purge answer: %s; want Purged 6", a.body)
	}
	gone := []string{hello, "/tag/freshet", "/section/tech"}
	for _, p := range paths {
		want := "HIT"
		if slices.Contains(gone, p) {
			want = "MISS"
		}
		e.cached(p, want)
		e.cached(p, want, "Accept", "application/json")
	}
}

// TestSoftPurgeServesStale: after a soft purge the stale page is served
// once (while Varnish refetches it), then the fresh one.
func TestSoftPurgeServesStale(t *testing.T) {
	e := newEnv(t, origin.Options{}, true)
	e.cached(hello, "MISS")
	e.exec("update content set title = 'Hello, soft purge' where id = 1")
	e.cached(hello, "HIT") // no purge yet: stale by design
	a := e.purge("PURGE", "/", "xkey-softpurge", "tag:streaming")
	if !strings.Contains(a.body, "Soft purged 1") {
		t.Errorf("soft purge answer: %s", a.body)
	}
	stale := e.get(hello)
	if stale.code != http.StatusOK || !strings.Contains(stale.body, "Hello, Freshet") {
		t.Fatalf("first answer after a soft purge: %d, want the stale page:\n%s", stale.code, stale.body)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		a := e.get(hello)
		if strings.Contains(a.body, "Hello, soft purge") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the refetched page never came:\n%s", a.body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestPurgeURLWithHost: PURGE of a url removes the object of that url and
// Host only.
func TestPurgeURLWithHost(t *testing.T) {
	e := newEnv(t, origin.Options{}, true)
	const site, other = "www.example.com", "other.example.com"
	e.cached(hello, "MISS", "Host", site)
	e.cached(hello, "MISS", "Host", site, "Accept", "application/json")
	e.cached(hello, "MISS", "Host", other)
	e.cached(logical, "MISS", "Host", site)
	e.purge("PURGE", hello, "Host", site)
	e.cached(hello, "MISS", "Host", site)
	e.cached(hello, "MISS", "Host", site, "Accept", "application/json")
	e.cached(hello, "HIT", "Host", other)
	e.cached(logical, "HIT", "Host", site)
}

// TestBan: BAN with X-Ban-Url removes every object whose url matches, with
// X-Ban-Host only those of matching hosts; a bad regex is a 400, and
// requests from outside the purgers acl are refused (see the VCL).
func TestBan(t *testing.T) {
	e := newEnv(t, origin.Options{}, true)
	for _, p := range []string{hello, logical, launch, "/tag/cdc"} {
		e.cached(p, "MISS")
	}
	e.cached(launch, "MISS", "Host", "b.example")
	e.purge("BAN", "/", "X-Ban-Url", "^/tech/")
	e.cached(hello, "MISS")
	e.cached(logical, "MISS")
	e.cached(launch, "HIT")
	e.cached("/tag/cdc", "HIT")
	e.purge("BAN", "/", "X-Ban-Url", "^/news/", "X-Ban-Host", "^b\\.example$")
	e.cached(launch, "HIT")
	e.cached(launch, "MISS", "Host", "b.example")
	for _, bad := range [][]string{{}, {"X-Ban-Url", "^/(tech"}, {"X-Ban-Url", `a"b`}} {
		if a := e.do("BAN", e.edge.URL()+"/", bad...); a.code != http.StatusBadRequest {
			t.Errorf("BAN %v: %d %s; want 400", bad, a.code, a.body)
		}
	}
	e.cached("/tag/cdc", "HIT")
}

// TestKeysCoverThePurgeSet shows that a key the invalidator purges is a key
// the origin tags. The changes are events as the cdc-ingestor emits them
// for pipelines/freshet.sql's table (REPLICA IDENTITY FULL: updates and
// deletes carry the old row), turned into purge sets by the invalidator's
// own functions (pipeline.ContentFields, Invalidation.PurgeSet). For an
// update and a delete of a row, every key of the purge set is on the row's
// page; a create of an item with tag go purges /tag/go, which Varnish then
// serves fresh with the new item; a tag removed from an item purges the
// old tag's page.
func TestKeysCoverThePurgeSet(t *testing.T) {
	e := newEnv(t, origin.Options{}, true)
	keysOf := func(path string) []string {
		return decode(t, e.do(http.MethodGet, e.origin+path, "Accept", "application/json")).Keys
	}
	hello1 := events.ContentBefore{Kind: "article", Title: "Hello, Freshet", Tags: []string{"freshet", "streaming"}, Section: "tech",
		Locale: "en", URLPath: hello, Version: 1, Attributes: map[string]string{"author": "ada", "region": "eu", "breaking": "f"}}
	update := events.ContentChange{Op: events.OpUpdate, ContentID: "1", Kind: "article", Title: "Hello, edited",
		Tags: hello1.Tags, Section: "tech", Locale: "en", URLPath: hello, Version: 2, Attributes: hello1.Attributes, Before: &hello1}
	logical2 := events.ContentBefore{Kind: "article", Title: "Logical replication, explained", Tags: []string{"postgres", "cdc"},
		Section: "tech", Locale: "en", URLPath: logical, Version: 1,
		Attributes: map[string]string{"author": "grace", "region": "us", "audience": "subscribers", "breaking": "f"}}
	del := events.ContentChange{Op: events.OpDelete, ContentID: "2", Kind: logical2.Kind, Title: logical2.Title, Tags: logical2.Tags,
		Section: "tech", Locale: "en", URLPath: logical, Version: 1, Attributes: logical2.Attributes}
	for _, c := range []struct {
		path   string
		change events.ContentChange
	}{{hello, update}, {logical, del}} {
		page := keysOf(c.path)
		keys := purgeKeys(e.p, &c.change)
		if len(keys) == 0 {
			t.Fatalf("the %s purges no key", c.change.Op)
		}
		for _, k := range keys {
			if !slices.Contains(page, k) {
				t.Errorf("the %s of %s purges %q, which the page (keys %v) does not carry", c.change.Op, c.path, k, page)
			}
		}
	}

	// A create joins the /tag/go list.
	list := decode(t, e.do(http.MethodGet, e.origin+"/tag/go", "Accept", "application/json"))
	if len(list.Items) != 0 || !slices.Contains(list.Keys, "tag:go") {
		t.Fatalf("/tag/go before the create: %+v", list)
	}
	e.cached("/tag/go", "MISS")
	e.cached("/tag/go", "HIT")
	e.exec("insert into content (title, url, tags, section, author) values ('Go 1.26', '/tech/go-1-26', '{go}', 'tech', 'ada')")
	created := purgeKeys(e.p, &events.ContentChange{Op: events.OpCreate, ContentID: "4", Kind: "article", Title: "Go 1.26",
		Tags: []string{"go"}, Section: "tech", Locale: "en", URLPath: "/tech/go-1-26", Version: 1, Attributes: map[string]string{"author": "ada", "breaking": "f"}})
	if !slices.ContainsFunc(created, func(k string) bool { return slices.Contains(list.Keys, k) }) {
		t.Fatalf("the create purges %v, none of which is on /tag/go (keys %v)", created, list.Keys)
	}
	e.purge("PURGE", "/", "xkey", strings.Join(created, " "))
	a := e.cached("/tag/go", "MISS")
	if !strings.Contains(a.body, "Go 1.26") {
		t.Errorf("/tag/go after the purge does not list the new item:\n%s", a.body)
	}

	// A tag removed from an item purges the old tag's page.
	e.cached("/tag/streaming", "MISS")
	e.exec("update content set tags = '{freshet}' where id = 1")
	untag := update
	untag.Title, untag.Tags = hello1.Title, []string{"freshet"}
	e.purge("PURGE", "/", "xkey", strings.Join(purgeKeys(e.p, &untag), " "))
	if a := e.cached("/tag/streaming", "MISS"); strings.Contains(a.body, "Hello, Freshet") {
		t.Errorf("/tag/streaming still lists the item whose tag was removed:\n%s", a.body)
	}
}

// purgeKeys returns the keys the invalidator purges for a change.
func purgeKeys(p *pipeline.Pipeline, c *events.ContentChange) []string {
	return p.Invalidation.PurgeSet(pipeline.ContentFields(c)).Keys
}

// TestListPages: tag, section and author pages list the newest items
// first, with the list's key and the items' keys.
func TestListPages(t *testing.T) {
	e := newEnv(t, origin.Options{ListLimit: 1}, false)
	for _, c := range []struct {
		path, key string
		ids       []string
	}{
		{"/tag/postgres", "tag:postgres", []string{"2"}},
		{"/section/tech", "section:tech", []string{"2"}}, // limit 1: the newest of 1 and 2
		{"/author/ada", "author:ada", []string{"3"}},
		{"/tag/none", "tag:none", nil},
		{"/tag/a%20b", "", nil}, // a key cannot hold a space: not cacheable
	} {
		t.Run(c.path, func(t *testing.T) {
			a := e.do(http.MethodGet, e.origin+c.path, "Accept", "application/json")
			pg := decode(t, a)
			var ids []string
			for _, it := range pg.Items {
				ids = append(ids, it.ID)
			}
			if a.code != http.StatusOK || !slices.Equal(ids, c.ids) {
				t.Errorf("%d, items %v; want 200 %v", a.code, ids, c.ids)
			}
			if c.key == "" {
				if cc := a.h.Get("Cache-Control"); cc != "no-cache" {
					t.Errorf("a list without a key: Cache-Control %q; want no-cache", cc)
				}
				return
			}
			if len(pg.Keys) == 0 || pg.Keys[0] != c.key {
				t.Errorf("keys %v; want %s first", pg.Keys, c.key)
			}
			for _, it := range pg.Items {
				if !slices.Contains(pg.Keys, "content:"+it.ID) {
					t.Errorf("keys %v lack content:%s", pg.Keys, it.ID)
				}
			}
		})
	}
	if a := e.do(http.MethodGet, e.origin+"/author/ada"); !strings.Contains(a.body, `<a href="/news/launch-day">Launch day</a>`) {
		t.Errorf("HTML list lacks the item link:\n%s", a.body)
	}
}

// TestNotFoundAndMethods: unknown paths are 404 in the asked format and
// never cached; only GET and HEAD are served.
func TestNotFoundAndMethods(t *testing.T) {
	e := newEnv(t, origin.Options{}, false)
	for _, c := range []struct {
		method, path, accept string
		code                 int
		body                 string
	}{
		{"GET", "/nope", "application/json", 404, `{"error":"not found","path":"/nope"}`},
		{"GET", "/nope", "", 404, "<h1>404 Not Found</h1>"},
		{"GET", "/tag/", "", 404, "404"},
		{"GET", hello + "/", "", 404, "404"},
		{"POST", hello, "application/json", 405, "method not allowed"},
		{"HEAD", hello, "", 200, ""},
	} {
		a := e.do(c.method, e.origin+c.path, "Accept", c.accept)
		if a.code != c.code || !strings.Contains(a.body, c.body) {
			t.Errorf("%s %s (Accept %q): %d %q; want %d with %q", c.method, c.path, c.accept, a.code, a.body, c.code, c.body)
		}
		if c.code != 200 && a.h.Get("Cache-Control") != "no-store" {
			t.Errorf("%s %s: Cache-Control %q; want no-store", c.method, c.path, a.h.Get("Cache-Control"))
		}
		if c.method == "HEAD" && (a.h.Get("ETag") == "" || a.h.Get("Content-Length") == "0") {
			t.Errorf("HEAD: ETag %q, Content-Length %q", a.h.Get("ETag"), a.h.Get("Content-Length"))
		}
	}
}

// TestDatabaseDown: without the database a page is a 503 that no cache
// keeps.
func TestDatabaseDown(t *testing.T) {
	e := newEnv(t, origin.Options{QueryTimeout: 2 * time.Second}, false)
	e.db.Close()
	a := e.do(http.MethodGet, e.origin+hello)
	if a.code != http.StatusServiceUnavailable || a.h.Get("Cache-Control") != "no-store" {
		t.Errorf("database closed: %d, Cache-Control %q; want 503 no-store", a.code, a.h.Get("Cache-Control"))
	}
}
