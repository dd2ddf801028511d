-- The cohort tally (issue 14): per pump its contribution to its cohort, kept by the per-partition tally grains from
-- the pumpfleet-log stream (src/ReadModels/Fleet/CohortTallyGrain.cs) and read back only when a tally grain activates.
-- The cohort signal job asks the grains, not this table. log_partition is the event log's partition of the serial
-- (pf_log_partition), so a grain loads only its own pumps. version is the highest stream version counted: a
-- redelivered event at or below it is dropped, so at-least-once delivery counts every event once. Rebuildable: empty it
-- and delete the checkpoints 'consumer:cohort-tally:%' and the grains recount from the log.
CREATE TABLE IF NOT EXISTS pf_cohort_tally (
    serial          text PRIMARY KEY,
    log_partition   smallint NOT NULL,
    model           text NULL,
    firmware        text NULL,
    lot             text NULL,
    first_event_at  timestamptz NULL,
    last_event_at   timestamptz NULL,
    alarms          int NOT NULL DEFAULT 0,
    critical_alarms int NOT NULL DEFAULT 0,
    anomalies       int NOT NULL DEFAULT 0,
    version         bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS pf_cohort_tally_partition ON pf_cohort_tally (log_partition);

SELECT pf_grant('pumpfleet_silo', 'SELECT, INSERT, UPDATE, DELETE', ARRAY['pf_cohort_tally']);
SELECT pf_grant('pumpfleet_dashboard', 'SELECT', ARRAY['pf_cohort_tally']);
