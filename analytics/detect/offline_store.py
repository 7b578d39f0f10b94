"""Offline meters and gateways, and missing readings: the queries feeding :mod:`analytics.detect.offline`.

Everything is read as of ``now`` in event time (``ingest.reading.ts <= now``), over a
bounded lookback (:data:`LOOKBACK_S`, two days): per meter its last reading at or before
``now`` (one backward step on the primary key (meter_id, ts)), the reading before the
lookback and the readings inside it (a range of the same key), from which the gaps of each
meter and of each enterprise's merged stream are computed in the database.

Collector state (``ingest.collector_stats``) gives the restart grace and the collector-down
rule: a collector start after ``now`` (a replay of history) is ignored; when every
collector that had started by ``now`` has a heartbeat (``updated_at``) older than
:data:`HEARTBEAT_STALE_S`, the collector is down and the run judges nothing (an empty scope:
open alerts stay as they are; Grafana's collector-down rule reports the outage). No
collector rows at all: no grace, never down.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import psycopg

from analytics.detect.delivery import DeliveryRules
from analytics.detect.localtime import LOCAL_OFFSET_S
from analytics.detect.offline import (
    GATEWAY_OFFLINE,
    KINDS,
    METER_GAP,
    METER_OFFLINE,
    Gap,
    MeterRef,
    OfflineRules,
    gap_findings,
    gateway_findings,
    gateway_outages,
    meter_findings,
    meter_outages,
)
from analytics.findings import Detection, Finding, gateway_subject

__all__ = ["DETECTOR", "HEARTBEAT_STALE_S", "LOOKBACK_S", "OFF_GRID_TOLERANCE_S", "detect_offline"]

Connection = psycopg.Connection[Any]

DETECTOR = "offline"
LOOKBACK_S = 2 * 86_400.0
"""Gaps are looked for in the last two days: the whole previous local day is always inside."""
HEARTBEAT_STALE_S = 600.0
"""The collector is down when no collector committed a batch for this long (as Grafana's
collector-down rule, dashboards/alerts.py)."""
OFF_GRID_TOLERANCE_S = DeliveryRules().off_grid_s
"""A reading at least this far from its meter's reporting grid is off grid [s]: the
clock-skew rule's tolerance (``DeliveryRules.off_grid_s``), so that the gap ending a skew
(:attr:`~analytics.detect.offline.Gap.skew_boundary`) is the one that rule reports."""
CLEAR_AFTER_S = {METER_OFFLINE: 1800.0, GATEWAY_OFFLINE: 1800.0, METER_GAP: 0.0}
"""An open outage alert that runs no longer find is cleared after 30 min (hysteresis)."""

# Meters with a cadence, and their last reading at or before now (PK (meter_id, ts), backward).
_METERS = """
SELECT m.meter_id, m.meter_code, e.enterprise_id, e.enterprise_code, e.park_id, m.expected_interval_s,
       last.ts
