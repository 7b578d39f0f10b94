"""The alert lifecycle (analytics.alert_state), pure: one detection at a time against stored alerts."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from analytics.alert_state import (
    Action,
    ActionKind,
    AlertState,
    AlertStateError,
    ApplySummary,
    EventType,
    Resolution,
    StoredAlert,
    check_acknowledge,
    check_resolve,
    plan,
    subject_codes,
    summarize,
)
from analytics.findings import Detection, Finding, Severity

T0 = datetime(2025, 6, 1, 0, 0, tzinfo=UTC)
KIND = "meter.offline"
SUBJECT = "meter:91420700MA49ABCD1X/EL01"
OTHER = "meter:91420700MA49ABCD1X/GAS01"


def finding(
    subject: str = SUBJECT,
    severity: Severity = Severity.WARNING,
    started_at: datetime = T0,
    ended_at: datetime | None = None,
    kind: str = KIND,
) -> Finding:
    return Finding(
        kind=kind,
        severity=severity,
        subject=subject,
        started_at=started_at,
        summary_zh="离线",
        summary_en="offline",
        ended_at=ended_at,
        observed=1800.0,
        unit="s",
    )


def detection(
    now: datetime,
    *findings: Finding,
    clear_after_s: float = 600.0,
    subjects: tuple[str, ...] | None = None,
) -> Detection:
    return Detection(
        detector="offline",
        now=now,
        kinds=(KIND,),
        findings=findings,
        clear_after_s={KIND: clear_after_s},
        subjects=subjects,
    )


def stored(
    alert_id: int = 1,
    subject: str = SUBJECT,
    severity: Severity = Severity.WARNING,
    state: AlertState = AlertState.OPEN,
    started_at: datetime = T0,
    last_seen_at: datetime = T0,
    resolved_at: datetime | None = None,
    resolution: Resolution | None = None,
) -> StoredAlert:
    return StoredAlert(
        alert_id,
        KIND,
        subject,
        severity,
        state,
        last_seen_at,
        (started_at,),
        resolved_at,
        resolution,
    )


def events(action: Action) -> list[EventType]:
    return [e.event for e in action.events]


def test_a_new_finding_opens_an_alert() -> None:
    (action,) = plan(detection(T0, finding()), [])
    assert action.kind is ActionKind.OPEN and action.state is AlertState.OPEN
    assert action.severity is Severity.WARNING and action.episode_starts == (T0,)
    assert events(action) == [EventType.OPENED]
    assert summarize([action]).opened == 1


def test_repeated_detection_updates_without_a_duplicate() -> None:
    later = T0 + timedelta(minutes=1)
    (action,) = plan(detection(later, finding()), [stored()])
    assert action.kind is ActionKind.UPDATE and action.alert_id == 1
    assert action.events == () and action.state is AlertState.OPEN
    assert str(summarize([action])) == "0 opened, 1 updated, 0 escalated, 0 resolved"


def test_the_same_run_applied_twice_changes_nothing() -> None:
    assert plan(detection(T0, finding()), [stored(last_seen_at=T0)]) == []
    # nor a run older than the last confirmation (no clear either, even with clear_after_s 0)
    assert plan(detection(T0 - timedelta(minutes=5), clear_after_s=0), [stored()]) == []


def test_severity_escalates_and_never_deescalates() -> None:
    later = T0 + timedelta(minutes=1)
    (up,) = plan(detection(later, finding(severity=Severity.CRITICAL)), [stored()])
    assert up.severity is Severity.CRITICAL and events(up) == [EventType.ESCALATED]
    assert up.events[0].note == "warning → critical"
    assert summarize([up]).escalated == 1 and summarize([up]).updated == 1
    (down,) = plan(detection(later, finding(severity=Severity.INFO)), [stored(severity=Severity.CRITICAL)])
    assert down.kind is ActionKind.UPDATE and down.severity is Severity.CRITICAL and down.events == ()


def test_an_acknowledged_alert_keeps_updating_and_escalating() -> None:
    later = T0 + timedelta(minutes=1)
    acked = stored(state=AlertState.ACKNOWLEDGED)
    (action,) = plan(detection(later, finding(severity=Severity.CRITICAL)), [acked])
    assert action.state is AlertState.ACKNOWLEDGED and events(action) == [EventType.ESCALATED]
    (cleared,) = plan(detection(later + timedelta(hours=1)), [acked])
    assert cleared.kind is ActionKind.CLEAR and cleared.state is AlertState.RESOLVED


def test_clear_only_after_clear_after_s() -> None:
    alert = stored(last_seen_at=T0)
    assert plan(detection(T0 + timedelta(seconds=599)), [alert]) == []  # hysteresis holds
    (action,) = plan(detection(T0 + timedelta(seconds=600)), [alert])  # edge: clears
    assert action.kind is ActionKind.CLEAR and action.alert_id == 1
    assert action.resolution is Resolution.CLEARED and events(action) == [EventType.RESOLVED]
    assert "600" in action.events[0].note
    # a kind without a clear time clears at the next run
    (quick,) = plan(replace(detection(T0 + timedelta(seconds=1)), clear_after_s={}), [alert])
    assert quick.kind is ActionKind.CLEAR


def test_alerts_out_of_scope_are_untouched() -> None:
    later = T0 + timedelta(hours=2)
    other_subject = stored(alert_id=2, subject=OTHER)
    assert plan(detection(later, subjects=(SUBJECT,)), [other_subject]) == []
    other_kind = replace(stored(alert_id=3), kind="counter.stuck")
    assert plan(detection(later), [other_kind]) == []
    # only the one looked at and not found is cleared
    actions = plan(detection(later, subjects=(SUBJECT,)), [stored(), other_subject])
    assert [(a.kind, a.alert_id) for a in actions] == [(ActionKind.CLEAR, 1)]


def test_an_ended_finding_resolves_its_alert() -> None:
    later = T0 + timedelta(minutes=30)
    (action,) = plan(detection(later, finding(ended_at=T0 + timedelta(minutes=20))), [stored()])
    assert action.kind is ActionKind.UPDATE and action.state is AlertState.RESOLVED
    assert action.resolution is Resolution.ENDED and events(action) == [EventType.RESOLVED]


def test_an_episode_found_already_ended_opens_and_resolves_at_once() -> None:
    (action,) = plan(detection(T0 + timedelta(hours=1), finding(ended_at=T0 + timedelta(minutes=20))), [])
    assert action.kind is ActionKind.OPEN and action.state is AlertState.RESOLVED
    assert events(action) == [EventType.OPENED, EventType.RESOLVED]
    assert summarize([action]) == ApplySummary(opened=1, resolved=1)


def test_replay_of_a_resolved_episode_is_a_no_op() -> None:
    later = T0 + timedelta(days=1)
    for resolution in Resolution:
        done = stored(state=AlertState.RESOLVED, resolved_at=later, resolution=resolution, last_seen_at=later)
        # the same data again, ended or (as at an earlier now) ongoing
        assert plan(detection(later, finding(ended_at=T0 + timedelta(hours=1))), [], [done]) == []
        assert plan(detection(later, finding()), [], [done]) == []


def test_a_new_episode_after_resolve_opens_a_new_alert() -> None:
    later = T0 + timedelta(days=1)
    manual = stored(state=AlertState.RESOLVED, resolved_at=later, resolution=Resolution.MANUAL)
    # a person resolved it while it was still detected: that episode stays resolved
    assert plan(detection(later + timedelta(hours=1), finding()), [], [manual]) == []
    (action,) = plan(detection(later + timedelta(hours=1), finding(started_at=later)), [], [manual])
    assert action.kind is ActionKind.OPEN and action.episode_starts == (later,)


def test_a_cleared_episode_found_again_later_is_reopened() -> None:
    cleared_at = T0 + timedelta(hours=1)
    cleared = stored(state=AlertState.RESOLVED, resolved_at=cleared_at, resolution=Resolution.CLEARED)
    (action,) = plan(detection(cleared_at + timedelta(minutes=1), finding()), [], [cleared])
    assert action.kind is ActionKind.REOPEN and action.alert_id == 1 and action.state is AlertState.OPEN
    assert events(action) == [EventType.REOPENED] and summarize([action]).reopened == 1
    # not when replaying a time at or before the clearing
    assert plan(detection(cleared_at, finding()), [], [cleared]) == []


def test_another_started_at_is_the_same_alert() -> None:
    later = T0 + timedelta(hours=2)
    (action,) = plan(detection(later, finding(started_at=T0 + timedelta(hours=1))), [stored()])
    assert action.kind is ActionKind.UPDATE and action.alert_id == 1
    assert action.episode_starts == (T0, T0 + timedelta(hours=1))


def test_an_ended_episode_and_a_new_one_in_one_run() -> None:
    day = timedelta(days=1)
    actions = plan(
        detection(T0 + 2 * day, finding(started_at=T0 + day), finding(ended_at=T0 + timedelta(hours=3))),
        [stored()],
    )
    assert [(a.kind, a.alert_id, a.state) for a in actions] == [
        (ActionKind.UPDATE, 1, AlertState.RESOLVED),
        (ActionKind.OPEN, None, AlertState.OPEN),
    ]
    assert actions[1].episode_starts == (T0 + day,)


def test_an_older_ended_episode_does_not_resolve_an_alert_that_absorbed_a_later_one() -> None:
    hour = timedelta(hours=1)
    absorbed = replace(stored(), episode_starts=(T0, T0 + hour))
    now = T0 + 3 * hour
    actions = plan(
        detection(now, finding(ended_at=T0 + timedelta(minutes=30)), finding(started_at=T0 + hour)),
        [absorbed],
    )
    assert [(a.kind, a.state) for a in actions] == [(ActionKind.UPDATE, AlertState.OPEN)]
    assert actions[0].finding is not None and actions[0].finding.started_at == T0 + hour


def test_subject_codes() -> None:
    codes = subject_codes(SUBJECT)
    assert (codes.enterprise_code, codes.meter_code) == ("91420700MA49ABCD1X", "EL01")
    assert subject_codes("gateway:E1").enterprise_code == "E1"
    assert subject_codes("enterprise:E1").meter_code is None
    assert subject_codes("park:GDKFQ").park_code == "GDKFQ"
    assert subject_codes("topic:parkenergy/v1/E1/_batch").enterprise_code == "E1"
    assert subject_codes("topic:garbage") == subject_codes("nonsense")


def test_people_can_only_ack_open_and_resolve_unresolved() -> None:
    check_acknowledge(1, AlertState.OPEN)
    check_resolve(1, AlertState.OPEN)
    check_resolve(1, AlertState.ACKNOWLEDGED)
    with pytest.raises(AlertStateError, match="alert 1 is resolved"):
        check_acknowledge(1, AlertState.RESOLVED)
    with pytest.raises(AlertStateError, match="already acknowledged"):
        check_acknowledge(1, AlertState.ACKNOWLEDGED)
    with pytest.raises(AlertStateError, match="already resolved") as info:
        check_resolve(7, AlertState.RESOLVED)
    assert info.value.alert_id == 7 and info.value.state is AlertState.RESOLVED
