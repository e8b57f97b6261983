package origin

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/freshet/freshet/pkg/pipeline"
)

// Defaults of [Options].
const (
	DefaultSMaxAge              = 10 * time.Minute
	DefaultStaleWhileRevalidate = 30 * time.Second
	DefaultListLimit            = 50
	DefaultQueryTimeout         = 5 * time.Second
)

// Response headers that carry the surrogate keys.
const (
	HeaderXkey         = "Xkey"          // Varnish vmod xkey
	HeaderSurrogateKey = "Surrogate-Key" // Fastly-style caches
)

// Options tunes the handler. The zero value gives the defaults.
type Options struct {
	// Table is the content table to read, as the pipeline names it
	// ("public.content"); it must be a captured table with event content.
	// Empty means the pipeline's first content table.
	Table string
	// SMaxAge is how long shared caches keep a page (s-maxage). Zero means
	// DefaultSMaxAge (10m); negative means 0 (caches revalidate every time).
	// Purges keep pages fresh, so it bounds staleness only when a purge is
	// lost.
	SMaxAge time.Duration
	// StaleWhileRevalidate is how long a cache may serve a stale page while
	// it fetches a new one (also what a soft purge leaves). Zero means
	// DefaultStaleWhileRevalidate (30s); negative leaves it out.
	StaleWhileRevalidate time.Duration
	// MaxAge is how long browsers keep a page (max-age). Zero (the default)
	// means they revalidate every time, which the ETag makes cheap.
	MaxAge time.Duration
	// ListLimit is the most items on a list page. Zero means
	// DefaultListLimit (50).
	ListLimit int
	// QueryTimeout bounds each database query. Zero means
	// DefaultQueryTimeout (5s).
	QueryTimeout time.Duration
	// Registerer receives the handler's metrics
	// (freshet_origin_requests_total). Nil means none are registered.
	Registerer prometheus.Registerer
}

func (o *Options) setDefaults() {
	if o.SMaxAge == 0 {
		o.SMaxAge = DefaultSMaxAge
	}
	if o.StaleWhileRevalidate == 0 {
		o.StaleWhileRevalidate = DefaultStaleWhileRevalidate
	}
	if o.ListLimit == 0 {
		o.ListLimit = DefaultListLimit
	}
	if o.QueryTimeout == 0 {
		o.QueryTimeout = DefaultQueryTimeout
	}
}

// cacheControl returns the Cache-Control of a cacheable page.
func (o *Options) cacheControl() string {
	secs := func(d time.Duration) string { return strconv.FormatInt(int64(max(d, 0)/time.Second), 10) }
	cc := "public, max-age=" + secs(o.MaxAge) + ", s-maxage=" + secs(o.SMaxAge)
	if o.StaleWhileRevalidate > 0 {
		cc += ", stale-while-revalidate=" + secs(o.StaleWhileRevalidate)
	}
	return cc
}

// Cache-Control of what must not be cached: errors and 404s (they carry no
// key a purge could remove), and list pages without a list key.
const (
	noStore = "no-store"
	noCache = "no-cache"
)

// handler serves the pages.
type handler struct {
	db      *pgxpool.Pool
	inv     *pipeline.Invalidation
	src     *source
	opts    Options
	cc      string
	metrics *metrics
}

// NewHandler returns the origin's handler over db, reading the content
// table that p captures and tagging pages with p's invalidation.keys. It
// checks the configuration, not the database: a table missing at start is
// a 500 on each request until it exists.
func NewHandler(db *pgxpool.Pool, p *pipeline.Pipeline, opts Options) (http.Handler, error) {
	if db == nil {
		return nil, errors.New("origin: no database pool")
	}
	if p == nil {
		return nil, errors.New("origin: no pipeline")
	}
	opts.setDefaults()
	if opts.ListLimit < 0 {
		return nil, fmt.Errorf("origin: list limit %d: must be positive", opts.ListLimit)
	}
	if opts.QueryTimeout < 0 {
		return nil, fmt.Errorf("origin: query timeout %s: must be positive", opts.QueryTimeout)
	}
	src, err := newSource(p, opts.Table, opts.ListLimit)
	if err != nil {
		return nil, fmt.Errorf("origin: %w", err)
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, fmt.Errorf("origin: %w", err)
	}
	return &handler{db: db, inv: &p.Invalidation, src: src, opts: opts, cc: opts.cacheControl(), metrics: m}, nil
}

// page is what a request renders.
type page struct {
	// Kind is content, tag, section or author.
	Kind string `json:"kind"`
	// Name is the list's tag, section or author; empty for content.
	Name string `json:"name,omitempty"`
	// Item is the content of a content page.
	Item *Item `json:"item,omitempty"`
	// Items are the items of a list page, newest first.
	Items []Item `json:"items,omitempty"`
	// Keys are the surrogate keys of the page (also in the headers).
	Keys []string `json:"keys"`

	listKeys int // how many of Keys are the list's own (0: none)
}

