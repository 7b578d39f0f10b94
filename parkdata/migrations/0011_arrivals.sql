-- Readings stored per meter and hour / day of reading time, with their ingest lag
-- (docs/energy.md "Arrivals", docs/api.md "Arrivals"). Written incrementally by the `energy`
-- job (analytics.energy_store): each run adds the readings received in [old watermark, new
-- watermark) — the arrival window in which it finds new and late readings — in the
-- transaction that advances the watermark, so each reading is counted exactly once. A late
-- reading adds to the hour and day of its own time. Plain tables with and without
-- TimescaleDB: a continuous aggregate cannot follow arrivals (ingest.reading is partitioned
-- by ts, and a late reading would be seen only by refreshing its old range).
--   hour / day  start of the clock hour (truncated in UTC) / the local day (Asia/Shanghai) of ts
--   readings    readings stored with ts in the bucket
--   lag_s_sum   sum of received_at - ts over them [s]
--   lag_s_max   largest received_at - ts [s]
-- The day table exists because a year of hours is as many rows as meters × 8 760, too many
-- for a dashboard query over a long range (docs/benchmarks.md, "Dashboard benchmark").
CREATE TABLE analytics.arrival_hour (
    meter_id  integer NOT NULL,
    hour      timestamptz NOT NULL,
    readings  integer NOT NULL,
    lag_s_sum double precision NOT NULL,
    lag_s_max double precision NOT NULL,
    PRIMARY KEY (meter_id, hour)
);
CREATE INDEX ON analytics.arrival_hour (hour);

CREATE TABLE analytics.arrival_day (
    meter_id  integer NOT NULL,
    day       timestamptz NOT NULL,
    readings  integer NOT NULL,
    lag_s_sum double precision NOT NULL,
    lag_s_max double precision NOT NULL,
    PRIMARY KEY (meter_id, day)
);
CREATE INDEX ON analytics.arrival_day (day);

-- Readings stored before this migration: those received before the watermark, which the
-- job will not count (its next run counts from the watermark on). The watermark row is
-- locked so that a run cannot move it meanwhile.
SELECT received_through FROM analytics.energy_state FOR UPDATE;

INSERT INTO analytics.arrival_hour (meter_id, hour, readings, lag_s_sum, lag_s_max)
SELECT r.meter_id, date_trunc('hour', r.ts, 'UTC'), count(*),
       sum(date_part('epoch', r.received_at - r.ts)), max(date_part('epoch', r.received_at - r.ts))
FROM ingest.reading r
WHERE r.received_at < (SELECT received_through FROM analytics.energy_state)
GROUP BY 1, 2;

-- Asia/Shanghai is UTC+8 without daylight saving: every clock hour lies in one local day.
INSERT INTO analytics.arrival_day (meter_id, day, readings, lag_s_sum, lag_s_max)
SELECT meter_id, date_trunc('day', hour, 'Asia/Shanghai'), sum(readings), sum(lag_s_sum), max(lag_s_max)
FROM analytics.arrival_hour
GROUP BY 1, 2;

-- The read API: readings stored per meter and hour / day of reading time, with their mean
-- (lag_s_sum / readings) and largest ingest lag.
CREATE VIEW api.arrival_hour AS
SELECT p.park_code, e.enterprise_code, m.meter_code, m.carrier, a.hour, a.readings,
       a.lag_s_sum / a.readings AS lag_s_avg, a.lag_s_max
FROM analytics.arrival_hour a
JOIN registry.meter m USING (meter_id)
JOIN registry.enterprise e USING (enterprise_id)
JOIN registry.park p USING (park_id);

CREATE VIEW api.arrival_day AS
SELECT p.park_code, e.enterprise_code, m.meter_code, m.carrier, a.day, a.readings,
       a.lag_s_sum / a.readings AS lag_s_avg, a.lag_s_max
FROM analytics.arrival_day a
JOIN registry.meter m USING (meter_id)
JOIN registry.enterprise e USING (enterprise_id)
JOIN registry.park p USING (park_id);

GRANT SELECT, INSERT, UPDATE, DELETE ON analytics.arrival_hour, analytics.arrival_day TO parkenergy_analytics;
GRANT SELECT ON api.arrival_hour, api.arrival_day TO parkenergy_analytics, parkenergy_grafana;
