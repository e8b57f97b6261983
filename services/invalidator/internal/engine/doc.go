// Package engine is the invalidator: it consumes content changes, builds
// each change's purge set from the pipeline's invalidation templates
// (pipeline.Invalidation.PurgeSet over the change's old and new values),
// and purges every target of the pipeline.
//
// # Flow
//
// The poll loop decodes each record; a record that does not decode goes to
// <topic>.dlq and counts as done. The changes of one source transaction
// (same txid and commit LSN) fetched together form a unit: for each
// target, the union of what the unit's changes purge there is queued as
// one piece, so a transaction's purges always travel in the same batch.
//
// Each target has its own sender: a queue, a coalescing window (the
// target's coalesce), and up to concurrency requests in flight. After the
// window, everything queued is one batch: keys, urls and prefixes are
// deduplicated and split into requests within max_keys and max_urls.
// A request waits for the target's token bucket (rate, burst), for a
// Retry-After the target sent, and for its circuit breaker; while it waits,
// new purges keep coalescing into the next batch. A failed request is
// retried with exponential backoff and full jitter (at least Retry-After)
// until it succeeds, its attempts run out, its error is permanent (a
// refused token, a bad request), or dead_letter_after has passed since its
// oldest purge was queued: then the changes it carried go to the DLQ with
// the target and the reason. Senders share nothing: a slow or failing
// target never delays the others. Nor does it hold up consumption: a
// failing target (its last request failed, or its breaker is not closed)
// that holds more than half of MaxInFlight changes dead-letters its oldest
// queued ones unsent.
//
// # Offsets (the guarantee)
//
// A change is done when every target acked its purges or they reached the
// DLQ (the DLQ write acknowledged by Kafka). Offsets are committed per
// partition up to the first change not done, never past it, every
// CommitInterval and when partitions are revoked, after the audit and
// latency records produced so far are flushed. So no purge is lost across
// a crash, a kill -9 or a rebalance: what was not committed is consumed
// and purged again (purges are idempotent, so a repeat is harmless).
//
// # Records produced
//
// A PurgeAudit per target batch to edge.purges (keyed by target; a batch
// whose change ids, keys and urls would make a record over MaxAuditBytes
// gets several, each with a slice of them: see produceAudit), and a
// LatencySample per change to pipeline.latency (stage commit_to_purged:
// from the source commit to the last target's ack).
//
// Concurrency: Run is called once; the poll loop, the commit loop and one
// loop per target run in their own goroutines.
package engine
