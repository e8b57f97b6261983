// Package codectest provides an in-memory schema registry for tests of code
// that uses pkg/codec with the Confluent framing.
//
// Registry serves the parts of the Confluent Schema Registry REST API that
// franz-go's sr client calls for registering and fetching schemas, as the
// API reference documents them:
//
//	POST /subjects/{subject}/versions           register, answers {"id": N}
//	POST /subjects/{subject}                    look a schema up in a subject
//	GET  /subjects                              list subjects
//	GET  /subjects/{subject}/versions           list versions of a subject
//	GET  /subjects/{subject}/versions/{version} one version ("latest" too)
//	GET  /schemas/ids/{id}                      schema by global id
//	GET  /schemas/ids/{id}/versions             subject-versions of an id
//
// Ids are global: the same schema text gets the same id in every subject,
// and registering a schema a subject already has returns its id without a
// new version. Unlike a real registry it compares schema texts byte for
// byte (after trimming space) and checks no compatibility (as with
// compatibility NONE). Errors carry the documented error codes (40401
// subject not found, 40402 version not found, 40403 schema not found, 42201
// invalid schema).
//
// A Registry is safe for concurrent use.
package codectest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
)

const contentType = "application/vnd.schemaregistry.v1+json"

// Registry is an in-memory schema registry served over HTTP on loopback.
type Registry struct {
	srv *httptest.Server

	mu       sync.Mutex
	schemas  []stored         // by id-1
	subjects map[string][]int // subject -> ids by version-1
	requests map[string]int   // "METHOD pattern" -> count
}

type stored struct {
	Schema     string `json:"schema"`
	SchemaType string `json:"schemaType,omitempty"`
}

// NewRegistry starts a registry; Close stops it.
func NewRegistry() *Registry {
	r := &Registry{subjects: map[string][]int{}, requests: map[string]int{}}
	mux := http.NewServeMux()
	handle := func(pattern string, h func(w http.ResponseWriter, req *http.Request)) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, req *http.Request) {
			r.mu.Lock()
			r.requests[pattern]++
			r.mu.Unlock()
			w.Header().Set("Content-Type", contentType)
			h(w, req)
		})
	}
	handle("POST /subjects/{subject}/versions", r.register)
	handle("POST /subjects/{subject}", r.lookup)
	handle("GET /subjects", r.listSubjects)
	handle("GET /subjects/{subject}/versions", r.listVersions)
	handle("GET /subjects/{subject}/versions/{version}", r.version)
	handle("GET /schemas/ids/{id}", r.byID)
	handle("GET /schemas/ids/{id}/versions", r.idVersions)
	r.srv = httptest.NewServer(mux)
	return r
}

// URL is the registry's base URL.
func (r *Registry) URL() string { return r.srv.URL }

// Close stops the server.
func (r *Registry) Close() { r.srv.Close() }

// Requests returns how many requests the route pattern (e.g.
// "GET /schemas/ids/{id}") has served.
func (r *Registry) Requests(pattern string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests[pattern]
}

// Register registers an Avro schema under subject directly, as another
// producer would have, and returns its id.
func (r *Registry) Register(subject, schema string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	id, _ := r.registerLocked(subject, stored{Schema: schema})
	return id
}

// registerLocked returns the id of s under subject and its version there.
func (r *Registry) registerLocked(subject string, s stored) (id, version int) {
	s.Schema = strings.TrimSpace(s.Schema)
	if strings.EqualFold(s.SchemaType, "AVRO") {
		s.SchemaType = ""
	}
	for i, have := range r.schemas {
		if have == s {
			id = i + 1
		}
	}
	if id == 0 {
		r.schemas = append(r.schemas, s)
		id = len(r.schemas)
	}
	for v, have := range r.subjects[subject] {
		if have == id {
			return id, v + 1
		}
	}
	r.subjects[subject] = append(r.subjects[subject], id)
	return id, len(r.subjects[subject])
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status, code int, format string, args ...any) {
	writeJSON(w, status, map[string]any{"error_code": code, "message": fmt.Sprintf(format, args...)})
}

type registerRequest struct {
	Schema     string `json:"schema"`
	SchemaType string `json:"schemaType"`
	References []any  `json:"references"`
}

