-- The group append's previous hash from the stream's head instead of the log (issue 15 item 3; docs/architecture.md
-- "Group commit", docs/benchmarks.md "PostgreSQL's CPU per message, placed and cut").
--
-- Why: pf_append_group (043) chains each stream's new events from the hash of its previous event, which it read from
-- pf_events by (stream_id, version) with a subquery per stream. pf_events is partitioned by month and the lookup has
-- no month to prune by, so it descended the (stream_id, version) index of every partition (the initial one, each
-- month kept, the months ahead, the default) and fetched the row from the heap of the one that has it: 4.2 % of
-- PostgreSQL's CPU at 5,000 events/s in batches of 10 (perf, docs/benchmarks.md), growing with the months kept.
--
-- What changes: each stream's head row (pf_stream_heads, 040/046) also keeps last_hash, the hash of the event at the
-- head's version, written by the statement trigger of every INSERT into pf_events in the same UPDATE (or INSERT) that
-- moves the head, from the statement's own rows (the transition table). pf_append_group takes the previous hash from
-- the head row it already joins, when the head is at the version the append starts from; otherwise (no head hash:
-- see below; or a head elsewhere, whose stream is not appended anyway) it reads the log as before.
--
-- Why it loses nothing:
--   * the pair (version, last_hash) is one row version, written by one statement under the head's row lock and read
--     from one snapshot; a writer that moved the head after that snapshot makes this append's head UPDATE fail
--     (046's trigger: only from exactly the expected version), exactly as before;
--   * every INSERT into pf_events (the group append, the per-stream path 042, the single append, the import, a
--     hand-written row whose hash the BEFORE trigger of 003 computes) fires the statement trigger, whose transition
--     table has the rows as stored, hashes included;
--   * archival (041) removes rows but not heads: last_hash stays the hash of the archived row at the head's version,
--     which is what the lookup would have found in pf_event_archive_heads;
--   * a head without last_hash (NULL) falls back to the lookup; the upgrade fills every head from its row below.
-- The chain itself (what is hashed, verify) is unchanged: the same prev, found another way.
--
-- The switch: `SET pumpfleet.previous_hash = 'lookup'` (a session setting, e.g. Npgsql's
-- "Options=-c pumpfleet.previous_hash=lookup") reads every previous hash from the log as 043 did, to pair the two in one
-- benchmark run (bench/LoadBench --compare-connection-options). The head's hash is kept either way.
--
-- Upgrade: appends wait for this migration (SHARE lock on pf_events, as 046), so no head moves while it is filled.

LOCK TABLE pf_events IN SHARE MODE;

ALTER TABLE pf_stream_heads ADD COLUMN IF NOT EXISTS last_hash bytea NULL;

UPDATE pf_stream_heads h SET last_hash = coalesce(
    (SELECT e.hash FROM pf_events e WHERE e.stream_id = h.stream_id AND e.version = h.version),
    (SELECT a.hash FROM pf_event_archive_heads a WHERE a.stream_id = h.stream_id AND a.version = h.version))
WHERE h.last_hash IS NULL;

-- 046's trigger, also keeping the head's hash (everything else as 046).
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
    -- last_hash: the hash of the stream's newest row of this statement (its versions are contiguous, checked above),
    -- which becomes the head's: the next append of the stream chains from it without reading pf_events (049).
    WITH s AS (SELECT n.stream_id, min(n.version) AS first, max(n.version) AS last,
                      pf_month_start(min(n.received_at)) AS first_month, pf_month_start(max(n.received_at)) AS last_month,
                      (array_agg(n.hash ORDER BY n.version DESC))[1] AS last_hash
               FROM pf_new_events n GROUP BY n.stream_id),
    -- Each moved head returns its new span; the streams whose span is now more than one month (or unknown) are kept
    -- with it: only they can have rows in a month other than their new rows' (a span of one month holds all of them,
    -- new and old). Kept in variables, so the checks below need not read the heads again.
    fresh AS (INSERT INTO pf_stream_heads (stream_id, version, first_month, last_month, last_hash)
              SELECT s.stream_id, s.last, s.first_month, s.last_month, s.last_hash FROM s WHERE s.first = 1 ORDER BY s.stream_id
              ON CONFLICT (stream_id) DO NOTHING
              RETURNING pf_stream_heads.stream_id, pf_stream_heads.first_month, pf_stream_heads.last_month),
    advanced AS (UPDATE pf_stream_heads h SET version = s.last, last_hash = s.last_hash,
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

-- 043's group append, its previous hash from the head row.
CREATE OR REPLACE FUNCTION pf_append_group(
    p_streams text[], p_expected bigint[], p_counts integer[],
    p_ids uuid[], p_types text[], p_seqs bigint[], p_device_times timestamptz[], p_received timestamptz[],
    p_suspects boolean[], p_data text[], p_meta text[],
    p_snapshot_schema integer[], p_snapshot_state text[], p_history_until timestamptz[])
RETURNS TABLE (stream_ord integer, inserted integer, error_state text, error_message text)
LANGUAGE plpgsql AS $$
DECLARE
    -- The benchmark's switch (see the top of this file): read every previous hash from the log, as 043 did.
    lookup boolean := coalesce(current_setting('pumpfleet.previous_hash', true) = 'lookup', false);
BEGIN
    RETURN QUERY
    WITH RECURSIVE g AS (
        SELECT x.ord::integer AS i, x.s, x.v, x.n, (sum(x.n) OVER (ORDER BY x.ord) - x.n)::integer AS off,
               coalesce(h.version, 0) AS head,
               CASE WHEN x.v = 0 THEN NULL
                    -- The head's own hash when the head is where this append starts (the only case that is appended).
                    WHEN NOT lookup AND h.version = x.v AND h.last_hash IS NOT NULL THEN h.last_hash
                    ELSE (SELECT p.hash FROM (SELECT e.hash FROM pf_events e WHERE e.stream_id = x.s AND e.version = x.v
                                              UNION ALL
                                              SELECT a.hash FROM pf_event_archive_heads a WHERE a.stream_id = x.s AND a.version = x.v) p
                          LIMIT 1) END AS prev
        FROM unnest(p_streams, p_expected, p_counts) WITH ORDINALITY AS x(s, v, n, ord)
        LEFT JOIN pf_stream_heads h ON h.stream_id = x.s),
    ok AS MATERIALIZED (
        SELECT g.i, g.s, g.v, g.n, g.off, g.prev FROM g WHERE g.n > 0 AND g.head = g.v AND (g.v = 0 OR g.prev IS NOT NULL)),
    chain(i, ord, data, meta, h) AS (
        SELECT ok.i, 0::bigint, NULL::jsonb, NULL::jsonb, ok.prev FROM ok
        UNION ALL
        SELECT c.i, c.ord + 1, d.data, d.meta,
               pf_event_hash(c.h, ok.s, ok.v + c.ord + 1, p_ids[ok.off + c.ord + 1], p_types[ok.off + c.ord + 1], p_seqs[ok.off + c.ord + 1],
                             p_device_times[ok.off + c.ord + 1], p_received[ok.off + c.ord + 1], p_suspects[ok.off + c.ord + 1], d.data, d.meta)
        FROM chain c
        JOIN ok ON ok.i = c.i
        CROSS JOIN LATERAL (SELECT p_data[ok.off + c.ord + 1]::jsonb AS data, p_meta[ok.off + c.ord + 1]::jsonb AS meta) AS d
        WHERE c.ord < ok.n),
    ins AS (
        INSERT INTO pf_events (stream_id, version, event_id, event_type, seq, device_time, received_at, clock_suspect, data, metadata, hash)
        SELECT ok.s, ok.v + c.ord, p_ids[ok.off + c.ord], p_types[ok.off + c.ord], p_seqs[ok.off + c.ord], p_device_times[ok.off + c.ord],
               p_received[ok.off + c.ord], p_suspects[ok.off + c.ord], c.data, c.meta, c.h
        FROM chain c
        JOIN ok ON ok.i = c.i
        WHERE c.ord > 0
        ORDER BY ok.i, c.ord
        RETURNING pf_events.stream_id),
    snap AS (
        INSERT INTO pf_snapshots AS o (stream_id, version, schema_version, state, taken_at)
        SELECT ok.s, ok.v + ok.n, p_snapshot_schema[ok.i], p_snapshot_state[ok.i]::jsonb, now()
        FROM ok WHERE p_snapshot_state[ok.i] IS NOT NULL
        ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version, schema_version = excluded.schema_version,
            state = excluded.state, taken_at = excluded.taken_at
        WHERE o.version < excluded.version OR o.schema_version <> excluded.schema_version),
    hist AS (
        INSERT INTO pf_snapshot_history (stream_id, version, schema_version, covers_until, state, taken_at)
        SELECT ok.s, ok.v + ok.n, p_snapshot_schema[ok.i], p_history_until[ok.i], p_snapshot_state[ok.i]::jsonb, now()
        FROM ok WHERE p_snapshot_state[ok.i] IS NOT NULL AND p_history_until[ok.i] IS NOT NULL
        ON CONFLICT DO NOTHING),
    counted AS (SELECT ins.stream_id, count(*)::integer AS rows FROM ins GROUP BY ins.stream_id)
    SELECT g.i, coalesce(counted.rows, 0), NULL::text, NULL::text
    FROM g LEFT JOIN counted ON counted.stream_id = g.s
    ORDER BY g.i;
END $$;
