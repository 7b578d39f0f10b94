"""Late delivery, gateway clock skew and quarantined messages: rules over what arrived. Pure.

The store (:mod:`analytics.detect.delivery_store`) selects the readings concerned; these
functions group them into episodes of a gateway (an enterprise's MQTT connection) or into
one finding per subject and local day (DOMAIN.md §8: "Event time, not arrival time";
STYLE.md lesson 4: every data problem becomes a record with a dotted reason code).

Rules (thresholds in :class:`DeliveryRules`):

- ``delivery.late``: a reading's lateness is the larger of (a) how far the enterprise's
  data had already advanced when it arrived: the greatest ``ts`` among the enterprise's
  readings that arrived before it, minus its ``ts`` — arrival order is ``received_at``, then
  the order the collector inserted the readings of one transaction in; this holds for a
  fast backfill too, where ``received_at`` is wall-clock time, as long as the publisher
  sends readings in event-time order (a backfill that packs hours of a gateway's readings
  into one message sends its older readings after newer ones of other messages) — and
  (b) in live operation, ``received_at − ts`` (only when ``received_at <= now``).
  A reading is late when its lateness exceeds max(30 min, 2 × its meter's interval). Late
  readings of an enterprise closer than ``split_s`` in event time form one episode, kept
  when it has at least ``min_late_readings``; warning. The episode ends at its last late
  reading once an on-time reading of the enterprise follows it. Readings off the reporting
  grid are left to the clock-skew rule.
- ``clock.skew``: readings at least 1 s off their meter's reporting grid (grid aligned to
  local midnight; deviation = distance to the nearest grid point, signed). Off-grid
  readings of an enterprise closer than ``split_s`` form one episode, kept when it has at
  least ``min_skew_readings`` readings, of at least two meters (when the enterprise has two
  reporting), and its deviations agree (for each interval, ``consistent_share`` of them
  within ``consistent_within_s`` of their median): a gateway stamping all its meters with
  one wrong clock, not jitter. Evidence: the median deviation (``offset_s``, modulo the
  meters' interval). Warning. Ends at the last off-grid reading once an on-grid one follows.
- ``quarantine.<prefix>``: quarantined messages by subject (the meter of the topic
  ``…/<enterprise>/<meter>``, else ``topic:<topic>``), kind (first part of the reason code:
  ``payload.undecodable`` → ``quarantine.payload``) and local day of their event time: the
  earliest reading time inside the payload when one parses (from JSON, else found in the
  text of a truncated payload; a time cut short gives its date, hour and minute, read as
  local time), is not before 2015 and not after receipt + 5 min, and the
  reason is not a ``timestamp.*`` one; otherwise the receipt time. Warning; info for
  ``value.not_numeric`` and ``value.missing`` (a device saying "unavailable": missing,
  never 0). Counts per reason and an example detail in the evidence.
"""

from __future__ import annotations

import json
import re
import statistics
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from analytics.detect.localtime import LOCAL, local_iso, local_midnight
from analytics.findings import Finding, Severity, gateway_subject, meter_subject

__all__ = [
    "CLOCK_SKEW",
    "DELIVERY_LATE",
    "QUARANTINE_PREFIXES",
    "DeliveryRules",
    "GatewayRef",
    "LateReading",
    "OffGridReading",
    "QuarantineRow",
    "late_findings",
    "late_threshold_s",
    "payload_event_time",
    "quarantine_findings",
    "quarantine_kind",
    "skew_findings",
    "topic_subject",
]

DELIVERY_LATE = "delivery.late"
CLOCK_SKEW = "clock.skew"
QUARANTINE_PREFIXES = ("topic", "payload", "registry", "unit", "timestamp", "value", "db")
"""Reason prefixes of the collector's quarantine codes (docs/collector.md)."""

EARLIEST = datetime(2015, 1, 1, tzinfo=LOCAL)  # collector: timestamp.too_old
FUTURE_TOLERANCE = timedelta(minutes=5)  # collector: timestamp.future
INFO_REASONS = frozenset({"value.not_numeric", "value.missing"})

_CODE = re.compile(r"[0-9A-Za-z_-]+")
_METER_CODE = re.compile(r"[0-9A-Za-z.-][0-9A-Za-z_.-]*")
_TS_IN_TEXT = re.compile(r'"ts"\s*:\s*(?:"([^"]+)"|(-?[0-9]+))')
# The start of a quoted time cut off by truncation: a local date, hour and minute at most.
_TS_PREFIX = re.compile(r'"ts"\s*:\s*"([0-9]{4})-([0-9]{2})-([0-9]{2})(?:[T ]([0-9]{2})(?::([0-9]{2}))?)?')


