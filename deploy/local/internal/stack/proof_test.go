package stack

// Helpers of the whole-stack proofs (whole_test.go, kill_test.go): the
// stack as `make run` runs it, users' streams read by a Go SSE client that
// resumes with Last-Event-ID and by the gateway's browser client in
// headless Chromium, pages through Varnish, and the metrics-sink's
// ClickHouse tables.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/chromedp/chromedp"
	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/freshet/freshet/pkg/codec"
	"github.com/freshet/freshet/pkg/events"
	"github.com/freshet/freshet/pkg/testenv"
)

// proofStack is the stack run by the runner binary, on free ports in a
// temporary folder, for the whole-stack proofs.
type proofStack struct {
	t       *testing.T
	bin     string
	st      stackEnv
	env     []string
	r       *runner
	edge    string // Varnish
	gateway string // the sse-gateway
	secrets map[string]string

	browser context.Context   // headless Chromium
	app     string            // the app's origin, serving browserPage
	tokens  map[string]string // stream tokens of u1 and u3
}

// startWithApp starts a browser, the app's page server and the whole stack
// (every service), whose gateway lets the app's origin in (CORS), as on a
// real site where pages and streams come from different hosts; and mints
// stream tokens for u1 and u3.
func startWithApp(t *testing.T) *proofStack {
	t.Helper()
	requirePackages(t)
	browser := testenv.Browser(t)
	p := newProofStack(t)
	p.browser, p.tokens = browser, map[string]string{}
	p.app = appServer(t, p.gateway, p.tokens).URL
	p.env = append(p.env, "FRESHET_GATEWAY_CORS_ORIGINS="+p.app)
	p.start()
	for _, svc := range []string{"cdc-ingestor", "invalidator", "metrics-sink", "origin", "personalizer", "sse-gateway"} {
		if !p.runs(svc) {
			t.Fatalf("the stack did not start %s:\n%s", svc, p.r.all)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, u := range []string{"u1", "u3"} {
		p.tokens[u] = p.token(ctx, u)
	}
	return p
}

// openUser opens the app's page as user in a new browser tab.
func (p *proofStack) openUser(user string) *tab {
	p.t.Helper()
	return openTab(p.t, p.browser, p.app+"/"+user)
}

// newProofStack builds the runner and prepares a stack with every service
// on free ports in a temporary folder; start starts it.
func newProofStack(t *testing.T) *proofStack {
	t.Helper()
	requirePackages(t)
	p := &proofStack{t: t, bin: buildRunner(t), st: newStackEnv(t, "all")}
	p.env = p.st.env
	p.edge = fmt.Sprintf("http://127.0.0.1:%d", p.st.ports[3])
	p.gateway = fmt.Sprintf("http://127.0.0.1:%d", p.st.ports[7])
	return p
}

// start starts the runner and waits until every part is ready.
func (p *proofStack) start() {
	p.t.Helper()
	p.r = startRunner(p.t, p.bin, p.env)
	p.waitReady()
	if p.secrets == nil {
		secrets, err := loadSecrets(filepath.Join(p.st.dir, "secrets.env"))
		if err != nil {
			p.t.Fatal(err)
		}
		p.secrets = secrets
	}
}

// waitReady waits for the runner's ready line and the end of its hints.
func (p *proofStack) waitReady() {
	p.t.Helper()
	p.r.waitFor(p.t, "all parts ready", readyWait)
	p.r.waitFor(p.t, "logs: ", 10*time.Second)
}

// stop stops the runner with Ctrl-C and checks that nothing is left.
func (p *proofStack) stop() {
	p.t.Helper()
	p.r.stop(p.t, syscall.SIGINT)
	if left := processesUnder(p.st.dir); len(left) > 0 {
		p.t.Fatalf("processes left after Ctrl-C:\n%s", strings.Join(left, "\n"))
	}
}

// runs reports whether the runner started service name.
func (p *proofStack) runs(name string) bool {
	return strings.Contains(p.r.all.String(), "  "+name+" ")
}

// token mints a stream token for user with the gateway's own command.
func (p *proofStack) token(ctx context.Context, user string) string {
	p.t.Helper()
	cmd := exec.CommandContext(ctx, filepath.Join(p.st.dir, "bin", "sse-gateway"), "token", "-user", user, "-ttl", "30m")
	cmd.Env = append(os.Environ(), "FRESHET_AUTH_HS256_SECRET="+p.secrets["AUTH_HS256_SECRET"])
	out, err := cmd.Output()
	if err != nil {
		p.t.Fatalf("sse-gateway token: %v", err)
	}
	return strings.TrimSpace(string(out))
}

func (p *proofStack) pg(ctx context.Context) *pgx.Conn {
	p.t.Helper()
	conn, err := pgx.Connect(ctx, p.st.postgresDSN())
	if err != nil {
		p.t.Fatal(err)
	}
	p.t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// change is one committed write of a content row: the event a user's
// stream must carry exactly once is (content id, version).
type change struct {
	id      int64
	version int64
	title   string
	url     string
	at      time.Time // when the commit returned
}

func (c change) key() string { return fmt.Sprintf("%d@%d", c.id, c.version) }

// update sets row id's title and returns the change (the content table's
// trigger bumps version).
func update(ctx context.Context, t *testing.T, conn *pgx.Conn, id int64, title string) change {
	t.Helper()
	c := change{id: id, title: title}
	if err := conn.QueryRow(ctx, "update content set title = $1 where id = $2 returning version, url", title, id).Scan(&c.version, &c.url); err != nil {
		t.Fatalf("update content %d: %v", id, err)
	}
	c.at = time.Now()
	return c
}

// insertAda inserts an article by ada on postgres (u1 follows author:ada and
// likes postgres; u3's profile matches none of it).
func insertAda(ctx context.Context, t *testing.T, conn *pgx.Conn, title, url string) change {
	t.Helper()
	c := change{title: title, url: url}
	if err := conn.QueryRow(ctx, "insert into content (title, url, tags, author, section, region, locale) values ($1, $2, '{postgres}', 'ada', 'tech', 'us', 'en') returning id, version",
		title, url).Scan(&c.id, &c.version); err != nil {
		t.Fatalf("insert content: %v", err)
	}
	c.at = time.Now()
	return c
}

// insertForU3 inserts an item that u3 matches (interest launch, region eu,
// locale fr: 0.3 + 0.5 + 0.5 over the threshold of 1) and u1 does not
// (region eu alone: 0.5).
func insertForU3(ctx context.Context, t *testing.T, conn *pgx.Conn, title string) change {
	t.Helper()
	c := change{title: title, url: "/news/" + slug(title)}
	if err := conn.QueryRow(ctx, "insert into content (title, url, tags, section, region, locale) values ($1, $2, '{launch}', 'news', 'eu', 'fr') returning id, version",
		title, c.url).Scan(&c.id, &c.version); err != nil {
		t.Fatalf("insert content: %v", err)
	}
	c.at = time.Now()
	return c
}

func slug(s string) string { return strings.ToLower(strings.ReplaceAll(s, " ", "-")) }

// freshness is what pollFresh saw.
type freshness struct {
	took  time.Duration // from the commit to the first answer with the new content
	cache string        // X-Cache of that answer
	stale int           // answers with the old content before it
}

// pollFresh GETs url through Varnish until its page holds want, as fast as
// one request at a time goes, and says how long after the commit (since)
// that was. It fails after a minute.
func pollFresh(ctx context.Context, t *testing.T, url, want string, since time.Time) freshness {
	t.Helper()
	var f freshness
	deadline := time.Now().Add(time.Minute)
	for {
		code, cache, body := getPage(ctx, t, url)
		if code == http.StatusOK && strings.Contains(body, want) {
			f.took, f.cache = time.Since(since), cache
			return f
		}
		f.stale++
		if time.Now().After(deadline) {
			t.Fatalf("%s still stale a minute after the commit (%d, X-Cache %s); want %q in:\n%s", url, code, cache, want, body)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// cached GETs url until Varnish answers it from its cache (X-Cache HIT).
func cached(ctx context.Context, t *testing.T, url, want string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		code, cache, body := getPage(ctx, t, url)
		if code == http.StatusOK && cache == "HIT" && strings.Contains(body, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: %d, X-Cache %s; want a HIT with %q:\n%s", url, code, cache, want, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// sseDelivery is the part of a stream's delivery event the proofs read.
type sseDelivery struct {
	EventID string `json:"event_id"`
	Content struct {
		ID      string `json:"id"`
		Version int64  `json:"version"`
		Title   string `json:"title"`
	} `json:"content"`
	CommittedAt int64 `json:"committed_at"`
}

func (d sseDelivery) key() string {
	return d.Content.ID + "@" + strconv.FormatInt(d.Content.Version, 10)
}

// sseClient reads one user's stream as a browser's EventSource does: when
// the connection ends it reconnects with the last event id it saw
// (Last-Event-ID), so a gateway restarted in between resumes the stream.
// It counts every delivery it receives, duplicates included.
type sseClient struct {
	mu       sync.Mutex
	got      map[string][]sseDelivery // by key (content id@version)
	lastID   string
	connects int
}

func followStream(ctx context.Context, t *testing.T, url, token string) *sseClient {
	c := &sseClient{got: map[string][]sseDelivery{}}
	go func() {
		for ctx.Err() == nil {
			c.read(ctx, url, token)
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	return c
}

func (c *sseClient) read(ctx context.Context, url, token string) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "text/event-stream")
	c.mu.Lock()
	if c.lastID != "" {
		req.Header.Set("Last-Event-ID", c.lastID)
	}
	c.mu.Unlock()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return
	}
	c.mu.Lock()
	c.connects++
	c.mu.Unlock()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var id, event, data string
	for sc.Scan() {
		line := sc.Text()
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch {
		case line == "":
			c.mu.Lock()
			if id != "" {
				c.lastID = id
			}
			if event == "delivery" {
				var d sseDelivery
				if json.Unmarshal([]byte(data), &d) == nil {
					c.got[d.key()] = append(c.got[d.key()], d)
				}
			}
			c.mu.Unlock()
			id, event, data = "", "", ""
		case field == "id":
			id = value
		case field == "event":
			event = value
		case field == "data":
			data += value
		}
	}
}

// receipts returns the event ids of every delivery received, by key.
func (c *sseClient) receipts() map[string][]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := make(map[string][]string, len(c.got))
	for k, ds := range c.got {
		for _, d := range ds {
			m[k] = append(m[k], d.EventID)
		}
	}
	return m
}

// connections returns how many times the stream was opened.
func (c *sseClient) connections() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.connects
}

// counts returns how many times each key arrived.
func (c *sseClient) counts() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := make(map[string]int, len(c.got))
	for k, ds := range c.got {
		m[k] = len(ds)
	}
	return m
}

func (c *sseClient) delivery(key string) (sseDelivery, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ds := c.got[key]
	if len(ds) == 0 {
		return sseDelivery{}, false
	}
	return ds[0], true
}

// waitAll waits until every key of changes arrived.
func waitAll(t *testing.T, what string, counts func() map[string]int, changes []change, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := counts()
		var missing []string
		for _, c := range changes {
			if got[c.key()] == 0 {
				missing = append(missing, c.key())
			}
		}
		if len(missing) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d of %d changes never arrived after %s: %v", what, len(missing), len(changes), timeout, missing)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// exactlyOnce checks that every change arrived once, and none twice.
// It returns whether the check passed.
func exactlyOnce(t *testing.T, what string, got map[string]int, changes []change) bool {
	t.Helper()
	ok := true
	written := map[string]bool{}
	for _, c := range changes {
		written[c.key()] = true
		if n := got[c.key()]; n != 1 {
			t.Errorf("%s: change %s (%q) arrived %d times; want exactly once", what, c.key(), c.title, n)
			ok = false
		}
	}
	for k, n := range got {
		if n > 1 && !written[k] {
			t.Errorf("%s: %s arrived %d times", what, k, n)
			ok = false
		}
	}
	return ok
}

// checkWire checks what a stream carried (event ids by key): every change
// arrived, and a change that arrived more than once came again as the same
// delivery (same event_id), which the browser client drops. Such repeats
// are logged with their origin (see explainDuplicates): they are the
// wire-level gap between "exactly once to the app" and "exactly once on the
// stream". With strict, a repeat fails the test.
func (p *proofStack) checkWire(ctx context.Context, what string, got map[string][]string, changes []change, strict bool) {
	t := p.t
	t.Helper()
	repeats := 0
	for _, c := range changes {
		ids := got[c.key()]
		if len(ids) == 0 {
			t.Errorf("%s: change %s (%q) never arrived (a gap)", what, c.key(), c.title)
			continue
		}
		if len(ids) > 1 {
			repeats++
		}
		for _, id := range ids[1:] {
			if id != ids[0] {
				t.Errorf("%s: change %s arrived as two different deliveries: %v", what, c.key(), ids)
				break
			}
		}
	}
	if repeats > 0 {
		report := t.Logf
		if strict {
			report = t.Errorf
		}
		report("NOT EXACTLY ONCE ON THE WIRE: %s: %d of %d changes arrived more than once, each time as the same delivery (same event_id, dropped by the client)", what, repeats, len(changes))
		p.explainDuplicates(ctx, "u1")
	} else {
		t.Logf("%s: each of the %d changes arrived exactly once", what, len(changes))
	}
}

// noneOf checks that none of changes reached a stream.
func noneOf(t *testing.T, what string, got map[string]int, changes []change) {
	t.Helper()
	for _, c := range changes {
		if got[c.key()] > 0 {
			t.Errorf("%s: change %s (%q) reached a user whose profile does not match it", what, c.key(), c.title)
		}
	}
}

// browserPage is the app page of the browser proofs: the gateway's client
// (/v1/client.js, served by the gateway) connected as one user. Before the
// client loads, EventSource is wrapped so that the page records every
// delivery event the browser received (window.raw: content id@version,
// duplicates included, below the client's own de-duplication); onDelivery
// records what the app was given (window.got), the RUM lag of each delivery
// as measured by the client (window.lags) and every beacon body the client
// sent (window.beacons).
const browserPage = `<!doctype html>
<html><head><meta charset="utf-8"><title>Freshet whole-stack test</title></head>
<body><h1>Freshet whole-stack test</h1><p id="last">none</p>
<script>
window.raw = []; window.got = []; window.lags = {}; window.beacons = []; window.kinds = [];
const NativeEventSource = window.EventSource;
window.EventSource = class extends NativeEventSource {
  constructor(url, opts) {
    super(url, opts);
    this.addEventListener("delivery", (e) => {
      try { const d = JSON.parse(e.data); window.raw.push([d.content.id + "@" + d.content.version, d.event_id]); } catch (err) { window.raw.push(["bad", ""]); }
    });
  }
};
</script>
<script src="%[1]s/v1/client.js"></script>
<script>
window.stream = Freshet.connect({
  url: "%[1]s/v1/stream", token: "%[2]s", route: "/whole/:id", beaconInterval: 600000,
  onDelivery: (d) => {
    window.got.push({key: d.content.id + "@" + d.content.version, event_id: d.event_id, title: d.content.title});
    document.getElementById("last").textContent = d.content.title;
  },
  onEvent: (kind) => window.kinds.push(kind),
});
const rum = window.stream.rum;
const lag = rum.lag.bind(rum), blob = rum.blob.bind(rum);
rum.lag = (id, ms) => { window.lags[id] = ms; lag(id, ms); };
rum.blob = (b) => { window.beacons.push(JSON.stringify(b)); return blob(b); };
</script></body></html>`

// appServer serves browserPage at /<user>, for the tokens in tokens.
func appServer(t *testing.T, gateway string, tokens map[string]string) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := tokens[strings.TrimPrefix(r.URL.Path, "/")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, browserPage, gateway, tok)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// tab is one browser tab on the app page.
type tab struct {
	t   *testing.T
	ctx context.Context
}

// openTab opens url in a new tab of the browser and waits until the
// client's stream is open.
func openTab(t *testing.T, browser context.Context, url string) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser)
	t.Cleanup(cancel)
	// The tab lives as long as the context of its first action: create it
	// with ctx itself, never with a context that has a deadline.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("open a tab: %v", err)
	}
	tb := &tab{t: t, ctx: ctx}
	nctx, ncancel := context.WithTimeout(ctx, 30*time.Second)
	defer ncancel()
	if err := chromedp.Do(nctx, chromedp.Navigate(url)); err != nil {
		t.Fatalf("open %s: %v", url, err)
	}
	tb.waitJS("the stream to open", `window.kinds.includes("ready")`, time.Minute)
	return tb
}

// eval evaluates expr in the tab.
func eval[T any](tb *tab, expr string) T {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		tb.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

func (tb *tab) waitJS(what, expr string, timeout time.Duration) {
	tb.t.Helper()
	deadline := time.Now().Add(timeout)
	for !eval[bool](tb, expr) {
		if time.Now().After(deadline) {
			tb.t.Fatalf("browser: no %s after %s (events %v, %d deliveries)", what, timeout,
				eval[[]string](tb, "window.kinds"), eval[int](tb, "window.got.length"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// raw counts the delivery events the browser received, by key.
func (tb *tab) raw() map[string]int {
	m := map[string]int{}
	for k, ids := range tb.receipts() {
		m[k] = len(ids)
	}
	return m
}

// receipts returns the event ids of every delivery event the browser
// received, by key, duplicates included.
func (tb *tab) receipts() map[string][]string {
	m := map[string][]string{}
	for _, r := range eval[[][]string](tb, "window.raw") {
		m[r[0]] = append(m[r[0]], r[1])
	}
	return m
}

// got returns the app's deliveries by key: their event ids.
func (tb *tab) got() map[string]string {
	type d struct {
		Key     string `json:"key"`
		EventID string `json:"event_id"`
	}
	m := map[string]string{}
	for _, x := range eval[[]d](tb, "window.got") {
		m[x.Key] = x.EventID
	}
	return m
}

// clickHouse opens the stack's ClickHouse database.
func (p *proofStack) clickHouse() driver.Conn {
	p.t.Helper()
	conn, err := clickhouse.Open(&clickhouse.Options{
		Addr: []string{fmt.Sprintf("127.0.0.1:%d", p.st.ports[1])}, Auth: clickhouse.Auth{Database: Database},
	})
	if err != nil {
		p.t.Fatal(err)
	}
	p.t.Cleanup(func() { conn.Close() })
	return conn
}

// sqlList quotes strings for an IN (...) list (ClickHouse 18.16 has no
// server-side parameters).
func sqlList(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
	}
	return strings.Join(q, ",")
}

// counts runs a query whose rows are (name String, n UInt64).
func counts(ctx context.Context, t *testing.T, conn driver.Conn, q string) map[string]uint64 {
	t.Helper()
	rows, err := conn.Query(ctx, q)
	if err != nil {
		t.Fatalf("clickhouse: %v\n%s", err, q)
	}
	defer rows.Close()
	m := map[string]uint64{}
	for rows.Next() {
		var k string
		var n uint64
		if err := rows.Scan(&k, &n); err != nil {
			t.Fatalf("clickhouse: %v\n%s", err, q)
		}
		m[k] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("clickhouse: %v\n%s", err, q)
	}
	return m
}

// pipelineStages are the latency samples every change gets, by service.
var pipelineStages = []string{"cdc-ingestor commit_to_ack", "personalizer commit_to_deliver", "invalidator commit_to_purged"}

// clickHouseCounts is what ClickHouse holds about a set of changes.
type clickHouseCounts struct {
	changes map[string]string // delivery event id -> change event id
	stages  map[string]uint64 // "service stage" -> changes with a sample (after dedup by event id)
	samples map[string]uint64 // "service stage" -> samples (after dedup by event id)
	browser uint64            // deliveries with a browser lag (after dedup by beacon event id)
}

// readClickHouse waits (up to timeout) until ClickHouse holds, for each
// delivery of deliveries (delivery event ids, one per change), its change,
// a latency sample of every stage and a browser lag, then returns the
// counts. It never fails for counts: the caller checks them.
func readClickHouse(ctx context.Context, t *testing.T, conn driver.Conn, deliveries []string, browser bool, timeout time.Duration) clickHouseCounts {
	t.Helper()
	n := uint64(len(deliveries))
	deadline := time.Now().Add(timeout)
	for {
		var c clickHouseCounts
		c.changes = map[string]string{}
		rows, err := conn.Query(ctx, "SELECT event_id, any(change_event_id) FROM deliveries WHERE event_id IN ("+sqlList(deliveries)+") GROUP BY event_id")
		if err != nil {
			t.Fatalf("clickhouse: %v", err)
		}
		for rows.Next() {
			var d, ch string
			if err := rows.Scan(&d, &ch); err != nil {
				t.Fatal(err)
			}
			c.changes[d] = ch
		}
		rows.Close()
		var changeIDs []string
		for _, ch := range c.changes {
			changeIDs = append(changeIDs, ch)
		}
		slices.Sort(changeIDs)
		changeIDs = slices.Compact(changeIDs)
		if len(changeIDs) > 0 {
			in := sqlList(changeIDs)
			c.stages = counts(ctx, t, conn, "SELECT concat(service, ' ', stage), uniqExact(subject_event_id) FROM latency_samples WHERE subject_event_id IN ("+in+") GROUP BY service, stage")
			c.samples = counts(ctx, t, conn, "SELECT concat(service, ' ', stage), count() FROM (SELECT service, stage FROM latency_samples WHERE subject_event_id IN ("+in+") LIMIT 1 BY event_id) GROUP BY service, stage")
		}
		b := counts(ctx, t, conn, "SELECT 'browser', uniqExact(l) FROM (SELECT lag_event_ids FROM rum_beacons LIMIT 1 BY event_id) ARRAY JOIN lag_event_ids AS l WHERE l IN ("+sqlList(deliveries)+")")
		c.browser = b["browser"]
		done := uint64(len(c.changes)) == n && (!browser || c.browser == n)
		for _, s := range pipelineStages {
			done = done && c.stages[s] >= n
		}
		if done || time.Now().After(deadline) {
			return c
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// checkClickHouseCounts checks that c counts exactly n changes everywhere:
// one change per delivery, one sample per change and stage, one browser lag
// per delivery.
func checkClickHouseCounts(t *testing.T, c clickHouseCounts, n int, browser bool) {
	t.Helper()
	changes := map[string]bool{}
	for _, ch := range c.changes {
		changes[ch] = true
	}
	if len(c.changes) != n || len(changes) != n {
		t.Errorf("clickhouse deliveries: %d of the %d deliveries, of %d changes; want %d and %d", len(c.changes), n, len(changes), n, n)
	}
	for _, s := range pipelineStages {
		if c.stages[s] != uint64(n) || c.samples[s] != uint64(n) {
			t.Errorf("clickhouse latency_samples %s: %d changes with a sample, %d samples after dedup; want %d and %d", s, c.stages[s], c.samples[s], n, n)
		}
	}
	if browser && c.browser != uint64(n) {
		t.Errorf("clickhouse rum_beacons: browser lags of %d deliveries; want %d", c.browser, n)
	}
}

// checkNoRowTwice checks the sink's exactly-once write: no Kafka record
// (partition, offset) is stored twice in a raw table, restarts included.
func checkNoRowTwice(ctx context.Context, t *testing.T, conn driver.Conn) {
	t.Helper()
	for _, table := range []string{"latency_samples", "edge_purges", "rum_beacons", "deliveries"} {
		got := counts(ctx, t, conn, "SELECT 'rows', count() FROM "+table+" UNION ALL SELECT 'records', uniqExact(kafka_partition, kafka_offset) FROM "+table)
		if got["rows"] != got["records"] {
			t.Errorf("clickhouse %s: %d rows of %d Kafka records: a record was stored twice", table, got["rows"], got["records"])
		}
		t.Logf("clickhouse %s: %d rows", table, got["rows"])
	}
}

// freshnessQuery runs `metrics-sink query freshness -since 1h -event id`
// (the stack's binary, as a user would) and returns its rows by path.
func (p *proofStack) freshnessQuery(ctx context.Context, event string) map[string][]string {
	p.t.Helper()
	cmd := exec.CommandContext(ctx, filepath.Join(p.st.dir, "bin", "metrics-sink"), "query", "freshness", "-since", "1h", "-event", event)
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), fmt.Sprintf("FRESHET_CLICKHOUSE_ADDR=127.0.0.1:%d", p.st.ports[1]), "FRESHET_CLICKHOUSE_DATABASE="+Database)
	out, err := cmd.CombinedOutput()
	if err != nil {
		p.t.Fatalf("metrics-sink query freshness: %v\n%s", err, out)
	}
	rows := map[string][]string{}
	for _, line := range strings.Split(string(out), "\n") {
		if !strings.HasPrefix(line, "commit → ") {
			continue
		}
		// The path has single spaces; columns are separated by two or more.
		path, rest, _ := strings.Cut(line, "  ")
		rows[path] = strings.Fields(rest)
	}
	if len(rows) == 0 {
		p.t.Fatalf("metrics-sink query freshness -event %s printed no path:\n%s", event, out)
	}
	return rows
}

// explainDuplicates logs, for a failed exactly-once check, where the
// duplicates come from: content changes written twice to content.changes
// (same event id at two offsets), deliveries written twice to
// content.deliveries, or neither (the gateway sent a record twice).
func (p *proofStack) explainDuplicates(ctx context.Context, user string) {
	t := p.t
	t.Helper()
	dec, err := codec.New()
	if err != nil {
		t.Logf("explain duplicates: %v", err)
		return
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(fmt.Sprintf("127.0.0.1:%d", p.st.ports[5])),
		kgo.ConsumeTopics("content.changes", "content.deliveries"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		t.Logf("explain duplicates: %v", err)
		return
	}
	defer cl.Close()
	at := map[string][]string{} // "topic event id (content id@version)" -> partition/offset
	for {
		pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		fs := cl.PollFetches(pctx)
		cancel()
		if pctx.Err() != nil && fs.NumRecords() == 0 {
			break
		}
		fs.EachRecord(func(r *kgo.Record) {
			ev, _, err := dec.DecodeEvent(ctx, r.Value)
			if err != nil {
				return
			}
			where := fmt.Sprintf("%d/%d", r.Partition, r.Offset)
			switch e := ev.(type) {
			case *events.ContentChange:
				k := fmt.Sprintf("content.changes %s (%s@%d)", e.EventID, e.ContentID, e.Version)
				at[k] = append(at[k], where)
			case *events.Delivery:
				if e.UserID == user {
					k := fmt.Sprintf("content.deliveries %s (%s@%d, change %s)", e.EventID, e.Content.ID, e.Content.Version, e.ChangeEventID)
					at[k] = append(at[k], where)
				}
			}
		})
	}
	n := 0
	for k, w := range at {
		if len(w) > 1 {
			if n < 10 {
				t.Logf("written twice: %s at partition/offset %v", k, w)
			}
			n++
		}
	}
	t.Logf("explain duplicates: %d records of %d events read, %d events written more than once", func() int {
		s := 0
		for _, w := range at {
			s += len(w)
		}
		return s
	}(), len(at), n)
}
