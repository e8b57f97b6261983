-- Web vitals per route, since {since}: the 75th percentile of each metric
-- (the figure web-vitals and Core Web Vitals report) rated with the
-- web-vitals thresholds (good at or below the first, poor above the second:
-- LCP 2500 / 4000 ms, INP 200 / 500 ms, CLS 0.1 / 0.25, FCP 1800 / 3000 ms,
-- TTFB 800 / 1800 ms), and the share of page loads the browsers rated good
-- and poor. Duplicate beacons removed by event id.
SELECT
    route,
    name AS metric,
    count() AS samples,
    round(quantile(0.75)(value), 3) AS p75,
    multiIf(
        p75 <= multiIf(name = 'LCP', 2500, name = 'INP', 200, name = 'CLS', 0.1, name = 'FCP', 1800, 800), 'good',
        p75 <= multiIf(name = 'LCP', 4000, name = 'INP', 500, name = 'CLS', 0.25, name = 'FCP', 3000, 1800), 'needs improvement',
        'poor') AS rating,
    round(countIf(rating_seen = 'good') / count(), 3) AS good_share,
    round(countIf(rating_seen = 'poor') / count(), 3) AS poor_share
FROM (SELECT event_id, route, vital_names, vital_values, vital_ratings FROM rum_beacons WHERE received_at >= {since} LIMIT 1 BY event_id)
ARRAY JOIN vital_names AS name, vital_values AS value, vital_ratings AS rating_seen
GROUP BY route, name
ORDER BY route, name
