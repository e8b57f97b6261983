// Package wire holds the personalizer's two encodings of its own:
//
//   - Template, a fast encoder of Delivery records. The deliveries of one
//     change share everything but their event id, user id, score and reasons,
//     so the shared parts are encoded once, by pkg/codec, and each delivery
//     only appends its own fields around them. The result is byte for byte
//     what pkg/codec would write (the template checks this on a sample when
//     it is built), in either framing.
//   - Progress, the per-partition position in content.changes that the
//     personalizer stores in the metadata of its committed group offsets
//     (see docs/personalizer.md), with a strict parser: the metadata is
//     outside bytes, and ParseProgress never panics on them (fuzzed).
//
// Concurrency: a Template is read-only after NewTemplate and safe for
// concurrent use; Progress values are plain maps owned by their caller.
package wire
