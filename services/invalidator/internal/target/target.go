package target

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/freshet/freshet/pkg/config"
	"github.com/freshet/freshet/pkg/pipeline"
)

// Request is what one purge request carries. The sender puts one kind of
// item in a request (keys, urls or prefixes), within the target's limits.
type Request struct {
	// Keys are surrogate keys (Varnish xkey, Fastly Surrogate-Key,
	// Cloudflare cache tags).
	Keys []string
	// URLs are url paths ("/a/b"); targets with a base_url make them
	// absolute.
	URLs []string
	// Prefixes are url-path prefixes.
	Prefixes []string
	// Soft asks for a soft purge where the target has one.
	Soft bool
}

// Result is a target's acknowledgement.
type Result struct {
	// Status is the HTTP status of the answer.
	Status int
	// PurgeID is the id the provider gave the purge (Fastly, Cloudflare);
	// empty otherwise.
	PurgeID string
}

// Target purges one edge cache.
type Target interface {
	// Purge makes one request for r and returns the target's
	// acknowledgement, or an *Error. It returns when ctx is done.
	Purge(ctx context.Context, r Request) (Result, error)
}

// Error is a failed purge request.
type Error struct {
	// Target is the target's name.
	Target string
	// Status is the HTTP status; 0 when no answer came.
	Status int
	// Permanent is set when retrying cannot help: a refused token, a
	// request the target calls malformed.
	Permanent bool
	// RetryAfter is what the target's Retry-After asked for; 0 when none.
	RetryAfter time.Duration
	// Msg says what happened.
	Msg string
	// Err is the underlying error (a network error), if any.
	Err error
}

// Error returns "target NAME: MSG".
func (e *Error) Error() string {
	s := "target " + e.Target + ": " + e.Msg
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// ErrTokenRefused is wrapped by the *Error of a request whose token the
// target refused (401, 403).
var ErrTokenRefused = errors.New("token refused")

// New returns the Target of t. Its token and secret headers are read
// through lookup (os.LookupEnv in the service); client makes the requests
// (its Timeout is not used: each request is bounded by t.Timeout).
func New(t *pipeline.Target, lookup config.LookupFunc, client *http.Client) (Target, error) {
	tok, err := t.Token(lookup)
	if err != nil {
		return nil, err
	}
	b := base{name: t.Name, kind: t.Type, client: client, timeout: t.Timeout, token: tok, tokenEnv: t.TokenEnv}
	switch t.Type {
	case pipeline.TargetVarnish:
		return &Varnish{base: b, address: strings.TrimSuffix(t.Address, "/"), host: t.Host}, nil
	case pipeline.TargetFastly:
		return &Fastly{base: b, address: strings.TrimSuffix(t.Address, "/"), serviceID: t.ServiceID, baseURL: t.BaseURL}, nil
	case pipeline.TargetCloudflare:
		return &Cloudflare{base: b, address: strings.TrimSuffix(t.Address, "/"), zoneID: t.ZoneID, baseURL: t.BaseURL}, nil
	case pipeline.TargetHTTP:
		hdr, err := t.SecretHeaders(lookup)
		if err != nil {
			return nil, err
		}
		return &Webhook{base: b, address: t.Address, method: t.Method, headers: t.Headers, secretHeaders: hdr, body: t.Body, baseURL: strings.TrimSuffix(t.BaseURL, "/")}, nil
	}
	return nil, fmt.Errorf("target %s: unknown type %q", t.Name, t.Type)
}

// base is what every target type shares: the HTTP round trip and the
// classification of its answer.
type base struct {
	name, kind string
	client     *http.Client
	timeout    time.Duration
	token      config.Secret
	tokenEnv   string
}

// maxErrorBody bounds how much of an error answer is kept in messages.
const maxErrorBody = 512

// do sends req, bounded by the target's timeout, and returns the status and
// up to 64 KiB of the body. A non-2xx answer is an *Error, classified:
// 401/403 refused token (permanent), 429 and 5xx retryable with
// Retry-After, other 4xx permanent.
func (b *base) do(ctx context.Context, req *http.Request) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	resp, err := b.client.Do(req.WithContext(ctx))
	if err != nil {
		return 0, nil, &Error{Target: b.name, Msg: req.Method + " " + redactURL(req.URL.Path) + ": no answer", Err: stripURL(err)}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp.StatusCode, body, nil
	}
	e := &Error{Target: b.name, Status: resp.StatusCode, RetryAfter: ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now())}
	detail := strings.TrimSpace(string(body))
	if len(detail) > maxErrorBody {
		detail = detail[:maxErrorBody] + "…"
	}
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		e.Permanent = true
		who := "the request"
		if b.tokenEnv != "" {
			who = "the API token in " + b.tokenEnv + " (token_env)"
		}
		e.Msg = fmt.Sprintf("%s answered %s: %s was refused; check the token and its permissions (%s)", b.kind, resp.Status, who, detail)
		e.Err = ErrTokenRefused
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 || resp.StatusCode == http.StatusRequestTimeout:
		e.Msg = fmt.Sprintf("%s answered %s (%s)", b.kind, resp.Status, detail)
	default:
		e.Permanent = true
		e.Msg = fmt.Sprintf("%s refused the request: %s (%s)", b.kind, resp.Status, detail)
	}
	return resp.StatusCode, body, e
}

// redactURL keeps a path short in messages.
func redactURL(p string) string {
	if len(p) > 200 {
		return p[:200] + "…"
	}
	return p
}

// stripURL keeps the network error without the *url.Error wrapper's
// repetition of the method and url.
func stripURL(err error) error {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) {
		if inner := ue.Unwrap(); inner != nil {
			return inner
		}
	}
	return err
}

// ParseRetryAfter reads a Retry-After header: delta-seconds or an HTTP
// date (RFC 9110, 10.2.3), relative to now. It returns 0 for an empty,
// malformed, negative or past value, and caps the answer at an hour.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	const maxWait = time.Hour
	if secs, err := strconv.ParseFloat(v, 64); err == nil {
		if !(secs > 0) { // also NaN
			return 0
		}
		if secs >= maxWait.Seconds() {
			return maxWait
		}
		return time.Duration(secs * float64(time.Second))
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0
	}
	d := t.Sub(now)
	if d <= 0 {
		return 0
	}
	return min(d, maxWait)
}
