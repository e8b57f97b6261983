-- Freshness: how long after its commit a change reached each stage of the
-- pipeline, and the browsers of the users it concerned (commit to browser).
-- One row a path: count, changes, p50 / p95 / p99 in milliseconds.
--
-- A change's samples are joined by its event id: latency samples by
-- subject_event_id (cdc-ingestor commit_to_ack, personalizer
-- commit_to_deliver, ...), purges by change_event_ids (commit to the
-- target's ack), browsers by the delivery ids of their SSE lags, mapped to
-- the change through the deliveries table. Duplicates are removed by event
-- id (LIMIT 1 BY). Placeholders: {since} (a DateTime expression) and
-- {event} (one change's event id, or '' for every change); the
-- metrics-sink's `query freshness -since 1h [-event ID]` fills them.
SELECT
    path,
    count() AS samples,
    uniqExact(change_event_id) AS changes,
    round(quantile(0.5)(ms), 1) AS p50_ms,
    round(quantile(0.95)(ms), 1) AS p95_ms,
    round(quantile(0.99)(ms), 1) AS p99_ms,
    round(max(ms), 1) AS max_ms
FROM
(
    SELECT subject_event_id AS change_event_id, concat('commit → ', service, ' ', stage) AS path, duration_us / 1000 AS ms
    FROM (SELECT event_id, subject_event_id, service, stage, duration_us FROM latency_samples WHERE at >= {since} LIMIT 1 BY event_id)
    UNION ALL
    SELECT change_event_id, concat('commit → purge ', target) AS path, latency_from_commit_us / 1000 AS ms
    FROM (SELECT event_id, change_event_ids, target, latency_from_commit_us FROM edge_purges WHERE finished_at >= {since} AND outcome = 'acked' LIMIT 1 BY event_id)
    ARRAY JOIN change_event_ids AS change_event_id
    UNION ALL
    SELECT change_event_id, 'commit → browser' AS path, ms
    FROM
    (
        SELECT lag_event_id, ms
        FROM (SELECT event_id, lag_event_ids, lag_ms FROM rum_beacons WHERE received_at >= {since} LIMIT 1 BY event_id)
        ARRAY JOIN lag_event_ids AS lag_event_id, lag_ms AS ms
    )
    ANY INNER JOIN
    (
        SELECT event_id AS lag_event_id, change_event_id
        FROM deliveries
        WHERE produced_at >= {since} - 86400
    ) USING lag_event_id
)
WHERE {event} = '' OR change_event_id = {event}
GROUP BY path
ORDER BY p50_ms
