"""Reading the monthly report's figures from the ``api`` views (docs/api.md) into typed values.

The only module of the report that talks to PostgreSQL. Intensity rows are read with
:func:`analytics.intensity_store.query_intensity`, the function behind ``parkenergy
intensity``, so the report's headline figures are exactly those of ``parkenergy
intensity --json`` for the same level, period and variant.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import psycopg

from analytics.intensity_store import PeriodSpec, query_intensity, why_empty
from parkdata.db import fetch_dicts
from reports.errors import NoDataError, UnknownParkError
from reports.monthly import (
    PERIOD_TYPES,
    AlertInMonth,
    CarrierEnergy,
    EnergyTotals,
    EnterpriseChange,
    EnterpriseQuality,
    ForecastYear,
    IndustryEnergy,
    IntensityFigure,
    IntensitySeries,
    Month,
    MonthlyReport,
    QuarantineCount,
    Ranking,
    Scope,
    ScopeSection,
    SeriesPoint,
    optional_float,
    rank_by_change,
)

__all__ = ["load_monthly_report", "read_alerts", "read_quarantine", "read_scope"]

Connection = psycopg.Connection[Any]

_PARKS = "SELECT park_code, park_name FROM api.park ORDER BY park_code"

_MONTHS = (
    "SELECT min(period), max(period) FROM api.intensity WHERE level = %(level)s AND period_type = 'month'"
    " AND (%(park)s::text IS NULL OR park_code = %(park)s::text)"
)

_ENERGY = (
    "SELECT level, park_code, industry_code, enterprise_code, energy_tce_gross, energy_tce_excl_feedstock,"
    " energy_tce_excl_feedstock_nonfossil, feedstock_tce, nonfossil_tce, co2_t, coverage, low_coverage,"
    " factors_complete, co2_complete, co2_provisional, enterprises"
    " FROM api.energy_tce_month"
    " WHERE level IN ('city', 'park', 'park_industry', 'enterprise') AND bucket = %(bucket)s"
    " AND (%(park)s::text IS NULL OR park_code = %(park)s::text)"
)

_SERIES = (
    "SELECT level, park_code, period_type, period_end, intensity, path_value, base_2022, target_2027,"
    " coverage, low_coverage FROM api.intensity"
    " WHERE level IN ('city', 'park') AND variant = %(variant)s AND period_type IN ('ytd', 'rolling12')"
    " AND period_end <= %(month)s"
    " AND (%(park)s::text IS NULL OR park_code = %(park)s::text)"
    " ORDER BY level, park_code, period_type, period_end"
)

_FORECAST = (
    "SELECT level, park_code, year, intensity, intensity_lower, intensity_upper, path_value, status"
    " FROM api.intensity_forecast"
    " WHERE level IN ('city', 'park') AND variant = %(variant)s"
    " AND (%(park)s::text IS NULL OR park_code = %(park)s::text)"
    " ORDER BY level, park_code, year"
)

_RANKING = (
    "SELECT i.park_code, i.enterprise_code, e.enterprise_name, i.industry_code, i.energy_tce,"
    " i.value_added_10k_yuan, i.intensity, i.base_2022, i.change_vs_2022, i.status,"
    " c.contribution_to_change, i.coverage, i.low_coverage"
    " FROM api.intensity i"
    " JOIN api.enterprise e ON e.enterprise_code = i.enterprise_code"
    " LEFT JOIN api.intensity_contribution c ON c.enterprise_code = i.enterprise_code"
    "  AND c.period_type = i.period_type AND c.period = i.period AND c.variant = i.variant"
    " WHERE i.level = 'enterprise' AND i.period_type = 'ytd' AND i.period = %(period)s"
    " AND i.variant = %(variant)s AND (%(park)s::text IS NULL OR i.park_code = %(park)s::text)"
)

_CARRIERS = (
    "SELECT park_code, industry_code, enterprise_code, carrier, carrier_name_zh, carrier_name_en,"
    " energy_tce_gross, feedstock_tce, co2_t, coverage, factors_complete"
    " FROM api.energy_carrier_month"
    " WHERE bucket = %(bucket)s AND (%(park)s::text IS NULL OR park_code = %(park)s::text)"
    " ORDER BY park_code, enterprise_code, carrier"
)

# Alerts that matter for the month, from their history up to the month's end (docs/alerts.md):
# opened (or reopened) in the month, resolved in the month, or unresolved at its end (the last
# opening or resolving event before the end is not a resolution). The severity is the highest
# the alert had reached by the end; summary and evidence are the alert's latest.
_ALERTS = """
WITH ev AS (
    SELECT event_id, alert_id, event, at,
           CASE severity WHEN 'critical' THEN 3 WHEN 'warning' THEN 2 ELSE 1 END AS rank
    FROM api.alert_event
    WHERE at < %(end)s AND (%(park)s::text IS NULL OR park_code = %(park)s::text)
), last AS (
    SELECT DISTINCT ON (alert_id) alert_id, event
    FROM ev
    WHERE event IN ('opened', 'reopened', 'resolved')
    ORDER BY alert_id, at DESC, event_id DESC
), flags AS (
    SELECT ev.alert_id,
           bool_or(ev.event IN ('opened', 'reopened') AND ev.at >= %(start)s) AS opened_in_month,
           bool_or(ev.event = 'resolved' AND ev.at >= %(start)s) AS resolved_in_month,
           max(ev.rank) AS rank
    FROM ev
    GROUP BY ev.alert_id
)
SELECT a.alert_id, a.kind,
       CASE f.rank WHEN 3 THEN 'critical' WHEN 2 THEN 'warning' ELSE 'info' END AS severity,
       a.state, a.subject, a.park_code, a.enterprise_code, a.enterprise_name, a.meter_code,
       a.started_at, a.ended_at, a.opened_at, a.resolved_at, a.summary_zh, a.summary_en,
       a.observed, a.expected_low, a.expected_high, a.score, a.unit,
       f.opened_in_month, f.resolved_in_month, l.event <> 'resolved' AS open_at_end
