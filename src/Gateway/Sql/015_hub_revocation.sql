-- Revocation is final and its record is kept (docs/security.md): who revoked a hub, and a trigger that refuses to
-- clear or change revoked_at or to delete a hub row. A revoked hub id stays burnt; provision a new one.
ALTER TABLE pf_gateway_hubs ADD COLUMN IF NOT EXISTS revoked_by text;

CREATE OR REPLACE FUNCTION pf_gateway_hubs_keep_history() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'pf_gateway_hubs: hub % cannot be deleted (revoke it instead)', OLD.hub_id USING ERRCODE = 'PF001';
    END IF;
    IF OLD.revoked_at IS NOT NULL AND (NEW.revoked_at IS DISTINCT FROM OLD.revoked_at OR NEW.revoked_by IS DISTINCT FROM OLD.revoked_by
                                       OR NEW.secret_hash IS DISTINCT FROM OLD.secret_hash) THEN
        RAISE EXCEPTION 'pf_gateway_hubs: hub % is revoked; its revocation and credential are final', OLD.hub_id USING ERRCODE = 'PF001';
    END IF;
    RETURN NEW;
END $$;

DROP TRIGGER IF EXISTS pf_gateway_hubs_keep_history ON pf_gateway_hubs;
CREATE TRIGGER pf_gateway_hubs_keep_history BEFORE UPDATE OR DELETE ON pf_gateway_hubs FOR EACH ROW EXECUTE FUNCTION pf_gateway_hubs_keep_history();
