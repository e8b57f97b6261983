// Package sink is the metrics-sink's loop: it reads rum.beacons,
// pipeline.latency, edge.purges, content.deliveries and the dead letter
// topics with one consumer group, turns each record into a row
// (internal/rows), and writes the rows to ClickHouse in native batches.
//
// Invariants, in the order the loop keeps them:
//
//   - A batch is flushed when it holds Config.BatchRows rows or its oldest
//     row waited Config.BatchInterval. Offsets are committed only after
//     every table's insert of that batch succeeded, and after the batch's
//     malformed records reached their dead letter topics.
//   - While ClickHouse refuses an insert, the loop retries with exponential
//     backoff (up to Config.MaxBackoff), pauses fetching, polls nothing and
//     reports not ready: memory holds at most one batch and the fetches the
//     client had buffered (Config.FetchMaxBytes).
//   - A row is never inserted twice by the sink: each raw row carries its
//     Kafka partition and offset (the tables' sort key). Before the first
//     insert of a partition after a start, a rebalance or a failed insert,
//     the sink asks ClickHouse which offsets of the batch's range it holds
//     and leaves those rows out. So a crash between insert and commit, or
//     an insert whose outcome was lost, changes neither the raw tables nor
//     the rollups their materialized views fill.
//   - Rebalances wait for the batch in hand (kgo.BlockRebalanceOnPoll): a
//     partition's rows are flushed and committed by the member that read
//     them.
//
// A Sink runs in one goroutine (Run); Ready and Close may be called from
// others.
package sink
