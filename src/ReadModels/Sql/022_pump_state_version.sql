-- The pumps projection keeps each pump's folded PumpState in memory between pages and writes the jsonb only every
-- so many events (PumpProjection.StateEvery) instead of on every page: the status columns the API serves are still
-- written per page. state_version is the stream version the stored state has folded; a worker without the pump in
-- memory loads it and folds the events state_version+1 .. version from the log (docs/projections.md).
ALTER TABLE pf_pump_status ADD COLUMN IF NOT EXISTS state_version bigint NOT NULL DEFAULT 0;
-- Until now the state was written with every page, so it has folded exactly version.
UPDATE pf_pump_status SET state_version = version WHERE state_version = 0 AND version > 0;
