// Package demo is the origin's demo page (/demo), served only when demo mode
// is configured (FRESHET_ORIGIN_DEMO=true; the local stack turns it on): pick
// a demo user, watch that user's live feed (the sse-gateway's browser client,
// through this host) update as content is edited, each update with its
// freshness from commit to screen, and watch the page's copy in the edge
// cache go fresh after the edit.
//
// Endpoints, all under the origin's listener:
//
//	GET  /demo          the page (no-store)
//	POST /demo/token    {"user": "u1"} → {"token", "expires_at"}: a short-lived
//	                    gateway token, for the configured demo users only
//	POST /demo/edit     {"id": "1", "title": "..."} → {"url", "committed_at"}:
//	                    sets the title of a content row (the edit form)
//	/v1/stream, /v1/rum, /v1/client.js
//	                    proxied to the sse-gateway, so that the page, its
//	                    stream and its beacons share one host (no CORS)
//
// Security: off unless configured. The POST endpoints take JSON only (a
// cross-site form cannot send it without a CORS preflight, which is never
// granted) and refuse a request whose Origin is another host. Tokens are
// for the configured demo users, short-lived, and never logged; the JWT
// secret never leaves the process.
//
// Concurrency: the handler is safe for concurrent requests.
package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/freshet/freshet/pkg/config"
	"github.com/freshet/freshet/pkg/pipeline"
)

// Config of the demo.
type Config struct {
	// Users are the user ids the page offers and mints tokens for.
	Users []string
	// Gateway is the sse-gateway's base URL (http://127.0.0.1:8081).
	Gateway *url.URL
	// Secret signs HS256 tokens the gateway accepts (its
	// FRESHET_AUTH_HS256_SECRET); Issuer and Audience are its iss and aud.
	Secret           config.Secret
	Issuer, Audience string
	// TokenTTL is how long a token lives; the page renews it at half time.
	TokenTTL time.Duration
	// Channels the tokens allow (the pipeline's broadcast channels).
	Channels []string
}

// Demo serves the demo's endpoints.
type Demo struct {
	cfg   Config
	db    *pgxpool.Pool
	table *pipeline.Table
	proxy *httputil.ReverseProxy
	// queries on the content table, from the pipeline's mapping
	editSQL, itemsSQL, usersSQL string
}

// New returns the demo over db and the pipeline's content table (the first,
// or table) and profile table.
func New(db *pgxpool.Pool, p *pipeline.Pipeline, table string, cfg Config) (*Demo, error) {
	if len(cfg.Users) == 0 || cfg.Gateway == nil || !cfg.Secret.IsSet() || cfg.TokenTTL <= 0 {
		return nil, errors.New("demo: users, gateway, secret and token TTL are required")
	}
	var t *pipeline.Table
	for _, c := range p.ContentTables() {
		if table == "" || c.Name == table {
			t = c
			break
		}
	}
	if t == nil {
		return nil, errors.New("demo: the pipeline captures no such content table")
	}
	key := t.Key
	if len(key) == 0 {
		key = []string{t.Columns[pipeline.FieldID]}
	}
	title, okT := t.Columns[pipeline.FieldTitle]
	urlCol, okU := t.Columns[pipeline.FieldURL]
	if len(key) != 1 || !okT || !okU {
		return nil, fmt.Errorf("demo: table %s needs a one-column key and columns mapped to title and url", t.Name)
	}
	id := func(s string) string { return pgx.Identifier{s}.Sanitize() }
	from := pgx.Identifier{t.Schema(), t.Relation()}.Sanitize()
	d := &Demo{cfg: cfg, db: db, table: t,
		editSQL: fmt.Sprintf("UPDATE %s SET %s = $1 WHERE %s::text = $2 RETURNING %s::text, (extract(epoch from clock_timestamp()) * 1000)::bigint",
			from, id(title), id(key[0]), id(urlCol)),
		itemsSQL: fmt.Sprintf("SELECT %s::text, %s::text, %s::text FROM %s ORDER BY %s LIMIT 20", id(key[0]), id(title), id(urlCol), from, id(key[0])),
	}
	if pt := p.ProfileTable(); pt != nil {
		if uid, ok := pt.Columns[pipeline.FieldUserID]; ok {
			desc := []string{}
			for _, f := range []string{pipeline.FieldFollows, pipeline.FieldInterests} {
				if c, ok := pt.Columns[f]; ok {
					desc = append(desc, fmt.Sprintf("'%s ' || coalesce(%s::text, '')", f, id(c)))
				}
			}
			if len(desc) > 0 {
				d.usersSQL = fmt.Sprintf("SELECT %s::text, %s FROM %s WHERE %s::text = ANY($1)", id(uid),
					strings.Join(desc, " || '; ' || "), pgx.Identifier{pt.Schema(), pt.Relation()}.Sanitize(), id(uid))
			}
		}
	}
	d.proxy = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(cfg.Gateway)
			r.SetXForwarded()
		},
		// The default logs the error, which may hold the url with its
		// token: answer 502 without logging.
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, _ error) {
			jsonError(w, http.StatusBadGateway, "the sse-gateway did not answer")
		},
	}
	return d, nil
}

