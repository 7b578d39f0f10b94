"""Inputs of the data-quality rules (``quality.py``): day coverage, daily and monthly energy, value added.

``detect_quality(conn, now)`` reads, per enterprise:

- the readings and expected readings of its energy meters per local day, from
  ``analytics.energy_day`` (the energy job's day rollup, with the coverage-0 rows of silent
  meters), for the :data:`COMPLETENESS_DAYS` latest days that ended 2 h before ``now``;
- its gross energy per month from ``api.energy_tce_month`` and per day from
  ``api.energy_tce_day`` (summed per month), for the :data:`DAILY_VS_MONTHLY_MONTHS` latest
  months that ended by ``now``;
- the months in which it has energy rows (``analytics.energy_month``) and those with a
  value-added report (``economics.value_added``), over the :data:`VALUE_ADDED_MONTHS` latest
  months whose report is due by ``now``.

Only periods that ended by ``now`` are read (a replay of history sees what a run then could
have seen, up to late data); each query is bounded by its lookback.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta
from typing import Any, Final

import psycopg

from analytics.detect.intensity import LOCAL, month_end, month_start
from analytics.detect.quality import (
    COMPLETENESS,
    COMPLETENESS_MIN,
    DAILY_VS_MONTHLY,
    VALUE_ADDED_MISSING,
    DayCompleteness,
    EnterpriseMonths,
    MonthTotals,
    assessed_days,
    completeness_findings,
    daily_vs_monthly_findings,
    day_start,
    value_added_due,
    value_added_missing_findings,
)
from analytics.findings import Detection

__all__ = [
    "COMPLETENESS_DAYS",
    "DAILY_VS_MONTHLY_MONTHS",
    "DETECTOR",
    "VALUE_ADDED_MONTHS",
    "detect_quality",
    "load_day_completeness",
    "load_enterprise_months",
    "load_month_totals",
]

Connection = psycopg.Connection[Any]

DETECTOR: Final = "quality"
COMPLETENESS_DAYS: Final = 7
"""Days assessed per run: a week of history, so missed runs leave no day unassessed."""
DAILY_VS_MONTHLY_MONTHS: Final = 3
"""Months compared per run (late data and recomputes reach back a few months)."""
VALUE_ADDED_MONTHS: Final = 12
"""Due months checked for a value-added report."""

_DAYS: Final = """
SELECT e.enterprise_code, e.enterprise_id, e.park_id, (d.bucket AT TIME ZONE 'Asia/Shanghai')::date AS day,
       sum(least(d.readings, d.expected_readings))::bigint AS readings,
       sum(d.expected_readings)::bigint AS expected_readings,
       count(*)::integer AS meters,
       coalesce(array_agg(m.meter_code ORDER BY d.coverage, m.meter_code)
                FILTER (WHERE d.coverage < %(min)s), '{}') AS meters_short
FROM analytics.energy_day d
JOIN registry.meter m ON m.meter_id = d.meter_id
JOIN registry.enterprise e ON e.enterprise_id = m.enterprise_id
WHERE d.bucket >= %(from)s AND d.bucket < %(to)s
GROUP BY e.enterprise_code, e.enterprise_id, e.park_id, day
ORDER BY e.enterprise_code, day
"""

_MONTHS: Final = """
WITH mo AS (
    SELECT enterprise_code, bucket, energy_tce_gross
    FROM api.energy_tce_month
    WHERE level = 'enterprise' AND bucket >= %(from)s AND bucket < %(to)s
), dy AS (
    SELECT enterprise_code, date_trunc('month', bucket, 'Asia/Shanghai') AS bucket,
           sum(energy_tce_gross) AS daily_tce, count(*)::integer AS days
    FROM api.energy_tce_day
    WHERE level = 'enterprise' AND bucket >= %(from)s AND bucket < %(to)s
    GROUP BY enterprise_code, date_trunc('month', bucket, 'Asia/Shanghai')
), both_ AS (
    SELECT coalesce(mo.enterprise_code, dy.enterprise_code) AS enterprise_code,
           coalesce(mo.bucket, dy.bucket) AS bucket, mo.energy_tce_gross AS monthly_tce, dy.daily_tce,
           coalesce(dy.days, 0) AS days
    FROM mo
    FULL JOIN dy ON dy.enterprise_code = mo.enterprise_code AND dy.bucket = mo.bucket
)
SELECT b.enterprise_code, (b.bucket AT TIME ZONE 'Asia/Shanghai')::date AS month, b.monthly_tce, b.daily_tce,
       b.days, e.enterprise_id, e.park_id