// Item is one content row as the origin renders it: the mapped fields of
// the pipeline's content table. Empty fields are left out of JSON.
type Item struct {
	ID         string            `json:"id"`
	Kind       string            `json:"kind,omitempty"`
	Title      string            `json:"title,omitempty"`
	Summary    string            `json:"summary,omitempty"`
	Body       string            `json:"body,omitempty"`
	Tags       []string          `json:"tags,omitempty"`
	Section    string            `json:"section,omitempty"`
	Locale     string            `json:"locale,omitempty"`
	URL        string            `json:"url,omitempty"`
	Version    string            `json:"version,omitempty"`
	Attributes map[string]string `json:"attributes,omitempty"`

	fields pipeline.Fields
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rt := parseRoute(r.URL.Path)
	format := negotiate(r.Header.Values("Accept"))
	w.Header().Set("Vary", "Accept")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		h.fail(w, r, format, rt, http.StatusMethodNotAllowed, "method not allowed")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.opts.QueryTimeout)
	defer cancel()
	pg, err := h.load(ctx, rt)
	switch {
	case errors.Is(err, errNotFound):
		h.fail(w, r, format, rt, http.StatusNotFound, "not found")
		return
	case err != nil:
		w.Header().Set("Retry-After", "1")
		h.fail(w, r, format, rt, http.StatusServiceUnavailable, "the content database did not answer")
		return
	}
	body, ctype, err := render(pg, format)
	if err != nil {
		h.fail(w, r, format, rt, http.StatusInternalServerError, "render failed")
		return
	}
	sum := sha256.Sum256(body)
	etag := `"` + base64.RawURLEncoding.EncodeToString(sum[:18]) + `"`
	hd := w.Header()
	hd.Set("Content-Type", ctype)
	hd.Set("ETag", etag)
	if len(pg.Keys) > 0 {
		keys := strings.Join(pg.Keys, " ")
		hd.Set(HeaderXkey, keys)
		hd.Set(HeaderSurrogateKey, keys)
	}
	if rt.kind != routeContent && pg.listKeys == 0 {
		hd.Set("Cache-Control", noCache)
	} else {
		hd.Set("Cache-Control", h.cc)
	}
	if ifNoneMatch(r.Header.Values("If-None-Match"), etag) {
		h.metrics.observe(rt.kind, http.StatusNotModified)
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.metrics.observe(rt.kind, http.StatusOK)
	hd.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

// load reads what the route shows.
func (h *handler) load(ctx context.Context, rt route) (*page, error) {
	switch rt.kind {
	case routeContent:
		it, err := h.src.byURL(ctx, h.db, rt.path)
		if err != nil {
			return nil, err
		}
		return &page{Kind: rt.kind, Item: it, Keys: h.keys(it.fields)}, nil
	case routeNone:
		return nil, errNotFound
	}
	items, listFields, err := h.src.list(ctx, h.db, rt)
	if err != nil {
		return nil, err
	}
	pg := &page{Kind: rt.kind, Name: rt.name, Items: items, Keys: h.keys(listFields)}
	pg.listKeys = len(pg.Keys)
	for _, it := range items {
		pg.Keys = appendNew(pg.Keys, h.keys(it.fields)...)
	}
	return pg, nil
}

// keys returns the surrogate keys of what f describes: the keys of the
// purge set the invalidator computes for a change with those fields.
func (h *handler) keys(f pipeline.Fields) []string {
	return h.inv.PurgeSet(pipeline.ChangeFields("", nil, f)).Keys
}

func appendNew(dst []string, add ...string) []string {
	for _, s := range add {
		found := false
		for _, d := range dst {
			if d == s {
				found = true
				break
			}
		}
		if !found {
			dst = append(dst, s)
		}
	}
	return dst
}

// errorBody is the JSON of an error answer.
type errorBody struct {
	Error string `json:"error"`
	Path  string `json:"path"`
}

// fail answers an error that no cache keeps.
func (h *handler) fail(w http.ResponseWriter, r *http.Request, format string, rt route, code int, msg string) {
	h.metrics.observe(rt.kind, code)
	hd := w.Header()
	hd.Set("Cache-Control", noStore)
	var body []byte
	if format == formatJSON {
		hd.Set("Content-Type", contentTypeJSON)
		body, _ = json.Marshal(errorBody{Error: msg, Path: r.URL.Path})
		body = append(body, '\n')
	} else {
		hd.Set("Content-Type", contentTypeHTML)
		var b bytes.Buffer
		_ = errorTemplate.Execute(&b, map[string]any{"Code": code, "Status": http.StatusText(code), "Message": msg, "Path": r.URL.Path})
		body = b.Bytes()
	}
	hd.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(code)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}
