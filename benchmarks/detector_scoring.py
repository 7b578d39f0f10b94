"""Scoring of detector alerts against the simulator's ground truth. Pure functions, no database.

The simulator writes one truth record per injected fault (docs/simulator.md "Faults and
ground truth"); the detectors open alerts (analytics.alert). This module decides

- per truth record, whether an alert of an expected kind on its subject overlaps its window
  (recall) and how long after the fault's start the first such alert was opened (delay);
- per alert, whether a truth record explains it (precision): the fault that is expected to
  raise that kind (primary), or another fault that really changes what the kind looks at
  (secondary, e.g. a meter's readings missing because its gateway was down);
- per silent truth record (faults the system must absorb without an alert), whether an
  unexplained counter/meter/delivery alert sits on it;
- for alert kinds the simulator does not inject, how many there are per 1 000 meter-days
  and how many overlap some truth record.

Windows are compared with a tolerance of :data:`TOLERANCE_INTERVALS` expected reporting
intervals of the subject's meter (the shortest interval of the enterprise for gateway
subjects), at least :data:`TOLERANCE_MIN_S`: the replay runs the fast detectors once per
simulated hour, and an episode's start is the last good reading before it.
"""

from __future__ import annotations

import json
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

__all__ = [
    "EXPECTED",
    "EXPLANATIONS",
    "NON_INJECTED_PREFIXES",
    "SILENT_KINDS",
    "Alert",
    "AlertKindScore",
    "Context",
    "FaultKindScore",
    "NonInjectedScore",
    "Score",
    "SilentScore",
    "Truth",
    "parse_truth",
    "score",
    "split_scored",
]

TOLERANCE_INTERVALS = 3
TOLERANCE_MIN_S = 3600.0

EXPECTED: dict[str, tuple[str, ...]] = {
    "gateway.offline": ("gateway.offline",),
    "delivery.late_burst": ("delivery.late",),
    "clock.skew": ("clock.skew",),
    "meter.gap": ("meter.offline", "meter.gap"),
    "register.transient_zero": ("counter.reset",),
    "register.unavailable": ("quarantine.value",),
    "payload.malformed": ("quarantine.payload",),
    "unit.wrong": ("quarantine.unit",),
    "topic.foreign": ("quarantine.registry",),
    "register.stuck": ("counter.stuck",),
    "register.spike": ("counter.spike",),
    "consumption.baseload_creep": ("consumption.baseload_creep",),
}
"""Truth kind → alert kinds that detect it (on the truth record's subject)."""

SILENT_KINDS: tuple[str, ...] = ("register.rollover", "meter.replacement", "delivery.duplicate")
"""Truth kinds the system must absorb without an alert."""
SILENT_ALERT_PREFIXES: tuple[str, ...] = ("counter.", "meter.", "delivery.")

QUARANTINE_TRUTH: tuple[str, ...] = (
    "register.unavailable",
    "payload.malformed",
    "unit.wrong",
    "topic.foreign",
)
GATEWAY_TRUTH: tuple[str, ...] = (
    "gateway.offline",
    "delivery.late_burst",
    "clock.skew",
    "delivery.duplicate",
)

# Relation between a truth record and the subject of an alert it explains:
#   "subject": the record's own subject (meter; gateway; the topic's subject for quarantine kinds);
#   "meter": the meter whose readings the fault changed (for quarantine kinds the real meter,
#            whose readings of the quarantined message are missing);
#   "enterprise": any subject of the record's enterprise (gateway faults touch all its meters).
_MISSING_READINGS: tuple[tuple[str, str], ...] = (
    ("meter.gap", "meter"),
    ("register.unavailable", "meter"),
    ("payload.malformed", "meter"),
    ("unit.wrong", "meter"),
    ("topic.foreign", "meter"),
    ("gateway.offline", "enterprise"),
    ("delivery.late_burst", "enterprise"),
    ("clock.skew", "enterprise"),
)
EXPLANATIONS: dict[str, tuple[tuple[str, str], ...]] = {
    "meter.offline": _MISSING_READINGS,
    "meter.gap": _MISSING_READINGS,
    "gateway.offline": (
        ("gateway.offline", "subject"),
        ("delivery.late_burst", "subject"),
        ("clock.skew", "subject"),
    ),
    "delivery.late": (("delivery.late_burst", "subject"),),
    "clock.skew": (("clock.skew", "subject"),),
    "quarantine.value": (("register.unavailable", "subject"),),
    "quarantine.payload": (("payload.malformed", "subject"),),
    "quarantine.unit": (("unit.wrong", "subject"),),
    "quarantine.registry": (("topic.foreign", "subject"),),
    "counter.reset": (("register.transient_zero", "subject"), ("clock.skew", "enterprise")),
    "counter.stuck": (("register.stuck", "subject"),),
    "counter.spike": (
        ("register.spike", "subject"),
        ("register.transient_zero", "subject"),
        ("register.stuck", "subject"),
        ("clock.skew", "enterprise"),
    ),
    "consumption.baseload_creep": (("consumption.baseload_creep", "subject"),),
}
"""Alert kind → (truth kind, relation) pairs that explain an alert of that kind."""

