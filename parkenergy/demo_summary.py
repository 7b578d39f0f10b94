"""What the demo reports at its end, read back from the ``api`` views (docs/api.md).

:func:`load_summary` is the only reader; :class:`DemoSummary` and its parts are plain
values that the demo prints as tables or as JSON. Every figure is the view's own value
(no rounding here), so a test can compare it with the views exactly.

Intensity figures are year to date at the end of one month, in one accounting variant
(DOMAIN.md §1): by default the one the target is assessed in
(:data:`analytics.accounting.ASSESSED_VARIANT`), like the monthly report.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Final

import psycopg

from analytics.accounting import ASSESSED_VARIANT
from analytics.alert_store import UNRESOLVED_STATES
from parkdata.db import fetch_dicts

__all__ = [
    "HEADLINE_VARIANT",
    "OFF_TRACK_LIMIT",
    "AlertCount",
    "DemoSummary",
    "EnterpriseLine",
    "IntensityLine",
    "QuarantineCount",
    "load_summary",
]

HEADLINE_VARIANT: Final = ASSESSED_VARIANT.value
"""The accounting variant of the headline figures: the one the target is assessed in."""

OFF_TRACK_LIMIT: Final = 5
"""Enterprises listed as most off track [-]."""

SEVERITIES: Final = ("critical", "warning", "info")


@dataclass(frozen=True, slots=True)
class IntensityLine:
    """Year-to-date intensity of the city or one park against the 2022 base and the 2027 path.

    Attributes
    ----------
    level : str
        ``city`` or ``park``.
    intensity_tce_per_10k_yuan : float or None
        Energy [tce] per value added at 2022 prices [10⁴ yuan], year to date.
    base_2022_tce_per_10k_yuan, path_tce_per_10k_yuan, target_2027_tce_per_10k_yuan : float or None
        The 2022 base, the even path's value for the period, the 2027 target [tce/10⁴ yuan].
    change_vs_2022 : float or None
        ``intensity / base_2022 - 1`` [-] (negative: better).
    status : str or None
        ``on_track`` (at or below the path), ``at_risk`` (above the path, not above the
        base) or ``off_track`` (above the base).
    coverage : float or None
        Readings received / expected over the period [-]; ``low_coverage`` below 90 %.
    forecast_2027_tce_per_10k_yuan, forecast_status : float, str or None
        The latest forecast of the target year's intensity and its status (None without
        a forecast: it needs 24 usable months).
    """

    level: str
    park_code: str | None
    park_name: str | None
    intensity_tce_per_10k_yuan: float | None
    base_2022_tce_per_10k_yuan: float | None
    change_vs_2022: float | None
    path_tce_per_10k_yuan: float | None
    target_2027_tce_per_10k_yuan: float | None
    status: str | None
    coverage: float | None
    low_coverage: bool | None
    forecast_2027_tce_per_10k_yuan: float | None
    forecast_status: str | None


@dataclass(frozen=True, slots=True)
class EnterpriseLine:
    """Year-to-date intensity of one enterprise (units as in :class:`IntensityLine`)."""

    enterprise_code: str
    enterprise_name: str
    park_code: str
    intensity_tce_per_10k_yuan: float | None
    base_2022_tce_per_10k_yuan: float | None
    change_vs_2022: float | None
    status: str | None
    coverage: float | None


@dataclass(frozen=True, slots=True)
class AlertCount:
    """Unresolved (open or acknowledged) alerts of one severity and kind."""

    severity: str
    kind: str
    alerts: int


@dataclass(frozen=True, slots=True)
class QuarantineCount:
    """Quarantined messages of one reason code."""

    reason: str
    messages: int


@dataclass(frozen=True, slots=True)
class DemoSummary:
    """The demo's summary for year-to-date period ``period`` (``YYYY-MM``) in ``variant``.

    Attributes
    ----------
    areas : tuple of IntensityLine
        The city first, then each park by code.
    off_track : tuple of EnterpriseLine
        The enterprises whose intensity rose most against 2022, worst first.
    low_coverage : tuple of EnterpriseLine
        Enterprises below the coverage threshold in the period, lowest first.
    alerts : tuple of AlertCount
        Unresolved alerts, most severe first, then by count.
    quarantine : tuple of QuarantineCount
        Every quarantined message by reason, most first.
    readings, meters, enterprises : int
        Stored readings, registered meters and enterprises [-].
    """

    period: str
    variant: str
    areas: tuple[IntensityLine, ...]
    off_track: tuple[EnterpriseLine, ...]
    low_coverage: tuple[EnterpriseLine, ...]
    alerts: tuple[AlertCount, ...]
    quarantine: tuple[QuarantineCount, ...]
    readings: int
    meters: int
    enterprises: int

    @property
    def city(self) -> IntensityLine | None:
        return next((a for a in self.areas if a.level == "city"), None)

    @property
    def alerts_by_severity(self) -> dict[str, int]:
        """Unresolved alerts per severity, every severity present (0 when none)."""
        counts = dict.fromkeys(SEVERITIES, 0)
        for a in self.alerts:
            counts[a.severity] = counts.get(a.severity, 0) + a.alerts
        return counts

    def as_dict(self) -> dict[str, Any]:
        """The summary as JSON-ready values."""
        return {
            "period": self.period,
            "variant": self.variant,
            "areas": [asdict(a) for a in self.areas],
            "off_track": [asdict(e) for e in self.off_track],
            "alerts": {
                "by_severity": self.alerts_by_severity,
                "by_kind": [asdict(a) for a in self.alerts],
            },
            "coverage": {
                "city": self.city.coverage if self.city else None,
                "low_coverage": [asdict(e) for e in self.low_coverage],
                "quarantine": {q.reason: q.messages for q in self.quarantine},
                "readings": self.readings,
                "meters": self.meters,
                "enterprises": self.enterprises,
            },
        }


_AREAS = """
SELECT i.level, i.park_code, p.park_name, i.intensity, i.base_2022, i.change_vs_2022, i.path_value,
       i.target_2027, i.status, i.coverage, i.low_coverage,
       f.intensity AS forecast, f.status AS forecast_status
