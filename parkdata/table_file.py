"""Tables read from CSV or XLSX files: lines with their numbers, header, typed cells, problems.

Pure: no database. The readers of registry, meter-event and economics files
(:mod:`parkdata.registry_file`, :mod:`analytics.economics_file`) share what is
here: :func:`read_records` gives every non-blank data line of a file with its
line number and its cells keyed by column name, :class:`Fields` turns cells into
typed values, and every fault becomes a :class:`Problem` (file, line, column,
message) collected into one :class:`TableFileError`.

File format
-----------
- CSV: UTF-8 with or without a byte-order mark, comma-separated, header on line 1.
  Line numbers are the file's physical line numbers (a quoted multi-line value
  is reported at the line where its record starts).
- XLSX (or XLSM): the first worksheet, header in row 1; line numbers are row numbers.
- Header names are matched case-insensitively, surrounding whitespace ignored.
  An unknown or repeated column is a problem. Blank rows are skipped.
"""

from __future__ import annotations

import csv
import io
import math
import re
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from openpyxl import load_workbook
from openpyxl.utils.exceptions import InvalidFileException

__all__ = [
    "Fields",
    "Problem",
    "Record",
    "TableFileError",
    "as_text",
    "is_blank",
    "read_records",
]


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with one line of a file.

    Parameters
    ----------
    file : str
        The file as the user named it.
    line : int
        CSV line or XLSX row, the header being 1; 0 when the problem concerns the
        whole file (unreadable, unsupported type).
    column : str or None
        The column at fault, when there is one.
    message : str
        What is wrong, naming the bad value.
    """

    file: str
    line: int
    column: str | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        column = f" {self.column}:" if self.column else ""
        return f"{where}:{column} {self.message}"


class TableFileError(ValueError):
    """A table file cannot be loaded; ``problems`` lists every reason, by file and line."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems: list[Problem] = sorted(problems, key=lambda p: (p.file, p.line))
        count = len(self.problems)
        lines = "\n".join(f"  {p}" for p in self.problems)
        super().__init__(f"{count} problem{'s' if count != 1 else ''}:\n{lines}")


@dataclass(frozen=True, slots=True)
class Record:
    """One non-blank data line: raw cells keyed by (normalised) column name."""

    line: int
    cells: dict[str, object]


# --- lines of a file ----------------------------------------------------------------------


class _Unreadable(Exception):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


def is_blank(cell: object) -> bool:
    """True for an empty cell or one of only whitespace."""
    return cell is None or (isinstance(cell, str) and not cell.strip())


def _csv_lines(path: Path) -> Iterator[tuple[int, list[object]]]:
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise _Unreadable(line, "not UTF-8 text (save the CSV as UTF-8)") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    start = 1
    try:
        for cells in reader:
            yield start, list(cells)
            start = reader.line_num + 1
    except csv.Error as exc:
        raise _Unreadable(reader.line_num, f"malformed CSV: {exc}") from None


def _xlsx_lines(path: Path) -> Iterator[tuple[int, list[object]]]:
    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, InvalidFileException, KeyError) as exc:
        raise _Unreadable(0, f"not a readable XLSX workbook: {exc}") from None
    try:
        # Read-only worksheets fill skipped rows with empty ones, so enumerate = row number.
        for number, cells in enumerate(book.worksheets[0].iter_rows(min_row=1, values_only=True), 1):
            yield number, list(cells)
    finally:
        book.close()


def _lines(path: Path) -> Iterator[tuple[int, list[object]]]:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _csv_lines(path)
    if suffix in (".xlsx", ".xlsm"):
        return _xlsx_lines(path)
    raise _Unreadable(0, f"unsupported file type {suffix or '(none)'!r}; use .csv or .xlsx")


# --- header and records -------------------------------------------------------------------


def _header_name(cell: object) -> str:
    return str(cell).strip().lstrip("\ufeff").strip().lower() if cell is not None else ""


@dataclass(frozen=True, slots=True)
class _Header:
    columns: dict[int, str]
    """Cell position → known column name."""
    labelled: frozenset[int]
    """Positions with any header text, known or not."""


def _read_header(
    file: str, cells: list[object], required: Sequence[str], optional: Sequence[str]
) -> tuple[_Header, list[Problem]]:
    """Map cell positions to known column names; problems for unknown, repeated or missing ones."""
    known = set(required) | set(optional)
    columns: dict[int, str] = {}
    labelled: set[int] = set()
    problems: list[Problem] = []
    for position, cell in enumerate(cells):
        name = _header_name(cell)
        if not name:
            continue
        labelled.add(position)
        if name not in known:
            problems.append(Problem(file, 1, name, f"unknown column {name!r}"))
        elif name in columns.values():
            problems.append(Problem(file, 1, name, f"column {name!r} appears twice"))
        else:
            columns[position] = name
    missing = [name for name in required if name not in columns.values()]
    if missing:
        problems.append(Problem(file, 1, None, f"missing required column(s): {', '.join(missing)}"))
    return _Header(columns, frozenset(labelled)), problems


