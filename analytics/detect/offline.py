"""Offline meters and gateways, and missing readings: rules over reading gaps. Pure.

A *gap* is two consecutive readings of a meter more than 1.5 expected intervals apart (at
least one reading missing), or the silence after a meter's last reading when that is as
long. The store (:mod:`analytics.detect.offline_store`) finds gaps in the database; these
functions decide what they mean (DOMAIN.md §8: "Offline alarms need an expected cadence per
meter, a grace period after restarts, hysteresis on clear, and suppression of meters behind
a gateway that is down"; DESIGN.md "Anomalies").

Rules (thresholds in :class:`OfflineRules`):

- ``meter.offline``: no reading for more than ``k`` × the meter's expected interval plus a
  tolerance (``threshold_s``), in event time: ``now`` − last reading. Warning, critical
  once the silence reaches ``critical_after_s`` (24 h). The episode starts at the last
  reading before the silence. It ends at the first reading after it, but only once a
  second reading has followed (hysteresis: one reading between two silences does not end
  the episode; the two silences are one episode). Meters that never reported and meters
  without an expected interval are not judged (no cadence to miss).
- ``gateway.offline``: every meter of an enterprise that was reporting is silent over the
  same window (no reading of the enterprise at all), at least two meters missed a reading,
  and for at least one of them the silence is an outage by its own threshold; or the
  gateway's retained status says ``offline`` (MQTT last will) and at least one meter has
  missed a reading since. One finding for the gateway; its meters get no offline and no
  gap finding for that silence.
- Restart grace: silence is counted from the latest (re)start of a collector when that is
  later than the last reading, so no outage opens within ``k`` intervals (+ tolerance)
  after a restart while the backlog drains. When every collector's heartbeat is stale the
  collector is down and nothing is judged (the store returns an empty scope).
- ``meter.gap``: every ended gap (a reading on both sides) that the gateway does not
  explain, per meter and local day (Asia/Shanghai) of the missing readings; info. Missing
  readings are the grid points ``prev + j × interval`` between the two readings.
- A gap whose earlier reading is off the meter's reporting grid and whose later reading is
  on it is the end of a clock skew (readings stamped early), not missing data: ignored.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from analytics.detect.localtime import local_iso, local_midnight
from analytics.findings import Finding, Severity, gateway_subject, meter_subject
from analytics.intervals import GAP_FACTOR

__all__ = [
    "GATEWAY_OFFLINE",
    "KINDS",
    "METER_GAP",
    "METER_OFFLINE",
    "Gap",
    "GatewayOutage",
    "MeterRef",
    "OfflineRules",
    "gap_findings",
    "gateway_findings",
    "gateway_outages",
    "meter_findings",
    "meter_outages",
]

METER_OFFLINE = "meter.offline"
METER_GAP = "meter.gap"
GATEWAY_OFFLINE = "gateway.offline"
KINDS = (METER_OFFLINE, GATEWAY_OFFLINE, METER_GAP)

RESUME_READINGS = 2
"""Readings after a silence that end its episode (hysteresis, DOMAIN.md §8)."""


@dataclass(frozen=True, slots=True)
class OfflineRules:
    """Thresholds of the offline rules.

    Parameters
    ----------
    k : an outage is a silence longer than ``k`` expected intervals [-].
    tolerance_share : tolerance added to the threshold, as a share of the interval [-] ...
    tolerance_min_s : ... but at least this [s] (arrival latency, the detector's cadence).
    gap_factor : consecutive readings further apart than ``gap_factor`` × interval miss a reading [-].
    critical_after_s : silence from which an outage is critical [s] (24 h).
    min_gateway_meters : meters that must have missed a reading for a data-only gateway outage [-].
    """

    k: float = 3.0
    tolerance_share: float = 0.1
    tolerance_min_s: float = 60.0
    gap_factor: float = GAP_FACTOR  # the energy accounting's gap (analytics.intervals)
    critical_after_s: float = 86_400.0
    min_gateway_meters: int = 2

    def threshold_s(self, interval_s: float) -> float:
        """Silence beyond which a meter of this interval is offline [s]."""
        return self.k * interval_s + max(self.tolerance_min_s, self.tolerance_share * interval_s)

    def gap_s(self, interval_s: float) -> float:
        """Distance between consecutive readings beyond which a reading is missing [s]."""
        return self.gap_factor * interval_s


@dataclass(frozen=True, slots=True)
class MeterRef:
    """A meter judged by the offline rules.

    Parameters
    ----------
    last_ts : the meter's last reading at or before ``now`` (None: never reported).
    interval_s : expected reporting interval [s].
    """

    meter_id: int
    meter_code: str
    enterprise_id: int
    enterprise_code: str
    park_id: int | None
    interval_s: int
    last_ts: datetime | None

    @property
    def subject(self) -> str:
        return meter_subject(self.enterprise_code, self.meter_code)


@dataclass(frozen=True, slots=True)
class Gap:
    """Two consecutive readings of a meter (or of an enterprise) with readings missing between.

    Parameters
    ----------
    key : meter id (meter gaps) or enterprise id (enterprise gaps).
    prev_ts : the reading before the gap.
    next_ts : the reading after it; None while the silence lasts at ``now``.
    prev_off_grid, next_off_grid : whether those readings lie off the reporting grid.
    """

    key: int
    prev_ts: datetime
    next_ts: datetime | None
    prev_off_grid: bool = False
    next_off_grid: bool = False

    @property
    def skew_boundary(self) -> bool:
        """The end of a clock skew (early-stamped readings, then on-grid ones), not missing data."""
        return self.prev_off_grid and self.next_ts is not None and not self.next_off_grid

    def end(self, now: datetime) -> datetime:
        return self.next_ts if self.next_ts is not None else now


@dataclass(frozen=True, slots=True)
class GatewayOutage:
    """An enterprise whose reporting meters were all silent: the gateway was offline.

    ``meter_gaps`` holds (meter id, prev_ts) of the meter gaps it explains.
    """

    enterprise_id: int
    enterprise_code: str
    park_id: int | None
    started_at: datetime
    ended_at: datetime | None
    silent_s: float
    meters: tuple[str, ...]
    status_offline_at: datetime | None
    meter_gaps: frozenset[tuple[int, datetime]] = field(default_factory=frozenset)


def _silence_start(prev_ts: datetime, restart_at: datetime | None, ongoing: bool) -> datetime:
    """Where the silence is counted from: a collector (re)start after the last reading resets it."""
    if ongoing and restart_at is not None and restart_at > prev_ts:
        return restart_at
    return prev_ts


def _merge(gaps: Sequence[Gap]) -> list[list[Gap]]:
    """Group outage gaps separated by a single reading (hysteresis: one reading is no recovery)."""
    groups: list[list[Gap]] = []
    for gap in sorted(gaps, key=lambda g: g.prev_ts):
        if groups and groups[-1][-1].next_ts == gap.prev_ts:
            groups[-1].append(gap)
        else:
            groups.append([gap])
    return groups


def _ended_at(group: Sequence[Gap], last_ts: datetime | None) -> datetime | None:
    """First reading after the episode, once at least one more reading followed it."""
    first_after = group[-1].next_ts
    if first_after is None or last_ts is None or last_ts <= first_after:
        return None
    return first_after


def gateway_outages(
    meters: Sequence[MeterRef],
    meter_gaps: Sequence[Gap],
    enterprise_gaps: Sequence[Gap],
    now: datetime,
    rules: OfflineRules,
    *,
    restart_at: datetime | None = None,
    status_offline: Mapping[int, datetime] | None = None,
) -> list[GatewayOutage]:
    """Gateway outages: enterprise-wide silences in which the reporting meters all missed readings.

    Parameters
    ----------
    meters : the meters judged (with their last reading at or before ``now``).
    meter_gaps : gaps of those meters (including ongoing silences, ``next_ts`` None).
    enterprise_gaps : gaps of each enterprise's merged reading stream (``key`` = enterprise
        id), ongoing ones included; the store keeps those longer than 1.5 × the enterprise's
        shortest interval.
    now : the run's time.
    restart_at : latest collector (re)start at or before ``now`` (restart grace), if any.
    status_offline : enterprise id → time its gateway's retained status turned ``offline``
        (at or before ``now``), for gateways whose status is ``offline``.
    """
    by_meter: dict[int, MeterRef] = {m.meter_id: m for m in meters}
    gaps_by_enterprise: dict[int, list[Gap]] = {}
    for g in meter_gaps:
        meter = by_meter.get(g.key)
        if meter is not None and not g.skew_boundary:
            gaps_by_enterprise.setdefault(meter.enterprise_id, []).append(g)
    last_by_enterprise: dict[int, datetime] = {}
    first_meter: dict[int, MeterRef] = {}
    for m in meters:
        first_meter.setdefault(m.enterprise_id, m)
        if m.last_ts is not None and (
            m.enterprise_id not in last_by_enterprise or m.last_ts > last_by_enterprise[m.enterprise_id]
        ):
            last_by_enterprise[m.enterprise_id] = m.last_ts
    status = status_offline or {}
    outage_gaps: dict[int, list[tuple[Gap, list[tuple[MeterRef, Gap]]]]] = {}
    for eg in enterprise_gaps:
        if eg.skew_boundary or eg.key not in first_meter:
            continue
        a, ongoing = eg.prev_ts, eg.next_ts is None
        end = eg.end(now)
        missing: list[tuple[MeterRef, Gap]] = []
        for g in gaps_by_enterprise.get(eg.key, ()):
            meter = by_meter[g.key]
            alive = (a - g.prev_ts).total_seconds() <= rules.gap_s(meter.interval_s)
            if ongoing:
                spans = g.next_ts is None and g.prev_ts <= a
            else:
                spans = g.prev_ts <= a and (g.next_ts is None or g.next_ts > a)
            if alive and spans:
                missing.append((meter, g))
        if not missing:
            continue
        outage = any(
            (end - _silence_start(g.prev_ts, restart_at, ongoing)).total_seconds()
            > rules.threshold_s(m.interval_s)
            for m, g in missing
        )
        # The last will says offline since this silence began: one missed reading is enough,
        # except within the restart grace.
        by_status = ongoing and eg.key in status and status[eg.key] >= a
        if by_status and restart_at is not None and restart_at > a:
            by_status = outage
        if (outage and len(missing) >= rules.min_gateway_meters) or by_status:
            outage_gaps.setdefault(eg.key, []).append((eg, missing))
    result: list[GatewayOutage] = []
    for enterprise_id, items in sorted(outage_gaps.items()):
        ref = first_meter[enterprise_id]
        missing_by_gap = {eg.prev_ts: missing for eg, missing in items}
        for group in _merge([eg for eg, _ in items]):
            ended_at = _ended_at(group, last_by_enterprise.get(enterprise_id))
            started = group[0].prev_ts
            group_end = group[-1].end(now)
            silent_s = ((ended_at or group_end) - started).total_seconds()
            # A meter's gap is the gateway's when the meter resumed with it (within its own
            # threshold); a meter still silent long after the gateway recovered is offline itself.
            explained: set[tuple[int, datetime]] = set()
            codes: set[str] = set()
            for eg in group:
                for m, g in missing_by_gap[eg.prev_ts]:
                    codes.add(m.meter_code)
                    late_s = (g.end(now) - group_end).total_seconds()
                    if group[-1].next_ts is None or late_s <= rules.threshold_s(m.interval_s):
                        explained.add((m.meter_id, g.prev_ts))
            result.append(
                GatewayOutage(
                    enterprise_id=enterprise_id,
                    enterprise_code=ref.enterprise_code,
                    park_id=ref.park_id,
                    started_at=started,
                    ended_at=ended_at,
                    silent_s=silent_s,
                    meters=tuple(sorted(codes)),
                    status_offline_at=status.get(enterprise_id) if group[-1].next_ts is None else None,
                    meter_gaps=frozenset(explained),
                )
            )
    return result


@dataclass(frozen=True, slots=True)
class MeterOutage:
    """A meter silent beyond its threshold, not explained by its gateway."""

    meter: MeterRef
    started_at: datetime
    ended_at: datetime | None
    silent_s: float
    first_after: datetime | None


def meter_outages(
    meters: Sequence[MeterRef],
    meter_gaps: Sequence[Gap],
    now: datetime,
    rules: OfflineRules,
    *,
    explained: Iterable[tuple[int, datetime]] = (),
    restart_at: datetime | None = None,
) -> list[MeterOutage]:
    """Outages of single meters: gaps beyond the meter's threshold that no gateway outage explains."""
    by_meter = {m.meter_id: m for m in meters}
    skip = set(explained)
    by_id: dict[int, list[Gap]] = {}
    for g in meter_gaps:
        meter = by_meter.get(g.key)
        if meter is None or g.skew_boundary or (g.key, g.prev_ts) in skip:
            continue
        silence = (g.end(now) - _silence_start(g.prev_ts, restart_at, g.next_ts is None)).total_seconds()
        if silence > rules.threshold_s(meter.interval_s):
            by_id.setdefault(g.key, []).append(g)
    result: list[MeterOutage] = []
    for meter_id, gaps in sorted(by_id.items()):
        meter = by_meter[meter_id]
        for group in _merge(gaps):
            ended_at = _ended_at(group, meter.last_ts)
            started = group[0].prev_ts
            silent_s = ((ended_at or group[-1].end(now)) - started).total_seconds()
            result.append(MeterOutage(meter, started, ended_at, silent_s, group[-1].next_ts))
    return result


