"""How the report writes numbers, shares and times; the exact value goes to ``data-value``.

Visible figures are rounded (intensity to 4 decimals like ``parkenergy intensity``, energy
and CO₂ to 0.1 with thousands separators, shares to 0.1 %); signs are ASCII so that
every font has them. ``exact`` gives the ``repr`` of a float, which is also what
``json.dumps`` (``parkenergy intensity --json``) writes, so a test can compare exactly.
"""

from __future__ import annotations

from datetime import datetime

from reports.monthly import LOCAL

__all__ = ["NONE", "exact", "figure", "local_time", "number", "percent", "signed_percent"]

NONE = "—"


def exact(value: object) -> str:
    """The exact value for a ``data-value`` attribute: ``repr`` of a float, text as is, '' for None."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def number(value: float | None, digits: int = 1) -> str:
    """``12,345.6``; ``—`` for None."""
    if value is None:
        return NONE
    return f"{value:,.{digits}f}"


def figure(value: float | None) -> str:
    """A measured value of any size: ``18,900``, ``33.5``, ``2.35``, ``0.123``; ``—`` for None."""
    if value is None:
        return NONE
    size = abs(value)
    digits = 0 if size >= 1000 or size == 0 else 1 if size >= 10 else 2 if size >= 1 else 3
    return f"{value:,.{digits}f}"


def percent(value: float | None, digits: int = 1) -> str:
    """A fraction as ``99.9 %``; ``—`` for None."""
    if value is None:
        return NONE
    return f"{value * 100:.{digits}f} %"


def signed_percent(value: float | None, digits: int = 1) -> str:
    """A change as ``-36.1 %`` or ``+2.0 %``; ``—`` for None."""
    if value is None:
        return NONE
    return f"{value * 100:+.{digits}f} %"


def local_time(value: datetime | None, with_time: bool = True) -> str:
    """An aware time in China's time (UTC+8): ``2026-10-25 08:00``; ``—`` for None."""
    if value is None:
        return NONE
    return value.astimezone(LOCAL).strftime("%Y-%m-%d %H:%M" if with_time else "%Y-%m-%d")
