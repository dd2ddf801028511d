-- Set-based group append (issue 15, docs/architecture.md "Group commit"): one INSERT for all streams of a group
-- instead of one statement and one subtransaction per stream (042). Per event it is the same row, the same hash and
-- the same checks; per group PostgreSQL now runs one INSERT, one firing of each statement trigger on pf_events
-- (pf_events_advance_heads, pf_events_notify) instead of one per stream, and no savepoint at all (042's EXCEPTION
-- block takes one per stream, and a subtransaction id for each that writes).
--
-- What is not given up:
--   * Per-stream optimistic concurrency: a stream whose head (pf_stream_heads, 040) is not at its expected version,
--     or whose previous event is missing, is left out of the INSERT and reported with 0 rows, which the caller
--     resolves exactly as before (its own earlier commit by the event ids, else a concurrency error). The other
--     streams of the group commit.
--   * A concurrent writer between this check and the INSERT: the statement trigger of 040 still moves every head
--     from exactly the expected version and raises unique_violation otherwise, as do the cross-partition event id and
--     seq checks; then the whole statement fails (nothing of the group is stored) and the caller runs the group again
--     through 042's per-stream path, which isolates the offending stream. The same for any other error (a payload
--     that is not JSON): this function is the fast path, 042 the exact one.
--   * The hash chain: each stream's chain starts from its previous event's hash (or the archive's anchor, 041), and
--     the recursive part chains all the group's streams side by side, one level per event of the longest batch.
--   * Gap-safe global positions and the append-only triggers: unchanged (the same table, the same defaults).
--   * Snapshots: stored in the same statement, only for streams whose events are stored by it.
--
-- The caller must not put a stream in a group twice (the order of its appends matters; 042 handles such a group).
-- Arguments and result as pf_append_streams (042); error_state and error_message are always NULL here.
CREATE OR REPLACE FUNCTION pf_append_group(
    p_streams text[], p_expected bigint[], p_counts integer[],
    p_ids uuid[], p_types text[], p_seqs bigint[], p_device_times timestamptz[], p_received timestamptz[],
    p_suspects boolean[], p_data text[], p_meta text[],
    p_snapshot_schema integer[], p_snapshot_state text[], p_history_until timestamptz[])
RETURNS TABLE (stream_ord integer, inserted integer, error_state text, error_message text)
LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY
    WITH RECURSIVE g AS (
        SELECT x.ord::integer AS i, x.s, x.v, x.n, (sum(x.n) OVER (ORDER BY x.ord) - x.n)::integer AS off,
               coalesce(h.version, 0) AS head,
               CASE WHEN x.v > 0 THEN (SELECT p.hash FROM (SELECT e.hash FROM pf_events e WHERE e.stream_id = x.s AND e.version = x.v
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

-- 040's statement trigger, cheaper per event and per stream, with the same guarantees (see the top of 040):
--   * the heads move in two statements for all streams of the INSERT instead of one statement per stream. Each still
--     moves a head only from exactly the version the INSERT starts the stream at: a concurrent writer of a stream makes
--     the UPDATE wait for it and re-check the row (READ COMMITTED's re-check of the WHERE clause on the newest version),
--     which then no longer matches, and a head inserted concurrently makes ON CONFLICT DO NOTHING skip it; either way
--     fewer heads moved than streams inserted, and the statement fails with unique_violation as before.
--   * seq and event id: a row can only repeat one of its own month's rows in the partition it lands in, and that
--     partition's unique indexes refuse it already at the insert; the check here covers the rows of every other month.
--     Saying so in the query lets PostgreSQL skip, per new row, the partition of its own month at run time (the month
--     that takes nearly every append, and the largest), instead of probing its indexes a second time. A month is
--     never split between partitions (040: whole months; the default partition gets none of a month that has one), so
--     the rows of other months are exactly those of the other partitions and of other months in the initial or default one.
CREATE OR REPLACE FUNCTION pf_events_advance_heads() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    bad text;
    streams integer;
    moved integer;
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

    -- Two statements that share streams (only a stale duplicate activation writes a stream from two places) may wait
    -- for each other's head rows, as the loop of 040 could; PostgreSQL ends such a deadlock by failing one of them,
    -- which its caller sees as the failure of the statement (the group committer then retries stream by stream).
    WITH s AS (SELECT n.stream_id, min(n.version) AS first, max(n.version) AS last FROM pf_new_events n GROUP BY n.stream_id),
    fresh AS (INSERT INTO pf_stream_heads (stream_id, version)
              SELECT s.stream_id, s.last FROM s WHERE s.first = 1 ORDER BY s.stream_id
              ON CONFLICT (stream_id) DO NOTHING RETURNING 1),
    advanced AS (UPDATE pf_stream_heads h SET version = s.last
                 FROM (SELECT * FROM s WHERE s.first > 1 ORDER BY s.stream_id) s
                 WHERE h.stream_id = s.stream_id AND h.version = s.first - 1 RETURNING 1)
    SELECT (SELECT count(*) FROM s), (SELECT count(*) FROM fresh) + (SELECT count(*) FROM advanced) INTO streams, moved;
    IF moved <> streams THEN
        RAISE EXCEPTION 'pf_events: % of the % streams of this insert are not at the version it starts them from (another writer got there first)',
            streams - moved, streams USING ERRCODE = 'unique_violation', CONSTRAINT = 'pf_stream_heads_pkey';
    END IF;

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
END $$;
