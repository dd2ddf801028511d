-- Least privilege (docs/security.md, pf_grant of the event store's 006): who may touch the gateway's tables.
-- gateway_* are 011's views under the old names, for gateways of the previous release during an upgrade.
SELECT pf_grant('pumpfleet_gateway', 'SELECT, INSERT, UPDATE', ARRAY['pf_gateway_hubs', 'pf_gateway_hub_status', 'gateway_hubs', 'gateway_hub_status']);
SELECT pf_grant('pumpfleet_gateway', 'SELECT, INSERT', ARRAY['pf_gateway_quarantine', 'gateway_quarantine']);
-- The dashboard administers hubs and shows the quarantine; the silo counts the quarantine and hub status (metrics).
SELECT pf_grant('pumpfleet_dashboard', 'SELECT, INSERT, UPDATE', ARRAY['pf_gateway_hubs']);
SELECT pf_grant('pumpfleet_dashboard', 'SELECT', ARRAY['pf_gateway_quarantine', 'pf_gateway_hub_status']);
SELECT pf_grant('pumpfleet_silo', 'SELECT', ARRAY['pf_gateway_quarantine', 'pf_gateway_hub_status']);
