package codec

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/sr"
	"golang.org/x/sync/singleflight"
)

// maxNotFound bounds the ids remembered as unknown to the registry.
const maxNotFound = 4096

// registry caches schema registry ids both ways: (subject, fingerprint) to
// id for encoding, id to writer schema for decoding. Concurrent misses for
// the same key share one request.
type registry struct {
	c   *Codec
	cl  *sr.Client
	ttl time.Duration

	mu       sync.RWMutex
	ids      map[regKey]int
	byID     map[int]*entry
	notFound map[int]time.Time
	group    singleflight.Group
}

type regKey struct {
	subject string
	fp      uint64
}

func newRegistry(c *Codec, cl *sr.Client, ttl time.Duration) *registry {
	return &registry{
		c: c, cl: cl, ttl: ttl,
		ids:      map[regKey]int{},
		byID:     map[int]*entry{},
		notFound: map[int]time.Time{},
	}
}

// id returns the registry id of e under subject, registering it (which is
// idempotent in the registry) the first time.
func (r *registry) id(ctx context.Context, subject string, e *entry) (int, error) {
	k := regKey{subject, e.Fingerprint}
	r.mu.RLock()
	id, ok := r.ids[k]
	r.mu.RUnlock()
	if ok {
		return id, nil
	}
	v, err, _ := r.group.Do("register\x00"+subject+"\x00"+strconv.FormatUint(e.Fingerprint, 16), func() (any, error) {
		// A flight that ended between the lookup above and this one
		// has cached the id.
		r.mu.RLock()
		id, ok := r.ids[k]
		r.mu.RUnlock()
		if ok {
			return id, nil
		}
		id, err := r.cl.RegisterSchema(ctx, subject, sr.Schema{Schema: e.JSON, Type: sr.TypeAvro}, -1, -1)
		if err != nil {
			var re *sr.ResponseError
			if errors.As(err, &re) && (re.StatusCode == http.StatusConflict || re.StatusCode == http.StatusUnprocessableEntity) {
				return 0, fmt.Errorf("%w: registry refused %s under subject %s: %v", ErrIncompatible, e.Name, subject, err)
			}
			return 0, fmt.Errorf("%w: register %s under subject %s: %v", ErrRegistry, e.Name, subject, err)
		}
		if id <= 0 {
			return 0, fmt.Errorf("%w: register %s under subject %s: registry returned id %d", ErrRegistry, e.Name, subject, id)
		}
		r.mu.Lock()
		r.ids[k] = id
		if _, ok := r.byID[id]; !ok {
			r.byID[id] = e
		}
		r.mu.Unlock()
		return id, nil
	})
	if err != nil {
		return 0, err
	}
	return v.(int), nil
}

// writer returns the writer schema of a registry id, fetching it once.
func (r *registry) writer(ctx context.Context, id int) (*entry, error) {
	r.mu.RLock()
	e := r.byID[id]
	until, missing := r.notFound[id]
	r.mu.RUnlock()
	if e != nil {
		return e, nil
	}
	if missing && time.Now().Before(until) {
		return nil, fmt.Errorf("%w: schema id %d is not in the registry", ErrUnknownSchema, id)
	}
	v, err, _ := r.group.Do("id\x00"+strconv.Itoa(id), func() (any, error) {
		// A flight that ended between the lookup above and this one
		// has cached the schema.
		r.mu.RLock()
		cached := r.byID[id]
		r.mu.RUnlock()
		if cached != nil {
			return cached, nil
		}
		s, err := r.cl.SchemaByID(ctx, id)
		if err != nil {
			var re *sr.ResponseError
			if errors.As(err, &re) && re.StatusCode == http.StatusNotFound {
				r.mu.Lock()
				if len(r.notFound) >= maxNotFound {
					clear(r.notFound)
				}
				r.notFound[id] = time.Now().Add(r.ttl)
				r.mu.Unlock()
				return nil, fmt.Errorf("%w: schema id %d is not in the registry: %v", ErrUnknownSchema, id, err)
			}
			return nil, fmt.Errorf("%w: fetch schema id %d: %v", ErrRegistry, id, err)
		}
		if s.Type != sr.TypeAvro {
			return nil, fmt.Errorf("%w: schema id %d is %s, not Avro", ErrUnknownSchema, id, s.Type)
		}
		if len(s.References) > 0 {
			return nil, fmt.Errorf("%w: schema id %d uses schema references, which are not supported", ErrUnknownSchema, id)
		}
		e, err := newEntry(s.Schema)
		if err != nil {
			return nil, fmt.Errorf("%w: schema id %d: %v", ErrUnknownSchema, id, err)
		}
		if known := r.c.byFP[e.Fingerprint]; known != nil {
			e = known
		} else if reader := r.c.byName[e.Name]; reader != nil && reader.Name == e.Name {
			e.reader = reader
		}
		r.mu.Lock()
		r.byID[id] = e
		r.mu.Unlock()
		return e, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*entry), nil
}
