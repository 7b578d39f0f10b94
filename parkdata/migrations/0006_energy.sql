-- Interval energy per meter and its rollups (docs/energy.md, DESIGN.md "Analytics contract").
-- analytics.energy_15min is written by the `energy` job (analytics.energy_store) from raw
-- readings; hour, day and month are rollups of it. Without TimescaleDB they are tables the
-- job maintains; with TimescaleDB energy_15min is a hypertable and hour/day/month are
-- hierarchical continuous aggregates with real-time aggregation. Same columns on both.
CREATE SCHEMA IF NOT EXISTS analytics;

-- One row per meter and 15-minute bucket [bucket, bucket + 15 min).
--   quantity           energy in the meter's registry unit, multiplier applied [unit]
--   estimated_quantity the part of quantity spread over gaps between two valid readings [unit]
--   flagged_quantity   deltas refused as implausible (above rated capacity), not in quantity [unit]
--   readings           valid readings whose interval ends in (bucket, bucket + 15 min]
--   expected_readings  readings due in (bucket, bucket + 15 min] at the meter's interval
--   coverage           least(1, readings / expected_readings); NULL when none was due
CREATE TABLE analytics.energy_15min (
    meter_id           integer NOT NULL,
    bucket             timestamptz NOT NULL,
    quantity           double precision NOT NULL,
    estimated_quantity double precision NOT NULL,
    flagged_quantity   double precision NOT NULL,
    readings           integer NOT NULL,
    expected_readings  integer NOT NULL,
    coverage           double precision,
    PRIMARY KEY (meter_id, bucket)
);

-- Ranges of reading time whose energy must be recomputed: registry changes that alter
-- history (meter events, multiplier, modulus, capacity, interval, kind) and forced
-- recomputes. to_ts 'infinity' = to the end. The job claims them in its transaction.
CREATE TABLE analytics.energy_dirty (
    dirty_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    meter_id  integer NOT NULL,
    from_ts   timestamptz NOT NULL,
    to_ts     timestamptz NOT NULL,
    reason    text NOT NULL,
    marked_at timestamptz NOT NULL DEFAULT now(),
    CHECK (from_ts <= to_ts)
);
CREATE INDEX ON analytics.energy_dirty (meter_id);

-- Arrival watermark of the energy job: readings received after it are new (or late).
CREATE TABLE analytics.energy_state (
    singleton        boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    received_through timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL
);
INSERT INTO analytics.energy_state VALUES (true, '-infinity', now());

-- Per meter: the last reading the job has seen and when the meter was last computed.
CREATE TABLE analytics.energy_meter_state (
    meter_id        integer PRIMARY KEY,
    last_reading_ts timestamptz,
    computed_at     timestamptz NOT NULL
);

