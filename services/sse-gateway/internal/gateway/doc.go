// Package gateway is the sse-gateway: it reads content.deliveries, keeps a
// bounded history per partition, and writes each delivery to the streams
// (GET /v1/stream) of its user and channels; it also mounts POST /v1/rum and
// /v1/client.js. docs/sse-gateway.md describes the behaviour users see.
//
// Components: the consumer (consumer.go) reads every partition without a
// consumer group (each replica serves its own connections) and hands records
// to the hub (hub.go), which keeps the history and offers each delivery to
// the bounded queue of every stream that wants it (conn.go); each stream has
// its own writer (stream.go) with write deadlines and heartbeats. Resumes
// come from the history or, when it no longer holds the cursor, from Kafka
// (replay.go).
//
// Invariants:
//   - The hub's lock orders the consumer and subscriptions: a delivery
//     published before a stream subscribed is in the history it reads back
//     (or in the Kafka range it replays), one published after is offered to
//     its queue. The writer drops every delivery below its cursor, so the
//     overlap is never sent twice.
//   - The cursor of an event covers everything before it in every partition
//     of the stream: queues stay in offset order per partition (conflation
//     removes the older version and appends the newer).
//   - The consumer never waits for a stream: offer does not block, and a
//     stream that cannot keep up is re-read from the history or ended
//     (the slow-client policy in conn.go).
//   - A replica serves the partitions it listed at start, and a stream's
//     partitions are computed from their number: when the topic's count
//     changes (watchPartitions), Run shuts down and returns
//     ErrPartitionsChanged rather than serve users from the wrong
//     partitions.
//
// Concurrency: a Gateway is used through Run and Close; Close is safe to
// call twice, and from another goroutine than Run. Metrics and Ready are
// safe for concurrent use.
package gateway
