package servers_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/freshet/freshet/pkg/servers"
)

// xkeyVCL caches everything from the backend at host:port, purges by url
// (PURGE <url>) or by surrogate key (PURGE with an xkey header), and says
// HIT or MISS in X-Cache.
const xkeyVCL = `vcl 4.1;
import xkey;

backend origin { .host = "%s"; .port = "%s"; }

sub vcl_recv {
    if (req.method == "PURGE") {
        if (req.http.xkey) {
            set req.http.n-gone = xkey.purge(req.http.xkey);
            return (synth(200, "Purged " + req.http.n-gone));
        }
        return (purge);
    }
}

sub vcl_deliver {
    unset resp.http.xkey;
    if (obj.hits > 0) {
        set resp.http.X-Cache = "HIT";
    } else {
        set resp.http.X-Cache = "MISS";
    }
}
`

func TestVarnish(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts a real server")
	}
	ctx := ctxFor(t, 60*time.Second)
	var backendHits atomic.Int64
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := backendHits.Add(1)
		w.Header().Set("Cache-Control", "max-age=300")
		w.Header().Set("xkey", "content:1 section:news")
		fmt.Fprintf(w, "render %d of %s", n, r.URL.Path)
	}))
	defer backend.Close()
	host, port, _ := net.SplitHostPort(strings.TrimPrefix(backend.URL, "http://"))

	v, err := servers.StartVarnish(ctx, servers.VarnishOptions{VCL: fmt.Sprintf(xkeyVCL, host, port)})
	startOrSkip(t, err)
	defer v.Stop(context.Background())

	// Each step sends a request and checks X-Cache and how many times the
	// backend was reached so far.
	steps := []struct {
		name       string
		method     string
		header     http.Header
		wantStatus int
		wantCache  string // "" for purges
		wantHits   int64
	}{
		{"first GET misses", http.MethodGet, nil, 200, "MISS", 1},
		{"second GET hits", http.MethodGet, nil, 200, "HIT", 1},
		{"PURGE by xkey", "PURGE", http.Header{"Xkey": {"content:1"}}, 200, "", 1},
		{"GET after key purge misses", http.MethodGet, nil, 200, "MISS", 2},
		{"GET hits again", http.MethodGet, nil, 200, "HIT", 2},
		{"PURGE by url", "PURGE", nil, 200, "", 2},
		{"GET after url purge misses", http.MethodGet, nil, 200, "MISS", 3},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(ctx, s.method, v.URL()+"/articles/1", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Host = "www.example.test" // a url PURGE matches url and Host
			for k, vs := range s.header {
				req.Header[k] = vs
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != s.wantStatus {
				t.Fatalf("status %d, want %d (body %q)", resp.StatusCode, s.wantStatus, body)
			}
			if got := resp.Header.Get("X-Cache"); got != s.wantCache {
				t.Errorf("X-Cache %q, want %q", got, s.wantCache)
			}
			if resp.Header.Get("xkey") != "" {
				t.Errorf("xkey header reached the client")
			}
			if got := backendHits.Load(); got != s.wantHits {
				t.Errorf("backend reached %d times, want %d", got, s.wantHits)
			}
		})
	}

	// Workers publish their counters when idle: wait for them to add up.
	var stats map[string]uint64
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if stats, err = v.Stats(ctx); err != nil {
			t.Fatal(err)
		}
		if stats["MAIN.cache_hit"] == 2 && stats["MAIN.cache_miss"] == 3 || time.Now().After(deadline) {
			break
		}
	}
	if stats["MAIN.cache_hit"] != 2 || stats["MAIN.cache_miss"] != 3 {
		t.Errorf("varnishstat: cache_hit %d, cache_miss %d; want 2 and 3", stats["MAIN.cache_hit"], stats["MAIN.cache_miss"])
	}
	out, err := v.Adm(ctx, "status")
	if err != nil || !strings.Contains(out, "running") {
		t.Errorf("varnishadm status = %q, %v", out, err)
	}

	pid, addrs, dir := v.Pid(), []string{v.Addr(), v.AdminAddr()}, v.Dir()
	stopAndCheckGone(t, v, pid, addrs, dir)
}