FROM both_ b
JOIN registry.enterprise e ON e.enterprise_code = b.enterprise_code
ORDER BY b.enterprise_code, month
"""

_ENERGY_MONTHS: Final = """
SELECT DISTINCT m.enterprise_id, (em.bucket AT TIME ZONE 'Asia/Shanghai')::date AS month
FROM analytics.energy_month em
JOIN registry.meter m ON m.meter_id = em.meter_id
WHERE em.bucket >= %(from)s AND em.bucket < %(to)s
"""

_VALUE_ADDED_MONTHS: Final = """
SELECT enterprise_id, period FROM economics.value_added WHERE period >= %(from)s AND period < %(to)s
"""

_ENTERPRISES: Final = (
    "SELECT enterprise_id, enterprise_code, park_id FROM registry.enterprise ORDER BY enterprise_code"
)


def load_day_completeness(conn: Connection, days: list[date]) -> list[DayCompleteness]:
    """Readings and expected readings per enterprise and local day, over ``days`` (consecutive)."""
    params = {
        "min": COMPLETENESS_MIN,
        "from": day_start(days[0]),
        "to": day_start(days[-1] + timedelta(days=1)),
    }
    return [
        DayCompleteness(
            enterprise_code=str(code),
            day=day,
            readings=int(readings or 0),
            expected_readings=int(expected or 0),
            meters=int(meters),
            meters_short=tuple(str(c) for c in short),
            enterprise_id=int(enterprise_id),
            park_id=int(park_id),
        )
        for code, enterprise_id, park_id, day, readings, expected, meters, short in conn.execute(
            _DAYS, params
        )
    ]


def _ended_months(now: datetime, count: int) -> list[date]:
    """The ``count`` latest local months that ended by ``now``, oldest first."""
    local = now.astimezone(LOCAL)
    index = local.year * 12 + local.month - 1
    return [date((index - k) // 12, (index - k) % 12 + 1, 1) for k in range(count, 0, -1)]


def load_month_totals(conn: Connection, months: list[date]) -> list[MonthTotals]:
    """Monthly and summed daily gross energy [tce] per enterprise over ``months`` (consecutive)."""
    params = {"from": month_start(months[0]), "to": month_end(months[-1])}
    return [
        MonthTotals(
            enterprise_code=str(code),
            month=month,
            monthly_tce=None if monthly is None else float(monthly),
            daily_sum_tce=None if daily is None else float(daily),
            days=int(days),
            enterprise_id=int(enterprise_id),
            park_id=int(park_id),
        )
        for code, month, monthly, daily, days, enterprise_id, park_id in conn.execute(_MONTHS, params)
    ]


def _due_months(now: datetime, count: int) -> list[date]:
    """The ``count`` latest months whose value added is due by ``now``, oldest first."""
    months = _ended_months(now, count + 2)
    return [m for m in months if value_added_due(m) <= now][-count:]


def load_enterprise_months(conn: Connection, months: list[date]) -> list[EnterpriseMonths]:
    """Per enterprise, which of ``months`` have energy rows and which a value-added report."""
    if not months:
        return []
    energy: dict[int, set[date]] = defaultdict(set)
    reported: dict[int, set[date]] = defaultdict(set)
    params = {"from": month_start(months[0]), "to": month_end(months[-1])}
    for enterprise_id, month in conn.execute(_ENERGY_MONTHS, params):
        energy[int(enterprise_id)].add(month)
    for enterprise_id, period in conn.execute(
        _VALUE_ADDED_MONTHS, {"from": months[0], "to": month_end(months[-1]).date()}
    ):
        reported[int(enterprise_id)].add(period)
    return [
        EnterpriseMonths(
            enterprise_code=str(code),
            energy_months=frozenset(energy[int(enterprise_id)]),
            value_added_months=frozenset(reported[int(enterprise_id)]),
            enterprise_id=int(enterprise_id),
            park_id=int(park_id),
        )
        for enterprise_id, code, park_id in conn.execute(_ENTERPRISES)
        if energy.get(int(enterprise_id))
    ]


def detect_quality(conn: Connection, now: datetime) -> Detection:
    """Completeness, daily vs monthly energy and missing value added, as of ``now``.

    Parameters
    ----------
    conn : a connection of the analytics login (reads the rollups, api views and economics).
    now : the run's time (timezone-aware); only periods that ended by then are read.

    Returns
    -------
    Detection
        Kinds ``quality.completeness``, ``quality.daily_vs_monthly`` and
        ``quality.value_added_missing`` over every enterprise.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    days = assessed_days(now, COMPLETENESS_DAYS)
    findings = [
        *completeness_findings(load_day_completeness(conn, days), latest=days[-1]),
        *daily_vs_monthly_findings(load_month_totals(conn, _ended_months(now, DAILY_VS_MONTHLY_MONTHS))),
        *value_added_missing_findings(
            load_enterprise_months(conn, _due_months(now, VALUE_ADDED_MONTHS)), now
        ),
    ]
    return Detection(
        detector=DETECTOR,
        now=now,
        kinds=(COMPLETENESS, DAILY_VS_MONTHLY, VALUE_ADDED_MISSING),
        findings=tuple(findings),
        # Figures of closed periods: a finding not found again was repaired (late data,
        # a recompute, an import); the next run clears it.
        clear_after_s={COMPLETENESS: 0.0, DAILY_VS_MONTHLY: 0.0, VALUE_ADDED_MISSING: 0.0},
    )
