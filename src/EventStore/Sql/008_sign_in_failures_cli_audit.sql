-- Sign-in lockout shared by every dashboard replica (docs/security.md): failed sign-ins per user name, so that five
-- wrong passwords lock the name on every replica, not only on the one that saw them. One row per name with recent
-- failures; rows older than the lockout window are pruned by the dashboard on each failure (last_at index).
CREATE TABLE IF NOT EXISTS pf_sign_in_failures (
    user_name text PRIMARY KEY CHECK (length(user_name) <= 128),
    failures  integer NOT NULL CHECK (failures > 0),
    last_at   timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_pf_sign_in_failures_last_at ON pf_sign_in_failures (last_at);

SELECT pf_grant('pumpfleet_dashboard', 'SELECT, INSERT, UPDATE, DELETE', ARRAY['pf_sign_in_failures']);

-- The silo's command line writes the audit trail: `projections rebuild` and `verify` run in the silo's pod with the
-- silo's connection (kubectl exec) and are audited (operator actor). Append only, like every other writer.
SELECT pf_grant('pumpfleet_silo', 'INSERT', ARRAY['pf_audit']);
