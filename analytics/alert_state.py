"""Alert lifecycle: what one detector run does to the stored alerts. Pure.

An alert is one problem of one ``kind`` on one ``subject`` (:mod:`analytics.findings`);
while it is not resolved there is at most one per (kind, subject), and repeated detection
updates it instead of opening another (DESIGN.md "Analytics contract": "a lifecycle
(open → acknowledged → resolved) so repeated detection updates one record").

:func:`plan` turns a :class:`~analytics.findings.Detection` and the alerts it may touch
into :class:`Action` values; :mod:`analytics.alert_store` writes them. The rules
(docs/alerts.md, "Lifecycle"):

- a finding of a (kind, subject) without an unresolved alert opens one; a finding that
  has already ended opens and resolves it at once (``ended``), so history is kept;
- a finding of a (kind, subject) with an unresolved alert (open or acknowledged) updates
  it — last seen, evidence, figures, ended_at, occurrences + 1 — whatever its
  ``started_at`` (the alert absorbs the episode); its severity only rises (``escalated``);
  a finding with ``ended_at`` set resolves it (``ended``), unless it is of an episode
  older than the latest the alert absorbed (then it is history the alert already holds);
- an unresolved alert of the run's scope (its kinds and subjects) that the run did not
  find is resolved as ``cleared`` once ``now - last_seen_at >= clear_after_s`` of its kind
  (hysteresis on clear, DOMAIN.md §8);
- a finding whose (kind, subject, started_at) is an episode of a resolved alert changes
  nothing, so replaying the same data does not reopen history. The one exception: an
  alert resolved as ``cleared`` whose episode is found again, still ongoing, by a run
  later than the clearing, is reopened (the problem never went away; it was only not
  seen, e.g. while its gateway was reported instead);
- a person's resolve is final for that episode: a new episode opens a new alert;
- the state moves only forward in detection time: a run whose ``now`` is not after an
  alert's ``last_seen_at`` neither updates nor clears it (applying one detection twice
  changes nothing).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from analytics.findings import Detection, Finding, Severity

__all__ = [
    "Action",
    "ActionKind",
    "AlertError",
    "AlertState",
    "AlertStateError",
    "ApplySummary",
    "Event",
    "EventType",
    "Resolution",
    "StoredAlert",
    "SubjectCodes",
    "UnknownAlertError",
    "check_acknowledge",
    "check_resolve",
    "plan",
    "subject_codes",
    "summarize",
]


class AlertState(StrEnum):
    """Where an alert is in its lifecycle."""

    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class Resolution(StrEnum):
    """Why an alert was resolved."""

    CLEARED = "cleared"  # not detected for its kind's clear time
    ENDED = "ended"  # the detector reported the episode's end
    MANUAL = "manual"  # a person resolved it


class EventType(StrEnum):
    """What happened to an alert (``analytics.alert_event.event``)."""

    OPENED = "opened"
    ESCALATED = "escalated"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"
    REOPENED = "reopened"


class ActionKind(StrEnum):
    """What an :class:`Action` does to the stored alerts."""

    OPEN = "open"  # insert a new alert
    UPDATE = "update"  # apply a finding to an unresolved alert
    REOPEN = "reopen"  # apply a finding to a cleared alert and make it open again
    CLEAR = "clear"  # resolve an unresolved alert that was not found


class AlertError(Exception):
    """A request about alerts that cannot be carried out."""


class UnknownAlertError(AlertError, LookupError):
    """No alert has this id."""

    def __init__(self, alert_id: int) -> None:
        super().__init__(f"no alert {alert_id}")
        self.alert_id = alert_id


class AlertStateError(AlertError):
    """The alert's state does not allow the action (e.g. acknowledging a resolved alert)."""

    def __init__(self, alert_id: int, state: AlertState, message: str) -> None:
        super().__init__(message)
        self.alert_id = alert_id
        self.state = state


@dataclass(frozen=True, slots=True)
class StoredAlert:
    """The part of a stored alert the lifecycle needs.

    Parameters
    ----------
    alert_id : the alert's id.
    kind, subject : what the alert is about.
    severity : its current severity.
    state : its state.
    last_seen_at : the ``now`` of the latest run that found it.
    episode_starts : ``started_at`` of every episode it absorbed.
    resolved_at : when it was resolved (None while unresolved).
    resolution : why it was resolved (None while unresolved).
    """

    alert_id: int
    kind: str
    subject: str
    severity: Severity
    state: AlertState
    last_seen_at: datetime
    episode_starts: tuple[datetime, ...]
    resolved_at: datetime | None = None
    resolution: Resolution | None = None


@dataclass(frozen=True, slots=True)
class Event:
    """One history record to write: the event, the severity at the time, a note."""

    event: EventType
    severity: Severity
    note: str


