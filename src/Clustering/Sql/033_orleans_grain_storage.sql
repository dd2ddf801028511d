-- Orleans grain state in PostgreSQL, for Microsoft.Orleans.Persistence.AdoNet (Invariant "Npgsql"), registered as the
-- "PubSubStore" grain storage: the stream pub-sub grains' state (who subscribed to which stream), so an explicit
-- subscription (the live dashboard's) survives the death of the silo that held its pub-sub grain.
--
-- PumpFleet's own table and query texts, like 030/031: the provider ships its scripts but runs none; it reads the
-- query texts WriteToStorageKey, ReadFromStorageKey, ClearStorageKey and DeleteStorageKey from OrleansQuery once at
-- start-up, binds fixed parameter names (@GrainIdHash, @GrainIdN0, @GrainIdN1, @GrainTypeHash, @GrainTypeString,
-- @GrainIdExtensionString, @ServiceId, @GrainStateVersion, @PayloadBinary) and reads result columns by name
-- ("PayloadBinary", "Version", "NewGrainStateVersion"). So the table may have our name and shape.
--
-- Optimistic concurrency: the grain's ETag is the row's version. A write with a version updates only the row still
-- holding it and returns version + 1; a first write (no version) inserts version 1 unless a row exists. Whenever
-- nothing was written the statement returns the version passed in (or null), which the provider reports as an
-- InconsistentStateException: two activations of one grain (a split brain) cannot both win.

CREATE TABLE IF NOT EXISTS pf_orleans_storage (
    service_id    text        NOT NULL,
    grain_type    text        NOT NULL,
    grain_id_n0   bigint      NOT NULL,
    grain_id_n1   bigint      NOT NULL,
    -- The grain key's string part (string-keyed grains such as the pub-sub rendezvous grain, keyed by stream), or null.
    grain_id_ext  text        NULL,
    -- The provider's hashes, kept for its read path; the unique key below is what identifies a row.
    grain_id_hash integer     NOT NULL,
    grain_type_hash integer   NOT NULL,
    payload       bytea       NULL,
    version       integer     NOT NULL,
    modified_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pf_orleans_storage_grain UNIQUE NULLS NOT DISTINCT (service_id, grain_type, grain_id_n0, grain_id_n1, grain_id_ext)
);

INSERT INTO OrleansQuery (QueryKey, QueryText) VALUES
('ReadFromStorageKey', $q$
SELECT payload AS "PayloadBinary", version AS "Version"
FROM pf_orleans_storage
WHERE service_id = @ServiceId AND grain_type = @GrainTypeString
  AND grain_id_n0 = @GrainIdN0 AND grain_id_n1 = @GrainIdN1
  AND grain_id_ext IS NOT DISTINCT FROM @GrainIdExtensionString::text
$q$),

('WriteToStorageKey', $q$
WITH updated AS (
    UPDATE pf_orleans_storage
       SET payload = @PayloadBinary, version = version + 1, modified_at = now()
     WHERE @GrainStateVersion::integer IS NOT NULL
       AND service_id = @ServiceId AND grain_type = @GrainTypeString
       AND grain_id_n0 = @GrainIdN0 AND grain_id_n1 = @GrainIdN1
       AND grain_id_ext IS NOT DISTINCT FROM @GrainIdExtensionString::text
       AND version = @GrainStateVersion::integer
    RETURNING version),
inserted AS (
    INSERT INTO pf_orleans_storage (service_id, grain_type, grain_id_n0, grain_id_n1, grain_id_ext, grain_id_hash, grain_type_hash, payload, version)
    SELECT @ServiceId, @GrainTypeString, @GrainIdN0, @GrainIdN1, @GrainIdExtensionString::text, @GrainIdHash, @GrainTypeHash, @PayloadBinary, 1
     WHERE @GrainStateVersion::integer IS NULL
    ON CONFLICT ON CONSTRAINT pf_orleans_storage_grain DO NOTHING
    RETURNING version)
SELECT coalesce((SELECT version FROM updated), (SELECT version FROM inserted), @GrainStateVersion::integer) AS "NewGrainStateVersion"
$q$),

-- Clear keeps the row (and moves its version), so a later first write by a stale activation still conflicts.
('ClearStorageKey', $q$
WITH cleared AS (
    UPDATE pf_orleans_storage
       SET payload = NULL, version = version + 1, modified_at = now()
     WHERE service_id = @ServiceId AND grain_type = @GrainTypeString
       AND grain_id_n0 = @GrainIdN0 AND grain_id_n1 = @GrainIdN1
       AND grain_id_ext IS NOT DISTINCT FROM @GrainIdExtensionString::text
       AND version = @GrainStateVersion::integer
    RETURNING version)
SELECT coalesce((SELECT version FROM cleared), @GrainStateVersion::integer) AS "NewGrainStateVersion"
$q$),

-- For DeleteStateOnClear: the provider expects the deleted row's version + 1.
('DeleteStorageKey', $q$
WITH deleted AS (
    DELETE FROM pf_orleans_storage
     WHERE service_id = @ServiceId AND grain_type = @GrainTypeString
       AND grain_id_n0 = @GrainIdN0 AND grain_id_n1 = @GrainIdN1
       AND grain_id_ext IS NOT DISTINCT FROM @GrainIdExtensionString::text
       AND version = @GrainStateVersion::integer
    RETURNING version + 1 AS version)
SELECT coalesce((SELECT version FROM deleted), @GrainStateVersion::integer) AS "NewGrainStateVersion"
$q$)
ON CONFLICT (QueryKey) DO UPDATE SET QueryText = excluded.QueryText;

SELECT pf_grant('pumpfleet_silo', 'SELECT, INSERT, UPDATE, DELETE', ARRAY['pf_orleans_storage']);
