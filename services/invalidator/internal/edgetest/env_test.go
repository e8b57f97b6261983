package edgetest

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/freshet/freshet/pkg/config"
	"github.com/freshet/freshet/pkg/events"
	"github.com/freshet/freshet/pkg/kafka"
	"github.com/freshet/freshet/pkg/origin"
	"github.com/freshet/freshet/pkg/pipeline"
	"github.com/freshet/freshet/pkg/servers"
	"github.com/freshet/freshet/pkg/testenv"
	"github.com/freshet/freshet/services/invalidator/internal/engine"
	"github.com/freshet/freshet/services/invalidator/internal/itest"
)

func TestMain(m *testing.M) { testenv.Main(m, testenv.NeedPostgres, testenv.NeedKafka) }

const repoRoot = "../../../../"

// env is Postgres with pipelines/freshet.sql and three rows of our own,
// the origin over it, two Varnish instances in front, and the broker.
type env struct {
	t      *testing.T
	db     *pgxpool.Pool
	p      *pipeline.Pipeline // the repository's pipeline, as the origin reads it
	origin string
	edges  []*servers.Varnish
	kt     testenv.KafkaTest
	k      *itest.Kafka
	topics itest.Topics
	group  string
}

// The rows the tests change, and the pages that list them.
var (
	rows = []struct{ url, title, tags, section, author string }{
		{"/t/a", "Alpha", "{go}", "tech", "ada"},
		{"/t/b", "Beta", "{go}", "tech", "bob"},
		{"/m/c", "Gamma", "{rust}", "misc", "cy"},
	}
	pages = []string{"/t/a", "/t/b", "/m/c", "/tag/go", "/tag/rust", "/section/tech", "/section/misc", "/author/ada", "/author/bob", "/author/cy"}
)

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	db, err := pgxpool.New(ctx, testenv.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	schema, err := os.ReadFile(repoRoot + "pipelines/freshet.sql")
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, db: db}
	e.exec(string(schema))
	for _, r := range rows {
		e.exec("insert into content (title, url, tags, section, author) values ($1, $2, $3, $4, $5)", r.title, r.url, r.tags, r.section, r.author)
	}
	if e.p, err = pipeline.Load(repoRoot + "pipelines/freshet.yaml"); err != nil {
		t.Fatal(err)
	}
	h, err := origin.NewHandler(db, e.p, origin.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	e.origin = srv.URL
	vcl := testenv.ReferenceVCL(t, srv.Listener.Addr().String())
	for range 2 {
		e.edges = append(e.edges, testenv.Varnish(t, vcl))
	}
	e.kt = testenv.Kafka(t)
	e.k = itest.NewKafka(t, e.kt)
	e.topics = itest.NewTopics(e.kt)
	e.group = e.kt.Group("invalidator")
	return e
}

func (e *env) exec(sql string, args ...any) {
	e.t.Helper()
	if _, err := e.db.Exec(context.Background(), sql, args...); err != nil {
		e.t.Fatalf("%s: %v", sql, err)
	}
}

// targets is the invalidation section of the repository's pipeline with
// one varnish target per edge, each with the extra settings given.
func (e *env) pipelineFile(extra string) string {
	var b strings.Builder
	b.WriteString("invalidation:\n  keys:\n")
	for _, k := range e.p.Invalidation.Keys {
		fmt.Fprintf(&b, "    - %q\n", k.String())
	}
	b.WriteString("  urls:\n")
	for _, u := range e.p.Invalidation.URLs {
		fmt.Fprintf(&b, "    - %q\n", u.String())
	}
	b.WriteString("  targets:\n")
	for i, v := range e.edges {
		fmt.Fprintf(&b, "    - {name: edge-%d, type: varnish, address: %q, coalesce: 10ms%s}\n", i, v.URL(), extra)
	}
	return b.String()
}

// start runs the engine over pipeline file text until the test ends.
func (e *env) start(file string) {
	t := e.t
	t.Helper()
	p, err := pipeline.ParseEnv("edges.yaml", []byte(file), config.MapLookup(nil))
	if err != nil {
		t.Fatal(err)
	}
	itest.StartEngine(t, engine.Config{
		Kafka:          kafka.Config{Brokers: e.kt.Seeds, ClientID: "invalidator-edgetest"},
		Pipeline:       p,
		Topics:         engine.Topics(e.topics),
		Group:          e.group,
		CommitInterval: 20 * time.Millisecond,
		EnsureTopics:   true,
		Lookup:         config.MapLookup(nil),
	})
}