@dataclass(frozen=True, slots=True)
class DeliveryRules:
    """Thresholds of the delivery rules.

    Parameters
    ----------
    late_min_s : a reading is late beyond max(late_min_s, late_intervals × interval) [s].
    late_intervals : see ``late_min_s`` [-].
    min_late_readings : late readings an episode needs [-].
    split_s : readings of an enterprise further apart than this in event time are two episodes [s].
    off_grid_s : a reading this far from its grid or further is off grid [s].
    min_skew_readings : off-grid readings a skew episode needs [-].
    consistent_within_s, consistent_share : agreement of the deviations [s], [-].
    """

    late_min_s: float = 1800.0
    late_intervals: float = 2.0
    min_late_readings: int = 2
    split_s: float = 4 * 3600.0
    off_grid_s: float = 1.0
    min_skew_readings: int = 4
    consistent_within_s: float = 2.0
    consistent_share: float = 0.8


def late_threshold_s(interval_s: float | None, rules: DeliveryRules) -> float:
    """Lateness beyond which a reading is late [s]: max(30 min, 2 × interval)."""
    return max(rules.late_min_s, rules.late_intervals * (interval_s or 0.0))


@dataclass(frozen=True, slots=True)
class GatewayRef:
    """An enterprise's gateway: its ids, and how many of its meters reported in the lookback."""

    enterprise_id: int
    enterprise_code: str
    park_id: int | None
    meters_reporting: int = 0

    @property
    def subject(self) -> str:
        return gateway_subject(self.enterprise_code)


@dataclass(frozen=True, slots=True)
class LateReading:
    """A reading delivered late: ``lateness_s`` [s] beyond its threshold."""

    enterprise_id: int
    meter_code: str
    ts: datetime
    lateness_s: float
    interval_s: int | None


@dataclass(frozen=True, slots=True)
class OffGridReading:
    """A reading off its meter's reporting grid by ``deviation_s`` [s] (signed, |·| <= interval / 2)."""

    enterprise_id: int
    meter_code: str
    ts: datetime
    deviation_s: float
    interval_s: int


def _clusters(times: Sequence[datetime], split_s: float) -> list[tuple[int, int]]:
    """Index ranges [i, j) of sorted ``times`` with no step above ``split_s``."""
    out: list[tuple[int, int]] = []
    start = 0
    for i in range(1, len(times) + 1):
        if i == len(times) or (times[i] - times[i - 1]).total_seconds() > split_s:
            out.append((start, i))
            start = i
    return [c for c in out if c[1] > c[0]]


_R = TypeVar("_R", LateReading, OffGridReading)


def _gateway_episodes(
    readings: Sequence[_R], gateways: Mapping[int, GatewayRef], split_s: float
) -> Iterator[tuple[GatewayRef, list[_R]]]:
    """Per known gateway (by enterprise id), its readings closer than ``split_s`` in event time."""
    by_enterprise: dict[int, list[_R]] = {}
    for r in readings:
        by_enterprise.setdefault(r.enterprise_id, []).append(r)
    for eid, rows in sorted(by_enterprise.items()):
        gw = gateways.get(eid)
        if gw is None:
            continue
        rows.sort(key=lambda r: (r.ts, r.meter_code))
        for i, j in _clusters([r.ts for r in rows], split_s):
            yield gw, rows[i:j]


def _episode_end(
    first: datetime, last: datetime, last_good: datetime | None, window_start: datetime, rules: DeliveryRules
) -> tuple[bool, datetime | None]:
    """(whether the episode is reported, its end): it ends at ``last`` once a good reading
    follows; an ended episode that may have begun before the lookback is left out (its start,
    hence its identity, is not known)."""
    ended_at = last if last_good is not None and last_good > last else None
    truncated = (first - window_start).total_seconds() <= rules.split_s
    return not (ended_at is not None and truncated), ended_at


