// Package codec encodes and decodes Freshet's events with the Avro schemas
// of schemas/avro, compiled into the binary.
//
// # Wire formats
//
// Without a schema registry, Encode writes Avro single-object encoding: the
// marker 0xC3 0x01, the 8-byte little-endian CRC-64-AVRO (Rabin) fingerprint
// of the schema's Parsing Canonical Form, then the Avro binary body. With a
// registry (WithRegistry, WithRegistryClient) it writes the Confluent framing
// that Kafka Connect, ksqlDB, kcat and ClickHouse's AvroConfluent format read:
// the byte 0x00, the 4-byte big-endian registry id, then the body. The
// schema is registered under the subject "<topic>-value" (TopicNameStrategy)
// on first use and its id cached; Register does it up front. Decode reads
// both framings, telling them apart by the first byte; registry ids it has
// not seen are fetched once and cached, and ids the registry does not know
// are remembered as unknown for a while (WithNotFoundTTL).
//
// # Schemas and evolution
//
// The schemas are self-contained once loaded: the shared named types of
// schemas/avro/types (Source, Trace, ...) are inlined where an event first
// uses them, and that resolved text is what is fingerprinted and registered.
// Every released version of an event schema is kept, resolved, in
// schemas/avro/history, so a value written with an older version is decoded
// with the schema it was written with and then resolved into the current
// version by Avro's rules: fields added since get their defaults, fields
// removed are dropped, int/long/float widen, unknown enum symbols become the
// enum's default. goavro has no such resolution; this package implements it
// on the decoded native values. See schemas/avro/README.md for the rules a
// schema change must follow.
//
// # Native form and typed events
//
// Values are goavro's native form: a record is a map[string]any, a union is
// nil or a one-key map from the branch's name to its value, a
// timestamp-micros is a time.Time. pkg/events has typed structs for the six
// events; EncodeEvent and DecodeEvent convert. DecodeJSON reads an event
// from plain JSON (unions as bare values), as HTTP ingest receives it, and
// EncodeJSON writes one. DecodeChange decodes a content.changes value into
// its ContentChange, with the errors the consumers of that topic
// dead-letter it with.
//
// # The direct path for typed events
//
// Building native maps costs more than the Avro encoding itself, so the
// typed methods skip them where they can: the direct (fast) path.
// EncodeEvent and AppendEncodeEvent write the Avro body of the six event
// structs directly (direct_events.go, hand-written for the current
// schemas), after the same framing header as Encode. The bytes are those
// goavro writes for ev.Native(), except that map entries come in key order
// instead of Go's map iteration order, so that an event always encodes to
// the same bytes. A value the direct encoder cannot hold (an enum symbol the
// schema does not have), and any other type, go through ev.Native() and
// goavro, which encode it or return the same ErrEncode as before.
//
// DecodeEvent and DecodeTyped decode a value whose writer schema is the
// current compiled-in version of its event (by fingerprint, or a registry id
// that maps to it) directly into the struct, with the same checks as
// Decode: lengths and counts bounded by the bytes left, indexes in range,
// duplicate map keys and trailing bytes refused; it reads with
// pkg/codec/avrowire, an allocation-free reader of Avro binary that
// decoders outside this package can share. The strings of a decoded event
// share one copy of the body. DecodeEvent then builds Decoded.Native
// from the struct (ev.Native(), equal to what goavro decodes), which
// DecodeTyped skips; the rare value whose native form the struct cannot
// give back (a duration beyond time.Duration, a timestamp union holding the
// zero time, PurgeAudit.error holding "", a PurgeAudit part or parts of 0)
// is decoded by goavro instead. A value written with a past version is
// decoded by goavro and resolved as described above, and a value the
// direct decoder refuses goes through goavro's path too, so errors are
// exactly Decode's.
//
// The direct path is tied to the schema versions it was written for, by
// fingerprint (directFingerprints): a Codec uses it only for current
// schemas with those fingerprints, so a changed schema, or other schemas
// loaded with WithSchemas, fall back to goavro, and
// TestDirectPathMatchesSchemas fails until direct_events.go is updated.
// Differential tests compare it with goavro on the samples and on seeded
// random events, and FuzzFastDecode on arbitrary bodies. docs/benchmarks.md
// has the figures.
//
// # Errors
//
// Every error is an *Error that names the schema, fingerprint and registry id
// when known, and wraps a sentinel: ErrUnknownSchema, ErrBadMagic,
// ErrTruncated, ErrMalformed, ErrIncompatible, ErrNoRegistry, ErrRegistry or
// ErrEncode. IsDataError tells a record to dead-letter from a transient
// failure to retry. Decode does not panic on any input, and what it
// allocates is bounded by the length of the input: counts and lengths are
// checked against the bytes left before goavro allocates anything.
//
// # Concurrency
//
// A Codec is safe for concurrent use by any number of goroutines; build one
// per process and share it. Its schema tables are read-only after New, and
// the registry caches are guarded by a lock, with concurrent misses for the
// same key sharing one registry request.
package codec
