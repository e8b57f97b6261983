-- SSE delivery lag per route and region, since {since}: browser receive
-- time minus the change's commit time, as the browsers measured it (clock
-- skew between browser and database included). Duplicate beacons removed by
-- event id.
SELECT
    route,
    region,
    count() AS deliveries,
    round(quantile(0.5)(lag), 1) AS p50_ms,
    round(quantile(0.95)(lag), 1) AS p95_ms,
    round(quantile(0.99)(lag), 1) AS p99_ms,
    round(max(lag), 1) AS max_ms
FROM (SELECT event_id, route, region, lag_ms FROM rum_beacons WHERE received_at >= {since} LIMIT 1 BY event_id)
ARRAY JOIN lag_ms AS lag
GROUP BY route, region
ORDER BY deliveries DESC
