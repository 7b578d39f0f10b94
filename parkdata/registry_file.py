"""Registry and meter-event files (CSV or XLSX) read into typed, validated rows.

Pure: no database. :func:`read_registry_file` and :func:`read_meter_events_file`
either return rows that passed every check a file alone allows, or raise
:class:`RegistryFileError` listing *all* the problems found, each with the file,
its line and the column. Checks that need the database (a parent meter defined
only there, a meter that already has readings) are made by
:mod:`parkdata.registry_store`.

File format
-----------
That of :mod:`parkdata.table_file`: CSV (UTF-8, header on line 1, line numbers are
the file's physical lines) or XLSX (first worksheet, row numbers). Header names are
matched case-insensitively, surrounding whitespace ignored. An unknown column is an
error (a misspelt optional column would otherwise be silently ignored), yet the lines
are still checked so that one run lists every problem. Blank rows are skipped.

Registry columns: ``park_code, park_name, enterprise_code, enterprise_name,
industry_code, meter_code, carrier, unit, kind`` and optionally ``multiplier``
(default 1), ``rollover`` [unit], ``expected_interval_s`` [s], ``rated_capacity``
[unit/h], ``purpose`` (default ``consumption``), ``key_energy_unit`` (true/false,
是/否; empty means "not stated") and ``parent_meter_code`` (a meter of the same
enterprise). One line per meter; park and enterprise columns repeat and must agree.

Meter-event columns: ``enterprise_code, meter_code, event_type, effective_at`` and
optionally ``final_register``, ``initial_register``, ``new_multiplier``, ``note``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import TypeVar

from parkdata.carriers import CARRIERS, MeterKind, MeterPurpose
from parkdata.table_file import Fields, Problem, Record, TableFileError, as_text, is_blank, read_records
from parkdata.units import UNITS, Dimension

__all__ = [
    "EnterpriseRow",
    "MeterEventRow",
    "MeterEventType",
    "MeterRow",
    "ParkRow",
    "Problem",
    "RegistryFile",
    "RegistryFileError",
    "read_meter_events_file",
    "read_registry_file",
]

_CODE = re.compile(r"[0-9A-Za-z_-]+")  # same rule as registry.enterprise's CHECK
_METER_CODE = re.compile(r"[0-9A-Za-z_.-]+")  # same rule as registry.meter's CHECK
_INDUSTRY_CODE = re.compile(r"[0-9]{2,4}")  # GB/T 4754-2017: division, group or class
_TRUE = frozenset({"true", "1", "yes", "是"})
_FALSE = frozenset({"false", "0", "no", "否"})
_QUANTITY = frozenset({Dimension.ENERGY, Dimension.VOLUME, Dimension.MASS})
_RATE = frozenset({Dimension.POWER, Dimension.VOLUME_FLOW, Dimension.MASS_FLOW})

_REGISTRY_REQUIRED = (
    "park_code",
    "park_name",
    "enterprise_code",
    "enterprise_name",
    "industry_code",
    "meter_code",
    "carrier",
    "unit",
    "kind",
)
_REGISTRY_OPTIONAL = (
    "multiplier",
    "rollover",
    "expected_interval_s",
    "rated_capacity",
    "purpose",
    "key_energy_unit",
    "parent_meter_code",
)
_EVENTS_REQUIRED = ("enterprise_code", "meter_code", "event_type", "effective_at")
_EVENTS_OPTIONAL = ("final_register", "initial_register", "new_multiplier", "note")


class RegistryFileError(TableFileError):
    """A registry or meter-event file cannot be loaded; ``problems`` lists every reason."""


# --- typed rows ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ParkRow:
    """A park, as first defined on ``line`` of ``file``."""

    park_code: str
    park_name: str
    file: str
    line: int


@dataclass(frozen=True, slots=True)
class EnterpriseRow:
    """An enterprise, as first defined on ``line`` of ``file``.

    ``industry_code`` is a GB/T 4754-2017 code; ``key_energy_unit`` (重点用能单位,
    节约能源法 art. 52) is None when the file does not state it: a new enterprise
    then gets False and an existing one keeps its stored flag.
    """

    enterprise_code: str
    enterprise_name: str
    park_code: str
    industry_code: str
    key_energy_unit: bool | None
    file: str
    line: int


@dataclass(frozen=True, slots=True)
class MeterRow:
    """A meter of an enterprise.

    Parameters
    ----------
    unit : str
        Canonical symbol of the meter's unit (``m³`` is stored as ``m3``).
    multiplier : float
        Factor from the meter's register to the metered quantity (CT × PT ratio) [-].
    rollover : float or None
        Register modulus, register meters only [unit].
    expected_interval_s : int or None
        Expected reporting interval [s].
    rated_capacity_per_h : float or None
        Plausibility bound [unit/h]; for a gauge, whose unit is already a rate,
        the largest plausible value [unit].
    parent_meter_code : str or None
        The meter of the same enterprise this one is a sub-meter of.
    """

    enterprise_code: str
    meter_code: str
    carrier: str
    unit: str
    kind: MeterKind
    multiplier: float
    rollover: float | None
    expected_interval_s: int | None
    rated_capacity_per_h: float | None
    purpose: MeterPurpose
    parent_meter_code: str | None
    file: str
    line: int


@dataclass(frozen=True, slots=True)
class RegistryFile:
    """The parks, enterprises and meters of one registry file, each key once."""

    parks: tuple[ParkRow, ...]
    enterprises: tuple[EnterpriseRow, ...]
    meters: tuple[MeterRow, ...]


class MeterEventType(StrEnum):
    REPLACEMENT = "replacement"  # old register read for the last time, new one starts
    MULTIPLIER_CHANGE = "multiplier_change"  # CT/PT ratio changed
    CALIBRATION = "calibration"


@dataclass(frozen=True, slots=True)
class MeterEventRow:
    """One meter event.

    Parameters
    ----------
    effective_at : datetime
        When the event took effect; always timezone-aware.
    final_register, initial_register : float or None
        Last value of the old register and first value of the new one,
        replacement only [unit].
    new_multiplier : float or None
        The multiplier from ``effective_at`` on, multiplier_change only [-].
    """

    enterprise_code: str
    meter_code: str
    event_type: MeterEventType
    effective_at: datetime
    final_register: float | None
    initial_register: float | None
    new_multiplier: float | None
    note: str | None
    file: str
    line: int


# --- typed values from cells --------------------------------------------------------------

_E = TypeVar("_E", bound=StrEnum)


class _Fields(Fields):
    """:class:`Fields` with the registry's choices, whole numbers, flags and times."""

    __slots__ = ()

    def choice(self, column: str, enum: type[_E], default: _E | None = None) -> _E | None:
        value = self.text(column).lower()
        if not value and default is not None:
            return default
        if not value:
            self.problem(column, "value is required")
            return None
        try:
            return enum(value)
        except ValueError:
            names = ", ".join(member.value for member in enum)
            self.problem(column, f"{value!r} is not one of: {names}")
            return None

    def whole(self, column: str) -> int | None:
        """A positive whole number; None when the cell is empty."""
        value = self.number(column)
        if value is None:
            return None
        if not value.is_integer():
            self.problem(column, f"must be a whole number, got {as_text(self.record.cells[column])}")
            return None
        return int(value)

    def flag(self, column: str) -> bool | None:
        """true/false (是/否, yes/no, 1/0); None when the cell is empty."""
        cell = self.record.cells.get(column)
        if isinstance(cell, bool):
            return cell
        value = as_text(cell).lower()
        if not value:
            return None
        if value in _TRUE or value in _FALSE:
            return value in _TRUE
        self.problem(column, f"{value!r} is not true/false (是/否)")
        return None

    def timestamp(self, column: str) -> datetime | None:
        """An ISO 8601 time with a UTC offset; naive times are refused (DESIGN.md)."""
        cell = self.record.cells.get(column)
        if isinstance(cell, datetime):
            self.problem(
                column,
                f"{cell.isoformat()} has no UTC offset; enter it as text, e.g. '2024-03-01T00:00:00+08:00'",
            )
            return None
        value = self.required(column)
        if not value:
            return None
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            self.problem(column, f"{value!r} is not an ISO 8601 time")
            return None
        if moment.tzinfo is None or moment.utcoffset() is None:
            self.problem(column, f"{value!r} has no UTC offset (e.g. +08:00)")
            return None
        return moment


