// Package capture streams the committed changes of the captured tables out
// of Postgres (logical replication with pgoutput) and produces them to Kafka
// as events, with these invariants:
//
//   - The replication slot's confirmed (flushed) LSN moves only to the end of
//     a transaction every event of which, and of every transaction before
//     it, Kafka acked (idempotent producer, acks from all replicas). A crash
//     anywhere loses nothing: Postgres streams again from the confirmed LSN.
//     Events sent again keep their ids (events.ChangeID of database, table,
//     the change's LSN and the key). A keepalive's position counts as an
//     empty transaction there, so the slot also moves past WAL that sends
//     nothing, and a fast shutdown of Postgres does not wait for the
//     ingestor's confirmation until wal_sender_timeout.
//   - Nothing is produced twice across a crash (readback.go): before it
//     streams from a slot that existed, a session reads back, from the end
//     of each partition it writes, the events of transactions at or past
//     the slot's confirmed LSN, and while those transactions stream again
//     it produces only the events whose ids Kafka does not hold.
//   - Events of one key go, in commit order, to one partition (the record key
//     is the content id or user id), from one producer.
//   - A row that cannot become an event goes to the topic's dead-letter topic
//     with the reason, counts as delivered, and never stops the stream.
//   - The publication and the slot are created when missing. The capture
//     waits, logging which ones, until every captured table exists.
//   - On any failure of the session (Postgres restarted, network) it waits
//     for the events in flight, then connects again with exponential backoff
//     and resumes from the slot.
//   - Heartbeats (pg_logical_emit_message) keep the slot moving while the
//     captured tables are quiet; the slot's lag is a metric, with a warning
//     past the pipeline's capture.slot_lag_warning.
//   - Outbox messages (pg_logical_emit_message under capture.outbox.prefix)
//     become content events, in their transaction.
//   - Snapshots (snapshot.go) interleave primary-key chunks with the stream
//     between watermark messages, so that the topic ends with each row's
//     latest state, whatever was written meanwhile.
//
// Concurrency: Run is called once; Ready and Resnapshot may be called from
// any goroutine.
package capture
