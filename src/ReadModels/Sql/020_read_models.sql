-- Read models kept by the projections (src/Projections). Every table can be emptied and rebuilt from the event log.

-- One row per pump: everything the fleet list of the API shows, plus the folded PumpState (state) that the
-- projection continues from. The detection engineer's fleet-level "silent" check reads serial, hub_id,
-- last_seen_at and status: keep those names.
CREATE TABLE IF NOT EXISTS pf_pump_status (
    serial             text PRIMARY KEY,
    hub_id             text NULL,
    model              text NULL,
    firmware           text NULL,
    lot                text NULL,
    phase              text NULL,
    drug               text NULL,
    status             text NOT NULL,
    reservoir_ml       double precision NULL,
    forecast_empty_at  timestamptz NULL,
    next_refill_due_at timestamptz NULL,
    active_alarms      int NOT NULL DEFAULT 0,
    active_alarm_codes text[] NOT NULL DEFAULT '{}',
    open_anomalies     int NOT NULL DEFAULT 0,
    last_seen_at       timestamptz NULL,
    last_event_at      timestamptz NULL,
    last_seq           bigint NOT NULL DEFAULT 0,
    battery_pct        double precision NULL,
    critical           boolean NOT NULL DEFAULT false,
    -- Stream version folded into state: events at or below it are skipped (idempotent replays).
    version            bigint NOT NULL DEFAULT 0,
    state              jsonb NOT NULL,
    updated_at         timestamptz NOT NULL DEFAULT now()
);
-- The fleet page sorts "needing attention first" (critical, then by status rank) and pages by serial.
CREATE INDEX IF NOT EXISTS pf_pump_status_attention ON pf_pump_status ((CASE status WHEN 'critical' THEN 0 WHEN 'attention' THEN 1 WHEN 'stopped' THEN 2 WHEN 'unknown' THEN 3 WHEN 'ok' THEN 4 ELSE 5 END), serial);
CREATE INDEX IF NOT EXISTS pf_pump_status_status ON pf_pump_status (status, serial);
CREATE INDEX IF NOT EXISTS pf_pump_status_cohort ON pf_pump_status (model, firmware, lot, serial);
CREATE INDEX IF NOT EXISTS pf_pump_status_last_seen ON pf_pump_status (last_seen_at);
CREATE INDEX IF NOT EXISTS pf_pump_status_forecast ON pf_pump_status (forecast_empty_at);
CREATE INDEX IF NOT EXISTS pf_pump_status_refill ON pf_pump_status (next_refill_due_at);

-- Every alarm a pump raised, with when it cleared. (serial, seq) is the raising event.
CREATE TABLE IF NOT EXISTS pf_alarm_log (
    serial     text NOT NULL,
    seq        bigint NOT NULL,
    code       text NOT NULL,
    severity   text NOT NULL,
    raised_at  timestamptz NOT NULL,
    cleared_at timestamptz NULL,
    PRIMARY KEY (serial, seq)
);
CREATE INDEX IF NOT EXISTS pf_alarm_log_open ON pf_alarm_log (serial, code) WHERE cleared_at IS NULL;
CREATE INDEX IF NOT EXISTS pf_alarm_log_active ON pf_alarm_log (code, severity) WHERE cleared_at IS NULL;

-- Daily volumes per pump (UTC days of the pump's event time).
CREATE TABLE IF NOT EXISTS pf_daily_flow (
    serial           text NOT NULL,
    day              date NOT NULL,
    delivered_ml     double precision NOT NULL DEFAULT 0,
    programmed_ml    double precision NOT NULL DEFAULT 0,
    measured_ml      double precision NOT NULL DEFAULT 0,
    measured_samples int NOT NULL DEFAULT 0,
    reservoir_ml_end double precision NULL,
    refills          int NOT NULL DEFAULT 0,
    PRIMARY KEY (serial, day)
);

-- Platform-detected anomalies and their lifecycle.
CREATE TABLE IF NOT EXISTS pf_anomalies (
    id              text PRIMARY KEY,
    serial          text NOT NULL,
    kind            text NOT NULL,
    severity        text NOT NULL,
    status          text NOT NULL,
    detected_at     timestamptz NOT NULL,
    summary         text NOT NULL,
    evidence        jsonb NOT NULL,
    acknowledged_by text NULL,
    acknowledged_at timestamptz NULL,
    resolved_by     text NULL,
    resolved_at     timestamptz NULL,
    note            text NULL
);
CREATE INDEX IF NOT EXISTS pf_anomalies_status ON pf_anomalies (status, detected_at DESC);
CREATE INDEX IF NOT EXISTS pf_anomalies_serial ON pf_anomalies (serial);

-- Per-pump contributions to the cohort counts; pf_cohort_stats is recomputed from it for the cohorts a page touched.
CREATE TABLE IF NOT EXISTS pf_cohort_members (
    serial          text PRIMARY KEY,
    model           text NULL,
    firmware        text NULL,
    lot             text NULL,
    first_event_at  timestamptz NULL,
    last_event_at   timestamptz NULL,
    alarms          int NOT NULL DEFAULT 0,
    critical_alarms int NOT NULL DEFAULT 0,
    anomalies       int NOT NULL DEFAULT 0,
    version         bigint NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS pf_cohort_members_cohort ON pf_cohort_members (model, firmware, lot);

CREATE TABLE IF NOT EXISTS pf_cohort_stats (
    model           text NOT NULL,
    firmware        text NOT NULL,
    lot             text NOT NULL,
    pumps           int NOT NULL,
    pump_days       double precision NOT NULL,
    alarms          bigint NOT NULL,
    critical_alarms bigint NOT NULL,
    anomalies       bigint NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (model, firmware, lot)
);

-- Progress of each projection partition beside its checkpoint (pf_checkpoints), written in the same transaction:
-- the receive time of the last processed event gives the lag in seconds.
CREATE TABLE IF NOT EXISTS pf_projection_progress (
    name             text PRIMARY KEY,
    projection       text NOT NULL,
    last_received_at timestamptz NULL,
    events_processed bigint NOT NULL DEFAULT 0,
    updated_at       timestamptz NOT NULL DEFAULT now()
);
