"""Economics rows written to PostgreSQL (migration 0008): all or nothing, revisions kept.

The storage half of ``parkenergy import value-added | deflators | baseline | output``;
the rows come checked from :mod:`analytics.economics_file`. Each import runs in one
transaction under an advisory lock: every enterprise code must exist (else
:class:`EconomicsFileError` naming each line, and nothing is written); a value that
differs from the stored one replaces it, and the previous value is written to
``economics.revision`` with who and when. Identical values are left alone.

A baseline file states the whole base year of each enterprise it names: a carrier
stored for that enterprise and year but absent from the file is removed (and the
removal recorded).
"""

from __future__ import annotations

import getpass
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import psycopg
from psycopg import sql

from analytics.economics_file import (
    BaselineRow,
    DeflatorRow,
    EconomicsFileError,
    OutputRow,
    Problem,
    ValueAddedRow,
)

__all__ = [
    "ImportSummary",
    "store_baseline",
    "store_deflators",
    "store_output",
    "store_value_added",
]

log = logging.getLogger(__name__)

Connection = psycopg.Connection[Any]
_LOCK_KEY = 0x65636F6E  # "econ": one economics import at a time


@dataclass(frozen=True, slots=True)
class ImportSummary:
    """What one import did: new keys, revised values, unchanged ones and removed ones."""

    dataset: str
    inserted: int
    revised: int
    unchanged: int
    removed: int = 0

    def __str__(self) -> str:
        removed = f", {self.removed} removed" if self.removed else ""
        return (
            f"{self.dataset}: {self.inserted} inserted, {self.revised} revised, "
            f"{self.unchanged} unchanged{removed}"
        )


@dataclass(frozen=True, slots=True)
class _Table:
    dataset: str
    name: str
    keys: tuple[str, ...]
    values: tuple[str, ...]


_VALUE_ADDED = _Table(
    "value_added", "value_added", ("enterprise_id", "period"), ("value_added_10k_yuan", "price_index_2022")
)
_DEFLATOR = _Table("deflator", "deflator", ("industry_code", "year"), ("price_index_2022",))
_BASELINE = _Table(
    "baseline",
    "baseline",
    ("enterprise_id", "year", "carrier"),
    ("unit", "consumption", "feedstock", "non_fossil"),
)
_BASELINE_VA = _Table(
    "baseline_value_added", "baseline_value_added", ("enterprise_id", "year"), ("value_added_10k_yuan",)
)
_OUTPUT = _Table("output", "output", ("enterprise_id", "period", "product"), ("quantity", "unit"))


def _enterprise_ids(conn: Connection, rows: Sequence[Any]) -> dict[str, int]:
    """Ids of the rows' enterprise codes; an unknown code is a problem on each of its lines."""
    codes = sorted({r.enterprise_code for r in rows})
    found = {
        str(code): int(eid)
        for code, eid in conn.execute(
            "SELECT enterprise_code, enterprise_id FROM registry.enterprise WHERE enterprise_code = ANY(%s)",
            (codes,),
        )
    }
    problems = [
        Problem(
            r.file,
            r.line,
            "enterprise_code",
            f"unknown enterprise {r.enterprise_code!r} (load the registry first)",
        )
        for r in rows
        if r.enterprise_code not in found
    ]
    if problems:
        raise EconomicsFileError(problems)
    return found


def _jsonable(value: object) -> object:
    return value.isoformat() if isinstance(value, date) else value


def _upsert(
    conn: Connection,
    table: _Table,
    rows: Sequence[Mapping[str, object]],
    source_file: str,
    changed_by: str,
    *,
    replace_scope: tuple[str, ...] | None = None,
) -> ImportSummary:
    """Insert new keys, revise changed values (with history), keep identical ones.

    ``replace_scope``: key columns whose every stored row not in ``rows`` is removed
    (the rows' values of those columns delimit what the file states completely).
    """
    ident = sql.Identifier("economics", table.name)
    columns = (*table.keys, *table.values)
    existing: dict[tuple[object, ...], tuple[tuple[object, ...], int]] = {}
    query = sql.SQL("SELECT {}, revision FROM {}").format(
        sql.SQL(", ").join(map(sql.Identifier, columns)), ident
    )
    for record in conn.execute(query):
        key = tuple(record[: len(table.keys)])
        existing[key] = (tuple(record[len(table.keys) : len(columns)]), int(record[-1]))
    inserts: list[tuple[object, ...]] = []
    revisions: list[tuple[object, ...]] = []
    history: list[tuple[object, ...]] = []
    unchanged = 0
    seen: set[tuple[object, ...]] = set()
    for row in rows:
        key = tuple(row[k] for k in table.keys)
        values = tuple(row[v] for v in table.values)
        seen.add(key)
        old = existing.get(key)
        if old is None:
            inserts.append((*key, *values, 1))
        elif old[0] == values:
            unchanged += 1
        else:
            revisions.append((*key, *values, old[1] + 1))
            history.append(
                _history(table, key, old[0], values, source_file=source_file, changed_by=changed_by)
            )
    removed: list[tuple[object, ...]] = []
    if replace_scope is not None:
        positions = [table.keys.index(c) for c in replace_scope]
        scopes = {tuple(k[p] for p in positions) for k in seen}
        for key, (values, _revision) in existing.items():
            if key not in seen and tuple(key[p] for p in positions) in scopes:
                removed.append(key)
                history.append(
                    _history(table, key, values, None, source_file=source_file, changed_by=changed_by)
                )
    upsert = sql.SQL(
        "INSERT INTO {t} ({cols}, revision, source_file, imported_by) VALUES ({ph}, %s, %s, %s)"
        " ON CONFLICT ({keys}) DO UPDATE SET {sets}, revision = EXCLUDED.revision,"
        " source_file = EXCLUDED.source_file, imported_at = now(), imported_by = EXCLUDED.imported_by"
    ).format(
        t=ident,
        cols=sql.SQL(", ").join(map(sql.Identifier, columns)),
        ph=sql.SQL(", ").join(sql.Placeholder() * len(columns)),
        keys=sql.SQL(", ").join(map(sql.Identifier, table.keys)),
        sets=sql.SQL(", ").join(
            sql.SQL("{c} = EXCLUDED.{c}").format(c=sql.Identifier(v)) for v in table.values
        ),
    )
    with conn.cursor() as cur:
        if inserts or revisions:
            cur.executemany(upsert, [(*r, source_file, changed_by) for r in (*inserts, *revisions)])
        if removed:
            delete = sql.SQL("DELETE FROM {} WHERE ({}) = ({})").format(
                ident,
                sql.SQL(", ").join(map(sql.Identifier, table.keys)),
                sql.SQL(", ").join(sql.Placeholder() * len(table.keys)),
            )
            cur.executemany(delete, removed)
        if history:
            cur.executemany(
                "INSERT INTO economics.revision (dataset, key, previous, new, source_file, changed_by)"
                " VALUES (%s, %s, %s, %s, %s, %s)",
                history,
            )
    return ImportSummary(table.dataset, len(inserts), len(revisions), unchanged, len(removed))


