-- The cross-month uniqueness checks of 043's statement trigger, only where a repeat can be (issue 15; docs/architecture.md
-- "Group commit", docs/benchmarks.md "The cross-month checks by the stream's month span").
--
-- Why: a (stream, seq) or (stream, event id) is unique per partition by the partition's indexes; 040/043 check every
-- other month with one index probe per new row and per other partition (the initial and default partitions, the months
-- ahead, every older month), twice (seq, event id). That was about a third of pf_append_group's time per event, although
-- nearly every stream of a group has no row in any other month than the one its new rows land in.
--
-- What changes: each stream's head row (pf_stream_heads, 040) also records the span of months its stored rows fall in,
-- first_month and last_month (month starts, UTC), widened by the same statement that moves the head, under the same row
-- lock. So a stream whose rows are all in the new row's month has nothing in another month to repeat, and its rows are
-- not probed; the rows of any other stream probe only the partitions of the months of its span (not the months ahead,
-- nor the default partition, unless its rows are there).
--
-- Why it loses nothing:
--   * the span covers every row of the stream: every INSERT into pf_events (the group append 043, the per-stream path
--     042, the import, a hand-written row) fires this statement trigger, which widens the span by the statement's own rows
--     before the checks run. A span that is NULL (unknown) is never narrowed and means "probe every other month", as
--     before: the heads of streams whose rows were all archived (041) before this migration, which has no rows to
--     compute their span from.
--   * the span is the one of the stored rows plus this statement's, so rows of one statement in two months (at midnight
--     of a month's end, or a server clock behind another's) make the span wider than their month, and they are probed
--     against each other as before.
--   * archival (041) removes rows but leaves the span as it was: wider than the rows, which only costs probes.
--   * a concurrent writer of the same stream waits for the head row's lock (043), then finds the head moved and fails;
--     the span read by the checks is the one written under that lock, in the same transaction.
--
-- The switch: `SET pumpfleet.cross_month_check = 'every-row'` (a session or connection setting, e.g. Npgsql's
-- "Options=-c pumpfleet.cross_month_check=every-row") makes the trigger probe as 043 did, for a paired benchmark in one
-- run (bench/LoadBench --compare-connection-options). Any value only adds checks; no setting skips one the span needs.
--
-- Upgrade: the existing heads get their span from their rows. Appends wait for this migration (SHARE lock on pf_events:
-- an INSERT in flight finishes first, the next one waits and then runs the new trigger), so no row escapes the span.

LOCK TABLE pf_events IN SHARE MODE;

ALTER TABLE pf_stream_heads ADD COLUMN IF NOT EXISTS first_month timestamptz NULL;
ALTER TABLE pf_stream_heads ADD COLUMN IF NOT EXISTS last_month timestamptz NULL;

UPDATE pf_stream_heads h SET first_month = pf_month_start(s.first_at), last_month = pf_month_start(s.last_at)
FROM (SELECT e.stream_id, min(e.received_at) AS first_at, max(e.received_at) AS last_at FROM pf_events e GROUP BY e.stream_id) s
WHERE h.stream_id = s.stream_id;

-- 043's trigger with the span kept and used (its first two steps, the versions and the heads, are 043's).
CREATE OR REPLACE FUNCTION pf_events_advance_heads() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    bad text;
    streams integer;
    moved integer;
    wide_streams text[];
    wide_from timestamptz[];
    wide_to timestamptz[];
    repeated integer;
