-- Alert state (docs/alerts.md, DESIGN.md "Analytics contract"): what the detectors found,
-- one record per (kind, subject) while it is not resolved, with its lifecycle
-- open -> acknowledged -> resolved and its history. Written by analytics.alert_store.

-- One alert: a problem of one kind on one subject (meter:<enterprise>/<meter>,
-- gateway:<enterprise>, enterprise:<enterprise>, topic:<topic>, park:<park>).
--   started_at      start of the first episode the alert covers (event time)
--   episode_starts  started_at of every episode the alert absorbed: a finding of one of
--                   them never reopens a resolved alert (idempotent replays)
--   opened_at, last_seen_at  detection times (the run's `now`) of the first and latest finding
--   severity_rank   1 info, 2 warning, 3 critical; only rises while the alert is unresolved
--   resolution      cleared (not detected for the kind's clear time), ended (the episode
--                   ended), manual (resolved by a person; resolve_note says why)
--   occurrences     detector runs that found it
CREATE TABLE analytics.alert (
    alert_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind            text NOT NULL CHECK (kind = lower(kind) AND position('.' IN kind) > 1),
    subject         text NOT NULL CHECK (subject <> ''),
    severity        text NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    severity_rank   integer NOT NULL,
    state           text NOT NULL CHECK (state IN ('open', 'acknowledged', 'resolved')),
    started_at      timestamptz NOT NULL,
    ended_at        timestamptz,
    episode_starts  timestamptz[] NOT NULL,
    opened_at       timestamptz NOT NULL,
    last_seen_at    timestamptz NOT NULL,
    acknowledged_at timestamptz,
    acknowledged_by text,
    ack_note        text,
    resolved_at     timestamptz,
    resolved_by     text,
    resolution      text CHECK (resolution IN ('cleared', 'ended', 'manual')),
    resolve_note    text,
    summary_zh      text NOT NULL,
    summary_en      text NOT NULL,
    enterprise_id   integer,
    meter_id        integer,
    park_id         integer,
    observed        double precision,
    expected_low    double precision,
    expected_high   double precision,
    score           double precision,
    unit            text NOT NULL DEFAULT '',
    evidence        jsonb NOT NULL DEFAULT '{}',
    detector        text NOT NULL,
    occurrences     integer NOT NULL DEFAULT 1 CHECK (occurrences >= 1),
    CHECK (severity_rank = CASE severity WHEN 'info' THEN 1 WHEN 'warning' THEN 2 ELSE 3 END),
    CHECK ((state = 'resolved') = (resolved_at IS NOT NULL AND resolution IS NOT NULL)),
    CHECK (state <> 'acknowledged' OR acknowledged_at IS NOT NULL)
);
-- The last guard against duplicates: one unresolved alert per (kind, subject).
CREATE UNIQUE INDEX alert_one_unresolved ON analytics.alert (kind, subject) WHERE state <> 'resolved';
CREATE INDEX alert_resolved_subject ON analytics.alert (kind, subject) WHERE state = 'resolved';
CREATE INDEX ON analytics.alert (enterprise_id);
CREATE INDEX ON analytics.alert (started_at);

-- History of an alert: opened, escalated, acknowledged, resolved, reopened; the actor is a
-- person for acknowledged and manual resolves, else the detector's name.
CREATE TABLE analytics.alert_event (
    event_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alert_id bigint NOT NULL REFERENCES analytics.alert ON DELETE CASCADE,
    at       timestamptz NOT NULL,
    event    text NOT NULL CHECK (event IN ('opened', 'escalated', 'acknowledged', 'resolved', 'reopened')),
    actor    text NOT NULL CHECK (actor <> ''),
    note     text NOT NULL DEFAULT '',
    severity text NOT NULL CHECK (severity IN ('info', 'warning', 'critical'))
);
CREATE INDEX ON analytics.alert_event (alert_id, event_id);
CREATE INDEX ON analytics.alert_event (at);

-- The read API (docs/alerts.md, "Views"): alerts and their history with the registry's
-- codes and names. Subjects without a meter (gateway, enterprise, topic, park) leave the
-- meter (and enterprise, park) columns NULL where they do not apply.
CREATE VIEW api.alert AS
SELECT a.alert_id, a.kind, a.severity, a.severity_rank, a.state, a.subject,
       p.park_code, p.park_name, e.enterprise_code, e.enterprise_name, e.industry_code, m.meter_code,
       a.started_at, a.ended_at, a.opened_at, a.last_seen_at,
       a.acknowledged_at, a.acknowledged_by, a.ack_note, a.resolved_at, a.resolved_by, a.resolution,
       a.summary_zh, a.summary_en, a.observed, a.expected_low, a.expected_high, a.score, a.unit,
       a.evidence, a.detector, a.occurrences, a.resolve_note
FROM analytics.alert a
LEFT JOIN registry.meter m ON m.meter_id = a.meter_id
LEFT JOIN registry.enterprise e ON e.enterprise_id = coalesce(a.enterprise_id, m.enterprise_id)
LEFT JOIN registry.park p ON p.park_id = coalesce(a.park_id, e.park_id);

CREATE VIEW api.alert_event AS
SELECT v.event_id, v.alert_id, v.at, v.event, v.actor, v.note, v.severity, a.kind, a.subject,
       p.park_code, e.enterprise_code
FROM analytics.alert_event v
JOIN analytics.alert a USING (alert_id)
LEFT JOIN registry.meter m ON m.meter_id = a.meter_id
LEFT JOIN registry.enterprise e ON e.enterprise_id = coalesce(a.enterprise_id, m.enterprise_id)
LEFT JOIN registry.park p ON p.park_id = coalesce(a.park_id, e.park_id);

GRANT SELECT, INSERT, UPDATE, DELETE ON analytics.alert, analytics.alert_event TO parkenergy_analytics;
GRANT SELECT ON api.alert, api.alert_event TO parkenergy_analytics, parkenergy_grafana;
