-- Issue 14 (h14p): the pumps read model's status updates become HOT (heap-only: no index entry written). An update is
-- HOT only when no indexed column changes and the row's page has room for the new version. last_seen_at,
-- forecast_empty_at and next_refill_due_at change with nearly every event and each had an index, so every update of
-- every page wrote all ten of the table's indexes (docs/benchmarks.md "The pumps read model's status updates become HOT").
--
-- * last_seen_at loses its index. Its readers: the silent-pump job (every 5 minutes; a scan of the table), the
--   overview's silent count (counts the whole fleet anyway) and the fleet list sorted by last seen (a scan with a
--   top-N sort; measured at 100,000 pumps in docs/benchmarks.md).
-- * forecast_empty_at and next_refill_due_at are indexed through their UTC day instead (generated columns): a pump's
--   forecast moves by minutes from event to event but its day rarely, so the day's index is rarely written. The
--   refill worklist and the depletion check bound their range by the day too; the fleet list sorts by the day first
--   (the same order: the day is monotone in the timestamp, null exactly when it is null) so PostgreSQL reads the day's
--   index and sorts only within each day (incremental sort).
-- * fillfactor 70 leaves a page room for the next versions of its rows (HOT needs the same page).
ALTER TABLE pf_pump_status SET (fillfactor = 70);

-- ADD COLUMN .. GENERATED .. STORED rewrites the table (existing rows get their days; the rewrite honours the
-- fillfactor above).
ALTER TABLE pf_pump_status
    ADD COLUMN IF NOT EXISTS forecast_empty_day date GENERATED ALWAYS AS ((forecast_empty_at AT TIME ZONE 'UTC')::date) STORED,
    ADD COLUMN IF NOT EXISTS refill_due_day     date GENERATED ALWAYS AS ((next_refill_due_at AT TIME ZONE 'UTC')::date) STORED;

CREATE INDEX IF NOT EXISTS pf_pump_status_forecast_day ON pf_pump_status (forecast_empty_day);
CREATE INDEX IF NOT EXISTS pf_pump_status_refill_day ON pf_pump_status (refill_due_day);

DROP INDEX IF EXISTS pf_pump_status_last_seen;
DROP INDEX IF EXISTS pf_pump_status_forecast;
DROP INDEX IF EXISTS pf_pump_status_refill;

-- The daily flow rows are updated in place by every page (sums by pump and day; only the key is indexed): room on
-- the page lets those updates be HOT as well.
ALTER TABLE pf_daily_flow SET (fillfactor = 80);
