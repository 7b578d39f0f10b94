"""Counter faults from the database: readings of the recent window → :mod:`analytics.detect.counters`.

One call of :func:`detect_counters` (group ``detect-counters``):

1. the register and interval meters with their events (:func:`analytics.energy_store.load_meters`,
   the same specs, replacements and multiplier changes as the energy job);
2. one query for the readings of every such meter with ``now − window < ts <= now``, the window
   being :data:`LOAD_S` or :data:`LOAD_READINGS` expected intervals, whichever is longer
   (enough context for the persistence rules of :mod:`analytics.intervals`);
3. for registers whose readings end in a long flat run, one query for the same clock hours of
   the previous :data:`~analytics.detect.counters.REFERENCE_DAYS` days; for a flat run the
   window begins with, the time it really began (so ``started_at`` stays stable);
4. the conflicts (``ingest.reading_conflict``) of the current and the previous local day.

Only data with event time <= ``now`` is read, so replaying history with increasing ``now``
gives what a live run would have found. Episodes whose deciding reading is older than
:data:`REPORT_S` (or two expected intervals plus two hours) are not reported again.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import psycopg

from analytics.detect.counters import (
    KINDS,
    REFERENCE_DAYS,
    Conflict,
    CounterMeter,
    FlatRun,
    Reference,
    compute_steps,
    conflict_findings,
    interval_findings,
    ongoing_flat_run,
    reference_movement,
    register_findings,
)
from analytics.detect.localtime import local_midnight
from analytics.energy_store import load_meters
from analytics.findings import Detection, Finding
from analytics.intervals import Steps

__all__ = [
    "CLEAR_AFTER_S",
    "DETECTOR",
    "LOAD_READINGS",
    "LOAD_S",
    "REPORT_S",
    "detect_counters",
    "load_counter_meters",
]

Connection = psycopg.Connection[Any]
Floats = np.ndarray[Any, np.dtype[np.float64]]

DETECTOR = "counters"
LOAD_S = 2 * 86400
"""Readings read before ``now`` [s] …"""
LOAD_READINGS = 8
"""… or this many expected intervals, whichever is longer (daily meters)."""
REPORT_S = 26 * 3600
"""Episodes decided within this long before ``now`` are reported [s] (a day and a margin) …"""
REPORT_INTERVALS = 2
"""… or within this many expected intervals plus two hours, whichever is longer."""
CLEAR_AFTER_S = 1800.0
"""An ongoing counter finding not confirmed for two runs of the group clears [s]."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_PAIR = np.dtype(">f8")

_METERS = """
SELECT m.meter_id, m.meter_code, m.unit, m.purpose, e.enterprise_id, e.enterprise_code, e.park_id
FROM registry.meter m JOIN registry.enterprise e ON e.enterprise_id = m.enterprise_id
WHERE m.kind IN ('register', 'interval')
"""
# One row per meter: its readings of the window as big-endian float8 pairs (time, value).
_READINGS = """
SELECT r.meter_id,
       string_agg(float8send(extract(epoch FROM r.ts)::float8) || float8send(r.value), ''::bytea
                  ORDER BY r.ts)
FROM registry.meter m
JOIN ingest.reading r
  ON r.meter_id = m.meter_id
 AND r.ts > %(now)s - make_interval(secs => greatest(%(load)s, %(n)s * coalesce(m.expected_interval_s, 900)))
 AND r.ts <= %(now)s
WHERE m.kind IN ('register', 'interval')
GROUP BY r.meter_id
"""
_SPANS = """
SELECT c.meter_id,
       string_agg(float8send(extract(epoch FROM r.ts)::float8) || float8send(r.value), ''::bytea
                  ORDER BY r.ts)
FROM unnest(%s::integer[], %s::timestamptz[], %s::timestamptz[]) AS c(meter_id, lo, hi)
JOIN ingest.reading r ON r.meter_id = c.meter_id AND r.ts >= c.lo AND r.ts <= c.hi
GROUP BY c.meter_id
"""
_LAST_OTHER = "SELECT max(ts) FROM ingest.reading WHERE meter_id = %s AND ts < %s AND value <> %s"
_FIRST_TWO = "SELECT ts FROM ingest.reading WHERE meter_id = %s AND ts > %s AND ts <= %s ORDER BY ts LIMIT 2"
_CONFLICTS = """
SELECT c.meter_id, extract(epoch FROM c.ts)::float8, c.value, r.value
FROM ingest.reading_conflict c
LEFT JOIN ingest.reading r ON r.meter_id = c.meter_id AND r.ts = c.ts
WHERE c.ts <= %(now)s
  AND (c.ts > %(lo)s OR (c.received_at > %(lo)s AND c.received_at <= %(now)s))
"""


def _ts(epoch_s: float) -> datetime:
    return _EPOCH + timedelta(seconds=epoch_s)


def _pairs(blob: bytes | None) -> tuple[Floats, Floats]:
    if not blob:
        return np.empty(0), np.empty(0)
    arr = np.frombuffer(bytes(blob), dtype=_PAIR).astype(np.float64).reshape(-1, 2)
    return arr[:, 0].copy(), arr[:, 1].copy()


