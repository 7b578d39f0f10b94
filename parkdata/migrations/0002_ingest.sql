-- Raw readings, conflicts, quarantine and collector counters (DESIGN.md, storage contract).
CREATE SCHEMA IF NOT EXISTS ingest;

-- Immutable raw readings, value in the meter's registered unit.
-- No foreign key to registry.meter: meters are never deleted, and the check
-- would slow every COPY.
CREATE TABLE ingest.reading (
    meter_id    integer NOT NULL,
    ts          timestamptz NOT NULL,
    value       double precision NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (meter_id, ts)
);

-- A different value for an existing (meter_id, ts): the first value stays in
-- ingest.reading, every other distinct value is recorded here once.
CREATE TABLE ingest.reading_conflict (
    meter_id    integer NOT NULL,
    ts          timestamptz NOT NULL,
    value       double precision NOT NULL,
    topic       text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (meter_id, ts, value)
);

-- Every message (or batch item) that could not be stored as a reading, kept whole.
-- message_sha256 = sha256(topic || 0x00 || payload): a redelivered message is
-- quarantined once, whatever the collector's crashes.
CREATE TABLE ingest.quarantine (
    quarantine_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at     timestamptz NOT NULL,
    topic           text NOT NULL,
    payload         bytea NOT NULL,
    payload_is_utf8 boolean NOT NULL,
    reason          text NOT NULL CHECK (reason ~ '^[a-z_]+\.[a-z_.]+$'),
    detail          text NOT NULL,
    item_index      integer NOT NULL DEFAULT -1,  -- -1: the whole message; n: item n of a batch
    message_sha256  bytea NOT NULL,
    collector_id    text NOT NULL,
    replayed_at     timestamptz,
    replay_result   text,   -- 'stored' or the reason it still fails
    UNIQUE (message_sha256, item_index)
);
CREATE INDEX ON ingest.quarantine (reason, received_at);
CREATE INDEX ON ingest.quarantine (received_at);

-- Gateway status (retained online/offline; offline is the MQTT last will).
CREATE TABLE ingest.gateway_status (
    enterprise_id integer PRIMARY KEY,
    status        text NOT NULL CHECK (status IN ('online', 'offline')),
    changed_at    timestamptz NOT NULL
);
CREATE TABLE ingest.gateway_event (
    enterprise_id integer NOT NULL,
    status        text NOT NULL CHECK (status IN ('online', 'offline')),
    received_at   timestamptz NOT NULL
);
CREATE INDEX ON ingest.gateway_event (enterprise_id, received_at);

CREATE TABLE ingest.collector_stats (
    collector_id      text PRIMARY KEY,
    started_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    messages          bigint NOT NULL DEFAULT 0,
    readings          bigint NOT NULL DEFAULT 0,
    stored            bigint NOT NULL DEFAULT 0,
    duplicates        bigint NOT NULL DEFAULT 0,
    conflicts         bigint NOT NULL DEFAULT 0,
    quarantined       bigint NOT NULL DEFAULT 0,
    db_retries        bigint NOT NULL DEFAULT 0,
    last_lag_s        double precision
);

-- TimescaleDB when the extension was created by `parkenergy db migrate`:
-- readings become a hypertable, compressed after 30 days, segmented by meter.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
        PERFORM create_hypertable('ingest.reading', 'ts', chunk_time_interval => INTERVAL '7 days');
        ALTER TABLE ingest.reading SET (
            timescaledb.compress,
            timescaledb.compress_segmentby = 'meter_id',
            timescaledb.compress_orderby = 'ts'
        );
        PERFORM add_compression_policy('ingest.reading', INTERVAL '30 days');
    ELSE
        CREATE INDEX reading_ts_brin ON ingest.reading USING brin (ts);
    END IF;
END $$;
