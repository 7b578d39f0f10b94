"""Enterprise detail (企业详情): meters, load profiles, consumption against last year, intensity, coverage.

Made for one enterprise selected in ``$enterprise``; with several, the time
series carry one line per meter or sum the selection. Load profiles read the
finest view that keeps the row count bounded for the range shown: 15-minute
buckets up to :data:`FINE_DAYS` days, hours up to :data:`HOURLY_DAYS` days,
days beyond (the other branches of the ``UNION ALL`` are cut by a one-time
filter before they read anything).

Annotations: gateway status changes, quarantined messages and the detectors'
alerts (anomalies, counter faults, outages; ``api.alert``) of the selected
enterprises.
"""

from __future__ import annotations

from typing import Final

from dashboards.boards.accounting import (
    CO2_T,
    INTENSITY,
    RANGE_LENGTH,
    RATIO,
    SELECTION_INTENSITY_SQL,
    TCE,
    fill,
    variant_energy,
)
from dashboards.boards.inspector import LAST_READING_LATERAL
from dashboards.boards.overview import COVERAGE_THRESHOLDS
from dashboards.panels import Annotation, Board, Column, Kind, Panel, Row

FINE_DAYS: Final = 3
HOURLY_DAYS: Final = 35
# Energy against last year: days up to this range length, months beyond.
DAILY_DAYS: Final = 92

_FINE = f"{RANGE_LENGTH} <= interval '{FINE_DAYS} days'"
_HOURLY = f"{RANGE_LENGTH} > interval '{FINE_DAYS} days' AND {RANGE_LENGTH} <= interval '{HOURLY_DAYS} days'"
_DAILY = f"{RANGE_LENGTH} > interval '{HOURLY_DAYS} days'"


def _by_range(columns: str, where: str) -> str:
    """``columns`` of the meter energy view suited to the range, rows matching ``where``.

    ``hours`` is the bucket length [h] of the view the row comes from.
    """
    return fill(
        """SELECT {columns}, 0.25 AS hours FROM api.meter_energy_15min m WHERE {where} AND {fine}
    UNION ALL
    SELECT {columns}, 1.0 FROM api.meter_energy_hour m WHERE {where} AND {hourly}
    UNION ALL
    SELECT {columns}, 24.0 FROM api.meter_energy_day m WHERE {where} AND {daily}""",
        columns=columns,
        where=where,
        fine=_FINE,
        hourly=_HOURLY,
        daily=_DAILY,
    )


# The last reading: the last two days first, the whole history only for a silent
# meter (dashboards.boards.inspector.LAST_READING_LATERAL).
METERS = Panel(
    key="enterprise_meters",
    kind=Kind.TABLE,
    sql=fill(
        """SELECT m.enterprise_code, e.enterprise_name, m.meter_code, m.carrier, m.unit, m.kind, m.purpose,
       m.parent_meter_code, m.multiplier, m.expected_interval_s, m.retired_at, l.last_ts AS last_reading
FROM api.meter m
JOIN api.enterprise e ON e.enterprise_code = m.enterprise_code
{last_reading}
WHERE m.enterprise_code IN ($enterprise)
ORDER BY m.enterprise_code, m.meter_code""",
        last_reading=LAST_READING_LATERAL,
    ),
    width=24,
    columns=(
        Column("enterprise_code"),
        Column("enterprise_name"),
        Column("meter_code"),
        Column("carrier"),
        Column("unit"),
        Column("kind"),
        Column("purpose"),
        Column("parent_meter_code"),
        Column("multiplier"),
        Column("expected_interval_s", "s"),
        Column("retired_at", "dateTimeAsIso"),
        Column("last_reading", "dateTimeAsIso"),
    ),
)