// row reads a row as the cdc-ingestor puts it in an event.
type row struct {
	id                  int64
	title, section, url string
	author              string
	tags                []string
	version             int64
}

func (e *env) row(url string) row {
	e.t.Helper()
	var r row
	err := e.db.QueryRow(context.Background(), "select id, title, coalesce(section, ''), url, coalesce(author, ''), tags, version from content where url = $1", url).
		Scan(&r.id, &r.title, &r.section, &r.url, &r.author, &r.tags, &r.version)
	if err != nil {
		e.t.Fatalf("read %s: %v", url, err)
	}
	return r
}

// update runs sql (an UPDATE of the row at url) and produces the change
// the cdc-ingestor produces for it: the new values, and the old ones in
// before (the table has REPLICA IDENTITY FULL). It returns the event.
func (e *env) update(url, newURL, sql string, args ...any) events.ContentChange {
	e.t.Helper()
	old := e.row(url)
	e.exec(sql, args...)
	cur := e.row(newURL)
	c := events.ContentChange{
		EventID:    events.ID("edgetest", fmt.Sprint(cur.id), fmt.Sprint(cur.version)),
		Source:     events.Source{Origin: events.OriginReplication, DB: "freshet", Table: "public.content", CommitTime: time.Now(), TxID: uint64(time.Now().UnixNano())},
		Op:         events.OpUpdate,
		ContentID:  fmt.Sprint(cur.id),
		Title:      cur.title,
		Tags:       cur.tags,
		Section:    cur.section,
		URLPath:    cur.url,
		Version:    cur.version,
		Attributes: map[string]string{"author": cur.author},
		Before: &events.ContentBefore{Title: old.title, Tags: old.tags, Section: old.section, URLPath: old.url, Version: old.version,
			Attributes: map[string]string{"author": old.author}},
	}
	e.k.Changes(e.topics.Content, c)
	return c
}

// caughtUp waits until the engine committed every change produced: every
// target acked (or dead-lettered) them.
func (e *env) caughtUp() {
	e.t.Helper()
	itest.Eventually(e.t, 60*time.Second, func() bool { return e.k.CaughtUp(e.group, e.topics.Content) }, func() string { return "offsets not committed to the end" })
}

// answer is a response read whole.
type answer struct {
	code  int
	cache string // X-Cache
	xkey  []string
	body  string
}

func get(t *testing.T, url string) answer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{code: resp.StatusCode, cache: resp.Header.Get("X-Cache"), xkey: strings.Fields(resp.Header.Get("xkey")), body: string(b)}
}

// cached fetches path through edge i and fails unless the answer is a 200
// with X-Cache want.
func (e *env) cached(i int, path, want string) answer {
	e.t.Helper()
	a := get(e.t, e.edges[i].URL()+path)
	if a.code != http.StatusOK || a.cache != want {
		e.t.Fatalf("GET %s through edge-%d: %d, X-Cache %q; want 200 %s\n%s", path, i, a.code, a.cache, want, a.body)
	}
	return a
}

// warm fetches every page through every edge until it is a HIT: a MISS
// (or a HIT of what is cached already), then a HIT.
func (e *env) warm() {
	e.t.Helper()
	for i := range e.edges {
		for _, p := range pages {
			get(e.t, e.edges[i].URL()+p)
			e.cached(i, p, "HIT")
		}
	}
}

// pageKeys returns the surrogate keys the origin tags each page with.
func (e *env) pageKeys() map[string][]string {
	e.t.Helper()
	out := map[string][]string{}
	for _, p := range pages {
		out[p] = get(e.t, e.origin+p).xkey
	}
	return out
}

// pause stops (SIGSTOP) or resumes (SIGCONT) edge i's process group: a
// Varnish that is down for its clients and keeps its cache.
func (e *env) pause(i int, stop bool) {
	e.t.Helper()
	sig := syscall.SIGCONT
	if stop {
		sig = syscall.SIGSTOP
	}
	if err := syscall.Kill(-e.edges[i].Pid(), sig); err != nil {
		e.t.Fatalf("signal edge-%d: %v", i, err)
	}
}