func readRequest(w http.ResponseWriter, req *http.Request) (registerRequest, bool) {
	var body registerRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, req.Body, 1<<20)).Decode(&body); err != nil {
		writeError(w, http.StatusUnprocessableEntity, 42201, "invalid schema: %v", err)
		return body, false
	}
	if strings.TrimSpace(body.Schema) == "" || !json.Valid([]byte(body.Schema)) {
		writeError(w, http.StatusUnprocessableEntity, 42201, "invalid schema: not JSON")
		return body, false
	}
	if len(body.References) > 0 {
		writeError(w, http.StatusUnprocessableEntity, 42201, "invalid schema: references are not supported here")
		return body, false
	}
	return body, true
}

func (r *Registry) register(w http.ResponseWriter, req *http.Request) {
	body, ok := readRequest(w, req)
	if !ok {
		return
	}
	r.mu.Lock()
	id, _ := r.registerLocked(req.PathValue("subject"), stored{Schema: body.Schema, SchemaType: body.SchemaType})
	r.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"id": id})
}

func (r *Registry) lookup(w http.ResponseWriter, req *http.Request) {
	body, ok := readRequest(w, req)
	if !ok {
		return
	}
	subject := req.PathValue("subject")
	r.mu.Lock()
	defer r.mu.Unlock()
	versions, ok := r.subjects[subject]
	if !ok {
		writeError(w, http.StatusNotFound, 40401, "Subject '%s' not found.", subject)
		return
	}
	for v, id := range versions {
		if s := r.schemas[id-1]; s.Schema == strings.TrimSpace(body.Schema) {
			writeJSON(w, http.StatusOK, r.subjectSchema(subject, v+1, id))
			return
		}
	}
	writeError(w, http.StatusNotFound, 40403, "Schema not found")
}

func (r *Registry) subjectSchema(subject string, version, id int) map[string]any {
	s := r.schemas[id-1]
	out := map[string]any{"subject": subject, "version": version, "id": id, "schema": s.Schema}
	if s.SchemaType != "" {
		out["schemaType"] = s.SchemaType
	}
	return out
}

func (r *Registry) listSubjects(w http.ResponseWriter, _ *http.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := []string{}
	for s := range r.subjects {
		out = append(out, s)
	}
	writeJSON(w, http.StatusOK, out)
}

func (r *Registry) listVersions(w http.ResponseWriter, req *http.Request) {
	subject := req.PathValue("subject")
	r.mu.Lock()
	defer r.mu.Unlock()
	ids, ok := r.subjects[subject]
	if !ok {
		writeError(w, http.StatusNotFound, 40401, "Subject '%s' not found.", subject)
		return
	}
	out := make([]int, len(ids))
	for i := range ids {
		out[i] = i + 1
	}
	writeJSON(w, http.StatusOK, out)
}

func (r *Registry) version(w http.ResponseWriter, req *http.Request) {
	subject := req.PathValue("subject")
	r.mu.Lock()
	defer r.mu.Unlock()
	ids, ok := r.subjects[subject]
	if !ok {
		writeError(w, http.StatusNotFound, 40401, "Subject '%s' not found.", subject)
		return
	}
	v := len(ids)
	if s := req.PathValue("version"); s != "latest" && s != "-1" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > len(ids) {
			writeError(w, http.StatusNotFound, 40402, "Version %s not found.", s)
			return
		}
		v = n
	}
	writeJSON(w, http.StatusOK, r.subjectSchema(subject, v, ids[v-1]))
}

func (r *Registry) schemaByID(w http.ResponseWriter, req *http.Request) (int, bool) {
	id, err := strconv.Atoi(req.PathValue("id"))
	if err != nil || id < 1 || id > len(r.schemas) {
		writeError(w, http.StatusNotFound, 40403, "Schema %s not found", req.PathValue("id"))
		return 0, false
	}
	return id, true
}

func (r *Registry) byID(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	id, ok := r.schemaByID(w, req)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, r.schemas[id-1])
}

func (r *Registry) idVersions(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	id, ok := r.schemaByID(w, req)
	if !ok {
		return
	}
	out := []map[string]any{}
	for subject, ids := range r.subjects {
		for v, have := range ids {
			if have == id {
				out = append(out, map[string]any{"subject": subject, "version": v + 1})
			}
		}
	}
	writeJSON(w, http.StatusOK, out)
}