# Mean power of each electricity meter [kW] = energy of a bucket [kWh] / its length [h].
ELECTRIC_LOAD = Panel(
    key="electric_load",
    kind=Kind.TIMESERIES,
    sql="""SELECT $__timeGroupAlias(b.bucket, $__interval),
       e.enterprise_name || ' ' || b.meter_code AS metric,
       avg(b.quantity * CASE b.unit WHEN 'MWh' THEN 1000.0 ELSE 1.0 END / b.hours) AS power_kw
FROM (
    """
    + _by_range(
        "m.enterprise_code, m.meter_code, m.unit, m.bucket, m.quantity",
        "$__timeFilter(m.bucket) AND m.carrier = 'electricity' AND m.unit IN ('kWh', 'MWh')"
        " AND m.enterprise_code IN ($enterprise)",
    )
    + """
) b
JOIN api.enterprise e ON e.enterprise_code = b.enterprise_code
GROUP BY 1, 2
ORDER BY 1, 2""",
    unit="kwatt",
    width=24,
)

OTHER_LOAD = Panel(
    key="other_load",
    kind=Kind.TIMESERIES,
    sql="""SELECT $__timeGroupAlias(b.bucket, $__interval),
       e.enterprise_name || ' ' || b.meter_code || ' [' || b.unit || '/h]' AS metric,
       avg(b.quantity / b.hours) AS rate_per_h
FROM (
    """
    + _by_range(
        "m.enterprise_code, m.meter_code, m.unit, m.bucket, m.quantity",
        "$__timeFilter(m.bucket) AND m.carrier <> 'electricity' AND m.enterprise_code IN ($enterprise)",
    )
    + """
) b
JOIN api.enterprise e ON e.enterprise_code = b.enterprise_code
GROUP BY 1, 2
ORDER BY 1, 2""",
    unit="short",
    width=24,
)

# "Expected" is the same period one year earlier (同比): the forecast starts after
# the data it was fitted on, so it says nothing about months already measured.
_DAYS = f"{RANGE_LENGTH} <= interval '{DAILY_DAYS} days'"
_MONTHS = f"{RANGE_LENGTH} > interval '{DAILY_DAYS} days'"
_ENERGY = variant_energy()
_SELECTED = "level = 'enterprise' AND enterprise_code IN ($enterprise)"
_LAST_YEAR = (
    "bucket >= $__timeFrom()::timestamptz - interval '1 year'"
    " AND bucket <= $__timeTo()::timestamptz - interval '1 year'"
)

ENERGY_VS_LAST_YEAR = Panel(
    key="energy_vs_last_year",
    kind=Kind.TIMESERIES,
    sql=fill(
        """WITH current_period AS (
    SELECT bucket AS "time", sum({energy}) AS energy_tce, sum(co2_t) AS co2_t
    FROM api.energy_tce_day WHERE {selected} AND $__timeFilter(bucket) AND {days} GROUP BY 1
    UNION ALL
    SELECT bucket, sum({energy}), sum(co2_t)
    FROM api.energy_tce_month WHERE {selected} AND $__timeFilter(bucket) AND {months} GROUP BY 1
), last_year AS (
    SELECT bucket + interval '1 year' AS "time", sum({energy}) AS energy_tce
    FROM api.energy_tce_day WHERE {selected} AND {last_year} AND {days} GROUP BY 1
    UNION ALL
    SELECT bucket + interval '1 year', sum({energy})
    FROM api.energy_tce_month WHERE {selected} AND {last_year} AND {months} GROUP BY 1
)
SELECT c."time", c.energy_tce, l.energy_tce AS energy_tce_last_year, c.co2_t
FROM current_period c
LEFT JOIN last_year l ON l."time" = c."time"
ORDER BY 1""",
        energy=_ENERGY,
        selected=_SELECTED,
        days=_DAYS,
        months=_MONTHS,
        last_year=_LAST_YEAR,
    ),
    unit=TCE,
    width=24,
    columns=(Column("energy_tce"), Column("energy_tce_last_year"), Column("co2_t", CO2_T)),
)

INTENSITY_HISTORY = Panel(
    key="intensity_history",
    kind=Kind.TIMESERIES,
    sql=SELECTION_INTENSITY_SQL,
    unit=INTENSITY,
    width=24,
    columns=(Column("intensity"), Column("base_2022"), Column("path_value"), Column("target_2027")),
)