# --- the registry file --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _RegistryLine:
    park: ParkRow
    enterprise: EnterpriseRow
    meter: MeterRow


def _dimension_phrase(dimensions: frozenset[Dimension]) -> str:
    return ", ".join(sorted(str(d) for d in dimensions))


def _meter_unit(fields: _Fields, carrier: str, kind: MeterKind | None) -> str:
    """Canonical symbol of the meter's unit, checked against carrier and kind ('' if bad)."""
    symbol = fields.required("unit")
    if not symbol:
        return ""
    known = UNITS.get(symbol)
    if known is None:
        fields.problem("unit", f"unknown unit {symbol!r} (units are case-sensitive, e.g. kWh, m3, t)")
        return ""
    allowed = CARRIERS[carrier].dimensions if carrier in CARRIERS else None
    if allowed is not None and known.dimension not in allowed:
        fields.problem(
            "unit",
            f"{symbol!r} measures {known.dimension}, which carrier {carrier} does not allow "
            f"({_dimension_phrase(allowed)})",
        )
    elif kind is MeterKind.GAUGE and known.dimension not in _RATE:
        fields.problem("unit", f"gauge meters need a rate unit (power or flow), got {symbol!r}")
    elif kind in (MeterKind.REGISTER, MeterKind.INTERVAL) and known.dimension not in _QUANTITY:
        fields.problem("unit", f"{kind} meters need a quantity unit (energy, volume or mass), got {symbol!r}")
    return known.symbol


