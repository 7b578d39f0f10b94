"""The registry and meter events written to PostgreSQL: upserts, all or nothing.

The storage half of ``parkenergy registry load`` / ``events`` / ``list``; the rows
come checked from :mod:`parkdata.registry_file`. Each load runs in one
transaction: rows are staged in temporary tables (one statement per table, whatever
the number of rows), checked against what the database holds, then upserted.
Any problem raises :class:`RegistryLoadError` and nothing is written. Nothing is
ever deleted: a meter absent from a file stays as it is.

Rules that need the database, besides those of :mod:`parkdata.registry_file`:

- A parent meter must be in the file or already in the database (same enterprise,
  same carrier), and parents must not form a cycle.
- A meter that has readings keeps its carrier, unit and kind: raw readings are
  stored in the meter's unit (``ingest.reading``), so changing them would silently
  reinterpret history. Register a new meter code instead.
- A meter's multiplier is its *current* multiplier. Once the meter has readings or
  multiplier_change events, the registry file may not change it; a
  multiplier_change event does, so the history stays explained.
- Loading a multiplier_change event sets ``registry.meter.multiplier`` to the
  ``new_multiplier`` of the meter's latest multiplier_change event that is already
  in effect (``effective_at <= now()``); an older event loaded later, or one dated
  in the future, leaves it alone. History before an event is read from the events.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import class_row

from parkdata.registry_file import MeterEventRow, Problem, RegistryFile, RegistryFileError

__all__ = [
    "EventLoadSummary",
    "LoadSummary",
    "MeterListing",
    "RegistryLoadError",
    "UpsertCounts",
    "list_meters",
    "store_meter_events",
    "store_registry",
]

Connection = psycopg.Connection[Any]

_LOCK_KEY = 0x72656769  # "regi": one registry load at a time, so the counts are exact


class RegistryLoadError(RegistryFileError):
    """The file is well-formed but disagrees with what the database holds."""


@dataclass(frozen=True, slots=True)
class UpsertCounts:
    """Rows of one table: new, changed, or already stored exactly so."""

    inserted: int
    updated: int
    unchanged: int

    def __str__(self) -> str:
        return f"{self.inserted} inserted, {self.updated} updated, {self.unchanged} unchanged"


@dataclass(frozen=True, slots=True)
class LoadSummary:
    """What :func:`store_registry` did to each registry table."""

    parks: UpsertCounts
    enterprises: UpsertCounts
    meters: UpsertCounts

    def __str__(self) -> str:
        return f"parks: {self.parks}; enterprises: {self.enterprises}; meters: {self.meters}"


@dataclass(frozen=True, slots=True)
class EventLoadSummary:
    """What :func:`store_meter_events` did.

    ``multipliers_set`` counts meters whose current multiplier the events changed.
    """

    events: UpsertCounts
    multipliers_set: int

    def __str__(self) -> str:
        return f"meter events: {self.events}; current multipliers changed: {self.multipliers_set}"


@dataclass(frozen=True, slots=True)
class MeterListing:
    """One meter with its enterprise and park, as ``parkenergy registry list`` shows it.

    ``rated_capacity_per_h`` is in [unit/h] (gauges: [unit]); ``expected_interval_s`` in [s].
    """

    park_code: str
    park_name: str
    enterprise_code: str
    enterprise_name: str
    industry_code: str
    key_energy_unit: bool
    meter_code: str
    carrier: str
    unit: str
    kind: str
    purpose: str
    multiplier: float
    rollover: float | None
    expected_interval_s: int | None
    rated_capacity_per_h: float | None
    parent_meter_code: str | None
    retired_at: datetime | None

    def as_dict(self) -> dict[str, object]:
        """The fields by name, for tables and JSON lines."""
        return asdict(self)


# --- generic staging and upsert -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Target:
    """A registry table, its key, the columns a load sets, and the rows a load wants.

    ``want`` is a query with the key, value and compared columns; ``current`` the
    same columns as stored (defaults to the table itself). ``compared`` columns count
    in the classification but are written by a statement of their own.
    """

    table: sql.Composable
    keys: tuple[str, ...]
    values: tuple[str, ...]
    want: sql.Composable
    current: sql.Composable | None = None
    compared: tuple[str, ...] = ()
    touched: str = "updated_at"


def _columns(prefix: str, names: Sequence[str]) -> sql.Composable:
    return sql.SQL(", ").join(sql.Identifier(prefix, name) for name in names)


def _stage(
    conn: Connection, name: str, columns: Sequence[tuple[str, str]], rows: Sequence[Sequence[object]]
) -> None:
    """Hold ``rows`` in the temporary table ``name`` (dropped at commit), in one statement.

    ``columns`` are (name, PostgreSQL type) pairs; each column travels as one array.
    """
    table = sql.Identifier(name)
    conn.execute(sql.SQL("DROP TABLE IF EXISTS pg_temp.{}").format(table))
    arrays = sql.SQL(", ").join(
        sql.SQL("{}::{}[]").format(sql.Placeholder(), sql.Identifier(pg_type)) for _, pg_type in columns
    )
    names = sql.SQL(", ").join(sql.Identifier(column) for column, _ in columns)
    conn.execute(
        sql.SQL("CREATE TEMP TABLE {} ON COMMIT DROP AS SELECT * FROM unnest({}) AS s({})").format(
            table, arrays, names
        ),
        [[row[i] for row in rows] for i in range(len(columns))],
    )
    conn.execute(sql.SQL("ANALYZE {}").format(table))


def _classify(conn: Connection, target: _Target) -> UpsertCounts:
    """Count the wanted rows that are new, different from, or equal to the stored ones."""
    current = target.current
    if current is None:
        current = sql.SQL("SELECT * FROM {}").format(target.table)
    compared = (*target.values, *target.compared)
    differs = sql.SQL("({}) IS DISTINCT FROM ({})").format(_columns("c", compared), _columns("w", compared))
    query = sql.SQL(
        "SELECT count(*) FILTER (WHERE c.{key} IS NULL),"
        " count(*) FILTER (WHERE c.{key} IS NOT NULL AND {differs}),"
        " count(*) FILTER (WHERE c.{key} IS NOT NULL AND NOT {differs})"
        " FROM ({want}) AS w LEFT JOIN ({current}) AS c USING ({keys})"
    ).format(
        key=sql.Identifier(target.keys[0]),
        differs=differs,
        want=target.want,
        current=current,
        keys=sql.SQL(", ").join(map(sql.Identifier, target.keys)),
    )
    row = conn.execute(query).fetchone()
    assert row is not None  # an aggregate always returns one row
    return UpsertCounts(int(row[0]), int(row[1]), int(row[2]))


def _upsert(conn: Connection, target: _Target) -> None:
    """Insert new rows, update changed ones (values and the touched time), leave equal ones."""
    values = target.values
    every = (*target.keys, *values)
    excluded = _columns("excluded", values)
    query = sql.SQL(
        "INSERT INTO {table} AS t ({every}) SELECT {every} FROM ({want}) AS w"
        " ON CONFLICT ({keys}) DO UPDATE SET ({set}) = ROW({excluded}), {touched} = now()"
        " WHERE ({stored}) IS DISTINCT FROM ({excluded})"
    ).format(
        table=target.table,
        every=sql.SQL(", ").join(map(sql.Identifier, every)),
        want=target.want,
        keys=sql.SQL(", ").join(map(sql.Identifier, target.keys)),
        set=sql.SQL(", ").join(map(sql.Identifier, values)),
        excluded=excluded,
        touched=sql.Identifier(target.touched),
        stored=_columns("t", values),
    )
    conn.execute(query)


def _apply(conn: Connection, target: _Target) -> UpsertCounts:
    """Classify, then upsert only when something changes.

    A statement that changes nothing would still bump ``registry.revision`` (its
    trigger is per statement) and make every collector reload the registry.
    """
    counts = _classify(conn, target)
    if counts.inserted or counts.updated:
        _upsert(conn, target)
    return counts


def _problems(conn: Connection, query: sql.SQL | sql.Composed, message: str) -> list[Problem]:
    """One problem per row of ``query``: (file, line, column, *fields of ``message``)."""
    return [
        Problem(str(file), int(line), str(column), message.format(*fields))
        for file, line, column, *fields in conn.execute(query)
    ]


def _fail_on(problems: list[Problem]) -> None:
    if problems:
        raise RegistryLoadError(problems)


# --- the registry -------------------------------------------------------------------------

_PARK = _Target(
    table=sql.SQL("registry.park"),
    keys=("park_code",),
    values=("park_name",),
    want=sql.SQL("SELECT park_code, park_name FROM load_park"),
)

_ENTERPRISE = _Target(
    table=sql.SQL("registry.enterprise"),
    keys=("enterprise_code",),
    values=("enterprise_name", "park_id", "industry_code", "key_energy_unit"),
    # An unstated key_energy_unit keeps the stored flag (False for a new enterprise).
    want=sql.SQL(
        "SELECT s.enterprise_code, s.enterprise_name, p.park_id, s.industry_code,"
        " coalesce(s.key_energy_unit, e.key_energy_unit, false) AS key_energy_unit"
        " FROM load_enterprise s JOIN registry.park p USING (park_code)"
        " LEFT JOIN registry.enterprise e USING (enterprise_code)"
    ),
)

_METER = _Target(
    table=sql.SQL("registry.meter"),
    keys=("enterprise_id", "meter_code"),
    values=(
        "carrier",
        "unit",
        "kind",
        "multiplier",
        "rollover",
        "expected_interval_s",
        "rated_capacity_per_h",
        "purpose",
    ),
    want=sql.SQL(
        "SELECT e.enterprise_id, s.meter_code, s.carrier, s.unit, s.kind, s.multiplier, s.rollover,"
        " s.expected_interval_s, s.rated_capacity_per_h, s.purpose, s.parent_meter_code"
        " FROM load_meter s JOIN registry.enterprise e USING (enterprise_code)"
    ),
    # Parents compare by code (a parent may be a meter this load inserts) and are
    # set by _SET_PARENTS once every meter of the load exists.
    compared=("parent_meter_code",),
    current=sql.SQL(
        "SELECT m.*, pm.meter_code AS parent_meter_code FROM registry.meter m"
        " LEFT JOIN registry.meter pm ON pm.meter_id = m.parent_meter_id"
    ),
)

_SET_PARENTS = sql.SQL(
    "UPDATE registry.meter AS m SET parent_meter_id = pm.meter_id, updated_at = now()"
    " FROM load_meter s JOIN registry.enterprise e USING (enterprise_code)"
    " LEFT JOIN registry.meter pm ON pm.enterprise_id = e.enterprise_id"
    " AND pm.meter_code = s.parent_meter_code"
    " WHERE m.enterprise_id = e.enterprise_id AND m.meter_code = s.meter_code"
    " AND m.parent_meter_id IS DISTINCT FROM pm.meter_id"
)

# Staged meters that are already stored, each with its stored row; used by the checks below.
_STAGED_AND_STORED = sql.SQL(
    " FROM load_meter s JOIN registry.enterprise e USING (enterprise_code)"
    " JOIN registry.meter m ON m.enterprise_id = e.enterprise_id AND m.meter_code = s.meter_code"
)

_MISSING_PARENTS = sql.SQL(
    "SELECT s.file, s.line, 'parent_meter_code', s.parent_meter_code, s.enterprise_code"
    " FROM load_meter s WHERE s.parent_meter_code IS NOT NULL"
    " AND NOT EXISTS (SELECT FROM load_meter f"
    "  WHERE f.enterprise_code = s.enterprise_code AND f.meter_code = s.parent_meter_code)"
    " AND NOT EXISTS (SELECT FROM registry.meter pm JOIN registry.enterprise pe USING (enterprise_id)"
    "  WHERE pe.enterprise_code = s.enterprise_code AND pm.meter_code = s.parent_meter_code)"
)

_STORED_PARENT_CARRIER = sql.SQL(
    "SELECT s.file, s.line, 'parent_meter_code', s.parent_meter_code, pm.carrier, s.carrier"
    " FROM load_meter s JOIN registry.enterprise e USING (enterprise_code)"
    " JOIN registry.meter pm ON pm.enterprise_id = e.enterprise_id AND pm.meter_code = s.parent_meter_code"
    " WHERE pm.carrier <> s.carrier AND NOT EXISTS (SELECT FROM load_meter f"
    "  WHERE f.enterprise_code = s.enterprise_code AND f.meter_code = s.parent_meter_code)"
)

_READINGS = sql.SQL("EXISTS (SELECT FROM ingest.reading r WHERE r.meter_id = m.meter_id)")

_CHANGED_WITH_READINGS = sql.SQL(
    "SELECT s.file, s.line, col.name, col.stored, col.wanted"
    "{staged}"
    " CROSS JOIN LATERAL (VALUES ('carrier', m.carrier, s.carrier), ('unit', m.unit, s.unit),"
    "  ('kind', m.kind, s.kind)) AS col(name, stored, wanted)"
    " WHERE col.stored <> col.wanted AND {readings}"
).format(staged=_STAGED_AND_STORED, readings=_READINGS)

_MULTIPLIER_WITH_HISTORY = sql.SQL(
    "SELECT s.file, s.line, 'multiplier', m.multiplier, s.multiplier"
    "{staged}"
    " WHERE m.multiplier <> s.multiplier AND ({readings} OR EXISTS (SELECT FROM registry.meter_event ev"
    "  WHERE ev.meter_id = m.meter_id AND ev.event_type = 'multiplier_change'))"
).format(staged=_STAGED_AND_STORED, readings=_READINGS)

# Parent chains walked from every loaded meter; a chain that comes back to its start
# is a cycle (any new cycle goes through a meter of this load).
_PARENT_CYCLES = sql.SQL(
    "WITH RECURSIVE walk(start_id, meter_id, path) AS ("
    " SELECT m.meter_id, m.parent_meter_id, ARRAY[m.meter_id]"
    "{staged} WHERE m.parent_meter_id IS NOT NULL"
    " UNION ALL"
    " SELECT w.start_id, m.parent_meter_id, w.path || m.meter_id"
    " FROM walk w JOIN registry.meter m ON m.meter_id = w.meter_id"
    " WHERE m.parent_meter_id IS NOT NULL AND NOT m.meter_id = ANY(w.path))"
    " SELECT s.file, s.line, 'parent_meter_code', s.meter_code"
    "{staged} JOIN walk w ON w.start_id = m.meter_id AND w.meter_id = m.meter_id"
).format(staged=_STAGED_AND_STORED)


def _stage_registry(conn: Connection, registry: RegistryFile) -> None:
    _stage(
        conn,
        "load_park",
        [("park_code", "text"), ("park_name", "text")],
        [(p.park_code, p.park_name) for p in registry.parks],
    )
    _stage(
        conn,
        "load_enterprise",
        [
            ("enterprise_code", "text"),
            ("enterprise_name", "text"),
            ("park_code", "text"),
            ("industry_code", "text"),
            ("key_energy_unit", "bool"),
        ],
        [
            (e.enterprise_code, e.enterprise_name, e.park_code, e.industry_code, e.key_energy_unit)
            for e in registry.enterprises
        ],
    )
    _stage(
        conn,
        "load_meter",
        [
            ("file", "text"),
            ("line", "int4"),
            ("enterprise_code", "text"),
            ("meter_code", "text"),
            ("carrier", "text"),
            ("unit", "text"),
            ("kind", "text"),
            ("multiplier", "float8"),
            ("rollover", "float8"),
            ("expected_interval_s", "int4"),
            ("rated_capacity_per_h", "float8"),
            ("purpose", "text"),
            ("parent_meter_code", "text"),
        ],
        [
            (
                m.file,
                m.line,
                m.enterprise_code,
                m.meter_code,
                m.carrier,
                m.unit,
                m.kind.value,
                m.multiplier,
                m.rollover,
                m.expected_interval_s,
                m.rated_capacity_per_h,
                m.purpose.value,
                m.parent_meter_code,
            )
            for m in registry.meters
        ],
    )


def _meter_problems(conn: Connection) -> list[Problem]:
    """What the staged meters get wrong about the stored registry (before any meter is written)."""
    return [
        *_problems(
            conn, _MISSING_PARENTS, "parent meter {0!r} of enterprise {1} is neither in the file nor stored"
        ),
        *_problems(conn, _STORED_PARENT_CARRIER, "stored parent {0} measures {1}, this meter {2}"),
        *_problems(
            conn,
            _CHANGED_WITH_READINGS,
            "the meter has readings, so {0!r} cannot become {1!r}; register a new meter code instead",
        ),
        *_problems(
            conn,
            _MULTIPLIER_WITH_HISTORY,
            "the meter has readings or multiplier events, so its multiplier {0:g} cannot become {1:g} "
            "here; load a multiplier_change event instead",
        ),
    ]


def store_registry(conn: Connection, registry: RegistryFile) -> LoadSummary:
    """Upsert the parks, enterprises and meters of ``registry``, all or nothing.

    Parameters
    ----------
    conn : psycopg.Connection
        Committed on success when it was idle; inside a transaction the caller
        already opened, the load is a savepoint of it.
    registry : RegistryFile
        Rows from :func:`parkdata.registry_file.read_registry_file`.

    Returns
    -------
    LoadSummary
        Per table, how many rows were inserted, updated and left unchanged.

    Raises
    ------
    RegistryLoadError
        With every row that disagrees with the stored registry; nothing is written.
    """
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        _stage_registry(conn, registry)
        parks = _apply(conn, _PARK)
        enterprises = _apply(conn, _ENTERPRISE)
        _fail_on(_meter_problems(conn))
        meters = _apply(conn, _METER)
        if meters.inserted or meters.updated:
            conn.execute(_SET_PARENTS)
            _fail_on(_problems(conn, _PARENT_CYCLES, "meter {0} is its own ancestor through its parents"))
    return LoadSummary(parks, enterprises, meters)


# --- meter events -------------------------------------------------------------------------

_EVENT = _Target(
    table=sql.SQL("registry.meter_event"),
    keys=("meter_id", "event_type", "effective_at"),
    values=("final_register", "initial_register", "new_multiplier", "note"),
    want=sql.SQL(
        "SELECT m.meter_id, s.event_type, s.effective_at, s.final_register, s.initial_register,"
        " s.new_multiplier, s.note"
        " FROM load_meter_event s JOIN registry.enterprise e USING (enterprise_code)"
        " JOIN registry.meter m ON m.enterprise_id = e.enterprise_id AND m.meter_code = s.meter_code"
    ),
    touched="recorded_at",
)

_UNKNOWN_EVENT_METERS = sql.SQL(
    "SELECT s.file, s.line, 'meter_code', s.meter_code, s.enterprise_code"
    " FROM load_meter_event s LEFT JOIN registry.enterprise e USING (enterprise_code)"
    " LEFT JOIN registry.meter m ON m.enterprise_id = e.enterprise_id AND m.meter_code = s.meter_code"
    " WHERE m.meter_id IS NULL"
)

# Meters of this load whose current multiplier differs from their latest multiplier_change
# event already in effect.
_STALE_MULTIPLIERS = sql.SQL(
    "SELECT m.meter_id, latest.new_multiplier FROM registry.meter m"
    " JOIN (SELECT DISTINCT ON (ev.meter_id) ev.meter_id, ev.new_multiplier"
    "  FROM registry.meter_event ev"
    "  WHERE ev.event_type = 'multiplier_change' AND ev.effective_at <= now()"
    "  AND ev.meter_id IN (SELECT w.meter_id FROM ({want}) AS w)"
    "  ORDER BY ev.meter_id, ev.effective_at DESC) AS latest USING (meter_id)"
    " WHERE m.multiplier <> latest.new_multiplier"
).format(want=_EVENT.want)

_SET_MULTIPLIERS = sql.SQL(
    "UPDATE registry.meter AS m SET multiplier = stale.new_multiplier, updated_at = now()"
    " FROM ({stale}) AS stale WHERE m.meter_id = stale.meter_id"
).format(stale=_STALE_MULTIPLIERS)


def _sync_multipliers(conn: Connection) -> int:
    """Set each loaded meter's multiplier to its latest multiplier_change in effect; how many changed."""
    stale = conn.execute(sql.SQL("SELECT EXISTS ({})").format(_STALE_MULTIPLIERS)).fetchone()
    if stale != (True,):
        return 0  # no UPDATE: it would bump registry.revision for nothing
    return conn.execute(_SET_MULTIPLIERS).rowcount


