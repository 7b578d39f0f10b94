"""Data quality and collector health: ingest rate, lag, quarantine, conflicts, coverage."""

from __future__ import annotations

from typing import Final

from dashboards.panels import Board, Column, Kind, Panel, Row, Threshold

# Completeness = received / expected uploads ≥ 90 % (DOMAIN.md §4, provincial
# online-monitoring practice under 发改环资〔2017〕1711号).
COVERAGE_TARGET_PCT: Final = 90.0

INGEST_RATE = Panel(
    key="ingest_rate",
    kind=Kind.TIMESERIES,
    sql="""SELECT $__timeGroupAlias(ts, $__interval), count(*) AS readings
FROM api.reading
WHERE $__timeFilter(ts) AND enterprise_code IN ($enterprise)
GROUP BY 1
ORDER BY 1""",
    columns=(Column("readings"),),
)

LAG = Panel(
    key="lag",
    kind=Kind.TIMESERIES,
    sql="""SELECT $__timeGroupAlias(ts, $__interval),
       avg(date_part('epoch', received_at - ts)) AS lag_mean_s,
       max(date_part('epoch', received_at - ts)) AS lag_max_s
FROM api.reading
WHERE $__timeFilter(ts) AND enterprise_code IN ($enterprise)
GROUP BY 1
ORDER BY 1""",
    unit="s",
    columns=(Column("lag_mean_s"), Column("lag_max_s")),
)

COLLECTOR_RATE = Panel(
    key="collector_rate",
    kind=Kind.STAT,
    sql="""SELECT coalesce(sum(stored / nullif(extract(epoch FROM updated_at - started_at), 0)), 0)
       AS readings_per_s
FROM api.collector_stats
WHERE updated_at > now() - interval '10 minutes'""",
    unit="short",
    width=6,
    columns=(Column("readings_per_s"),),
)

COLLECTORS = Panel(
    key="collectors",
    kind=Kind.TABLE,
    sql="""SELECT collector_id, started_at, updated_at,
       extract(epoch FROM now() - updated_at) AS stale_s,
       readings, stored, duplicates, conflicts, quarantined, db_retries, last_lag_s
FROM api.collector_stats
ORDER BY updated_at DESC""",
    width=18,
    columns=(
        Column("collector_id"),
        Column("started_at", "dateTimeAsIso"),
        Column("updated_at", "dateTimeAsIso"),
        Column("stale_s", "s"),
        Column("readings"),
        Column("stored"),
        Column("duplicates"),
        Column("conflicts"),
        Column("quarantined"),
        Column("db_retries"),
        Column("last_lag_s", "s"),
    ),
)

QUARANTINE_BY_REASON = Panel(
    key="quarantine_by_reason",
    kind=Kind.TIMESERIES,
    sql="""SELECT $__timeGroupAlias(received_at, $__interval), reason AS metric, count(*) AS messages
FROM api.quarantine
WHERE $__timeFilter(received_at)
GROUP BY 1, 2
ORDER BY 1, 2""",
)

QUARANTINE_TABLE = Panel(
    key="quarantine_table",
    kind=Kind.TABLE,
    sql="""SELECT reason, count(*) AS messages,
       count(*) FILTER (WHERE replay_result = 'stored') AS replayed,
       max(received_at) AS latest
FROM api.quarantine
WHERE $__timeFilter(received_at)
GROUP BY reason
ORDER BY messages DESC, reason""",
    columns=(Column("reason"), Column("messages"), Column("replayed"), Column("latest", "dateTimeAsIso")),
)

CONFLICTS = Panel(
    key="conflicts",
    kind=Kind.TIMESERIES,
    sql="""SELECT $__timeGroupAlias(received_at, $__interval), count(*) AS conflicts
FROM api.reading_conflict
WHERE $__timeFilter(received_at) AND enterprise_code IN ($enterprise)
GROUP BY 1
ORDER BY 1""",
    columns=(Column("conflicts"),),
)

CONFLICTS_TABLE = Panel(
    key="conflicts_table",
    kind=Kind.TABLE,
    sql="""SELECT received_at, enterprise_code, meter_code, ts, stored_value, conflicting_value, unit
FROM api.reading_conflict
WHERE $__timeFilter(received_at) AND enterprise_code IN ($enterprise)
ORDER BY received_at DESC, enterprise_code, meter_code, ts
LIMIT 200""",
    columns=(
        Column("received_at", "dateTimeAsIso"),
        Column("enterprise_code"),
        Column("meter_code"),
        Column("ts", "dateTimeAsIso"),
        Column("stored_value"),
        Column("conflicting_value"),
        Column("unit"),
    ),
)

# Expected readings of a meter over the range = range length / expected interval;
# meters without an expected interval (or retired) are not counted.
COVERAGE = Panel(
    key="coverage",
    kind=Kind.TABLE,
    sql="""WITH expected AS (
    SELECT m.enterprise_code, m.meter_code,
           extract(epoch FROM $__timeTo()::timestamptz - $__timeFrom()::timestamptz)
             / m.expected_interval_s AS expected_n
    FROM api.meter m
    WHERE m.expected_interval_s IS NOT NULL AND m.retired_at IS NULL
      AND m.enterprise_code IN ($enterprise)
), received AS (
    SELECT r.enterprise_code, r.meter_code, count(*) AS received_n
    FROM api.reading r
    WHERE $__timeFilter(r.ts) AND r.enterprise_code IN ($enterprise)
    GROUP BY r.enterprise_code, r.meter_code
)
SELECT e.park_code, x.enterprise_code, e.enterprise_name,
       sum(coalesce(r.received_n, 0)) AS received,
       round(sum(x.expected_n)) AS expected,
       100 * sum(coalesce(r.received_n, 0)) / nullif(sum(x.expected_n), 0) AS coverage_pct
FROM expected x
JOIN api.enterprise e ON e.enterprise_code = x.enterprise_code
LEFT JOIN received r ON r.enterprise_code = x.enterprise_code AND r.meter_code = x.meter_code
GROUP BY e.park_code, x.enterprise_code, e.enterprise_name
ORDER BY coverage_pct, x.enterprise_code""",
    width=24,
    columns=(
        Column("park_code"),
        Column("enterprise_code"),
        Column("enterprise_name"),
        Column("received"),
        Column("expected"),
        Column("coverage_pct", "percent"),
    ),
    thresholds=(Threshold(None, "red"), Threshold(COVERAGE_TARGET_PCT, "green")),
)

BOARD = Board(
    uid="parkenergy-quality",
    key="quality",
    rows=(
        Row("ingest", (INGEST_RATE, LAG, COLLECTOR_RATE, COLLECTORS)),
        Row("quarantine", (QUARANTINE_BY_REASON, QUARANTINE_TABLE, CONFLICTS, CONFLICTS_TABLE)),
        Row("coverage", (COVERAGE,)),
    ),
)
