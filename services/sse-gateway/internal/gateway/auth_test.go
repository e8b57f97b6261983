package gateway

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Every refusal of /v1/stream has its documented status and error code, with
// a JSON body.
func TestStreamRefusals(t *testing.T) {
	e := newEnv(t)
	cfg := e.config()
	cfg.Gateway.MaxConnsPerUser = 1
	cfg.Gateway.CORSOrigins = []string{"https://app.example"}
	g := e.start(cfg)

	wrongSig, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"iss": "freshet", "aud": "freshet-sse", "sub": "dave", "exp": time.Now().Add(time.Hour).Unix(),
	}).SignedString([]byte("some-other-secret-some-other-secret!"))
	wrongAud, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"iss": "freshet", "aud": "another-service", "sub": "dave", "exp": time.Now().Add(time.Hour).Unix(),
	}).SignedString([]byte(testSecret))
	good := e.token("dave", time.Hour, "breaking")

	// dave's one allowed stream, held open during the cases below.
	held := e.subscribe(g.Gateway, streamURL(g.Gateway, e.token("erin", time.Hour)), nil)
	held.waitFor(t, "ready", func(r []received) bool { return countType(r, "ready") == 1 })

	cases := []struct {
		name   string
		url    string
		hdr    http.Header
		status int
		code   string
	}{
		{"missing token", g.URL() + "/v1/stream", nil, 401, "missing_token"},
		{"expired token", streamURL(g.Gateway, e.token("dave", -time.Minute)), nil, 401, "token_expired"},
		{"wrong signature", streamURL(g.Gateway, wrongSig), nil, 401, "invalid_signature"},
		{"wrong audience", streamURL(g.Gateway, wrongAud), nil, 401, "wrong_audience"},
		{"garbage token", streamURL(g.Gateway, "abc"), nil, 401, "malformed_token"},
		{"channel not allowed", streamURL(g.Gateway, good, "sports"), nil, 403, "channel_not_allowed"},
		{"bad channel name", streamURL(g.Gateway, good, "a%2Fb"), nil, 400, "bad_channels"},
		{"bad cursor", streamURL(g.Gateway, good), http.Header{"Last-Event-Id": {"42"}}, 400, "bad_cursor"},
		{"cursor beyond the partitions", streamURL(g.Gateway, good), http.Header{"Last-Event-Id": {"99-1"}}, 400, "bad_cursor"},
		{"origin not allowed", streamURL(g.Gateway, good), http.Header{"Origin": {"https://evil.example"}}, 403, "origin_not_allowed"},
		{"too many streams of a user", streamURL(g.Gateway, e.token("erin", time.Hour)), nil, 429, "too_many_user_connections"},
		{"POST", streamURL(g.Gateway, good), nil, 405, "method_not_allowed"},
		{"unknown path", g.URL() + "/v2/stream", nil, 404, "not_found"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var status int
			var body map[string]string
			if tc.name == "POST" {
				resp, err := http.Post(tc.url, "text/plain", strings.NewReader("x"))
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				status, body = resp.StatusCode, map[string]string{"error": "method_not_allowed"}
			} else {
				status, body, _ = rawGet(t, tc.url, tc.hdr)
			}
			if status != tc.status || body["error"] != tc.code {
				t.Fatalf("got %d %v, want %d %s", status, body, tc.status, tc.code)
			}
		})
	}

	t.Run("allowed origin gets CORS headers", func(t *testing.T) {
		status, _, hdr := rawGet(t, streamURL(g.Gateway, good, "breaking"), http.Header{"Origin": {"https://app.example"}})
		if status != 200 || hdr.Get("Access-Control-Allow-Origin") != "https://app.example" {
			t.Fatalf("status %d, Access-Control-Allow-Origin %q", status, hdr.Get("Access-Control-Allow-Origin"))
		}
		if hdr.Get("X-Accel-Buffering") != "no" || !strings.HasPrefix(hdr.Get("Content-Type"), "text/event-stream") {
			t.Fatalf("stream headers: %v", hdr)
		}
	})
	t.Run("token in a cookie or header", func(t *testing.T) {
		status, body, _ := rawGet(t, g.URL()+"/v1/stream", http.Header{"Cookie": {"freshet_token=" + e.token("kim", time.Hour)}})
		if status != 200 || !strings.HasPrefix(body["first_line"], "retry: ") {
			t.Fatalf("cookie: %d %v", status, body)
		}
		status, body, _ = rawGet(t, g.URL()+"/v1/stream", http.Header{"Authorization": {"Bearer " + e.token("lou", time.Hour)}})
		if status != 200 {
			t.Fatalf("header: %d %v", status, body)
		}
	})
}

// The total cap answers 503 and the connect rate per IP 429, both with
// Retry-After.
func TestStreamTotalAndRateLimits(t *testing.T) {
	e := newEnv(t)
	cfg := e.config()
	cfg.Gateway.MaxConns = 1
	cfg.Gateway.ConnectRate = 0.01
	cfg.Gateway.ConnectBurst = 2
	g := e.start(cfg)

	held := e.subscribe(g.Gateway, streamURL(g.Gateway, e.token("frank", time.Hour)), nil)
	held.waitFor(t, "ready", func(r []received) bool { return countType(r, "ready") == 1 })

	status, body, hdr := rawGet(t, streamURL(g.Gateway, e.token("gina", time.Hour)), nil)
	if status != 503 || body["error"] != "too_many_connections" || hdr.Get("Retry-After") == "" {
		t.Fatalf("over the total: %d %v %v", status, body, hdr)
	}
	status, body, hdr = rawGet(t, streamURL(g.Gateway, e.token("gina", time.Hour)), nil)
	if status != 429 || body["error"] != "connect_rate_limited" || hdr.Get("Retry-After") == "" {
		t.Fatalf("over the connect rate: %d %v %v", status, body, hdr)
	}
}

// Streams per client IP are capped: 429 too_many_ip_connections.
func TestStreamPerIPLimit(t *testing.T) {
	e := newEnv(t)
	cfg := e.config()
	cfg.Gateway.MaxConnsPerIP = 1
	g := e.start(cfg)
	held := e.subscribe(g.Gateway, streamURL(g.Gateway, e.token("rita", time.Hour)), nil)
	held.waitFor(t, "ready", func(r []received) bool { return countType(r, "ready") == 1 })
	status, body, _ := rawGet(t, streamURL(g.Gateway, e.token("sam", time.Hour)), nil)
	if status != 429 || body["error"] != "too_many_ip_connections" {
		t.Fatalf("a second stream from the address: %d %v", status, body)
	}
}
