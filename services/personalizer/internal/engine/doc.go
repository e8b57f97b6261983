// Package engine is the personalizer's stream-table join: it keeps the
// profiles of the user.profiles partitions this instance owns in a
// profiles.Table, reads every content.changes partition, scores each change
// against the table and produces the deliveries to content.deliveries, with
// exactly-once output.
//
// # Work split
//
// The instances form one consumer group over user.profiles (franz-go's
// kgo.GroupTransactSession). A user.profiles partition p belongs to one
// instance at a time, and with it the users keyed to p and partition p of
// content.deliveries (the topics are co-partitioned: a user's deliveries go to
// the partition their profile came from). Every instance reads all of
// content.changes with a second, direct consumer.
//
// # Progress and exactly-once
//
// The position in content.changes is kept per user partition: for each owned
// p, Progress[p] maps a content partition to the offset of the next change
// to process for the users of p. It is stored in the metadata of the group's
// committed offset of user.profiles partition p, and committed in the same
// Kafka transaction as the deliveries it covers (TxnOffsetCommit, through
// kgo.PreTxnCommitFnContext): deliveries and progress become visible together
// or not at all. Every transaction commits the offsets of every owned
// partition, so every transaction is fenced by the group generation: an
// instance that lost a partition without knowing it cannot commit.
//
// On assignment an instance fetches the committed offsets with RequireStable
// (so a pending transaction of the previous owner finishes first), restores
// the profiles of the new partitions below the committed offset, and reads
// content.changes from the lowest progress of its partitions; a change below
// a partition's progress is skipped for that partition's users. An aborted
// transaction rolls the in-memory progress back to the last commit and
// rewinds both consumers, so its changes are processed again.
//
// # Ordering
//
// Within a transaction, the profile records polled are applied before the
// changes polled with them are scored: a change is scored against the table
// as it stands after every profile record fetched up to that point. A profile
// update and a change produced at the same moment have no order between
// them (they are on different topics); the change sees the update if the
// update was fetched no later than the change.
//
// Concurrency: an Engine runs in one goroutine (Run); Ready and Close may be
// called from others.
package engine
