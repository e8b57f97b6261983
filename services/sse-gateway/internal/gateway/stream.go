package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/freshet/freshet/pkg/logging"
	"github.com/freshet/freshet/services/sse-gateway/internal/auth"
	"github.com/freshet/freshet/services/sse-gateway/internal/cursor"
)

var channelName = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// serveStream is GET /v1/stream. Checks, in order (each with its status and
// error code): CORS origin (403 origin_not_allowed), method (405),
// readiness (503 starting), connect rate per IP (429 connect_rate_limited),
// token (401, auth.Code), channels (400 bad_channels, 403
// channel_not_allowed), cursor (400 bad_cursor), connections in total (503
// too_many_connections), per user (429 too_many_user_connections), per IP
// (429 too_many_ip_connections).
func (g *Gateway) serveStream(w http.ResponseWriter, r *http.Request) {
	refuse := func(status int, code, msg string) {
		g.metrics.refused.WithLabelValues(code).Inc()
		writeError(w, status, code, msg)
	}
	if !g.cors(w, r, "GET, OPTIONS") {
		refuse(http.StatusForbidden, "origin_not_allowed", "this origin is not in FRESHET_GATEWAY_CORS_ORIGINS")
		return
	}
	if r.Method == http.MethodOptions {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET, OPTIONS")
		refuse(http.StatusMethodNotAllowed, "method_not_allowed", "use GET")
		return
	}
	h := g.hub.Load()
	if h == nil || g.Ready() != nil {
		retryAfter(w, time.Second)
		refuse(http.StatusServiceUnavailable, "starting", "the gateway is catching up with Kafka; retry")
		return
	}
	ip := g.clientIP(r)
	if ok, wait := g.connRate.Allow(ip, time.Now()); !ok {
		retryAfter(w, wait)
		refuse(http.StatusTooManyRequests, "connect_rate_limited", "too many connects from this address; retry later")
		return
	}
	id, err := g.verifier.Verify(r.Context(), auth.FromRequest(r, g.cfg.Auth.Cookie))
	if err != nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="freshet"`)
		refuse(http.StatusUnauthorized, auth.Code(err), err.Error())
		return
	}
	channels, err := parseChannels(r.URL.Query().Get("channels"), g.cfg.Gateway.MaxChannels)
	if err != nil {
		refuse(http.StatusBadRequest, "bad_channels", err.Error())
		return
	}
	for _, ch := range channels {
		if !id.Allows(ch) {
			refuse(http.StatusForbidden, "channel_not_allowed", fmt.Sprintf("the token does not allow channel %q", ch))
			return
		}
	}
	var resume cursor.Cursor
	if last := lastEventID(r); last != "" {
		if resume, err = cursor.Parse(last); err != nil {
			refuse(http.StatusBadRequest, "bad_cursor", "Last-Event-ID: "+err.Error())
			return
		}
		if n := len(resume); n > 0 && resume[n-1].Partition >= int32(g.nparts) {
			refuse(http.StatusBadRequest, "bad_cursor", "Last-Event-ID names a partition the topic does not have")
			return
		}
	}
	if g.total.Add(1) > int64(g.cfg.Gateway.MaxConns) {
		g.total.Add(-1)
		retryAfter(w, g.cfg.Gateway.Retry)
		refuse(http.StatusServiceUnavailable, "too_many_connections", "this replica is full; retry (another replica may take you)")
		return
	}
	release := func() { g.total.Add(-1) }
	if !g.acquireUser(h, id.UserID) {
		release()
		refuse(http.StatusTooManyRequests, "too_many_user_connections", "this user has too many open streams")
		return
	}
	release = func() { g.total.Add(-1); g.perUser.Release(id.UserID) }
	if !g.perIP.Acquire(ip) {
		release()
		refuse(http.StatusTooManyRequests, "too_many_ip_connections", "this address has too many open streams")
		return
	}
	release = func() { g.total.Add(-1); g.perUser.Release(id.UserID); g.perIP.Release(ip) }

	keys := []string{userKey(id.UserID)}
	parts := []int32{g.partition(id.UserID)}
	for _, ch := range channels {
		keys = append(keys, channelKey(ch))
		parts = append(parts, g.partition("channel:"+ch))
	}
	c := newConn(keys, dedupe(parts), g.cfg.Gateway.QueueSize)
	g.active.Add(1)
	cur, replays, ok := h.subscribe(c, resume)
	if !ok {
		g.active.Add(-1)
		release()
		retryAfter(w, g.cfg.Gateway.Retry)
		refuse(http.StatusServiceUnavailable, "shutting_down", "this replica is stopping; retry")
		return
	}
	g.metrics.streams.Inc()
	s := &stream{g: g, cur: cur, log: g.log}
	done := func(reason string) {
		h.unsubscribe(c)
		release()
		g.metrics.streams.Dec()
		g.active.Add(-1)
		if reason != "" {
			g.metrics.ended.WithLabelValues(reason).Inc()
			g.log.Debug("stream ended", zap.String("reason", reason), logging.UserID(id.UserID))
		}
	}

	hd := w.Header()
	hd.Set("Content-Type", "text/event-stream; charset=utf-8")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Accel-Buffering", "no")

	// HTTP/1.1: take the connection from net/http, which frees its read and
	// write buffers, its background reader and this goroutine's stack; a
	// goroutine of its own writes the stream, close-delimited. What an idle
	// stream costs is then its conn, its socket and that goroutine (see
	// docs/sse-gateway.md, "Benchmarks"). Nothing reads the connection: a
	// client that goes away is found by reap's peek, within a second.
	if r.ProtoMajor == 1 {
		if nc, _, err := http.NewResponseController(w).Hijack(); err == nil {
			head := make([]byte, 0, 256)
			head = append(head, "HTTP/1.1 200 OK\r\n"...)
			hd.Set("Connection", "close")
			for k, vs := range hd {
				for _, v := range vs {
					head = append(head, k...)
					head = append(head, ": "...)
					head = append(head, v...)
					head = append(head, "\r\n"...)
				}
			}
			s.buf = append(head, "\r\n"...)
			s.out, s.deadline, s.flushOut = nc, nc.SetWriteDeadline, func() error { return nil }
			if h.attach(c, nc) { // Close may have come in between
				go func() {
					reason := s.run(context.Background(), c, replays, resume != nil, id.Expires)
					nc.Close()
					done(reason)
				}()
				return
			}
			nc.Close()
			done(reasonKilled)
			return
		}
	}
	rc := http.NewResponseController(w)
	s.out, s.deadline, s.flushOut = w, rc.SetWriteDeadline, rc.Flush
	w.WriteHeader(http.StatusOK)
	done(s.run(r.Context(), c, replays, resume != nil, id.Expires))
}

// acquireUser takes a stream slot of user. When the user is at the limit,
// streams whose client already went away (a page reload) are ended first,
// and their slots waited for, briefly.
func (g *Gateway) acquireUser(h *hub, user string) bool {
	if g.perUser.Acquire(user) {
		return true
	}
	if reap(h.streams(userKey(user))) == 0 {
		return false
	}
	for range 20 {
		time.Sleep(10 * time.Millisecond)
		if g.perUser.Acquire(user) {
			return true
		}
	}
	return false
}

// lastEventID is the Last-Event-ID header, or the lastEventId query
// parameter for clients that cannot set headers.
func lastEventID(r *http.Request) string {
	if v := r.Header.Get("Last-Event-ID"); v != "" {
		return v
	}
	return r.URL.Query().Get("lastEventId")
}

func parseChannels(s string, limit int) ([]string, error) {
	if s == "" {
		return nil, nil
	}
	var out []string
	seen := map[string]bool{}
	for _, ch := range strings.Split(s, ",") {
		if !channelName.MatchString(ch) {
			return nil, fmt.Errorf("channel %q: want 1 to 64 of A-Z a-z 0-9 . _ -", ch)
		}
		if !seen[ch] {
			seen[ch] = true
			out = append(out, ch)
		}
	}
	if len(out) > limit {
		return nil, fmt.Errorf("%d channels, at most %d", len(out), limit)
	}
	return out, nil
}

func dedupe(ps []int32) []int32 {
	sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
	out := ps[:0]
	for i, p := range ps {
		if i == 0 || p != ps[i-1] {
			out = append(out, p)
		}
	}
	return out
}

// partition is where the producer's default partitioner (murmur2 of the
// key, as franz-go and the Java client do) puts a record keyed key.
func (g *Gateway) partition(key string) int32 {
	return int32(g.keyPart.Partition(&kgo.Record{Key: []byte(key)}, g.nparts))
}

// stream writes one connection's events. Only its goroutine uses it.
type stream struct {
	g        *Gateway
	out      io.Writer             // the hijacked conn, or the ResponseWriter (HTTP/2)
	deadline func(time.Time) error // sets the write deadline of out
	flushOut func() error          // flushes out
	cur      cursor.Cursor         // after the last event written: the next offset per partition
	buf      []byte
	log      *zap.Logger
}

// run writes the stream until the client goes, the token expires or the
// hub ends it, and returns why it ended ("" when the client went).
func (s *stream) run(ctx context.Context, c *conn, replays []replay, resumed bool, expires time.Time) string {
	cfg := s.g.cfg.Gateway
	s.buf = append(s.buf, "retry: "...)
	s.buf = strconv.AppendInt(s.buf, cfg.Retry.Milliseconds(), 10)
	s.buf = append(s.buf, '\n') // part of the ready event
	s.control("ready", fmt.Sprintf(`{"cursor":%q}`, s.cur.String()))
	if err := s.flush(); err != nil {
		return writeReason(err)
	}
	if len(replays) > 0 {
		s.g.metrics.resumes.WithLabelValues("kafka").Inc()
		if err := s.g.replay(ctx, c, replays, s); err != nil {
			if ctx.Err() != nil {
				return ""
			}
			s.log.Warn("resume from Kafka failed", logging.Error(err))
			s.control("reconnect", `{"reason":"resume_failed"}`)
			s.flush()
			return "resume_failed"
		}
	} else if resumed {
		s.g.metrics.resumes.WithLabelValues("memory").Inc()
	}
	now := time.Now()
	for _, ev := range c.backlog {
		s.event(ev, now)
	}
	c.backlog = nil
	if err := s.flush(); err != nil {
		return writeReason(err)
	}

	heartbeat := time.NewTicker(cfg.Heartbeat)
	defer heartbeat.Stop()
	expiry := time.NewTimer(time.Until(expires))
	defer expiry.Stop()
	var batch []*event
	for {
		select {
		case <-ctx.Done():
			return ""
		case <-expiry.C:
			c.kick(reasonExpired)
			expiry.Reset(time.Hour) // the kick is taken at the next notify
		case <-heartbeat.C:
			s.buf = append(s.buf, ": heartbeat\n\n"...)
			if err := s.flush(); err != nil {
				return writeReason(err)
			}
		case <-c.notify:
			var reason string
			var conflated int
			batch, reason, conflated = c.take(batch)
			if conflated > 0 {
				s.g.metrics.conflated.Add(float64(conflated))
			}
			switch reason {
			case "":
			case reasonResync:
				s.g.metrics.resyncs.Inc()
				if !s.g.hub.Load().resync(c, s.cur) {
					return s.end(reasonQueueFull)
				}
				batch = append(batch[:0], c.backlog...)
				c.backlog = nil
				c.wake() // offers that came in since
			default:
				return s.end(reason)
			}
			now := time.Now()
			for _, ev := range batch {
				s.event(ev, now)
			}
			clear(batch)
			if err := s.flush(); err != nil {
				return writeReason(err)
			}
		}
	}
}

// end writes the last event of a stream the gateway ends: "reconnect" when
// the client should come back at once (shutdown: to another replica, with a
// jittered retry so that they do not all come back together), "disconnect"
// otherwise. The client's EventSource reconnects with its last id either way.
func (s *stream) end(reason string) string {
	kind := "disconnect"
	if reason == reasonShutdown || reason == reasonExpired {
		kind = "reconnect"
		retry := s.g.cfg.Gateway.Retry
		s.buf = append(s.buf, "retry: "...)
		s.buf = strconv.AppendInt(s.buf, (retry + rand.N(retry)).Milliseconds(), 10)
		s.buf = append(s.buf, '\n')
	}
	if reason == reasonKilled {
		return reason
	}
	s.control(kind, fmt.Sprintf(`{"reason":%q}`, reason))
	s.deadline(time.Now().Add(time.Second))
	s.flush()
	return reason
}

// control appends an event without data of a delivery, with the cursor as id
// so that a client resuming after it starts from here.
func (s *stream) control(kind, data string) {
	s.buf = append(s.buf, "id: "...)
	s.buf = s.cur.Append(s.buf)
	s.buf = append(s.buf, "\nevent: "...)
	s.buf = append(s.buf, kind...)
	s.buf = append(s.buf, "\ndata: "...)
	s.buf = append(s.buf, data...)
	s.buf = append(s.buf, "\n\n"...)
}

// event appends ev unless the cursor is already past it (a duplicate), and
// moves the cursor past it. A delivery whose deadline passed (at now) moves
// the cursor but is not sent.
func (s *stream) event(ev *event, now time.Time) {
	i := sort.Search(len(s.cur), func(i int) bool { return s.cur[i].Partition >= ev.partition })
	if i < len(s.cur) && s.cur[i].Partition == ev.partition {
		if ev.offset < s.cur[i].Offset {
			return
		}
		s.cur[i].Offset = ev.offset + 1
	} else {
		s.cur = s.cur.With(ev.partition, ev.offset+1) // a partitioner other than the default
	}
	if !ev.deadline.IsZero() && now.After(ev.deadline) {
		s.g.metrics.stale.Inc()
		return
	}
	s.grab()
	s.buf = append(s.buf, "id: "...)
	s.buf = s.cur.Append(s.buf)
	s.buf = append(s.buf, "\nevent: delivery\ndata: "...)
	s.buf = append(s.buf, ev.data...)
	s.buf = append(s.buf, "\n\n"...)
	s.g.metrics.sent.Inc()
	s.g.metrics.lag.Observe(now.Sub(ev.received).Seconds())
}

// bufPool holds the write buffers of streams between writes.
var bufPool sync.Pool

// grab takes a buffer from the pool when the stream has none.
func (s *stream) grab() {
	if s.buf == nil {
		if b, ok := bufPool.Get().(*[]byte); ok {
			s.buf = *b
		}
	}
}

// flush writes what is buffered within the write deadline.
func (s *stream) flush() error {
	if len(s.buf) == 0 {
		return nil
	}
	s.deadline(time.Now().Add(s.g.cfg.Gateway.WriteTimeout))
	_, err := s.out.Write(s.buf)
	if err == nil {
		err = s.flushOut()
	}
	// An idle stream holds no buffer: it goes back to a pool shared by all.
	if c := cap(s.buf); c >= 1<<10 && c <= 64<<10 {
		b := s.buf[:0]
		bufPool.Put(&b)
	}
	s.buf = nil
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return err
}

// writeReason tells a client that does not take writes (write_timeout, the
// slow-client policy) from one that went away (client_gone).
func writeReason(err error) string {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return reasonWriteStall
	}
	return reasonGone
}
