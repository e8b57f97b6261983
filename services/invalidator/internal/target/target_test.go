package target

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/freshet/freshet/pkg/config"
	"github.com/freshet/freshet/pkg/pipeline"
)

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0}, {"2", 2 * time.Second}, {" 1 ", time.Second}, {"0.5", 500 * time.Millisecond},
		{"-1", 0}, {"NaN", 0}, {"soon", 0}, {"99999999", time.Hour},
		{now.Add(3 * time.Second).Format(http.TimeFormat), 3 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
	}
	for _, tt := range tests {
		if got := ParseRetryAfter(tt.in, now); got != tt.want {
			t.Errorf("ParseRetryAfter(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

// FuzzParseRetryAfter: a header from outside never panics and never asks
// for a negative wait or more than an hour.
func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"", "1", "1.5", "-3", "1e308", "Wed, 21 Oct 2015 07:28:00 GMT", "NaN", "+Inf"} {
		f.Add(s)
	}
	now := time.Now()
	f.Fuzz(func(t *testing.T, s string) {
		if d := ParseRetryAfter(s, now); d < 0 || d > time.Hour {
			t.Fatalf("%q -> %s", s, d)
		}
	})
}

// A webhook sends its rendered body with its headers and bearer token; the
// errors it returns never hold the token.
func TestWebhookAndErrors(t *testing.T) {
	var got *http.Request
	var body string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r
		b, _ := io.ReadAll(r.Body)
		body = string(b)
		if r.Header.Get("X-Fail") != "" {
			w.WriteHeader(http.StatusForbidden)
		}
	}))
	defer srv.Close()
	p, err := pipeline.Parse("w.yaml", []byte(`invalidation:
  targets:
    - name: hook
      type: http
      address: `+srv.URL+`/purge
      method: PUT
      token_env: HOOK_TOKEN
      headers: {X-Site: blog}
      header_env: {X-Api-Key: HOOK_KEY}
      base_url: https://www.example.com
      body: '{"tags": "@keys", "paths": "@urls", "soft": "@soft", "by": "@target"}'
`))
	if err != nil {
		t.Fatal(err)
	}
	env := config.MapLookup(map[string]string{"HOOK_TOKEN": "s3cret-token", "HOOK_KEY": "k3y"})
	tgt, err := New(&p.Invalidation.Targets[0], env, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tgt.Purge(context.Background(), Request{Keys: []string{"a", "b"}, URLs: []string{"/x"}, Soft: true}); err != nil {
		t.Fatal(err)
	}
	if got.Method != "PUT" || got.Header.Get("Authorization") != "Bearer s3cret-token" || got.Header.Get("X-Api-Key") != "k3y" || got.Header.Get("X-Site") != "blog" {
		t.Errorf("request: %s %v", got.Method, got.Header)
	}
	if want := `{"by":"hook","paths":["https://www.example.com/x"],"soft":true,"tags":["a","b"]}`; body != want {
		t.Errorf("body %s\nwant %s", body, want)
	}
	p.Invalidation.Targets[0].Headers["X-Fail"] = "1"
	tgt, _ = New(&p.Invalidation.Targets[0], env, srv.Client())
	_, err = tgt.Purge(context.Background(), Request{Keys: []string{"a"}})
	var te *Error
	if !errors.As(err, &te) || !te.Permanent || te.Status != 403 || !errors.Is(err, ErrTokenRefused) || !strings.Contains(err.Error(), "HOOK_TOKEN") || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("refused: %v", err)
	}
	srv.Close()
	_, err = tgt.Purge(context.Background(), Request{Keys: []string{"a"}})
	if !errors.As(err, &te) || te.Permanent || te.Status != 0 {
		t.Errorf("no answer must be retryable: %v", err)
	}
}
