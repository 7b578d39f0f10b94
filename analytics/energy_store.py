"""Interval energy in PostgreSQL: read raw readings, write ``analytics.energy_15min``, roll up.

The storage half of the ``energy`` job (docs/energy.md); the arithmetic is
:mod:`analytics.intervals`. One run:

1. finds the work: readings *received* since the arrival watermark (late readings
   included, whatever their time; DOMAIN.md §8 "late data must recompute the affected
   buckets") and the dirty ranges that registry changes and forced recomputes left in
   ``analytics.energy_dirty``;
2. for each meter and range, reads the readings of the range with enough context on both
   sides for the persistence rules, recomputes, and replaces the 15-minute buckets of the
   range: the cost follows the new data, not the history;
3. gives silent meters coverage-0 rows up to the run time (:func:`fill_silent`, when the
   job passes ``silent_until``), then rolls the touched buckets up to hour, day and month
   (Asia/Shanghai calendar): tables without TimescaleDB, a refresh of the continuous aggregates with it;
4. counts the readings received in [old watermark, new watermark) into
   ``analytics.arrival_hour`` / ``arrival_day`` (:data:`_COUNT_ARRIVALS`), advances the
   watermark and deletes the claimed dirty ranges, in one transaction.

Every step is idempotent: a crash before step 4 only means the next run does it again, and
the arrival counts move only with the watermark, so each reading is counted exactly once.

Steps 3 and 4 are one transaction. On a large run (:data:`PARALLEL_ARRIVALS`) it runs on a
second connection, counting the arrivals and rolling up each meter's committed ranges while
step 2 goes on with the next meters (:func:`_closing`); it still commits last.
"""

from __future__ import annotations

import logging
import math
import struct
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from queue import Empty, SimpleQueue
from typing import Any

import numpy as np
import psycopg
from psycopg import sql

from analytics.intervals import (
    BUCKET_S,
    PERSIST_READINGS,
    PERSIST_S,
    BucketEnergy,
    MeterSpec,
    MultiplierChange,
    Replacement,
    meter_buckets,
)

__all__ = [
    "EnergyRunSummary",
    "MeterEnergy",
    "count_arrivals",
    "energy_timescaledb",
    "fill_silent",
    "load_meters",
    "mark_dirty",
    "run_energy",
]

log = logging.getLogger(__name__)

Connection = psycopg.Connection[Any]
Progress = Callable[[int, int], None]

# A reading's received_at is the start of the transaction that inserted it (now()), which
# may commit after a run started. So the new watermark is the run's start or the start of
# the oldest client transaction still writing in this database, whichever is earlier (sessions of
# other roles are visible in pg_stat_activity to members of pg_read_all_stats; docs/energy.md).
# Autovacuum's ANALYZE also holds a transaction id (it writes pg_statistic) but never inserts
# readings: counting it would hold the watermark back and leave the readings it overlaps for a
# later run.
_UNTIL = """
SELECT least(now(), (SELECT min(xact_start) FROM pg_stat_activity
                     WHERE backend_xid IS NOT NULL AND pid <> pg_backend_pid()
                       AND datname = current_database() AND backend_type = 'client backend'))
"""
_VALUES_CHUNK = 200  # rows per multi-row VALUES insert where COPY is not available
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_PG_EPOCH_S = 946_684_800  # 2000-01-01 UTC, the origin of PostgreSQL's binary timestamps


@dataclass(frozen=True, slots=True)
class MeterEnergy:
    """One energy meter with its history of events (registry.meter, registry.meter_event)."""

    meter_id: int
    spec: MeterSpec
    replacements: tuple[Replacement, ...]
    multiplier_changes: tuple[MultiplierChange, ...]


@dataclass(frozen=True, slots=True)
class EnergyRunSummary:
    """What one run of the energy job did."""

    meters: int
    ranges: int
    readings: int
    buckets: int
    dirty_claimed: int
    arrivals: int
    timescaledb: bool
    seconds: float

    def __str__(self) -> str:
        return (
            f"energy: {self.meters} meters, {self.ranges} ranges, {self.readings} readings, "
            f"{self.buckets} 15-min buckets written, {self.dirty_claimed} dirty ranges claimed, "
            f"{self.arrivals} arrivals counted "
            f"({'continuous aggregates' if self.timescaledb else 'rollup tables'}) in {self.seconds:.2f} s"
        )


def _epoch_s(ts: datetime) -> float:
    return (ts - _EPOCH).total_seconds()


def _ts(epoch_s: float) -> datetime:
    return _EPOCH + timedelta(seconds=epoch_s)


def energy_timescaledb(conn: Connection) -> bool:
    """Whether ``analytics.energy_hour`` is a continuous aggregate (TimescaleDB path)."""
    row = conn.execute(
        "SELECT EXISTS (SELECT FROM pg_extension WHERE extname = 'timescaledb')"
        " AND to_regclass('timescaledb_information.continuous_aggregates') IS NOT NULL"
    ).fetchone()
    if not row or not row[0]:
        return False
    found = conn.execute(
        "SELECT 1 FROM timescaledb_information.continuous_aggregates"
        " WHERE view_schema = 'analytics' AND view_name = 'energy_hour'"
    ).fetchone()
    return found is not None


