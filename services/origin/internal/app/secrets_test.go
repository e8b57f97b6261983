package app_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/freshet/freshet/pkg/testenv"
)

// The database password, the JWT secret and the demo tokens never reach
// the logs: the origin, a separate process logging at debug level in demo
// mode, serves pages, mints a token, proxies a stream with the token in its
// query to a gateway, then to a gateway that is gone; its whole output then
// holds none of them.
func TestSecretsNeverLogged(t *testing.T) {
	const (
		password = "pw-never-logged-4711"
		secret   = "jwt-secret-never-logged-0123456789abcdef"
	)
	u, err := url.Parse(testenv.PostgresWith(t, filepath.Join(repoRoot, "pipelines", "freshet.sql")))
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword("postgres", password) // trust authentication ignores it
	asked := make(chan string, 10)
	gate := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked <- r.URL.RequestURI()
		io.WriteString(w, "event: ready\ndata: {}\n\n")
	}))
	defer gate.Close()
	pages := freePort(t)
	svc := testenv.StartService(t, testenv.ServiceOptions{Name: "origin", Env: []string{
		"FRESHET_PIPELINE=" + filepath.Join(repoRoot, "pipelines", "freshet.yaml"),
		"FRESHET_LOG_LEVEL=debug",
		"FRESHET_POSTGRES_DSN=" + u.String(),
		"FRESHET_ORIGIN_ADDR=" + pages,
		"FRESHET_ORIGIN_DEMO=true",
		"FRESHET_ORIGIN_DEMO_GATEWAY=" + gate.URL,
		"FRESHET_AUTH_HS256_SECRET=" + secret,
	}})
	base := "http://" + pages
	get := func(path string) int {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get("/tech/hello-freshet"); code != http.StatusOK {
		t.Fatalf("page: %d", code)
	}
	if code := get("/demo"); code != http.StatusOK {
		t.Fatalf("demo page: %d", code)
	}
	resp, err := http.Post(base+"/demo/token", "application/json", strings.NewReader(`{"user":"u1"}`))
	if err != nil {
		t.Fatal(err)
	}
	var tok struct{ Token string }
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || tok.Token == "" {
		t.Fatalf("token: %s %v", resp.Status, err)
	}
	resp.Body.Close()
	if code := get("/v1/stream?token=" + tok.Token); code != http.StatusOK {
		t.Fatalf("proxied stream: %d", code)
	}
	if got := <-asked; !strings.Contains(got, tok.Token) {
		t.Fatalf("the gateway was asked %q", got)
	}
	gate.Close()
	if code := get("/v1/stream?token=" + tok.Token); code != http.StatusBadGateway {
		t.Fatalf("stream with the gateway gone: %d; want 502", code)
	}
	svc.Stop(t)
	out := svc.Output()
	if !strings.Contains(out, "demo mode") {
		t.Fatalf("the output is not the origin's debug log:\n%s", out)
	}
	for name, s := range map[string]string{"database password": password, "JWT secret": secret, "demo token": tok.Token} {
		if strings.Contains(out, s) {
			t.Errorf("the %s is in the origin's output:\n%s", name, out)
		}
	}
}
