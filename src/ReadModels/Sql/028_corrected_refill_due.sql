-- Issue 16 (h16x): the cohort flow correction is part of each pump's state (flow-correction.changed, told by the
-- cohort flow job), so next_refill_due_at is stored already corrected when the correction brings it forward, with
-- where it came from; the worklist serves these columns as they are (no correction on read). Filled by the pump
-- projection; rows written before this migration get them at the pump's next event (or with `projections rebuild pumps`).
ALTER TABLE pf_pump_status
    -- 'ledger' (the programmed-rate low-reservoir forecast), 'drug-rule' (ziconotide stability) or 'cohort-flow'.
    ADD COLUMN IF NOT EXISTS next_refill_due_source     text NULL,
    -- The due date without the cohort correction (the ledger's or the drug rule's).
    ADD COLUMN IF NOT EXISTS uncorrected_refill_due_at  timestamptz NULL,
    -- The correction the pump holds: the cohort's factor, its stream id and the cohort-flow-deviation that is its source.
    ADD COLUMN IF NOT EXISTS flow_factor                double precision NULL,
    ADD COLUMN IF NOT EXISTS flow_cohort                text NULL,
    ADD COLUMN IF NOT EXISTS flow_anomaly_id            text NULL;

-- The cohort flow job finds the pumps to tell: those of a warned lot (model leads pf_pump_status_cohort already) and
-- those still holding a correction whose warning may have resolved.
CREATE INDEX IF NOT EXISTS pf_pump_status_lot ON pf_pump_status (lot);
CREATE INDEX IF NOT EXISTS pf_pump_status_flow_correction ON pf_pump_status (flow_anomaly_id) WHERE flow_anomaly_id IS NOT NULL;

-- The cohort flow tally (h16x, issue 16): per pump its last complete refill-cycle flow factor, kept by the
-- per-partition flow tally grains from the pumpfleet-log stream (src/ReadModels/Fleet/CohortFlowTallyGrain.cs) and
-- read back only when such a grain activates; the cohort flow job asks the grains, not this table (nor
-- pf_pump_status). delivered_total_ml / delivered_at_refill_ml: motor volume so far and at the last refill (the open
-- cycle); flow_factor / cycle_ml: the last closed cycle's sample (null when it had none). version is the highest stream
-- version applied: a redelivered event at or below it is dropped. Rebuildable: empty it and delete the checkpoints
-- 'consumer:cohort-flow:%' and the grains recount from the log.
CREATE TABLE IF NOT EXISTS pf_cohort_flow (
    serial                 text PRIMARY KEY,
    log_partition          smallint NOT NULL,
    model                  text NULL,
    firmware               text NULL,
    lot                    text NULL,
    delivered_total_ml     double precision NOT NULL DEFAULT 0,
    delivered_at_refill_ml double precision NOT NULL DEFAULT 0,
    refills                int NOT NULL DEFAULT 0,
    last_refill_at         timestamptz NULL,
    flow_factor            double precision NULL,
    cycle_ml               double precision NULL,
    version                bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS pf_cohort_flow_partition ON pf_cohort_flow (log_partition);

SELECT pf_grant('pumpfleet_silo', 'SELECT, INSERT, UPDATE, DELETE', ARRAY['pf_cohort_flow']);
SELECT pf_grant('pumpfleet_dashboard', 'SELECT', ARRAY['pf_cohort_flow']);
