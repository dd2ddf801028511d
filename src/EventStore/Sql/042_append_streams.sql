-- Group commit (docs/architecture.md "Group commit", issue 15): the appends of several streams in one transaction, so
-- a hundred pumps' batches cost one commit (one WAL flush, one round trip) instead of a hundred. Per-stream optimistic
-- concurrency and idempotency are kept: each stream's append runs in its own subtransaction (the EXCEPTION block), so
-- a version conflict or a duplicate in one stream undoes only that stream's rows and is reported for that stream
-- alone; the others commit. The caller (GroupCommitter) resolves a reported conflict exactly as a single append does.
--
-- The statement per stream is the single append's (NpgsqlEventStore.AppendSql: guard on the expected version, the
-- hash chain computed in the INSERT). The stream's latest snapshot, and one kept for as-of views, may be written in
-- the same subtransaction, after its events: a snapshot is stored only together with the events it covers, and the
-- message that carried the events pays no second commit for it.
--
-- Arguments: per stream (index i) its id, expected version, number of events, and optional snapshot; per event the
-- columns of all streams' events concatenated in stream order. Result: one row per stream with the number of rows it
-- inserted (n: appended; 0: the expected version is ahead of the stream; -1: a unique violation, i.e. a concurrent
-- writer or an earlier commit of the same events; -2: any other error, with its SQLSTATE and message).
--
-- Each subtransaction that writes takes a subtransaction id; more than 64 in one transaction overflow PostgreSQL's
-- per-backend cache and slow every snapshot on the server, so the caller caps a group well below that.
CREATE OR REPLACE FUNCTION pf_append_streams(
    p_streams text[], p_expected bigint[], p_counts integer[],
    p_ids uuid[], p_types text[], p_seqs bigint[], p_device_times timestamptz[], p_received timestamptz[],
    p_suspects boolean[], p_data text[], p_meta text[],
    p_snapshot_schema integer[], p_snapshot_state text[], p_history_until timestamptz[])
RETURNS TABLE (stream_ord integer, inserted integer, error_state text, error_message text)
LANGUAGE plpgsql AS $$
DECLARE
    off integer := 0;
    n integer;
    s text;
    v bigint;
BEGIN
    FOR i IN 1 .. coalesce(cardinality(p_streams), 0) LOOP
        n := p_counts[i];
        s := p_streams[i];
        v := p_expected[i];
        stream_ord := i;
        error_state := NULL;
        error_message := NULL;
        BEGIN
            -- A stream whose previous event was archived (041) chains from the archive's anchor, as the single append does.
            WITH RECURSIVE prev AS (SELECT e.hash FROM pf_events e WHERE e.stream_id = s AND e.version = v
                                    UNION ALL SELECT a.hash FROM pf_event_archive_heads a WHERE a.stream_id = s AND a.version = v),
            chain(ord, data, meta, h) AS (
                SELECT 0::bigint, NULL::jsonb, NULL::jsonb, (SELECT hash FROM prev)
                UNION ALL
                SELECT c.ord + 1, d.data, d.meta,
                       pf_event_hash(c.h, s, v + c.ord + 1, p_ids[off + c.ord + 1], p_types[off + c.ord + 1], p_seqs[off + c.ord + 1],
                                     p_device_times[off + c.ord + 1], p_received[off + c.ord + 1], p_suspects[off + c.ord + 1], d.data, d.meta)
                FROM chain c
                CROSS JOIN LATERAL (SELECT p_data[off + c.ord + 1]::jsonb AS data, p_meta[off + c.ord + 1]::jsonb AS meta) AS d
                WHERE c.ord < n)
            INSERT INTO pf_events (stream_id, version, event_id, event_type, seq, device_time, received_at, clock_suspect, data, metadata, hash)
            SELECT s, v + c.ord, p_ids[off + c.ord], p_types[off + c.ord], p_seqs[off + c.ord], p_device_times[off + c.ord],
                   p_received[off + c.ord], p_suspects[off + c.ord], c.data, c.meta, c.h
            FROM chain c
            WHERE c.ord > 0 AND (v = 0 OR EXISTS (SELECT 1 FROM prev))
            ORDER BY c.ord;
            GET DIAGNOSTICS inserted = ROW_COUNT;
            IF inserted = n AND n > 0 AND p_snapshot_state[i] IS NOT NULL THEN
                INSERT INTO pf_snapshots AS o (stream_id, version, schema_version, state, taken_at)
                VALUES (s, v + n, p_snapshot_schema[i], p_snapshot_state[i]::jsonb, now())
                ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version, schema_version = excluded.schema_version,
                    state = excluded.state, taken_at = excluded.taken_at
                WHERE o.version < excluded.version OR o.schema_version <> excluded.schema_version;
                IF p_history_until[i] IS NOT NULL THEN
                    INSERT INTO pf_snapshot_history (stream_id, version, schema_version, covers_until, state, taken_at)
                    VALUES (s, v + n, p_snapshot_schema[i], p_history_until[i], p_snapshot_state[i]::jsonb, now())
                    ON CONFLICT DO NOTHING;
                END IF;
            END IF;
        EXCEPTION
            WHEN unique_violation THEN
                inserted := -1;
            WHEN OTHERS THEN
                inserted := -2;
                error_state := SQLSTATE;
                error_message := SQLERRM;
        END;
        off := off + n;
        RETURN NEXT;
    END LOOP;
END $$;
