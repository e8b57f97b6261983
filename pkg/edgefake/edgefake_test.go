package edgefake

import (
	"net/http"
	"strings"
	"testing"
)

func post(t *testing.T, url string, body string, hdr ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

func TestFastly(t *testing.T) {
	s := NewFastly(Options{Token: "tok", ID: "svc", MaxPerRequest: 2, Rate: 0.001, Burst: 2})
	defer s.Close()
	keys := "/service/svc/purge"
	tests := []struct {
		name, path string
		hdr        []string
		want       int
	}{
		{"no token", keys, []string{"Surrogate-Key", "a"}, 401},
		{"keys, soft", keys, []string{"Fastly-Key", "tok", "Surrogate-Key", "a b", "Fastly-Soft-Purge", "1"}, 200},
		{"over the limit", keys, []string{"Fastly-Key", "tok", "Surrogate-Key", "a b c"}, 400},
		{"rate", "/purge/www.example.com/x", []string{"Fastly-Key", "tok"}, 429},
	}
	for _, tt := range tests {
		if resp := post(t, s.URL()+tt.path, "", tt.hdr...); resp.StatusCode != tt.want {
			t.Errorf("%s: %d, want %d", tt.name, resp.StatusCode, tt.want)
		} else if tt.want == 429 && resp.Header.Get("Retry-After") == "" {
			t.Errorf("%s: no Retry-After", tt.name)
		}
	}
	ps := s.Purges()
	if len(ps) != 1 || !ps[0].Soft || len(ps[0].Keys) != 2 || s.Purged("b") != 1 || len(s.Violations()) != 1 || s.Refused() != 1 || s.Throttled() != 1 {
		t.Errorf("purges %+v, violations %q, refused %d, throttled %d", ps, s.Violations(), s.Refused(), s.Throttled())
	}
}

func TestCloudflare(t *testing.T) {
	s := NewCloudflare(Options{Token: "tok", ID: "z", MaxPerRequest: 2})
	defer s.Close()
	bearer := []string{"Authorization", "Bearer tok"}
	tests := []struct {
		name, body string
		hdr        []string
		want       int
	}{
		{"bad token", `{"tags": ["a"]}`, []string{"Authorization", "Bearer nope"}, 403},
		{"tags", `{"tags": ["a", "b"]}`, bearer, 200},
		{"files and prefixes", `{"files": ["https://s/x", {"url": "https://s/y"}]}`, bearer, 200},
		{"two kinds", `{"tags": ["a"], "prefixes": ["s/p"]}`, bearer, 400},
		{"over the limit", `{"tags": ["a", "b", "c"]}`, bearer, 400},
		{"not JSON", `{`, bearer, 400},
	}
	for _, tt := range tests {
		if resp := post(t, s.URL()+"/zones/z/purge_cache", tt.body, tt.hdr...); resp.StatusCode != tt.want {
			t.Errorf("%s: %d, want %d", tt.name, resp.StatusCode, tt.want)
		}
	}
	s.FailNext(1, http.StatusTooManyRequests, 1500_000_000)
	if resp := post(t, s.URL()+"/zones/z/purge_cache", `{"tags": ["a"]}`, bearer...); resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "2" {
		t.Errorf("FailNext: %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if s.Purged("https://s/y") != 1 || s.Purged("b") != 1 || len(s.Violations()) != 3 {
		t.Errorf("purges %+v, violations %q", s.Purges(), s.Violations())
	}
}
