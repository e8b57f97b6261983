-- Freshet analytics, version 3: a purge batch counted once, whatever the
-- number of records of its audit.
--
-- The invalidator splits the audit of a batch whose change ids, keys and
-- urls are too large for one record into several (PurgeAudit part i of
-- parts n), each with a slice of the lists and the batch's attempts,
-- outcome, times and latency. edge_purges keeps a row per record, now with
-- part and parts; counting a batch, its attempts or its latency takes its
-- part 1 only. Rows written before this version read as part 1 of 1: a
-- batch split before it is still counted once per record.
--
-- On 18.16, over a data part written before this version and not merged
-- since, a query whose WHERE goes to PREWHERE mishandles these two DEFAULT
-- columns: a WHERE on both part and parts fails ("Column '1' already
-- exists", fixed in 19.7: ClickHouse#5397), and a SELECT of no other
-- column than them returns no row. Test one of them, and select another
-- column too, as the ready-made queries do; a merge with a newer data part
-- ends it.
ALTER TABLE edge_purges ADD COLUMN part UInt16 DEFAULT 1 AFTER event_id;

ALTER TABLE edge_purges ADD COLUMN parts UInt16 DEFAULT 1 AFTER part;

-- The per-minute rollup aggregated every row, so a batch of n parts counted
-- n times; it now takes part 1 of each batch. The view is dropped and made
-- again (18.16 cannot change a view's query), which a second run does
-- again to the same end; rows already in purge_latency_1m stay as they
-- were. A row another sink inserts between the two statements is not
-- rolled up.
DROP TABLE IF EXISTS purge_latency_1m_mv;

CREATE MATERIALIZED VIEW IF NOT EXISTS purge_latency_1m_mv TO purge_latency_1m AS
SELECT toStartOfMinute(finished_at) AS minute, target, provider, outcome,
       countState() AS n,
       sumState(toUInt64(attempts)) AS attempts,
       quantilesState(0.5, 0.95, 0.99)(latency_from_commit_us / 1000) AS q
FROM edge_purges
WHERE part = 1
GROUP BY minute, target, provider, outcome;
