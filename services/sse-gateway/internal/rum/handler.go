package rum

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/freshet/freshet/pkg/events"
	"github.com/freshet/freshet/pkg/logging"
	"github.com/freshet/freshet/services/sse-gateway/internal/auth"
	"github.com/freshet/freshet/services/sse-gateway/internal/limit"
)

// Event is what the Handler produces.
type Event = events.Event

// Deps are what the Handler needs from the gateway.
type Deps struct {
	// Produce writes ev keyed key and returns once Kafka acked it.
	Produce func(ctx context.Context, key string, ev Event) error
	// Verifier checks the token of a beacon, when it has one.
	Verifier *auth.Verifier
	// Cookie is the token cookie's name.
	Cookie string
	// ClientIP returns the address rate limits count by.
	ClientIP func(*http.Request) string
	// Log receives failures to produce.
	Log *zap.Logger
}

// Handler is POST /v1/rum. Answers: 202 produced; 400 invalid_beacon;
// 401 (auth.Code) for a token that is present but not valid; 405; 413
// too_large; 415 unsupported_media_type; 429 rate_limited (per IP, then per
// session); 503 unavailable when Kafka did not ack.
type Handler struct {
	cfg      Config
	deps     Deps
	key      []byte
	perIP    *limit.Rate
	perSess  *limit.Rate
	regionRe *regexp.Regexp
	nowFunc  func() time.Time
}

// NewHandler returns the handler of POST /v1/rum.
func NewHandler(cfg Config, deps Deps) *Handler {
	h := &Handler{
		cfg: cfg, deps: deps, key: []byte(cfg.HashKey.Reveal()),
		perIP:    &limit.Rate{PerSecond: cfg.RatePerIP, Burst: cfg.BurstPerIP},
		perSess:  &limit.Rate{PerSecond: cfg.RatePerSession, Burst: cfg.BurstPerSession},
		regionRe: regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`),
		nowFunc:  time.Now,
	}
	if h.deps.Log == nil {
		h.deps.Log = zap.NewNop()
	}
	return h
}

// UserHash is the keyed hash beacons carry instead of a user id: the hex
// HMAC-SHA256 of the id with the configured key.
func (h *Handler) UserHash(userID string) string {
	m := hmac.New(sha256.New, h.key)
	m.Write([]byte(userID))
	return hex.EncodeToString(m.Sum(nil))
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": code, "message": msg})
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST, OPTIONS")
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "use POST")
		return
	}
	switch ct := r.Header.Get("Content-Type"); {
	case ct == "", hasType(ct, "application/json"), hasType(ct, "text/plain"):
		// sendBeacon sends a text/plain Blob to avoid a CORS preflight.
	default:
		writeError(w, http.StatusUnsupportedMediaType, "unsupported_media_type", "send application/json or text/plain")
		return
	}
	now := h.nowFunc()
	if ok, wait := h.perIP.Allow(h.deps.ClientIP(r), now); !ok {
		w.Header().Set("Retry-After", strconv.Itoa(max(1, int(wait.Seconds()+0.999))))
		writeError(w, http.StatusTooManyRequests, "rate_limited", "too many beacons from this address")
		return
	}
	limitBytes := int64(h.cfg.MaxBytes)
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limitBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writeError(w, http.StatusRequestEntityTooLarge, "too_large", "a beacon is at most "+h.cfg.MaxBytes.String())
			return
		}
		writeError(w, http.StatusBadRequest, "invalid_beacon", "could not read the body")
		return
	}
	b, err := Decode(data)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_beacon", err.Error())
		return
	}
	if ok, wait := h.perSess.Allow(b.SessionID, now); !ok {
		w.Header().Set("Retry-After", strconv.Itoa(max(1, int(wait.Seconds()+0.999))))
		writeError(w, http.StatusTooManyRequests, "rate_limited", "too many beacons from this session")
		return
	}
	userHash := ""
	if tok := auth.FromRequest(r, h.deps.Cookie); tok != "" {
		id, err := h.deps.Verifier.Verify(r.Context(), tok)
		if err != nil {
			writeError(w, http.StatusUnauthorized, auth.Code(err), err.Error())
			return
		}
		userHash = h.UserHash(id.UserID)
	}
	region := ""
	if hdr := h.cfg.RegionHeader; hdr != "" {
		if v := r.Header.Get(hdr); h.regionRe.MatchString(v) {
			region = v
		}
	}
	ev := b.Event(now, userHash, DeviceClass(r.UserAgent()), region)
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	if err := h.deps.Produce(ctx, b.SessionID, ev); err != nil {
		h.deps.Log.Warn("beacon not produced", logging.EventID(ev.EventID), logging.Error(err))
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, "unavailable", "the beacon could not be stored; retry")
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

func hasType(ct, want string) bool {
	return len(ct) >= len(want) && (ct == want || ct[:len(want)] == want && (ct[len(want)] == ';' || ct[len(want)] == ' '))
}
