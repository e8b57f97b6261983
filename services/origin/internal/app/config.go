package app

import (
	"net/url"
	"time"

	"github.com/freshet/freshet/pkg/config"
)

// Config is the origin's configuration, read from FRESHET_* variables.
type Config struct {
	config.Common
	Origin
}

// Origin holds the variables of the origin itself (docs/origin.md lists
// them; a test keeps the page in step).
type Origin struct {
	// PostgresDSN is the database holding the content table. It may hold a
	// password, so it is a Secret.
	PostgresDSN config.Secret `env:"POSTGRES_DSN" default:"postgres://postgres@127.0.0.1:5432/freshet?sslmode=disable" help:"Postgres connection URL of the database holding the pipeline's content table (read only)."`
	// Addr is where pages are served. Default :8080.
	Addr string `env:"ORIGIN_ADDR" default:":8080" help:"Listen address (host:port) of the pages."`
	// Table is the content table; empty means the pipeline's first.
	Table string `env:"ORIGIN_TABLE" help:"Content table to serve (schema.table, captured by the pipeline with event content); empty means the pipeline's first content table."`
	// SMaxAge is the s-maxage of pages. Default 10m.
	SMaxAge time.Duration `env:"ORIGIN_S_MAXAGE" default:"10m" help:"How long shared caches keep a page (Cache-Control s-maxage); purges keep it fresh, so this bounds staleness only when a purge is lost. 0 makes caches revalidate every time."`
	// StaleWhileRevalidate of pages. Default 30s.
	StaleWhileRevalidate time.Duration `env:"ORIGIN_STALE_WHILE_REVALIDATE" default:"30s" help:"How long a cache may serve a stale page while it refetches it (Cache-Control stale-while-revalidate; also how long a soft-purged page is served). 0 leaves it out."`
	// MaxAge is the browsers' max-age. Default 0.
	MaxAge time.Duration `env:"ORIGIN_MAX_AGE" default:"0s" help:"How long browsers keep a page (Cache-Control max-age); 0 makes them revalidate, which the ETag makes cheap."`
	// ListLimit is the most items on a list page. Default 50.
	ListLimit int `env:"ORIGIN_LIST_LIMIT" default:"50" help:"Most items on a tag, section or author page (the newest)."`
	// QueryTimeout bounds a query. Default 5s.
	QueryTimeout time.Duration `env:"ORIGIN_QUERY_TIMEOUT" default:"5s" help:"How long a page's database query may take before the page is a 503."`
	// MaxConns is the database pool's size. Default 10.
	MaxConns int32 `env:"ORIGIN_MAX_CONNS" default:"10" help:"Most database connections the origin opens."`

	// Demo serves the demo page (/demo) and proxies /v1/ to the gateway.
	// Off by default; the local stack turns it on.
	Demo bool `env:"ORIGIN_DEMO" default:"false" help:"Serve the demo page at /demo (pick a demo user, watch the live feed and the edge copy go fresh, edit titles): it mints short-lived tokens for the demo users and writes titles, so keep it off outside demos."`
	// DemoGateway is the sse-gateway the demo proxies /v1/ to.
	DemoGateway string `env:"ORIGIN_DEMO_GATEWAY" default:"http://127.0.0.1:8081" help:"Demo mode: base URL of the sse-gateway that /v1/stream, /v1/rum and /v1/client.js are proxied to (one host for the page, no CORS)."`
	// DemoUsers are the users the demo offers.
	DemoUsers []string `env:"ORIGIN_DEMO_USERS" default:"u1,u2,u3" help:"Demo mode: the user ids the page offers and mints tokens for."`
	// DemoTokenTTL is the life of a demo token.
	DemoTokenTTL time.Duration `env:"ORIGIN_DEMO_TOKEN_TTL" default:"5m" help:"Demo mode: how long a token lives (10s to 1h); the page renews it at half time."`
	// AuthHS256Secret, AuthIssuer and AuthAudience are the gateway's, to
	// mint tokens it accepts (demo mode only).
	AuthHS256Secret config.Secret `env:"AUTH_HS256_SECRET" help:"Demo mode: the sse-gateway's HS256 secret (the same variable), to sign the demo tokens; required in demo mode, never logged."`
	AuthIssuer      string        `env:"AUTH_ISSUER" default:"freshet" help:"Demo mode: iss claim of the demo tokens (the sse-gateway's FRESHET_AUTH_ISSUER)."`
	AuthAudience    string        `env:"AUTH_AUDIENCE" default:"freshet-sse" help:"Demo mode: aud claim of the demo tokens (the sse-gateway's FRESHET_AUTH_AUDIENCE)."`
}

// minSecretLen is the sse-gateway's shortest HS256 secret.
const minSecretLen = 32

// Validate checks what Load cannot.
func (o *Origin) Validate() error {
	u, err := url.Parse(o.PostgresDSN.Reveal())
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || len(u.Path) < 2 {
		return config.FieldErrorf("PostgresDSN", "want postgres://user@host:port/database")
	}
	if o.Addr == "" {
		return config.FieldErrorf("Addr", "must be host:port")
	}
	if o.SMaxAge < 0 || o.StaleWhileRevalidate < 0 || o.MaxAge < 0 {
		return config.FieldErrorf("SMaxAge", "S_MAXAGE, STALE_WHILE_REVALIDATE and MAX_AGE must not be negative")
	}
	if o.ListLimit < 1 {
		return config.FieldErrorf("ListLimit", "must be at least 1")
	}
	if o.QueryTimeout <= 0 {
		return config.FieldErrorf("QueryTimeout", "must be positive")
	}
	if o.MaxConns < 1 {
		return config.FieldErrorf("MaxConns", "must be at least 1")
	}
	if !o.Demo {
		return nil
	}
	if u, err := url.Parse(o.DemoGateway); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return config.FieldErrorf("DemoGateway", "want http(s)://host:port")
	}
	if len(o.DemoUsers) == 0 {
		return config.FieldErrorf("DemoUsers", "name at least one demo user")
	}
	if o.DemoTokenTTL < 10*time.Second || o.DemoTokenTTL > time.Hour {
		return config.FieldErrorf("DemoTokenTTL", "must be between 10s and 1h")
	}
	if len(o.AuthHS256Secret.Reveal()) < minSecretLen {
		return config.FieldErrorf("AuthHS256Secret", "demo mode needs the sse-gateway's HS256 secret (at least %d bytes)", minSecretLen)
	}
	return nil
}
