// Package input decodes the personalizer's input records, outside bytes:
// user.profiles records (snapshots, tombstones, deleted=true) into table
// profiles, and content.changes records into ContentChange events. A record
// that cannot be decoded yields an error that says why, for the DLQ; nothing
// here panics on any input (FuzzDecodeRecords).
//
// Concurrency: the functions keep no state and are safe for concurrent use
// with a shared *codec.Codec.
package input