def _severity(silent_s: float, rules: OfflineRules) -> Severity:
    # DOMAIN.md §8: an outage escalates when it lasts; 24 h of silence is critical.
    return Severity.CRITICAL if silent_s >= rules.critical_after_s else Severity.WARNING


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f}"


def meter_findings(outages: Sequence[MeterOutage], rules: OfflineRules) -> list[Finding]:
    """``meter.offline`` findings of meter outages."""
    findings: list[Finding] = []
    for o in outages:
        m = o.meter
        threshold = rules.threshold_s(m.interval_s)
        state_zh = "已恢复" if o.ended_at else "仍离线"
        state_en = "recovered" if o.ended_at else "still offline"
        findings.append(
            Finding(
                kind=METER_OFFLINE,
                severity=_severity(o.silent_s, rules),
                subject=m.subject,
                started_at=o.started_at,
                ended_at=o.ended_at,
                summary_zh=(
                    f"表计 {m.meter_code} 已 {_hours(o.silent_s)} 小时无数据"
                    f"（应每 {m.interval_s} 秒上报，阈值 {_hours(threshold)} 小时），{state_zh}"
                ),
                summary_en=(
                    f"Meter {m.meter_code}: no data for {_hours(o.silent_s)} h "
                    f"(expected every {m.interval_s} s, threshold {_hours(threshold)} h), {state_en}"
                ),
                enterprise_id=m.enterprise_id,
                meter_id=m.meter_id,
                park_id=m.park_id,
                observed=o.silent_s,
                expected_low=0.0,
                expected_high=threshold,
                score=o.silent_s / m.interval_s,
                unit="s",
                evidence={
                    "last_reading_at": local_iso(o.started_at),
                    "first_reading_after": local_iso(o.first_after) if o.first_after else None,
                    "interval_s": m.interval_s,
                    "k": rules.k,
                    "threshold_s": threshold,
                    "silent_s": o.silent_s,
                    "resume_readings": RESUME_READINGS,
                },
            )
        )
    return findings


