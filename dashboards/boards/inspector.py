"""Energy-saving inspection (节能监察): open alerts, enterprises above their path, offline devices.

Open alerts come from the detectors' alert state (``api.alert``, docs/alerts.md), most
severe first, with the evidence (observed value, expected range, score) and who
acknowledged them; the history of the time range from ``api.alert_event``.

An enterprise is above its path when its year-to-date intensity exceeds the
even path to the 2027 target (status ``at_risk``: above the path but not
above 2022; ``off_track``: above 2022; docs/accounting.md). The evidence is
shown with it: intensity, path, base, energy, value added and coverage.

A meter is offline when, at the end of the time range, its last reading is
older than :data:`OFFLINE_AFTER_INTERVALS` expected reporting intervals
(DOMAIN.md §8: offline alarms need an expected cadence per meter). The
gateway status shows next to each meter, so meters behind a gateway that is
down can be told apart (the alert rule leaves them out).
"""

from __future__ import annotations

from typing import Final

from dashboards.boards.accounting import COVERAGE_FLAG, INTENSITY, LATEST_YTD_END, RATIO, TCE, fill
from dashboards.panels import Board, Column, Kind, Panel, Row

OFFLINE_AFTER_INTERVALS: Final = 3

# Every enterprise above its path in the latest year to date (the city's latest
# month up to the end of the range), with the figures that show it.
ABOVE_PATH_SQL: Final = fill(
    """SELECT i.park_code, i.enterprise_code, e.enterprise_name, i.industry_code, i.period,
       i.status, i.intensity, i.path_value, i.intensity / nullif(i.path_value, 0) - 1 AS above_path,
       i.base_2022, i.change_vs_2022, i.target_2027, i.energy_tce, i.value_added_10k_yuan,
       i.coverage, {coverage_flag} AS coverage_flag, i.value_added_coverage
FROM api.intensity i
JOIN api.enterprise e ON e.enterprise_code = i.enterprise_code
WHERE i.level = 'enterprise' AND i.period_type = 'ytd' AND i.variant = '$variant'
  AND i.period_end = {latest_ytd_end}
  AND i.status IN ('at_risk', 'off_track') AND i.enterprise_code IN ($enterprise)""",
    coverage_flag=COVERAGE_FLAG,
    latest_ytd_end=LATEST_YTD_END,
)

ABOVE_PATH_COUNT = Panel(
    key="above_path_count",
    kind=Kind.STAT,
    sql=fill(
        """SELECT count(*) FILTER (WHERE a.status = 'off_track') AS off_track,
       count(*) FILTER (WHERE a.status = 'at_risk') AS at_risk
FROM ({above_path_sql}) a""",
        above_path_sql=ABOVE_PATH_SQL,
    ),
    width=6,
    height=8,
    columns=(Column("off_track"), Column("at_risk")),
)

ABOVE_PATH = Panel(
    key="above_path",
    kind=Kind.TABLE,
    sql=ABOVE_PATH_SQL
    + "\nORDER BY i.status = 'off_track' DESC, above_path DESC NULLS LAST, i.enterprise_code",
    width=18,
    columns=(
        Column("park_code"),
        Column("enterprise_code"),
        Column("enterprise_name"),
        Column("industry_code"),
        Column("period"),
        Column("status", mapping="status"),
        Column("intensity", INTENSITY),
        Column("path_value", INTENSITY),
        Column("above_path", RATIO),
        Column("base_2022", INTENSITY),
        Column("change_vs_2022", RATIO),
        Column("target_2027", INTENSITY),
        Column("energy_tce", TCE),
        Column("value_added_10k_yuan"),
        Column("coverage", RATIO),
        Column("coverage_flag", mapping="coverage_flag"),
        Column("value_added_coverage", RATIO),
    ),
)

# The last reading of meter ``m`` as of $__timeTo(), as ``l.last_ts``: looked up in the
# last two days first (a reporting meter: a few hundred index entries) and only for a
# silent meter in its whole history: max(ts) over the api.reading view reads every
# reading of the meter (≈ 0.7 s for 206 meters with a year of readings; 10 ms this way).
LAST_READING_LATERAL: Final = """LEFT JOIN LATERAL (
    SELECT coalesce(
        (SELECT max(r.ts) FROM api.reading r
         WHERE r.enterprise_code = m.enterprise_code AND r.meter_code = m.meter_code
           AND r.ts <= $__timeTo()::timestamptz AND r.ts > $__timeTo()::timestamptz - interval '2 days'),
        (SELECT max(r.ts) FROM api.reading r
         WHERE r.enterprise_code = m.enterprise_code AND r.meter_code = m.meter_code
           AND r.ts <= $__timeTo()::timestamptz)) AS last_ts
) l ON true"""

