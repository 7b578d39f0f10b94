-- The counter-fault detector (analytics.detect.counters_store) reads the conflicts of the
-- last local days every 15 minutes, by reading time or by arrival: without these indexes
-- each run would scan every conflict ever recorded.
CREATE INDEX reading_conflict_ts ON ingest.reading_conflict (ts);
CREATE INDEX reading_conflict_received_at ON ingest.reading_conflict (received_at);