FROM api.intensity i
LEFT JOIN api.park p ON p.park_code = i.park_code
LEFT JOIN api.intensity_forecast f
  ON f.level = i.level AND f.park_code IS NOT DISTINCT FROM i.park_code AND f.enterprise_code IS NULL
 AND f.variant = i.variant AND f.year = (SELECT max(year) FROM api.intensity_forecast)
WHERE i.level IN ('city', 'park') AND i.period_type = 'ytd' AND i.period = %(period)s
  AND i.variant = %(variant)s
ORDER BY i.level = 'park', i.park_code
"""

_ENTERPRISES = """
SELECT i.enterprise_code, e.enterprise_name, i.park_code, i.intensity, i.base_2022, i.change_vs_2022,
       i.status, i.coverage
FROM api.intensity i
JOIN api.enterprise e ON e.enterprise_code = i.enterprise_code
WHERE i.level = 'enterprise' AND i.period_type = 'ytd' AND i.period = %(period)s
  AND i.variant = %(variant)s
"""

_OFF_TRACK = (
    _ENTERPRISES
    + """
  AND i.change_vs_2022 IS NOT NULL
ORDER BY i.change_vs_2022 DESC, i.enterprise_code
LIMIT %(limit)s
"""
)

_LOW_COVERAGE = (
    _ENTERPRISES
    + """
  AND i.low_coverage
ORDER BY i.coverage, i.enterprise_code
"""
)

_ALERTS = """
SELECT severity, kind, count(*) AS alerts
FROM api.alert
WHERE state = ANY(%(states)s)
GROUP BY severity, severity_rank, kind
ORDER BY severity_rank DESC, count(*) DESC, kind
"""

_QUARANTINE = "SELECT reason, count(*) AS messages FROM api.quarantine GROUP BY reason ORDER BY 2 DESC, 1"

_COUNTS = """
SELECT (SELECT count(*) FROM api.reading) AS readings,
       (SELECT count(*) FROM api.meter) AS meters,
       (SELECT count(*) FROM api.enterprise) AS enterprises
"""


def _enterprise(row: dict[str, Any]) -> EnterpriseLine:
    return EnterpriseLine(
        enterprise_code=row["enterprise_code"],
        enterprise_name=row["enterprise_name"],
        park_code=row["park_code"],
        intensity_tce_per_10k_yuan=row["intensity"],
        base_2022_tce_per_10k_yuan=row["base_2022"],
        change_vs_2022=row["change_vs_2022"],
        status=row["status"],
        coverage=row["coverage"],
    )


def load_summary(
    conn: psycopg.Connection[Any],
    period: str,
    *,
    variant: str = HEADLINE_VARIANT,
    off_track: int = OFF_TRACK_LIMIT,
) -> DemoSummary:
    """Read the summary of year-to-date period ``period`` (``YYYY-MM``) from the ``api`` views."""
    params: dict[str, object] = {
        "period": period,
        "variant": variant,
        "limit": off_track,
        "states": list(UNRESOLVED_STATES),
    }
    areas = tuple(
        IntensityLine(
            level=r["level"],
            park_code=r["park_code"],
            park_name=r["park_name"],
            intensity_tce_per_10k_yuan=r["intensity"],
            base_2022_tce_per_10k_yuan=r["base_2022"],
            change_vs_2022=r["change_vs_2022"],
            path_tce_per_10k_yuan=r["path_value"],
            target_2027_tce_per_10k_yuan=r["target_2027"],
            status=r["status"],
            coverage=r["coverage"],
            low_coverage=r["low_coverage"],
            forecast_2027_tce_per_10k_yuan=r["forecast"],
            forecast_status=r["forecast_status"],
        )
        for r in fetch_dicts(conn, _AREAS, params)
    )
    counts = fetch_dicts(conn, _COUNTS, params)[0]
    return DemoSummary(
        period=period,
        variant=variant,
        areas=areas,
        off_track=tuple(_enterprise(r) for r in fetch_dicts(conn, _OFF_TRACK, params)),
        low_coverage=tuple(_enterprise(r) for r in fetch_dicts(conn, _LOW_COVERAGE, params)),
        alerts=tuple(
            AlertCount(r["severity"], r["kind"], int(r["alerts"])) for r in fetch_dicts(conn, _ALERTS, params)
        ),
        quarantine=tuple(
            QuarantineCount(r["reason"], int(r["messages"])) for r in fetch_dicts(conn, _QUARANTINE, params)
        ),
        readings=int(counts["readings"]),
        meters=int(counts["meters"]),
        enterprises=int(counts["enterprises"]),
    )
