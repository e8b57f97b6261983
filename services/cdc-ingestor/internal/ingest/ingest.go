package ingest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/freshet/freshet/pkg/codec"
	"github.com/freshet/freshet/pkg/events"
	"github.com/freshet/freshet/services/cdc-ingestor/internal/appevent"
)

// Path is the ingest endpoint.
const Path = "/v1/events"

// APIKey is one configured key.
type APIKey struct {
	Name string // logged and recorded as source.db
	Key  string // never logged
}

// ParseKeys reads "name:key,name2:key2". Names are letters, digits, '.', '_'
// and '-'; keys are at least 16 characters.
func ParseKeys(s string) ([]APIKey, error) {
	var out []APIKey
	seen := map[string]bool{}
	for i, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, key, ok := strings.Cut(part, ":")
		if !ok || name == "" || key == "" {
			return nil, fmt.Errorf("entry %d: want name:key", i+1)
		}
		if strings.IndexFunc(name, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-')
		}) >= 0 {
			return nil, fmt.Errorf("entry %d: name %q: use letters, digits, '.', '_' and '-'", i+1, name)
		}
		if len(key) < 16 {
			return nil, fmt.Errorf("entry %d (%s): key shorter than 16 characters", i+1, name)
		}
		if seen[name] {
			return nil, fmt.Errorf("entry %d: name %s given twice", i+1, name)
		}
		seen[name] = true
		out = append(out, APIKey{Name: name, Key: key})
	}
	return out, nil
}

// Options configure the server.
type Options struct {
	// Addr is the listen address. Default ":8080".
	Addr string
	// Keys are the accepted API keys. Without any, every request gets 401.
	Keys []APIKey
	// Topic receives the events. Required.
	Topic string
	// Client produces; Codec encodes. Required.
	Client *kgo.Client
	Codec  *codec.Codec
	// MaxBody bounds a request body. Zero means 1 MiB.
	MaxBody int64
	// MaxBatch bounds the events of a request. Zero means 1000.
	MaxBatch int
	// Rate is events per second per key; Burst the bucket size. Zero means
	// 1000 and 2000.
	Rate  float64
	Burst int
	// AckTimeout bounds the wait for Kafka's acks. Zero means 10s.
	AckTimeout time.Duration
	// Registerer, when not nil, gets the metrics.
	Registerer prometheus.Registerer
}

// Server serves POST /v1/events.
type Server struct {
	opts     Options
	log      *zap.Logger
	keys     map[[32]byte]string // sha256(key) → name
	mu       sync.Mutex
	buckets  map[string]*bucket
	requests *prometheus.CounterVec
	accepted prometheus.Counter
	ln       net.Listener
	srv      *http.Server
}

// New checks the options and listens on Addr, so that a taken port fails the
// start.
func New(opts Options, log *zap.Logger) (*Server, error) {
	if opts.Topic == "" || opts.Client == nil || opts.Codec == nil {
		return nil, errors.New("ingest: Topic, Client and Codec are required")
	}
	if opts.Addr == "" {
		opts.Addr = ":8080"
	}
	if opts.MaxBody <= 0 {
		opts.MaxBody = 1 << 20
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 1000
	}
	if opts.Rate <= 0 {
		opts.Rate = 1000
	}
	if opts.Burst <= 0 {
		opts.Burst = 2000
	}
	if opts.AckTimeout <= 0 {
		opts.AckTimeout = 10 * time.Second
	}
	s := &Server{opts: opts, log: log, keys: map[[32]byte]string{}, buckets: map[string]*bucket{},
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "freshet_ingest_requests_total", Help: "HTTP ingest requests, by status code."}, []string{"code"}),
		accepted: prometheus.NewCounter(prometheus.CounterOpts{Name: "freshet_ingest_events_total", Help: "Events accepted by HTTP ingest (acked by Kafka)."}),
	}
	for _, k := range opts.Keys {
		s.keys[sha256.Sum256([]byte(k.Key))] = k.Name
	}
	if opts.Registerer != nil {
		opts.Registerer.MustRegister(s.requests, s.accepted)
	}
	if len(opts.Keys) == 0 {
		log.Warn("no API keys configured (FRESHET_INGEST_API_KEYS): every POST /v1/events gets 401")
	}
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("ingest: listen on %s: %w", opts.Addr, err)
	}
	s.ln = ln
	mux := http.NewServeMux()
	mux.Handle(Path, s)
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute}
	return s, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Name implements lifecycle.Named.