def _carrier(fields: _Fields) -> str:
    carrier = fields.required("carrier").lower()
    if carrier and carrier not in CARRIERS:
        fields.problem("carrier", f"{carrier!r} is not one of: {', '.join(CARRIERS)}")
    return carrier


def _meter(fields: _Fields, enterprise_code: str) -> MeterRow | None:
    meter_code = fields.code("meter_code", _METER_CODE, "letters, digits, '_', '.' and '-'")
    if meter_code.startswith("_"):
        fields.problem("meter_code", f"{meter_code!r} may not start with '_' (reserved for gateway topics)")
    carrier = _carrier(fields)
    kind = fields.choice("kind", MeterKind)
    unit = _meter_unit(fields, carrier, kind)
    multiplier = fields.number("multiplier")
    rollover = fields.number("rollover")
    if rollover is not None and kind is not None and kind is not MeterKind.REGISTER:
        fields.problem("rollover", f"applies to register meters only, not to {kind} meters")
    interval_s = fields.whole("expected_interval_s")
    capacity = fields.number("rated_capacity")
    purpose = fields.choice("purpose", MeterPurpose, MeterPurpose.CONSUMPTION)
    parent = fields.text("parent_meter_code") or None
    if kind is None or purpose is None or not fields.ok:
        return None
    return MeterRow(
        enterprise_code=enterprise_code,
        meter_code=meter_code,
        carrier=carrier,
        unit=unit,
        kind=kind,
        multiplier=1.0 if multiplier is None else multiplier,
        rollover=rollover,
        expected_interval_s=interval_s,
        rated_capacity_per_h=capacity,
        purpose=purpose,
        parent_meter_code=parent,
        file=fields.file,
        line=fields.record.line,
    )


def _registry_line(file: str, record: Record, problems: list[Problem]) -> _RegistryLine | None:
    fields = _Fields(file, record, problems)
    park_code = fields.code("park_code", _CODE, "letters, digits, '_' and '-'")
    park_name = fields.required("park_name")
    enterprise_code = fields.code("enterprise_code", _CODE, "letters, digits, '_' and '-'")
    enterprise_name = fields.required("enterprise_name")
    industry_code = fields.required("industry_code")
    if industry_code and not _INDUSTRY_CODE.fullmatch(industry_code):
        fields.problem("industry_code", f"{industry_code!r} is not a GB/T 4754 code (2 to 4 digits)")
    key_energy_unit = fields.flag("key_energy_unit")
    meter = _meter(fields, enterprise_code)
    if meter is None or not fields.ok:
        return None
    return _RegistryLine(
        ParkRow(park_code, park_name, file, record.line),
        EnterpriseRow(
            enterprise_code, enterprise_name, park_code, industry_code, key_energy_unit, file, record.line
        ),
        meter,
    )


