package gateway

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/freshet/freshet/pkg/events"
	"github.com/freshet/freshet/pkg/testenv"
)

const chromiumInstall = "apt-get install -y chromium"

// chromium returns the path of the browser, or skips the test (fails it
// when FRESHET_REQUIRE_SERVERS=1).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv(testenv.RequireServersEnv) == "1" {
		t.Fatalf("chromium is not installed (%s=1): %s", testenv.RequireServersEnv, chromiumInstall)
	}
	t.Skipf("chromium is not installed: %s", chromiumInstall)
	return ""
}

const testPage = `<!doctype html>
<html><head><meta charset="utf-8"><title>Freshet client test</title></head>
<body><h1>Freshet client test</h1><p id="status">loading</p>
<script src="%[1]s/v1/client.js"></script>
<script>
window.got = []; window.kinds = []; window.domEvents = 0;
window.addEventListener("freshet:delivery", () => window.domEvents++);
window.stream = Freshet.connect({
  url: "%[1]s/v1/stream", token: "%[2]s", channels: ["breaking"], route: "/test/:id",
  beaconInterval: 300,
  onDelivery: (d) => { window.got.push(d.event_id); document.getElementById("status").textContent = d.content.title; },
  onEvent: (kind) => window.kinds.push(kind),
});
</script></body></html>`