func (s *Server) Name() string { return "http-ingest" }

// Run serves until ctx is cancelled, then lets requests in flight finish.
func (s *Server) Run(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(s.ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("ingest: serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), s.opts.AckTimeout+time.Second)
	defer cancel()
	_ = s.srv.Shutdown(sctx)
	return nil
}

// Close implements lifecycle.Closer; safe to call twice.
func (s *Server) Close(context.Context) error {
	err := s.srv.Close()
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// apiError is the JSON body of a 4xx or 5xx answer.
type apiError struct {
	Error   string   `json:"error"`
	Details []detail `json:"details,omitempty"`
}

type detail struct {
	Index int    `json:"index"`
	Error string `json:"error"`
}

func (s *Server) reply(w http.ResponseWriter, code int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(body)
	s.requests.WithLabelValues(strconv.Itoa(code)).Inc()
}

func (s *Server) fail(w http.ResponseWriter, code int, format string, args ...any) {
	s.reply(w, code, apiError{Error: fmt.Sprintf(format, args...)})
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		s.fail(w, http.StatusMethodNotAllowed, "use POST")
		return
	}
	name, ok := s.authenticate(r)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="freshet"`)
		if r.Header.Get("Authorization") == "" && r.Header.Get("X-API-Key") == "" {
			s.fail(w, http.StatusUnauthorized, "missing API key: send Authorization: Bearer <key> or X-API-Key: <key>")
		} else {
			s.fail(w, http.StatusUnauthorized, "unknown API key")
		}
		return
	}
	if ct := r.Header.Get("Content-Type"); !jsonContentType(ct) {
		s.fail(w, http.StatusUnsupportedMediaType, "Content-Type must be application/json, got %q", ct)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.opts.MaxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			s.fail(w, http.StatusRequestEntityTooLarge, "body larger than %d bytes", s.opts.MaxBody)
			return
		}
		s.fail(w, http.StatusBadRequest, "read body: %v", err)
		return
	}
	objs, err := Split(body, s.opts.MaxBatch)
	if err != nil {
		s.fail(w, http.StatusBadRequest, "%v", err)
		return
	}
	now := time.Now()
	evs := make([]events.ContentChange, len(objs))
	var details []detail
	for i, obj := range objs {
		ev, err := appevent.Decode(s.opts.Codec, obj, appevent.Meta{Origin: events.OriginHTTP, DB: name, Seq: int64(i), At: now, IDParts: []string{"http", name}})
		if err != nil {
			details = append(details, detail{Index: i, Error: err.Error()})
			continue
		}
		evs[i] = ev
	}
	if len(details) > 0 {
		s.reply(w, http.StatusBadRequest, apiError{Error: fmt.Sprintf("%d of %d events are invalid; none was accepted", len(details), len(objs)), Details: details})
		return
	}
	if wait, ok := s.take(name, len(evs)); !ok {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
		s.fail(w, http.StatusTooManyRequests, "rate limit of %.0f events/s for API key %s; retry after %s", s.opts.Rate, name, wait.Round(time.Millisecond))
		return
	}
	recs := make([]*kgo.Record, len(evs))
	ids := make([]string, len(evs))
	for i := range evs {
		evs[i].Trace.ProducedAt = time.Now()
		val, err := s.opts.Codec.EncodeEvent(r.Context(), s.opts.Topic, evs[i])
		if err != nil {
			s.reply(w, http.StatusBadRequest, apiError{Error: "event cannot be encoded", Details: []detail{{Index: i, Error: err.Error()}}})
			return
		}
		recs[i] = &kgo.Record{Topic: s.opts.Topic, Key: []byte(evs[i].ContentID), Value: val}
		ids[i] = evs[i].EventID
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.opts.AckTimeout)
	defer cancel()
	if err := s.opts.Client.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		if errors.Is(err, kerr.MessageTooLarge) || errors.Is(err, kerr.RecordListTooLarge) {
			s.fail(w, http.StatusRequestEntityTooLarge, "an event is larger than Kafka accepts; send smaller events (other events of the request may have been accepted: send them again, they keep their ids)")
			return
		}
		s.log.Warn("ingest: events not acked by Kafka", zap.String("api_key", name), zap.Int("events", len(recs)), zap.Error(err))
		s.fail(w, http.StatusServiceUnavailable, "Kafka did not acknowledge the events in time; send them again (they keep their ids)")
		return
	}
	s.accepted.Add(float64(len(recs)))
	s.reply(w, http.StatusAccepted, map[string]any{"accepted": len(recs), "event_ids": ids})
}

// jsonContentType accepts application/json, no type, and the types curl
// and browsers' sendBeacon send by default for a plain body
// (application/x-www-form-urlencoded, text/plain): the body is read as JSON
// in every case and must be JSON.
func jsonContentType(ct string) bool {
	mt, _, _ := strings.Cut(strings.ToLower(strings.TrimSpace(ct)), ";")
	switch strings.TrimSpace(mt) {
	case "", "application/json", "application/x-www-form-urlencoded", "text/plain":
		return true
	}
	return strings.HasSuffix(mt, "+json")
}

// RequireKey serves h only to requests with one of keys (as POST
// /v1/events takes them); others get 401 with a JSON error. The ingestor
// guards its admin actions (POST /snapshot) with it.
func RequireKey(keys []APIKey, h http.Handler) http.Handler {
	s := &Server{keys: map[[32]byte]string{}}
	for _, k := range keys {
		s.keys[sha256.Sum256([]byte(k.Key))] = k.Name
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := s.authenticate(r); !ok {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("WWW-Authenticate", `Bearer realm="freshet"`)
			w.WriteHeader(http.StatusUnauthorized)
			_ = json.NewEncoder(w).Encode(apiError{Error: "an API key is required: send Authorization: Bearer <key> or X-API-Key: <key>"})
			return
		}
		h.ServeHTTP(w, r)
	})
}

// authenticate returns the name of the request's API key.
func (s *Server) authenticate(r *http.Request) (string, bool) {
	key := r.Header.Get("X-API-Key")
	if auth := r.Header.Get("Authorization"); key == "" && auth != "" {
		scheme, token, ok := strings.Cut(auth, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			return "", false
		}
		key = strings.TrimSpace(token)
	}
	if key == "" {
		return "", false
	}
	sum := sha256.Sum256([]byte(key))
	for h, name := range s.keys {
		if subtle.ConstantTimeCompare(h[:], sum[:]) == 1 {
			return name, true
		}
	}
	return "", false
}

// Split reads a request body: one JSON object or an array of at most max
// objects. It returns the raw objects.
func Split(body []byte, max int) ([]json.RawMessage, error) {
	t := bytes.TrimSpace(body)
	if len(t) == 0 {
		return nil, errors.New("empty body: send a JSON object or an array of them")
	}
	if t[0] != '[' {
		if t[0] != '{' {
			return nil, errors.New("body must be a JSON object or an array of objects")
		}
		return []json.RawMessage{t}, nil
	}
	var list []json.RawMessage
	if err := json.Unmarshal(t, &list); err != nil {
		return nil, fmt.Errorf("body is not a JSON array: %v", err)
	}
	if len(list) == 0 {
		return nil, errors.New("empty batch")
	}
	if len(list) > max {
		return nil, fmt.Errorf("batch of %d events, more than %d", len(list), max)
	}
	return list, nil
}

// bucket is a token bucket.
type bucket struct {
	tokens float64
	last   time.Time
}

// take takes n tokens from name's bucket, or says how long until there are
// enough.
func (s *Server) take(name string, n int) (time.Duration, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	b := s.buckets[name]
	if b == nil {
		b = &bucket{tokens: float64(s.opts.Burst), last: now}
		s.buckets[name] = b
	}
	b.tokens = math.Min(float64(s.opts.Burst), b.tokens+now.Sub(b.last).Seconds()*s.opts.Rate)
	b.last = now
	if float64(n) > float64(s.opts.Burst) {
		return time.Duration(float64(time.Second) * float64(n) / s.opts.Rate), false
	}
	if b.tokens < float64(n) {
		return time.Duration(float64(time.Second) * (float64(n) - b.tokens) / s.opts.Rate), false
	}
	b.tokens -= float64(n)
	return 0, true
}
