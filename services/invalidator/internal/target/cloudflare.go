package target

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// Cloudflare purges through Cloudflare's purge_cache endpoint
// (https://developers.cloudflare.com/api/resources/cache/methods/purge/):
// POST /zones/{zone_id}/purge_cache with {"tags": [...]}, {"files":
// [...]} (absolute urls) or {"prefixes": [...]} (host and path, no
// scheme), at most 100 items a request (500 files on enterprise), with
// Authorization: Bearer <token>.
type Cloudflare struct {
	base
	address, zoneID, baseURL string
}

var _ Target = (*Cloudflare)(nil)

type cfBody struct {
	Tags     []string `json:"tags,omitempty"`
	Files    []string `json:"files,omitempty"`
	Prefixes []string `json:"prefixes,omitempty"`
}

type cfAnswer struct {
	Success bool `json:"success"`
	Errors  []struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"errors"`
	Result struct {
		ID string `json:"id"`
	} `json:"result"`
}

// Purge implements Target: one kind of item a request.
func (c *Cloudflare) Purge(ctx context.Context, r Request) (Result, error) {
	var body cfBody
	kinds := 0
	if len(r.Keys) > 0 {
		body.Tags, kinds = r.Keys, kinds+1
	}
	if len(r.URLs) > 0 {
		kinds++
		for _, p := range r.URLs {
			body.Files = append(body.Files, strings.TrimSuffix(c.baseURL, "/")+p)
		}
	}
	if len(r.Prefixes) > 0 {
		kinds++
		u, err := url.Parse(c.baseURL)
		if err != nil {
			return Result{}, &Error{Target: c.name, Permanent: true, Msg: "base_url", Err: err}
		}
		for _, p := range r.Prefixes {
			body.Prefixes = append(body.Prefixes, u.Host+p)
		}
	}
	if kinds != 1 || r.Soft {
		return Result{}, &Error{Target: c.name, Permanent: true, Msg: fmt.Sprintf("cloudflare takes one kind of item a request and no soft purge; got %d keys, %d urls, %d prefixes, soft %v", len(r.Keys), len(r.URLs), len(r.Prefixes), r.Soft)}
	}
	data, err := json.Marshal(body)
	if err != nil {
		return Result{}, &Error{Target: c.name, Permanent: true, Msg: "encode body", Err: err}
	}
	req, err := http.NewRequest(http.MethodPost, c.address+"/zones/"+url.PathEscape(c.zoneID)+"/purge_cache", bytes.NewReader(data))
	if err != nil {
		return Result{}, &Error{Target: c.name, Permanent: true, Msg: "build request", Err: err}
	}
	req.Header.Set("Authorization", "Bearer "+c.token.Reveal())
	req.Header.Set("Content-Type", "application/json")
	status, answer, err := c.do(ctx, req)
	if err != nil {
		return Result{Status: status}, err
	}
	var a cfAnswer
	if err := json.Unmarshal(answer, &a); err != nil || !a.Success {
		msg := "cloudflare answered without success"
		if len(a.Errors) > 0 {
			msg += fmt.Sprintf(": %d %s", a.Errors[0].Code, a.Errors[0].Message)
		}
		return Result{Status: status}, &Error{Target: c.name, Status: status, Msg: msg}
	}
	return Result{Status: status, PurgeID: a.Result.ID}, nil
}
