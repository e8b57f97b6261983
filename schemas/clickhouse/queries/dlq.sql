-- Dead-lettered records since {since}, per topic they came from and the
-- component that gave up on them, with the latest error.
SELECT
    source_topic,
    component,
    count() AS records,
    max(at) AS last_at,
    argMax(error, at) AS last_error
FROM dlq_records
WHERE at >= {since}
GROUP BY source_topic, component
ORDER BY records DESC
