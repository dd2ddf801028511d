-- Gateway state: hub credentials, hub online status, quarantine. Safe to re-run.

CREATE TABLE IF NOT EXISTS gateway_hubs (
    hub_id       text PRIMARY KEY,
    -- pbkdf2-sha256$<iterations>$<salt base64>$<hash base64>; the secret itself is never stored.
    secret_hash  text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    rotated_at   timestamptz,
    revoked_at   timestamptz,
    created_by   text
);

CREATE TABLE IF NOT EXISTS gateway_hub_status (
    hub_id           text PRIMARY KEY,
    online           boolean NOT NULL,
    firmware         text,
    status_at        timestamptz,
    last_seen_at     timestamptz NOT NULL,
    connected_at     timestamptz,
    disconnected_at  timestamptz
);

CREATE INDEX IF NOT EXISTS gateway_hub_status_last_seen ON gateway_hub_status (last_seen_at);

CREATE TABLE IF NOT EXISTS gateway_quarantine (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    hub_id       text NOT NULL,
    serial       text,
    topic        text NOT NULL,
    -- 'message': the whole MQTT payload; 'event': one element of its events array.
    scope        text NOT NULL CHECK (scope IN ('message', 'event')),
    refused      boolean NOT NULL DEFAULT false,
    seq          bigint,
    code         text NOT NULL,
    reason       text NOT NULL,
    received_at  timestamptz NOT NULL,
    payload      bytea NOT NULL
);

CREATE INDEX IF NOT EXISTS gateway_quarantine_hub ON gateway_quarantine (hub_id, id DESC);
CREATE INDEX IF NOT EXISTS gateway_quarantine_serial ON gateway_quarantine (serial, id DESC);