# One row per offline meter, as of $__timeTo() (the end of the dashboard's
# range, or "now" for an alert rule). Shared with dashboards.alerts.
OFFLINE_METERS_SQL: Final = fill(
    """SELECT m.park_code, m.enterprise_code, e.enterprise_name, m.meter_code,
       m.carrier, m.expected_interval_s, l.last_ts AS last_reading,
       extract(epoch FROM $__timeTo()::timestamptz - l.last_ts) AS silent_s,
       coalesce(g.status, 'unknown') AS gateway_status
FROM api.meter m
JOIN api.enterprise e ON e.enterprise_code = m.enterprise_code
LEFT JOIN api.gateway_status g ON g.enterprise_code = m.enterprise_code
{last_reading}
WHERE m.retired_at IS NULL AND m.expected_interval_s IS NOT NULL
  AND (l.last_ts IS NULL
       OR l.last_ts < $__timeTo()::timestamptz - 3 * m.expected_interval_s * interval '1 second')""",
    last_reading=LAST_READING_LATERAL,
)


def with_offline_meters(template: str) -> str:
    """``template`` with its ``(offline_meters)`` replaced by the offline-meter subquery."""
    return template.replace("(offline_meters)", "(" + OFFLINE_METERS_SQL + ")")


OFFLINE_METER_COUNT = Panel(
    key="offline_meter_count",
    kind=Kind.STAT,
    sql=with_offline_meters("""SELECT count(*) AS offline_meters
FROM (offline_meters) o
WHERE o.enterprise_code IN ($enterprise)"""),
    width=6,
    height=5,
    columns=(Column("offline_meters"),),
)

OFFLINE_GATEWAY_COUNT = Panel(
    key="offline_gateway_count",
    kind=Kind.STAT,
    sql="""SELECT count(*) AS offline_gateways
FROM api.gateway_status g
WHERE g.status = 'offline' AND g.changed_at <= $__timeTo()::timestamptz
  AND g.enterprise_code IN ($enterprise)""",
    width=6,
    height=5,
    columns=(Column("offline_gateways"),),
)

OFFLINE_METERS = Panel(
    key="offline_meters",
    kind=Kind.TABLE,
    sql=with_offline_meters("""SELECT o.*
FROM (offline_meters) o
WHERE o.enterprise_code IN ($enterprise)
ORDER BY o.silent_s DESC NULLS FIRST, o.enterprise_code, o.meter_code"""),
    width=24,
    columns=(
        Column("park_code"),
        Column("enterprise_code"),
        Column("enterprise_name"),
        Column("meter_code"),
        Column("carrier"),
        Column("expected_interval_s", "s"),
        Column("last_reading", "dateTimeAsIso"),
        Column("silent_s", "s"),
        Column("gateway_status"),
    ),
)

OFFLINE_GATEWAYS = Panel(
    key="offline_gateways",
    kind=Kind.TABLE,
    sql="""SELECT g.park_code, g.enterprise_code, e.enterprise_name, g.status, g.changed_at,
       extract(epoch FROM $__timeTo()::timestamptz - g.changed_at) AS offline_s
FROM api.gateway_status g
JOIN api.enterprise e ON e.enterprise_code = g.enterprise_code
WHERE g.status = 'offline' AND g.changed_at <= $__timeTo()::timestamptz
  AND g.enterprise_code IN ($enterprise)
ORDER BY g.changed_at, g.enterprise_code""",
    width=24,
    columns=(
        Column("park_code"),
        Column("enterprise_code"),
        Column("enterprise_name"),
        Column("status"),
        Column("changed_at", "dateTimeAsIso"),
        Column("offline_s", "s"),
    ),
)

