// Package scoring applies the pipeline's personalization rules
// (pipeline.Personalization) to a content change and the profile table:
// which users are candidates (their interests, follows or segments match a key
// the rules expand from the change), what each scores, who passes the
// threshold and the cap, and the reasons behind every score.
//
// The formula is the one pkg/pipeline documents on Personalization. Two
// precisions of this implementation:
//
//   - The cap (max_deliveries_per_change) is split over the partitions of
//     user.profiles: each partition keeps its quota of highest scores (ties
//     broken by user id), cap/partitions, plus one for cap%partitions of them
//     chosen from the change (Query.Spread), so the quotas add up to the cap
//     and never more. This keeps the result independent of which instance
//     owns which partition, so a rebalance or a restart never changes who
//     gets a change; a partition with fewer hits than its quota leaves the
//     rest of it unused (this is not a global top-k).
//   - The reasons of a delivery add up to its score: one reason per matching
//     key (rule interest, follow or segment), region and locale when they
//     match, and, when the change is older than zero, a recency reason whose
//     (negative) score is what the decay took away.
//
// Concurrency: a Scorer keeps scratch space and is not safe for concurrent
// use; use one per goroutine. Fields and Decay are pure functions.
package scoring