BEGIN
    SELECT s.stream_id INTO bad
    FROM (SELECT n.stream_id, min(n.version) AS first, max(n.version) AS last, count(*) AS n, count(DISTINCT n.version) AS distinct_versions
          FROM pf_new_events n GROUP BY n.stream_id) s
    WHERE s.n <> s.distinct_versions OR s.n <> s.last - s.first + 1
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'pf_events: stream % gets versions with gaps or repeats in one statement', bad
            USING ERRCODE = 'unique_violation', CONSTRAINT = 'pf_stream_heads_pkey';
    END IF;

    -- The month of the earliest and of the latest receive time are the first and last month of the statement's rows
    -- (pf_month_start only ever moves forward with its argument). least/greatest skip NULLs, so the CASE keeps an
    -- unknown span unknown.
    WITH s AS (SELECT n.stream_id, min(n.version) AS first, max(n.version) AS last,
                      pf_month_start(min(n.received_at)) AS first_month, pf_month_start(max(n.received_at)) AS last_month
               FROM pf_new_events n GROUP BY n.stream_id),
    -- Each moved head returns its new span; the streams whose span is now more than one month (or unknown) are kept
    -- with it: only they can have rows in a month other than their new rows' (a span of one month holds all of them,
    -- new and old). Kept in variables, so the checks below need not read the heads again.
    fresh AS (INSERT INTO pf_stream_heads (stream_id, version, first_month, last_month)
              SELECT s.stream_id, s.last, s.first_month, s.last_month FROM s WHERE s.first = 1 ORDER BY s.stream_id
              ON CONFLICT (stream_id) DO NOTHING
              RETURNING pf_stream_heads.stream_id, pf_stream_heads.first_month, pf_stream_heads.last_month),
    advanced AS (UPDATE pf_stream_heads h SET version = s.last,
                        first_month = CASE WHEN h.first_month IS NOT NULL THEN least(h.first_month, s.first_month) END,
                        last_month = CASE WHEN h.last_month IS NOT NULL THEN greatest(h.last_month, s.last_month) END
                 FROM (SELECT * FROM s WHERE s.first > 1 ORDER BY s.stream_id) s
                 WHERE h.stream_id = s.stream_id AND h.version = s.first - 1
                 RETURNING h.stream_id, h.first_month, h.last_month),
    moved_heads AS (SELECT * FROM fresh UNION ALL SELECT * FROM advanced),
    wide AS (SELECT * FROM moved_heads m WHERE m.first_month IS NULL OR m.last_month IS NULL OR m.first_month <> m.last_month)
    SELECT (SELECT count(*) FROM s), (SELECT count(*) FROM moved_heads),
           (SELECT array_agg(w.stream_id) FROM wide w), (SELECT array_agg(w.first_month) FROM wide w), (SELECT array_agg(w.last_month) FROM wide w)
    INTO streams, moved, wide_streams, wide_from, wide_to;
    IF moved <> streams THEN
        RAISE EXCEPTION 'pf_events: % of the % streams of this insert are not at the version it starts them from (another writer got there first)',
            streams - moved, streams USING ERRCODE = 'unique_violation', CONSTRAINT = 'pf_stream_heads_pkey';
    END IF;

    IF current_setting('pumpfleet.cross_month_check', true) = 'every-row' THEN
        -- 043's checks, unchanged: every new row against every other month.
        IF EXISTS (SELECT 1 FROM pf_new_events n JOIN pf_events e ON e.stream_id = n.stream_id AND e.seq = n.seq
                   WHERE n.seq IS NOT NULL AND e.global_position <> n.global_position
                     AND (e.received_at < pf_month_start(n.received_at) OR e.received_at >= pf_month_start(n.received_at) + interval '1 month')) THEN
            RAISE EXCEPTION 'pf_events: a (stream, seq) of this insert is already stored' USING ERRCODE = 'unique_violation', CONSTRAINT = 'pf_events_stream_seq';
        END IF;
        IF EXISTS (SELECT 1 FROM pf_new_events n JOIN pf_events e ON e.stream_id = n.stream_id AND e.event_id = n.event_id
                   WHERE e.global_position <> n.global_position
                     AND (e.received_at < pf_month_start(n.received_at) OR e.received_at >= pf_month_start(n.received_at) + interval '1 month')) THEN
            RAISE EXCEPTION 'pf_events: an event id of this insert is already stored in its stream' USING ERRCODE = 'unique_violation', CONSTRAINT = 'pf_events_stream_event_id';
        END IF;
        RETURN NULL;
    END IF;

    IF wide_streams IS NULL THEN
        RETURN NULL; -- every stream of the statement has all its rows in one month: nothing to probe
    END IF;

    -- The rows whose stream has (or may have) rows in a month other than theirs, with the bounds of the months to probe:
    -- the stream's span (now including this statement's rows) without the row's own month, whose partition's indexes
    -- refused a repeat already. For a stream with all its rows in one month this is empty and nothing is probed.
    -- Both checks in one query over the rows found once; the bounds let PostgreSQL prune, per row, every partition
    -- outside the span as well as the row's own.
    WITH c AS MATERIALIZED (
        SELECT n.stream_id, n.seq, n.event_id, n.global_position, pf_month_start(n.received_at) AS own,
               coalesce(h.first_month, '-infinity'::timestamptz) AS span_from,
               coalesce(h.last_month + interval '1 month', 'infinity'::timestamptz) AS span_to
        FROM pf_new_events n JOIN unnest(wide_streams, wide_from, wide_to) AS h(stream_id, first_month, last_month) ON h.stream_id = n.stream_id
        WHERE h.first_month IS NULL OR h.last_month IS NULL
           OR h.first_month <> pf_month_start(n.received_at) OR h.last_month <> pf_month_start(n.received_at))
    SELECT CASE
        WHEN EXISTS (SELECT 1 FROM c JOIN pf_events e ON e.stream_id = c.stream_id AND e.seq = c.seq
                     WHERE c.seq IS NOT NULL AND e.global_position <> c.global_position
                       AND e.received_at >= c.span_from AND e.received_at < c.span_to
                       AND (e.received_at < c.own OR e.received_at >= c.own + interval '1 month')) THEN 1
        WHEN EXISTS (SELECT 1 FROM c JOIN pf_events e ON e.stream_id = c.stream_id AND e.event_id = c.event_id
                     WHERE e.global_position <> c.global_position
                       AND e.received_at >= c.span_from AND e.received_at < c.span_to
                       AND (e.received_at < c.own OR e.received_at >= c.own + interval '1 month')) THEN 2
        ELSE 0 END
    INTO repeated;
    IF repeated = 1 THEN
        RAISE EXCEPTION 'pf_events: a (stream, seq) of this insert is already stored' USING ERRCODE = 'unique_violation', CONSTRAINT = 'pf_events_stream_seq';
    ELSIF repeated = 2 THEN
        RAISE EXCEPTION 'pf_events: an event id of this insert is already stored in its stream' USING ERRCODE = 'unique_violation', CONSTRAINT = 'pf_events_stream_event_id';
    END IF;
    RETURN NULL;
END $$;
