package auth

import (
	"crypto/elliptic"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func ellipticP256() elliptic.Curve { return elliptic.P256() }

// FromRequest returns the token of r, looked for in this order: the
// Authorization header ("Bearer <token>"), the cookie named cookie, the token
// query parameter (for EventSource and sendBeacon, which cannot set headers).
// It returns "" when there is none.
func FromRequest(r *http.Request, cookie string) string {
	if h := r.Header.Get("Authorization"); h != "" {
		if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
			return strings.TrimSpace(h[7:])
		}
	}
	if cookie != "" {
		if c, err := r.Cookie(cookie); err == nil && c.Value != "" {
			return c.Value
		}
	}
	return r.URL.Query().Get("token")
}

// Mint returns an HS256 token for user, allowing channels, valid for ttl
// from now, with the issuer and audience of cfg.
func Mint(cfg Config, user string, channels []string, ttl time.Duration) (string, error) {
	now := time.Now()
	claims := Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    cfg.Issuer,
			Audience:  jwt.ClaimStrings{cfg.Audience},
			Subject:   user,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		},
		Channels: channels,
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(cfg.HS256Secret.Reveal()))
}