@dataclass(frozen=True, slots=True)
class Action:
    """One change of the stored alerts decided by :func:`plan`.

    Parameters
    ----------
    kind : what to do.
    alert_id : the alert changed (None for :attr:`ActionKind.OPEN`).
    finding : the finding applied (None for :attr:`ActionKind.CLEAR`).
    severity : the alert's severity after the action.
    state : the alert's state after the action.
    resolution : why the action resolves the alert, or None when it does not.
    episode_starts : the alert's episodes after the action.
    events : the history records to write, in order (at the run's ``now``, by the detector).
    """

    kind: ActionKind
    alert_id: int | None
    finding: Finding | None
    severity: Severity
    state: AlertState
    resolution: Resolution | None
    episode_starts: tuple[datetime, ...]
    events: tuple[Event, ...]


@dataclass(frozen=True, slots=True)
class ApplySummary:
    """What one detection did: alerts opened, updated (of which escalated), resolved, reopened."""

    opened: int = 0
    updated: int = 0
    escalated: int = 0
    resolved: int = 0
    reopened: int = 0

    def __str__(self) -> str:
        text = f"{self.opened} opened, {self.updated} updated, {self.escalated} escalated"
        text += f", {self.resolved} resolved"
        return text + (f", {self.reopened} reopened" if self.reopened else "")


@dataclass(frozen=True, slots=True)
class SubjectCodes:
    """Registry codes named by a subject (None where the subject does not name one)."""

    enterprise_code: str | None = None
    meter_code: str | None = None
    park_code: str | None = None


_TOPIC_PREFIX = "parkenergy/v1/"  # DESIGN.md "Wire contract (MQTT)"


def subject_codes(subject: str) -> SubjectCodes:
    """The registry codes in ``subject`` (``meter:<enterprise>/<meter>``, ``gateway:<enterprise>``,
    ``enterprise:<enterprise>``, ``park:<park>``, ``topic:parkenergy/v1/<enterprise>/…``)."""
    scope, _, rest = subject.partition(":")
    if not rest:
        return SubjectCodes()
    if scope == "meter":
        enterprise, slash, meter = rest.partition("/")
        return SubjectCodes(enterprise or None, meter or None) if slash else SubjectCodes(rest)
    if scope in ("gateway", "enterprise"):
        return SubjectCodes(rest)
    if scope == "park":
        return SubjectCodes(park_code=rest)
    if scope == "topic" and rest.startswith(_TOPIC_PREFIX):
        enterprise = rest.removeprefix(_TOPIC_PREFIX).split("/", 1)[0]
        return SubjectCodes(enterprise or None)
    return SubjectCodes()


def plan(
    detection: Detection, unresolved: Iterable[StoredAlert], resolved: Iterable[StoredAlert] = ()
) -> list[Action]:
    """The actions that apply ``detection`` to the stored alerts (rules: module docstring).

    Parameters
    ----------
    detection : one detector run.
    unresolved : the unresolved alerts of the detection's kinds (any subject); others are ignored.
    resolved : resolved alerts of the findings' (kind, subject) whose episodes include a
        finding's ``started_at`` (more may be given; they are matched here).

    Returns
    -------
    The actions, in the order they must be written: findings by (kind, subject,
    started_at), then the clears.
    """
    now = detection.now
    current: dict[tuple[str, str], StoredAlert] = {
        (a.kind, a.subject): a for a in unresolved if a.kind in detection.kinds
    }
    original = list(current.values())
    done: dict[tuple[str, str, datetime], StoredAlert] = {}
    for old in sorted(resolved, key=lambda a: a.alert_id):
        for start in old.episode_starts:
            done[(old.kind, old.subject, start)] = old
    confirmed: set[tuple[str, str]] = set()
    actions: list[Action] = []
    opened = 0
    for finding in sorted(detection.findings, key=lambda f: (f.kind, f.subject, f.started_at)):
        key = (finding.kind, finding.subject)
        if finding.ongoing:
            confirmed.add(key)
        alert = current.get(key)
        episode = done.get((*key, finding.started_at))
        if episode is not None:
            if alert is None and _reopens(episode, finding, now):
                action = _reopen(episode, finding)
                actions.append(action)
                current[key] = replace(
                    episode, severity=action.severity, state=AlertState.OPEN, last_seen_at=now
                )
            continue
        if alert is None:
            action = _open(finding)
            actions.append(action)
            if action.state is AlertState.RESOLVED:
                done[(*key, finding.started_at)] = StoredAlert(
                    -1, *key, action.severity, action.state, now, action.episode_starts
                )
            else:
                opened += 1  # stands for the new alert until the store gives it an id
                current[key] = StoredAlert(
                    -opened,
                    *key,
                    action.severity,
                    action.state,
                    now,
                    action.episode_starts,
                )
            continue
        if now <= alert.last_seen_at:
            continue  # seen by this run or a later one already
        if finding.ended_at is not None and finding.started_at < max(alert.episode_starts):
            continue  # an earlier episode of an alert that absorbed a later one: history it holds
        action = _update(alert, finding)
        actions.append(action)
        if action.state is AlertState.RESOLVED:
            del current[key]
            for start in action.episode_starts:
                done[(*key, start)] = alert
        else:
            current[key] = replace(
                alert, severity=action.severity, last_seen_at=now, episode_starts=action.episode_starts
            )
    looked_at = None if detection.subjects is None else frozenset(detection.subjects)
    for before in original:
        key = (before.kind, before.subject)
        if key in confirmed or current.get(key) != before:
            continue  # found, or changed by a finding
        if looked_at is not None and before.subject not in looked_at:
            continue  # not looked at by this run
        clear_after_s = float(detection.clear_after_s.get(before.kind, 0.0))
        unseen_s = (now - before.last_seen_at).total_seconds()
        if unseen_s > 0 and unseen_s >= clear_after_s:
            actions.append(_clear(before, unseen_s))
    return actions