def late_findings(
    late: Sequence[LateReading],
    gateways: Mapping[int, GatewayRef],
    last_on_time: Mapping[int, datetime],
    window_start: datetime,
    rules: DeliveryRules,
) -> list[Finding]:
    """``delivery.late`` findings: one per gateway episode of late readings.

    Parameters
    ----------
    late : the late readings of the lookback (lateness above their threshold).
    gateways : the enterprises by id.
    last_on_time : per enterprise, its latest reading that was not late (on grid).
    window_start : start of the lookback; an ended episode that may have begun before it
        is left out (its start is not known).
    """
    findings: list[Finding] = []
    for gw, episode in _gateway_episodes(late, gateways, rules.split_s):
        eid = gw.enterprise_id
        if len(episode) < rules.min_late_readings:
            continue
        first, last = episode[0].ts, episode[-1].ts
        kept, ended_at = _episode_end(first, last, last_on_time.get(eid), window_start, rules)
        if not kept:
            continue
        worst = max(r.lateness_s for r in episode)
        threshold = min(late_threshold_s(r.interval_s, rules) for r in episode)
        meters = sorted({r.meter_code for r in episode})
        findings.append(
            Finding(
                kind=DELIVERY_LATE,
                severity=Severity.WARNING,
                subject=gw.subject,
                started_at=first,
                ended_at=ended_at,
                summary_zh=(
                    f"企业 {gw.enterprise_code} 网关迟到上报：{len(episode)} 条读数，"
                    f"最多晚 {worst / 60:.0f} 分钟"
                ),
                summary_en=(
                    f"Gateway of {gw.enterprise_code} delivered late: {len(episode)} readings, "
                    f"up to {worst / 60:.0f} min late"
                ),
                enterprise_id=eid,
                park_id=gw.park_id,
                observed=worst,
                expected_low=0.0,
                expected_high=threshold,
                score=worst / threshold,
                unit="s",
                evidence={
                    "max_lateness_s": worst,
                    "readings": len(episode),
                    "meters": meters,
                    "first_ts": local_iso(first),
                    "last_ts": local_iso(last),
                    "threshold_s": threshold,
                    "lateness": "max(greatest ts received before - ts, received_at - ts if received)",
                },
            )
        )
    return findings


def skew_findings(
    off_grid: Sequence[OffGridReading],
    gateways: Mapping[int, GatewayRef],
    last_on_grid: Mapping[int, datetime],
    window_start: datetime,
    rules: DeliveryRules,
) -> list[Finding]:
    """``clock.skew`` findings: one per gateway episode of consistently off-grid readings.

    Parameters
    ----------
    off_grid : the off-grid readings of the lookback.
    gateways : the enterprises by id (``meters_reporting`` decides whether two meters are needed).
    last_on_grid : per enterprise, its latest on-grid reading.
    window_start : start of the lookback (see :func:`late_findings`).
    """
    findings: list[Finding] = []
    for gw, episode in _gateway_episodes(off_grid, gateways, rules.split_s):
        eid = gw.enterprise_id
        meters = sorted({r.meter_code for r in episode})
        if len(episode) < rules.min_skew_readings or len(meters) < min(2, max(1, gw.meters_reporting)):
            continue
        by_interval: dict[int, list[float]] = {}
        for r in episode:
            by_interval.setdefault(r.interval_s, []).append(r.deviation_s)
        medians = {iv: statistics.median(devs) for iv, devs in by_interval.items()}
        agree = sum(
            1
            for iv, devs in by_interval.items()
            for d in devs
            if abs(d - medians[iv]) <= rules.consistent_within_s
        )
        if agree < rules.consistent_share * len(episode):
            continue
        first, last = episode[0].ts, episode[-1].ts
        kept, ended_at = _episode_end(first, last, last_on_grid.get(eid), window_start, rules)
        if not kept:
            continue
        main = min(by_interval)  # the shortest interval: the most readings
        offset = medians[main]
        findings.append(
            Finding(
                kind=CLOCK_SKEW,
                severity=Severity.WARNING,
                subject=gw.subject,
                started_at=first,
                ended_at=ended_at,
                summary_zh=(
                    f"企业 {gw.enterprise_code} 网关时钟偏差：{len(episode)} 条读数偏离上报时刻 "
                    f"{offset:+.0f} 秒（按 {main} 秒周期）"
                ),
                summary_en=(
                    f"Gateway of {gw.enterprise_code} clock skew: {len(episode)} readings "
                    f"{offset:+.0f} s off the reporting grid (modulo {main} s)"
                ),
                enterprise_id=eid,
                park_id=gw.park_id,
                observed=offset,
                expected_low=-rules.off_grid_s,
                expected_high=rules.off_grid_s,
                score=float(agree) / len(episode),
                unit="s",
                evidence={
                    "offset_s": offset,
                    "offset_by_interval_s": {str(iv): m for iv, m in sorted(medians.items())},
                    "readings": len(episode),
                    "meters": meters,
                    "first_ts": local_iso(first),
                    "last_ts": local_iso(last),
                    "off_grid_s": rules.off_grid_s,
                },
            )
        )
    return findings


# --- quarantine -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QuarantineRow:
    """One quarantined message: receipt time, topic, payload bytes, reason code and detail."""

    received_at: datetime
    topic: str
    payload: bytes
    reason: str
    detail: str


def quarantine_kind(reason: str) -> str:
    """``quarantine.<first part of the reason code>``: ``payload.undecodable`` → ``quarantine.payload``."""
    return "quarantine." + reason.partition(".")[0]


def topic_subject(topic: str) -> tuple[str, str | None, str | None]:
    """(subject, enterprise code, meter code) of a quarantined message's topic.

    ``…/<enterprise>/<meter>`` gives ``meter:<enterprise>/<meter>``; anything else
    (a gateway's ``_batch`` or ``_status``, a malformed topic) ``topic:<topic>``.
    """
    parts = topic.split("/")
    if len(parts) >= 3 and _CODE.fullmatch(parts[-2]) and _METER_CODE.fullmatch(parts[-1]):
        return meter_subject(parts[-2], parts[-1]), parts[-2], parts[-1]
    return f"topic:{topic}", None, None


