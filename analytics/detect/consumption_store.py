"""Loading interval energy for the consumption detectors, and one run of them.

:func:`detect_consumption` reads, for every registered consumption meter of electricity,
natural gas or steam that reports at least hourly, its hourly energy of the last
``reference_days + 2`` local days (``analytics.energy_hour``) and, for the 15-minute
electricity meters, the night and shoulder 15-minute energy of the last ``window_days``
complete local days (``analytics.energy_15min``); only buckets that end at or before
``now`` (event time), so that replaying history with increasing ``now`` sees what a live
run saw. Buckets with coverage below 1, estimated energy, refused (flagged) deltas or an
exact zero are left out (DOMAIN.md §8: gaps are not zeros; stuck and spiking registers are
the counter detectors' findings). The rules are in :mod:`analytics.detect.consumption`.

The anomaly rule scores yesterday (complete) and today up to the last complete hour, each
against the reference days before it, so a finding's start does not move between hourly
runs of the same day. The creep rule is given the episode starts of the meter's creep
alerts (``analytics.alert``, when that table exists), so that a creep that has ended is
reported as the episode the alert state already holds.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import psycopg

from analytics.detect.consumption import (
    ANOMALY,
    CREEP,
    LOCAL,
    NIGHT_HOURS,
    SHOULDER_HOURS,
    AnomalyRules,
    CreepRules,
    MeterRef,
    baseload_creep,
    hourly_anomalies,
    night_levels,
)
from analytics.findings import Detection, Finding

__all__ = ["CLEAR_AFTER_S", "detect_consumption", "load_meters"]

Connection = psycopg.Connection[Any]

DETECTOR = "consumption"
CLEAR_AFTER_S = {ANOMALY: 2 * 3600.0, CREEP: 2 * 86400.0}
"""An unconfirmed anomaly clears after two hourly runs; a creep (judged on complete days)
after two days."""
CARRIERS = ("electricity", "natural_gas", "steam")

_METERS = (
    "SELECT m.meter_id, m.meter_code, e.enterprise_id, e.enterprise_code, e.park_id, m.carrier, m.unit,"
    " coalesce(m.expected_interval_s, 900)"
    " FROM registry.meter m JOIN registry.enterprise e USING (enterprise_id)"
    " WHERE m.purpose = 'consumption' AND m.kind IN ('register', 'interval') AND m.carrier = ANY(%s)"
    " AND coalesce(m.expected_interval_s, 900) <= 3600 AND (m.retired_at IS NULL OR m.retired_at > %s)"
    " ORDER BY e.enterprise_code, m.meter_code"
)
_HOURLY = (
    "SELECT meter_id, extract(epoch FROM bucket)::float8, quantity FROM analytics.energy_hour"
    " WHERE meter_id = ANY(%s) AND bucket >= %s AND bucket <= %s - interval '1 hour'"
    " AND coverage >= 1 AND estimated_quantity = 0 AND flagged_quantity = 0 AND quantity > 0"
)
_SLOTS = (
    "SELECT meter_id, extract(epoch FROM bucket)::float8, quantity FROM analytics.energy_15min"
    " WHERE meter_id = ANY(%s) AND bucket >= %s AND bucket < %s"
    " AND coverage >= 1 AND estimated_quantity = 0 AND flagged_quantity = 0 AND quantity > 0"
    " AND extract(hour FROM bucket AT TIME ZONE 'Asia/Shanghai')::int = ANY(%s)"
)
"""Valid buckets only: coverage 1, nothing estimated or refused, not an exact zero (DOMAIN.md §8)."""
_KNOWN = "SELECT subject, unnest(episode_starts) FROM analytics.alert WHERE kind = %s AND subject = ANY(%s)"
ANOMALY_RULES = AnomalyRules()
CREEP_RULES = CreepRules()


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=LOCAL)


def load_meters(conn: Connection, since: datetime) -> list[tuple[MeterRef, int]]:
    """Consumption meters the detectors look at, with their expected interval [s]."""
    rows = conn.execute(_METERS, (list(CARRIERS), since)).fetchall()
    return [
        (
            MeterRef(
                int(r[0]),
                str(r[1]),
                int(r[2]),
                str(r[3]),
                None if r[4] is None else int(r[4]),
                str(r[5]),
                str(r[6]),
            ),
            int(r[7]),
        )
        for r in rows
    ]


def _series(
    conn: Connection, query: str, params: tuple[Any, ...], *, start: datetime, step_s: int, length: int
) -> dict[int, np.ndarray[Any, np.dtype[np.float64]]]:
    """Per meter, the values of ``query`` on a regular grid from ``start`` (NaN where absent)."""
    rows = conn.execute(query, params).fetchall()
    out: dict[int, np.ndarray[Any, np.dtype[np.float64]]] = {}
    if not rows:
        return out
    table = np.array(rows, dtype=np.float64)
    index = np.rint((table[:, 1] - start.timestamp()) / step_s).astype(np.int64)
    inside = (index >= 0) & (index < length)
    meter_ids = table[inside, 0].astype(np.int64)
    for meter_id in np.unique(meter_ids):
        series = np.full(length, np.nan)
        mine = meter_ids == meter_id
        series[index[inside][mine]] = table[inside, 2][mine]
        out[int(meter_id)] = series
    return out


def _known_starts(conn: Connection, subjects: list[str]) -> dict[str, list[datetime]]:
    """Episode starts of the creep alerts of ``subjects`` (``analytics.alert``)."""
    out: dict[str, list[datetime]] = {}
    for subject, start in conn.execute(_KNOWN, (CREEP, subjects)).fetchall():
        out.setdefault(str(subject), []).append(start)
    return out


def detect_consumption(
    conn: Connection,
    now: datetime,
    anomaly_rules: AnomalyRules = ANOMALY_RULES,
    creep_rules: CreepRules = CREEP_RULES,
) -> Detection:
    """Run ``consumption.anomaly`` and ``consumption.baseload_creep`` at ``now``.

    Parameters
    ----------
    conn : psycopg.Connection
        A connection that may read ``registry`` and ``analytics``.
    now : datetime
        The run's time (timezone-aware); only buckets ending at or before it are read.

    Returns
    -------
    Detection
        Findings of both kinds over the meters looked at (``subjects``).
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    today = now.astimezone(LOCAL).date()
    hours_done = int((now - _midnight(today)).total_seconds() // 3600)
    yesterday = today - timedelta(days=1)
    first_hour_day = yesterday - timedelta(days=anomaly_rules.reference_days)
    first_creep_day = today - timedelta(days=creep_rules.window_days)
    since = _midnight(min(first_hour_day, first_creep_day))
    meters = load_meters(conn, since)
    findings: list[Finding] = []
    if not meters:
        return Detection(DETECTOR, now, (ANOMALY, CREEP), (), CLEAR_AFTER_S, subjects=())
    # Creep: complete local days, 15-minute electricity meters.
    creep_meters = [m for m, interval in meters if m.carrier == "electricity" and interval <= 900]
    creeping: set[int] = set()
    if creep_meters:
        known = _known_starts(conn, [m.subject for m in creep_meters])
        days = creep_rules.window_days
        slots = _series(
            conn,
            _SLOTS,
            (
                [m.meter_id for m in creep_meters],
                _midnight(first_creep_day),
                _midnight(today),
                list(NIGHT_HOURS + SHOULDER_HOURS),
            ),
            start=_midnight(first_creep_day),
            step_s=900,
            length=days * 96,
        )
        for m in creep_meters:
            if m.meter_id not in slots:
                continue
            night, shoulder = night_levels(slots[m.meter_id].reshape(days, 96), creep_rules)
            found = baseload_creep(
                m, first_creep_day, night, shoulder, rules=creep_rules, known_starts=known.get(m.subject, ())
            )
            if found is not None:
                findings.append(found)
                creeping.add(m.meter_id)
    # Anomaly: yesterday and today, each against its own reference days.
    length = (anomaly_rules.reference_days + 2) * 24
    hourly = _series(
        conn,
        _HOURLY,
        ([m.meter_id for m, _ in meters], _midnight(first_hour_day), now),
        start=_midnight(first_hour_day),
        step_s=3600,
        length=length,
    )
    span = (anomaly_rules.reference_days + 1) * 24
    for m, _ in meters:
        series = hourly.get(m.meter_id)
        if series is None:
            continue
        skip = m.meter_id in creeping
        findings.extend(
            hourly_anomalies(
                m,
                yesterday,
                series[:span],
                hours_done=24,
                rules=anomaly_rules,
                skip_night=skip,
                open_end=hours_done == 0,
            )
        )
        if hours_done > 0:
            findings.extend(
                hourly_anomalies(
                    m, today, series[24:], hours_done=hours_done, rules=anomaly_rules, skip_night=skip
                )
            )
    return Detection(
        DETECTOR,
        now,
        (ANOMALY, CREEP),
        tuple(findings),
        CLEAR_AFTER_S,
        subjects=tuple(m.subject for m, _ in meters),
    )
