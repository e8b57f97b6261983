package target

import (
	"bytes"
	"context"
	"net/http"

	"github.com/freshet/freshet/pkg/config"
	"github.com/freshet/freshet/pkg/pipeline"
)

// Webhook sends a purge to any HTTP endpoint: the target's body template
// (pipeline.BodyTemplate) rendered with the request's keys, urls and
// prefixes (absolute with base_url), with its method, headers, secret
// headers and, with a token, Authorization: Bearer.
type Webhook struct {
	base
	address, method, baseURL string
	headers                  map[string]string
	secretHeaders            map[string]config.Secret
	body                     pipeline.BodyTemplate
}

var _ Target = (*Webhook)(nil)

// Purge implements Target.
func (w *Webhook) Purge(ctx context.Context, r Request) (Result, error) {
	abs := func(paths []string) []string {
		if w.baseURL == "" || len(paths) == 0 {
			return paths
		}
		out := make([]string, len(paths))
		for i, p := range paths {
			out[i] = w.baseURL + p
		}
		return out
	}
	body := w.body.Render(pipeline.BodyValues{Keys: r.Keys, URLs: abs(r.URLs), Prefixes: abs(r.Prefixes), Soft: r.Soft, Target: w.name})
	req, err := http.NewRequest(w.method, w.address, bytes.NewReader(body))
	if err != nil {
		return Result{}, &Error{Target: w.name, Permanent: true, Msg: "build request", Err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range w.headers {
		req.Header.Set(k, v)
	}
	for k, v := range w.secretHeaders {
		req.Header.Set(k, v.Reveal())
	}
	if w.token.IsSet() {
		req.Header.Set("Authorization", "Bearer "+w.token.Reveal())
	}
	status, _, err := w.do(ctx, req)
	return Result{Status: status}, err
}
