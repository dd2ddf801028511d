-- Ingest per day (issue 16): how many events the platform stored per UTC day of receipt, device events (the hubs'
-- reports, with a seq) apart from the platform's own (anomalies, acknowledgements, therapy commands). The fleet
-- overview's ingest chart reads it; before, it could only count pumps with a daily-flow row. Kept by the `ingest`
-- projection; rebuildable (`projections rebuild ingest`), and a rebuild over a log whose oldest months were archived
-- (docs/operations.md §6) counts only what is still in the log.

-- One row per day and log partition: each partition's worker writes only its own rows, so partitions never wait on
-- each other; the API sums over partitions.
CREATE TABLE IF NOT EXISTS pf_ingest_daily (
    day              date     NOT NULL,
    log_partition    smallint NOT NULL,
    device_events    bigint   NOT NULL DEFAULT 0,
    platform_events  bigint   NOT NULL DEFAULT 0,
    PRIMARY KEY (day, log_partition)
);

-- The last event counted per log partition, in the log's gap-safe order: a page offered again (a lost checkpoint, a
-- replay from the start) is skipped up to it, so a count is never added twice. transaction_id holds the xid8 as a
-- bigint (xid8 values stay below 2^63 for the life of a cluster).
CREATE TABLE IF NOT EXISTS pf_ingest_marks (
    log_partition    smallint PRIMARY KEY,
    transaction_id   bigint   NOT NULL,
    global_position  bigint   NOT NULL
);

SELECT pf_grant('pumpfleet_silo', 'SELECT, INSERT, UPDATE, DELETE', ARRAY['pf_ingest_daily', 'pf_ingest_marks']);
SELECT pf_grant('pumpfleet_dashboard', 'SELECT, DELETE', ARRAY['pf_ingest_daily', 'pf_ingest_marks']);
