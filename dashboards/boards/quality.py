"""Data quality and collector health: ingest rate, lag, quarantine, conflicts, coverage.

Readings and lag read the arrival rollups (``api.arrival_hour`` / ``_day``), coverage the
energy rollups (``api.meter_energy_hour`` / ``_day``): over a year of a large park, queries
of the raw readings take seconds (docs/benchmarks.md, "Dashboard benchmark").
"""

from __future__ import annotations

from typing import Final

from dashboards.boards.accounting import RANGE_LENGTH, fill
from dashboards.boards.enterprise import HOURLY_DAYS
from dashboards.panels import Board, Column, Kind, Panel, Row, Threshold

# Completeness = received / expected uploads ≥ 90 % (DOMAIN.md §4, provincial
# online-monitoring practice under 发改环资〔2017〕1711号).
COVERAGE_TARGET_PCT: Final = 90.0

# Readings and lag come from the arrival rollups (docs/energy.md "Arrivals"): hours of
# reading time for ranges up to HOURLY_DAYS days, local days beyond (a year of hours is
# meters × 8 760 rows, too many for one query; the other branch of the UNION ALL is cut by a
# one-time filter before it reads anything).
_HOURLY = f"{RANGE_LENGTH} <= interval '{HOURLY_DAYS} days'"
_DAILY = f"{RANGE_LENGTH} > interval '{HOURLY_DAYS} days'"


def _arrivals(columns: str) -> str:
    """``columns`` of the arrival rollup suited to the range, as ``bucket``, of the selection."""
    return fill(
        """SELECT x.hour AS bucket, {columns} FROM api.arrival_hour x
    WHERE $__timeFilter(x.hour) AND x.enterprise_code IN ($enterprise) AND {hourly}
    UNION ALL
    SELECT x.day, {columns} FROM api.arrival_day x
    WHERE $__timeFilter(x.day) AND x.enterprise_code IN ($enterprise) AND {daily}""",
        columns=columns,
        hourly=_HOURLY,
        daily=_DAILY,
    )


INGEST_RATE = Panel(
    key="ingest_rate",
    kind=Kind.TIMESERIES,
    sql="""SELECT $__timeGroupAlias(a.bucket, $__interval), sum(a.readings) AS readings
FROM (
    """
    + _arrivals("x.readings")
    + """
) a
GROUP BY 1
ORDER BY 1""",
    columns=(Column("readings"),),
)

# Mean lag of a bucket = Σ lag / Σ readings (each row's mean weighted by its readings).
LAG = Panel(
    key="lag",
    kind=Kind.TIMESERIES,
    sql="""SELECT $__timeGroupAlias(a.bucket, $__interval),
       sum(a.readings * a.lag_s_avg) / sum(a.readings) AS lag_mean_s,
       max(a.lag_s_max) AS lag_max_s
FROM (
    """
    + _arrivals("x.readings, x.lag_s_avg, x.lag_s_max")
    + """
) a
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

# Coverage as the energy rollups count it (docs/energy.md "Coverage"; DOMAIN.md §4):
# valid readings / readings due at each register or interval meter's expected interval, from
# its first reading on, silent meters included up to the last energy run less a grace. Hours
# for ranges up to HOURLY_DAYS days, local days beyond. Every selected enterprise is listed;
# one without any energy meter row in the range has no coverage (shown first). At most 100 %,
# as a bucket's coverage (a daily meter's due reading may fall in the hour before the range).
COVERAGE = Panel(
    key="coverage",
    kind=Kind.TABLE,
    sql=fill(
        """SELECT e.park_code, e.enterprise_code, e.enterprise_name,
       coalesce(sum(x.readings), 0) AS received,
       coalesce(sum(x.expected_readings), 0) AS expected,
       least(100.0, 100.0 * sum(x.readings) / nullif(sum(x.expected_readings), 0)) AS coverage_pct
FROM api.enterprise e
LEFT JOIN (
    SELECT m.enterprise_code, m.readings, m.expected_readings FROM api.meter_energy_hour m
    WHERE $__timeFilter(m.bucket) AND m.enterprise_code IN ($enterprise) AND {hourly}
    UNION ALL
    SELECT m.enterprise_code, m.readings, m.expected_readings FROM api.meter_energy_day m
    WHERE $__timeFilter(m.bucket) AND m.enterprise_code IN ($enterprise) AND {daily}
) x ON x.enterprise_code = e.enterprise_code
WHERE e.enterprise_code IN ($enterprise)
GROUP BY e.park_code, e.enterprise_code, e.enterprise_name
ORDER BY coverage_pct NULLS FIRST, e.enterprise_code""",
        hourly=_HOURLY,
        daily=_DAILY,
    ),
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
