-- External mode (docs/security.md, "External broker"): a hub's credential in the form mosquitto's password file
-- reads ($7$ = PBKDF2-SHA512), written next to our own hash when a secret is created or rotated, so the broker's
-- files can be generated from this table without the plaintext. NULL for hubs provisioned before this migration
-- (rotate them to give them one) and when Gateway:Hubs:BrokerHashIterations is 0.
ALTER TABLE pf_gateway_hubs ADD COLUMN IF NOT EXISTS broker_hash text;

-- 015's rule, extended to the new column: a revoked hub's credentials are final.
CREATE OR REPLACE FUNCTION pf_gateway_hubs_keep_history() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'pf_gateway_hubs: hub % cannot be deleted (revoke it instead)', OLD.hub_id USING ERRCODE = 'PF001';
    END IF;
    IF OLD.revoked_at IS NOT NULL AND (NEW.revoked_at IS DISTINCT FROM OLD.revoked_at OR NEW.revoked_by IS DISTINCT FROM OLD.revoked_by
                                       OR NEW.secret_hash IS DISTINCT FROM OLD.secret_hash
                                       OR NEW.broker_hash IS DISTINCT FROM OLD.broker_hash) THEN
        RAISE EXCEPTION 'pf_gateway_hubs: hub % is revoked; its revocation and credential are final', OLD.hub_id USING ERRCODE = 'PF001';
    END IF;
    RETURN NEW;
END $$;

-- Revocation and rotation take effect at once on every gateway instance: whoever changes a hub's credential (the
-- dashboard, the CLI, plain SQL) wakes every LISTENing gateway and the mosquitto-files watcher. The payload is only
-- the hub id; listeners re-read the row, so a lost or reordered notification cannot leave a stale decision (and a
-- periodic re-check covers a listener that was disconnected).
CREATE OR REPLACE FUNCTION pf_gateway_hubs_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('pf_gateway_hubs', NEW.hub_id);
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS pf_gateway_hubs_notify ON pf_gateway_hubs;
CREATE TRIGGER pf_gateway_hubs_notify AFTER INSERT OR UPDATE OF secret_hash, broker_hash, revoked_at ON pf_gateway_hubs
    FOR EACH ROW EXECUTE FUNCTION pf_gateway_hubs_notify();
