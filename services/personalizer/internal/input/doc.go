// Package input decodes the personalizer's user.profiles records, outside
// bytes (snapshots, tombstones, deleted=true), into table profiles; its
// content.changes records are decoded by codec.DecodeChange, shared with the
// invalidator. A record that cannot be decoded yields an error that says
// why, for the DLQ; nothing here panics on any input, nor does the scorer on
// what the two decoders accept (FuzzDecodeRecords).
//
// Concurrency: the functions keep no state and are safe for concurrent use
// with a shared *codec.Codec.
package input
