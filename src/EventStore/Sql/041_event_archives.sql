-- Archival of old months of the event log (docs/operations.md "Event table partitions, retention and archival"):
-- `silo events archive --before DATE --out DIR` (EventArchiver) writes a partition's rows to files, re-reads and verifies
-- them, and only then asks pf_events_archive_partition() to detach and drop the partition. The database keeps what the
-- files must match (row count, digest of the stream heads, the files' SHA-256) and the chain anchor of every archived
-- stream: the last archived version and its hash, from which `verify` continues each stream's chain (its first
-- remaining event chains to that hash, not to 32 zero bytes).

CREATE TABLE IF NOT EXISTS pf_event_archives (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    partition_name text        NOT NULL UNIQUE,
    from_at        timestamptz NULL,
    to_at          timestamptz NOT NULL,
    events         bigint      NOT NULL,
    streams        bigint      NOT NULL,
    -- the events file's name (in the archive directory) and its SHA-256 (hex), as written in the manifest
    file_name      text        NOT NULL,
    file_sha256    text        NOT NULL,
    -- sha256 over "stream \n last version \n hex(hash) \n" per stream in stream_id order (ChainAnchorWriter.Digest)
    heads_digest   bytea       NOT NULL,
    archived_at    timestamptz NOT NULL DEFAULT now(),
    archived_by    text        NOT NULL
);

-- Per archived stream and archive: the versions it held and the hash of the last, the anchor the rest chains from.
CREATE TABLE IF NOT EXISTS pf_event_archive_heads (
    archive_id    bigint NOT NULL REFERENCES pf_event_archives (id),
    stream_id     text   NOT NULL,
    first_version bigint NOT NULL,
    version       bigint NOT NULL,
    hash          bytea  NOT NULL,
    PRIMARY KEY (stream_id, version)
);

DROP TRIGGER IF EXISTS pf_event_archives_append_only ON pf_event_archives;
CREATE TRIGGER pf_event_archives_append_only BEFORE UPDATE OR DELETE ON pf_event_archives FOR EACH ROW EXECUTE FUNCTION pf_refuse_change();
DROP TRIGGER IF EXISTS pf_event_archive_heads_append_only ON pf_event_archive_heads;
CREATE TRIGGER pf_event_archive_heads_append_only BEFORE UPDATE OR DELETE ON pf_event_archive_heads FOR EACH ROW EXECUTE FUNCTION pf_refuse_change();

-- Detaches and drops a partition whose archive the caller has written and verified, after checking, on the rows
-- themselves, that the archive describes them: same number of events, same digest of the stream heads (each head's
-- hash covers its whole chain, so equal heads and counts mean the file holds these events). Refused unless the
-- partition is the oldest one left, its month is over, and it holds a prefix of every stream it touches (each starts
-- right after its previous archive and nothing earlier of the stream remains in another partition), so the remaining
-- log always chains from the recorded anchors. SECURITY DEFINER: only the owner may drop a partition; the silo's
-- command calls this with the silo's login.
CREATE OR REPLACE FUNCTION pf_events_archive_partition(
    part text, expected_events bigint, expected_heads_digest bytea, file_name text, file_sha256 text, actor text)
RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    p record;
    n bigint;
    streams bigint;
    digest bytea;
    bad text;
    archive bigint;
