-- Least privilege (docs/security.md): one group role per process, each granted only what that process does. Login
-- users are made members by the operator (CREATE ROLE silo_prod LOGIN PASSWORD '…' IN ROLE pumpfleet_silo); the
-- migration user (the table owner, the only one that can ALTER a table or switch its triggers off) stays with the
-- `migrate` Job. Each project grants on its own tables in its own migration, with pf_grant() below (Gateway 016,
-- ReadModels 021, Clustering 032); this one on the event store's.
--
-- Roles are cluster-wide: they are created when the migration user may (CREATEROLE) or were created by the DBA;
-- otherwise this migration only says so, and pf_grant() grants nothing to a role that does not exist.

CREATE OR REPLACE FUNCTION pf_grant(role text, privileges text, tables text[]) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    t text;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = role) THEN
        RETURN;
    END IF;
    FOREACH t IN ARRAY tables LOOP
        IF to_regclass(t) IS NOT NULL THEN
            EXECUTE format('GRANT %s ON %I TO %I', privileges, t, role);
        END IF;
    END LOOP;
END $$;

DO $$
DECLARE
    r text;
    can_create boolean := (SELECT rolcreaterole OR rolsuper FROM pg_roles WHERE rolname = current_user);
BEGIN
    FOREACH r IN ARRAY ARRAY['pumpfleet_silo', 'pumpfleet_gateway', 'pumpfleet_dashboard'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            IF can_create THEN
                BEGIN
                    EXECUTE format('CREATE ROLE %I NOLOGIN', r);
                EXCEPTION WHEN duplicate_object OR unique_violation THEN
                    NULL; -- roles are cluster-wide: a migration of another database created it meanwhile
                END;
            ELSE
                RAISE NOTICE 'role % does not exist and % may not create roles: no grants for it (docs/security.md)', r, current_user;
            END IF;
        END IF;
        IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', current_schema(), r);
        END IF;
    END LOOP;
END $$;

-- The silo appends and reads events (never UPDATE or DELETE), keeps snapshots and checkpoints, writes anchors.
SELECT pf_grant('pumpfleet_silo', 'SELECT, INSERT', ARRAY['pf_events', 'pf_chain_anchors']);
SELECT pf_grant('pumpfleet_silo', 'SELECT, INSERT, UPDATE, DELETE', ARRAY['pf_snapshots', 'pf_checkpoints']);
-- The gateway: the audit trail (hub CLI); no access to the event log (ingest goes through the grains).
SELECT pf_grant('pumpfleet_gateway', 'SELECT, INSERT', ARRAY['pf_audit']);
-- The dashboard reads the log (events, as-of), appends to and reads the audit trail, keeps the Data Protection keys.
SELECT pf_grant('pumpfleet_dashboard', 'SELECT', ARRAY['pf_events', 'pf_snapshots', 'pf_checkpoints', 'pf_chain_anchors']);
SELECT pf_grant('pumpfleet_dashboard', 'SELECT, INSERT', ARRAY['pf_audit', 'pf_data_protection_keys']);
