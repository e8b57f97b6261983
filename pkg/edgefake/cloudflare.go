package edgefake

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
)

// CloudflareMaxPerRequest is the most files, tags or prefixes Cloudflare
// purges in one request (500 on enterprise).
const CloudflareMaxPerRequest = 100

// NewCloudflare starts a fake of Cloudflare's purge_cache endpoint (see the
// package doc).
func NewCloudflare(opts Options) *Server {
	if opts.MaxPerRequest == 0 {
		opts.MaxPerRequest = CloudflareMaxPerRequest
	}
	return newServer(opts, func(s *Server) http.Handler {
		mux := http.NewServeMux()
		mux.HandleFunc("POST /zones/{zone}/purge_cache", s.cloudflarePurge)
		return mux
	})
}

type cfError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

type cfResponse struct {
	Success  bool              `json:"success"`
	Errors   []cfError         `json:"errors"`
	Messages []string          `json:"messages"`
	Result   map[string]string `json:"result"`
}

func cfFail(w http.ResponseWriter, status, code int, msg string) {
	writeJSON(w, status, cfResponse{Errors: []cfError{{code, msg}}, Messages: []string{}})
}

func (s *Server) cloudflarePurge(w http.ResponseWriter, r *http.Request) {
	s.delay(r)
	tokenOK := s.opts.Token == "" || r.Header.Get("Authorization") == "Bearer "+s.opts.Token
	status, retry := s.admit(tokenOK)
	switch {
	case status < 0:
		cfFail(w, http.StatusForbidden, 10000, "Authentication error")
		return
	case status == http.StatusTooManyRequests:
		setRetryAfter(w, retry)
		cfFail(w, status, 971, "Please wait and consider throttling your request speed")
		return
	case status > 0:
		setRetryAfter(w, retry)
		cfFail(w, status, 1000, http.StatusText(status))
		return
	}
	if s.opts.ID != "" && r.PathValue("zone") != s.opts.ID {
		cfFail(w, http.StatusBadRequest, 7003, "Could not route to /zones/"+r.PathValue("zone")+"/purge_cache, perhaps your object identifier is invalid?")
		return
	}
	var body struct {
		Files    []json.RawMessage `json:"files"`
		Tags     []string          `json:"tags"`
		Prefixes []string          `json:"prefixes"`
		Hosts    []string          `json:"hosts"`
	}
	data, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err := json.Unmarshal(data, &body); err != nil {
		s.violation("cloudflare: body is not JSON: " + err.Error())
		cfFail(w, http.StatusBadRequest, 1012, "Request must contain one of \"purge_everything\", \"files\", \"tags\", \"hosts\" or \"prefixes\"")
		return
	}
	kinds, n := 0, 0
	for _, l := range []int{len(body.Files), len(body.Tags), len(body.Prefixes), len(body.Hosts)} {
		if l > 0 {
			kinds++
			n += l
		}
	}
	if kinds != 1 {
		s.violation(fmt.Sprintf("cloudflare: a request with %d kinds of purge (want one of files, tags, prefixes, hosts)", kinds))
		cfFail(w, http.StatusBadRequest, 1012, "Request must contain one of \"purge_everything\", \"files\", \"tags\", \"hosts\" or \"prefixes\"")
		return
	}
	if n > s.opts.MaxPerRequest {
		s.violation(fmt.Sprintf("cloudflare: %d items in one request (at most %d)", n, s.opts.MaxPerRequest))
		cfFail(w, http.StatusBadRequest, 1015, fmt.Sprintf("Too many items: at most %d a request", s.opts.MaxPerRequest))
		return
	}
	p := Purge{Keys: body.Tags, Prefixes: body.Prefixes}
	for _, f := range body.Files {
		// A file is a url string, or {"url": ..., "headers": {...}}.
		var u string
		if json.Unmarshal(f, &u) != nil {
			var obj struct {
				URL string `json:"url"`
			}
			if json.Unmarshal(f, &obj) != nil || obj.URL == "" {
				s.violation("cloudflare: a file that is neither a url nor {\"url\": ...}")
				cfFail(w, http.StatusBadRequest, 1012, "Bad file")
				return
			}
			u = obj.URL
		}
		p.URLs = append(p.URLs, u)
	}
	s.accept(p)
	writeJSON(w, http.StatusOK, cfResponse{Success: true, Errors: []cfError{}, Messages: []string{}, Result: map[string]string{"id": purgeID()}})
}