// Register adds the demo's endpoints to mux.
func (d *Demo) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /demo", d.page)
	mux.HandleFunc("POST /demo/token", d.token)
	mux.HandleFunc("POST /demo/edit", d.edit)
	mux.Handle("/v1/rum", d.proxy)
	mux.Handle("/v1/client.js", d.proxy)
	// A stream lives longer than the server's write timeout allows a
	// response: lift it for streams (the gateway's heartbeats and its own
	// deadlines keep them in check).
	mux.Handle("/v1/stream", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = http.NewResponseController(w).SetWriteDeadline(time.Time{})
		d.proxy.ServeHTTP(w, r)
	}))
}

// user of the page: an id and what its profile follows and likes.
type user struct {
	ID      string `json:"id"`
	Profile string `json:"profile"`
}

// item of the edit form.
type item struct {
	ID    string `json:"id"`
	Title string `json:"title"`
	URL   string `json:"url"`
}

func (d *Demo) page(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	users := make([]user, len(d.cfg.Users))
	for i, u := range d.cfg.Users {
		users[i] = user{ID: u}
	}
	if d.usersSQL != "" {
		rows, err := d.db.Query(ctx, d.usersSQL, d.cfg.Users)
		if err == nil {
			for rows.Next() {
				var id, profile string
				if rows.Scan(&id, &profile) == nil {
					if i := slices.IndexFunc(users, func(u user) bool { return u.ID == id }); i >= 0 {
						users[i].Profile = profile
					}
				}
			}
			rows.Close()
		}
	}
	var items []item
	rows, err := d.db.Query(ctx, d.itemsSQL)
	if err != nil {
		http.Error(w, "the content database did not answer", http.StatusServiceUnavailable)
		return
	}
	for rows.Next() {
		var it item
		if err := rows.Scan(&it.ID, &it.Title, &it.URL); err == nil {
			items = append(items, it)
		}
	}
	rows.Close()
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_ = pageTemplate.Execute(w, map[string]any{
		"Users": users, "Items": items, "Channels": d.cfg.Channels,
		"RenewMs": (d.cfg.TokenTTL / 2).Milliseconds(),
	})
}

// sameSite refuses a POST that is not JSON or that another origin sent.
func sameSite(w http.ResponseWriter, r *http.Request) bool {
	if ct, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";"); strings.TrimSpace(ct) != "application/json" {
		jsonError(w, http.StatusUnsupportedMediaType, "send JSON")
		return false
	}
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || u.Host != r.Host {
			jsonError(w, http.StatusForbidden, "cross-origin request refused")
			return false
		}
	}
	return true
}

// claims of a gateway token.
type claims struct {
	jwt.RegisteredClaims
	Channels []string `json:"channels,omitempty"`
}

func (d *Demo) token(w http.ResponseWriter, r *http.Request) {
	if !sameSite(w, r) {
		return
	}
	var req struct {
		User string `json:"user"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&req); err != nil {
		jsonError(w, http.StatusBadRequest, "want {\"user\": \"<demo user>\"}")
		return
	}
	if !slices.Contains(d.cfg.Users, req.User) {
		jsonError(w, http.StatusForbidden, "not a demo user")
		return
	}
	now := time.Now()
	exp := now.Add(d.cfg.TokenTTL)
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: d.cfg.Issuer, Audience: jwt.ClaimStrings{d.cfg.Audience}, Subject: req.User,
			IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(exp),
		},
		Channels: d.cfg.Channels,
	}).SignedString([]byte(d.cfg.Secret.Reveal()))
	if err != nil {
		jsonError(w, http.StatusInternalServerError, "could not sign a token")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"token": tok, "expires_at": exp.UnixMilli()})
}

// maxTitle bounds an edited title.
const maxTitle = 200

func (d *Demo) edit(w http.ResponseWriter, r *http.Request) {
	if !sameSite(w, r) {
		return
	}
	var req struct {
		ID    string `json:"id"`
		Title string `json:"title"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&req); err != nil {
		jsonError(w, http.StatusBadRequest, "want {\"id\": \"<content id>\", \"title\": \"...\"}")
		return
	}
	req.Title = strings.TrimSpace(req.Title)
	if req.ID == "" || req.Title == "" || len(req.Title) > maxTitle {
		jsonError(w, http.StatusBadRequest, fmt.Sprintf("an id and a title of 1 to %d bytes are required", maxTitle))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	var u string
	var committed int64
	err := d.db.QueryRow(ctx, d.editSQL, req.Title, req.ID).Scan(&u, &committed)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		jsonError(w, http.StatusNotFound, "no such content")
		return
	case err != nil:
		jsonError(w, http.StatusServiceUnavailable, "the content database did not take the edit")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"url": u, "committed_at": committed})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func jsonError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

var pageTemplate = template.Must(template.New("demo").Parse(pageHTML))
