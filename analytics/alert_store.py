"""Alerts in PostgreSQL: apply a detection, list, show, acknowledge, resolve (docs/alerts.md).

Tables ``analytics.alert`` and ``analytics.alert_event`` (migration 0013), read through the
views ``api.alert`` and ``api.alert_event``. The lifecycle rules are pure
(:mod:`analytics.alert_state`); this module loads the alerts a detection may touch, locks
them, and writes the actions, all in one transaction.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from itertools import groupby
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from analytics.alert_state import (
    Action,
    ActionKind,
    AlertError,
    AlertState,
    AlertStateError,
    ApplySummary,
    EventType,
    Resolution,
    StoredAlert,
    UnknownAlertError,
    check_acknowledge,
    check_resolve,
    plan,
    subject_codes,
    summarize,
)
from analytics.findings import Detection, Finding, Severity

__all__ = [
    "STATES",
    "UNRESOLVED_STATES",
    "AlertDetail",
    "AlertError",
    "AlertFilter",
    "AlertStateError",
    "ApplySummary",
    "BadFilterError",
    "UnknownAlertError",
    "acknowledge",
    "apply_detection",
    "get_alert",
    "list_alerts",
    "resolve",
]

Connection = psycopg.Connection[Any]

# Advisory lock class of the alert state ("alrt"); the second key is hashtext(kind), so two
# runs of the same detector apply one after the other and cannot both open an alert.
_LOCK_CLASS = 0x616C7274

# The columns of a StoredAlert, in its order.
_STORED = sql.SQL(
    "SELECT alert_id, kind, subject, severity, state, last_seen_at, episode_starts, resolved_at,"
    " resolution FROM analytics.alert"
)
_UNRESOLVED = sql.SQL(
    "{} WHERE state <> 'resolved' AND kind = ANY(%s::text[]) ORDER BY alert_id FOR UPDATE"
).format(_STORED)
# Resolved alerts holding one of the findings' episodes (by the index on resolved (kind, subject)).
_RESOLVED = sql.SQL(
    "{} WHERE alert_id IN ("
    " SELECT a.alert_id"
    " FROM unnest(%s::text[], %s::text[], %s::timestamptz[]) AS f(kind, subject, started_at)"
    " JOIN analytics.alert a ON a.kind = f.kind AND a.subject = f.subject AND a.state = 'resolved'"
    " WHERE f.started_at = ANY(a.episode_starts))"
    " ORDER BY alert_id FOR UPDATE"
).format(_STORED)

# Registry ids a finding did not give, from the codes in its subject.
_IDS = sql.SQL(
    "coalesce(%(enterprise_id)s::integer,"
    "  (SELECT enterprise_id FROM registry.enterprise WHERE enterprise_code = %(enterprise_code)s::text)),"
    " coalesce(%(meter_id)s::integer, (SELECT m.meter_id FROM registry.meter m"
    "  JOIN registry.enterprise e USING (enterprise_id)"
    "  WHERE e.enterprise_code = %(enterprise_code)s::text AND m.meter_code = %(meter_code)s::text)),"
    " coalesce(%(park_id)s::integer,"
    "  (SELECT park_id FROM registry.enterprise WHERE enterprise_code = %(enterprise_code)s::text),"
    "  (SELECT park_id FROM registry.park WHERE park_code = %(park_code)s::text))"
)
# The action's history records, at the run's time, by the detector.
_EVENTS = sql.SQL(
    "INSERT INTO analytics.alert_event (alert_id, at, event, actor, note, severity)"
    " SELECT a.alert_id, %(now)s, ev.event, %(detector)s, ev.note, ev.severity"
    " FROM a CROSS JOIN unnest(%(events)s::text[], %(notes)s::text[], %(severities)s::text[])"
    " WITH ORDINALITY AS ev(event, note, severity, n) ORDER BY ev.n"
)
_OPEN = sql.SQL(
    "WITH a AS (INSERT INTO analytics.alert (kind, subject, severity, severity_rank, state, started_at,"
    " ended_at, episode_starts, opened_at, last_seen_at, resolved_at, resolved_by, resolution,"
    " summary_zh, summary_en, observed, expected_low, expected_high, score, unit, evidence, detector,"
    " enterprise_id, meter_id, park_id)"
    " VALUES (%(kind)s, %(subject)s, %(severity)s, %(severity_rank)s, %(state)s, %(started_at)s,"
    " %(ended_at)s, %(episode_starts)s, %(now)s, %(now)s, %(resolved_at)s, %(resolved_by)s,"
    " %(resolution)s, %(summary_zh)s, %(summary_en)s, %(observed)s, %(expected_low)s,"
    " %(expected_high)s, %(score)s, %(unit)s, %(evidence)s, %(detector)s, {ids})"
    " RETURNING alert_id) {events}"
).format(ids=_IDS, events=_EVENTS)
# Update or reopen: the finding's figures replace the alert's; a reopen forgets the
# resolution and the acknowledgement (both stay in the history).
_UPDATE = sql.SQL(
    "WITH a AS (UPDATE analytics.alert AS t SET severity = %(severity)s,"
    " severity_rank = %(severity_rank)s, state = %(state)s, ended_at = %(ended_at)s,"
    " episode_starts = %(episode_starts)s, last_seen_at = %(now)s, occurrences = t.occurrences + 1,"
    " resolved_at = %(resolved_at)s, resolved_by = %(resolved_by)s, resolution = %(resolution)s,"
    " resolve_note = CASE WHEN %(reopen)s THEN NULL ELSE t.resolve_note END,"
    " acknowledged_at = CASE WHEN %(reopen)s THEN NULL ELSE t.acknowledged_at END,"
    " acknowledged_by = CASE WHEN %(reopen)s THEN NULL ELSE t.acknowledged_by END,"
    " ack_note = CASE WHEN %(reopen)s THEN NULL ELSE t.ack_note END,"
    " summary_zh = %(summary_zh)s, summary_en = %(summary_en)s, observed = %(observed)s,"
    " expected_low = %(expected_low)s, expected_high = %(expected_high)s, score = %(score)s,"
    " unit = %(unit)s, evidence = %(evidence)s, detector = %(detector)s,"
    " (enterprise_id, meter_id, park_id) = (SELECT {ids})"
    " WHERE t.alert_id = %(alert_id)s RETURNING t.alert_id) {events}"
).format(ids=_IDS, events=_EVENTS)
_CLEAR = sql.SQL(
    "WITH a AS (UPDATE analytics.alert SET state = 'resolved', resolved_at = %(now)s,"
    " resolved_by = %(detector)s, resolution = 'cleared'"
    " WHERE alert_id = %(alert_id)s RETURNING alert_id) {events}"
).format(events=_EVENTS)


def _json_default(value: object) -> object:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return value.tolist()
    return str(value)


def _dumps(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, default=_json_default)


def _stored(row: Sequence[Any]) -> StoredAlert:
    alert_id, kind, subject, severity, state, last_seen_at, episodes, resolved_at, res = row
    return StoredAlert(
        alert_id=int(alert_id),
        kind=str(kind),
        subject=str(subject),
        severity=Severity.parse(str(severity)),
        state=AlertState(str(state)),
        last_seen_at=last_seen_at,
        episode_starts=tuple(episodes),
        resolved_at=resolved_at,
        resolution=Resolution(str(res)) if res is not None else None,
    )


def _finding_params(finding: Finding) -> dict[str, Any]:
    codes = subject_codes(finding.subject)
    return {
        "kind": finding.kind,
        "subject": finding.subject,
        "started_at": finding.started_at,
        "ended_at": finding.ended_at,
        "summary_zh": finding.summary_zh,
        "summary_en": finding.summary_en,
        "observed": finding.observed,
        "expected_low": finding.expected_low,
        "expected_high": finding.expected_high,
        "score": finding.score,
        "unit": finding.unit,
        "evidence": Jsonb(dict(finding.evidence), dumps=_dumps),
        "enterprise_id": finding.enterprise_id,
        "meter_id": finding.meter_id,
        "park_id": finding.park_id,
        "enterprise_code": codes.enterprise_code,
        "meter_code": codes.meter_code,
        "park_code": codes.park_code,
    }


def _action_params(detection: Detection, action: Action) -> dict[str, Any]:
    params: dict[str, Any] = {
        "alert_id": action.alert_id,
        "now": detection.now,
        "detector": detection.detector,
        "severity": action.severity.label,
        "severity_rank": int(action.severity),
        "state": action.state.value,
        "episode_starts": list(action.episode_starts),
        "resolution": action.resolution.value if action.resolution else None,
        "resolved_at": detection.now if action.resolution else None,
        "resolved_by": detection.detector if action.resolution else None,
        "reopen": action.kind is ActionKind.REOPEN,
        "events": [e.event.value for e in action.events],
        "notes": [e.note for e in action.events],
        "severities": [e.severity.label for e in action.events],
    }
    if action.finding is not None:
        params.update(_finding_params(action.finding))
    return params


_STATEMENTS = {
    ActionKind.OPEN: _OPEN,
    ActionKind.UPDATE: _UPDATE,
    ActionKind.REOPEN: _UPDATE,
    ActionKind.CLEAR: _CLEAR,
}


def apply_detection(conn: Connection, detection: Detection) -> ApplySummary:
    """Apply one detector run to the stored alerts, in one transaction (rules: :mod:`analytics.alert_state`).

    The kinds of the detection are locked (an advisory lock per kind, taken in order) for
    the transaction, so concurrent runs of a detector apply one after the other; the
    unique index on unresolved (kind, subject) is the last guard against duplicates.
    """
    kinds = sorted(set(detection.kinds))
    findings = detection.findings
    with conn.transaction():
        for kind in kinds:
            conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (_LOCK_CLASS, kind))
        unresolved = [_stored(r) for r in conn.execute(_UNRESOLVED, (kinds,))]
        resolved: list[StoredAlert] = []
        if findings:
            keys = (
                [f.kind for f in findings],
                [f.subject for f in findings],
                [f.started_at for f in findings],
            )
            resolved = [_stored(r) for r in conn.execute(_RESOLVED, keys)]
        actions = plan(detection, unresolved, resolved)
        with conn.cursor() as cur:
            # In the plan's order (an alert resolved by an ended episode before the next
            # episode opens one), consecutive actions of one kind in one batch.
            for kind, batch in groupby(actions, key=lambda a: a.kind):
                cur.executemany(_STATEMENTS[kind], [_action_params(detection, a) for a in batch])
    return summarize(actions)


# -- reading ---------------------------------------------------------------------


class BadFilterError(AlertError, ValueError):
    """A filter of :func:`list_alerts` that cannot match anything (unknown park, bad state …)."""


STATES = tuple(s.value for s in AlertState)
UNRESOLVED_STATES = (AlertState.OPEN.value, AlertState.ACKNOWLEDGED.value)


@dataclass(frozen=True, slots=True)
class AlertFilter:
    """Which alerts :func:`list_alerts` returns; every filter given must hold.

    Parameters
    ----------
    park : park code.
    enterprise : enterprise code.
    kind : a kind (``meter.offline``), or a prefix ending in ``.`` or ``*`` (``counter.``).
    severity : minimum severity.
    states : states (default: open and acknowledged).
    since, until : the alert's problem overlaps [since, until): it started before ``until``
        and is unresolved or ended (else was resolved) at or after ``since`` (tz-aware).
    limit : at most this many, most severe then latest first.
    """

    park: str | None = None
    enterprise: str | None = None
    kind: str | None = None
    severity: Severity | None = None
    states: tuple[str, ...] = UNRESOLVED_STATES
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 100

    def __post_init__(self) -> None:
        unknown = sorted(set(self.states) - set(STATES))
        if unknown or not self.states:
            raise BadFilterError(f"unknown state {', '.join(unknown)!r} (states: {', '.join(STATES)})")
        for name, value in (("since", self.since), ("until", self.until)):
            if value is not None and value.tzinfo is None:
                raise BadFilterError(f"{name} must be timezone-aware")
        if self.since and self.until and self.until <= self.since:
            raise BadFilterError("until must be after since")
        if self.limit < 1:
            raise BadFilterError("limit must be at least 1")


def _check_code(conn: Connection, table: str, column: str, code: str, what: str) -> None:
    query = sql.SQL("SELECT 1 FROM {} WHERE {} = %s").format(
        sql.Identifier("registry", table), sql.Identifier(column)
    )
    if conn.execute(query, (code,)).fetchone() is None:
        raise BadFilterError(f"unknown {what} {code!r}")


def list_alerts(conn: Connection, filters: AlertFilter | None = None) -> list[dict[str, Any]]:
    """Rows of ``api.alert`` matching ``filters`` (default: unresolved), most severe then latest first.

    Raises :class:`BadFilterError` for a park or enterprise code not in the registry.
    """
    f = filters or AlertFilter()
    where = [sql.SQL("state = ANY(%s::text[])")]
    params: list[Any] = [list(f.states)]
    if f.park is not None:
        _check_code(conn, "park", "park_code", f.park, "park")
        where.append(sql.SQL("park_code = %s"))
        params.append(f.park)
    if f.enterprise is not None:
        _check_code(conn, "enterprise", "enterprise_code", f.enterprise, "enterprise")
        where.append(sql.SQL("enterprise_code = %s"))
        params.append(f.enterprise)
    if f.kind:
        if f.kind.endswith((".", "*")):
            where.append(sql.SQL("starts_with(kind, %s)"))
            params.append(f.kind.rstrip("*"))
        else:
            where.append(sql.SQL("kind = %s"))
            params.append(f.kind)
    if f.severity is not None:
        where.append(sql.SQL("severity_rank >= %s"))
        params.append(int(f.severity))
    if f.since is not None:
        where.append(sql.SQL("(state <> 'resolved' OR coalesce(ended_at, resolved_at) >= %s)"))
        params.append(f.since)
    if f.until is not None:
        where.append(sql.SQL("started_at < %s"))
        params.append(f.until)
    query = sql.SQL(
        "SELECT * FROM api.alert WHERE {} ORDER BY severity_rank DESC, last_seen_at DESC, alert_id DESC"
        " LIMIT %s"
    ).format(sql.SQL(" AND ").join(where))
    params.append(f.limit)
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query, params).fetchall()


@dataclass(frozen=True, slots=True)
class AlertDetail:
    """One alert (its ``api.alert`` row) and its history (``api.alert_event`` rows, oldest first)."""

    alert: dict[str, Any]
    events: list[dict[str, Any]]


def get_alert(conn: Connection, alert_id: int) -> AlertDetail:
    """The alert ``alert_id`` with its history; :class:`UnknownAlertError` if there is none."""
    with conn.cursor(row_factory=dict_row) as cur:
        alert = cur.execute("SELECT * FROM api.alert WHERE alert_id = %s", (alert_id,)).fetchone()
        if alert is None:
            raise UnknownAlertError(alert_id)
        events = cur.execute(
            "SELECT * FROM api.alert_event WHERE alert_id = %s ORDER BY event_id", (alert_id,)
        ).fetchall()
    return AlertDetail(alert, events)


# -- people's actions -----------------------------------------------------------------

_LOCK_ONE = "SELECT state, severity FROM analytics.alert WHERE alert_id = %s FOR UPDATE"
_ACK = (
    "WITH a AS (UPDATE analytics.alert SET state = 'acknowledged',"
    " acknowledged_at = coalesce(%(at)s::timestamptz, now()), acknowledged_by = %(actor)s,"
    " ack_note = %(note)s"
    " WHERE alert_id = %(alert_id)s RETURNING alert_id, acknowledged_at AS at, severity)"
    " INSERT INTO analytics.alert_event (alert_id, at, event, actor, note, severity)"
    " SELECT alert_id, at, 'acknowledged', %(actor)s, %(note)s, severity FROM a"
)
_RESOLVE = (
    "WITH a AS (UPDATE analytics.alert SET state = 'resolved', resolution = 'manual',"
    " resolved_at = coalesce(%(at)s::timestamptz, now()), resolved_by = %(actor)s, resolve_note = %(note)s"
    " WHERE alert_id = %(alert_id)s RETURNING alert_id, resolved_at AS at, severity)"
    " INSERT INTO analytics.alert_event (alert_id, at, event, actor, note, severity)"
    " SELECT alert_id, at, 'resolved', %(actor)s, %(note)s, severity FROM a"
)


def _person_action(
    conn: Connection, alert_id: int, event: EventType, *, actor: str, note: str, at: datetime | None
) -> None:
    if not actor.strip():
        raise AlertError(f"say who {event.value} the alert")
    if at is not None and at.tzinfo is None:
        raise AlertError("the time of an action must be timezone-aware")
    with conn.transaction():
        row = conn.execute(_LOCK_ONE, (alert_id,)).fetchone()
        if row is None:
            raise UnknownAlertError(alert_id)
        state = AlertState(str(row[0]))
        if event is EventType.ACKNOWLEDGED:
            check_acknowledge(alert_id, state)
        else:
            check_resolve(alert_id, state)
        statement = _ACK if event is EventType.ACKNOWLEDGED else _RESOLVE
        params = {"alert_id": alert_id, "actor": actor.strip(), "note": note.strip(), "at": at}
        conn.execute(statement, params)


def acknowledge(
    conn: Connection, alert_id: int, actor: str, note: str = "", at: datetime | None = None
) -> None:
    """Acknowledge an open alert: who (``actor``) and why (``note``), at ``at`` (default: now).

    It stays acknowledged while it is detected again (and may still escalate) until it is
    resolved. Raises :class:`UnknownAlertError`, or :class:`AlertStateError` for an alert
    that is already acknowledged or resolved.
    """
    _person_action(conn, alert_id, EventType.ACKNOWLEDGED, actor=actor, note=note, at=at)


def resolve(conn: Connection, alert_id: int, actor: str, note: str, at: datetime | None = None) -> None:
    """Resolve an open or acknowledged alert by hand; ``note`` (why) is required.

    The episodes the alert covers stay resolved even if the detector still finds them; a
    new episode opens a new alert. Raises :class:`UnknownAlertError`, or
    :class:`AlertStateError` for an alert already resolved.
    """
    if not note.strip():
        raise AlertError("a manual resolve needs a note saying why")
    _person_action(conn, alert_id, EventType.RESOLVED, actor=actor, note=note, at=at)
