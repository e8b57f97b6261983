package origin_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/freshet/freshet/pkg/origin"
	"github.com/freshet/freshet/pkg/pipeline"
	"github.com/freshet/freshet/pkg/servers"
	"github.com/freshet/freshet/pkg/testenv"
)

func TestMain(m *testing.M) {
	testenv.Main(m, testenv.NeedPostgres)
}

const repoRoot = "../../"

// env is a database loaded with pipelines/freshet.sql, the origin over it
// on a real listener, and optionally Varnish with deploy/varnish/default.vcl
// in front.
type env struct {
	t      testing.TB
	db     *pgxpool.Pool
	p      *pipeline.Pipeline
	origin string // base URL of the origin
	edge   *servers.Varnish
}

func newEnv(t testing.TB, opts origin.Options, withVarnish bool) *env {
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
	h, err := origin.NewHandler(db, p, opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	e := &env{t: t, db: db, p: p, origin: srv.URL}
	if withVarnish {
		e.edge = testenv.Varnish(t, testenv.ReferenceVCL(t, srv.Listener.Addr().String()))
	}
	return e
}

// answer is a response read whole.
type answer struct {
	code int
	h    http.Header
	body string
}

// do sends method url with the headers given as name, value pairs.
func (e *env) do(method, url string, hdr ...string) answer {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if strings.EqualFold(hdr[i], "Host") {
			req.Host = hdr[i+1]
			continue
		}
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return answer{code: resp.StatusCode, h: resp.Header, body: string(b)}
}

// get fetches path through Varnish.
func (e *env) get(path string, hdr ...string) answer {
	e.t.Helper()
	return e.do(http.MethodGet, e.edge.URL()+path, hdr...)
}

// cached fetches path through Varnish and fails unless the answer is a 200
// with X-Cache want (HIT or MISS).
func (e *env) cached(path, want string, hdr ...string) answer {
	e.t.Helper()
	a := e.get(path, hdr...)
	if a.code != http.StatusOK || a.h.Get("X-Cache") != want {
		e.t.Fatalf("GET %s through varnish: %d, X-Cache %q; want 200 %s\n%s", path, a.code, a.h.Get("X-Cache"), want, a.body)
	}
	return a
}

// purge sends a purge request to Varnish and fails unless it answers 200.
func (e *env) purge(method, path string, hdr ...string) answer {
	e.t.Helper()
	a := e.do(method, e.edge.URL()+path, hdr...)
	if a.code != http.StatusOK {
		e.t.Fatalf("%s %s %v: %d %s", method, path, hdr, a.code, a.body)
	}
	return a
}

func (e *env) exec(sql string, args ...any) {
	e.t.Helper()
	if _, err := e.db.Exec(context.Background(), sql, args...); err != nil {
		e.t.Fatalf("%s: %v", sql, err)
	}
}
