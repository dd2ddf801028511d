-- Issue 16 items 4 and 5 (h16c): what the refill worklist and the cohort flow early warning read from each pump's row.
-- All filled by the pump projection from the folded state; rows written before this migration get them at the pump's
-- next event (or at once with `projections rebuild pumps`).
ALTER TABLE pf_pump_status
    -- The ledger's low-reservoir date at the programmed rate (next_refill_due_at may be an earlier drug rule), and the
    -- event time the forecast is projected from: a cohort's flow factor rescales the time between the two.
    ADD COLUMN IF NOT EXISTS low_reservoir_at      timestamptz NULL,
    ADD COLUMN IF NOT EXISTS forecast_from         timestamptz NULL,
    -- With a cohort's factor the level itself is corrected too: motor volume since the refill × (factor − 1) is
    -- already gone; then it falls at the forecast rate × factor down to the low-reservoir level.
    ADD COLUMN IF NOT EXISTS delivered_since_refill_ml double precision NULL,
    ADD COLUMN IF NOT EXISTS forecast_rate_ml_per_day  double precision NULL,
    ADD COLUMN IF NOT EXISTS low_reservoir_ml          double precision NULL,
    -- What to prepare for a refill: reservoir size and the prescribed concentration.
    ADD COLUMN IF NOT EXISTS reservoir_capacity_ml double precision NULL,
    ADD COLUMN IF NOT EXISTS concentration_value   double precision NULL,
    ADD COLUMN IF NOT EXISTS concentration_unit    text NULL,
    -- The flow factor of the pump's last complete refill cycle (real over motor-reported consumption), when known.
    ADD COLUMN IF NOT EXISTS refill_flow_factor    double precision NULL,
    ADD COLUMN IF NOT EXISTS refill_flow_at        timestamptz NULL,
    ADD COLUMN IF NOT EXISTS refill_flow_cycle_ml  double precision NULL;

-- The cohort flow job reads only pumps with a sample, newest first within the window.
CREATE INDEX IF NOT EXISTS pf_pump_status_refill_flow ON pf_pump_status (refill_flow_at) WHERE refill_flow_factor IS NOT NULL;