FROM registry.meter m
JOIN registry.enterprise e USING (enterprise_id)
LEFT JOIN LATERAL (
    SELECT r.ts FROM ingest.reading r
    WHERE r.meter_id = m.meter_id AND r.ts <= %(now)s
    ORDER BY r.ts DESC LIMIT 1
) last ON true
WHERE m.expected_interval_s IS NOT NULL AND (m.retired_at IS NULL OR m.retired_at > %(now)s)
ORDER BY m.meter_id
"""

# Gaps of each meter and of each enterprise's merged stream whose later reading lies in the
# lookback. Each meter contributes its last reading at or before the lookback's start (so a
# gap straddling the start is exact) and its readings in (start, now]. A reading is off grid
# when it is at least %(tol)s s from the nearest point of its meter's grid, which is aligned
# to local midnight (UTC+8, DESIGN.md wire contract).
_GAPS = """
WITH m AS (
    SELECT meter_id, enterprise_id, expected_interval_s AS iv
    FROM registry.meter
    WHERE expected_interval_s IS NOT NULL AND (retired_at IS NULL OR retired_at > %(now)s)
), w AS (
    SELECT m.meter_id, m.enterprise_id, m.iv, r.ts,
           least(mod(extract(epoch FROM r.ts) + %(local_s)s, m.iv),
                 m.iv - mod(extract(epoch FROM r.ts) + %(local_s)s, m.iv)) >= %(tol)s AS off_grid
    FROM m CROSS JOIN LATERAL (
        (SELECT r.ts FROM ingest.reading r
         WHERE r.meter_id = m.meter_id AND r.ts <= %(start)s ORDER BY r.ts DESC LIMIT 1)
        UNION ALL
        (SELECT r.ts FROM ingest.reading r
         WHERE r.meter_id = m.meter_id AND r.ts > %(start)s AND r.ts <= %(now)s)
    ) r
), mg AS (
    SELECT meter_id, iv, ts, off_grid,
           lag(ts) OVER (PARTITION BY meter_id ORDER BY ts) AS prev_ts,
           lag(off_grid) OVER (PARTITION BY meter_id ORDER BY ts) AS prev_off
    FROM w
), eg AS (
    SELECT enterprise_id, ts, off_grid,
           min(iv) OVER (PARTITION BY enterprise_id) AS min_iv,
           lag(ts) OVER (PARTITION BY enterprise_id ORDER BY ts, off_grid) AS prev_ts,
           lag(off_grid) OVER (PARTITION BY enterprise_id ORDER BY ts, off_grid) AS prev_off
    FROM w
)
SELECT 'meter' AS scope, meter_id AS key, prev_ts, ts, prev_off, off_grid
FROM mg
WHERE prev_ts IS NOT NULL AND ts > %(start)s AND ts - prev_ts > make_interval(secs => %(factor)s * iv)
UNION ALL
SELECT 'enterprise', enterprise_id, prev_ts, ts, prev_off, off_grid
FROM eg
WHERE prev_ts IS NOT NULL AND ts > %(start)s AND ts - prev_ts > make_interval(secs => %(factor)s * min_iv)
"""

_COLLECTORS = "SELECT started_at, updated_at FROM ingest.collector_stats"

_STATUS_OFFLINE = """
SELECT enterprise_id, changed_at FROM ingest.gateway_status
WHERE status = 'offline' AND changed_at <= %(now)s
"""


def _collector_state(conn: Connection, now: datetime) -> tuple[datetime | None, bool]:
    """(latest collector start at or before ``now``, whether every collector is down at ``now``)."""
    rows = [(s, u) for s, u in conn.execute(_COLLECTORS).fetchall() if s <= now]
    if not rows:
        return None, False
    stale = now - timedelta(seconds=HEARTBEAT_STALE_S)
    down = all(u < stale for _, u in rows)
    return max(s for s, _ in rows), down


def detect_offline(conn: Connection, now: datetime, rules: OfflineRules | None = None) -> Detection:
    """Offline meters and gateways, and missing readings, as of ``now`` (event time).

    Parameters
    ----------
    conn : a connection that may read ``registry`` and ``ingest``.
    now : the run's time (timezone-aware); only readings with ``ts <= now`` are used.
    rules : thresholds (default :class:`OfflineRules`: k = 3, 24 h to critical).

    Returns
    -------
    Detection
        Kinds ``meter.offline``, ``gateway.offline``, ``meter.gap``; subjects are the meters
        with a cadence that have reported and their gateways, less the meters and gateways
        whose outage is held back by the restart grace (their open alerts stay as they
        are); no subjects at all when the collector is down.
    """
    rules = rules or OfflineRules()
    start = now - timedelta(seconds=LOOKBACK_S)
    restart_at, down = _collector_state(conn, now)
    if down:
        return Detection(DETECTOR, now, KINDS, (), CLEAR_AFTER_S, subjects=frozenset())
    meters = [
        MeterRef(int(mid), str(code), int(eid), str(ecode), int(pid), int(iv), ts)
        for mid, code, eid, ecode, pid, iv, ts in conn.execute(_METERS, {"now": now}).fetchall()
    ]
    seen = [m for m in meters if m.last_ts is not None]
    params = {
        "now": now,
        "start": start,
        "local_s": LOCAL_OFFSET_S,
        "tol": OFF_GRID_TOLERANCE_S,
        "factor": rules.gap_factor,
    }
    meter_gaps: list[Gap] = []
    enterprise_gaps: list[Gap] = []
    for scope, key, prev_ts, ts, prev_off, off in conn.execute(_GAPS, params).fetchall():
        gap = Gap(int(key), prev_ts, ts, bool(prev_off), bool(off))
        (meter_gaps if scope == "meter" else enterprise_gaps).append(gap)
    # Ongoing silences: after the last reading of each meter and of each enterprise.
    enterprise_last: dict[int, datetime] = {}
    enterprise_min_iv: dict[int, int] = {}
    for m in seen:
        assert m.last_ts is not None
        if (now - m.last_ts).total_seconds() > rules.gap_s(m.interval_s):
            meter_gaps.append(Gap(m.meter_id, m.last_ts, None))
        if m.enterprise_id not in enterprise_last or m.last_ts > enterprise_last[m.enterprise_id]:
            enterprise_last[m.enterprise_id] = m.last_ts
        known = enterprise_min_iv.get(m.enterprise_id, m.interval_s)
        enterprise_min_iv[m.enterprise_id] = min(known, m.interval_s)
    for eid, last in enterprise_last.items():
        if (now - last).total_seconds() > rules.gap_s(enterprise_min_iv[eid]):
            enterprise_gaps.append(Gap(eid, last, None))
    status = {int(e): t for e, t in conn.execute(_STATUS_OFFLINE, {"now": now}).fetchall()}
    gateways = gateway_outages(
        seen, meter_gaps, enterprise_gaps, now, rules, restart_at=restart_at, status_offline=status
    )
    explained = {key for o in gateways for key in o.meter_gaps}
    outages = meter_outages(seen, meter_gaps, now, rules, explained=explained, restart_at=restart_at)
    findings: list[Finding] = [
        *gateway_findings(gateways, rules),
        *meter_findings(outages, rules),
        *gap_findings(seen, meter_gaps, now, start, explained=explained),
    ]
    subjects = {m.subject for m in seen} | {gateway_subject(m.enterprise_code) for m in seen}
    if restart_at is not None:
        # Restart grace: an outage held back by it is not judged yet; its open alert stays.
        held = _held_by_grace(seen, meter_gaps, enterprise_gaps, now, rules, status=status)
        subjects -= held - {f.subject for f in findings}
    return Detection(DETECTOR, now, KINDS, tuple(findings), CLEAR_AFTER_S, subjects=frozenset(subjects))


def _held_by_grace(
    meters: list[MeterRef],
    meter_gaps: list[Gap],
    enterprise_gaps: list[Gap],
    now: datetime,
    rules: OfflineRules,
    *,
    status: dict[int, datetime],
) -> set[str]:
    """Subjects whose ongoing outage the restart grace holds back (found without the grace)."""
    ungraced_gw = gateway_outages(meters, meter_gaps, enterprise_gaps, now, rules, status_offline=status)
    explained = {key for o in ungraced_gw for key in o.meter_gaps}
    ungraced = meter_outages(meters, meter_gaps, now, rules, explained=explained)
    held = {gateway_subject(o.enterprise_code) for o in ungraced_gw if o.ended_at is None}
    held |= {o.meter.subject for o in ungraced if o.ended_at is None}
    return held
