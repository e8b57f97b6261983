package app

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/freshet/freshet/pkg/config"
	"github.com/freshet/freshet/pkg/testenv"
	"github.com/freshet/freshet/services/sse-gateway/internal/auth"
)

// Tokens and keys never reach the logs: the gateway, a separate process
// logging at debug level, takes streams with a valid token in the header,
// the cookie and the query, refusals of an expired, a wrongly signed and a
// malformed token, and beacons with and without a token; its whole output
// then holds none of the tokens, the JWT secret or the beacon hash key.
func TestSecretsNeverLogged(t *testing.T) {
	kt := testenv.Kafka(t)
	const hashKey = "app-test-hash-key-never-logged-0123"
	addr := freeAddr(t)
	svc := testenv.StartService(t, testenv.ServiceOptions{Name: "sse-gateway", Env: []string{
		"FRESHET_KAFKA_BROKERS=" + strings.Join(kt.Seeds, ","),
		"FRESHET_PIPELINE=../../../../pipelines/freshet.yaml",
		"FRESHET_LOG_LEVEL=debug",
		"FRESHET_GATEWAY_ADDR=" + addr,
		"FRESHET_GATEWAY_CONNECT_RATE=0",
		"FRESHET_AUTH_HS256_SECRET=" + secret,
		"FRESHET_RUM_HASH_KEY=" + hashKey,
	}})
	cfg := auth.Config{HS256Secret: config.NewSecret(secret), Issuer: "freshet", Audience: "freshet-sse", Cookie: "freshet_token"}
	mint := func(user string, ttl time.Duration) string {
		tok, err := auth.Mint(cfg, user, nil, ttl)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	other := auth.Config{HS256Secret: config.NewSecret("another-secret-another-secret-0123456"), Issuer: "freshet", Audience: "freshet-sse"}
	forged, err := auth.Mint(other, "mallory", nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	valid, expired, garbage := mint("alice", time.Hour), mint("bob", -time.Hour), "not.a-token.never-logged-marker"

	base := "http://" + addr
	// do sends a request and reads the first bytes of the answer (a stream's
	// ready event), then lets it go.
	do := func(method, path string, hdr http.Header, body string) int {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, method, base+path, strings.NewReader(body))
		for k, v := range hdr {
			req.Header[k] = v
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		buf := make([]byte, 64)
		_, _ = resp.Body.Read(buf)
		return resp.StatusCode
	}
	bearer := func(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }
	cookie := func(tok string) http.Header { return http.Header{"Cookie": {cfg.Cookie + "=" + tok}} }
	json := http.Header{"Content-Type": {"application/json"}}
	const beacon = `{"session_id":"0123456789abcdef","lags":[{"event_id":"e","lag_ms":3}]}`
	for _, c := range []struct {
		name   string
		method string
		path   string
		hdr    http.Header
		body   string
		want   int
	}{
		{"header", "GET", "/v1/stream", bearer(valid), "", 200},
		{"cookie", "GET", "/v1/stream", cookie(valid), "", 200},
		{"query", "GET", "/v1/stream?token=" + url.QueryEscape(valid), nil, "", 200},
		{"expired", "GET", "/v1/stream?token=" + url.QueryEscape(expired), nil, "", 401},
		{"forged", "GET", "/v1/stream", bearer(forged), "", 401},
		{"garbage", "GET", "/v1/stream?token=" + url.QueryEscape(garbage), nil, "", 401},
		{"garbage cookie", "GET", "/v1/stream", cookie(garbage), "", 401},
		{"beacon with a token", "POST", "/v1/rum?token=" + url.QueryEscape(valid), json, beacon, 202},
		{"beacon with a bad token", "POST", "/v1/rum?token=" + url.QueryEscape(garbage), json, beacon, 401},
		{"bad beacon with a token", "POST", "/v1/rum", bearer(valid), `{"not":"a beacon"}`, 400},
	} {
		if got := do(c.method, c.path, c.hdr, c.body); got != c.want {
			t.Errorf("%s: %s %s answered %d, want %d", c.name, c.method, c.path, got, c.want)
		}
	}
	svc.Stop(t)
	out := svc.Output()
	if !strings.Contains(out, "DEBUG") {
		t.Fatalf("the gateway logged nothing at debug level; the test shows nothing:\n%s", out)
	}
	for name, s := range map[string]string{"a valid token": valid, "an expired token": expired, "a forged token": forged,
		"a malformed token": garbage, "the JWT secret": secret, "the beacon hash key": hashKey} {
		if strings.Contains(out, s) {
			t.Errorf("%s is in the gateway's log", name)
		}
		// A JWT's signature alone is enough to replay nothing, but its
		// claims part is the user's: neither appears either.
		if parts := strings.Split(s, "."); len(parts) == 3 && strings.Contains(out, parts[1]) {
			t.Errorf("the claims of %s are in the gateway's log", name)
		}
	}
}