def load_counter_meters(conn: Connection) -> dict[int, CounterMeter]:
    """Every register and interval meter with its identity, spec and recorded events."""
    rows = conn.execute(_METERS).fetchall()
    energy = load_meters(conn, [r[0] for r in rows])
    meters: dict[int, CounterMeter] = {}
    for meter_id, meter_code, unit, purpose, enterprise_id, enterprise_code, park_id in rows:
        e = energy.get(meter_id)
        if e is None:
            continue
        meters[meter_id] = CounterMeter(
            meter_id=meter_id,
            enterprise_code=enterprise_code,
            meter_code=meter_code,
            spec=e.spec,
            unit=unit,
            purpose=purpose,
            enterprise_id=enterprise_id,
            park_id=park_id,
            replacements=e.replacements,
            multiplier_changes=e.multiplier_changes,
        )
    return meters


def _references(
    conn: Connection, meters: dict[int, CounterMeter], runs: dict[int, FlatRun]
) -> dict[int, Reference]:
    """Movement of each candidate register at its flat run's clock hours on previous days."""
    if not runs:
        return {}
    ids = sorted(runs)
    lo = [_ts(runs[i].first_s - REFERENCE_DAYS * 86400 - meters[i].spec.interval_s) for i in ids]
    hi = [_ts(runs[i].last_s - 86400 + meters[i].spec.interval_s) for i in ids]
    out: dict[int, Reference] = {}
    for meter_id, blob in conn.execute(_SPANS, (ids, lo, hi)):
        t, v = _pairs(blob)
        out[meter_id] = reference_movement(t, v, runs[meter_id], meters[meter_id].spec.multiplier)
    return out


def _flat_origin(conn: Connection, meter_id: int, first_s: float, value: float) -> tuple[float, float] | None:
    """When a meter's window begins inside a flat run: the times of that run's first reading and
    first repeat (the first two readings after the last different value)."""
    first = _ts(first_s)
    row = conn.execute(_LAST_OTHER, (meter_id, first, value)).fetchone()
    after = row[0] if row and row[0] is not None else datetime(1970, 1, 1, tzinfo=UTC)
    two = [r[0] for r in conn.execute(_FIRST_TWO, (meter_id, after, first))]
    if len(two) < 2:
        return None
    return ((two[0] - _EPOCH).total_seconds(), (two[1] - _EPOCH).total_seconds())


def detect_counters(conn: Connection, now: datetime) -> Detection:
    """Counter faults of every register and interval meter at ``now`` (module docstring).

    Parameters
    ----------
    conn : a connection that may read the registry and ``ingest``.
    now : the run's time (timezone-aware); only readings with ``ts <= now`` are used.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    now_s = (now - _EPOCH).total_seconds()
    meters = load_counter_meters(conn)
    series: dict[int, tuple[Floats, Floats]] = {}
    for meter_id, blob in conn.execute(_READINGS, {"now": now, "load": LOAD_S, "n": LOAD_READINGS}):
        if meter_id in meters:
            series[meter_id] = _pairs(blob)

    findings: list[Finding] = []
    registers: dict[int, Steps] = {}
    runs: dict[int, FlatRun] = {}
    origins: dict[int, tuple[float, float] | None] = {}
    for meter_id in sorted(series):
        meter = meters[meter_id]
        if meter.spec.kind != "register":
            continue
        t, v = series[meter_id]
        steps = compute_steps(meter, t, v)
        registers[meter_id] = steps
        run = ongoing_flat_run(meter, t, v, steps)
        if run is not None:
            runs[meter_id] = run
        acc = steps.reading_s
        if len(acc) >= 2:
            i0, i1 = np.searchsorted(t, acc[:2])
            if v[i0] == v[i1]:  # the window begins inside a flat run
                origins[meter_id] = _flat_origin(conn, meter_id, float(acc[0]), float(v[i0]))
    references = _references(conn, meters, runs)

    for meter_id in sorted(series):
        meter = meters[meter_id]
        t, v = series[meter_id]
        interval = meter.spec.interval_s
        report_from = now_s - max(REPORT_S, REPORT_INTERVALS * interval + 7200)
        if meter.spec.kind == "register":
            findings += register_findings(
                meter,
                t,
                v,
                now_s,
                report_from,
                steps=registers[meter_id],
                reference=references.get(meter_id),
                flat_origin=origins.get(meter_id),
            )
        else:
            findings += interval_findings(meter, t, v, now_s, report_from)

    today = local_midnight(now)
    conflicts = [
        Conflict(int(m), float(ts), float(value), None if stored is None else float(stored))
        for m, ts, value, stored in conn.execute(_CONFLICTS, {"now": now, "lo": today - timedelta(days=1)})
    ]
    findings += conflict_findings(meters, conflicts, now_s)
    subjects = _subjects(meters, set(series) | {c.meter_id for c in conflicts})
    return Detection(
        detector=DETECTOR,
        now=now,
        kinds=KINDS,
        findings=tuple(sorted(findings, key=lambda f: (f.kind, f.subject, f.started_at))),
        clear_after_s=dict.fromkeys(KINDS, CLEAR_AFTER_S),
        subjects=subjects,
    )


def _subjects(meters: dict[int, CounterMeter], ids: Iterable[int]) -> frozenset[str]:
    """Subjects of the meters the run looked at (readings or conflicts in its window)."""
    return frozenset(meters[i].subject for i in ids if i in meters)
