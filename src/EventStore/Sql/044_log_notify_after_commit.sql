-- The group append's NOTIFY after its commit instead of inside its transaction (issue 15; docs/architecture.md "Group
-- commit", docs/benchmarks.md "PostgreSQL's work per message").
--
-- Why: PostgreSQL serialises the commits of transactions that NOTIFY. Before committing, such a transaction takes one
-- lock on the server's notification queue (PreCommit_Notify: AccessExclusiveLock on a shared object) and keeps it until
-- the transaction has ended, that is across the commit's WAL flush. So while every append notified (007's trigger, one
-- pg_notify per partition), the group committer's writers committed one after the other, each waiting for the previous
-- one's fsync: their commits could never share a WAL flush. Measured on the dev VM with pgbench, 8 clients each
-- inserting one row per transaction: 3,356–3,925 commits/s without a NOTIFY, 810–862 with one.
--
-- What changes: the set-based group append can be called through pf_append_group_notify_after_commit, which marks its
-- transaction (a transaction-local setting) so that the NOTIFY trigger stays silent, and the caller (GroupCommitter,
-- EventStore:GroupCommit:NotifyAfterCommit) sends the same notifications once the commit is done (a notifier of its
-- own, on its own connection, for all groups committed since its last round), in a transaction that writes nothing
-- (so it has no WAL to flush and holds the queue's lock only for the notify itself).
-- Every other INSERT into pf_events (the per-stream path 042, hand-written rows, tests) notifies inside its transaction
-- exactly as before. A notification lost between the commit and the caller's NOTIFY (the connection dropped) costs a
-- log reader at most its poll interval (Streaming:PollInterval), as a missed one always did; the events are durable
-- and acknowledged either way.
CREATE OR REPLACE FUNCTION pf_events_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Unset (NULL) or anything else: notify here, as 007 did.
    IF current_setting('pumpfleet.log_notify', true) = 'after-commit' THEN
        RETURN NULL;
    END IF;
    PERFORM pg_notify('pf_log', p::text) FROM (SELECT DISTINCT log_partition AS p FROM pf_new_events) AS changed;
    RETURN NULL;
END $$;

-- 043's group append with the NOTIFY left to the caller. The setting is local to the transaction (autocommit: this
-- statement's), so it cannot leak into a pooled connection's next use.
CREATE OR REPLACE FUNCTION pf_append_group_notify_after_commit(
    p_streams text[], p_expected bigint[], p_counts integer[],
    p_ids uuid[], p_types text[], p_seqs bigint[], p_device_times timestamptz[], p_received timestamptz[],
    p_suspects boolean[], p_data text[], p_meta text[],
    p_snapshot_schema integer[], p_snapshot_state text[], p_history_until timestamptz[])
RETURNS TABLE (stream_ord integer, inserted integer, error_state text, error_message text)
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('pumpfleet.log_notify', 'after-commit', true);
    RETURN QUERY SELECT g.stream_ord, g.inserted, g.error_state, g.error_message
    FROM pf_append_group(p_streams, p_expected, p_counts, p_ids, p_types, p_seqs, p_device_times, p_received,
                         p_suspects, p_data, p_meta, p_snapshot_schema, p_snapshot_state, p_history_until) AS g;
END $$;