// A real browser (headless Chromium) loads a page with the client from
// another origin, receives deliveries, survives a restart of the gateway
// (graceful, then a kill) and resumes without a gap or a duplicate; its
// beacons (delivery lags and web-vitals) arrive on rum.beacons.
func TestBrowserClient(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a browser")
	}
	browser := chromium(t)
	e := newEnv(t)

	page := httptest.NewServer(nil) // the app's origin, not the gateway's
	defer page.Close()
	cfg := e.config()
	cfg.Gateway.CORSOrigins = []string{page.URL}
	cfg.Gateway.Addr = freeAddr(t) // the same address across restarts
	a := e.start(cfg)
	tok := e.token("nora", time.Hour, "breaking")
	page.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, testPage, a.URL(), tok)
	})

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(browser),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	// Chromium's helper processes outlive the browser for a moment; as
	// their subreaper this process reaps them, so that none is left behind
	// (not even as a zombie under an init that does not reap).
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0); errno != 0 {
		t.Logf("PR_SET_CHILD_SUBREAPER: %v", errno)
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer reapChildren(t)
	defer cancelAlloc()
	ctx, cancelCtx := chromedp.NewContext(allocCtx) // no timeout: it would stop the browser
	defer cancelCtx()

	if err := chromedp.Do(ctx, chromedp.Navigate(page.URL+"/articles/1")); err != nil {
		t.Fatalf("navigate: %v", err)
	}
	waitJS(t, ctx, "the stream to open", `window.kinds.includes("ready")`)

	var wantUser, wantChannel []string
	produce := func(from, to int) {
		for i := from; i < to; i++ {
			if i%4 == 0 {
				wantChannel = append(wantChannel, e.produce(mkDelivery("c:breaking", fmt.Sprintf("b%d", i), i))...)
			} else {
				wantUser = append(wantUser, e.produce(mkDelivery("u:nora", fmt.Sprintf("n%d", i%5), i))...)
			}
		}
	}
	got := func() []string {
		ids, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`window.got`))
		if err != nil {
			t.Fatal(err)
		}
		return ids
	}
	produce(0, 12)
	waitJS(t, ctx, "12 deliveries", `window.got.length >= 12`)

	// Graceful restart: the page is told to reconnect, misses deliveries
	// while no gateway runs, and gets them from the next one.
	a.stop(t)
	produce(12, 24)
	b := e.start(cfg)
	waitJS(t, ctx, "24 deliveries after a graceful restart", `window.got.length >= 24`)

	// Kill: connections cut without a word.
	b.Close(context.Background())
	b.cancel()
	produce(24, 36)
	e.start(cfg)
	waitJS(t, ctx, "36 deliveries after a kill", `window.got.length >= 36`)
	time.Sleep(200 * time.Millisecond) // a duplicate would show up by now
	wantPerRecipient(t, got(), wantUser, wantChannel)

	kinds, _ := chromedp.Run(ctx, chromedp.Evaluate[[]string](`window.kinds`))
	if !slices.Contains(kinds, "reconnect") {
		t.Fatalf("the page never got a reconnect event: %v", kinds)
	}

	// Beacons: flush what is pending (web-vitals report TTFB and FCP on
	// load, the others when the page is hidden), then read rum.beacons.
	chromedp.Run(ctx, chromedp.Evaluate[bool](`window.stream.flush()`))
	lagged := map[string]bool{}
	vitals := map[events.VitalName]bool{}
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.kt.Seeds...), kgo.ConsumeTopics(e.beacons), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	deadline := time.Now().Add(30 * time.Second)
	for len(lagged) < len(wantUser)+len(wantChannel) || !vitals[events.VitalTTFB] {
		if time.Now().After(deadline) {
			state, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify({seq: window.stream.rum.seq, metrics: window.stream.rum.metrics, lags: window.stream.rum.lags.length})`))
			t.Logf("client RUM state: %s", state)
			t.Fatalf("beacons: lags of %d deliveries (want %d), vitals %v", len(lagged), len(wantUser)+len(wantChannel), vitals)
		}
		pctx, pcancel := context.WithTimeout(context.Background(), time.Second)
		fs := cl.PollFetches(pctx)
		pcancel()
		for _, r := range fs.Records() {
			ev, _, err := e.codec.DecodeEvent(context.Background(), r.Value)
			if err != nil {
				t.Fatalf("beacon does not decode: %v", err)
			}
			b := ev.(*events.RumBeacon)
			if b.Route != "/test/:id" || b.UserHash == "" || b.UserHash == "nora" {
				t.Fatalf("beacon route %q user_hash %q", b.Route, b.UserHash)
			}
			for _, l := range b.SSELags {
				lagged[l.EventID] = true
			}
			for _, m := range b.Metrics {
				vitals[m.Name] = true
			}
		}
		chromedp.Run(ctx, chromedp.Evaluate[bool](`window.stream.flush()`))
	}
	for _, id := range append(wantUser, wantChannel...) {
		if !lagged[id] {
			t.Fatalf("no lag beacon for delivery %s", id)
		}
	}
	if n, _ := chromedp.Run(ctx, chromedp.Evaluate[int](`window.domEvents`)); n != len(got()) {
		t.Fatalf("freshet:delivery DOM events: %d, deliveries %d", n, len(got()))
	}

	// Leaving the page: an interaction first (for INP), then the page is
	// hidden and unloaded, and the client sends what is left with
	// navigator.sendBeacon: LCP and CLS are reported then.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("h1"))); err != nil {
		t.Fatal(err)
	}
	// The interaction reaches web-vitals' observer as a performance entry
	// after the next frame; leaving the page before that left INP with no
	// interaction to report (a flaky failure under load).
	for wait := time.Now().Add(5 * time.Second); time.Now().Before(wait); time.Sleep(50 * time.Millisecond) {
		if seen, _ := chromedp.Run(ctx, chromedp.Evaluate[bool](`performance.getEntriesByType("first-input").length > 0`)); seen {
			break
		}
	}
	time.Sleep(200 * time.Millisecond) // the observer's callback, after the entry
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(30 * time.Second)
	for !vitals[events.VitalLCP] || !vitals[events.VitalCLS] || !vitals[events.VitalINP] {
		if time.Now().After(deadline) {
			t.Fatalf("no beacon with LCP, CLS and INP after the page was left: vitals %v", vitals)
		}
		pctx, pcancel := context.WithTimeout(context.Background(), time.Second)
		fs := cl.PollFetches(pctx)
		pcancel()
		for _, r := range fs.Records() {
			ev, _, err := e.codec.DecodeEvent(context.Background(), r.Value)
			if err != nil {
				t.Fatalf("beacon does not decode: %v", err)
			}
			for _, m := range ev.(*events.RumBeacon).Metrics {
				vitals[m.Name] = true
			}
		}
	}
	t.Logf("page events: %v; vitals in beacons: %v", kinds, vitals)
	if err := chromedp.Cancel(ctx); err != nil { // closes the browser cleanly
		t.Errorf("close the browser: %v", err)
	}
}

// waitJS polls expr in the page until it is true.
func waitJS(t *testing.T, ctx context.Context, what, expr string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
		if err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			kinds, _ := chromedp.Run(ctx, chromedp.Evaluate[[]string](`window.kinds`))
			n, _ := chromedp.Run(ctx, chromedp.Evaluate[int](`window.got.length`))
			t.Fatalf("timed out waiting for %s: %d deliveries, events %v", what, n, kinds)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// freeAddr returns a loopback address no one listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

const prSetChildSubreaper = 36

// reapChildren waits for every child process left (up to 5s).
func reapChildren(t *testing.T) {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		switch {
		case err == syscall.ECHILD:
			return
		case err != nil:
			t.Logf("wait4: %v", err)
			return
		case pid == 0:
			time.Sleep(20 * time.Millisecond)
		}
	}
	t.Error("child processes still running 5s after the browser closed")
}