# Topics are parkenergy/v1/{enterprise}/{meter}: the enterprise code is the
# third level (DESIGN.md, wire contract; default MQTT_TOPIC_PREFIX).
ENTERPRISE_QUARANTINE = Panel(
    key="enterprise_quarantine",
    kind=Kind.TABLE,
    sql=with_offline_meters("""SELECT q.received_at, split_part(q.topic, '/', 3) AS enterprise_code,
       q.reason, q.detail, q.topic
FROM api.quarantine q
WHERE $__timeFilter(q.received_at)
  AND split_part(q.topic, '/', 3) IN ($enterprise)
  AND split_part(q.topic, '/', 3) IN (
      SELECT o.enterprise_code FROM (offline_meters) o
      UNION
      SELECT g.enterprise_code FROM api.gateway_status g WHERE g.status = 'offline')
ORDER BY q.received_at DESC, q.topic
LIMIT 200"""),
    width=24,
    columns=(
        Column("received_at", "dateTimeAsIso"),
        Column("enterprise_code"),
        Column("reason"),
        Column("detail"),
        Column("topic"),
    ),
)

# Alerts of the selected enterprises, and those that belong to no enterprise (a message on an
# unknown topic): the alert state of the detectors (docs/alerts.md).
ALERT_SCOPE: Final = "(a.enterprise_code IN ($enterprise) OR a.enterprise_code IS NULL)"

OPEN_ALERT_COUNTS = Panel(
    key="open_alert_counts",
    kind=Kind.STAT,
    sql=fill(
        """SELECT count(*) FILTER (WHERE a.severity = 'critical') AS critical,
       count(*) FILTER (WHERE a.severity = 'warning') AS warning,
       count(*) FILTER (WHERE a.severity = 'info') AS info
FROM api.alert a
WHERE a.state <> 'resolved' AND {scope}""",
        scope=ALERT_SCOPE,
    ),
    width=8,
    height=8,
    columns=(Column("critical"), Column("warning"), Column("info")),
)

# Open and acknowledged alerts, most severe first, with their evidence.
OPEN_ALERTS = Panel(
    key="open_alerts",
    kind=Kind.TABLE,
    sql=fill(
        """SELECT a.severity, a.state, a.kind, a.park_code, a.enterprise_code, a.enterprise_name,
       a.meter_code, a.summary_<lang> AS summary, a.observed, a.expected_low, a.expected_high,
       a.unit, a.score, a.started_at AS since, a.last_seen_at, a.occurrences, a.acknowledged_by,
       a.ack_note, a.alert_id
FROM api.alert a
WHERE a.state <> 'resolved' AND {scope}
ORDER BY a.severity_rank DESC, a.started_at, a.alert_id
LIMIT 500""",
        scope=ALERT_SCOPE,
    ),
    width=16,
    height=12,
    columns=(
        Column("severity", mapping="severity"),
        Column("state", mapping="alert_state"),
        Column("kind"),
        Column("park_code"),
        Column("enterprise_code"),
        Column("enterprise_name"),
        Column("meter_code"),
        Column("summary"),
        Column("observed"),
        Column("expected_low"),
        Column("expected_high"),
        Column("unit"),
        Column("score"),
        Column("since", "dateTimeAsIso"),
        Column("last_seen_at", "dateTimeAsIso"),
        Column("occurrences"),
        Column("acknowledged_by"),
        Column("ack_note"),
        Column("alert_id"),
    ),
)

# What happened to alerts in the time range: opened, escalated, acknowledged, resolved.
ALERT_HISTORY = Panel(
    key="alert_history",
    kind=Kind.TABLE,
    sql=fill(
        """SELECT ev.at, ev.event, ev.severity, ev.kind, ev.enterprise_code, a.meter_code,
       a.summary_<lang> AS summary, ev.actor, ev.note, ev.alert_id
FROM api.alert_event ev
JOIN api.alert a ON a.alert_id = ev.alert_id
WHERE $__timeFilter(ev.at) AND {scope}
ORDER BY ev.at DESC, ev.event_id DESC
LIMIT 500""",
        scope=ALERT_SCOPE,
    ),
    width=24,
    columns=(
        Column("at", "dateTimeAsIso"),
        Column("event"),
        Column("severity", mapping="severity"),
        Column("kind"),
        Column("enterprise_code"),
        Column("meter_code"),
        Column("summary"),
        Column("actor"),
        Column("note"),
        Column("alert_id"),
    ),
)

BOARD = Board(
    uid="parkenergy-inspector",
    key="inspector",
    rows=(
        Row("alerts", (OPEN_ALERT_COUNTS, OPEN_ALERTS, ALERT_HISTORY)),
        Row("above_path", (ABOVE_PATH_COUNT, ABOVE_PATH)),
        Row("offline", (OFFLINE_METER_COUNT, OFFLINE_GATEWAY_COUNT, OFFLINE_METERS, OFFLINE_GATEWAYS)),
        Row("quarantine", (ENTERPRISE_QUARANTINE,)),
    ),
)