SCORING_MARGIN = timedelta(days=1)
SCORING_MARGINS: dict[str, tuple[timedelta, timedelta]] = {
    "consumption.baseload_creep": (timedelta(days=28), timedelta(days=14)),
}
"""Faults that begin this close to the start or the end of the history are not scored for
recall: a fault on the first day has no reading before it; a creep grows for 14-42 days
before it is fixed (visible only after days) and is judged against four weeks of nights
before it (analytics.detect.consumption, ``CreepRules.reference_days``)."""

NON_INJECTED_PREFIXES: tuple[str, ...] = ("consumption.anomaly", "counter.conflict", "intensity.", "quality.")


@dataclass(frozen=True, slots=True)
class Truth:
    """One injected fault (a line of the simulator's truth JSONL); times are inclusive event times."""

    kind: str
    enterprise: str
    meter: str | None
    start: datetime
    end: datetime
    detail: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, line: str) -> Truth:
        data = json.loads(line)
        return cls(
            kind=str(data["kind"]),
            enterprise=str(data["enterprise"]),
            meter=None if data.get("meter") is None else str(data["meter"]),
            start=datetime.fromisoformat(data["start"]),
            end=datetime.fromisoformat(data["end"]),
            detail=dict(data.get("detail") or {}),
        )

    def label(self) -> str:
        where = f"{self.enterprise}/{self.meter}" if self.meter else self.enterprise
        return f"{self.kind} {where} {self.start.isoformat()}…{self.end.isoformat()}"


def parse_truth(lines: Iterable[str]) -> list[Truth]:
    """Truth records of JSONL ``lines`` (blank lines skipped)."""
    return [Truth.from_json(line) for line in lines if line.strip()]


def split_scored(truth: Iterable[Truth], start: datetime, end: datetime) -> tuple[list[Truth], list[Truth]]:
    """(records scored for recall, records that begin within their kind's margins of ``start`` or ``end``)."""
    scored: list[Truth] = []
    edge: list[Truth] = []
    for t in truth:
        after, before = SCORING_MARGINS.get(t.kind, (SCORING_MARGIN, SCORING_MARGIN))
        (scored if start + after <= t.start < end - before else edge).append(t)
    return scored, edge


@dataclass(frozen=True, slots=True)
class Alert:
    """An alert as stored (analytics.alert); ``opened_at`` is the ``now`` of the run that opened it."""

    alert_id: int
    kind: str
    subject: str
    started_at: datetime
    opened_at: datetime
    ended_at: datetime | None = None
    last_seen_at: datetime | None = None
    resolved_at: datetime | None = None
    state: str = "open"

    def end(self, horizon: datetime) -> datetime:
        """End of the alert's episode: its ``ended_at``, else when it was last seen or resolved."""
        for t in (self.ended_at, self.last_seen_at, self.resolved_at):
            if t is not None:
                return max(t, self.started_at)
        return max(horizon, self.started_at)

    def label(self) -> str:
        return f"#{self.alert_id} {self.kind} {self.subject} {self.started_at.isoformat()}"


