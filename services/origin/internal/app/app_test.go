package app_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/freshet/freshet/pkg/config"
	"github.com/freshet/freshet/pkg/lifecycle"
	"github.com/freshet/freshet/pkg/testenv"
	"github.com/freshet/freshet/services/origin/internal/app"
)

func TestMain(m *testing.M) {
	// TestSecretsNeverLogged runs the origin as a separate process: this
	// binary, in service mode.
	testenv.ServiceMain(m, func() { lifecycle.Main(app.Name, app.Main(nil, os.Stdout)) }, testenv.NeedPostgres)
}

var repoRoot = filepath.Join("..", "..", "..", "..")

func TestCheck(t *testing.T) {
	var out bytes.Buffer
	if err := app.Main([]string{"check", filepath.Join(repoRoot, "pipelines", "freshet.yaml")}, &out)(context.Background()); err != nil {
		t.Fatalf("check of the repository's pipeline: %v", err)
	}
	if !strings.Contains(out.String(), "ok") {
		t.Errorf("check printed %q", out.String())
	}
	if err := app.Main([]string{"frobnicate"}, &out)(context.Background()); err == nil {
		t.Error("an unknown command was accepted")
	}
}

func TestConfigErrorsNameTheVariable(t *testing.T) {
	for v, want := range map[string]string{
		"FRESHET_POSTGRES_DSN=mysql://x":     "FRESHET_POSTGRES_DSN",
		"FRESHET_ORIGIN_LIST_LIMIT=0":        "FRESHET_ORIGIN_LIST_LIMIT",
		"FRESHET_ORIGIN_S_MAXAGE=-1s":        "FRESHET_ORIGIN_S_MAXAGE",
		"FRESHET_ORIGIN_QUERY_TIMEOUT=never": "FRESHET_ORIGIN_QUERY_TIMEOUT",
		"FRESHET_ORIGIN_DEMO=true":           "FRESHET_AUTH_HS256_SECRET", // demo mode needs the gateway's secret
	} {
		var cfg app.Config
		err := config.Load(&cfg, config.WithLookup(lookup(v)))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v; want an error naming %s", v, err, want)
		}
	}
}

func lookup(vars ...string) config.LookupFunc {
	m := map[string]string{}
	for _, v := range vars {
		k, val, _ := strings.Cut(v, "=")
		m[k] = val
	}
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// start runs the service in process with vars and returns its page and
// admin addresses; it is stopped when the test ends.
func start(t *testing.T, vars ...string) (pages, admin string) {
	t.Helper()
	pages, admin = freePort(t), freePort(t)
	vars = append(vars, "FRESHET_ORIGIN_ADDR="+pages, "FRESHET_ADMIN_ADDR="+admin,
		"FRESHET_PIPELINE="+filepath.Join(repoRoot, "pipelines", "freshet.yaml"))
	var cfg app.Config
	if err := config.Load(&cfg, config.WithLookup(lookup(vars...))); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx, cfg, zap.NewNop(), prometheus.NewRegistry()) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	waitFor(t, "http://"+admin+"/healthz", http.StatusOK)
	return pages, admin
}

// waitFor polls url until it answers code, and returns the body.
func waitFor(t *testing.T, url string, code int) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == code {
				return string(b)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never answered %d (last: %v)", url, code, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestServesPages runs the service over a database loaded with
// pipelines/freshet.sql: ready, a page with its keys and the configured
// Cache-Control, and metrics.
func TestServesPages(t *testing.T) {
	dsn := testenv.PostgresWith(t, filepath.Join(repoRoot, "pipelines", "freshet.sql"))

	pages, admin := start(t, "FRESHET_POSTGRES_DSN="+dsn, "FRESHET_ORIGIN_S_MAXAGE=90s", "FRESHET_ORIGIN_STALE_WHILE_REVALIDATE=0s")
	waitFor(t, "http://"+admin+"/readyz", http.StatusOK)
	resp, err := http.Get("http://" + pages + "/tech/hello-freshet")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), "Hello, Freshet") {
		t.Fatalf("page: %s\n%s", resp.Status, b)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "public, max-age=0, s-maxage=90" {
		t.Errorf("Cache-Control %q; want s-maxage 90 and no stale-while-revalidate", cc)
	}
	if k := resp.Header.Get("Xkey"); !strings.Contains(k, "content:1") {
		t.Errorf("xkey %q", k)
	}
	// Demo mode is off unless configured.
	demo, err := http.Get("http://" + pages + "/demo")
	if err != nil {
		t.Fatal(err)
	}
	demo.Body.Close()
	if demo.StatusCode != http.StatusNotFound {
		t.Errorf("/demo without demo mode: %s; want 404", demo.Status)
	}
	if m := waitFor(t, "http://"+admin+"/metrics", http.StatusOK); !strings.Contains(m, "go_goroutines") {
		t.Errorf("/metrics: %.200s", m)
	}
}

// TestNotReadyWithoutDatabase: alive, but not ready, while the database
// cannot be reached; the reason names it without the DSN's password.
func TestNotReadyWithoutDatabase(t *testing.T) {
	dead := freePort(t) // nothing listens there
	_, admin := start(t, fmt.Sprintf("FRESHET_POSTGRES_DSN=postgres://postgres:s3cret-pw@%s/freshet?sslmode=disable&connect_timeout=1", dead))
	body := waitFor(t, "http://"+admin+"/readyz", http.StatusServiceUnavailable)
	if !strings.Contains(body, "database") || strings.Contains(body, "s3cret-pw") {
		t.Errorf("/readyz: %s", body)
	}
	waitFor(t, "http://"+admin+"/healthz", http.StatusOK)
}