def _can_copy(conn: Connection) -> bool:
    """COPY works everywhere but in PGlite (PostgreSQL in WebAssembly, used to test TimescaleDB)."""
    row = conn.execute("SELECT version()").fetchone()
    return row is not None and "emscripten" not in str(row[0]).lower()


_METERS = """
SELECT m.meter_id, m.kind, m.multiplier, m.rollover, m.expected_interval_s, m.rated_capacity_per_h,
       (SELECT l.old_multiplier FROM analytics.meter_multiplier_log l
         WHERE l.meter_id = m.meter_id ORDER BY l.changed_at, l.old_multiplier LIMIT 1)
FROM registry.meter m
WHERE m.kind IN ('register', 'interval') AND m.meter_id = ANY(%s)
"""
_EVENTS = """
SELECT meter_id, event_type, extract(epoch FROM effective_at)::float8, final_register,
       initial_register, new_multiplier, effective_at <= now()
FROM registry.meter_event
WHERE meter_id = ANY(%s) AND event_type IN ('replacement', 'multiplier_change')
ORDER BY meter_id, effective_at
"""


def load_meters(conn: Connection, meter_ids: Iterable[int]) -> dict[int, MeterEnergy]:
    """The energy meters (register and interval kinds) among ``meter_ids``, with their events.

    The multiplier before a meter's first multiplier change is the one the change replaced
    (``analytics.meter_multiplier_log``); without a record, the meter's multiplier if no
    change is in effect yet, else the first change's (history before it is unknown).
    """
    ids = sorted(set(meter_ids))
    replacements: dict[int, list[Replacement]] = {}
    changes: dict[int, list[MultiplierChange]] = {}
    in_effect: dict[int, bool] = {}
    for meter_id, event_type, at_s, final, initial, multiplier, effective in conn.execute(_EVENTS, (ids,)):
        if event_type == "replacement" and final is not None and initial is not None:
            replacements.setdefault(meter_id, []).append(Replacement(at_s, final, initial))
        elif event_type == "multiplier_change" and multiplier is not None:
            changes.setdefault(meter_id, []).append(MultiplierChange(at_s, multiplier))
            in_effect[meter_id] = in_effect.get(meter_id, False) or bool(effective)
    meters: dict[int, MeterEnergy] = {}
    for meter_id, kind, multiplier, rollover, interval_s, capacity, logged in conn.execute(_METERS, (ids,)):
        own = changes.get(meter_id, [])
        if logged is not None:
            base = float(logged)
        elif own and in_effect.get(meter_id, False):
            base = own[0].multiplier
        else:
            base = float(multiplier)
        spec = MeterSpec(kind, base, rollover, interval_s, capacity)
        meters[meter_id] = MeterEnergy(meter_id, spec, tuple(replacements.get(meter_id, [])), tuple(own))
    return meters


# --- reading -------------------------------------------------------------------------

# One statement returns a chunk of readings as one bytea of big-endian float8 pairs (time [s
# since epoch], value), in time order: no per-row work in Python, and the same path with and
# without COPY (PGlite). Chunks of _READ_CHUNK readings keep the bytea far below its 1 GB limit.
_READINGS = sql.SQL(
    "SELECT string_agg(float8send(extract(epoch FROM ts)::float8) || float8send(value), ''::bytea"
    " ORDER BY ts), max(ts), count(*)"
    " FROM (SELECT ts, value FROM ingest.reading"
    " WHERE meter_id = {meter} AND ts >= {lo} AND ts <= {hi} AND ts > {after}"
    " ORDER BY ts LIMIT {limit}) s"
)
_READ_CHUNK = 1_000_000
_PAIR = np.dtype(">f8")


def _readings(
    conn: Connection, meter_id: int, lo: datetime, hi: datetime
) -> tuple[np.ndarray[Any, np.dtype[np.float64]], np.ndarray[Any, np.dtype[np.float64]]]:
    """Times [s since epoch] and values of a meter's readings in [lo, hi], by time."""
    parts: list[np.ndarray[Any, np.dtype[np.float64]]] = []
    after: datetime | None = None
    while True:
        query = _READINGS.format(
            meter=sql.Literal(meter_id),
            lo=sql.Literal(lo),
            hi=sql.Literal(hi),
            after=sql.Literal(after) if after is not None else sql.SQL("'-infinity'"),
            limit=sql.Literal(_READ_CHUNK),
        )
        row = conn.execute(query).fetchone()
        if row is None or not row[2]:
            break
        parts.append(np.frombuffer(bytes(row[0]), dtype=_PAIR).astype(np.float64).reshape(-1, 2))
        if row[2] < _READ_CHUNK:
            break
        after = row[1]
    arr = np.concatenate(parts) if parts else np.empty((0, 2))
    return arr[:, 0].copy(), arr[:, 1].copy()