@dataclass(frozen=True, slots=True)
class Context:
    """What the scoring needs to know of the registry and the run.

    Parameters
    ----------
    intervals_s : (enterprise code, meter code) → expected reporting interval [s].
    horizon : end of the scored history (the ongoing alerts' end).
    meter_days : meters × days of the scored history [-].
    prefix : MQTT topic prefix.
    """

    intervals_s: Mapping[tuple[str, str], float]
    horizon: datetime
    meter_days: float
    prefix: str = "parkenergy/v1"

    def enterprise_interval_s(self, enterprise: str) -> float:
        found = [s for (e, _), s in self.intervals_s.items() if e == enterprise]
        return min(found) if found else 900.0

    def topic_meter(self, topic: str) -> tuple[str, str] | None:
        """(enterprise, meter) of a meter topic, whether registered or not; None otherwise."""
        head = self.prefix.rstrip("/") + "/"
        if not topic.startswith(head):
            return None
        parts = topic[len(head) :].split("/")
        if len(parts) != 2 or not parts[0] or not parts[1] or parts[1].startswith("_"):
            return None
        return parts[0], parts[1]

    def tolerance(self, subject: str) -> timedelta:
        """Tolerance around windows on ``subject``: a few of its expected intervals."""
        interval = 900.0
        area, _, rest = subject.partition(":")
        if area == "meter":
            enterprise, _, meter = rest.partition("/")
            interval = self.intervals_s.get((enterprise, meter), 900.0)
        elif area in ("gateway", "enterprise"):
            interval = self.enterprise_interval_s(rest)
        elif area == "topic":
            pair = self.topic_meter(rest)
            if pair is not None:
                interval = self.intervals_s.get(pair, 900.0)
        return timedelta(seconds=max(TOLERANCE_INTERVALS * interval, TOLERANCE_MIN_S))


def subject_enterprise(subject: str) -> str | None:
    """The enterprise code a subject belongs to (meter, gateway, enterprise subjects)."""
    area, _, rest = subject.partition(":")
    if area == "meter":
        return rest.partition("/")[0]
    if area in ("gateway", "enterprise"):
        return rest
    return None


def truth_subjects(truth: Truth, ctx: Context) -> tuple[str, ...]:
    """Subjects on which the record's expected alerts are looked for."""
    if truth.kind in QUARANTINE_TRUTH:
        topic = str(truth.detail.get("topic", ""))
        pair = ctx.topic_meter(topic)
        subjects = [f"topic:{topic}"]
        if pair is not None:
            subjects.insert(0, f"meter:{pair[0]}/{pair[1]}")
        return tuple(subjects)
    if truth.kind in GATEWAY_TRUTH or truth.meter is None:
        return (f"gateway:{truth.enterprise}",)
    return (f"meter:{truth.enterprise}/{truth.meter}",)


def relates(truth: Truth, relation: str, subject: str, ctx: Context) -> bool:
    """Whether ``subject`` is in ``relation`` to the truth record (see :data:`EXPLANATIONS`)."""
    if relation == "subject":
        return subject in truth_subjects(truth, ctx)
    if relation == "meter":
        return truth.meter is not None and subject == f"meter:{truth.enterprise}/{truth.meter}"
    if relation == "enterprise":
        return subject_enterprise(subject) == truth.enterprise
    raise ValueError(f"unknown relation {relation!r}")


def overlaps(truth: Truth, alert: Alert, ctx: Context) -> bool:
    """Whether the alert's episode overlaps the record's window, within the subject's tolerance."""
    tol = ctx.tolerance(alert.subject)
    return alert.started_at <= truth.end + tol and alert.end(ctx.horizon) >= truth.start - tol


@dataclass(frozen=True, slots=True)
class FaultKindScore:
    kind: str
    expected: tuple[str, ...]
    truth: int
    detected: int
    median_delay_s: float | None
    absorbed: int
    alerts: int
    explained: int
    missed: tuple[Truth, ...]

    @property
    def recall(self) -> float | None:
        return self.detected / self.truth if self.truth else None

    @property
    def precision(self) -> float | None:
        return self.explained / self.alerts if self.alerts else None


@dataclass(frozen=True, slots=True)
class AlertKindScore:
    kind: str
    alerts: int
    subjects: int
    primary: int
    secondary: int
    false: tuple[Alert, ...]
    secondary_by: Mapping[str, int]

    @property
    def precision(self) -> float | None:
        return (self.primary + self.secondary) / self.alerts if self.alerts else None


@dataclass(frozen=True, slots=True)
class SilentScore:
    kind: str
    truth: int
    with_alert: int
    alerts: tuple[tuple[Truth, Alert], ...]


