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
