package target

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
)

// Fastly purges through Fastly's API
// (https://www.fastly.com/documentation/reference/api/purging/): keys with
// POST /service/{service_id}/purge and a Surrogate-Key header (at most 256
// a request), a url with POST /purge/{host}{path}; the token in Fastly-Key,
// Fastly-Soft-Purge: 1 for a soft purge.
type Fastly struct {
	base
	address, serviceID, baseURL string
}

var _ Target = (*Fastly)(nil)

// Purge implements Target: keys, or one url, a request.
func (f *Fastly) Purge(ctx context.Context, r Request) (Result, error) {
	var target string
	switch {
	case len(r.Keys) > 0 && len(r.URLs)+len(r.Prefixes) == 0:
		target = f.address + "/service/" + url.PathEscape(f.serviceID) + "/purge"
	case len(r.URLs) == 1 && len(r.Keys)+len(r.Prefixes) == 0:
		u, err := url.Parse(f.baseURL)
		if err != nil {
			return Result{}, &Error{Target: f.name, Permanent: true, Msg: "base_url", Err: err}
		}
		target = f.address + "/purge/" + u.Host + (&url.URL{Path: r.URLs[0]}).EscapedPath()
	default:
		return Result{}, &Error{Target: f.name, Permanent: true, Msg: fmt.Sprintf("fastly takes keys or one url a request; got %d keys, %d urls, %d prefixes", len(r.Keys), len(r.URLs), len(r.Prefixes))}
	}
	req, err := http.NewRequest(http.MethodPost, target, nil)
	if err != nil {
		return Result{}, &Error{Target: f.name, Permanent: true, Msg: "build request", Err: err}
	}
	req.Header.Set("Fastly-Key", f.token.Reveal())
	req.Header.Set("Accept", "application/json")
	if len(r.Keys) > 0 {
		req.Header.Set("Surrogate-Key", strings.Join(r.Keys, " "))
	}
	if r.Soft {
		req.Header.Set("Fastly-Soft-Purge", "1")
	}
	status, body, err := f.do(ctx, req)
	if err != nil {
		return Result{Status: status}, err
	}
	return Result{Status: status, PurgeID: fastlyPurgeID(body)}, nil
}

// fastlyPurgeID reads the purge id of an answer: {"status": "ok", "id":
// ...} for a url, {key: id, ...} for keys (the first key's, sorted).
func fastlyPurgeID(body []byte) string {
	var m map[string]any
	if json.Unmarshal(body, &m) != nil {
		return ""
	}
	if id, ok := m["id"].(string); ok {
		return id
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if id, ok := m[k].(string); ok {
			return id
		}
	}
	return ""
}
