-- Surveillance dimensions of a pump (issue 16): indication, normalised drug, therapy phase and implant date, the
-- explant date, and the first time of each failure kind (anomaly kinds and pump alarm codes), from which the
-- surveillance view groups cohorts by indication, drug, phase and implant age, counts pumps affected, and estimates
-- device survival. Filled by the cohorts projection; a rebuild of that projection fills them for existing pumps.
ALTER TABLE pf_cohort_members
    ADD COLUMN IF NOT EXISTS indication     text NULL,
    ADD COLUMN IF NOT EXISTS drug           text NULL,
    ADD COLUMN IF NOT EXISTS phase          text NULL,
    -- Event times of the phase and the drug kept, so a late-arriving older event cannot undo a newer one.
    ADD COLUMN IF NOT EXISTS phase_at       timestamptz NULL,
    ADD COLUMN IF NOT EXISTS drug_at        timestamptz NULL,
    ADD COLUMN IF NOT EXISTS implanted_at   timestamptz NULL,
    ADD COLUMN IF NOT EXISTS explanted_at   timestamptz NULL,
    -- {"anomaly:flow-stall": "<first detectedAt>", "alarm:MOTOR_STALL": "<first raised>", …}: the end points of survival.
    ADD COLUMN IF NOT EXISTS first_failures jsonb NOT NULL DEFAULT '{}'::jsonb;
