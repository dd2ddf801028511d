-- Clinics (issue 16): the clinic a hub stands in, so a clinic's worklist, fleet overview and surveillance cohorts are
-- its hubs' pumps. A pump belongs to the clinic of the hub it is paired with now. Kept with the hub registry (the
-- gateway owns hubs); the read models are filtered by the clinic's hub ids, which the dashboard asks of this table.
CREATE TABLE IF NOT EXISTS pf_gateway_clinics (
    clinic_id   text PRIMARY KEY,
    name        text NOT NULL,
    -- IANA time zone of the clinic (e.g. Europe/Berlin), for showing its local day; NULL when not given.
    timezone    text NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    created_by  text NULL
);

-- NULL: the hub stands in no clinic yet. A revoked hub keeps the clinic it had (its history stays the clinic's).
ALTER TABLE pf_gateway_hubs ADD COLUMN IF NOT EXISTS clinic_id text NULL REFERENCES pf_gateway_clinics (clinic_id);
CREATE INDEX IF NOT EXISTS pf_gateway_hubs_clinic ON pf_gateway_hubs (clinic_id) WHERE clinic_id IS NOT NULL;

SELECT pf_grant('pumpfleet_dashboard', 'SELECT, INSERT, UPDATE', ARRAY['pf_gateway_clinics']);
SELECT pf_grant('pumpfleet_gateway', 'SELECT', ARRAY['pf_gateway_clinics']);
