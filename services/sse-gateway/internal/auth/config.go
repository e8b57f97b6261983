package auth

import (
	"errors"
	"net/url"
	"strings"
	"time"

	"github.com/freshet/freshet/pkg/config"
)

// MinSecretLen is the shortest HS256 secret accepted: 32 bytes, the size of
// the hash, as RFC 7518 asks.
const MinSecretLen = 32

// Config says which tokens are accepted. Variables FRESHET_AUTH_*.
type Config struct {
	// HS256Secret verifies (and the token command signs) HS256 tokens.
	// At least MinSecretLen bytes. Empty disables HS256.
	HS256Secret config.Secret `env:"HS256_SECRET" help:"Shared secret of HS256 tokens (at least 32 bytes; never logged). Empty disables HS256."`
	// JWKS is a file path or an http(s) URL of a JSON Web Key Set whose RSA
	// and P-256 keys verify RS256 and ES256 tokens. Empty disables them.
	JWKS string `env:"JWKS" help:"File path or http(s) URL of a JWKS (RSA and EC P-256 keys) for RS256 and ES256 tokens; empty disables them."`
	// JWKSRefresh is how often a JWKS URL is fetched again. Default 5m.
	JWKSRefresh time.Duration `env:"JWKS_REFRESH" default:"5m" help:"How often a JWKS URL is fetched again (also on an unknown key id, at most this often)."`
	// Issuer is the required iss claim. Default "freshet".
	Issuer string `env:"ISSUER" default:"freshet" help:"Required iss claim."`
	// Audience is the required aud claim. Default "freshet-sse".
	Audience string `env:"AUDIENCE" default:"freshet-sse" help:"Required aud claim."`
	// Cookie is the name of the cookie a token may come in. Default
	// "freshet_token".
	Cookie string `env:"COOKIE" default:"freshet_token" help:"Name of the cookie that may carry the token."`
	// Leeway tolerates clock skew on exp, nbf and iat. Default 30s.
	Leeway time.Duration `env:"LEEWAY" default:"30s" help:"Clock skew tolerated on exp, nbf and iat."`
}

// Validate checks the config without I/O.
func (c *Config) Validate() error {
	var errs []error
	if !c.HS256Secret.IsSet() && c.JWKS == "" {
		errs = append(errs, config.FieldErrorf("HS256Secret", "no way to verify tokens: set this secret or FRESHET_AUTH_JWKS"))
	}
	if c.HS256Secret.IsSet() && len(c.HS256Secret.Reveal()) < MinSecretLen {
		errs = append(errs, config.FieldErrorf("HS256Secret", "too short: at least %d bytes", MinSecretLen))
	}
	if strings.Contains(c.JWKS, "://") {
		u, err := url.Parse(c.JWKS)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, config.FieldErrorf("JWKS", "not an http(s) URL or a file path"))
		}
	}
	if c.JWKSRefresh <= 0 {
		errs = append(errs, config.FieldErrorf("JWKSRefresh", "must be positive"))
	}
	if c.Issuer == "" {
		errs = append(errs, config.FieldErrorf("Issuer", "must not be empty"))
	}
	if c.Audience == "" {
		errs = append(errs, config.FieldErrorf("Audience", "must not be empty"))
	}
	if c.Leeway < 0 {
		errs = append(errs, config.FieldErrorf("Leeway", "must not be negative"))
	}
	return errors.Join(errs...)
}
