-- Events a projection could not apply (docs/projections.md, "Failures"): the runner retries a failing page with a
-- backoff, then applies it event by event and parks each event that still throws here, in the same transaction that
-- moves the partition's checkpoint past it, so the partition goes on and nothing is skipped without a trace. An
-- operator fixes the cause and asks for a retry (status 'retry'); the worker that owns the log partition applies the
-- event and marks it 'applied', or puts it back to 'parked' with the new error.
CREATE TABLE IF NOT EXISTS pf_projection_parked (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    projection    text NOT NULL,
    log_partition smallint NOT NULL,
    stream_id     text NOT NULL,
    version       bigint NOT NULL,
    event_id      uuid NOT NULL,
    event_type    text NOT NULL,
    reason        text NOT NULL,
    attempts      integer NOT NULL,
    status        text NOT NULL DEFAULT 'parked' CHECK (status IN ('parked', 'retry', 'applied')),
    parked_at     timestamptz NOT NULL DEFAULT now(),
    retry_by      text NULL,
    retried_at    timestamptz NULL,
    -- A replay after a rebuild parks the same event again only if the rebuild forgot the old row (it deletes them).
    UNIQUE (projection, event_id)
);

-- The workers look for retries and the gauge counts open rows; both only ever want the few rows not yet applied.
CREATE INDEX IF NOT EXISTS pf_projection_parked_open ON pf_projection_parked (projection, log_partition) WHERE status <> 'applied';

-- Least privilege (006's pf_grant): the silo parks and applies; the dashboard lists and asks for retries.
SELECT pf_grant('pumpfleet_silo', 'SELECT, INSERT, UPDATE, DELETE', ARRAY['pf_projection_parked']);
SELECT pf_grant('pumpfleet_dashboard', 'SELECT, UPDATE, DELETE', ARRAY['pf_projection_parked']);
