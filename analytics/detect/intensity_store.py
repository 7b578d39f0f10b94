"""Enterprise intensities from ``api.intensity`` for the intensity detector (rules: ``intensity.py``).

``detect_intensity(conn, now)`` reads, for the variant the target is assessed in, the rolling
12 months ending in each of the :data:`LOOKBACK_MONTHS` latest months that ended by ``now``
(local calendar, Asia/Shanghai), and returns the ``intensity.peer_outlier`` and
``intensity.above_path`` episodes. Only months that ended at or before ``now`` are read, so a
replay of history sees what a run at that time could have seen (up to late data).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Final

import psycopg

from analytics.accounting import ASSESSED_VARIANT, Variant
from analytics.detect.intensity import (
    ABOVE_PATH,
    LOCAL,
    PEER_OUTLIER,
    EnterpriseIntensity,
    above_path_findings,
    peer_outlier_findings,
)
from analytics.findings import Detection

__all__ = ["DETECTOR", "LOOKBACK_MONTHS", "PERIOD_TYPE", "VARIANT", "detect_intensity", "load_intensities"]

Connection = psycopg.Connection[Any]

DETECTOR: Final = "intensity"
PERIOD_TYPE: Final = "rolling12"
VARIANT: Final = ASSESSED_VARIANT
"""The variant the target is assessed in."""
LOOKBACK_MONTHS: Final = 36
"""Months of figures read: an episode up to three years long keeps its start."""
CLEAR_AFTER_S: Final = 0.0
"""Monthly figures do not flicker: an episode not found again was revised away; the next run clears it."""

_QUERY: Final = """
SELECT i.enterprise_code, i.industry_code, i.period_end, i.period_type, i.variant, i.intensity,
       i.base_2022, i.path_value, i.status, i.coverage, i.low_coverage, i.energy_tce,
       i.value_added_10k_yuan, e.enterprise_id, e.park_id
FROM api.intensity i
JOIN registry.enterprise e ON e.enterprise_code = i.enterprise_code
WHERE i.level = 'enterprise' AND i.period_type = %(period_type)s AND i.variant = %(variant)s
  AND i.period_end BETWEEN %(first)s AND %(last)s
ORDER BY i.enterprise_code, i.period_end
"""


def last_complete_month(now: datetime) -> date:
    """First day of the latest local month that ended at or before ``now``."""
    local = now.astimezone(LOCAL)
    year, month = (local.year - 1, 12) if local.month == 1 else (local.year, local.month - 1)
    return date(year, month, 1)


def _months_back(month: date, count: int) -> date:
    index = month.year * 12 + month.month - 1 - count
    return date(index // 12, index % 12 + 1, 1)


def load_intensities(
    conn: Connection,
    now: datetime,
    months: int = LOOKBACK_MONTHS,
    variant: Variant = VARIANT,
    period_type: str = PERIOD_TYPE,
) -> list[EnterpriseIntensity]:
    """Enterprise rows of ``api.intensity`` for the ``months`` latest months ended by ``now``."""
    last = last_complete_month(now)
    params = {
        "period_type": period_type,
        "variant": str(variant),
        "first": _months_back(last, months - 1),
        "last": last,
    }
    rows = []
    for (
        code,
        industry,
        period_end,
        ptype,
        var,
        intensity,
        base,
        path,
        status,
        coverage,
        low,
        energy,
        value_added,
        enterprise_id,
        park_id,
    ) in conn.execute(_QUERY, params):
        rows.append(
            EnterpriseIntensity(
                enterprise_code=str(code),
                industry_code=str(industry),
                month=period_end,
                period_type=str(ptype),
                variant=str(var),
                intensity=None if intensity is None else float(intensity),
                base_2022=None if base is None else float(base),
                path_value=None if path is None else float(path),
                status=None if status is None else str(status),
                coverage=float(coverage or 0.0),
                low_coverage=bool(low) if low is not None else True,
                energy_tce=float(energy or 0.0),
                value_added_10k_yuan=float(value_added or 0.0),
                enterprise_id=int(enterprise_id),
                park_id=int(park_id),
            )
        )
    return rows


def detect_intensity(conn: Connection, now: datetime) -> Detection:
    """Intensity far from industry peers, and above the path to the 2027 target, as of ``now``.

    Parameters
    ----------
    conn : a connection that may read ``api.intensity`` and ``registry.enterprise``.
    now : the run's time (timezone-aware); months that ended after it are not read.

    Returns
    -------
    Detection
        Kinds ``intensity.peer_outlier`` and ``intensity.above_path`` over every enterprise.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    rows = load_intensities(conn, now)
    findings = [*peer_outlier_findings(rows), *above_path_findings(rows)]
    return Detection(
        detector=DETECTOR,
        now=now,
        kinds=(PEER_OUTLIER, ABOVE_PATH),
        findings=tuple(findings),
        clear_after_s={PEER_OUTLIER: CLEAR_AFTER_S, ABOVE_PATH: CLEAR_AFTER_S},
    )
