"""Economics files (CSV or XLSX) read into typed, validated rows.

Pure: no database. Each reader returns rows that passed every check a file alone
allows, or raises :class:`EconomicsFileError` listing *all* problems found, each
with file, line and column, read by :mod:`parkdata.table_file` as the registry files are.
Checks that need the database (the enterprise exists) are made by
:mod:`analytics.economics_store`, which imports nothing unless every line is good.

File format (docs/accounting.md, "Economics files")
---------------------------------------------------
- CSV: UTF-8 with or without a byte-order mark, header on line 1; line numbers are
  the file's physical lines. XLSX: the first worksheet, header in row 1.
- Header names case-insensitive, surrounding spaces ignored, columns in any order;
  an unknown column is an error; blank lines are skipped.
- value added: ``enterprise_code, period, value_added_10k_yuan[, price_index_2022]``
  (period ``YYYY-MM``; value added at current prices [10⁴ yuan]; own price index,
  2022 = 1).
- deflators: ``industry_code, year, price_index_2022``.
- baseline: ``enterprise_code, year, carrier, unit, consumption[, feedstock][, non_fossil],
  value_added_10k_yuan`` (one line per enterprise and carrier; feedstock and
  non_fossil are parts of consumption; value added repeated and equal on every line
  of an enterprise).
- output: ``enterprise_code, period, product, quantity, unit``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from parkdata.carriers import CARRIERS
from parkdata.table_file import Fields, Problem, Record, TableFileError, as_text, read_records
from parkdata.units import UNITS, Dimension

__all__ = [
    "BaselineRow",
    "DeflatorRow",
    "EconomicsFileError",
    "OutputRow",
    "Problem",
    "ValueAddedRow",
    "read_baseline_file",
    "read_deflators_file",
    "read_output_file",
    "read_value_added_file",
]

_CODE = re.compile(r"[0-9A-Za-z_-]+")  # registry.enterprise's CHECK
_INDUSTRY = re.compile(r"[0-9A-Za-z]{1,5}")  # a GB/T 4754 code or prefix
_PERIOD = re.compile(r"([0-9]{4})-([0-9]{2})")
_QUANTITY = frozenset({Dimension.ENERGY, Dimension.VOLUME, Dimension.MASS})
_YEARS = range(1990, 2101)


class EconomicsFileError(TableFileError):
    """An economics file cannot be imported; ``problems`` lists every reason."""


@dataclass(frozen=True, slots=True)
class ValueAddedRow:
    """Value added of one enterprise and month at current prices [10⁴ yuan]; own index (2022 = 1)."""

    enterprise_code: str
    period: date
    value_added_10k_yuan: float
    price_index_2022: float | None
    file: str
    line: int


@dataclass(frozen=True, slots=True)
class DeflatorRow:
    """Price index (2022 = 1) of an industry code or prefix and year [-]."""

    industry_code: str
    year: int
    price_index_2022: float
    file: str
    line: int


@dataclass(frozen=True, slots=True)
class BaselineRow:
    """One carrier of an enterprise's base-year statistics, in ``unit`` (canonical symbol).

    ``value_added_10k_yuan`` is the enterprise's annual value added of ``year`` at
    that year's prices [10⁴ yuan].
    """

    enterprise_code: str
    year: int
    carrier: str
    unit: str
    consumption: float
    feedstock: float
    non_fossil: float
    value_added_10k_yuan: float
    file: str
    line: int


@dataclass(frozen=True, slots=True)
class OutputRow:
    """Monthly output of one product [unit]."""

    enterprise_code: str
    period: date
    product: str
    quantity: float
    unit: str
    file: str
    line: int


# --- typed cells --------------------------------------------------------------------------


def _records(
    path: Path, required: Sequence[str], optional: Sequence[str], problems: list[Problem]
) -> list[Record]:
    """Every non-blank data line; any header problem stops the reading at once."""
    return read_records(path, required, optional, problems, EconomicsFileError, strict_header=True)


class _Fields(Fields):
    """:class:`Fields` with years and months."""

    __slots__ = ()

    def year(self, column: str) -> int | None:
        value = self.number(column, required=True, allow_zero=True)
        if value is None:
            return None
        if not value.is_integer() or int(value) not in _YEARS:
            self.problem(column, f"{as_text(self.record.cells.get(column))!r} is not a year (1990-2100)")
            return None
        return int(value)

    def period(self, column: str) -> date | None:
        """A month: text ``YYYY-MM``, or a spreadsheet date on the first of the month."""
        cell = self.record.cells.get(column)
        if isinstance(cell, datetime | date):
            if cell.day != 1:
                self.problem(column, f"{cell.isoformat()} is not the first day of a month; write YYYY-MM")
                return None
            return date(cell.year, cell.month, 1)
        value = self.required(column)
        if not value:
            return None
        match = _PERIOD.fullmatch(value)
        if match is None or not 1 <= int(match.group(2)) <= 12 or int(match.group(1)) not in _YEARS:
            self.problem(column, f"{value!r} is not a month YYYY-MM")
            return None
        return date(int(match.group(1)), int(match.group(2)), 1)


def _duplicate(
    seen: dict[tuple[object, ...], int],
    key: tuple[object, ...],
    file: str,
    line: int,
    *,
    column: str,
    what: str,
) -> Problem | None:
    first = seen.setdefault(key, line)
    if first != line:
        return Problem(file, line, column, f"{what} already given on line {first}")
    return None


# --- the four files -----------------------------------------------------------------------


def read_value_added_file(path: Path) -> list[ValueAddedRow]:
    """Read a value-added file; raises :class:`EconomicsFileError` with every problem."""
    file = str(path)
    problems: list[Problem] = []
    records = _records(
        path, ("enterprise_code", "period", "value_added_10k_yuan"), ("price_index_2022",), problems
    )
    rows: list[ValueAddedRow] = []
    seen: dict[tuple[object, ...], int] = {}
    for record in records:
        f = _Fields(file, record, problems)
        code = f.code("enterprise_code", _CODE, "letters, digits, '_' and '-'")
        period = f.period("period")
        value = f.number("value_added_10k_yuan", required=True, allow_zero=True)
        index = f.number("price_index_2022")
        if not f.ok or period is None or value is None:
            continue
        dup = _duplicate(
            seen, (code, period), file, record.line, column="period", what=f"{code} {period:%Y-%m}"
        )
        if dup is not None:
            problems.append(dup)
            continue
        rows.append(ValueAddedRow(code, period, value, index, file, record.line))
    if problems:
        raise EconomicsFileError(problems)
    return rows


def read_deflators_file(path: Path) -> list[DeflatorRow]:
    """Read a deflator file; raises :class:`EconomicsFileError` with every problem."""
    file = str(path)
    problems: list[Problem] = []
    records = _records(path, ("industry_code", "year", "price_index_2022"), (), problems)
    rows: list[DeflatorRow] = []
    seen: dict[tuple[object, ...], int] = {}
    for record in records:
        f = _Fields(file, record, problems)
        code = f.code("industry_code", _INDUSTRY, "1-5 letters or digits (a GB/T 4754 code or prefix)")
        year = f.year("year")
        index = f.number("price_index_2022", required=True)
        if not f.ok or year is None or index is None:
            continue
        dup = _duplicate(seen, (code, year), file, record.line, column="year", what=f"industry {code} {year}")
        if dup is not None:
            problems.append(dup)
            continue
        rows.append(DeflatorRow(code, year, index, file, record.line))
    if problems:
        raise EconomicsFileError(problems)
    return rows


def _baseline_unit(f: _Fields, carrier: str) -> str:
    symbol = f.required("unit")
    if not symbol:
        return ""
    known = UNITS.get(symbol)
    if known is None or known.dimension not in _QUANTITY:
        f.problem("unit", f"{symbol!r} is not a unit of energy, volume or mass (units are case-sensitive)")
        return ""
    if carrier in CARRIERS and known.dimension not in CARRIERS[carrier].dimensions:
        f.problem("unit", f"carrier {carrier} is not measured in {known.dimension} ({symbol})")
        return ""
    return known.symbol


def read_baseline_file(path: Path) -> list[BaselineRow]:
    """Read a base-year statistics file; raises :class:`EconomicsFileError` with every problem.

    Besides the cell checks: feedstock + non_fossil must not exceed consumption (both
    are parts of it; 10⁻³ of slack for rounded figures), one line per (enterprise,
    year, carrier), and the value added must agree on every line of an enterprise
    and year.
    """
    file = str(path)
    problems: list[Problem] = []
    records = _records(
        path,
        ("enterprise_code", "year", "carrier", "unit", "consumption", "value_added_10k_yuan"),
        ("feedstock", "non_fossil"),
        problems,
    )
    rows: list[BaselineRow] = []
    seen: dict[tuple[object, ...], int] = {}
    value_added: dict[tuple[str, int], tuple[float, int]] = {}
    for record in records:
        f = _Fields(file, record, problems)
        code = f.code("enterprise_code", _CODE, "letters, digits, '_' and '-'")
        year = f.year("year")
        carrier = f.required("carrier").lower()
        if carrier and carrier not in CARRIERS:
            f.problem("carrier", f"{carrier!r} is not one of: {', '.join(CARRIERS)}")
        unit = _baseline_unit(f, carrier)
        consumption = f.number("consumption", required=True, allow_zero=True)
        feedstock = f.number("feedstock", allow_zero=True) or 0.0
        non_fossil = f.number("non_fossil", allow_zero=True) or 0.0
        va = f.number("value_added_10k_yuan", required=True)
        if consumption is not None and feedstock + non_fossil > consumption * (1 + 1e-6) + 1e-3:
            f.problem(
                "consumption",
                f"feedstock ({feedstock:g}) + non_fossil ({non_fossil:g})"
                f" exceed consumption ({consumption:g})",
            )
        if not f.ok or year is None or consumption is None or va is None:
            continue
        dup = _duplicate(
            seen, (code, year, carrier), file, record.line, column="carrier", what=f"{code} {year} {carrier}"
        )
        if dup is not None:
            problems.append(dup)
            continue
        first = value_added.setdefault((code, year), (va, record.line))
        if not math.isclose(first[0], va, rel_tol=1e-9):
            problems.append(
                Problem(
                    file,
                    record.line,
                    "value_added_10k_yuan",
                    f"{code} {year} has value added {va:g} here but {first[0]:g} on line {first[1]}",
                )
            )
            continue
        rows.append(
            BaselineRow(code, year, carrier, unit, consumption, feedstock, non_fossil, va, file, record.line)
        )
    if problems:
        raise EconomicsFileError(problems)
    return rows


def read_output_file(path: Path) -> list[OutputRow]:
    """Read a product-output file; raises :class:`EconomicsFileError` with every problem."""
    file = str(path)
    problems: list[Problem] = []
    records = _records(path, ("enterprise_code", "period", "product", "quantity", "unit"), (), problems)
    rows: list[OutputRow] = []
    seen: dict[tuple[object, ...], int] = {}
    for record in records:
        f = _Fields(file, record, problems)
        code = f.code("enterprise_code", _CODE, "letters, digits, '_' and '-'")
        period = f.period("period")
        product = f.required("product")
        quantity = f.number("quantity", required=True, allow_zero=True)
        unit = f.required("unit")
        if not f.ok or period is None or quantity is None:
            continue
        dup = _duplicate(
            seen,
            (code, period, product),
            file,
            record.line,
            column="product",
            what=f"{code} {period:%Y-%m} {product}",
        )
        if dup is not None:
            problems.append(dup)
            continue
        rows.append(OutputRow(code, period, product, quantity, unit, file, record.line))
    if problems:
        raise EconomicsFileError(problems)
    return rows
