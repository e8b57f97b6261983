// Package pgoutput decodes the messages of Postgres's pgoutput logical
// decoding plugin (protocol version 1): Begin, Commit, Origin, Relation,
// Type, Insert, Update, Delete, Truncate and logical decoding Messages.
//
// It exists beside jackc/pglogrepl (which the ingestor uses for the
// replication protocol itself: slots, START_REPLICATION, XLogData, standby
// status updates) because a decoder of bytes that come from outside the
// process must never panic: every length here is checked against the bytes
// left, and a short or malformed message is an error wrapping ErrMalformed.
// It also does not copy: the values of a decoded tuple are slices of the
// message, valid until the buffer they came from is reused (pgconn reuses it
// on the next receive), so callers convert what they keep.
//
// Concurrency: the functions keep no state and are safe for concurrent use;
// a decoded message is plain data.
package pgoutput