func TestVarnishBadVCL(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("runs varnishd")
	}
	const backend = `backend b { .host = "127.0.0.1"; .port = "9"; }`
	tests := []struct {
		name string
		vcl  string
		want []string // substrings of the compiler's message
	}{
		{"unknown symbol", "vcl 4.1;\n" + backend + "\nsub vcl_recv { bogus(); }\n",
			[]string{"Message from VCC-compiler", "Symbol not found: 'bogus'", "Line 3"}},
		{"unknown vmod", "vcl 4.1;\nimport nosuchvmod;\n" + backend + "\n",
			[]string{"nosuchvmod"}},
		{"no version line", backend + "\n",
			[]string{"VCL version declaration missing"}},
		{"syntax error", "vcl 4.1;\n" + backend + "\nsub vcl_recv {\n",
			[]string{"Message from VCC-compiler"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := ctxFor(t, 30*time.Second)
			err := servers.CheckVCL(ctx, tt.vcl)
			skipIfNotInstalled(t, err)
			var vclErr *servers.VCLError
			if !errors.As(err, &vclErr) || !errors.Is(err, servers.ErrBadVCL) {
				t.Fatalf("CheckVCL err = %v; want a *VCLError", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(vclErr.Message, w) {
					t.Errorf("message lacks %q:\n%s", w, vclErr.Message)
				}
			}

			dir := filepath.Join(openTempDir(t), "varnish")
			_, err = servers.StartVarnish(ctx, servers.VarnishOptions{VCL: tt.vcl, Dir: dir})
			if !errors.As(err, &vclErr) {
				t.Fatalf("StartVarnish err = %v; want a *VCLError", err)
			}
			if _, err := os.Stat(filepath.Join(dir, "work", "_.pid")); err == nil {
				t.Errorf("varnishd ran with a bad VCL")
			}
		})
	}

	t.Run("good VCL passes", func(t *testing.T) {
		err := servers.CheckVCL(ctxFor(t, 30*time.Second), fmt.Sprintf(xkeyVCL, "127.0.0.1", "9"))
		skipIfNotInstalled(t, err)
		if err != nil {
			t.Fatal(err)
		}
	})
	t.Run("empty VCL is refused", func(t *testing.T) {
		if _, err := servers.StartVarnish(ctxFor(t, 5*time.Second), servers.VarnishOptions{}); err == nil {
			t.Fatal("started without a VCL")
		}
	})
}

// TestVarnishAccessorsFormat guards the accessors a client builds on, and
// that Params reach varnishd.
func TestVarnishAccessorsFormat(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts a real server")
	}
	ctx := ctxFor(t, 30*time.Second)
	v, err := servers.StartVarnish(ctx, servers.VarnishOptions{VCL: fmt.Sprintf(xkeyVCL, "127.0.0.1", "9"), Params: map[string]string{"default_ttl": "5"}})
	startOrSkip(t, err)
	defer v.Stop(context.Background())
	u, err := url.Parse(v.URL())
	if err != nil || u.Host != v.Addr() || u.Scheme != "http" {
		t.Fatalf("URL() = %q (%v), Addr() = %q", v.URL(), err, v.Addr())
	}
	out, err := v.Adm(ctx, "param.show", "default_ttl")
	if err != nil || !strings.Contains(out, "Value is: 5") {
		t.Fatalf("param default_ttl not applied: %q, %v", out, err)
	}
	if !strings.HasPrefix(v.WorkDir(), v.Dir()) || filepath.Dir(v.VCLFile()) != v.Dir() {
		t.Fatalf("WorkDir %s and VCLFile %s not under Dir %s", v.WorkDir(), v.VCLFile(), v.Dir())
	}
}
