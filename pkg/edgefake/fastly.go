package edgefake

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// FastlyMaxKeys is the most surrogate keys Fastly purges in one request.
const FastlyMaxKeys = 256

// NewFastly starts a fake of Fastly's purge API (see the package doc).
func NewFastly(opts Options) *Server {
	if opts.MaxPerRequest == 0 {
		opts.MaxPerRequest = FastlyMaxKeys
	}
	return newServer(opts, func(s *Server) http.Handler {
		mux := http.NewServeMux()
		mux.HandleFunc("POST /service/{id}/purge", s.fastlyKeys)
		mux.HandleFunc("POST /purge/{url...}", s.fastlyURL)
		return mux
	})
}

// fastlyAdmit checks the token (Fastly-Key), forced failures and the rate;
// it answers and returns false when the request stops here.
func (s *Server) fastlyAdmit(w http.ResponseWriter, r *http.Request) bool {
	s.delay(r)
	tokenOK := s.opts.Token == "" || r.Header.Get("Fastly-Key") == s.opts.Token
	status, retry := s.admit(tokenOK)
	switch {
	case status == 0:
		return true
	case status < 0:
		writeJSON(w, http.StatusUnauthorized, map[string]string{"msg": "Provided credentials are missing or invalid"})
	default:
		setRetryAfter(w, retry)
		writeJSON(w, status, map[string]string{"msg": http.StatusText(status)})
	}
	return false
}

// fastlyKeys: POST /service/{id}/purge, keys in Surrogate-Key or in
// {"surrogate_keys": [...]}; answers {key: purge id}.
func (s *Server) fastlyKeys(w http.ResponseWriter, r *http.Request) {
	if !s.fastlyAdmit(w, r) {
		return
	}
	if s.opts.ID != "" && r.PathValue("id") != s.opts.ID {
		writeJSON(w, http.StatusNotFound, map[string]string{"msg": "Record not found", "detail": "Cannot find service '" + r.PathValue("id") + "'"})
		return
	}
	keys := strings.Fields(r.Header.Get("Surrogate-Key"))
	if len(keys) == 0 {
		var body struct {
			SurrogateKeys []string `json:"surrogate_keys"`
		}
		data, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err := json.Unmarshal(data, &body); err != nil || len(body.SurrogateKeys) == 0 {
			s.violation("fastly: a key purge without keys")
			writeJSON(w, http.StatusBadRequest, map[string]string{"msg": "No surrogate keys given"})
			return
		}
		keys = body.SurrogateKeys
	}
	if len(keys) > s.opts.MaxPerRequest {
		s.violation(fmt.Sprintf("fastly: %d keys in one request (at most %d)", len(keys), s.opts.MaxPerRequest))
		writeJSON(w, http.StatusBadRequest, map[string]string{"msg": fmt.Sprintf("Too many surrogate keys: at most %d a request", s.opts.MaxPerRequest)})
		return
	}
	s.accept(Purge{Keys: keys, Soft: r.Header.Get("Fastly-Soft-Purge") == "1"})
	out := make(map[string]string, len(keys))
	for _, k := range keys {
		out[k] = purgeID()
	}
	writeJSON(w, http.StatusOK, out)
}

// fastlyURL: POST /purge/{host}/{path}: one url; answers {"status": "ok",
// "id": ...}.
func (s *Server) fastlyURL(w http.ResponseWriter, r *http.Request) {
	if !s.fastlyAdmit(w, r) {
		return
	}
	u := r.PathValue("url")
	if !strings.Contains(u, "/") {
		s.violation("fastly: url purge without a host and path: " + u)
		writeJSON(w, http.StatusBadRequest, map[string]string{"msg": "Bad url"})
		return
	}
	s.accept(Purge{URLs: []string{"https://" + u}, Soft: r.Header.Get("Fastly-Soft-Purge") == "1"})
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "id": purgeID()})
}