def _merge_park(parks: dict[str, ParkRow], park: ParkRow, problems: list[Problem]) -> None:
    first = parks.setdefault(park.park_code, park)
    if first.park_name != park.park_name:
        problems.append(
            Problem(
                park.file,
                park.line,
                "park_name",
                f"park {park.park_code} is named {park.park_name!r} here "
                f"but {first.park_name!r} on line {first.line}",
            )
        )


def _merge_enterprise(
    enterprises: dict[str, EnterpriseRow], row: EnterpriseRow, problems: list[Problem]
) -> None:
    first = enterprises.setdefault(row.enterprise_code, row)
    for column in ("enterprise_name", "park_code", "industry_code", "key_energy_unit"):
        mine, theirs = getattr(row, column), getattr(first, column)
        if mine is None or theirs is None or mine == theirs:
            continue
        problems.append(
            Problem(
                row.file,
                row.line,
                column,
                f"enterprise {row.enterprise_code} has {column} {mine!r} here "
                f"but {theirs!r} on line {first.line}",
            )
        )
    if first.key_energy_unit is None and row.key_energy_unit is not None:
        enterprises[row.enterprise_code] = replace(first, key_energy_unit=row.key_energy_unit)


def _merge_meter(meters: dict[tuple[str, str], MeterRow], meter: MeterRow, problems: list[Problem]) -> None:
    first = meters.setdefault((meter.enterprise_code, meter.meter_code), meter)
    if first is not meter:
        problems.append(
            Problem(
                meter.file,
                meter.line,
                "meter_code",
                f"meter {meter.meter_code} of enterprise {meter.enterprise_code} "
                f"is already defined on line {first.line}",
            )
        )


def _parent_problems(meters: dict[tuple[str, str], MeterRow]) -> list[Problem]:
    """Parents defined in the file: same carrier, and no meter is its own ancestor.

    A parent not in the file may be in the database; :mod:`parkdata.registry_store`
    checks those.
    """
    problems: list[Problem] = []
    for meter in meters.values():
        parent = meters.get((meter.enterprise_code, meter.parent_meter_code or ""))
        if parent is not None and parent.carrier != meter.carrier:
            problems.append(
                Problem(
                    meter.file,
                    meter.line,
                    "parent_meter_code",
                    f"parent {parent.meter_code} measures {parent.carrier}, this meter {meter.carrier}",
                )
            )
    for cycle in _parent_cycles(meters):
        path = " → ".join(m.meter_code for m in (*cycle, cycle[0]))
        first = min(cycle, key=lambda m: m.line)
        problems.append(
            Problem(first.file, first.line, "parent_meter_code", f"parent meters form a cycle: {path}")
        )
    return problems


def _parent_cycles(meters: dict[tuple[str, str], MeterRow]) -> list[list[MeterRow]]:
    done: set[tuple[str, str]] = set()
    cycles: list[list[MeterRow]] = []
    for start in meters:
        path: list[tuple[str, str]] = []
        key: tuple[str, str] | None = start
        while key is not None and key in meters and key not in done:
            if key in path:
                cycles.append([meters[k] for k in path[path.index(key) :]])
                break
            path.append(key)
            parent = meters[key].parent_meter_code
            key = (key[0], parent) if parent is not None else None
        done.update(path)
    return cycles


