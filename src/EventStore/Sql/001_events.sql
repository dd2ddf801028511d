-- The event log. One row per event; a stream is one pump (stream_id = serial).
-- global_position is allocated at INSERT but commits can land out of order, so readers of the global log
-- use (transaction_id, global_position) below the snapshot xmin horizon (see GlobalReader) and never
-- global_position alone.
CREATE TABLE IF NOT EXISTS pf_events (
    global_position bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
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
    CONSTRAINT pf_events_stream_version UNIQUE (stream_id, version),
    CONSTRAINT pf_events_stream_event_id UNIQUE (stream_id, event_id)
);

-- (serial, seq) identifies a device event forever: a second copy can never be stored.
CREATE UNIQUE INDEX IF NOT EXISTS pf_events_stream_seq ON pf_events (stream_id, seq) WHERE seq IS NOT NULL;

-- The gap-safe global reader walks this index.
CREATE INDEX IF NOT EXISTS pf_events_tx_position ON pf_events (transaction_id, global_position);
