package demo_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/freshet/freshet/pkg/config"
	"github.com/freshet/freshet/pkg/pipeline"
	"github.com/freshet/freshet/pkg/testenv"
	"github.com/freshet/freshet/services/origin/internal/demo"
)

func TestMain(m *testing.M) {
	testenv.Main(m, testenv.NeedPostgres)
}

const (
	repoRoot = "../../../../"
	secret   = "a-demo-secret-of-at-least-32-bytes!!"
)

// env runs the demo over a database loaded with pipelines/freshet.sql, in
// front of a stand-in gateway that echoes what it was asked.
type env struct {
	t    *testing.T
	db   *pgxpool.Pool
	srv  *httptest.Server
	gate *httptest.Server
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	db, err := pgxpool.New(ctx, testenv.PostgresWith(t, repoRoot+"pipelines/freshet.sql"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	p, err := pipeline.Load(repoRoot + "pipelines/freshet.yaml")
	if err != nil {
		t.Fatal(err)
	}
	gate := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "gateway: "+r.URL.RequestURI())
	}))
	t.Cleanup(gate.Close)
	gw, _ := url.Parse(gate.URL)
	d, err := demo.New(db, p, "", demo.Config{Users: []string{"u1", "u2"}, Gateway: gw, Secret: config.NewSecret(secret),
		Issuer: "freshet", Audience: "freshet-sse", TokenTTL: time.Minute, Channels: []string{"breaking"}})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	d.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &env{t: t, db: db, srv: srv, gate: gate}
}

func (e *env) post(path, ctype, body string, hdr ...string) (int, map[string]any) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+path, strings.NewReader(body))
	req.Header.Set("Content-Type", ctype)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		e.t.Errorf("POST %s: Cache-Control %q; want no-store", path, cc)
	}
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

func TestToken(t *testing.T) {
	e := newEnv(t)
	code, m := e.post("/demo/token", "application/json", `{"user":"u1"}`, "Origin", e.srv.URL)
	if code != http.StatusOK {
		t.Fatalf("token for u1: %d %v", code, m)
	}
	var c struct {
		jwt.RegisteredClaims
		Channels []string `json:"channels"`
	}
	_, err := jwt.ParseWithClaims(m["token"].(string), &c, func(*jwt.Token) (any, error) { return []byte(secret), nil },
		jwt.WithValidMethods([]string{"HS256"}), jwt.WithIssuer("freshet"), jwt.WithAudience("freshet-sse"), jwt.WithExpirationRequired())
	if err != nil || c.Subject != "u1" || len(c.Channels) != 1 || c.ExpiresAt.After(time.Now().Add(time.Minute+time.Second)) {
		t.Errorf("token: %v, claims %+v", err, c)
	}
	for _, bad := range []struct {
		ctype, body, origin string
		code                int
	}{
		{"application/json", `{"user":"u3"}`, "", http.StatusForbidden},                    // not a demo user
		{"text/plain", `{"user":"u1"}`, "", http.StatusUnsupportedMediaType},               // a cross-site form could send it
		{"application/json", `{"user":"u1"}`, "http://evil.example", http.StatusForbidden}, // another site's page
		{"application/json", `{"user":`, "", http.StatusBadRequest},
	} {
		hdr := []string{}
		if bad.origin != "" {
			hdr = append(hdr, "Origin", bad.origin)
		}
		if code, m := e.post("/demo/token", bad.ctype, bad.body, hdr...); code != bad.code || m["token"] != nil {
			t.Errorf("%+v: %d %v; want %d and no token", bad, code, m, bad.code)
		}
	}
}

func TestEdit(t *testing.T) {
	e := newEnv(t)
	before := time.Now().UnixMilli()
	code, m := e.post("/demo/edit", "application/json", `{"id":"1","title":"Edited in the demo"}`)
	if code != http.StatusOK || m["url"] != "/tech/hello-freshet" || m["committed_at"].(float64) < float64(before-1000) {
		t.Fatalf("edit: %d %v", code, m)
	}
	var title string
	if err := e.db.QueryRow(context.Background(), "select title from content where id = 1").Scan(&title); err != nil || title != "Edited in the demo" {
		t.Errorf("title in the database: %q %v", title, err)
	}
	if code, _ := e.post("/demo/edit", "application/json", `{"id":"99","title":"x"}`); code != http.StatusNotFound {
		t.Errorf("edit of a missing row: %d; want 404", code)
	}
	if code, _ := e.post("/demo/edit", "application/json", `{"id":"1","title":"  "}`); code != http.StatusBadRequest {
		t.Errorf("empty title: %d; want 400", code)
	}
}

func TestPageAndProxy(t *testing.T) {
	e := newEnv(t)
	resp, err := http.Get(e.srv.URL + "/demo")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	page := string(b)
	for _, want := range []string{"Freshet live demo", `<option value="u1">u1 (follows {author:ada}`, `data-url="/tech/hello-freshet">1: Hello, Freshet</option>`, `src="/v1/client.js"`} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(page, secret) || resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("page: Cache-Control %q, or it holds the secret", resp.Header.Get("Cache-Control"))
	}
	resp, err = http.Get(e.srv.URL + "/v1/stream?token=t")
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "gateway: /v1/stream?token=t" {
		t.Errorf("proxied stream: %q", b)
	}
	e.gate.Close()
	resp, err = http.Get(e.srv.URL + "/v1/client.js")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway {
		t.Errorf("gateway down: %s; want 502", resp.Status)
	}
}

// TestStreamOutlivesWriteTimeout: a proxied stream is not cut by the
// server's write timeout, which bounds every other response.
func TestStreamOutlivesWriteTimeout(t *testing.T) {
	gate := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range 4 {
			fmt.Fprintf(w, ": heartbeat %d\n\n", i)
			w.(http.Flusher).Flush()
			time.Sleep(200 * time.Millisecond)
		}
	}))
	defer gate.Close()
	gw, _ := url.Parse(gate.URL)
	p, err := pipeline.Load(repoRoot + "pipelines/freshet.yaml")
	if err != nil {
		t.Fatal(err)
	}
	d, err := demo.New(&pgxpool.Pool{}, p, "", demo.Config{Users: []string{"u1"}, Gateway: gw, Secret: config.NewSecret(secret), TokenTTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	d.Register(mux)
	srv := httptest.NewUnstartedServer(mux)
	srv.Config.WriteTimeout = 300 * time.Millisecond
	srv.Start()
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/v1/stream")
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || !strings.Contains(string(b), ": heartbeat 3") {
		t.Fatalf("stream cut: %v after %q", err, b)
	}
}