def _parse_ts(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        try:
            return datetime.fromtimestamp(value / 1000.0, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"-?[0-9]+", text):
            return _parse_ts(int(text))
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            return None
        return parsed if parsed.tzinfo is not None else None
    return None


def _payload_times(payload: bytes) -> list[datetime]:
    text = payload.decode("utf-8", errors="replace")
    values: list[object] = []
    try:
        doc: Any = json.loads(text)
    except ValueError:
        doc = None
        for quoted, number in _TS_IN_TEXT.findall(text):
            values.append(quoted if quoted else int(number))
        if not values:  # cut inside the first time: its date (and hour, minute), read as local
            for y, mo, d, h, mi in _TS_PREFIX.findall(text):
                try:
                    values.append(datetime(int(y), int(mo), int(d), int(h or 0), int(mi or 0), tzinfo=LOCAL))
                except ValueError:
                    continue
    if isinstance(doc, dict):
        values.append(doc.get("ts"))
        items = doc.get("readings")
        if isinstance(items, list):
            values.extend(item.get("ts") for item in items if isinstance(item, dict))
    return [t for t in (_parse_ts(v) for v in values) if t is not None]


def payload_event_time(row: QuarantineRow) -> datetime:
    """Event time of a quarantined message: its earliest plausible reading time, else its receipt."""
    if not row.reason.startswith("timestamp."):
        times = [
            t for t in _payload_times(row.payload) if EARLIEST <= t <= row.received_at + FUTURE_TOLERANCE
        ]
        if times:
            return min(times)
    return row.received_at


def quarantine_findings(
    rows: Iterable[QuarantineRow],
    now: datetime,
    window_start: datetime,
    ids: Mapping[tuple[str, str | None], tuple[int | None, int | None, int | None]] | None = None,
) -> list[Finding]:
    """``quarantine.<prefix>`` findings: per subject, kind and local day of the messages' event time.

    Parameters
    ----------
    rows : quarantined messages.
    now : the run's time; messages whose event time is later are left for later runs.
    window_start : only local days beginning at or after it are reported (seen whole).
    ids : (enterprise code, meter code or None) → (enterprise id, meter id, park id), for
        the registry ids of a finding when the topic names registered ones.
    """
    known = ids or {}
    groups: dict[tuple[str, str, datetime], list[tuple[datetime, QuarantineRow]]] = {}
    codes: dict[str, tuple[str | None, str | None]] = {}
    for row in rows:
        at = payload_event_time(row)
        day = local_midnight(at)
        if at > now or day < window_start:
            continue
        subject, enterprise, meter = topic_subject(row.topic)
        codes[subject] = (enterprise, meter)
        groups.setdefault((subject, quarantine_kind(row.reason), day), []).append((at, row))
    findings: list[Finding] = []
    for (subject, kind, day), items in sorted(groups.items()):
        items.sort(key=lambda x: (x[0], x[1].reason, x[1].detail))
        reasons: dict[str, int] = {}
        for _, row in items:
            reasons[row.reason] = reasons.get(row.reason, 0) + 1
        severity = Severity.INFO if set(reasons) <= INFO_REASONS else Severity.WARNING
        enterprise, meter = codes[subject]
        eid, mid, pid = (None, None, None)
        if enterprise is not None:
            eid, mid, pid = known.get((enterprise, meter), known.get((enterprise, None), (None, None, None)))
        date = day.date().isoformat()
        listed = "、".join(f"{r} ×{n}" for r, n in sorted(reasons.items()))
        listed_en = ", ".join(f"{r} ×{n}" for r, n in sorted(reasons.items()))
        first_at, last_at = items[0][0], items[-1][0]
        findings.append(
            Finding(
                kind=kind,
                severity=severity,
                subject=subject,
                started_at=first_at,
                ended_at=last_at if day + timedelta(days=1) <= now else None,
                summary_zh=f"{subject} 在 {date} 有 {len(items)} 条消息被隔离（{listed}）",
                summary_en=f"{subject}: {len(items)} messages quarantined on {date} ({listed_en})",
                enterprise_id=eid,
                meter_id=mid,
                park_id=pid,
                observed=float(len(items)),
                expected_low=0.0,
                expected_high=0.0,
                unit="messages",
                evidence={
                    "day": date,
                    "messages": len(items),
                    "reasons": reasons,
                    "example_detail": items[0][1].detail[:300],
                    "example_topic": items[0][1].topic,
                    "event_times": [local_iso(at) for at, _ in items[:50]],
                },
            )
        )
    return findings
