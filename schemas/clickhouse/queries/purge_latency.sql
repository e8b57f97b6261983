-- Purge latency per target: from the oldest change's commit to the target's
-- acknowledgement, for the purge batches that finished since {since}, with
-- their outcomes and attempts. Each batch counted once: the audit of a
-- large batch is split into parts that all hold its attempts, outcome and
-- latency, and only part 1 is taken. Duplicates removed by event id.
SELECT
    target,
    any(provider) AS provider,
    count() AS batches,
    countIf(outcome = 'acked') AS acked,
    countIf(outcome = 'failed') AS failed,
    round(avg(attempts), 2) AS avg_attempts,
    round(quantileIf(0.5)(latency_from_commit_us / 1000, outcome = 'acked'), 1) AS p50_ms,
    round(quantileIf(0.95)(latency_from_commit_us / 1000, outcome = 'acked'), 1) AS p95_ms,
    round(quantileIf(0.99)(latency_from_commit_us / 1000, outcome = 'acked'), 1) AS p99_ms
FROM (SELECT * FROM edge_purges WHERE finished_at >= {since} AND part = 1 LIMIT 1 BY event_id)
GROUP BY target
ORDER BY target