COVERAGE_DAILY = Panel(
    key="enterprise_coverage_daily",
    kind=Kind.TIMESERIES,
    sql="""SELECT $__timeGroupAlias(m.bucket, $__interval), e.enterprise_name AS metric,
       sum(m.readings)::float8 / nullif(sum(m.expected_readings), 0) AS coverage
FROM api.meter_energy_day m
JOIN api.enterprise e ON e.enterprise_code = m.enterprise_code
WHERE $__timeFilter(m.bucket) AND m.enterprise_code IN ($enterprise)
GROUP BY 1, 2
ORDER BY 1, 2""",
    unit=RATIO,
    thresholds=COVERAGE_THRESHOLDS,
)

METER_COVERAGE = Panel(
    key="meter_coverage",
    kind=Kind.TABLE,
    sql="""SELECT m.enterprise_code, m.meter_code, m.carrier, m.unit,
       sum(m.readings) AS readings, sum(m.expected_readings) AS expected_readings,
       sum(m.readings)::float8 / nullif(sum(m.expected_readings), 0) AS coverage,
       sum(m.quantity) AS quantity,
       sum(m.estimated_quantity) / nullif(sum(m.quantity), 0) AS estimated_share,
       sum(m.flagged_quantity) AS flagged_quantity
FROM api.meter_energy_day m
WHERE $__timeFilter(m.bucket) AND m.enterprise_code IN ($enterprise)
GROUP BY m.enterprise_code, m.meter_code, m.carrier, m.unit
ORDER BY coverage NULLS FIRST, m.enterprise_code, m.meter_code""",
    columns=(
        Column("enterprise_code"),
        Column("meter_code"),
        Column("carrier"),
        Column("unit"),
        Column("readings"),
        Column("expected_readings"),
        Column("coverage", RATIO),
        Column("quantity"),
        Column("estimated_share", RATIO),
        Column("flagged_quantity"),
    ),
    thresholds=COVERAGE_THRESHOLDS,
)

GATEWAY_EVENTS = Annotation(
    key="gateway_events",
    sql="""SELECT g.received_at AS "time", e.enterprise_name || ': ' || g.status AS text,
       'gateway,' || g.status AS tags
FROM api.gateway_event g
JOIN api.enterprise e ON e.enterprise_code = g.enterprise_code
WHERE $__timeFilter(g.received_at) AND g.enterprise_code IN ($enterprise)
ORDER BY 1""",
    color="orange",
)

# Topics are parkenergy/v1/{enterprise}/{meter} (DESIGN.md, wire contract).
QUARANTINE = Annotation(
    key="quarantine",
    sql="""SELECT q.received_at AS "time", q.reason || ': ' || q.detail AS text,
       'quarantine,' || q.reason AS tags
FROM api.quarantine q
WHERE $__timeFilter(q.received_at) AND split_part(q.topic, '/', 3) IN ($enterprise)
ORDER BY 1
LIMIT 500""",
    color="red",
)

# The detectors' alerts of the enterprise (anomalies, counter faults, outages …) over the
# time their episode lasted (docs/alerts.md).
ALERTS = Annotation(
    key="alerts",
    sql="""SELECT a.started_at AS "time", coalesce(a.ended_at, a.last_seen_at) AS timeend,
       a.summary_<lang> AS text, 'alert,' || a.severity || ',' || a.kind AS tags
FROM api.alert a
WHERE a.enterprise_code IN ($enterprise)
  AND a.started_at <= $__timeTo()::timestamptz
  AND coalesce(a.ended_at, a.last_seen_at) >= $__timeFrom()::timestamptz
ORDER BY 1
LIMIT 500""",
    color="purple",
)

ANNOTATIONS: Final = (GATEWAY_EVENTS, QUARANTINE, ALERTS)

BOARD = Board(
    uid="parkenergy-enterprise",
    key="enterprise",
    rows=(
        Row("meters", (METERS,)),
        Row("load", (ELECTRIC_LOAD, OTHER_LOAD)),
        Row("consumption", (ENERGY_VS_LAST_YEAR, INTENSITY_HISTORY)),
        Row("coverage", (COVERAGE_DAILY, METER_COVERAGE)),
    ),
    time_from="now-30d",
    refresh="5m",
    annotations=ANNOTATIONS,
)
