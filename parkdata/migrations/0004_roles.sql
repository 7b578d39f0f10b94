-- Least-privilege group roles (NOLOGIN). Deployments grant them to login users:
--   CREATE ROLE collector LOGIN PASSWORD '…' IN ROLE parkenergy_collector;
-- Roles are cluster-wide, so they are created only when missing.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'parkenergy_collector') THEN
        CREATE ROLE parkenergy_collector NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'parkenergy_analytics') THEN
        CREATE ROLE parkenergy_analytics NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'parkenergy_grafana') THEN
        CREATE ROLE parkenergy_grafana NOLOGIN;
    END IF;
END $$;

-- Collector: reads the registry, inserts readings, conflicts and quarantine,
-- keeps its counters, marks quarantine rows as replayed (`parkenergy quarantine
-- replay`). It cannot update or delete a reading.
GRANT USAGE ON SCHEMA registry, ingest TO parkenergy_collector;
GRANT SELECT ON ALL TABLES IN SCHEMA registry TO parkenergy_collector;
GRANT SELECT, INSERT ON ingest.reading, ingest.reading_conflict, ingest.quarantine
    TO parkenergy_collector;
GRANT SELECT, INSERT, UPDATE ON ingest.collector_stats, ingest.gateway_status TO parkenergy_collector;
GRANT INSERT ON ingest.gateway_event TO parkenergy_collector;
GRANT UPDATE (replayed_at, replay_result) ON ingest.quarantine TO parkenergy_collector;

-- Analytics: reads everything raw and the registry; derived schemas grant it
-- write access as they are created.
GRANT USAGE ON SCHEMA registry, ingest, api TO parkenergy_analytics;
GRANT SELECT ON ALL TABLES IN SCHEMA registry, ingest, api TO parkenergy_analytics;

-- Grafana: the api views only.
GRANT USAGE ON SCHEMA api TO parkenergy_grafana;
GRANT SELECT ON ALL TABLES IN SCHEMA api TO parkenergy_grafana;
