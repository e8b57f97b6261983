// Package appevent reads the content events apps send themselves, through
// HTTP ingest (POST /v1/events) or the transactional outbox
// (pg_logical_emit_message): a JSON object with the fields of the
// ContentChange schema, except source and trace, which the ingestor sets.
//
// The object is validated against the Avro schema (pkg/codec's DecodeJSON):
// an unknown field, a value of the wrong type or a missing content_id is an
// error that names the problem. event_id is optional: when the app gives one
// it is its idempotency key, and the event's id is derived from it, so an
// event sent twice has the same id; without one the id is derived from the
// event's bytes, which has the same effect for an identical resend.
//
// Concurrency: Decode keeps no state and is safe for concurrent use.
package appevent

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/freshet/freshet/pkg/codec"
	"github.com/freshet/freshet/pkg/events"
)

// ErrInvalid is wrapped by every error of Decode: the event is not valid.
var ErrInvalid = errors.New("invalid event")

// serverFields are set by the ingestor; an app that sends them is told so.
var serverFields = []string{"source", "trace"}

// Meta is what the ingestor knows about an event it did not read from a
// table.
type Meta struct {
	// Origin is http or outbox.
	Origin events.Origin
	// DB names the source: the database (outbox) or the API key's name
	// (http).
	DB string
	// Table is the outbox prefix, or "" for http.
	Table string
	// LSN and TxID locate an outbox message; 0 for http.
	LSN, CommitLSN, TxID uint64
	// Seq orders events of one transaction or request.
	Seq int64
	// At is the commit time (outbox) or the time the request was accepted
	// (http).
	At time.Time
	// IDParts come first in the event id: e.g. the origin and API key name.
	IDParts []string
	// DefaultID stands for the idempotency key of an event without
	// event_id; empty means a hash of the event's bytes.
	DefaultID string
}

// Decode validates one event object and returns it with its source, trace
// and event id set. Errors wrap ErrInvalid and say what is wrong.
func Decode(c *codec.Codec, obj []byte, m Meta) (events.ContentChange, error) {
	var fields map[string]json.RawMessage
	d := json.NewDecoder(bytes.NewReader(obj))
	if err := d.Decode(&fields); err != nil || fields == nil {
		return events.ContentChange{}, fmt.Errorf("%w: want a JSON object with the fields of ContentChange", ErrInvalid)
	}
	if d.More() {
		return events.ContentChange{}, fmt.Errorf("%w: data after the JSON object", ErrInvalid)
	}
	for _, f := range serverFields {
		if _, ok := fields[f]; ok {
			return events.ContentChange{}, fmt.Errorf("%w: field %q is set by the ingestor; leave it out", ErrInvalid, f)
		}
	}
	var contentID string
	if raw, ok := fields["content_id"]; !ok {
		return events.ContentChange{}, fmt.Errorf("%w: field \"content_id\" is required (it keys the record)", ErrInvalid)
	} else if err := json.Unmarshal(raw, &contentID); err != nil || contentID == "" {
		return events.ContentChange{}, fmt.Errorf("%w: field \"content_id\" must be a non-empty string", ErrInvalid)
	}
	idem := ""
	if raw, ok := fields["event_id"]; ok {
		if err := json.Unmarshal(raw, &idem); err != nil || idem == "" {
			return events.ContentChange{}, fmt.Errorf("%w: field \"event_id\" (the idempotency key) must be a non-empty string", ErrInvalid)
		}
	} else if m.DefaultID != "" {
		idem = m.DefaultID
	} else {
		idem = "sha256:" + events.ID(string(obj))
	}
	// The schema requires source, trace and event_id: give placeholders,
	// validate everything else, then set the real values.
	fields["event_id"] = json.RawMessage(`""`)
	fields["source"] = json.RawMessage(`{"db":"","commit_time":0}`)
	fields["trace"] = json.RawMessage(`{"committed_at":0,"produced_at":0}`)
	full, err := json.Marshal(fields)
	if err != nil {
		return events.ContentChange{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	native, err := c.DecodeJSON(events.ContentChangeSchema, full)
	if err != nil {
		return events.ContentChange{}, fmt.Errorf("%w: %s", ErrInvalid, describe(err))
	}
	ev, err := events.ContentChangeFromNative(native)
	if err != nil {
		return events.ContentChange{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if ev.Op == events.OpTruncate {
		return events.ContentChange{}, fmt.Errorf("%w: op truncate is for tables; send create, update or delete", ErrInvalid)
	}
	ev.EventID = events.ID(append(append([]string(nil), m.IDParts...), idem)...)
	ev.Source = events.Source{Origin: m.Origin, DB: m.DB, Table: m.Table, LSN: m.LSN, CommitLSN: m.CommitLSN, TxID: m.TxID, Seq: m.Seq, CommitTime: m.At}
	ev.Trace = events.Trace{CommittedAt: m.At}
	return ev, nil
}

// describe returns the codec's reason without its schema prefix noise.
func describe(err error) string {
	var ce *codec.Error
	if errors.As(err, &ce) && ce.Err != nil {
		return ce.Err.Error()
	}
	return err.Error()
}