def _history(
    table: _Table,
    key: tuple[object, ...],
    previous: tuple[object, ...],
    new: tuple[object, ...] | None,
    *,
    source_file: str,
    changed_by: str,
) -> tuple[object, ...]:
    def as_json(values: tuple[object, ...], names: tuple[str, ...]) -> str:
        return json.dumps({n: _jsonable(v) for n, v in zip(names, values, strict=True)}, ensure_ascii=False)

    return (
        table.dataset,
        as_json(key, table.keys),
        as_json(previous, table.values),
        None if new is None else as_json(new, table.values),
        source_file,
        changed_by,
    )


def _begin(conn: Connection) -> None:
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))


def _who(changed_by: str | None) -> str:
    return changed_by or getpass.getuser()


def _columns(table: _Table, rows: Sequence[Any], ids: Mapping[str, int]) -> list[dict[str, object]]:
    """The table's columns of each row: same-named attributes, ``enterprise_id`` by enterprise code."""
    return [
        {
            c: ids[r.enterprise_code] if c == "enterprise_id" else getattr(r, c)
            for c in (*table.keys, *table.values)
        }
        for r in rows
    ]


def _store(conn: Connection, table: _Table, rows: Sequence[Any], changed_by: str | None) -> ImportSummary:
    """Import the rows of one table (one transaction)."""
    with conn.transaction():
        _begin(conn)
        ids = _enterprise_ids(conn, rows) if "enterprise_id" in table.keys else {}
        summary = _upsert(conn, table, _columns(table, rows, ids), _source(rows), _who(changed_by))
    log.info("%s", summary)
    return summary


def store_value_added(
    conn: Connection, rows: Sequence[ValueAddedRow], changed_by: str | None = None
) -> ImportSummary:
    """Import monthly value added (one transaction).

    Raises :class:`EconomicsFileError` naming each line of an unknown enterprise.
    """
    return _store(conn, _VALUE_ADDED, rows, changed_by)


def store_deflators(
    conn: Connection, rows: Sequence[DeflatorRow], changed_by: str | None = None
) -> ImportSummary:
    """Import industry deflators (one transaction)."""
    return _store(conn, _DEFLATOR, rows, changed_by)


def store_baseline(
    conn: Connection, rows: Sequence[BaselineRow], changed_by: str | None = None
) -> tuple[ImportSummary, ImportSummary]:
    """Import base-year statistics (one transaction): energy by carrier, and value added.

    Returns the summaries of the energy lines and of the enterprises' value added.
    """
    with conn.transaction():
        _begin(conn)
        ids = _enterprise_ids(conn, rows)
        who, source = _who(changed_by), _source(rows)
        energy = _columns(_BASELINE, rows, ids)
        # One value added per enterprise and year (the file repeats it on every carrier's line).
        va = {(v["enterprise_id"], v["year"]): v for v in _columns(_BASELINE_VA, rows, ids)}
        energy_summary = _upsert(
            conn, _BASELINE, energy, source, who, replace_scope=("enterprise_id", "year")
        )
        va_summary = _upsert(conn, _BASELINE_VA, list(va.values()), source, who)
    log.info("%s; %s", energy_summary, va_summary)
    return energy_summary, va_summary


def store_output(conn: Connection, rows: Sequence[OutputRow], changed_by: str | None = None) -> ImportSummary:
    """Import monthly product output (one transaction).

    Raises :class:`EconomicsFileError` naming each line of an unknown enterprise.
    """
    return _store(conn, _OUTPUT, rows, changed_by)


def _source(rows: Sequence[Any]) -> str:
    return str(rows[0].file) if rows else ""
