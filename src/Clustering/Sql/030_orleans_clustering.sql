-- Orleans cluster membership in PostgreSQL, for Microsoft.Orleans.Clustering.AdoNet (Invariant "Npgsql").
--
-- PumpFleet's own schema and query texts: the provider ships no SQL, it only reads named queries from the
-- OrleansQuery table once at start-up and binds fixed parameter names (@DeploymentId = the cluster id, @Address,
-- @Port, @Generation, @SiloName, @HostName, @Status, @ProxyPort, @StartTime, @IAmAliveTime, @SuspectTimes,
-- @Version). It reads result columns by name, so every query aliases its columns to the provider's names.
-- Re-runnable: IF NOT EXISTS, and query rows are upserted so a later migration can replace a text.
--
-- Versioning: the provider does optimistic concurrency on one version row per cluster. Every insert/update of a
-- member row passes the version it read as @Version (the etag) and succeeds only if the row still holds it; the
-- version bump (+1) and the member change happen in one statement, so they commit together or not at all.

CREATE TABLE IF NOT EXISTS OrleansQuery (
    QueryKey  varchar(64) PRIMARY KEY,
    QueryText text        NOT NULL
);

CREATE TABLE IF NOT EXISTS pf_orleans_membership_version (
    deployment_id text        PRIMARY KEY,
    version       integer     NOT NULL DEFAULT 0,
    changed_at    timestamptz NOT NULL DEFAULT now()
);

-- One row per silo incarnation: (address, port, generation) identifies it; a restarted silo gets a new generation.
-- status is Orleans' SiloStatus (2 Joining, 3 Active, 4 ShuttingDown, 5 Stopping, 6 Dead).
-- suspect_times is the provider's own "silo,time|silo,time" text of death votes.
CREATE TABLE IF NOT EXISTS pf_orleans_membership (
    deployment_id   text        NOT NULL REFERENCES pf_orleans_membership_version (deployment_id) ON DELETE CASCADE,
    address         text        NOT NULL,
    port            integer     NOT NULL,
    generation      integer     NOT NULL,
    silo_name       text        NOT NULL,
    host_name       text        NOT NULL,
    status          integer     NOT NULL,
    proxy_port      integer     NOT NULL DEFAULT 0,
    suspect_times   text        NULL,
    start_time      timestamptz NOT NULL,
    i_am_alive_time timestamptz NOT NULL,
    PRIMARY KEY (deployment_id, address, port, generation)
);

INSERT INTO OrleansQuery (QueryKey, QueryText) VALUES
-- Creates the cluster's version row on first start; true when this call created it.
('InsertMembershipVersionKey', $q$
WITH created AS (
    INSERT INTO pf_orleans_membership_version (deployment_id) VALUES (@DeploymentId)
    ON CONFLICT (deployment_id) DO NOTHING
    RETURNING 1)
SELECT count(*) > 0 FROM created
$q$),

-- The version row joined with every member: one row with null member columns when the cluster has no member yet
-- (the provider needs the version either way).
('MembershipReadAllKey', $q$
SELECT v.version AS "Version",
       m.address AS "Address", m.port AS "Port", m.generation AS "Generation",
       m.silo_name AS "SiloName", m.host_name AS "HostName", m.status AS "Status", m.proxy_port AS "ProxyPort",
       m.suspect_times AS "SuspectTimes", m.start_time AS "StartTime", m.i_am_alive_time AS "IAmAliveTime"
FROM pf_orleans_membership_version v
LEFT JOIN pf_orleans_membership m ON m.deployment_id = v.deployment_id
WHERE v.deployment_id = @DeploymentId
$q$),

-- Same shape for one silo.
('MembershipReadRowKey', $q$
SELECT v.version AS "Version",
       m.address AS "Address", m.port AS "Port", m.generation AS "Generation",
       m.silo_name AS "SiloName", m.host_name AS "HostName", m.status AS "Status", m.proxy_port AS "ProxyPort",
       m.suspect_times AS "SuspectTimes", m.start_time AS "StartTime", m.i_am_alive_time AS "IAmAliveTime"
FROM pf_orleans_membership_version v
LEFT JOIN pf_orleans_membership m
       ON m.deployment_id = v.deployment_id AND m.address = @Address AND m.port = @Port AND m.generation = @Generation
WHERE v.deployment_id = @DeploymentId
$q$),

