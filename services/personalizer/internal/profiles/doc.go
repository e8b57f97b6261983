// Package profiles is the personalizer's in-memory profile table: the users of
// the user.profiles partitions an instance owns, with inverted indexes from
// interest tag, follow key and segment to users, so that a change touches only
// its candidate users and never scans the table.
//
// Layout, chosen for a million profiles in a few hundred MiB: every key (tag,
// follow key, segment, region, locale) is interned once and referred to by a
// uint32; a user lives in a slot (a uint32) of one slice; a posting list is a
// []uint32 of slots. Posting lists are append-only between compactions: an
// update that removes a key leaves a stale posting behind, which readers skip
// (Each verifies the user still holds the key) and which a compaction removes
// once a list holds more stale postings than live ones.
//
// Profiles are snapshots: Upsert replaces a user's profile as a whole, Delete
// (a tombstone, or deleted=true) removes it, DropPartition removes every user
// of a partition handed to another instance.
//
// Concurrency: a Table is not safe for concurrent use. The personalizer's
// engine owns it and calls it from one goroutine; Len is the exception (it
// may be read from any goroutine, for metrics).
package profiles
