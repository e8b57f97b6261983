package stack

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/jackc/pgx/v5"

	"github.com/freshet/freshet/pkg/testenv"
)

// UpdateDemoPNGEnv set to 1 makes TestDemoInBrowser write its screenshot to
// docs/demo.png (the README's picture of the demo).
const UpdateDemoPNGEnv = "FRESHET_UPDATE_DEMO_PNG"

// TestDemoInBrowser runs `make run`'s program with every service and uses
// the demo page (the origin's /demo, through Varnish) in headless Chromium
// as a person would: u1's live feed opens; a title saved in the page's form
// shows up in the feed with its freshness in ms, and the edge panel shows
// the page fresh from Varnish; the psql edit the runner prints does the
// same. It checks the text on the page, not the network.
func TestDemoInBrowser(t *testing.T) {
	requirePackages(t)
	ctx := testenv.Browser(t)
	bin := buildRunner(t)
	st := newStackEnv(t, "all")
	r := startRunner(t, bin, st.env)
	r.waitFor(t, "all parts ready", readyWait)
	r.waitFor(t, "logs: ", 10*time.Second) // the last line of the hints
	edge := fmt.Sprintf("http://127.0.0.1:%d", st.ports[3])
	if !strings.Contains(r.all.String(), "demo: open "+edge+"/demo") {
		t.Fatalf("the runner does not print the demo's address:\n%s", r.all)
	}
	psqlEdit := regexp.MustCompile(`make it fresh: psql '[^']+' -c "([^"]+)"`).FindStringSubmatch(r.all.String())
	if psqlEdit == nil {
		t.Fatalf("the runner does not print the psql edit:\n%s", r.all)
	}

	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		actx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := chromedp.Do(actx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		actx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		s, err := chromedp.Run(actx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("read %s: %v", sel, err)
		}
		return s
	}
	// waitText waits until the visible text of sel holds every want.
	waitText := func(sel string, want ...string) string {
		t.Helper()
		deadline := time.Now().Add(90 * time.Second)
		for {
			s := text(sel)
			ok := true
			for _, w := range want {
				ok = ok && strings.Contains(s, w)
			}
			if ok {
				return s
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s never showed %q; it shows %q. The page:\n%s", sel, want, s, text("body"))
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	do("open the demo", chromedp.Navigate(edge+"/demo"))
	waitText("#status", "Live: u1")
	waitText("#edge-title", "Hello, Freshet")

	// An edit in the page's form.
	title := fmt.Sprintf("Fresh from the demo %d", time.Now().UnixNano()%1e6)
	do("edit a title", chromedp.SendKeys(chromedp.CSS("#title"), title), chromedp.Click(chromedp.CSS("#edit button")))
	feed := waitText("#feed", title, "fresh in ", " ms")
	if !regexp.MustCompile(regexp.QuoteMeta(title) + ` fresh in \d+ ms`).MatchString(feed) {
		t.Errorf("the feed does not show the update with its freshness in ms: %q", feed)
	}
	waitText("#edge-title", title)
	waitText("#edge-fresh", "Edge copy fresh", "ms after the commit")

	// The psql edit the runner prints.
	conn, err := pgx.Connect(context.Background(), st.postgresDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), psqlEdit[1]); err != nil {
		t.Fatalf("the printed edit %q: %v", psqlEdit[1], err)
	}
	newTitle := regexp.MustCompile(`title = '([^']+)'`).FindStringSubmatch(psqlEdit[1])[1]
	waitText("#feed", newTitle, "fresh in ")
	waitText("#edge-title", newTitle)
	waitText("#edge-fresh", "Edge copy fresh", "ms after the commit")

	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(sctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Fatalf("the screenshot is not a PNG (%d bytes)", len(png))
	}
	if os.Getenv(UpdateDemoPNGEnv) == "1" {
		if err := os.WriteFile(filepath.Join(repoRoot, "docs", "demo.png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r.stop(t, syscall.SIGINT)
	if left := processesUnder(st.dir); len(left) > 0 {
		t.Fatalf("processes left after Ctrl-C:\n%s", strings.Join(left, "\n"))
	}
}