-- Gateways that clients may connect to: active silos with a gateway port.
('GatewaysQueryKey', $q$
SELECT address AS "Address", proxy_port AS "ProxyPort", generation AS "Generation"
FROM pf_orleans_membership
WHERE deployment_id = @DeploymentId AND status = @Status AND proxy_port > 0
$q$),

-- Adds a silo if the table version is still the expected one and the silo is not there yet.
('InsertMembershipKey', $q$
WITH bumped AS (
    UPDATE pf_orleans_membership_version
       SET version = version + 1, changed_at = now()
     WHERE deployment_id = @DeploymentId AND version = @Version
       AND NOT EXISTS (SELECT 1 FROM pf_orleans_membership
                        WHERE deployment_id = @DeploymentId AND address = @Address AND port = @Port AND generation = @Generation)
    RETURNING deployment_id),
added AS (
    INSERT INTO pf_orleans_membership (deployment_id, address, port, generation, silo_name, host_name, status,
                                       proxy_port, start_time, i_am_alive_time)
    SELECT deployment_id, @Address, @Port, @Generation, @SiloName, @HostName, @Status, @ProxyPort, @StartTime, @IAmAliveTime
      FROM bumped
    RETURNING 1)
SELECT count(*) > 0 FROM added
$q$),

-- Changes a silo's status, death votes and heartbeat if the table version is still the expected one.
('UpdateMembershipKey', $q$
WITH bumped AS (
    UPDATE pf_orleans_membership_version
       SET version = version + 1, changed_at = now()
     WHERE deployment_id = @DeploymentId AND version = @Version
       AND EXISTS (SELECT 1 FROM pf_orleans_membership
                    WHERE deployment_id = @DeploymentId AND address = @Address AND port = @Port AND generation = @Generation)
    RETURNING deployment_id),
changed AS (
    UPDATE pf_orleans_membership m
       SET status = @Status, suspect_times = @SuspectTimes, i_am_alive_time = @IAmAliveTime
      FROM bumped
     WHERE m.deployment_id = bumped.deployment_id AND m.address = @Address AND m.port = @Port AND m.generation = @Generation
    RETURNING 1)
SELECT count(*) > 0 FROM changed
$q$),

-- The heartbeat: not versioned, it does not change membership.
('UpdateIAmAlivetimeKey', $q$
UPDATE pf_orleans_membership
   SET i_am_alive_time = @IAmAliveTime
 WHERE deployment_id = @DeploymentId AND address = @Address AND port = @Port AND generation = @Generation
$q$),

-- Removes a whole cluster (tests and tooling); members go with the version row (ON DELETE CASCADE).
('DeleteMembershipTableEntriesKey', $q$
DELETE FROM pf_orleans_membership_version WHERE deployment_id = @DeploymentId
$q$),

-- Housekeeping: dead silos whose last heartbeat is older than the cut-off.
('CleanupDefunctSiloEntriesKey', $q$
DELETE FROM pf_orleans_membership
 WHERE deployment_id = @DeploymentId AND status = 6 AND i_am_alive_time < @IAmAliveTime
$q$),

-- Housekeeping, one row at a time: removes a dead silo only if the row still holds the values the provider read,
-- so a row that changed meanwhile is left for the next round.
('CleanupDefunctSiloEntryKey', $q$
DELETE FROM pf_orleans_membership
 WHERE deployment_id = @DeploymentId AND address = @Address AND port = @Port AND generation = @Generation
   AND status = 6 AND start_time = @StartTime AND i_am_alive_time = @IAmAliveTime
   AND suspect_times IS NOT DISTINCT FROM @SuspectTimes
$q$)
ON CONFLICT (QueryKey) DO UPDATE SET QueryText = EXCLUDED.QueryText;