FROM flags f
JOIN last l ON l.alert_id = f.alert_id
JOIN api.alert a ON a.alert_id = f.alert_id
WHERE f.opened_in_month OR f.resolved_in_month OR l.event <> 'resolved'
ORDER BY f.rank DESC, a.score DESC NULLS LAST, a.alert_id
"""

# Quarantined messages by receipt time. A park's are those whose topic names one of its
# enterprises (parkenergy/v1/{enterprise}/…, docs/collector.md); messages whose topic
# names no registered enterprise count only for the city.
_QUARANTINE = (
    "SELECT q.reason, count(*) AS messages, count(*) FILTER (WHERE q.replay_result = 'stored') AS replayed"
    " FROM api.quarantine q"
    " WHERE q.received_at >= %(start)s AND q.received_at < %(end)s"
    " AND (%(park)s::text IS NULL OR EXISTS (SELECT 1 FROM api.enterprise e"
    "  WHERE e.park_code = %(park)s::text"
    "  AND q.topic LIKE '%%/' || e.enterprise_code || '/%%'))"
    " GROUP BY q.reason ORDER BY messages DESC, q.reason"
)

_ENTERPRISES = (
    "SELECT e.park_code, e.enterprise_code, e.enterprise_name, e.industry_code, v.value_added_10k_yuan,"
    " v.value_added_10k_yuan_2022 IS NOT NULL AS comparable"
    " FROM api.enterprise e"
    " LEFT JOIN api.value_added v ON v.enterprise_code = e.enterprise_code AND v.period = %(month)s"
    " WHERE (%(park)s::text IS NULL OR e.park_code = %(park)s::text)"
    " ORDER BY e.park_code, e.enterprise_code"
)


def read_scope(conn: Connection, park_code: str | None) -> tuple[Scope, tuple[Scope, ...]]:
    """The scope asked for and the registered parks in it.

    Raises
    ------
    UnknownParkError
        ``park_code`` is not registered.
    """
    parks = tuple(Scope(str(code), str(name)) for code, name in conn.execute(_PARKS).fetchall())
    if park_code is None:
        return Scope(), parks
    for park in parks:
        if park.park_code == park_code:
            return park, (park,)
    raise UnknownParkError(park_code, tuple(str(p.park_code) for p in parks))


def _figures(
    conn: Connection, level: str, month: Month, park_code: str | None
) -> dict[str | None, list[IntensityFigure]]:
    """``api.intensity`` rows of the month, ytd and rolling 12 months to it, by park (None: city)."""
    out: dict[str | None, list[IntensityFigure]] = {}
    for period_type in PERIOD_TYPES:
        for row in query_intensity(conn, level, PeriodSpec(period_type, month.label), None, park_code):
            key = None if level == "city" else str(row["park_code"])
            out.setdefault(key, []).append(IntensityFigure.from_row(row))
    return out


def _energy_totals(row: dict[str, Any]) -> EnergyTotals:
    return EnergyTotals(
        energy_tce_gross=float(row["energy_tce_gross"] or 0.0),
        energy_tce_excl_feedstock=float(row["energy_tce_excl_feedstock"] or 0.0),
        energy_tce_excl_feedstock_nonfossil=float(row["energy_tce_excl_feedstock_nonfossil"] or 0.0),
        feedstock_tce=float(row["feedstock_tce"] or 0.0),
        nonfossil_tce=float(row["nonfossil_tce"] or 0.0),
        co2_t=optional_float(row["co2_t"]),
        coverage=optional_float(row["coverage"]),
        low_coverage=bool(row["low_coverage"]),
        factors_complete=bool(row["factors_complete"]),
        co2_complete=bool(row["co2_complete"]),
        co2_provisional=bool(row["co2_provisional"]),
        enterprises=int(row["enterprises"] or 0),
    )


def _series(
    conn: Connection, month: Month, park_code: str | None, variant: str
) -> dict[str | None, IntensitySeries]:
    params: dict[str, object] = {"variant": variant, "month": month.first_day, "park": park_code}
    points: dict[str | None, dict[str, list[SeriesPoint]]] = {}
    bases: dict[str | None, tuple[float | None, float | None]] = {}
    for r in fetch_dicts(conn, _SERIES, params):
        key = None if r["level"] == "city" else str(r["park_code"])
        points.setdefault(key, {"ytd": [], "rolling12": []})[r["period_type"]].append(
            SeriesPoint(
                r["period_end"],
                optional_float(r["intensity"]),
                optional_float(r["path_value"]),
                optional_float(r["coverage"]),
                bool(r["low_coverage"]),
            )
        )
        if r["base_2022"] is not None:
            bases[key] = (float(r["base_2022"]), optional_float(r["target_2027"]))
    forecasts: dict[str | None, list[ForecastYear]] = {}
    for r in fetch_dicts(conn, _FORECAST, params):
        key = None if r["level"] == "city" else str(r["park_code"])
        forecasts.setdefault(key, []).append(
            ForecastYear(
                int(r["year"]),
                optional_float(r["intensity"]),
                optional_float(r["intensity_lower"]),
                optional_float(r["intensity_upper"]),
                optional_float(r["path_value"]),
                r["status"],
            )
        )
    keys = set(points) | set(forecasts)
    return {
        key: IntensitySeries(
            variant=variant,
            ytd=tuple(points.get(key, {}).get("ytd", [])),
            rolling12=tuple(points.get(key, {}).get("rolling12", [])),
            forecast=tuple(forecasts.get(key, [])),
            base_2022=bases.get(key, (None, None))[0],
            target_2027=bases.get(key, (None, None))[1],
        )
        for key in keys
    }


def _rankings(
    conn: Connection, month: Month, park_code: str | None, variant: str
) -> dict[str, list[EnterpriseChange]]:
    params: dict[str, object] = {"period": month.label, "variant": variant, "park": park_code}
    out: dict[str, list[EnterpriseChange]] = {}
    for r in fetch_dicts(conn, _RANKING, params):
        out.setdefault(str(r["park_code"]), []).append(
            EnterpriseChange(
                park_code=str(r["park_code"]),
                enterprise_code=str(r["enterprise_code"]),
                enterprise_name=str(r["enterprise_name"]),
                industry_code=r["industry_code"],
                energy_tce=optional_float(r["energy_tce"]),
                value_added_10k_yuan=optional_float(r["value_added_10k_yuan"]),
                intensity=optional_float(r["intensity"]),
                base_2022=optional_float(r["base_2022"]),
                change_vs_2022=optional_float(r["change_vs_2022"]),
                status=r["status"],
                contribution_to_change=optional_float(r["contribution_to_change"]),
                coverage=optional_float(r["coverage"]),
                low_coverage=bool(r["low_coverage"]),
            )
        )
    return out


def _why_no_data(conn: Connection, scope: Scope) -> str:
    """The months with figures for ``scope``, or why there are none."""
    first, last = conn.execute(_MONTHS, {"level": scope.level, "park": scope.park_code}).fetchone() or (
        None,
        None,
    )
    if first is not None:
        who = "the city" if scope.park_code is None else f"park {scope.park_code}"
        return f"{who} has data from {first} to {last}"
    return why_empty(conn, scope.level, PeriodSpec("month", None), scope.park_code)


def read_alerts(conn: Connection, month: Month, park_code: str | None = None) -> tuple[AlertInMonth, ...]:
    """Alerts opened or resolved in ``month`` or unresolved at its end (of one park, or all)."""
    params: dict[str, object] = {"start": month.start_at, "end": month.end_at, "park": park_code}
    return tuple(
        AlertInMonth(
            alert_id=int(r["alert_id"]),
            kind=str(r["kind"]),
            severity=str(r["severity"]),
            state=str(r["state"]),
            subject=str(r["subject"]),
            park_code=r["park_code"],
            enterprise_code=r["enterprise_code"],
            enterprise_name=r["enterprise_name"],
            meter_code=r["meter_code"],
            started_at=r["started_at"],
            ended_at=r["ended_at"],
            opened_at=r["opened_at"],
            resolved_at=r["resolved_at"],
            summary_zh=str(r["summary_zh"] or ""),
            summary_en=str(r["summary_en"] or ""),
            observed=optional_float(r["observed"]),
            expected_low=optional_float(r["expected_low"]),
            expected_high=optional_float(r["expected_high"]),
            score=optional_float(r["score"]),
            unit=r["unit"],
            opened_in_month=bool(r["opened_in_month"]),
            resolved_in_month=bool(r["resolved_in_month"]),
            open_at_end=bool(r["open_at_end"]),
        )
        for r in fetch_dicts(conn, _ALERTS, params)
    )


def read_quarantine(
    conn: Connection, start: datetime, end: datetime, park_code: str | None = None
) -> tuple[QuarantineCount, ...]:
    """Messages quarantined in ``[start, end)`` (receipt time) by reason, most frequent first."""
    params: dict[str, object] = {"start": start, "end": end, "park": park_code}
    return tuple(
        QuarantineCount(str(r["reason"]), int(r["messages"]), int(r["replayed"]))
        for r in fetch_dicts(conn, _QUARANTINE, params)
    )


def _quality(
    conn: Connection,
    month: Month,
    park_code: str | None,
    energy: Sequence[dict[str, Any]],
    alerts: Sequence[AlertInMonth],
) -> tuple[EnterpriseQuality, ...]:
    coverage = {r["enterprise_code"]: r for r in energy if r["level"] == "enterprise"}
    quality_alerts: dict[str, int] = {}
    for a in alerts:
        if a.is_quality and a.enterprise_code is not None:
            quality_alerts[a.enterprise_code] = quality_alerts.get(a.enterprise_code, 0) + 1
    out = []
    for r in fetch_dicts(conn, _ENTERPRISES, {"month": month.first_day, "park": park_code}):
        code = str(r["enterprise_code"])
        e = coverage.get(code)
        out.append(
            EnterpriseQuality(
                park_code=str(r["park_code"]),
                enterprise_code=code,
                enterprise_name=str(r["enterprise_name"]),
                industry_code=r["industry_code"],
                coverage=None if e is None else optional_float(e["coverage"]),
                low_coverage=bool(e["low_coverage"]) if e is not None else False,
                value_added_10k_yuan=optional_float(r["value_added_10k_yuan"]),
                value_added_comparable=bool(r["comparable"]),
                quality_alerts=quality_alerts.get(code, 0),
            )
        )
    return tuple(out)


def load_monthly_report(
    conn: Connection, month: Month, park_code: str | None, variant: str, now: datetime
) -> MonthlyReport:
    """Read everything the report of ``month`` for the city (``park_code`` None) or one park shows.

    Raises
    ------
    UnknownParkError
        ``park_code`` is not registered.
    NoDataError
        ``api.intensity`` has no figure of the scope for the month (the reason names the
        months that have data, or says that there is no energy yet).
    """
    scope, parks = read_scope(conn, park_code)
    overview_figures = _figures(conn, scope.level, month, park_code)
    if not overview_figures:
        raise NoDataError(month.label, _why_no_data(conn, scope))
    park_figures = _figures(conn, "park", month, park_code) if park_code is None else overview_figures
    energy = fetch_dicts(conn, _ENERGY, {"bucket": month.start_at, "park": park_code})
    totals: dict[str | None, EnergyTotals] = {
        (None if r["level"] == "city" else r["park_code"]): _energy_totals(r)
        for r in energy
        if r["level"] in ("city", "park")
    }
    series = _series(conn, month, park_code, variant)
    rankings = _rankings(conn, month, park_code, variant)
    empty = IntensitySeries(variant, (), (), (), None, None)

    def section(s: Scope, figures: list[IntensityFigure], with_ranking: bool) -> ScopeSection:
        ranking = None
        if with_ranking and s.park_code is not None:
            park_ytd = next((f for f in figures if f.period_type == "ytd" and f.variant == variant), None)
            ranking = Ranking(
                s.park_code,
                None if park_ytd is None else park_ytd.change_vs_2022,
                rank_by_change(rankings.get(s.park_code, [])),
            )
        return ScopeSection(
            scope=s,
            figures=tuple(figures),
            energy=totals.get(s.park_code),
            series=series.get(s.park_code, empty),
            ranking=ranking,
        )

    overview = section(scope, overview_figures[park_code], with_ranking=True)
    park_sections = (
        tuple(section(p, park_figures.get(p.park_code, []), with_ranking=True) for p in parks)
        if park_code is None
        else ()
    )
    alerts = read_alerts(conn, month, park_code)
    return MonthlyReport(
        month=month,
        scope=scope,
        variant=variant,
        generated_at=now,
        overview=overview,
        parks=park_sections,
        carriers=tuple(
            CarrierEnergy(
                park_code=str(r["park_code"]),
                industry_code=r["industry_code"],
                enterprise_code=str(r["enterprise_code"]),
                carrier=str(r["carrier"]),
                name_zh=str(r["carrier_name_zh"]),
                name_en=str(r["carrier_name_en"]),
                energy_tce_gross=optional_float(r["energy_tce_gross"]),
                feedstock_tce=float(r["feedstock_tce"] or 0.0),
                co2_t=optional_float(r["co2_t"]),
                coverage=optional_float(r["coverage"]),
                factors_complete=bool(r["factors_complete"]),
            )
            for r in fetch_dicts(conn, _CARRIERS, {"bucket": month.start_at, "park": park_code})
        ),
        industries=tuple(
            IndustryEnergy(
                park_code=str(r["park_code"]),
                industry_code=str(r["industry_code"]),
                energy_tce_gross=float(r["energy_tce_gross"] or 0.0),
                energy_tce_excl_feedstock=float(r["energy_tce_excl_feedstock"] or 0.0),
                energy_tce_excl_feedstock_nonfossil=float(r["energy_tce_excl_feedstock_nonfossil"] or 0.0),
                co2_t=optional_float(r["co2_t"]),
                coverage=optional_float(r["coverage"]),
                low_coverage=bool(r["low_coverage"]),
                co2_complete=bool(r["co2_complete"]),
                enterprises=int(r["enterprises"] or 0),
            )
            for r in sorted(energy, key=lambda r: (r["park_code"] or "", -(r["energy_tce_gross"] or 0.0)))
            if r["level"] == "park_industry"
        ),
        alerts=alerts,
        quality=_quality(conn, month, park_code, energy, alerts),
        quarantine=read_quarantine(conn, month.start_at, month.end_at, park_code),
    )