_NEIGHBOUR = {
    "before": "SELECT min(ts) FROM (SELECT ts FROM ingest.reading"
    " WHERE meter_id = %s AND ts < %s ORDER BY ts DESC LIMIT %s) s",
    "after": "SELECT max(ts) FROM (SELECT ts FROM ingest.reading"
    " WHERE meter_id = %s AND ts > %s ORDER BY ts LIMIT %s) s",
}


def _neighbour(conn: Connection, meter_id: int, ts: datetime, side: str, count: int) -> datetime | None:
    """Time of the ``count``-th reading before/after ``ts`` (the farthest if fewer), or None."""
    row = conn.execute(_NEIGHBOUR[side], (meter_id, ts, count)).fetchone()
    return None if row is None else row[0]


@dataclass(frozen=True, slots=True)
class _Window:
    """Readings read [read_lo, read_hi] and 15-min buckets replaced [write_lo, write_hi)."""

    read_lo: datetime
    read_hi: datetime
    write_lo: datetime
    write_hi: datetime


_MIN_TS = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_TS = datetime(2200, 1, 1, tzinfo=UTC)


def _window(conn: Connection, meter: MeterEnergy, lo: datetime, hi: datetime) -> _Window:
    """Buckets to rewrite for readings changed in [lo, hi], and the readings to read for them.

    A reading's fate depends on the persistence window after it and on the level before it
    (:mod:`analytics.intervals`), so the rewritten buckets reach one window plus one reading
    beyond the changed readings on each side, and the readings read reach one more window.
    """
    if lo <= _MIN_TS and hi >= _MAX_TS:
        return _Window(_MIN_TS, _MAX_TS, _MIN_TS, _MAX_TS)
    span = timedelta(seconds=PERSIST_S + 2 * meter.spec.interval_s)
    near, far = PERSIST_READINGS + 1, 2 * (PERSIST_READINGS + 1)

    def reach(ts: datetime, side: str, count: int, time_span: timedelta) -> datetime:
        neighbour = _neighbour(conn, meter.meter_id, ts, side, count)
        by_time = ts - time_span if side == "before" else ts + time_span
        if neighbour is None:
            return by_time
        return min(neighbour, by_time) if side == "before" else max(neighbour, by_time)

    lo_c, hi_c = max(lo, _MIN_TS), min(hi, _MAX_TS)
    write_lo = reach(lo_c, "before", near, span)
    write_hi = reach(hi_c, "after", near, span)
    read_lo = reach(write_lo, "before", far, 2 * span)
    read_hi = reach(write_hi, "after", far, 2 * span)
    b = BUCKET_S
    write_lo = _ts(math.floor(_epoch_s(write_lo) / b) * b)
    write_hi = _ts(math.ceil(_epoch_s(write_hi) / b) * b + b)
    return _Window(read_lo, read_hi, write_lo, write_hi)


# --- writing -------------------------------------------------------------------------

_STAGE = """
CREATE TEMP TABLE IF NOT EXISTS energy_stage (
    meter_id integer, bucket timestamptz, quantity float8, estimated_quantity float8,
    flagged_quantity float8, readings integer, expected_readings integer
) ON COMMIT DELETE ROWS
"""
_STAGE_COLUMNS = (
    "meter_id",
    "bucket",
    "quantity",
    "estimated_quantity",
    "flagged_quantity",
    "readings",
    "expected_readings",
)
_DELETE_15 = "DELETE FROM analytics.energy_15min WHERE meter_id = %s AND bucket >= %s AND bucket < %s"
_FROM_STAGE = """
INSERT INTO analytics.energy_15min (meter_id, bucket, quantity, estimated_quantity, flagged_quantity,
                                    readings, expected_readings, coverage)
SELECT meter_id, bucket, quantity, estimated_quantity, flagged_quantity, readings, expected_readings,
       CASE WHEN expected_readings > 0
            THEN least(1.0, readings::float8 / expected_readings) END
FROM pg_temp.energy_stage
"""
_BIN_HEADER = b"PGCOPY\n\xff\r\n\0" + bytes(8)
_BIN_ROW = np.dtype(
    [
        ("n", ">i2"),
        ("l_meter", ">i4"),
        ("meter", ">i4"),
        ("l_bucket", ">i4"),
        ("bucket", ">i8"),
        ("l_q", ">i4"),
        ("q", ">f8"),
        ("l_e", ">i4"),
        ("e", ">f8"),
        ("l_f", ">i4"),
        ("f", ">f8"),
        ("l_r", ">i4"),
        ("r", ">i4"),
        ("l_x", ">i4"),
        ("x", ">i4"),
        ("l_c", ">i4"),
        ("c", ">f8"),
    ]
)


