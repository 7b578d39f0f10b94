"""What Grafana sends to PostgreSQL for a panel, variable or alert query, reproduced for tests.

No Grafana server runs here, so the tests expand queries exactly as Grafana
would (/work/shared/TESTING-NOTES.md, from Grafana's ``macros.go`` and
``sqleng``) and run the result on a real database:

1. dashboard template variables (frontend ``templateSrv``, SQL datasource
   ``interpolateVariable``): ``$name``, ``${name}``, ``[[name]]``; a
   single-value string is inserted with ``'`` doubled and no quotes added, a
   multi-value or include-all variable becomes ``'a','b'``; unknown names
   stay as they are (``$__timeFilter`` is no variable);
2. ``sqleng.Interpolate``: ``$__interval_ms``, ``$__interval``,
   ``$__unixEpochFrom()``, ``$__unixEpochTo()``;
3. the PostgreSQL macro engine: ``\\$([_a-zA-Z0-9]+)\\(([^\\)]*)\\)``, one
   left-to-right pass; arguments split on ``,`` and trimmed; an unknown macro
   is an error.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

_MACRO = re.compile(r"\$([_a-zA-Z0-9]+)\(([^\)]*)\)")
# public/app/features/variables/utils.ts, variableRegex
_VARIABLE = re.compile(r"\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\${(\w+)(?:\.([^:^\}]+))?(?::([^\}]+))?}")
_UNITS_S = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_INTERVAL = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d|w)$")


class MacroError(ValueError):
    """Grafana would refuse the query (unknown macro, missing arguments, bad interval)."""


@dataclass(frozen=True, slots=True)
class TimeRange:
    """The dashboard's (or alert rule's) time range, timezone-aware."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("time range bounds must be timezone-aware")


@dataclass(frozen=True, slots=True)
class VariableValue:
    """The current value of a template variable.

    ``multi`` is true for a variable with ``multi`` or ``includeAll``: then
    even a single value is quoted.
    """

    values: tuple[str, ...]
    multi: bool

    def render(self) -> str:
        if self.multi:
            return ",".join(quote_literal(v) for v in self.values)
        if len(self.values) != 1:
            raise ValueError("a single-value variable has exactly one value")
        return self.values[0].replace("'", "''")


def quote_literal(value: str) -> str:
    """The SQL datasource's ``quoteLiteral``: ``'…'`` with ``'`` doubled."""
    return "'" + value.replace("'", "''") + "'"


def rfc3339(moment: datetime) -> str:
    """Go's ``time.RFC3339Nano`` in UTC: trailing fractional zeros removed, ``Z``."""
    moment = moment.astimezone(UTC)
    base = moment.strftime("%Y-%m-%dT%H:%M:%S")
    fraction = f".{moment.microsecond:06d}".rstrip("0") if moment.microsecond else ""
    return f"{base}{fraction}Z"


def go_float(value: float) -> str:
    """Go's ``%v`` of a float64: shortest digits, exponent form when exp < -4 or ≥ 6 (``1.0368e+06``)."""
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    digits_tuple = Decimal(repr(abs(value))).normalize().as_tuple()
    digits = "".join(str(d) for d in digits_tuple.digits)
    exponent = int(digits_tuple.exponent)
    point = len(digits) + exponent  # position of the decimal point (Go's digs.dp)
    exp = point - 1
    if exp < -4 or exp >= 6:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return f"{sign}{digits}{'0' * (point - len(digits))}"
    return f"{sign}{digits[:point]}.{digits[point:]}"


def format_interval(interval: timedelta) -> str:
    """``gtime.FormatInterval``: the largest whole unit, truncated; at least ``1ms``."""
    ms = int(interval / timedelta(milliseconds=1))
    for unit_ms, suffix in (
        (365 * 86_400_000, "y"),
        (86_400_000, "d"),
        (3_600_000, "h"),
        (60_000, "m"),
        (1000, "s"),
        (1, "ms"),
    ):
        if ms >= unit_ms:
            return f"{ms // unit_ms}{suffix}"
    return "1ms"


