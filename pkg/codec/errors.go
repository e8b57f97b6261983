package codec

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. Every error the Codec returns is an *Error whose cause
// wraps one of these (DecodeChange's wrap one, or an *Error, after their
// own prefix), so callers branch with errors.Is.
var (
	// ErrUnknownSchema: the schema name given to Encode is not loaded, or
	// the fingerprint or registry id of an encoded value is not known (not
	// embedded, not in history/, not in the registry), or the writer's
	// record has no current schema to be read as.
	ErrUnknownSchema = errors.New("unknown schema")
	// ErrBadMagic: the value starts with neither the single-object marker
	// 0xC3 0x01 nor the Confluent magic byte 0x00.
	ErrBadMagic = errors.New("bad magic")
	// ErrTruncated: the value ends before its header or its body does.
	ErrTruncated = errors.New("truncated input")
	// ErrMalformed: the body does not match the writer's schema (a varint
	// too long, an index out of range, bytes left over after the value).
	ErrMalformed = errors.New("malformed value")
	// ErrIncompatible: the writer's schema cannot be resolved into the
	// current schema of the same name under Avro's rules (a field without
	// default missing, a type that cannot be promoted, an unknown enum
	// symbol without default).
	ErrIncompatible = errors.New("incompatible schemas")
	// ErrNoRegistry: a Confluent-framed value was decoded by a Codec that
	// has no schema registry.
	ErrNoRegistry = errors.New("no schema registry configured")
	// ErrRegistry: the schema registry could not be reached or answered
	// with an error other than "not found". Transient: retry, do not
	// dead-letter the record.
	ErrRegistry = errors.New("schema registry")
	// ErrEncode: the native value does not match the schema.
	ErrEncode = errors.New("value does not match the schema")
)

// Error is the error of an Encode or Decode. It names the schema, the
// fingerprint and the registry id where they are known, and wraps the cause.
type Error struct {
	// Op is what failed: "encode", "decode", "encode json", "decode json",
	// "register" or "schema".
	Op string
	// Schema is the full name of the schema, "" when not known.
	Schema string
	// Fingerprint is the CRC-64-AVRO fingerprint of the writer's schema, 0
	// when not known.
	Fingerprint uint64
	// SchemaID is the registry id of the writer's schema, 0 when not known
	// or not registry-framed.
	SchemaID int
	// Err is the cause; it wraps one of the sentinel errors.
	Err error
}

// Error implements error.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("codec: ")
	b.WriteString(e.Op)
	if e.Schema != "" {
		b.WriteString(" ")
		b.WriteString(e.Schema)
	}
	var ids []string
	if e.Fingerprint != 0 {
		ids = append(ids, fmt.Sprintf("fingerprint %016x", e.Fingerprint))
	}
	if e.SchemaID != 0 {
		ids = append(ids, fmt.Sprintf("schema id %d", e.SchemaID))
	}
	if len(ids) > 0 {
		b.WriteString(" (" + strings.Join(ids, ", ") + ")")
	}
	b.WriteString(": ")
	b.WriteString(e.Err.Error())
	return b.String()
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// IsTransient reports whether a decode failed for a reason that is no fault
// of the record (the schema registry did not answer): the same record may
// decode on a retry, so it is retried or read again, never dead-lettered.
func IsTransient(err error) bool { return errors.Is(err, ErrRegistry) }

// IsDataError reports whether err was caused by the bytes being decoded
// (bad magic, truncated, malformed, unknown or incompatible schema, a
// registry-framed value without a registry): such a record belongs in the
// dead-letter topic. It is false for transient failures (ErrRegistry, a
// cancelled context), after which the same record may decode on a retry.
func IsDataError(err error) bool {
	if errors.Is(err, ErrRegistry) {
		return false
	}
	for _, s := range []error{ErrBadMagic, ErrTruncated, ErrMalformed, ErrUnknownSchema, ErrIncompatible, ErrNoRegistry} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}
