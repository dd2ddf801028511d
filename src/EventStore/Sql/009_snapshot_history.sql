-- Snapshots kept at intervals (pf_snapshots keeps only the latest): an as-of view starts from the newest one whose
-- events all lie at or before the time asked for and folds a bounded tail, instead of the whole stream.
-- covers_until is the latest event time of any event at or below version (a clock-suspect device event counts at its
-- receive time, as the as-of fold does); it never decreases along a stream, so the newest row with
-- covers_until <= t is found walking the primary key backwards.
CREATE TABLE IF NOT EXISTS pf_snapshot_history (
    stream_id      text        NOT NULL,
    version        bigint      NOT NULL,
    schema_version int         NOT NULL,
    covers_until   timestamptz NOT NULL,
    state          jsonb       NOT NULL,
    taken_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (stream_id, version)
);

SELECT pf_grant('pumpfleet_silo', 'SELECT, INSERT, UPDATE, DELETE', ARRAY['pf_snapshot_history']);
SELECT pf_grant('pumpfleet_dashboard', 'SELECT', ARRAY['pf_snapshot_history']);