-- Multipliers replaced by multiplier_change events: the multiplier in force before a
-- meter's first event is known only from here (registry.meter holds the current one).
CREATE TABLE analytics.meter_multiplier_log (
    meter_id       integer NOT NULL,
    old_multiplier double precision NOT NULL,
    new_multiplier double precision NOT NULL,
    changed_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ON analytics.meter_multiplier_log (meter_id, changed_at);

-- Every run of an analytics job (analytics.jobs): when, how it ended, its summary.
CREATE TABLE analytics.job_run (
    run_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job         text NOT NULL,
    started_at  timestamptz NOT NULL,
    finished_at timestamptz,
    status      text NOT NULL CHECK (status IN ('running', 'ok', 'failed', 'skipped')),
    summary     text NOT NULL DEFAULT ''
);
CREATE INDEX ON analytics.job_run (job, started_at);

-- Late readings are found by arrival time; received_at follows insertion order, so a BRIN
-- index finds the recent rows without scanning history.
CREATE INDEX reading_received_brin ON ingest.reading USING brin (received_at) WITH (autosummarize = on);

-- Registry changes that alter computed history mark it dirty. SECURITY DEFINER: the
-- registry loader need not be able to write analytics tables.
CREATE FUNCTION analytics.mark_event_dirty() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        INSERT INTO analytics.energy_dirty (meter_id, from_ts, to_ts, reason)
        VALUES (OLD.meter_id, OLD.effective_at, 'infinity', 'meter_event');
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO analytics.energy_dirty (meter_id, from_ts, to_ts, reason)
        VALUES (NEW.meter_id, NEW.effective_at, 'infinity', 'meter_event');
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER energy_dirty AFTER INSERT OR UPDATE OR DELETE ON registry.meter_event
    FOR EACH ROW EXECUTE FUNCTION analytics.mark_event_dirty();

CREATE FUNCTION analytics.mark_meter_dirty() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF (OLD.kind, OLD.multiplier, OLD.rollover, OLD.expected_interval_s, OLD.rated_capacity_per_h)
       IS DISTINCT FROM
       (NEW.kind, NEW.multiplier, NEW.rollover, NEW.expected_interval_s, NEW.rated_capacity_per_h) THEN
        INSERT INTO analytics.energy_dirty (meter_id, from_ts, to_ts, reason)
        VALUES (NEW.meter_id, '-infinity', 'infinity', 'meter');
    END IF;
    IF OLD.multiplier IS DISTINCT FROM NEW.multiplier AND EXISTS (
        SELECT FROM registry.meter_event ev
        WHERE ev.meter_id = NEW.meter_id AND ev.event_type = 'multiplier_change') THEN
        INSERT INTO analytics.meter_multiplier_log (meter_id, old_multiplier, new_multiplier)
        VALUES (NEW.meter_id, OLD.multiplier, NEW.multiplier);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER energy_dirty AFTER UPDATE ON registry.meter
    FOR EACH ROW EXECUTE FUNCTION analytics.mark_meter_dirty();

-- Rollups. Day and month buckets start at local midnight in Asia/Shanghai (UTC+8, no DST).
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
        PERFORM create_hypertable('analytics.energy_15min', 'bucket',
                                  chunk_time_interval => INTERVAL '30 days');
        CREATE MATERIALIZED VIEW analytics.energy_hour
        WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
        SELECT meter_id, time_bucket(INTERVAL '1 hour', bucket) AS bucket,
               sum(quantity) AS quantity, sum(estimated_quantity) AS estimated_quantity,
               sum(flagged_quantity) AS flagged_quantity, sum(readings)::integer AS readings,
               sum(expected_readings)::integer AS expected_readings,
               CASE WHEN sum(expected_readings) > 0
                    THEN least(1.0, sum(readings)::double precision / sum(expected_readings)) END
                   AS coverage
        FROM analytics.energy_15min
        GROUP BY meter_id, time_bucket(INTERVAL '1 hour', bucket)
        WITH NO DATA;
        CREATE MATERIALIZED VIEW analytics.energy_day
        WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
        SELECT meter_id, time_bucket(INTERVAL '1 day', bucket, 'Asia/Shanghai') AS bucket,
               sum(quantity) AS quantity, sum(estimated_quantity) AS estimated_quantity,
               sum(flagged_quantity) AS flagged_quantity, sum(readings)::integer AS readings,
               sum(expected_readings)::integer AS expected_readings,
               CASE WHEN sum(expected_readings) > 0
                    THEN least(1.0, sum(readings)::double precision / sum(expected_readings)) END
                   AS coverage
        FROM analytics.energy_hour
        GROUP BY meter_id, time_bucket(INTERVAL '1 day', bucket, 'Asia/Shanghai')
        WITH NO DATA;
        CREATE MATERIALIZED VIEW analytics.energy_month
        WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
        SELECT meter_id, time_bucket(INTERVAL '1 month', bucket, 'Asia/Shanghai') AS bucket,
               sum(quantity) AS quantity, sum(estimated_quantity) AS estimated_quantity,
               sum(flagged_quantity) AS flagged_quantity, sum(readings)::integer AS readings,
               sum(expected_readings)::integer AS expected_readings,
               CASE WHEN sum(expected_readings) > 0
                    THEN least(1.0, sum(readings)::double precision / sum(expected_readings)) END
                   AS coverage
        FROM analytics.energy_day
        GROUP BY meter_id, time_bucket(INTERVAL '1 month', bucket, 'Asia/Shanghai')
        WITH NO DATA;
    ELSE
        CREATE TABLE analytics.energy_hour (LIKE analytics.energy_15min INCLUDING ALL);
        CREATE TABLE analytics.energy_day (LIKE analytics.energy_15min INCLUDING ALL);
        CREATE TABLE analytics.energy_month (LIKE analytics.energy_15min INCLUDING ALL);
        CREATE INDEX energy_15min_bucket_brin ON analytics.energy_15min USING brin (bucket);
        CREATE INDEX ON analytics.energy_hour (bucket);
        CREATE INDEX ON analytics.energy_day (bucket);
        CREATE INDEX ON analytics.energy_month (bucket);
    END IF;
END $$;

-- The read API (docs/api.md, "Energy per meter"): the rollups with the meter's identity.
CREATE VIEW api.meter_energy_15min AS
SELECT p.park_code, e.enterprise_code, e.industry_code, m.meter_code, m.carrier, m.purpose, m.unit,
       x.bucket, x.quantity, x.estimated_quantity, x.flagged_quantity, x.readings,
       x.expected_readings, x.coverage
FROM analytics.energy_15min x
JOIN registry.meter m USING (meter_id)
JOIN registry.enterprise e USING (enterprise_id)
JOIN registry.park p USING (park_id);

CREATE VIEW api.meter_energy_hour AS
SELECT p.park_code, e.enterprise_code, e.industry_code, m.meter_code, m.carrier, m.purpose, m.unit,
       x.bucket, x.quantity, x.estimated_quantity, x.flagged_quantity, x.readings,
       x.expected_readings, x.coverage
FROM analytics.energy_hour x
JOIN registry.meter m USING (meter_id)
JOIN registry.enterprise e USING (enterprise_id)
JOIN registry.park p USING (park_id);

CREATE VIEW api.meter_energy_day AS
SELECT p.park_code, e.enterprise_code, e.industry_code, m.meter_code, m.carrier, m.purpose, m.unit,
       x.bucket, x.quantity, x.estimated_quantity, x.flagged_quantity, x.readings,
       x.expected_readings, x.coverage
FROM analytics.energy_day x
JOIN registry.meter m USING (meter_id)
JOIN registry.enterprise e USING (enterprise_id)
JOIN registry.park p USING (park_id);

CREATE VIEW api.meter_energy_month AS
SELECT p.park_code, e.enterprise_code, e.industry_code, m.meter_code, m.carrier, m.purpose, m.unit,
       x.bucket, x.quantity, x.estimated_quantity, x.flagged_quantity, x.readings,
       x.expected_readings, x.coverage
FROM analytics.energy_month x
JOIN registry.meter m USING (meter_id)
JOIN registry.enterprise e USING (enterprise_id)
JOIN registry.park p USING (park_id);

-- Analytics computes and owns these; Grafana reads the api views only.
GRANT USAGE ON SCHEMA analytics TO parkenergy_analytics;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA analytics TO parkenergy_analytics;
GRANT SELECT ON api.meter_energy_15min, api.meter_energy_hour, api.meter_energy_day,
    api.meter_energy_month TO parkenergy_analytics, parkenergy_grafana;
