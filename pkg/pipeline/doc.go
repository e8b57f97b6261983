// Package pipeline reads the pipeline file (pipelines/*.yaml): what is
// captured and what follows from it, declared rather than coded, for every
// service. It covers:
//
//   - topics: partitions, replication, retention and cleanup of the design's
//     topics (and any others), plus the dead-letter topics "<topic>.dlq";
//   - capture (cdc-ingestor): publication, slot, heartbeat, snapshot, outbox,
//     and the captured tables with their column mappings and keys;
//   - invalidation (invalidator): purge templates for surrogate keys and
//     urls, and the targets (varnish, fastly, cloudflare, http) with their
//     batching, rate, retry and circuit breaker settings;
//   - personalization (personalizer, sse-gateway): scoring rules, threshold,
//     cap, deadline and broadcast channels.
//
// [Load] and [Parse] apply the file on top of [Default], fill derived
// defaults, then validate everything. A bad file yields every problem, each
// an [*Error] with file, line and field, e.g.
//
//	pipelines/freshet.yaml:14: capture.tables[1].key: column "uid" is not in columns
//
// Unknown keys are errors, so typos never pass silently. [Check] is what a
// service's check command calls. docs/pipelines.md is the reference of the
// format.
//
// [Template] is the compiled form of a template such as tag:{tags[*]}; the
// invalidator and personalizer expand templates over a change's [Fields].
//
// Secrets never appear in the file: targets name the environment variables
// that hold them (token_env, header_env), read with [Target.Token].
//
// Concurrency: Load, Parse and ParseTemplate keep no shared state. A
// *Pipeline and its Templates are read-only after Parse returns and safe for
// concurrent use; code that builds a Pipeline by hand must finish (and
// Validate) it before sharing it.
package pipeline
