-- Least privilege (docs/security.md): one group role per process, each granted only what that process does. Login
-- users are made members by the operator (CREATE ROLE silo_prod LOGIN PASSWORD '…' IN ROLE pumpfleet_silo); the
-- migration user (the table owner, the only one that can ALTER a table or switch its triggers off) stays with the
-- `migrate` Job. Numbered after every table-creating migration; a later migration that adds a table calls
-- pf_grant_roles() again after adding it to the lists below.
--
--   pumpfleet_silo       appends and reads events (never UPDATE or DELETE), snapshots, checkpoints, writes the read
--                        models (projections), the chain anchors, Orleans membership and reminders
--   pumpfleet_gateway    hub credentials and status, the quarantine, the audit trail (hub CLI), Orleans membership (read)
--   pumpfleet_dashboard  reads events and read models, administers hubs, appends to the audit trail and reads it,
--                        the Data Protection key ring, Orleans membership (read); empties read models for a rebuild
--
-- Roles are cluster-wide: they are created when the migration user may (CREATEROLE) or were created by the DBA;
-- otherwise this migration only says so and grants nothing.

CREATE OR REPLACE FUNCTION pf_grant_roles() RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    read_models text[] := ARRAY['pf_pump_status', 'pf_anomalies', 'pf_alarm_log', 'pf_daily_flow', 'pf_cohort_stats',
                                'pf_cohort_members', 'pf_projection_progress'];
    orleans text[] := ARRAY['orleansquery', 'pf_orleans_membership', 'pf_orleans_membership_version', 'pf_orleans_reminders'];
    grants text[][] := ARRAY[
        -- role, privileges, tables (comma-separated; a missing table is skipped)
        ['pumpfleet_silo', 'SELECT, INSERT', 'pf_events,pf_chain_anchors'],
        ['pumpfleet_silo', 'SELECT, INSERT, UPDATE, DELETE', 'pf_snapshots,pf_checkpoints'],
        ['pumpfleet_silo', 'SELECT, INSERT, UPDATE, DELETE', array_to_string(read_models, ',')],
        ['pumpfleet_silo', 'SELECT, INSERT, UPDATE, DELETE', array_to_string(orleans, ',')],
        ['pumpfleet_silo', 'SELECT', 'gateway_quarantine,gateway_hub_status'],
        ['pumpfleet_gateway', 'SELECT, INSERT, UPDATE', 'gateway_hubs,gateway_hub_status'],
        ['pumpfleet_gateway', 'SELECT, INSERT', 'gateway_quarantine,pf_audit'],
        ['pumpfleet_gateway', 'SELECT', array_to_string(orleans, ',')],
        ['pumpfleet_dashboard', 'SELECT', 'pf_events,pf_snapshots,pf_checkpoints,pf_chain_anchors,gateway_quarantine,gateway_hub_status'],
        ['pumpfleet_dashboard', 'SELECT', array_to_string(orleans, ',')],
        ['pumpfleet_dashboard', 'SELECT, INSERT, UPDATE', 'gateway_hubs'],
        ['pumpfleet_dashboard', 'SELECT, INSERT', 'pf_audit,pf_data_protection_keys'],
        -- Rebuilds empty the read models from the dashboard's admin endpoint (ProjectionRebuilder).
        ['pumpfleet_dashboard', 'SELECT, DELETE', array_to_string(read_models, ',')]
    ];
    g text[];
    t text;
BEGIN
    FOREACH g SLICE 1 IN ARRAY grants LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = g[1]) THEN
            CONTINUE;
        END IF;
        FOREACH t IN ARRAY string_to_array(g[3], ',') LOOP
            IF to_regclass(t) IS NOT NULL THEN
                EXECUTE format('GRANT %s ON %I TO %I', g[2], t, g[1]);
            END IF;
        END LOOP;
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
    PERFORM pf_grant_roles();
END $$;