def gateway_findings(outages: Sequence[GatewayOutage], rules: OfflineRules) -> list[Finding]:
    """``gateway.offline`` findings (one per outage, its meters named in the evidence)."""
    findings: list[Finding] = []
    for o in outages:
        state_zh = "已恢复" if o.ended_at else "仍离线"
        state_en = "recovered" if o.ended_at else "still offline"
        findings.append(
            Finding(
                kind=GATEWAY_OFFLINE,
                severity=_severity(o.silent_s, rules),
                subject=gateway_subject(o.enterprise_code),
                started_at=o.started_at,
                ended_at=o.ended_at,
                summary_zh=(
                    f"企业 {o.enterprise_code} 网关离线：{len(o.meters)} 块表计 "
                    f"{_hours(o.silent_s)} 小时无数据，{state_zh}"
                ),
                summary_en=(
                    f"Gateway of {o.enterprise_code} offline: {len(o.meters)} meters without data for "
                    f"{_hours(o.silent_s)} h, {state_en}"
                ),
                enterprise_id=o.enterprise_id,
                park_id=o.park_id,
                observed=o.silent_s,
                unit="s",
                score=float(len(o.meters)),
                evidence={
                    "last_reading_at": local_iso(o.started_at),
                    "silent_meters": list(o.meters),
                    "silent_s": o.silent_s,
                    "status_offline_at": local_iso(o.status_offline_at) if o.status_offline_at else None,
                    "k": rules.k,
                },
            )
        )
    return findings