def _reopens(alert: StoredAlert, finding: Finding, now: datetime) -> bool:
    """A cleared alert whose episode is found again, ongoing, after the clearing."""
    return (
        alert.resolution is Resolution.CLEARED
        and finding.ongoing
        and alert.resolved_at is not None
        and now > alert.resolved_at
    )


def _open(finding: Finding) -> Action:
    events = [Event(EventType.OPENED, finding.severity, finding.summary_zh)]
    state, resolution = AlertState.OPEN, None
    if finding.ended_at is not None:
        state, resolution = AlertState.RESOLVED, Resolution.ENDED
        events.append(Event(EventType.RESOLVED, finding.severity, _ended_note(finding.ended_at)))
    return Action(
        ActionKind.OPEN,
        None,
        finding,
        finding.severity,
        state,
        resolution,
        (finding.started_at,),
        tuple(events),
    )


def _update(alert: StoredAlert, finding: Finding) -> Action:
    severity = max(alert.severity, finding.severity)
    events = []
    if severity > alert.severity:
        events.append(Event(EventType.ESCALATED, severity, f"{alert.severity.label} → {severity.label}"))
    episodes = alert.episode_starts
    if finding.started_at not in episodes:
        episodes = (*episodes, finding.started_at)
    state, resolution = alert.state, None
    if finding.ended_at is not None:
        state, resolution = AlertState.RESOLVED, Resolution.ENDED
        events.append(Event(EventType.RESOLVED, severity, _ended_note(finding.ended_at)))
    return Action(
        ActionKind.UPDATE, alert.alert_id, finding, severity, state, resolution, episodes, tuple(events)
    )


def _reopen(alert: StoredAlert, finding: Finding) -> Action:
    severity = max(alert.severity, finding.severity)
    note = f"再次检测到 / detected again: {finding.summary_zh}"
    return Action(
        ActionKind.REOPEN,
        alert.alert_id,
        finding,
        severity,
        AlertState.OPEN,
        None,
        alert.episode_starts,
        (Event(EventType.REOPENED, severity, note),),
    )


def _clear(alert: StoredAlert, unseen_s: float) -> Action:
    note = f"已 {unseen_s:.0f} 秒未再检测到 / not detected for {unseen_s:.0f} s"
    return Action(
        ActionKind.CLEAR,
        alert.alert_id,
        None,
        alert.severity,
        AlertState.RESOLVED,
        Resolution.CLEARED,
        alert.episode_starts,
        (Event(EventType.RESOLVED, alert.severity, note),),
    )


def _ended_note(ended_at: datetime) -> str:
    return f"已结束于 / ended at {ended_at.isoformat()}"


def summarize(actions: Sequence[Action]) -> ApplySummary:
    """Count what ``actions`` do (an update that escalates counts as updated and escalated)."""
    events = [e.event for a in actions for e in a.events]
    return ApplySummary(
        opened=sum(a.kind is ActionKind.OPEN for a in actions),
        updated=sum(a.kind is ActionKind.UPDATE for a in actions),
        escalated=events.count(EventType.ESCALATED),
        resolved=events.count(EventType.RESOLVED),
        reopened=sum(a.kind is ActionKind.REOPEN for a in actions),
    )


def check_acknowledge(alert_id: int, state: AlertState) -> None:
    """Raise :class:`AlertStateError` unless an alert in ``state`` can be acknowledged (only open ones)."""
    if state is AlertState.RESOLVED:
        raise AlertStateError(alert_id, state, f"alert {alert_id} is resolved; nothing to acknowledge")
    if state is AlertState.ACKNOWLEDGED:
        raise AlertStateError(alert_id, state, f"alert {alert_id} is already acknowledged")


def check_resolve(alert_id: int, state: AlertState) -> None:
    """Raise :class:`AlertStateError` unless an alert in ``state`` can be resolved (open or acknowledged)."""
    if state is AlertState.RESOLVED:
        raise AlertStateError(alert_id, state, f"alert {alert_id} is already resolved")