def _write_rows(
    conn: Connection, meter_id: int, buckets: BucketEnergy, keep: np.ndarray[Any, Any], copy: bool
) -> int:
    """Write the kept buckets of one meter; returns how many.

    With COPY: binary COPY straight into ``analytics.energy_15min`` (the caller has deleted
    the range), coverage computed as the SQL of :data:`_FROM_STAGE` does (the same IEEE
    division, NULL when nothing was due). Without: multi-row VALUES into
    ``pg_temp.energy_stage``, moved into the table with :data:`_FROM_STAGE`.
    """
    n = int(keep.sum())
    if n == 0:
        return 0
    starts = buckets.bucket_s[keep]
    if copy:
        readings = buckets.readings[keep]
        expected = buckets.expected_readings[keep]
        due = expected > 0
        rows = np.zeros(n, dtype=_BIN_ROW)
        rows["n"] = 8
        rows["l_meter"], rows["l_r"], rows["l_x"] = 4, 4, 4
        rows["l_bucket"], rows["l_q"], rows["l_e"], rows["l_f"] = 8, 8, 8, 8
        rows["meter"] = meter_id
        rows["bucket"] = (np.rint(starts).astype(np.int64) - _PG_EPOCH_S) * 1_000_000
        rows["q"] = buckets.quantity[keep]
        rows["e"] = buckets.estimated_quantity[keep]
        rows["f"] = buckets.flagged_quantity[keep]
        rows["r"] = readings
        rows["x"] = expected
        rows["l_c"] = np.where(due, 8, -1)
        with np.errstate(invalid="ignore", divide="ignore"):
            rows["c"] = np.minimum(1.0, readings.astype(np.float64) / np.where(due, expected, 1))
        # A NULL coverage is length -1 without data: drop the last 8 bytes of those rows,
        # keeping the rows in bucket order.
        size = _BIN_ROW.itemsize
        present = np.ones((n, size), dtype=np.bool_)
        present[~due, size - 8 :] = False
        body = rows.view(np.uint8).reshape(n, size)[present]
        payload = _BIN_HEADER + body.tobytes() + struct.pack(">h", -1)
        with conn.cursor().copy(
            sql.SQL("COPY analytics.energy_15min ({}) FROM STDIN (FORMAT binary)").format(
                sql.SQL(", ").join(map(sql.Identifier, (*_STAGE_COLUMNS, "coverage")))
            )
        ) as cp:
            cp.write(payload)
        return n
    conn.execute(_STAGE)
    values = list(
        zip(
            [meter_id] * n,
            [_ts(float(s)) for s in starts],
            buckets.quantity[keep].tolist(),
            buckets.estimated_quantity[keep].tolist(),
            buckets.flagged_quantity[keep].tolist(),
            buckets.readings[keep].tolist(),
            buckets.expected_readings[keep].tolist(),
            strict=True,
        )
    )
    for i in range(0, n, _VALUES_CHUNK):
        part = values[i : i + _VALUES_CHUNK]
        query = sql.SQL("INSERT INTO pg_temp.energy_stage VALUES {}").format(
            sql.SQL(", ").join([sql.SQL("(%s, %s, %s, %s, %s, %s, %s)")] * len(part))
        )
        conn.execute(query, [x for row in part for x in row])
    conn.execute(_FROM_STAGE)
    return n


# --- rollups -------------------------------------------------------------------------

_TOUCHED = """
CREATE TEMP TABLE IF NOT EXISTS energy_touched (
    meter_id integer, from_ts timestamptz, to_ts timestamptz
) ON COMMIT DELETE ROWS
"""
# (target, source, unit): day and month in the Asia/Shanghai calendar (DESIGN.md, wire contract).
_LEVELS = (
    ("energy_hour", "energy_15min", "hour"),
    ("energy_day", "energy_hour", "day"),
    ("energy_month", "energy_day", "month"),
)
# The touched ranges widened to whole buckets of the level, merged per meter into disjoint
# ranges (range_agg), so that each is one index range scan of the source.
_RANGES = """
WITH r AS (
    SELECT meter_id, lower(u) AS f, upper(u) AS t
    FROM (SELECT meter_id, unnest(range_agg(tstzrange(
              date_trunc({unit}, from_ts, 'Asia/Shanghai'),
              date_add(date_trunc({unit}, to_ts - interval '1 microsecond', 'Asia/Shanghai'),
                       {step}, 'Asia/Shanghai')))) AS u
          FROM pg_temp.energy_touched GROUP BY meter_id) merged
)
"""
# LATERAL with OFFSET 0 (not flattened into a hash join) keeps both statements to one index
# range scan per touched range, whatever the planner guesses about the size of r: the cost
# follows the touched buckets, not the table.
_ROLLUP_DELETE = sql.SQL(
    _RANGES  # noqa: S608 - constant text, identifiers via sql.Identifier
    + """
DELETE FROM analytics.{target}
WHERE ctid = ANY(ARRAY(
    SELECT d.ctid FROM r CROSS JOIN LATERAL (
        SELECT ctid FROM analytics.{target} t
        WHERE t.meter_id = r.meter_id AND t.bucket >= r.f AND t.bucket < r.t OFFSET 0) d))
"""
)
# Aggregated per touched range inside the LATERAL: each aggregate holds one range's rows (no
# hash aggregate over all meters spilling to disk on a full recompute), and the rows come
# out in (meter, bucket) order, so the primary key index grows at its end instead of at
# random places (hour rollup of a full recompute: 8.6 s → 4.9 s on the 146-day benchmark).
_ROLLUP_INSERT = sql.SQL(
    _RANGES  # noqa: S608 - constant text, identifiers via sql.Identifier
    + """
INSERT INTO analytics.{target} (meter_id, bucket, quantity, estimated_quantity, flagged_quantity,
                               readings, expected_readings, coverage)
SELECT r.meter_id, x.* FROM r CROSS JOIN LATERAL (
    SELECT date_trunc({unit}, s.bucket, 'Asia/Shanghai'), sum(s.quantity), sum(s.estimated_quantity),
           sum(s.flagged_quantity), sum(s.readings), sum(s.expected_readings),
           CASE WHEN sum(s.expected_readings) > 0
                THEN least(1.0, sum(s.readings)::float8 / sum(s.expected_readings)) END
    FROM analytics.{source} s
    WHERE s.meter_id = r.meter_id AND s.bucket >= r.f AND s.bucket < r.t
    GROUP BY 1 ORDER BY 1) x
ORDER BY r.meter_id, r.f
"""
)
_WIDEN = sql.SQL(
    """
UPDATE pg_temp.energy_touched
SET from_ts = date_trunc({unit}, from_ts, 'Asia/Shanghai'),
    to_ts = date_add(date_trunc({unit}, to_ts - interval '1 microsecond', 'Asia/Shanghai'),
                     {step}, 'Asia/Shanghai')
"""
)


