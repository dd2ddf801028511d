-- The audit trail (docs/security.md): who did or read what, when, from where. Append-only: the database refuses
-- UPDATE, DELETE and TRUNCATE (pf_refuse_change of 003), so an entry can never be obscured by a later one.
CREATE TABLE IF NOT EXISTS pf_audit (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    -- 'user' (signed in), 'machine' (API key, named), 'system' (a process acting on its own, e.g. auto-pairing),
    -- 'operator' (a command-line tool run on a host).
    actor_kind  text        NOT NULL CHECK (actor_kind IN ('user', 'machine', 'system', 'operator')),
    actor       text        NOT NULL,
    role        text        NULL,
    -- e.g. hub.provision, hub.rotate, hub.revoke, pump.pair, anomaly.acknowledge, projection.rebuild, pump.read.
    action      text        NOT NULL,
    target      text        NULL,
    -- HTTP status (or 0 for non-HTTP actions); reads and refusals are audited alike.
    outcome     int         NOT NULL,
    remote      text        NULL,
    detail      jsonb       NULL
);

CREATE INDEX IF NOT EXISTS pf_audit_at ON pf_audit (at DESC);
CREATE INDEX IF NOT EXISTS pf_audit_actor ON pf_audit (actor, at DESC);
CREATE INDEX IF NOT EXISTS pf_audit_target ON pf_audit (target, at DESC);

DROP TRIGGER IF EXISTS pf_audit_append_only ON pf_audit;
CREATE TRIGGER pf_audit_append_only BEFORE UPDATE OR DELETE ON pf_audit FOR EACH ROW EXECUTE FUNCTION pf_refuse_change();
DROP TRIGGER IF EXISTS pf_audit_no_truncate ON pf_audit;
CREATE TRIGGER pf_audit_no_truncate BEFORE TRUNCATE ON pf_audit FOR EACH STATEMENT EXECUTE FUNCTION pf_refuse_change();
