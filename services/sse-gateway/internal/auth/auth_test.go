package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/freshet/freshet/pkg/config"
)

const testSecret = "0123456789abcdef0123456789abcdef-test"

func hsConfig() Config {
	return Config{HS256Secret: config.NewSecret(testSecret), Issuer: "freshet", Audience: "freshet-sse", Cookie: "freshet_token", JWKSRefresh: time.Minute, Leeway: time.Second}
}

func sign(t *testing.T, m jwt.SigningMethod, key any, kid string, c jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func claims(mod func(jwt.MapClaims)) jwt.MapClaims {
	c := jwt.MapClaims{"iss": "freshet", "aud": "freshet-sse", "sub": "u1", "exp": time.Now().Add(time.Hour).Unix(), "channels": []string{"breaking"}}
	if mod != nil {
		mod(c)
	}
	return c
}

func TestVerifyHS256(t *testing.T) {
	ctx := context.Background()
	v, err := NewVerifier(ctx, hsConfig())
	if err != nil {
		t.Fatal(err)
	}
	good := []byte(testSecret)
	cases := []struct {
		name  string
		token string
		want  error
	}{
		{"valid", sign(t, jwt.SigningMethodHS256, good, "", claims(nil)), nil},
		{"missing", "", ErrMissing},
		{"garbage", "not.a.token", ErrMalformed},
		{"expired", sign(t, jwt.SigningMethodHS256, good, "", claims(func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Minute).Unix() })), ErrExpired},
		{"no exp", sign(t, jwt.SigningMethodHS256, good, "", claims(func(c jwt.MapClaims) { delete(c, "exp") })), ErrClaims},
		{"wrong signature", sign(t, jwt.SigningMethodHS256, []byte("another-secret-another-secret-xx!"), "", claims(nil)), ErrSignature},
		{"wrong audience", sign(t, jwt.SigningMethodHS256, good, "", claims(func(c jwt.MapClaims) { c["aud"] = "other" })), ErrAudience},
		{"wrong issuer", sign(t, jwt.SigningMethodHS256, good, "", claims(func(c jwt.MapClaims) { c["iss"] = "evil" })), ErrIssuer},
		{"no subject", sign(t, jwt.SigningMethodHS256, good, "", claims(func(c jwt.MapClaims) { delete(c, "sub") })), ErrClaims},
		{"not yet valid", sign(t, jwt.SigningMethodHS256, good, "", claims(func(c jwt.MapClaims) { c["nbf"] = time.Now().Add(time.Hour).Unix() })), ErrNotYet},
		{"alg none", sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "", claims(nil)), ErrSignature},
		{"HS512 refused", sign(t, jwt.SigningMethodHS512, good, "", claims(nil)), ErrSignature},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id, err := v.Verify(ctx, tc.token)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if id.UserID != "u1" || !id.Allows("breaking") || id.Allows("other") {
					t.Fatalf("identity = %+v", id)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("Verify = %v, want %v (code %s)", err, tc.want, Code(err))
			}
		})
	}
}

func TestMintRoundTrip(t *testing.T) {
	cfg := hsConfig()
	tok, err := Mint(cfg, "alice", []string{"breaking", "sports"}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewVerifier(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	id, err := v.Verify(context.Background(), tok)
	if err != nil || id.UserID != "alice" || len(id.Channels) != 2 {
		t.Fatalf("Verify(Mint) = %+v, %v", id, err)
	}
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func jwksOf(rsaKey *rsa.PrivateKey, ecKey *ecdsa.PrivateKey) []byte {
	ecdh, _ := ecKey.PublicKey.Bytes()
	doc := map[string]any{"keys": []map[string]string{
		{"kty": "RSA", "kid": "r1", "alg": "RS256", "use": "sig", "n": b64(rsaKey.N.Bytes()), "e": b64(big.NewInt(int64(rsaKey.E)).Bytes())},
		{"kty": "EC", "kid": "e1", "crv": "P-256", "x": b64(ecdh[1:33]), "y": b64(ecdh[33:])},
		{"kty": "oct", "kid": "skipped", "k": "c2VjcmV0"},
	}}
	b, _ := json.Marshal(doc)
	return b
}

func TestVerifyJWKS(t *testing.T) {
	ctx := context.Background()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	otherRSA, _ := rsa.GenerateKey(rand.Reader, 2048)
	doc := jwksOf(rsaKey, ecKey)

	file := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(file, doc, 0o600); err != nil {
		t.Fatal(err)
	}
	fetches := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches++
		w.Write(doc)
	}))
	defer srv.Close()

	for _, src := range []string{file, srv.URL + "/jwks.json"} {
		t.Run(filepath.Base(src), func(t *testing.T) {
			cfg := hsConfig()
			cfg.HS256Secret = config.Secret{}
			cfg.JWKS = src
			v, err := NewVerifier(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			cases := []struct {
				name  string
				token string
				want  error
			}{
				{"RS256", sign(t, jwt.SigningMethodRS256, rsaKey, "r1", claims(nil)), nil},
				{"ES256", sign(t, jwt.SigningMethodES256, ecKey, "e1", claims(nil)), nil},
				{"ES256 without kid", sign(t, jwt.SigningMethodES256, ecKey, "", claims(nil)), nil},
				{"RS256 other key", sign(t, jwt.SigningMethodRS256, otherRSA, "r1", claims(nil)), ErrSignature},
				{"unknown kid", sign(t, jwt.SigningMethodRS256, rsaKey, "nope", claims(nil)), ErrSignature},
				{"HS256 disabled", sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", claims(nil)), ErrSignature},
				{"RS256 expired", sign(t, jwt.SigningMethodRS256, rsaKey, "r1", claims(func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Hour).Unix() })), ErrExpired},
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					_, err := v.Verify(ctx, tc.token)
					if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
						t.Fatalf("Verify = %v, want %v", err, tc.want)
					}
				})
			}
		})
	}
	if fetches == 0 {
		t.Fatal("the JWKS URL was never fetched")
	}
}