def _stage_events(conn: Connection, rows: Sequence[MeterEventRow]) -> None:
    _stage(
        conn,
        "load_meter_event",
        [
            ("file", "text"),
            ("line", "int4"),
            ("enterprise_code", "text"),
            ("meter_code", "text"),
            ("event_type", "text"),
            ("effective_at", "timestamptz"),
            ("final_register", "float8"),
            ("initial_register", "float8"),
            ("new_multiplier", "float8"),
            ("note", "text"),
        ],
        [
            (
                r.file,
                r.line,
                r.enterprise_code,
                r.meter_code,
                r.event_type.value,
                r.effective_at,
                r.final_register,
                r.initial_register,
                r.new_multiplier,
                r.note,
            )
            for r in rows
        ],
    )


def store_meter_events(conn: Connection, rows: Sequence[MeterEventRow]) -> EventLoadSummary:
    """Upsert meter events on (meter, event type, effective time), all or nothing.

    Parameters
    ----------
    conn : psycopg.Connection
        As for :func:`store_registry`.
    rows : sequence of MeterEventRow
        Rows from :func:`parkdata.registry_file.read_meter_events_file`.

    Returns
    -------
    EventLoadSummary
        Events inserted, updated and unchanged; meters whose current multiplier changed
        (see the module docstring for the rule).

    Raises
    ------
    RegistryLoadError
        With every row whose meter is not in the registry; nothing is written.
    """
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        _stage_events(conn, rows)
        _fail_on(_problems(conn, _UNKNOWN_EVENT_METERS, "meter {0} of enterprise {1} is not in the registry"))
        events = _apply(conn, _EVENT)
        multipliers_set = _sync_multipliers(conn)
    return EventLoadSummary(events, multipliers_set)