def _roll_up_tables(conn: Connection, touched: Sequence[tuple[int, datetime, datetime]]) -> None:
    """Recompute the hour, day and month rows that the touched 15-minute ranges fall in."""
    conn.execute(_TOUCHED)
    conn.execute("DELETE FROM pg_temp.energy_touched")  # earlier batches of the same transaction
    for i in range(0, len(touched), _VALUES_CHUNK):
        part = touched[i : i + _VALUES_CHUNK]
        conn.execute(
            sql.SQL("INSERT INTO pg_temp.energy_touched VALUES {}").format(
                sql.SQL(", ").join([sql.SQL("(%s, %s, %s)")] * len(part))
            ),
            [x for row in part for x in row],
        )
    for target, source, unit in _LEVELS:
        params = {"unit": sql.Literal(unit), "step": sql.Literal(f"1 {unit}")}
        names = {"target": sql.Identifier(target), "source": sql.Identifier(source)}
        conn.execute(_ROLLUP_DELETE.format(**names, **params))
        conn.execute(_ROLLUP_INSERT.format(**names, **params))
        conn.execute(_WIDEN.format(**params))


def _refresh_aggregates(conn: Connection, lo: datetime, hi: datetime) -> None:
    """Refresh the continuous aggregates over [lo, hi), widened to whole months (outside a
    transaction, as TimescaleDB requires)."""
    lo_m = conn.execute("SELECT date_trunc('month', %s::timestamptz, 'Asia/Shanghai')", (lo,)).fetchone()
    hi_m = conn.execute(
        "SELECT date_add(date_trunc('month', %s::timestamptz - interval '1 microsecond', 'Asia/Shanghai'),"
        " '1 month', 'Asia/Shanghai')",
        (hi,),
    ).fetchone()
    assert lo_m is not None and hi_m is not None
    for view in ("energy_hour", "energy_day", "energy_month"):
        conn.execute(
            "CALL refresh_continuous_aggregate(%s, %s::timestamptz, %s::timestamptz)",
            (f"analytics.{view}", lo_m[0], hi_m[0]),
        )


# --- the run -------------------------------------------------------------------------

# Arrivals: the readings received from the watermark on (>=: a reading received at the
# watermark itself may belong to a transaction that was still writing when the watermark
# was taken, see _UNTIL).
_ARRIVALS = """
SELECT meter_id, min(ts), max(ts), count(*)
FROM ingest.reading
WHERE received_at >= %s
GROUP BY meter_id, date_trunc('day', ts)
"""
# The readings received in [lo, hi) added to the arrival rollups (migration 0011): per
# meter and hour of reading time, and per local day (Asia/Shanghai, UTC+8: a clock hour lies
# in one day). Run in the transaction that moves the watermark from lo to hi, so each reading
# is counted once: every reading received before hi is visible then (hi is no later than the
# start of any transaction still writing), and the next run counts from hi on.
_COUNT_ARRIVALS = """
WITH added AS (
    SELECT meter_id, date_trunc('hour', ts, 'UTC') AS hour, count(*)::integer AS readings,
           sum(date_part('epoch', received_at - ts)) AS lag_s_sum,
           max(date_part('epoch', received_at - ts)) AS lag_s_max
    FROM ingest.reading
    WHERE received_at >= %(lo)s AND received_at < %(hi)s
    GROUP BY 1, 2
), hours AS (
    INSERT INTO analytics.arrival_hour AS a (meter_id, hour, readings, lag_s_sum, lag_s_max)
    SELECT meter_id, hour, readings, lag_s_sum, lag_s_max FROM added ORDER BY meter_id, hour
    ON CONFLICT (meter_id, hour) DO UPDATE SET
        readings = a.readings + excluded.readings, lag_s_sum = a.lag_s_sum + excluded.lag_s_sum,
        lag_s_max = greatest(a.lag_s_max, excluded.lag_s_max)
), days AS (
    INSERT INTO analytics.arrival_day AS a (meter_id, day, readings, lag_s_sum, lag_s_max)
    SELECT meter_id, date_trunc('day', hour, 'Asia/Shanghai'), sum(readings), sum(lag_s_sum), max(lag_s_max)
    FROM added GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (meter_id, day) DO UPDATE SET
        readings = a.readings + excluded.readings, lag_s_sum = a.lag_s_sum + excluded.lag_s_sum,
        lag_s_max = greatest(a.lag_s_max, excluded.lag_s_max)
)
SELECT coalesce(sum(readings), 0)::bigint FROM added
"""