def gap_findings(
    meters: Sequence[MeterRef],
    meter_gaps: Sequence[Gap],
    now: datetime,
    window_start: datetime,
    *,
    explained: Iterable[tuple[int, datetime]] = (),
) -> list[Finding]:
    """``meter.gap`` findings: missing readings of ended gaps, per meter and local day.

    Only local days that begin at or after ``window_start`` are reported, so that a day is
    always seen whole and its finding keeps its identity (first missing reading) from run
    to run. The current day's finding stays open (``ended_at`` None) until the day is over.
    """
    by_meter = {m.meter_id: m for m in meters}
    skip = set(explained)
    days: dict[tuple[int, datetime], list[datetime]] = {}
    for g in meter_gaps:
        meter = by_meter.get(g.key)
        if meter is None or g.next_ts is None or g.skew_boundary or (g.key, g.prev_ts) in skip:
            continue
        step = timedelta(seconds=meter.interval_s)
        count = round((g.next_ts - g.prev_ts) / step) - 1
        for j in range(1, count + 1):
            t = g.prev_ts + j * step
            day = local_midnight(t)
            if day >= window_start and t <= now:
                days.setdefault((g.key, day), []).append(t)
    findings: list[Finding] = []
    for (meter_id, day), times in sorted(days.items()):
        meter = by_meter[meter_id]
        times.sort()
        day_over = day + timedelta(days=1) <= now
        date = day.date().isoformat()
        findings.append(
            Finding(
                kind=METER_GAP,
                severity=Severity.INFO,
                subject=meter.subject,
                started_at=times[0],
                ended_at=times[-1] if day_over else None,
                summary_zh=f"表计 {meter.meter_code} 在 {date} 缺少 {len(times)} 条读数",
                summary_en=f"Meter {meter.meter_code}: {len(times)} readings missing on {date}",
                enterprise_id=meter.enterprise_id,
                meter_id=meter.meter_id,
                park_id=meter.park_id,
                observed=float(len(times)),
                expected_low=0.0,
                expected_high=0.0,
                unit="readings",
                evidence={
                    "day": date,
                    "missing": len(times),
                    "missing_at": [local_iso(t) for t in times],
                    "interval_s": meter.interval_s,
                },
            )
        )
    return findings