def parse_interval(text: str) -> float:
    """Seconds of a macro interval argument (``'5m'``, ``1h``, ``"10s"``), quotes trimmed."""
    match = _INTERVAL.match(text.strip("'\""))
    if match is None:
        raise MacroError(f"error parsing interval {text!r}")
    return float(match.group(1)) * _UNITS_S[match.group(2)]


def interpolate_variables(sql: str, variables: Mapping[str, VariableValue]) -> str:
    """Step 1: dashboard template variables; names that are not variables stay as written."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2) or match.group(4)
        if match.group(3) or match.group(5) or match.group(6):
            raise ValueError(f"variable formats and fields are not reproduced: {match.group(0)}")
        if name not in variables:
            return match.group(0)
        return variables[name].render()

    return _VARIABLE.sub(replace, sql)


def interpolate_builtins(sql: str, time_range: TimeRange, interval: timedelta) -> str:
    """Step 2: ``sqleng.Interpolate`` (``$__interval_ms`` before ``$__interval``)."""
    sql = sql.replace("$__interval_ms", str(int(interval / timedelta(milliseconds=1))))
    sql = sql.replace("$__interval", format_interval(interval))
    sql = sql.replace("$__unixEpochFrom()", str(int(time_range.start.timestamp())))
    return sql.replace("$__unixEpochTo()", str(int(time_range.end.timestamp())))


def _time_group(args: list[str], timescaledb: bool) -> str:
    if len(args) < 2:
        raise MacroError("macro __timeGroup needs time column and interval and optional fill value")
    seconds = parse_interval(args[1])
    if timescaledb:
        return f"time_bucket('{seconds:.3f}s',{args[0]})"
    return f"floor(extract(epoch from {args[0]})/{go_float(seconds)})*{go_float(seconds)}"


def _macro(name: str, args: list[str], time_range: TimeRange, timescaledb: bool) -> str:
    start, end = rfc3339(time_range.start), rfc3339(time_range.end)
    if name == "__time":
        return f'{args[0]} AS "time"'
    if name == "__timeEpoch":
        return f'extract(epoch from {args[0]}) as "time"'
    if name == "__timeFilter":
        return f"{args[0]} BETWEEN '{start}' AND '{end}'"
    if name == "__timeFrom":
        return f"'{start}'"
    if name == "__timeTo":
        return f"'{end}'"
    if name == "__timeGroup":
        return _time_group(args, timescaledb)
    if name == "__timeGroupAlias":
        return _time_group(args, timescaledb) + ' AS "time"'
    if name == "__unixEpochFilter":
        first, last = int(time_range.start.timestamp()), int(time_range.end.timestamp())
        return f"{args[0]} >= {first} AND {args[0]} <= {last}"
    if name in ("__unixEpochGroup", "__unixEpochGroupAlias"):
        if len(args) < 2:
            raise MacroError(f"macro {name} needs time column and interval and optional fill value")
        seconds = go_float(parse_interval(args[1]))
        alias = ' AS "time"' if name == "__unixEpochGroupAlias" else ""
        return f"floor(({args[0]})/{seconds})*{seconds}{alias}"
    raise MacroError(f"undefined macro: ${name}")


def expand_macros(sql: str, time_range: TimeRange, timescaledb: bool) -> str:
    """Step 3: the PostgreSQL macro engine.

    ``$__timeGroup(…)`` gains ``AS "time"`` when the first occurrence of the
    same macro text in the query is directly followed by ``,`` (Grafana's
    pre-5.3 compatibility rule, which looks the text up with ``strings.Index``).
    """

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        args = [a.strip(" ") for a in match.group(2).split(",")]
        if name == "__timeGroup":
            index = sql.find(match.group(0))
            after = index + len(match.group(0))
            if index >= 0 and after < len(sql) and sql[after] == ",":
                name = "__timeGroupAlias"
        return _macro(name, args, time_range, timescaledb)

    return _MACRO.sub(replace, sql)


def expand(
    sql: str,
    time_range: TimeRange,
    interval: timedelta,
    *,
    timescaledb: bool,
    variables: Mapping[str, VariableValue] | None = None,
) -> str:
    """The SQL Grafana sends for ``sql``: variables, then built-ins, then macros."""
    sql = interpolate_variables(sql, variables or {})
    sql = interpolate_builtins(sql, time_range, interval)
    return expand_macros(sql, time_range, timescaledb)