BEGIN
    SELECT * INTO p FROM pf_event_partitions WHERE name = part AND archived_at IS NULL FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'archive: % is not a partition of pf_events in the table', part USING ERRCODE = 'PF003';
    END IF;
    SELECT o.name INTO bad FROM pf_event_partitions o WHERE o.archived_at IS NULL AND o.to_at < p.to_at ORDER BY o.to_at LIMIT 1;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'archive: % is older than %; archive it first', bad, part USING ERRCODE = 'PF003';
    END IF;
    IF p.to_at > now() THEN
        RAISE EXCEPTION 'archive: % still receives events (until %)', part, p.to_at USING ERRCODE = 'PF003';
    END IF;

    -- No insert into it from here on (its month is over, but a caller could name a time in it).
    EXECUTE format('LOCK TABLE %I IN SHARE MODE', part);
    EXECUTE format($q$
        SELECT coalesce(sum(h.n), 0), count(*), sha256(convert_to(coalesce(string_agg(
                   h.stream_id || E'\n' || h.version::text || E'\n' || encode(h.hash, 'hex') || E'\n', '' ORDER BY h.stream_id COLLATE "C"), ''), 'UTF8'))
        FROM (SELECT DISTINCT ON (stream_id) stream_id, version, hash, count(*) OVER (PARTITION BY stream_id) AS n
              FROM %I ORDER BY stream_id, version DESC) h
        $q$, part) INTO n, streams, digest;
    IF n <> expected_events OR digest <> expected_heads_digest THEN
        RAISE EXCEPTION 'archive: % holds % events with heads digest %, the archive describes % events with %; nothing dropped',
            part, n, encode(digest, 'hex'), expected_events, encode(expected_heads_digest, 'hex') USING ERRCODE = 'PF003';
    END IF;

    EXECUTE format($q$
        SELECT f.stream_id FROM (SELECT stream_id, min(version) AS first FROM %I GROUP BY stream_id) f
        WHERE f.first <> coalesce((SELECT max(a.version) FROM pf_event_archive_heads a WHERE a.stream_id = f.stream_id), 0) + 1
        LIMIT 1
        $q$, part) INTO bad;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'archive: stream % in % does not continue its previous archive', bad, part USING ERRCODE = 'PF003';
    END IF;
    EXECUTE format($q$
        SELECT h.stream_id FROM (SELECT stream_id, max(version) AS last FROM %I GROUP BY stream_id) h
        JOIN pf_events e ON e.stream_id = h.stream_id AND e.version < h.last AND e.tableoid <> %L::regclass
        LIMIT 1
        $q$, part, part) INTO bad;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'archive: stream % has earlier events outside %; archive those partitions first', bad, part USING ERRCODE = 'PF003';
    END IF;

    -- A pump grain starts from its snapshot and reads the events after it: a stream whose snapshot is older than its
    -- last archived event would be folded without the archived ones.
    EXECUTE format($q$
        SELECT h.stream_id FROM (SELECT stream_id, max(version) AS last FROM %I GROUP BY stream_id) h
        LEFT JOIN pf_snapshots s ON s.stream_id = h.stream_id
        WHERE s.version IS NULL OR s.version < h.last
        LIMIT 1
        $q$, part) INTO bad;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'archive: stream % has no snapshot at or after its last event in %; its state would lose those events', bad, part
            USING ERRCODE = 'PF003';
    END IF;

    INSERT INTO pf_event_archives (partition_name, from_at, to_at, events, streams, file_name, file_sha256, heads_digest, archived_by)
    VALUES (part, p.from_at, p.to_at, n, streams, file_name, file_sha256, digest, actor)
    RETURNING id INTO archive;
    EXECUTE format($q$
        INSERT INTO pf_event_archive_heads (archive_id, stream_id, first_version, version, hash)
        SELECT %s, stream_id, min(version), max(version), (array_agg(hash ORDER BY version DESC))[1] FROM %I GROUP BY stream_id
        $q$, archive, part);
    EXECUTE format('ALTER TABLE pf_events DETACH PARTITION %I', part);
    EXECUTE format('DROP TABLE %I', part);
    UPDATE pf_event_partitions SET archived_at = now() WHERE name = part;
    RETURN archive;
END $$;

REVOKE ALL ON FUNCTION pf_events_archive_partition(text, bigint, bytea, text, text, text) FROM PUBLIC;

SELECT pf_grant('pumpfleet_silo', 'SELECT', ARRAY['pf_event_archives', 'pf_event_archive_heads']);
SELECT pf_grant('pumpfleet_dashboard', 'SELECT', ARRAY['pf_event_archives', 'pf_event_archive_heads']);
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'pumpfleet_silo') THEN
        GRANT EXECUTE ON FUNCTION pf_events_archive_partition(text, bigint, bytea, text, text, text) TO pumpfleet_silo;
    END IF;
END $$;

-- 003's trigger for inserts outside the store: the previous hash of a stream whose earlier events were archived is the
-- archive's anchor.
CREATE OR REPLACE FUNCTION pf_events_chain() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    prev bytea;
BEGIN
    IF NEW.version > 1 THEN
        SELECT e.hash INTO prev FROM pf_events e WHERE e.stream_id = NEW.stream_id AND e.version = NEW.version - 1;
        IF prev IS NULL THEN
            SELECT a.hash INTO prev FROM pf_event_archive_heads a WHERE a.stream_id = NEW.stream_id AND a.version = NEW.version - 1;
        END IF;
        IF prev IS NULL THEN
            RAISE EXCEPTION 'pf_events: stream % has no hashed event at version % (appends must follow the previous version)',
                NEW.stream_id, NEW.version - 1 USING ERRCODE = 'PF002';
        END IF;
    END IF;
    NEW.hash := pf_event_hash(prev, NEW.stream_id, NEW.version, NEW.event_id, NEW.event_type, NEW.seq, NEW.device_time,
                              NEW.received_at, NEW.clock_suspect, NEW.data, NEW.metadata);
    RETURN NEW;
END $$;
