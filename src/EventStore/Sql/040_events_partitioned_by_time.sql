-- The event log partitioned by time (docs/operations.md "Event table partitions, retention and archival"): pf_events
-- becomes a range-partitioned table on received_at, one partition per calendar month (UTC), so that old months can be
-- archived to files and dropped as a whole (041) instead of deleted row by row, which the append-only triggers refuse.
-- received_at is the key because the server sets it (a device clock cannot scatter rows over months) and it only moves
-- forward with the log, so a month holds a prefix of every stream.
--
-- Native partitioning only (pg_partman is not on every machine the quick start runs on): partitions are created ahead of
-- time by pf_events_ensure_partitions(), called here and by the silo's partition job (EventPartitionService).
--
-- A database created before this migration is converted in place, without copying a row: the old table becomes the
-- first partition, pf_events_initial, covering everything up to the end of the month of its newest row (or of the
-- previous month when it is empty). Its rows, hashes, positions and transaction ids are untouched, so the chains and
-- every reader's checkpoint still hold. Rows whose time falls after every monthly partition (a far-future clock) land in
-- pf_events_default rather than being refused.
--
-- Uniqueness. A unique index of a partitioned table must contain the partition key, so (stream_id, version),
-- (stream_id, event_id) and (stream_id, seq) are unique per partition (indexes of each partition), and across partitions:
--   * versions through pf_stream_heads, one row per stream with its newest version: every INSERT statement must start
--     each stream it touches at head + 1 with contiguous versions, and moves the head in the same transaction. Two
--     writers of the same version serialise on the head row; the second finds the head moved and fails with
--     unique_violation, which the store already reads as a concurrency conflict (or as its own earlier attempt, by the
--     event ids). So no two rows of a stream can share a version, whichever partitions they land in.
--   * seq and event id by a check after the head moved (the head's row lock orders writers of a stream, and each query
--     of the trigger takes a fresh snapshot, so it sees every earlier writer's rows).

LOCK TABLE pf_events IN ACCESS EXCLUSIVE MODE;

-- Month boundaries are UTC midnights whatever the session's TimeZone.
CREATE OR REPLACE FUNCTION pf_month_start(t timestamptz) RETURNS timestamptz
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT date_trunc('month', t AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
$$;

-- Bookkeeping of the monthly partitions (and the initial one), so the job and the archiver need not parse bounds.
-- from_at NULL is MINVALUE (the initial partition only).
CREATE TABLE IF NOT EXISTS pf_event_partitions (
    name        text        PRIMARY KEY,
    from_at     timestamptz NULL,
    to_at       timestamptz NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    archived_at timestamptz NULL
);

CREATE TABLE IF NOT EXISTS pf_stream_heads (
    stream_id text   PRIMARY KEY,
    version   bigint NOT NULL CHECK (version > 0)
);

-- What every partition has besides the parent's partitioned indexes: the per-partition unique keys and the TRUNCATE
-- refusal (statement triggers are not inherited, and a partition can be named directly).
CREATE OR REPLACE FUNCTION pf_events_prepare_partition(part text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('CREATE UNIQUE INDEX IF NOT EXISTS %I ON %I (stream_id, version)', part || '_stream_version', part);
    EXECUTE format('CREATE UNIQUE INDEX IF NOT EXISTS %I ON %I (stream_id, event_id)', part || '_stream_event_id', part);
    EXECUTE format('CREATE UNIQUE INDEX IF NOT EXISTS %I ON %I (stream_id, seq) WHERE seq IS NOT NULL', part || '_stream_seq', part);
    EXECUTE format('DROP TRIGGER IF EXISTS pf_events_no_truncate ON %I', part);
    EXECUTE format('CREATE TRIGGER pf_events_no_truncate BEFORE TRUNCATE ON %I FOR EACH STATEMENT EXECUTE FUNCTION pf_refuse_change()', part);
END $$;

DO $$
DECLARE
    seq_name text := pg_get_serial_sequence('pf_events', 'global_position');
    next_position bigint;
    boundary timestamptz;
BEGIN
    IF (SELECT c.relkind FROM pg_class c WHERE c.oid = 'pf_events'::regclass) = 'p' THEN
        RETURN; -- already partitioned
    END IF;

    -- The next global position continues the old identity (numbers taken by rolled-back appends stay unused).
    EXECUTE format('SELECT greatest((SELECT coalesce(max(global_position), 0) FROM pf_events), (SELECT last_value FROM %s)) + 1', seq_name)
        INTO next_position;
    boundary := coalesce(pf_month_start((SELECT max(received_at) FROM pf_events)) + interval '1 month', pf_month_start(now()));

    -- The old table keeps its rows and becomes the first partition. Its triggers give way to the parent's (row triggers
    -- are cloned onto every partition; the NOTIFY trigger belongs on the parent), its constraints and indexes get
    -- partition names (the parent's indexes take the old names and adopt the matching ones at ATTACH, without a rebuild).
    ALTER TABLE pf_events RENAME TO pf_events_initial;
    DROP TRIGGER pf_events_chain ON pf_events_initial;
    DROP TRIGGER pf_events_append_only ON pf_events_initial;
    DROP TRIGGER pf_events_notify ON pf_events_initial;
    ALTER TABLE pf_events_initial ALTER COLUMN global_position DROP IDENTITY;
    ALTER TABLE pf_events_initial RENAME CONSTRAINT pf_events_pkey TO pf_events_initial_pkey;
    ALTER TABLE pf_events_initial RENAME CONSTRAINT pf_events_stream_version TO pf_events_initial_stream_version;
    ALTER TABLE pf_events_initial RENAME CONSTRAINT pf_events_stream_event_id TO pf_events_initial_stream_event_id;
    ALTER INDEX pf_events_stream_seq RENAME TO pf_events_initial_stream_seq;
    ALTER INDEX pf_events_tx_position RENAME TO pf_events_initial_tx_position;
    ALTER INDEX pf_events_partition_tx_position RENAME TO pf_events_initial_partition_tx_position;

    CREATE SEQUENCE pf_events_global_position_seq AS bigint;
    PERFORM setval('pf_events_global_position_seq', next_position, false);

    CREATE TABLE pf_events (
        global_position bigint      NOT NULL DEFAULT nextval('pf_events_global_position_seq'),
        transaction_id  xid8        NOT NULL DEFAULT pg_current_xact_id(),
        stream_id       text        NOT NULL,
        version         bigint      NOT NULL,
        event_id        uuid        NOT NULL,
        event_type      text        NOT NULL,
        seq             bigint      NULL,
        device_time     timestamptz NULL,
        received_at     timestamptz NOT NULL,
        clock_suspect   boolean     NOT NULL DEFAULT false,
        data            jsonb       NOT NULL,
        metadata        jsonb       NULL,
        hash            bytea       NOT NULL,
        log_partition   smallint    GENERATED ALWAYS AS (pf_log_partition(stream_id)) STORED
    ) PARTITION BY RANGE (received_at);
    ALTER SEQUENCE pf_events_global_position_seq OWNED BY pf_events.global_position;

    EXECUTE format('ALTER TABLE pf_events ATTACH PARTITION pf_events_initial FOR VALUES FROM (MINVALUE) TO (%L)', boundary);
    INSERT INTO pf_event_partitions (name, from_at, to_at) VALUES ('pf_events_initial', NULL, boundary);

    -- The readers' indexes (001, 007), partitioned: the initial partition's own copies are adopted.
    CREATE INDEX pf_events_tx_position ON pf_events (transaction_id, global_position);
    CREATE INDEX pf_events_partition_tx_position ON pf_events (log_partition, transaction_id, global_position);
    PERFORM pf_events_prepare_partition('pf_events_initial');

    CREATE TABLE pf_events_default PARTITION OF pf_events DEFAULT;
    PERFORM pf_events_prepare_partition('pf_events_default');

    -- The heads of the streams already stored.
    INSERT INTO pf_stream_heads (stream_id, version) SELECT stream_id, max(version) FROM pf_events GROUP BY stream_id;
END $$;

-- 003's triggers and 007's notification, now on the partitioned table (row triggers apply to every partition).
DROP TRIGGER IF EXISTS pf_events_chain ON pf_events;
CREATE TRIGGER pf_events_chain BEFORE INSERT ON pf_events FOR EACH ROW WHEN (NEW.hash IS NULL) EXECUTE FUNCTION pf_events_chain();
DROP TRIGGER IF EXISTS pf_events_append_only ON pf_events;
CREATE TRIGGER pf_events_append_only BEFORE UPDATE OR DELETE ON pf_events FOR EACH ROW EXECUTE FUNCTION pf_refuse_change();
DROP TRIGGER IF EXISTS pf_events_no_truncate ON pf_events;
CREATE TRIGGER pf_events_no_truncate BEFORE TRUNCATE ON pf_events FOR EACH STATEMENT EXECUTE FUNCTION pf_refuse_change();
DROP TRIGGER IF EXISTS pf_events_notify ON pf_events;
CREATE TRIGGER pf_events_notify AFTER INSERT ON pf_events REFERENCING NEW TABLE AS pf_new_events
    FOR EACH STATEMENT EXECUTE FUNCTION pf_events_notify();

-- Versions, event ids and seqs unique per stream across partitions (see the top of this file). One call per INSERT
-- statement, one head update per stream in it.
CREATE OR REPLACE FUNCTION pf_events_advance_heads() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    s record;
BEGIN
    FOR s IN SELECT stream_id, min(version) AS first, max(version) AS last, count(*) AS n, count(DISTINCT version) AS distinct_versions
             FROM pf_new_events GROUP BY stream_id LOOP
        IF s.n <> s.distinct_versions OR s.n <> s.last - s.first + 1 THEN
            RAISE EXCEPTION 'pf_events: stream % gets versions % to % with gaps or repeats in one statement', s.stream_id, s.first, s.last
                USING ERRCODE = 'unique_violation', CONSTRAINT = 'pf_stream_heads_pkey';
        END IF;
        IF s.first = 1 THEN
            INSERT INTO pf_stream_heads (stream_id, version) VALUES (s.stream_id, s.last) ON CONFLICT (stream_id) DO NOTHING;
        ELSE
            -- Waits for a concurrent writer of the stream, then re-reads its head: the loser of a race updates nothing.
            UPDATE pf_stream_heads SET version = s.last WHERE stream_id = s.stream_id AND version = s.first - 1;
        END IF;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'pf_events: stream % is not at version % (another writer got there first)', s.stream_id, s.first - 1
                USING ERRCODE = 'unique_violation', CONSTRAINT = 'pf_stream_heads_pkey';
        END IF;
    END LOOP;

    IF EXISTS (SELECT 1 FROM pf_new_events n JOIN pf_events e ON e.stream_id = n.stream_id AND e.seq = n.seq
               WHERE n.seq IS NOT NULL AND e.global_position <> n.global_position) THEN
        RAISE EXCEPTION 'pf_events: a (stream, seq) of this insert is already stored' USING ERRCODE = 'unique_violation', CONSTRAINT = 'pf_events_stream_seq';
    END IF;
    IF EXISTS (SELECT 1 FROM pf_new_events n JOIN pf_events e ON e.stream_id = n.stream_id AND e.event_id = n.event_id
               WHERE e.global_position <> n.global_position) THEN
        RAISE EXCEPTION 'pf_events: an event id of this insert is already stored in its stream' USING ERRCODE = 'unique_violation', CONSTRAINT = 'pf_events_stream_event_id';
    END IF;
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS pf_events_advance_heads ON pf_events;
CREATE TRIGGER pf_events_advance_heads AFTER INSERT ON pf_events REFERENCING NEW TABLE AS pf_new_events
    FOR EACH STATEMENT EXECUTE FUNCTION pf_events_advance_heads();

-- Creates the monthly partitions from the newest one up to the month months_ahead after the current one, and returns
-- the ones it created (the job logs them). SECURITY DEFINER: only the table's owner (the migration user) may add
-- partitions, and the silo's job calls this with the silo's login. Months whose rows already landed in the default
-- partition (the job did not run for months) are not created: a warning, and those rows stay where they are.
CREATE OR REPLACE FUNCTION pf_events_ensure_partitions(months_ahead int)
RETURNS TABLE (partition_name text, from_at timestamptz, to_at timestamptz)
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    cur timestamptz;
    target timestamptz;
    name text;
BEGIN
    IF months_ahead IS NULL OR months_ahead < 0 OR months_ahead > 120 THEN
        RAISE EXCEPTION 'pf_events_ensure_partitions: months_ahead must be 0..120, not %', months_ahead USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- One creator at a time (several silos run the job).
    PERFORM pg_advisory_xact_lock(hashtext('pf_events_ensure_partitions'));
    target := pf_month_start(now()) + make_interval(months => months_ahead + 1);
    SELECT max(p.to_at) INTO cur FROM pf_event_partitions p;
    WHILE cur < target LOOP
        name := 'pf_events_' || to_char(cur AT TIME ZONE 'UTC', 'YYYY_MM');
        IF EXISTS (SELECT 1 FROM pf_events_default d WHERE d.received_at >= cur AND d.received_at < cur + interval '1 month') THEN
            RAISE WARNING 'pf_events: rows from % are in pf_events_default; partition % is not created', cur, name;
            EXIT;
        END IF;
        EXECUTE format('CREATE TABLE %I PARTITION OF pf_events FOR VALUES FROM (%L) TO (%L)', name, cur, cur + interval '1 month');
        PERFORM pf_events_prepare_partition(name);
        INSERT INTO pf_event_partitions (name, from_at, to_at) VALUES (name, cur, cur + interval '1 month');
        partition_name := name;
        from_at := cur;
        to_at := cur + interval '1 month';
        RETURN NEXT;
        cur := cur + interval '1 month';
    END LOOP;
END $$;

REVOKE ALL ON FUNCTION pf_events_ensure_partitions(int) FROM PUBLIC;

SELECT count(*) FROM pf_events_ensure_partitions(3);

-- Grants (006): the parent replaces the old table; the silo's appends take positions from the new sequence and move heads.
SELECT pf_grant('pumpfleet_silo', 'SELECT, INSERT', ARRAY['pf_events']);
SELECT pf_grant('pumpfleet_silo', 'SELECT, INSERT, UPDATE', ARRAY['pf_stream_heads']);
SELECT pf_grant('pumpfleet_silo', 'SELECT', ARRAY['pf_event_partitions']);
SELECT pf_grant('pumpfleet_dashboard', 'SELECT', ARRAY['pf_events', 'pf_event_partitions']);
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'pumpfleet_silo') THEN
        GRANT USAGE ON SEQUENCE pf_events_global_position_seq TO pumpfleet_silo;
        GRANT EXECUTE ON FUNCTION pf_events_ensure_partitions(int) TO pumpfleet_silo;
    END IF;
END $$;