def read_registry_file(path: Path) -> RegistryFile:
    """Read and check a registry file (CSV or XLSX) of parks, enterprises and meters.

    Parameters
    ----------
    path : Path
        A ``.csv`` or ``.xlsx`` file with one line per meter (see the module docstring).

    Returns
    -------
    RegistryFile
        Each park, enterprise and meter once, in file order.

    Raises
    ------
    RegistryFileError
        With every problem found: unreadable file, bad header, bad values (each
        line and column), and disagreements between lines (an enterprise with two
        parks or names, a meter defined twice, a parent of another carrier or a
        cycle of parents).
    """
    file = str(path)
    problems: list[Problem] = []
    records = read_records(path, _REGISTRY_REQUIRED, _REGISTRY_OPTIONAL, problems, RegistryFileError)
    parks: dict[str, ParkRow] = {}
    enterprises: dict[str, EnterpriseRow] = {}
    meters: dict[tuple[str, str], MeterRow] = {}
    for record in records:
        line = _registry_line(file, record, problems)
        if line is None:
            continue
        _merge_park(parks, line.park, problems)
        _merge_enterprise(enterprises, line.enterprise, problems)
        _merge_meter(meters, line.meter, problems)
    problems.extend(_parent_problems(meters))
    if problems:
        raise RegistryFileError(problems)
    if not meters:
        raise RegistryFileError([Problem(file, 0, None, "no meter lines below the header")])
    return RegistryFile(tuple(parks.values()), tuple(enterprises.values()), tuple(meters.values()))


# --- the meter-event file -----------------------------------------------------------------

_EVENT_NUMBERS: dict[str, MeterEventType] = {
    "final_register": MeterEventType.REPLACEMENT,
    "initial_register": MeterEventType.REPLACEMENT,
    "new_multiplier": MeterEventType.MULTIPLIER_CHANGE,
}


def _event_numbers(fields: _Fields, event_type: MeterEventType | None) -> dict[str, float | None]:
    """The numeric columns; each required by, and allowed only for, its event type."""
    values: dict[str, float | None] = {}
    for column, owner in _EVENT_NUMBERS.items():
        values[column] = fields.number(column, allow_zero=owner is MeterEventType.REPLACEMENT)
        blank = is_blank(fields.record.cells.get(column))
        if event_type is owner and blank:
            fields.problem(column, f"a {owner} event needs {column}")
        elif event_type is not None and event_type is not owner and not blank:
            fields.problem(column, f"applies to {owner} events only, not to {event_type}")
    return values


def _meter_event(file: str, record: Record, problems: list[Problem]) -> MeterEventRow | None:
    fields = _Fields(file, record, problems)
    enterprise_code = fields.code("enterprise_code", _CODE, "letters, digits, '_' and '-'")
    meter_code = fields.code("meter_code", _METER_CODE, "letters, digits, '_', '.' and '-'")
    event_type = fields.choice("event_type", MeterEventType)
    effective_at = fields.timestamp("effective_at")
    numbers = _event_numbers(fields, event_type)
    note = fields.text("note") or None
    if event_type is None or effective_at is None or not fields.ok:
        return None
    return MeterEventRow(
        enterprise_code=enterprise_code,
        meter_code=meter_code,
        event_type=event_type,
        effective_at=effective_at,
        final_register=numbers["final_register"],
        initial_register=numbers["initial_register"],
        new_multiplier=numbers["new_multiplier"],
        note=note,
        file=file,
        line=record.line,
    )


def read_meter_events_file(path: Path) -> list[MeterEventRow]:
    """Read and check a meter-event file (CSV or XLSX).

    Parameters
    ----------
    path : Path
        A ``.csv`` or ``.xlsx`` file with one line per event (see the module docstring).

    Returns
    -------
    list of MeterEventRow
        In file order.

    Raises
    ------
    RegistryFileError
        With every problem found: unreadable file, bad header, bad values, a time
        without UTC offset, a replacement without both registers, a
        multiplier_change without new_multiplier, a value given for another
        event type, and the same event (meter, type, time) twice.
    """
    file = str(path)
    problems: list[Problem] = []
    records = read_records(path, _EVENTS_REQUIRED, _EVENTS_OPTIONAL, problems, RegistryFileError)
    events: list[MeterEventRow] = []
    seen: dict[tuple[str, str, MeterEventType, datetime], int] = {}
    for record in records:
        event = _meter_event(file, record, problems)
        if event is None:
            continue
        key = (event.enterprise_code, event.meter_code, event.event_type, event.effective_at)
        first_line = seen.setdefault(key, event.line)
        if first_line != event.line:
            problems.append(Problem(file, event.line, "effective_at", f"same event as on line {first_line}"))
            continue
        events.append(event)
    if problems:
        raise RegistryFileError(problems)
    return events
