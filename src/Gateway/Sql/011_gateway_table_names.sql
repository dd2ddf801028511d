-- One naming convention for every PumpFleet table: the pf_ prefix (docs/architecture.md, "Project map"). The gateway's
-- tables were created as gateway_*; they are renamed here rather than in 010, which is never edited. Renames keep the
-- data, the identity column and the constraints; the indexes follow the tables' names.

ALTER TABLE IF EXISTS gateway_hubs RENAME TO pf_gateway_hubs;
ALTER TABLE IF EXISTS gateway_hub_status RENAME TO pf_gateway_hub_status;
ALTER TABLE IF EXISTS gateway_quarantine RENAME TO pf_gateway_quarantine;

ALTER INDEX IF EXISTS gateway_hubs_pkey RENAME TO pf_gateway_hubs_pkey;
ALTER INDEX IF EXISTS gateway_hub_status_pkey RENAME TO pf_gateway_hub_status_pkey;
ALTER INDEX IF EXISTS gateway_hub_status_last_seen RENAME TO pf_gateway_hub_status_last_seen;
ALTER INDEX IF EXISTS gateway_quarantine_pkey RENAME TO pf_gateway_quarantine_pkey;
ALTER INDEX IF EXISTS gateway_quarantine_hub RENAME TO pf_gateway_quarantine_hub;
ALTER INDEX IF EXISTS gateway_quarantine_serial RENAME TO pf_gateway_quarantine_serial;

-- Expand/contract (docs/operations.md, "The migration Job"): during an upgrade the previous release's gateways still
-- use the old names. These simple views are updatable, so those gateways keep reading and writing the same rows; a
-- later release drops them once no gateway of the previous naming runs.
CREATE OR REPLACE VIEW gateway_hubs AS SELECT * FROM pf_gateway_hubs;
CREATE OR REPLACE VIEW gateway_hub_status AS SELECT * FROM pf_gateway_hub_status;
CREATE OR REPLACE VIEW gateway_quarantine AS SELECT * FROM pf_gateway_quarantine;
