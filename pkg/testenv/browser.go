package testenv

import (
	"context"
	"os"
	"os/exec"
	"testing"

	"github.com/chromedp/chromedp"
)

// ChromiumInstall is the command that installs the browser of Browser.
const ChromiumInstall = "apt-get install -y chromium"

// Chromium returns the path of a Chromium (or Chrome) binary, or skips the
// test with the command that installs it (fails it when
// FRESHET_REQUIRE_SERVERS=1, and skips in -short mode).
func Chromium(tb testing.TB) string {
	tb.Helper()
	if testing.Short() {
		tb.Skip("starts a browser; skipped in -short mode")
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if requireServers() {
		tb.Fatalf("chromium is not installed (%s=1): %s", RequireServersEnv, ChromiumInstall)
	}
	tb.Skipf("chromium is not installed: %s", ChromiumInstall)
	return ""
}

// Browser starts a headless Chromium of the test's own (a fresh profile in
// a temporary folder, no background traffic) and returns a chromedp
// context for it; the browser is stopped when the test ends. The context
// has no deadline (a deadline would stop the browser): bound each action.
func Browser(tb testing.TB) context.Context {
	tb.Helper()
	path := Chromium(tb)
	dir, err := os.MkdirTemp("", "freshet-chromium-")
	if err != nil {
		tb.Fatal(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(dir),
		chromedp.WindowSize(1280, 860),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	tb.Cleanup(func() {
		cancel()
		cancelAlloc() // stops the browser and waits for it
		os.RemoveAll(dir)
	})
	if err := chromedp.Do(ctx); err != nil { // start it now, so a broken browser fails here
		tb.Fatalf("testenv: start chromium: %v", err)
	}
	return ctx
}