def count_arrivals(conn: Connection, until: datetime) -> int:
    """Add the readings received from the watermark up to ``until`` (excluded) to the arrival
    rollups and move the watermark to ``until``; returns the readings added.

    Must run inside the caller's transaction. The watermark row is locked first, so a
    concurrent run either waits or has already moved it (then less, or nothing, is added),
    and the watermark never moves back.
    """
    row = conn.execute(
        "SELECT greatest(received_through, '1970-01-01Z') FROM analytics.energy_state FOR UPDATE"
    ).fetchone()
    assert row is not None
    added = 0
    if until > row[0]:
        counted = conn.execute(_COUNT_ARRIVALS, {"lo": row[0], "hi": until}).fetchone()
        added = int(counted[0]) if counted else 0
    conn.execute(
        "UPDATE analytics.energy_state SET received_through = greatest(received_through, %s),"
        " updated_at = now()",
        (until,),
    )
    return added


# ±infinity in the table (whole history) are clamped to dates Python can hold.
_CLAIM = (
    "SELECT dirty_id, meter_id, greatest(from_ts, '1970-01-01Z'), least(to_ts, '2200-01-01Z')"
    " FROM analytics.energy_dirty ORDER BY dirty_id"
)


def mark_dirty(
    conn: Connection,
    from_ts: datetime,
    to_ts: datetime,
    meter_ids: Sequence[int] | None = None,
    reason: str = "recompute",
) -> int:
    """Mark reading times [from_ts, to_ts] of the given meters (all energy meters if None) for
    recomputation by the next run; returns the number of meters marked."""
    cur = conn.execute(
        "INSERT INTO analytics.energy_dirty (meter_id, from_ts, to_ts, reason)"
        " SELECT meter_id, %(from)s, %(to)s, %(reason)s FROM registry.meter"
        " WHERE kind IN ('register', 'interval') AND (%(ids)s::integer[] IS NULL OR meter_id = ANY(%(ids)s))",
        {
            "from": from_ts,
            "to": to_ts,
            "reason": reason,
            "ids": None if meter_ids is None else list(meter_ids),
        },
    )
    return cur.rowcount


# Silent meters (DOMAIN.md §4 completeness = received / expected; §8 gaps are not zeros):
# a registered, not retired energy meter that has reported before but sends nothing gets
# 15-minute rows with quantity 0, readings 0 and its expected readings (coverage 0) from
# the bucket that starts with or holds its last reading (existing rows are kept) up to
# the run time less a grace of two expected intervals (at least SILENCE_GRACE_S, for
# batches still in transit). When it reports again, the gap is spread between the two
# valid readings and those rows are rewritten.
SILENCE_GRACE_S = 3600
_FILL_SILENT = """
WITH m AS (
    SELECT m.meter_id, coalesce(m.expected_interval_s, 900) AS interval_s,
           (SELECT max(r.ts) FROM ingest.reading r WHERE r.meter_id = m.meter_id) AS last_ts,
           least(%(until)s::timestamptz
                 - make_interval(secs => greatest(2 * coalesce(m.expected_interval_s, 900), %(grace)s)),
                 coalesce(m.retired_at, 'infinity')) AS fill_to
    FROM registry.meter m
    WHERE m.kind IN ('register', 'interval')
), b AS (
    SELECT m.meter_id, m.interval_s, extract(epoch FROM g)::bigint AS s, g AS bucket
    FROM m CROSS JOIN LATERAL generate_series(
        to_timestamp(floor(extract(epoch FROM m.last_ts) / 900) * 900),
        to_timestamp(floor(extract(epoch FROM m.fill_to) / 900) * 900) - interval '15 minutes',
        interval '15 minutes') AS g
    WHERE m.last_ts IS NOT NULL
)
INSERT INTO analytics.energy_15min (meter_id, bucket, quantity, estimated_quantity, flagged_quantity,
                                    readings, expected_readings, coverage)
SELECT b.meter_id, b.bucket, 0, 0, 0, 0, x.expected, CASE WHEN x.expected > 0 THEN 0.0 END
FROM b CROSS JOIN LATERAL (
    SELECT ((b.s + 900) / b.interval_s - b.s / b.interval_s)::integer AS expected) x
ON CONFLICT (meter_id, bucket) DO NOTHING
RETURNING meter_id, bucket
"""


