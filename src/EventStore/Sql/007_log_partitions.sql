-- Partitions of the event log for the Orleans stream provider (src/Streaming, docs/projections.md "Log streams"):
-- every event carries the partition of its stream, computed at INSERT from the stream id, so a reader of one
-- partition walks its own index range instead of filtering the whole log, and the append path wakes that
-- partition's reader with one NOTIFY per transaction.
--
-- pf_log_partition(stream_id) = FNV-1a (32 bit) over the UTF-8 bytes of the stream id, modulo 16. LogPartitioning.cs
-- computes the same value in C# (the stream provider's queue mapper); a test compares the two. Changing the count
-- is a new migration plus a rebuild of every stream checkpoint.
CREATE OR REPLACE FUNCTION pf_log_partition(stream_id text) RETURNS smallint
-- IMMUTABLE so a generated column may use it; it depends only on its argument (the database encoding is UTF-8).
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    bytes bytea := convert_to(stream_id, 'UTF8');
    h bigint := 2166136261;
BEGIN
    FOR i IN 0 .. length(bytes) - 1 LOOP
        -- h < 2^32 and the prime < 2^25, so the product fits in a bigint before it is cut back to 32 bits.
        h := ((h # get_byte(bytes, i)) * 16777619) & 4294967295;
    END LOOP;
    RETURN (h % 16)::smallint;
END $$;

-- A stored generated column: existing rows get it in the table rewrite of this ALTER (no UPDATE, so the append-only
-- trigger of 003 is not involved and the hash chain, which does not cover it, is unchanged); new rows at INSERT, with
-- no change to the append statement.
ALTER TABLE pf_events ADD COLUMN IF NOT EXISTS log_partition smallint GENERATED ALWAYS AS (pf_log_partition(stream_id)) STORED;

-- The partition reader walks this index: (partition, transaction_id, global_position) is its read order.
CREATE INDEX IF NOT EXISTS pf_events_partition_tx_position ON pf_events (log_partition, transaction_id, global_position);

-- One notification per committed transaction and partition: PostgreSQL sends NOTIFY at COMMIT (never for a
-- rolled-back append) and folds identical (channel, payload) pairs of one transaction into one.
CREATE OR REPLACE FUNCTION pf_events_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('pf_log', p::text) FROM (SELECT DISTINCT log_partition AS p FROM pf_new_events) AS changed;
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS pf_events_notify ON pf_events;
CREATE TRIGGER pf_events_notify AFTER INSERT ON pf_events REFERENCING NEW TABLE AS pf_new_events
    FOR EACH STATEMENT EXECUTE FUNCTION pf_events_notify();
