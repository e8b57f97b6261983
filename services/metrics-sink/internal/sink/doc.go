// Package sink is the metrics-sink's loop: it reads rum.beacons,
// pipeline.latency, edge.purges, content.deliveries and the dead letter
// topics with one consumer group, turns each record into a row
// (internal/rows), and writes the rows to ClickHouse in native batches.
//
// Invariants, in the order the loop keeps them:
//
//   - A batch is handed to the inserter when it holds Config.BatchRows rows
//     or its oldest row waited Config.BatchInterval. The loop fills the next
//     batch while the inserter stores the previous one (two batches, no
//     more: the loop waits for the inserter). The inserter stores batches in
//     order and commits a batch's offsets only after every table's insert of
//     it succeeded, and after its malformed records reached their dead
//     letter topics.
//   - While ClickHouse refuses an insert, the inserter retries with
//     exponential backoff (up to Config.MaxBackoff), pauses fetching and
//     reports not ready; the loop stops polling once the next batch is
//     full: memory holds at most two batches and the fetches the client had
//     buffered (Config.FetchMaxBytes).
//   - A row is never inserted twice by the sink: each raw row carries its
//     Kafka partition and offset (the tables' sort key). Before the first
//     insert of a partition after a start, a rebalance or a failed insert,
//     the sink asks ClickHouse which offsets of the batch's range it holds
//     and leaves those rows out. So a crash between insert and commit, or
//     an insert whose outcome was lost, changes neither the raw tables nor
//     the rollups their materialized views fill.
//   - Rebalances wait (kgo.BlockRebalanceOnPoll) until every batch handed
//     over is stored and committed: a partition's rows are committed by the
//     member that read them.
//
// A Sink runs in two goroutines, the loop (Run) and the inserter it starts;
// Ready and Close may be called from others.
package sink