func TestConfigValidate(t *testing.T) {
	c := hsConfig()
	c.HS256Secret = config.NewSecret("short")
	if err := c.Validate(); err == nil {
		t.Fatal("a short secret passed")
	}
	c.HS256Secret = config.Secret{}
	if err := c.Validate(); err == nil {
		t.Fatal("no secret and no JWKS passed")
	}
}

func TestFromRequest(t *testing.T) {
	r := httptest.NewRequest("GET", "/v1/stream?token=q", nil)
	if got := FromRequest(r, "freshet_token"); got != "q" {
		t.Fatalf("query: %q", got)
	}
	r.AddCookie(&http.Cookie{Name: "freshet_token", Value: "c"})
	if got := FromRequest(r, "freshet_token"); got != "c" {
		t.Fatalf("cookie: %q", got)
	}
	r.Header.Set("Authorization", "Bearer h")
	if got := FromRequest(r, "freshet_token"); got != "h" {
		t.Fatalf("header: %q", got)
	}
}

// FuzzVerify: no token, however malformed, makes Verify panic or succeed
// without the secret.
func FuzzVerify(f *testing.F) {
	cfg := hsConfig()
	good, _ := Mint(cfg, "u", nil, time.Hour)
	f.Add(good)
	f.Add("a.b.c")
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add("")
	v, err := NewVerifier(context.Background(), cfg)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		_, err := v.Verify(context.Background(), tok)
		if err == nil && tok != good {
			t.Fatalf("accepted a token it did not sign: %q", tok)
		}
	})
}

// FuzzParseJWKS: no JWKS document makes ParseJWKS panic.
func FuzzParseJWKS(f *testing.F) {
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	f.Add(jwksOf(rsaKey, ecKey))
	f.Add([]byte(`{"keys":[{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"RSA","n":"AQ","e":"AQAB"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ks, err := ParseJWKS(data)
		if err == nil && len(ks) == 0 {
			t.Fatal("no error and no key")
		}
	})
}

// A key rotated in at the JWKS URL is fetched when a token names its kid;
// a refresh that fails keeps the keys and is reported.
func TestJWKSRotation(t *testing.T) {
	ctx := context.Background()
	k1, _ := rsa.GenerateKey(rand.Reader, 2048)
	k2, _ := rsa.GenerateKey(rand.Reader, 2048)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	var mu sync.Mutex
	doc, status := jwksOf(k1, ec), 200
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		w.WriteHeader(status)
		w.Write(doc)
	}))
	defer srv.Close()
	cfg := hsConfig()
	cfg.JWKS = srv.URL
	cfg.JWKSRefresh = 20 * time.Millisecond
	v, err := NewVerifier(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(ctx, sign(t, jwt.SigningMethodRS256, k2, "r2", claims(nil))); !errors.Is(err, ErrSignature) {
		t.Fatalf("a key not in the JWKS: %v", err)
	}
	rotated := strings.Replace(string(jwksOf(k2, ec)), `"kid":"r1"`, `"kid":"r2"`, 1)
	mu.Lock()
	doc = []byte(rotated)
	mu.Unlock()
	time.Sleep(30 * time.Millisecond)
	if _, err := v.Verify(ctx, sign(t, jwt.SigningMethodRS256, k2, "r2", claims(nil))); err != nil {
		t.Fatalf("the rotated key: %v", err)
	}

	mu.Lock()
	status = 500
	mu.Unlock()
	reported := make(chan error, 1)
	rctx, cancel := context.WithCancel(ctx)
	go v.Run(rctx, func(err error) {
		select {
		case reported <- err:
		default:
		}
	})
	select {
	case err := <-reported:
		if !strings.Contains(err.Error(), "500") {
			t.Fatalf("reported: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a failed refresh was not reported")
	}
	cancel()
	if _, err := v.Verify(ctx, sign(t, jwt.SigningMethodRS256, k2, "r2", claims(nil))); err != nil {
		t.Fatalf("after a failed refresh the keys are gone: %v", err)
	}
}
