-- The pumps projection's folded PumpState moves out of pf_pump_status into a table of its own (issue 15, issue 14's
-- "the pumps read model stops rewriting the whole folded state"). The state (about 1.8 KB of jsonb per pump) sat
-- inline in the status row, below PostgreSQL's TOAST threshold, so every status update of every page wrote a new
-- copy of it although the state itself is written only every PumpProjection.StateEvery events: a status update wrote
-- 2,698 WAL bytes with the state in the row against 878 without (docs/benchmarks.md "The pumps read model without its
-- fold"). pf_pump_status now holds only what the API and the pages read; pf_pump_fold is written when the state is
-- due, and read only by a worker that does not hold the pump in memory.
CREATE TABLE IF NOT EXISTS pf_pump_fold (
    serial        text   PRIMARY KEY,
    -- The stream version the state has folded (was pf_pump_status.state_version, migration 022).
    state_version bigint NOT NULL,
    state         jsonb  NOT NULL
);

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM information_schema.columns WHERE table_name = 'pf_pump_status' AND column_name = 'state') THEN
        -- '{}' was the placeholder of a row whose state was never written (a new pump always wrote one).
        INSERT INTO pf_pump_fold (serial, state_version, state)
        SELECT serial, state_version, state FROM pf_pump_status WHERE state <> '{}'::jsonb
        ON CONFLICT (serial) DO NOTHING;
        -- Dropping is a catalogue change; the old rows' space is reused as they are updated (or at once: VACUUM FULL).
        ALTER TABLE pf_pump_status DROP COLUMN state, DROP COLUMN state_version;
    END IF;
END $$;

SELECT pf_grant('pumpfleet_silo', 'SELECT, INSERT, UPDATE, DELETE', ARRAY['pf_pump_fold']);
SELECT pf_grant('pumpfleet_dashboard', 'SELECT, DELETE', ARRAY['pf_pump_fold']);