def _record(
    file: str, line: int, cells: list[object], header: _Header, problems: list[Problem]
) -> Record | None:
    """The cells of one line by column name; None for a blank line."""
    if all(is_blank(cell) for cell in cells):
        return None
    values: dict[str, object] = {}
    for position, cell in enumerate(cells):
        if position in header.columns:
            values[header.columns[position]] = cell
        elif position not in header.labelled and not is_blank(cell):
            problems.append(
                Problem(file, line, None, f"value {cell!r} in column {position + 1}, which has no header")
            )
    return Record(line, values)


def read_records(
    path: Path,
    required: Sequence[str],
    optional: Sequence[str],
    problems: list[Problem],
    error: type[TableFileError],
    *,
    strict_header: bool = False,
) -> list[Record]:
    """Every non-blank data line of ``path``, with its line number.

    Parameters
    ----------
    path : Path
        A ``.csv``, ``.xlsx`` or ``.xlsm`` file (see the module docstring).
    required, optional : sequence of str
        The lower-case column names the header must and may have.
    problems : list of Problem
        Receives the problems of the header and of values without a header.
    error : type of TableFileError
        What to raise when the file cannot be read on.
    strict_header : bool
        Raise at once on any header problem; otherwise only when a required column
        is missing, so that the lines are still checked (and their problems listed).

    Raises
    ------
    TableFileError
        Of type ``error``: the file is unreadable, empty, of another type, or its
        header unusable; with the problems collected so far.
    """
    file = str(path)
    records: list[Record] = []
    header: _Header | None = None
    try:
        for line, cells in _lines(path):
            if header is None:
                header, header_problems = _read_header(file, cells, required, optional)
                problems.extend(header_problems)
                if (strict_header and header_problems) or not set(required) <= set(header.columns.values()):
                    raise error(problems)  # rows cannot be read without them
                continue
            record = _record(file, line, cells, header, problems)
            if record is not None:
                records.append(record)
    except _Unreadable as exc:
        raise error([*problems, Problem(file, exc.line, None, exc.message)]) from None
    except OSError as exc:
        raise error([Problem(file, 0, None, f"cannot read: {exc.strerror or exc}")]) from None
    if header is None:
        raise error([Problem(file, 1, None, "empty file: no header line")])
    return records


# --- typed values from cells --------------------------------------------------------------


def as_text(cell: object) -> str:
    """A cell as stripped text; XLSX numbers without their '.0' (3120.0 → '3120')."""
    if cell is None:
        return ""
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))
    return str(cell).strip()


@dataclass(slots=True)
class Fields:
    """Typed access to one record's cells; every bad value becomes a :class:`Problem`."""

    file: str
    record: Record
    problems: list[Problem]
    found: int = field(default=0)

    @property
    def ok(self) -> bool:
        """True while no cell of this record was bad."""
        return self.found == 0

    def problem(self, column: str | None, message: str) -> None:
        self.problems.append(Problem(self.file, self.record.line, column, message))
        self.found += 1

    def text(self, column: str) -> str:
        """The cell as text, '' when empty."""
        return as_text(self.record.cells.get(column))

    def required(self, column: str) -> str:
        value = self.text(column)
        if not value:
            self.problem(column, "value is required")
        return value

    def code(self, column: str, pattern: re.Pattern[str], allowed: str) -> str:
        value = self.required(column)
        if value and not pattern.fullmatch(value):
            self.problem(column, f"{value!r} may contain only {allowed}")
        return value

    def number(self, column: str, *, required: bool = False, allow_zero: bool = False) -> float | None:
        """A finite number > 0 (>= 0 with ``allow_zero``); None when the cell is empty.

        An empty cell is a problem when ``required``.
        """
        cell = self.record.cells.get(column)
        if is_blank(cell):
            if required:
                self.problem(column, "value is required")
            return None
        if isinstance(cell, bool) or not isinstance(cell, int | float | str):
            self.problem(column, f"{cell!r} is not a number")
            return None
        try:
            value = float(cell)
        except ValueError:
            self.problem(column, f"{cell!r} is not a number")
            return None
        if not math.isfinite(value):
            self.problem(column, f"{cell!r} is not a finite number")
            return None
        if value < 0 or (value == 0 and not allow_zero):
            bound = "0 or more" if allow_zero else "greater than 0"
            self.problem(column, f"must be {bound}, got {as_text(cell)}")
            return None
        return value
