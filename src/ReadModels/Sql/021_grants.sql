-- Least privilege (docs/security.md, pf_grant of the event store's 006): read models are written only by the
-- projections (in the silo) and read by the dashboard, which may also empty them for an admin's rebuild.
SELECT pf_grant('pumpfleet_silo', 'SELECT, INSERT, UPDATE, DELETE',
    ARRAY['pf_pump_status', 'pf_anomalies', 'pf_alarm_log', 'pf_daily_flow', 'pf_cohort_stats', 'pf_cohort_members', 'pf_projection_progress']);
SELECT pf_grant('pumpfleet_dashboard', 'SELECT, DELETE',
    ARRAY['pf_pump_status', 'pf_anomalies', 'pf_alarm_log', 'pf_daily_flow', 'pf_cohort_stats', 'pf_cohort_members', 'pf_projection_progress']);
