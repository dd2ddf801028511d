-- Latest snapshot per stream. schema_version lets a changed fold ignore snapshots it cannot read.
CREATE TABLE IF NOT EXISTS pf_snapshots (
    stream_id      text        PRIMARY KEY,
    version        bigint      NOT NULL,
    schema_version int         NOT NULL,
    state          jsonb       NOT NULL,
    taken_at       timestamptz NOT NULL DEFAULT now()
);

-- Durable positions of global-log consumers (projections, analytics).
CREATE TABLE IF NOT EXISTS pf_checkpoints (
    name            text        PRIMARY KEY,
    transaction_id  xid8        NOT NULL,
    global_position bigint      NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
