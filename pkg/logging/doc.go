// Package logging builds the zap loggers of every Freshet service and holds the
// field names they share, so that a query over the logs of the whole pipeline
// can rely on one spelling: topic, partition, offset, user_id, event_id,
// target, component, service, lsn and error.
//
// Use the field constructors ([Topic], [Partition], [Offset], [UserID],
// [EventID], [Target], [Component], [Service], [LSN], [Error], [Record])
// instead of spelling keys by hand, and [Token] or [Redacted] for anything
// secret: a token is logged only as a short fingerprint, a password never.
// franz-go logs through [Kgo].
//
// Concurrency: the loggers returned by [New] and [Kgo] are safe for concurrent
// use, as zap loggers are. Every function of this package is safe to call from
// several goroutines.
package logging
