package web

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/freshet/freshet/pkg/testenv"
)

// The committed bundle is what the sources build to: npm ci with the locked
// versions (web-vitals, esbuild), then the build script, in a copy of this
// folder. A change to src/ without `npm run build` (or a hand edit of
// dist/) fails here.
func TestBundleIsBuiltFromSources(t *testing.T) {
	if testing.Short() {
		t.Skip("runs npm")
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		if os.Getenv(testenv.RequireServersEnv) == "1" {
			t.Fatalf("npm is not installed (%s=1): apt-get install -y nodejs npm", testenv.RequireServersEnv)
		}
		t.Skip("npm is not installed: apt-get install -y nodejs npm")
	}
	dir := t.TempDir()
	for _, f := range []string{"package.json", "package-lock.json", "src/client.js"} {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		os.MkdirAll(filepath.Join(dir, filepath.Dir(f)), 0o755)
		if err := os.WriteFile(filepath.Join(dir, f), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, args := range [][]string{
		{"ci", "--no-audit", "--no-fund", "--loglevel=error"},
		{"run", "build", "--silent"},
	} {
		cmd := exec.Command(npm, args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("npm %v: %v\n%s", args, err, out)
		}
	}
	built, err := os.ReadFile(filepath.Join(dir, "dist/client.js"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(built, Bundle()) {
		t.Fatalf("dist/client.js (%d bytes) is not what src/ builds to (%d bytes): run `npm ci && npm run build` in services/sse-gateway/web and commit dist/client.js", len(Bundle()), len(built))
	}
}

func TestHandler(t *testing.T) {
	srv := httptest.NewServer(Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/javascript; charset=utf-8" || resp.Header.Get("ETag") == "" {
		t.Fatalf("GET: %d %v", resp.StatusCode, resp.Header)
	}
	req, _ := http.NewRequest("GET", srv.URL, nil)
	req.Header.Set("If-None-Match", resp.Header.Get("ETag"))
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotModified {
		t.Fatalf("revalidation: %d", resp.StatusCode)
	}
	resp, err = http.Post(srv.URL, "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("POST: %d", resp.StatusCode)
	}
}
