-- Least privilege (docs/security.md, pf_grant of the event store's 006): silos keep the membership and reminders;
-- the gateway and dashboard (Orleans clients) only read the membership to find the silos.
SELECT pf_grant('pumpfleet_silo', 'SELECT, INSERT, UPDATE, DELETE',
    ARRAY['orleansquery', 'pf_orleans_membership', 'pf_orleans_membership_version', 'pf_orleans_reminders']);
SELECT pf_grant('pumpfleet_gateway', 'SELECT', ARRAY['orleansquery', 'pf_orleans_membership', 'pf_orleans_membership_version']);
SELECT pf_grant('pumpfleet_dashboard', 'SELECT', ARRAY['orleansquery', 'pf_orleans_membership', 'pf_orleans_membership_version']);
