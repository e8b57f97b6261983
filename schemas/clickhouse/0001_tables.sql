-- Freshet analytics, version 1: the raw tables the metrics-sink writes, and
-- the per-minute rollups that materialized views keep from them.
--
-- Portable SQL: runs on ClickHouse 18.16 (Debian, the tests) and current
-- releases (docker compose's 24.8). No DateTime64 (a DateTime plus a
-- millisecond column), no Map (parallel arrays), no TTL here (the
-- metrics-sink adds it where the server has it), no IF NOT EXISTS on
-- ADD COLUMN, no LowCardinality (18.16 needs a profile setting for it).
--
-- Every raw row carries the Kafka partition and offset it was read from
-- (kafka_partition, kafka_offset), which is also its sort key: after a
-- crash or a failed insert, the sink looks up which offsets are already
-- stored and skips them, so a retry never writes a row twice. Events a
-- producer sent twice (same event_id, two offsets) are removed by the
-- ready-made queries (LIMIT 1 BY event_id). See docs/metrics-sink.md.
--
-- Statements are separated by a line that ends with a semicolon.

CREATE TABLE IF NOT EXISTS latency_samples (
    event_id          String,
    subject_event_id  String,
    service           String,
    instance          String,
    stage             String,
    target            String,
    duration_us       Int64,
    at                DateTime,
    at_ms             UInt16,
    committed_at      DateTime,
    label_keys        Array(String),
    label_values      Array(String),
    kafka_partition   UInt32,
    kafka_offset      UInt64
) ENGINE = MergeTree
PARTITION BY toYYYYMMDD(at)
ORDER BY (kafka_partition, kafka_offset);

CREATE TABLE IF NOT EXISTS edge_purges (
    event_id               String,
    purge_id               String,
    target                 String,
    provider               String,
    outcome                String,
    soft                   UInt8,
    attempts               UInt32,
    status_code            UInt16,
    error                  String,
    key_count              UInt32,
    url_count              UInt32,
    change_event_ids       Array(String),
    committed_at           DateTime,
    started_at             DateTime,
    finished_at            DateTime,
    finished_ms            UInt16,
    latency_from_commit_us Int64,
    kafka_partition        UInt32,
    kafka_offset           UInt64
) ENGINE = MergeTree
PARTITION BY toYYYYMMDD(finished_at)
ORDER BY (kafka_partition, kafka_offset);

CREATE TABLE IF NOT EXISTS rum_beacons (
    event_id          String,
    received_at       DateTime,
    received_ms       UInt16,
    user_hash         String,
    route             String,
    device_class      String,
    connection_class  String,
    region            String,
    vital_names       Array(String),
    vital_values      Array(Float64),
    vital_ratings     Array(String),
    lag_event_ids     Array(String),
    lag_ms            Array(Float64),
    kafka_partition   UInt32,
    kafka_offset      UInt64
) ENGINE = MergeTree
PARTITION BY toYYYYMMDD(received_at)
ORDER BY (kafka_partition, kafka_offset);

CREATE TABLE IF NOT EXISTS deliveries (
    event_id          String,
    change_event_id   String,
    channel           String,
    committed_at      DateTime,
    produced_at       DateTime,
    produced_ms       UInt16,
    kafka_partition   UInt32,
    kafka_offset      UInt64
) ENGINE = MergeTree
PARTITION BY toYYYYMMDD(produced_at)
ORDER BY (kafka_partition, kafka_offset);

CREATE TABLE IF NOT EXISTS dlq_records (
    at                DateTime,
    dlq_topic         String,
    source_topic      String,
    component         String,
    error             String,
    kafka_partition   UInt32,
    kafka_offset      UInt64
) ENGINE = MergeTree
PARTITION BY toYYYYMMDD(at)
ORDER BY (dlq_topic, kafka_partition, kafka_offset);

CREATE TABLE IF NOT EXISTS latency_1m (
    minute    DateTime,
    service   String,
    stage     String,
    target    String,
    n         AggregateFunction(count),
    q         AggregateFunction(quantiles(0.5, 0.95, 0.99), Float64)
) ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMMDD(minute)
ORDER BY (minute, service, stage, target);

CREATE MATERIALIZED VIEW IF NOT EXISTS latency_1m_mv TO latency_1m AS
SELECT toStartOfMinute(at) AS minute, service, stage, target,
       countState() AS n,
       quantilesState(0.5, 0.95, 0.99)(duration_us / 1000) AS q
FROM latency_samples
GROUP BY minute, service, stage, target;

CREATE TABLE IF NOT EXISTS purge_latency_1m (
    minute    DateTime,
    target    String,
    provider  String,
    outcome   String,
    n         AggregateFunction(count),
    attempts  AggregateFunction(sum, UInt64),
    q         AggregateFunction(quantiles(0.5, 0.95, 0.99), Float64)
) ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMMDD(minute)
ORDER BY (minute, target, provider, outcome);

CREATE MATERIALIZED VIEW IF NOT EXISTS purge_latency_1m_mv TO purge_latency_1m AS
SELECT toStartOfMinute(finished_at) AS minute, target, provider, outcome,
       countState() AS n,
       sumState(toUInt64(attempts)) AS attempts,
       quantilesState(0.5, 0.95, 0.99)(latency_from_commit_us / 1000) AS q
FROM edge_purges
GROUP BY minute, target, provider, outcome;

CREATE TABLE IF NOT EXISTS sse_lag_1m (
    minute    DateTime,
    route     String,
    region    String,
    n         AggregateFunction(count),
    q         AggregateFunction(quantiles(0.5, 0.95, 0.99), Float64)
) ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMMDD(minute)
ORDER BY (minute, route, region);

CREATE MATERIALIZED VIEW IF NOT EXISTS sse_lag_1m_mv TO sse_lag_1m AS
SELECT toStartOfMinute(received_at) AS minute, route, region,
       countState() AS n,
       quantilesState(0.5, 0.95, 0.99)(lag) AS q
FROM rum_beacons
ARRAY JOIN lag_ms AS lag
GROUP BY minute, route, region;

CREATE TABLE IF NOT EXISTS web_vitals_1m (
    minute        DateTime,
    route         String,
    region        String,
    device_class  String,
    name          String,
    n             AggregateFunction(count),
    good          AggregateFunction(sum, UInt64),
    poor          AggregateFunction(sum, UInt64),
    q             AggregateFunction(quantiles(0.5, 0.75, 0.95, 0.99), Float64)
) ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMMDD(minute)
ORDER BY (minute, route, name, region, device_class);

CREATE MATERIALIZED VIEW IF NOT EXISTS web_vitals_1m_mv TO web_vitals_1m AS
SELECT toStartOfMinute(received_at) AS minute, route, region, device_class, name,
       countState() AS n,
       sumState(toUInt64(rating = 'good')) AS good,
       sumState(toUInt64(rating = 'poor')) AS poor,
       quantilesState(0.5, 0.75, 0.95, 0.99)(value) AS q
FROM rum_beacons
ARRAY JOIN vital_names AS name, vital_values AS value, vital_ratings AS rating
GROUP BY minute, route, region, device_class, name;