@dataclass(frozen=True, slots=True)
class NonInjectedScore:
    kind: str
    alerts: int
    per_1000_meter_days: float
    overlapping_truth: int


@dataclass(frozen=True, slots=True)
class Score:
    faults: tuple[FaultKindScore, ...]
    alert_kinds: tuple[AlertKindScore, ...]
    silent: tuple[SilentScore, ...]
    non_injected: tuple[NonInjectedScore, ...]
    other: Mapping[str, int]

    def as_dict(self) -> dict[str, Any]:
        return {
            "faults": [
                {
                    "kind": f.kind,
                    "expected_alerts": list(f.expected),
                    "truth": f.truth,
                    "detected": f.detected,
                    "recall": f.recall,
                    "alerts": f.alerts,
                    "explained": f.explained,
                    "precision": f.precision,
                    "median_delay_s": f.median_delay_s,
                    "detected_by_an_alert_already_open": f.absorbed,
                    "missed": [t.label() for t in f.missed],
                }
                for f in self.faults
            ],
            "alert_kinds": [
                {
                    "kind": a.kind,
                    "alerts": a.alerts,
                    "subjects": a.subjects,
                    "primary": a.primary,
                    "secondary": a.secondary,
                    "secondary_by": dict(a.secondary_by),
                    "precision": a.precision,
                    "false": [x.label() for x in a.false],
                }
                for a in self.alert_kinds
            ],
            "silent": [
                {
                    "kind": s.kind,
                    "truth": s.truth,
                    "with_alert": s.with_alert,
                    "alerts": [f"{t.label()} ← {a.label()}" for t, a in s.alerts],
                }
                for s in self.silent
            ],
            "non_injected": [
                {
                    "kind": n.kind,
                    "alerts": n.alerts,
                    "per_1000_meter_days": n.per_1000_meter_days,
                    "overlapping_truth": n.overlapping_truth,
                }
                for n in self.non_injected
            ],
            "other_alert_kinds": dict(self.other),
        }


class _Index:
    """Alerts by subject, and truth records by enterprise, for the matching loops."""

    def __init__(self, alerts: Sequence[Alert], truth: Sequence[Truth]) -> None:
        self.by_subject: dict[str, list[Alert]] = defaultdict(list)
        for a in alerts:
            self.by_subject[a.subject].append(a)
        self.truth_by_enterprise: dict[str, list[Truth]] = defaultdict(list)
        for t in truth:
            self.truth_by_enterprise[t.enterprise].append(t)

    def candidates(self, alert: Alert, ctx: Context, truth: Sequence[Truth]) -> Iterable[Truth]:
        enterprise = subject_enterprise(alert.subject)
        if enterprise is None:
            return truth  # topic subjects: few alerts, look at everything
        found = list(self.truth_by_enterprise.get(enterprise, ()))
        if alert.subject.startswith("meter:"):
            # a foreign topic names another enterprise's topic: its record sits with the real meter
            found += [t for t in truth if t.kind in QUARANTINE_TRUTH and t.enterprise != enterprise]
        return found


def _touches(truth: Truth, subject: str) -> bool:
    """Whether a fault changes data of ``subject``: its meter, or anything of its enterprise for
    gateway faults and enterprise subjects."""
    if subject.startswith("enterprise:") or truth.kind in GATEWAY_TRUTH:
        return subject_enterprise(subject) == truth.enterprise
    return truth.meter is not None and subject == f"meter:{truth.enterprise}/{truth.meter}"


def explanation(alert: Alert, candidates: Iterable[Truth], ctx: Context) -> tuple[str, Truth] | None:
    """("primary" | "secondary", record) explaining ``alert``, primary first; None if unexplained."""
    pairs = EXPLANATIONS.get(alert.kind, ())
    best: tuple[str, Truth] | None = None
    for t in candidates:
        for kind, relation in pairs:
            if t.kind != kind or not relates(t, relation, alert.subject, ctx) or not overlaps(t, alert, ctx):
                continue
            rank = "primary" if alert.kind in EXPECTED.get(t.kind, ()) else "secondary"
            if rank == "primary":
                return rank, t
            best = best or (rank, t)
    return best


