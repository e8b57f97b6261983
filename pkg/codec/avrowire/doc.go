// Package avrowire reads Avro binary values straight from their bytes,
// without allocating: the primitives of hand-written decoders that know
// their schema (pkg/codec's direct path, the metrics-sink's direct rows).
//
// A Reader checks what Decode in pkg/codec checks, no less: every length
// and block count fits in the bytes that remain (so nothing a caller sizes
// by them can exceed the input), varints are no longer than their type
// allows, union and enum indexes are in range, booleans are 0 or 1. It
// does not return errors. The first check that fails is kept as a Fault
// and empties what is left of the input, so every later read fails too and
// returns a zero value; a decoder reads on, and asks at the end (End) or
// where a loop would otherwise run on (Failed).
//
// # Concurrency
//
// A Reader is for one goroutine at a time. It never writes to the bytes it
// reads, and the slices Bytes returns alias them.
package avrowire
