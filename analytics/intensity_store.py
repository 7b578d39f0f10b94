"""Reading ``api.intensity`` for one level, period and variant (``parkenergy intensity``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import psycopg

from analytics.accounting import Variant

__all__ = [
    "LEVELS",
    "PeriodSpec",
    "PeriodSpecError",
    "UnknownParkError",
    "check_park",
    "parse_period",
    "query_intensity",
    "why_empty",
]

Connection = psycopg.Connection[Any]

LEVELS = ("enterprise", "industry", "park", "city")

_QUERY = (
    "SELECT level, park_code, industry_code, enterprise_code, period_type, period, variant, energy_tce,"
    " value_added_10k_yuan, intensity, base_2022, change_vs_2022, target_2027, path_value, status,"
    " coverage, low_coverage, value_added_coverage, enterprises, months FROM api.intensity"
    " WHERE level = %s AND period_type = %s AND (%s::text IS NULL OR period = %s::text)"
    " AND (%s::text IS NULL OR park_code = %s::text) AND (%s::text IS NULL OR variant = %s::text)"
    " ORDER BY period DESC, park_code NULLS FIRST, industry_code NULLS FIRST, enterprise_code NULLS FIRST,"
    " array_position(ARRAY['gross', 'excl_feedstock', 'excl_feedstock_nonfossil'], variant)"
)
_YEAR = re.compile(r"[0-9]{4}")
_MONTH = re.compile(r"[0-9]{4}-(0[1-9]|1[0-2])")


class PeriodSpecError(ValueError):
    """A --period value that is not a year, a month, ytd or rolling12."""


class UnknownParkError(LookupError):
    """A park code that is not in the registry."""


@dataclass(frozen=True, slots=True)
class PeriodSpec:
    """A period asked for: its type and label (None: the latest with data)."""

    period_type: str
    period: str | None


def parse_period(text: str) -> PeriodSpec:
    """Parse ``2025`` (year), ``2025-06`` (month), ``ytd[:2025-06]`` or ``rolling12[:2025-06]``."""
    value = text.strip().lower()
    if _YEAR.fullmatch(value):
        return PeriodSpec("year", value)
    if _MONTH.fullmatch(value):
        return PeriodSpec("month", value)
    kind, _, month = value.partition(":")
    if kind in ("ytd", "rolling12"):
        if month and not _MONTH.fullmatch(month):
            raise PeriodSpecError(f"{text!r}: after {kind}: give a month YYYY-MM")
        return PeriodSpec(kind, month or None)
    raise PeriodSpecError(f"{text!r} is not YYYY, YYYY-MM, ytd[:YYYY-MM] or rolling12[:YYYY-MM]")


def _view_level(level: str, park_code: str | None) -> str:
    """The view's level: industries within one park are ``park_industry`` rows."""
    return "park_industry" if level == "industry" and park_code else level


def query_intensity(
    conn: Connection,
    level: str,
    period: PeriodSpec,
    variant: Variant | None = None,
    park_code: str | None = None,
) -> list[dict[str, object]]:
    """Rows of ``api.intensity`` (docs/api.md) for one level and period, all variants unless one is given.

    ``level`` ``industry`` with a park gives the industries within that park
    (``park_industry`` rows); without, the industries across the city. A ytd or
    rolling12 period without a month is the latest month with data (of the rows
    selected).
    """
    if level not in LEVELS:
        raise ValueError(f"level must be one of {', '.join(LEVELS)}")
    view_level = _view_level(level, park_code)
    if level == "city":
        park_code = None
    cur = conn.execute(
        _QUERY,
        (
            view_level,
            period.period_type,
            period.period,
            period.period,
            park_code,
            park_code,
            variant,
            variant,
        ),
    )
    names = [d.name for d in cur.description or []]
    rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    # Without a label: the latest period with data (rows come latest first), in one query.
    return [r for r in rows if r["period"] == rows[0]["period"]] if rows else []


def check_park(conn: Connection, park_code: str) -> None:
    """Raise :class:`UnknownParkError` (naming the registered parks) unless ``park_code`` exists."""
    codes = [str(c) for (c,) in conn.execute("SELECT park_code FROM api.park ORDER BY park_code")]
    if park_code not in codes:
        known = ", ".join(codes) if codes else "none registered yet"
        raise UnknownParkError(f"unknown park {park_code!r} (parks: {known})")


def why_empty(conn: Connection, level: str, period: PeriodSpec, park_code: str | None = None) -> str:
    """Why :func:`query_intensity` found no row: which periods have data, or that no energy exists.

    ``api.intensity`` has a row for every group and period with interval energy (the
    ``energy`` job), with or without value added (docs/accounting.md, "Intensity,
    base, target, path and status").
    """
    view_level = _view_level(level, park_code)
    scope = f" in park {park_code}" if park_code and level != "city" else ""
    first, last = conn.execute(
        "SELECT min(period), max(period) FROM api.intensity WHERE level = %s AND period_type = %s"
        " AND (%s::text IS NULL OR park_code = %s::text)",
        (view_level, period.period_type, park_code, park_code),
    ).fetchone() or (None, None)
    if first is not None:
        asked = (
            period.period
            if period.period_type in ("year", "month")
            else f"{period.period_type}:{period.period}"
        )
        return f"no intensity for {asked}{scope}: data from {first} to {last}"
    if conn.execute("SELECT NOT EXISTS (SELECT 1 FROM api.meter_energy_month)").fetchone() == (True,):
        return "no interval energy yet: collect readings, then run `parkenergy analyze run`"
    return f"no {level} figures{scope} yet (energy and value added are needed)"
