package origin_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/freshet/freshet/pkg/origin"
)

// Pages rendered by the handler straight from Postgres (a query, the keys,
// the body and its ETag): what a cache miss costs the origin.
func BenchmarkContentPage(b *testing.B) { benchPage(b, "/tech/hello-freshet", "") }
func BenchmarkContentJSON(b *testing.B) { benchPage(b, "/tech/hello-freshet", "application/json") }
func BenchmarkTagList(b *testing.B)     { benchPage(b, "/tag/streaming", "") }

func benchPage(b *testing.B, path, accept string) {
	e := newEnv(b, origin.Options{}, false)
	h, err := origin.NewHandler(e.db, e.p, origin.Options{})
	if err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, path, nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("%s: %d", path, w.Code)
		}
	}
}
