-- Tamper evidence (docs/security.md): every event carries a SHA-256 chained to the previous event of its stream, and
-- the event table refuses UPDATE, DELETE and TRUNCATE. Corrections are new events.
--
-- hash(v) = sha256(hash(v-1) || utf8(stream_id \n version \n event_id \n event_type \n seq \n device_time_us \n
--                                     received_at_us \n clock_suspect \n data \n metadata))
-- hash(0) is 32 zero bytes; seq, device_time and metadata are '' when null; times are integer microseconds since
-- 1970-01-01 UTC (independent of the session's TimeZone and DateStyle); clock_suspect is 't' or 'f'; data and metadata
-- are jsonb's own text form (keys sorted and de-duplicated, no insignificant whitespace), which is what
-- `data::text` returns to any reader, so the chain can be recomputed offline from a dump or by `verify`.

ALTER TABLE pf_events ADD COLUMN IF NOT EXISTS hash bytea;

CREATE OR REPLACE FUNCTION pf_event_hash(
    prev bytea, stream_id text, version bigint, event_id uuid, event_type text, seq bigint,
    device_time timestamptz, received_at timestamptz, clock_suspect boolean, data jsonb, metadata jsonb)
-- STABLE, not IMMUTABLE: convert_to and extract(timestamptz) are STABLE, and a SQL function declared more strictly
-- than its body is never inlined (it then costs three times as much per event).
RETURNS bytea LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT sha256(coalesce(prev, '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea) || convert_to(
        stream_id || E'\n' || version::text || E'\n' || event_id::text || E'\n' || event_type || E'\n'
        || coalesce(seq::text, '') || E'\n'
        || coalesce(((extract(epoch FROM device_time) * 1000000)::bigint)::text, '') || E'\n'
        || ((extract(epoch FROM received_at) * 1000000)::bigint)::text || E'\n'
        || CASE WHEN clock_suspect THEN 't' ELSE 'f' END || E'\n'
        || data::text || E'\n'
        || coalesce(metadata::text, ''), 'UTF8'))
$$;

-- Existing events (a database created before this migration) get their chain now, in version order per stream.
DO $$
DECLARE
    r record;
    prev bytea;
    current_stream text := NULL;
BEGIN
    FOR r IN SELECT global_position, stream_id, version, event_id, event_type, seq, device_time, received_at, clock_suspect, data, metadata
             FROM pf_events WHERE hash IS NULL ORDER BY stream_id, version LOOP
        IF current_stream IS DISTINCT FROM r.stream_id THEN
            current_stream := r.stream_id;
            SELECT e.hash INTO prev FROM pf_events e WHERE e.stream_id = r.stream_id AND e.version = r.version - 1;
        END IF;
        prev := pf_event_hash(prev, r.stream_id, r.version, r.event_id, r.event_type, r.seq, r.device_time, r.received_at,
                              r.clock_suspect, r.data, r.metadata);
        UPDATE pf_events SET hash = prev WHERE global_position = r.global_position;
    END LOOP;
END $$;

-- The store's append computes the hashes inside its INSERT (NpgsqlEventStore.AppendSql: the previous hash is read in
-- the same statement, the batch chained by a recursive query), so appends pay no trigger call. Any other INSERT
-- that leaves hash NULL (a script, a test) gets it from this trigger; the WHEN clause is evaluated without calling
-- the function, so the store's appends do not pay for it. Rows earlier in the same multi-row INSERT are visible to a
-- BEFORE ROW trigger, so such a batch chains through itself when inserted in version order. A hash that does not
-- match (someone inserting a hash of their own choosing) is what `verify` reports.
CREATE OR REPLACE FUNCTION pf_events_chain() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    prev bytea;
BEGIN
    IF NEW.version > 1 THEN
        SELECT e.hash INTO prev FROM pf_events e WHERE e.stream_id = NEW.stream_id AND e.version = NEW.version - 1;
        IF prev IS NULL THEN
            RAISE EXCEPTION 'pf_events: stream % has no hashed event at version % (appends must follow the previous version)',
                NEW.stream_id, NEW.version - 1 USING ERRCODE = 'PF002';
        END IF;
    END IF;
    NEW.hash := pf_event_hash(prev, NEW.stream_id, NEW.version, NEW.event_id, NEW.event_type, NEW.seq, NEW.device_time,
                              NEW.received_at, NEW.clock_suspect, NEW.data, NEW.metadata);
    RETURN NEW;
END $$;

DROP TRIGGER IF EXISTS pf_events_chain ON pf_events;
CREATE TRIGGER pf_events_chain BEFORE INSERT ON pf_events FOR EACH ROW WHEN (NEW.hash IS NULL) EXECUTE FUNCTION pf_events_chain();

ALTER TABLE pf_events ALTER COLUMN hash SET NOT NULL;

-- Append-only tables (the event log here, the audit trail in 004) share one refusal.
CREATE OR REPLACE FUNCTION pf_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused (corrections are new rows; see docs/security.md)', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'PF001';
END $$;

DROP TRIGGER IF EXISTS pf_events_append_only ON pf_events;
CREATE TRIGGER pf_events_append_only BEFORE UPDATE OR DELETE ON pf_events FOR EACH ROW EXECUTE FUNCTION pf_refuse_change();
DROP TRIGGER IF EXISTS pf_events_no_truncate ON pf_events;
CREATE TRIGGER pf_events_no_truncate BEFORE TRUNCATE ON pf_events FOR EACH STATEMENT EXECUTE FUNCTION pf_refuse_change();

-- Chain anchors: the heads of the streams that moved since the previous anchor, hashed into a chain of anchors and
-- written periodically outside the event table (and exported as a metric, so a copy of the digest lives in Prometheus
-- too). A rewrite of a whole stream, its chain included, no longer matches the anchored heads.
CREATE TABLE IF NOT EXISTS pf_chain_anchors (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    anchored_at      timestamptz NOT NULL DEFAULT now(),
    -- The anchor covers the global log up to this gap-safe position (the readers' (transaction id, position) order).
    through_tx       xid8        NOT NULL,
    through_position bigint      NOT NULL,
    events           bigint      NOT NULL,
    -- sha256(previous digest || for each head in stream_id order: stream_id \n version \n lowercase hex(hash) \n)
    digest           bytea       NOT NULL,
    previous_digest  bytea       NULL,
    -- [[stream_id, version, hex(hash)], ...]: the heads that moved, so verify can check each against the table.
    heads            jsonb       NOT NULL
);

DROP TRIGGER IF EXISTS pf_chain_anchors_append_only ON pf_chain_anchors;
CREATE TRIGGER pf_chain_anchors_append_only BEFORE UPDATE OR DELETE ON pf_chain_anchors FOR EACH ROW EXECUTE FUNCTION pf_refuse_change();
