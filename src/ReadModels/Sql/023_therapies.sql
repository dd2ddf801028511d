-- Therapies (issue 16): a patient's therapy under the clinic's pseudonymous id, from trial to explant, and the
-- pumps it used one after another; and every refill a pump reported, for the therapy timeline. Kept by the
-- `therapies` projection from the therapy streams (`therapy:{id}`) and the pumps' `refill` events; rebuildable.

-- One row per therapy: its folded phase and dates (the therapy grain's fold, TherapyState).
CREATE TABLE IF NOT EXISTS pf_therapies (
    id             text PRIMARY KEY,
    phase          text NOT NULL,
    indication     text NULL,
    opened_at      timestamptz NOT NULL,
    current_serial text NULL,
    -- The first implant of the therapy (a replacement does not move it).
    implanted_at   timestamptz NULL,
    ended_at       timestamptz NULL,
    -- Stream version folded: a replay of older events changes nothing.
    version        bigint NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS pf_therapies_phase ON pf_therapies (phase, id);

-- One row per pump that was ever implanted in a therapy, with its implant window; the pump list and pump view join
-- it by serial (therapy id, phase, implant date on the pump).
CREATE TABLE IF NOT EXISTS pf_therapy_pumps (
    serial         text PRIMARY KEY,
    therapy_id     text NOT NULL,
    implanted_at   timestamptz NOT NULL,
    explanted_at   timestamptz NULL,
    explant_reason text NULL
);
CREATE INDEX IF NOT EXISTS pf_therapy_pumps_therapy ON pf_therapy_pumps (therapy_id, implanted_at);

-- Every refill a pump reported (serial, seq = the refill event), for timelines.
CREATE TABLE IF NOT EXISTS pf_refill_log (
    serial                text NOT NULL,
    seq                   bigint NOT NULL,
    at                    timestamptz NOT NULL,
    drug                  text NOT NULL,
    concentration         double precision NOT NULL,
    concentration_unit    text NOT NULL,
    added_ml              double precision NOT NULL,
    expected_residual_ml  double precision NOT NULL,
    aspirated_residual_ml double precision NOT NULL,
    PRIMARY KEY (serial, seq)
);

SELECT pf_grant('pumpfleet_silo', 'SELECT, INSERT, UPDATE, DELETE', ARRAY['pf_therapies', 'pf_therapy_pumps', 'pf_refill_log']);
SELECT pf_grant('pumpfleet_dashboard', 'SELECT, DELETE', ARRAY['pf_therapies', 'pf_therapy_pumps', 'pf_refill_log']);
