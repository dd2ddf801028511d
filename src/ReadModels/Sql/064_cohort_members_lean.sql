-- Issue 14 (h14c): the cohorts projection's writes. Every page rewrites the row of each pump it has events of
-- (version, last event time and counts change every time), so the row's updates should be HOT: the new version on
-- the same heap page, no index entry written.
-- 1. pf_cohort_members_cohort (model, firmware, lot) is read by no query: the API's cohort, surveillance and survival
--    queries aggregate the whole table (WHERE model IS NOT NULL, GROUP BY a dimension), the signal job reads
--    pf_cohort_stats, and the projection reads members by serial (the primary key). It served the per-page re-count of
--    a cohort's members, gone since contributions are applied as deltas. Without it, an update writes no index entry
--    whenever the new version fits on the row's page.
-- 2. fillfactor 50: a page of the catch-up rewrites every member row of the pumps it touches in one transaction, so
--    a heap page needs room for a new version of each of its rows for all of them to be HOT (the old versions are
--    pruned later, once no snapshot sees them). Applies to pages written from now on; an existing table gets it as it
--    is rewritten (a rebuild of the projection, or VACUUM FULL). The table's size per pump about doubles
--    (some 250 bytes a row); the queries that scan it read twice the pages.
DROP INDEX IF EXISTS pf_cohort_members_cohort;
ALTER TABLE pf_cohort_members SET (fillfactor = 50);
