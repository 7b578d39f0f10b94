-- The stable read API: dashboards, tools and users query these views only.
-- Same names and columns with or without TimescaleDB. Documented in docs/api.md.
CREATE SCHEMA IF NOT EXISTS api;

CREATE VIEW api.park AS
SELECT p.park_code, p.park_name, p.updated_at
FROM registry.park p;

CREATE VIEW api.enterprise AS
SELECT p.park_code, e.enterprise_code, e.enterprise_name, e.industry_code,
       e.key_energy_unit, e.updated_at
FROM registry.enterprise e
JOIN registry.park p USING (park_id);

CREATE VIEW api.meter AS
SELECT p.park_code, e.enterprise_code, m.meter_code, m.carrier, m.unit, m.kind,
       m.multiplier, m.rollover, m.expected_interval_s, m.rated_capacity_per_h,
       m.purpose, parent.meter_code AS parent_meter_code, m.retired_at, m.updated_at
FROM registry.meter m
JOIN registry.enterprise e USING (enterprise_id)
JOIN registry.park p USING (park_id)
LEFT JOIN registry.meter parent ON parent.meter_id = m.parent_meter_id;

CREATE VIEW api.meter_event AS
SELECT e.enterprise_code, m.meter_code, ev.event_type, ev.effective_at,
       ev.final_register, ev.initial_register, ev.new_multiplier, ev.note, ev.recorded_at
FROM registry.meter_event ev
JOIN registry.meter m USING (meter_id)
JOIN registry.enterprise e USING (enterprise_id);

CREATE VIEW api.reading AS
SELECT p.park_code, e.enterprise_code, m.meter_code, m.carrier, r.ts, r.value, m.unit,
       r.received_at
FROM ingest.reading r
JOIN registry.meter m USING (meter_id)
JOIN registry.enterprise e USING (enterprise_id)
JOIN registry.park p USING (park_id);

CREATE VIEW api.reading_conflict AS
SELECT e.enterprise_code, m.meter_code, c.ts, r.value AS stored_value,
       c.value AS conflicting_value, m.unit, c.topic, c.received_at
FROM ingest.reading_conflict c
JOIN ingest.reading r USING (meter_id, ts)
JOIN registry.meter m USING (meter_id)
JOIN registry.enterprise e USING (enterprise_id);

CREATE VIEW api.quarantine AS
SELECT q.received_at, q.topic, q.reason, q.detail,
       CASE WHEN q.payload_is_utf8 THEN convert_from(q.payload, 'UTF8')
            ELSE encode(q.payload, 'escape') END AS payload,
       q.quarantine_id, q.item_index, q.replayed_at, q.replay_result
FROM ingest.quarantine q;

CREATE VIEW api.collector_stats AS
SELECT collector_id, started_at, updated_at, messages, readings, stored, duplicates,
       conflicts, quarantined, db_retries, last_lag_s
FROM ingest.collector_stats;

CREATE VIEW api.gateway_status AS
SELECT p.park_code, e.enterprise_code, g.status, g.changed_at
FROM ingest.gateway_status g
JOIN registry.enterprise e USING (enterprise_id)
JOIN registry.park p USING (park_id);

CREATE VIEW api.gateway_event AS
SELECT p.park_code, e.enterprise_code, g.status, g.received_at
FROM ingest.gateway_event g
JOIN registry.enterprise e USING (enterprise_id)
JOIN registry.park p USING (park_id);
