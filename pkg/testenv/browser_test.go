package testenv_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/freshet/freshet/pkg/testenv"
)

// TestBrowser: the browser runs a page's script and shows its text.
func TestBrowser(t *testing.T) {
	page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, `<!doctype html><p id="x">static</p><script>document.getElementById("x").textContent = "from script"</script>`)
	}))
	defer page.Close()
	ctx := testenv.Browser(t)
	actx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(actx, chromedp.Navigate(page.URL)); err != nil {
		t.Fatal(err)
	}
	got, err := chromedp.Run(actx, chromedp.Text(chromedp.CSS("#x")))
	if err != nil || got != "from script" {
		t.Fatalf("text %q, %v; want the script's", got, err)
	}
}