def fill_silent(conn: Connection, until: datetime) -> list[tuple[int, datetime, datetime]]:
    """Coverage-0 rows for energy meters silent since their last reading, up to ``until`` less
    the grace; returns the touched ranges (meter_id, from, to) to roll up."""
    rows = conn.execute(_FILL_SILENT, {"until": until, "grace": SILENCE_GRACE_S}).fetchall()
    ranges: dict[int, tuple[datetime, datetime]] = {}
    for meter_id, bucket in rows:
        lo, hi = ranges.get(meter_id, (bucket, bucket))
        ranges[meter_id] = (min(lo, bucket), max(hi, bucket))
    step = timedelta(seconds=BUCKET_S)
    return [(m, lo, hi + step) for m, (lo, hi) in sorted(ranges.items())]


_MERGE_GAP = timedelta(days=1)


def _merge(ranges: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    """[lo, hi] ranges less than a day apart merged (their windows would overlap), by start."""
    merged: list[tuple[datetime, datetime]] = []
    for lo, hi in sorted(ranges):
        if merged and lo <= merged[-1][1] + _MERGE_GAP:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged


PARALLEL_ARRIVALS = 200_000
"""From this many newly received readings on (a full recompute, a long backlog), a run does its
closing work on a second connection while it computes the meters (:func:`_closing`)."""

_Ranges = list[tuple[int, datetime, datetime]]


class _Closing:
    """The closing transaction of a run: counts the arrivals and moves the watermark
    (:func:`count_arrivals`), fills silent meters, rolls up, releases the dirty ranges.

    Sequential: all of it on the run's connection (``main`` is ``conn``), in one transaction
    opened after the meters are computed. Parallel: ``conn`` is a second connection whose
    transaction is open; ``worker`` (:meth:`work`, in a thread) counts the arrivals on it,
    then rolls up the meters passed to :meth:`computed` (see :func:`_closing`).
    """

    def __init__(
        self,
        main: Connection,
        conn: Connection,
        until: datetime,
        roll_up: bool = False,
    ) -> None:
        self.main = main
        self.conn = conn
        self.until = until
        self.worker: Future[int] | None = None  # set by _closing when parallel
        self.roll_up = roll_up
        self.queue: SimpleQueue[_Ranges | None] = SimpleQueue()
        self.counted = threading.Event()

    def computed(self, ranges: _Ranges) -> None:
        """All ranges of one meter, just committed on the run's connection: rolled up at once on
        it while the worker is still counting the arrivals, else queued for the worker."""
        if not self.roll_up or not ranges:
            return
        if self.counted.is_set():
            self.queue.put(ranges)
        else:
            self._roll_up_here(ranges)

    def _roll_up_here(self, ranges: _Ranges) -> None:
        with self.main.transaction():  # the temporary ranges live for one transaction
            _roll_up_tables(self.main, ranges)

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """The closing transaction, once the worker (if any) is done with its connection
        (committed by :func:`_closing` when parallel). Meters still queued are shared between
        the run's connection and the worker until none is left."""
        if self.worker is None:
            with self.conn.transaction():
                yield self.conn
            return
        while True:
            try:
                item = self.queue.get_nowait()
            except Empty:
                break
            if item is not None:
                self._roll_up_here(item)
        self.queue.put(None)
        self.worker.result()
        yield self.conn

    def arrivals(self) -> int:
        """Readings added to the arrival counts (the watermark moves with them)."""
        return count_arrivals(self.conn, self.until) if self.worker is None else self.worker.result()

    def work(self) -> int:
        """The worker: count the arrivals, then roll up the queued meters until None."""
        arrivals = count_arrivals(self.conn, self.until)
        self.counted.set()
        done = not self.roll_up
        while not done:
            batch: _Ranges = []
            item = self.queue.get()
            while True:  # whole meters only: the run's connection may take the others
                if item is None:
                    done = True
                    break
                batch.extend(item)
                if self.queue.empty():
                    break
                item = self.queue.get()
            if batch:
                _roll_up_tables(self.conn, batch)
        return arrivals


@contextmanager
def _closing(conn: Connection, until: datetime, parallel: bool, roll_up: bool) -> Iterator[_Closing]:
    """Where the closing transaction runs.

    Sequential: on the run's connection, opened after the meters are computed. Parallel (many
    new readings, and COPY available, i.e. not PGlite, which serves one connection): a second
    connection as the same role opens the transaction at once; a thread counts the arrivals
    on it while the run's connection computes the meters. With ``roll_up`` (the rollup
    tables, without TimescaleDB) each meter is rolled up once committed, reading the
    committed 15-minute rows: by the run's connection in its own transaction while the
    thread is still counting, then by the thread in the closing transaction, and the
    meters left when the last is computed by both (a meter is rolled up by one of them,
    so they never write the same rows). Rollups committed early are idempotent like the
    15-minute rows; a range rolled up again later (a silent meter's new rows) is recomputed
    from the rows then: the same result. The arrivals and the watermark move in one
    transaction that commits after the energy and every rollup: a run that fails counts
    nothing and leaves the watermark where it was.
    """
    other: Connection | None = None
    if parallel:
        try:
            other = psycopg.connect(conn.info.dsn, password=conn.info.password or None)
            # Each statement sees the 15-minute rows committed meanwhile by the run's connection.
            other.isolation_level = psycopg.IsolationLevel.READ_COMMITTED
        except psycopg.OperationalError as exc:  # e.g. no connection slot left
            log.warning("energy: no second connection (%s); closing work after the meters", exc)
    if other is None:
        yield _Closing(conn, conn, until)
        return
    with other, ThreadPoolExecutor(max_workers=1, thread_name_prefix="energy-closing") as pool:
        closing = _Closing(conn, other, until, roll_up=roll_up)
        worker = closing.worker = pool.submit(closing.work)
        try:
            yield closing
        except BaseException:
            closing.queue.put(None)
            if not worker.done():
                other.cancel_safe()
            raise


def run_energy(
    conn: Connection, progress: Progress | None = None, silent_until: datetime | None = None
) -> EnergyRunSummary:
    """One run of the energy job on an autocommit connection (see the module docstring).

    silent_until : the run time up to which silent meters get coverage-0 rows (the job
        passes its ``now``); None leaves silent meters alone.
    """
    if not conn.autocommit:
        raise ValueError("run_energy needs an autocommit connection")
    started = datetime.now(UTC)
    copy = _can_copy(conn)
    timescale = energy_timescaledb(conn)
    with conn.transaction():
        row = conn.execute(
            "SELECT greatest(received_through, '1970-01-01Z') FROM analytics.energy_state"
        ).fetchone()
        until_row = conn.execute(_UNTIL).fetchone()
        assert row is not None and until_row is not None
        watermark, until = row[0], until_row[0]
        received = conn.execute(_ARRIVALS, (watermark,)).fetchall()
        claimed = conn.execute(_CLAIM).fetchall()
    work: dict[int, list[tuple[datetime, datetime]]] = {}
    last_seen: dict[int, datetime] = {}
    for meter_id, lo, hi, _count in received:
        work.setdefault(meter_id, []).append((lo, hi))
        last_seen[meter_id] = max(hi, last_seen.get(meter_id, hi))
    for _dirty_id, meter_id, lo, hi in claimed:
        work.setdefault(meter_id, []).append((lo, hi))
    meters = load_meters(conn, work)
    total_readings = total_buckets = total_ranges = 0
    touched: list[tuple[int, datetime, datetime]] = []
    done = 0
    parallel = copy and sum(int(r[3]) for r in received) >= PARALLEL_ARRIVALS
    with _closing(conn, until, parallel, roll_up=not timescale) as closing:
        for meter_id in sorted(work):
            meter = meters.get(meter_id)
            if meter is None:  # a gauge, or readings of an unknown meter: not energy
                continue
            mine: _Ranges = []
            for lo, hi in _merge(work[meter_id]):
                with conn.transaction():
                    window = _window(conn, meter, lo, hi)
                    ts, values = _readings(conn, meter_id, window.read_lo, window.read_hi)
                    buckets, _steps = meter_buckets(
                        ts, values, meter.spec, meter.replacements, meter.multiplier_changes
                    )
                    w_lo, w_hi = _epoch_s(window.write_lo), _epoch_s(window.write_hi)
                    keep = (buckets.bucket_s >= w_lo) & (buckets.bucket_s < w_hi)
                    conn.execute(_DELETE_15, (meter_id, window.write_lo, window.write_hi))
                    written = _write_rows(conn, meter_id, buckets, keep, copy)
                touched.append((meter_id, window.write_lo, window.write_hi))
                mine.append(touched[-1])
                total_readings += len(ts)
                total_buckets += written
                total_ranges += 1
            closing.computed(mine)
            done += 1
            if progress is not None:
                progress(done, len(work))
        with closing.transaction() as c:
            arrivals = closing.arrivals()
            pending = [] if closing.roll_up else list(touched)
            if silent_until is not None:
                silent = fill_silent(c, silent_until)
                touched.extend(silent)
                pending.extend(silent)
            if pending and not timescale:
                _roll_up_tables(c, pending)
            if claimed:
                c.execute(
                    "DELETE FROM analytics.energy_dirty WHERE dirty_id = ANY(%s)", ([d[0] for d in claimed],)
                )
            for meter_id in sorted(meters):
                c.execute(
                    "INSERT INTO analytics.energy_meter_state (meter_id, last_reading_ts, computed_at)"
                    " VALUES (%s, %s, now()) ON CONFLICT (meter_id) DO UPDATE SET"
                    " last_reading_ts = greatest(energy_meter_state.last_reading_ts,"
                    " excluded.last_reading_ts), computed_at = excluded.computed_at",
                    (meter_id, last_seen.get(meter_id)),
                )
    if touched and timescale:
        _refresh_aggregates(conn, min(t[1] for t in touched), max(t[2] for t in touched))
    seconds = (datetime.now(UTC) - started).total_seconds()
    summary = EnergyRunSummary(
        len(meters),
        total_ranges,
        total_readings,
        total_buckets,
        len(claimed),
        arrivals,
        timescale,
        seconds,
    )
    log.info("%s", summary)
    return summary