# --- listing ------------------------------------------------------------------------------

_LIST_METERS = sql.SQL(
    "SELECT p.park_code, p.park_name, e.enterprise_code, e.enterprise_name, e.industry_code,"
    " e.key_energy_unit, m.meter_code, m.carrier, m.unit, m.kind, m.purpose, m.multiplier,"
    " m.rollover, m.expected_interval_s, m.rated_capacity_per_h,"
    " pm.meter_code AS parent_meter_code, m.retired_at"
    " FROM registry.meter m JOIN registry.enterprise e USING (enterprise_id)"
    " JOIN registry.park p USING (park_id)"
    " LEFT JOIN registry.meter pm ON pm.meter_id = m.parent_meter_id"
    " WHERE (%(park)s::text IS NULL OR p.park_code = %(park)s)"
    " AND (%(enterprise)s::text IS NULL OR e.enterprise_code = %(enterprise)s)"
    " ORDER BY p.park_code, e.enterprise_code, m.meter_code"
)


def list_meters(
    conn: Connection, park_code: str | None = None, enterprise_code: str | None = None
) -> list[MeterListing]:
    """The stored meters, optionally of one park and/or one enterprise, ordered by codes."""
    with conn.cursor(row_factory=class_row(MeterListing)) as cur:
        return cur.execute(_LIST_METERS, {"park": park_code, "enterprise": enterprise_code}).fetchall()
