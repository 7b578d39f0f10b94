"""Late delivery, clock skew and quarantine: the queries feeding :mod:`analytics.detect.delivery`.

Readings are read as of ``now`` in event time (``ts <= now``) over a two-day lookback
(:data:`LOOKBACK_S`), per meter through the primary key (meter_id, ts). The lookback is
bounded by event time, not by ``received_at``: after a backfill, ``received_at`` is the
wall-clock time of the backfill, unrelated to the ``now`` of a replay; arrival order is
what the lateness rule needs, and it holds in both cases.

Arrival order within one transaction is the rows' physical order (``ctid``): the collector
inserts a batch in arrival order into an append-only table. With TimescaleDB this holds
within a chunk (7 days of ts); a compressed chunk (older than 30 days) has no such order,
so a replay of history older than that on TimescaleDB sees only transaction order.

Quarantine rows are those received after the lookback's start (index on ``received_at``):
in live operation the last two days; when history is replayed every row received since,
whose event time (the reading times inside the payload) then decides the day and whether
it is already visible at ``now``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import psycopg

from analytics.detect.delivery import (
    CLOCK_SKEW,
    DELIVERY_LATE,
    QUARANTINE_PREFIXES,
    DeliveryRules,
    GatewayRef,
    LateReading,
    OffGridReading,
    QuarantineRow,
    late_findings,
    quarantine_findings,
    quarantine_kind,
    skew_findings,
)
from analytics.detect.localtime import LOCAL_OFFSET_S
from analytics.findings import Detection

__all__ = ["DETECTOR", "LOOKBACK_S", "detect_delivery"]

Connection = psycopg.Connection[Any]

DETECTOR = "delivery"
LOOKBACK_S = 2 * 86_400.0
CLEAR_AFTER_S = {DELIVERY_LATE: 3600.0, CLOCK_SKEW: 3600.0}

# Readings of the lookback with their deviation from the meter's reporting grid (aligned to
# local midnight, UTC+8) and, for on-grid readings, their lateness: the greatest ts of the
# enterprise's on-grid readings that arrived before it, minus its ts; or received_at - ts once
# received by now. Arrival order is received_at, then, among readings committed together
# (they share received_at), the order the collector inserted them in, which is their arrival
# order (INSERT ... ORDER BY arrival into an append-only table: the row's physical position).
_READINGS = """
WITH w AS (
    SELECT m.enterprise_id, m.meter_id, m.meter_code, m.expected_interval_s AS iv, r.ts, r.received_at,
           r.ctid AS pos,
           CASE WHEN m.expected_interval_s IS NULL THEN 0
                ELSE mod(extract(epoch FROM r.ts) + %(local_s)s, m.expected_interval_s) END AS phase
    FROM registry.meter m
    CROSS JOIN LATERAL (
        SELECT r.ts, r.received_at, r.ctid FROM ingest.reading r
        WHERE r.meter_id = m.meter_id AND r.ts > %(start)s AND r.ts <= %(now)s
    ) r
), d AS (
    SELECT w.*, CASE WHEN phase * 2 <= coalesce(iv, 0) THEN phase ELSE phase - iv END AS dev
    FROM w
), g AS (
    SELECT d.*, abs(dev) < %(tol)s AS on_grid FROM d
), l AS (
    SELECT g.*,
           greatest(
               extract(epoch FROM max(ts) OVER (
                   PARTITION BY enterprise_id ORDER BY received_at, pos
                   ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) - ts),
               CASE WHEN received_at <= %(now)s THEN extract(epoch FROM received_at - ts) END,
               0) AS lateness_s
    FROM g WHERE on_grid
), late AS (
    SELECT l.*, lateness_s > greatest(%(late_min)s, %(late_factor)s * coalesce(iv, 0)) AS is_late FROM l
)
SELECT 'late' AS what, enterprise_id, meter_code, iv, ts, lateness_s::float8 FROM late WHERE is_late
UNION ALL
SELECT 'on_time', enterprise_id, NULL, NULL, max(ts), NULL FROM late WHERE NOT is_late GROUP BY enterprise_id
UNION ALL
SELECT 'off_grid', enterprise_id, meter_code, iv, ts, dev::float8 FROM g WHERE NOT on_grid
UNION ALL
SELECT 'on_grid', enterprise_id, NULL, NULL, max(ts), NULL FROM g WHERE on_grid GROUP BY enterprise_id
UNION ALL
SELECT 'meters', enterprise_id, NULL, count(DISTINCT meter_id)::int, NULL, NULL FROM g GROUP BY enterprise_id
"""

_QUARANTINE = """
SELECT received_at, topic, payload, reason, detail FROM ingest.quarantine
WHERE received_at > %(start)s
ORDER BY quarantine_id
"""

# Every enterprise (its gateway), and the codes and ids of its meters.
_IDS = """
SELECT e.enterprise_code, m.meter_code, e.enterprise_id, m.meter_id, e.park_id
FROM registry.enterprise e LEFT JOIN registry.meter m USING (enterprise_id)
"""


def detect_delivery(conn: Connection, now: datetime, rules: DeliveryRules | None = None) -> Detection:
    """Late delivery, clock skew and quarantined messages as of ``now``.

    Parameters
    ----------
    conn : a connection that may read ``registry`` and ``ingest``.
    now : the run's time (timezone-aware); only readings with ``ts <= now`` are used.
    rules : thresholds (default :class:`DeliveryRules`).

    Returns
    -------
    Detection
        Kinds ``delivery.late``, ``clock.skew`` and ``quarantine.<prefix>`` for every known
        reason prefix (and any other found); every subject of these kinds is in scope.
    """
    rules = rules or DeliveryRules()
    start = now - timedelta(seconds=LOOKBACK_S)
    params = {
        "now": now,
        "start": start,
        "local_s": LOCAL_OFFSET_S,
        "tol": rules.off_grid_s,
        "late_min": rules.late_min_s,
        "late_factor": rules.late_intervals,
    }
    late: list[LateReading] = []
    off_grid: list[OffGridReading] = []
    last_on_time: dict[int, datetime] = {}
    last_on_grid: dict[int, datetime] = {}
    reporting: dict[int, int] = {}
    for what, eid, meter_code, iv, ts, value in conn.execute(_READINGS, params).fetchall():
        if what == "late":
            late.append(LateReading(int(eid), str(meter_code), ts, float(value), iv))
        elif what == "off_grid":
            off_grid.append(OffGridReading(int(eid), str(meter_code), ts, float(value), int(iv)))
        elif what == "on_time":
            last_on_time[int(eid)] = ts
        elif what == "on_grid":
            last_on_grid[int(eid)] = ts
        else:
            reporting[int(eid)] = int(iv)
    gateways: dict[int, GatewayRef] = {}
    ids: dict[tuple[str, str | None], tuple[int | None, int | None, int | None]] = {}
    for ecode, mcode, eid, mid, pid in conn.execute(_IDS).fetchall():
        gateways[int(eid)] = GatewayRef(int(eid), str(ecode), int(pid), reporting.get(int(eid), 0))
        ids[(str(ecode), None)] = (int(eid), None, int(pid))
        if mcode is not None:
            ids[(str(ecode), str(mcode))] = (int(eid), int(mid), int(pid))
    rows = [
        QuarantineRow(at, str(topic), bytes(payload), str(reason), str(detail))
        for at, topic, payload, reason, detail in conn.execute(_QUARANTINE, {"start": start}).fetchall()
    ]
    findings = [
        *late_findings(late, gateways, last_on_time, start, rules),
        *skew_findings(off_grid, gateways, last_on_grid, start, rules),
        *quarantine_findings(rows, now, start, ids),
    ]
    kinds = {DELIVERY_LATE, CLOCK_SKEW, *(f"quarantine.{p}" for p in QUARANTINE_PREFIXES)}
    kinds |= {quarantine_kind(r.reason) for r in rows}
    return Detection(DETECTOR, now, tuple(sorted(kinds)), tuple(findings), CLEAR_AFTER_S)