def score(
    truth: Sequence[Truth],
    alerts: Sequence[Alert],
    ctx: Context,
    *,
    explain_only: Sequence[Truth] = (),
) -> Score:
    """Score ``alerts`` against ``truth``.

    Parameters
    ----------
    truth : the records of the scored history (recall is computed over them).
    alerts : every alert the replay opened.
    ctx : registry intervals, horizon and size of the history.
    explain_only : further records that may explain alerts but are not scored for recall
        (faults that began before the scored history, e.g. a creep already under way).
    """
    index = _Index(alerts, [*truth, *explain_only])
    everything = [*truth, *explain_only]

    explained: dict[int, tuple[str, Truth]] = {}
    for a in alerts:
        found = explanation(a, index.candidates(a, ctx, everything), ctx)
        if found is not None:
            explained[a.alert_id] = found

    faults: list[FaultKindScore] = []
    for kind, expected in EXPECTED.items():
        records = [t for t in truth if t.kind == kind]
        detected, absorbed, delays, missed = 0, 0, [], []
        for t in records:
            hits = [
                a
                for s in truth_subjects(t, ctx)
                for a in index.by_subject.get(s, ())
                if a.kind in expected and overlaps(t, a, ctx)
            ]
            if hits:
                detected += 1
                # An alert opened before the fault began was already open and absorbed it:
                # when the fault itself was seen is not known, so it has no delay.
                after = [a.opened_at for a in hits if a.opened_at >= t.start]
                if after:
                    delays.append((min(after) - t.start).total_seconds())
                else:
                    absorbed += 1
            else:
                missed.append(t)
        kind_alerts = [a for a in alerts if a.kind in expected]
        faults.append(
            FaultKindScore(
                kind=kind,
                expected=expected,
                truth=len(records),
                detected=detected,
                median_delay_s=statistics.median(delays) if delays else None,
                absorbed=absorbed,
                alerts=len(kind_alerts),
                explained=sum(1 for a in kind_alerts if a.alert_id in explained),
                missed=tuple(missed),
            )
        )

    alert_kinds: list[AlertKindScore] = []
    for kind in sorted({a.kind for a in alerts} & set(EXPLANATIONS)):
        of_kind = [a for a in alerts if a.kind == kind]
        ranks = [explained.get(a.alert_id) for a in of_kind]
        secondary_by = Counter(r[1].kind for r in ranks if r is not None and r[0] == "secondary")
        alert_kinds.append(
            AlertKindScore(
                kind=kind,
                alerts=len(of_kind),
                subjects=len({a.subject for a in of_kind}),
                primary=sum(1 for r in ranks if r is not None and r[0] == "primary"),
                secondary=sum(secondary_by.values()),
                false=tuple(a for a, r in zip(of_kind, ranks, strict=True) if r is None),
                secondary_by=dict(secondary_by),
            )
        )

    silent: list[SilentScore] = []
    for kind in SILENT_KINDS:
        records = [t for t in truth if t.kind == kind]
        pairs: list[tuple[Truth, Alert]] = []
        hit = 0
        for t in records:
            relation = "enterprise" if kind == "delivery.duplicate" else "meter"
            on_it = [
                a
                for a in alerts
                if a.kind.startswith(SILENT_ALERT_PREFIXES)
                and a.alert_id not in explained
                and relates(t, relation, a.subject, ctx)
                and overlaps(t, a, ctx)
            ]
            hit += bool(on_it)
            pairs += [(t, a) for a in on_it]
        silent.append(SilentScore(kind, len(records), hit, tuple(pairs)))

    non_injected: list[NonInjectedScore] = []
    other: Counter[str] = Counter()
    for kind in sorted({a.kind for a in alerts} - set(EXPLANATIONS)):
        of_kind = [a for a in alerts if a.kind == kind]
        if not kind.startswith(NON_INJECTED_PREFIXES):
            other[kind] = len(of_kind)
            continue
        overlapping = 0
        for a in of_kind:
            enterprise = subject_enterprise(a.subject)
            overlapping += any(
                overlaps(t, a, ctx) and _touches(t, a.subject)
                for t in index.truth_by_enterprise.get(enterprise or "", ())
            )
        per = 1000.0 * len(of_kind) / ctx.meter_days if ctx.meter_days else 0.0
        non_injected.append(NonInjectedScore(kind, len(of_kind), per, overlapping))

    return Score(tuple(faults), tuple(alert_kinds), tuple(silent), tuple(non_injected), dict(other))
