"""Alerts in a real PostgreSQL (analytics.alert_store, migration 0013, api.alert / api.alert_event)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from analytics.alert_store import (
    AlertError,
    AlertFilter,
    AlertStateError,
    ApplySummary,
    BadFilterError,
    UnknownAlertError,
    acknowledge,
    apply_detection,
    get_alert,
    list_alerts,
    resolve,
)
from analytics.findings import Detection, Finding, Severity, enterprise_subject, meter_subject
from parkdata.migrate import migrate
from tests.test_energy_store import ENTERPRISE, load, meter

Conn = psycopg.Connection[Any]
T0 = datetime(2025, 6, 1, 0, 0, tzinfo=UTC)
EL = meter_subject(ENTERPRISE, "EL")
GAS = meter_subject(ENTERPRISE, "GAS")

# contracts for issue 5: the columns Grafana's dashboards and alert rules rely on
ALERT_COLUMNS = [
    "alert_id", "kind", "severity", "severity_rank", "state", "subject", "park_code", "park_name",
    "enterprise_code", "enterprise_name", "industry_code", "meter_code", "started_at", "ended_at",
    "opened_at", "last_seen_at", "acknowledged_at", "acknowledged_by", "ack_note", "resolved_at",
    "resolved_by", "resolution", "summary_zh", "summary_en", "observed", "expected_low",
    "expected_high", "score", "unit", "evidence", "detector", "occurrences",
]  # fmt: skip
EVENT_COLUMNS = [
    "event_id", "alert_id", "at", "event", "actor", "note", "severity", "kind", "subject",
    "park_code", "enterprise_code",
]  # fmt: skip


@pytest.fixture
def conn(database_url: str, tmp_path: Path) -> Iterator[Conn]:
    with psycopg.connect(database_url, autocommit=True) as c:
        migrate(c)
        load(c, tmp_path, meter("EL"), meter("GAS"))
        yield c


def finding(
    subject: str = EL,
    severity: Severity = Severity.WARNING,
    started_at: datetime = T0,
    ended_at: datetime | None = None,
    kind: str = "meter.offline",
) -> Finding:
    return Finding(
        kind=kind,
        severity=severity,
        subject=subject,
        started_at=started_at,
        summary_zh="电表离线 30 分钟",
        summary_en="meter offline for 30 min",
        ended_at=ended_at,
        observed=1800.0,
        expected_high=900.0,
        unit="s",
        evidence={"last_reading": started_at, "k": 2, "说明": "无数据"},
    )


def detection(now: datetime, *findings: Finding, kinds: tuple[str, ...] = ("meter.offline",)) -> Detection:
    return Detection(
        detector="offline",
        now=now,
        kinds=kinds,
        findings=findings,
        clear_after_s={"meter.offline": 600.0},
    )


def state(conn: Conn) -> list[tuple[Any, ...]]:
    alerts = conn.execute(
        "SELECT alert_id, kind, subject, severity, state, started_at, ended_at, last_seen_at,"
        " occurrences, resolution, evidence::text FROM analytics.alert ORDER BY alert_id"
    ).fetchall()
    history = conn.execute(
        "SELECT alert_id, at, event, actor, note FROM analytics.alert_event ORDER BY 1, 2"
    ).fetchall()
    return alerts + history


def test_apply_twice_is_the_same_state(conn: Conn) -> None:
    runs = [
        detection(T0, finding()),
        detection(T0 + timedelta(minutes=1), finding(), finding(GAS, ended_at=T0 + timedelta(seconds=30))),
        detection(T0 + timedelta(minutes=2), finding(severity=Severity.CRITICAL)),
        detection(T0 + timedelta(minutes=30)),
    ]
    expected = [
        ApplySummary(opened=1),
        ApplySummary(opened=1, updated=1, resolved=1),
        ApplySummary(updated=1, escalated=1),
        ApplySummary(resolved=1),
    ]
    for run, summary in zip(runs, expected, strict=True):
        assert apply_detection(conn, run) == summary
        before = state(conn)
        assert apply_detection(conn, run) == ApplySummary()
        assert state(conn) == before
    # replaying the whole history from the start changes nothing either
    before = state(conn)
    for run in runs:
        apply_detection(conn, run)
    assert state(conn) == before
    rows = conn.execute(
        "SELECT subject, severity, severity_rank, state, resolution, occurrences, resolved_by"
        " FROM api.alert ORDER BY alert_id"
    ).fetchall()
    assert rows == [
        (EL, "critical", 3, "resolved", "cleared", 3, "offline"),
        (GAS, "warning", 2, "resolved", "ended", 1, "offline"),
    ]
    events = conn.execute("SELECT subject, event, actor FROM api.alert_event ORDER BY event_id").fetchall()
    assert events == [
        (EL, "opened", "offline"),
        (GAS, "opened", "offline"),
        (GAS, "resolved", "offline"),
        (EL, "escalated", "offline"),
        (EL, "resolved", "offline"),
    ]


def test_the_view_has_the_contract_columns_and_registry_names(conn: Conn) -> None:
    apply_detection(conn, detection(T0, finding()))
    cur = conn.execute("SELECT * FROM api.alert")
    row = dict(zip([d.name for d in cur.description or []], cur.fetchone() or (), strict=True))
    assert list(row)[: len(ALERT_COLUMNS)] == ALERT_COLUMNS
    assert row["park_code"] == "ECQ" and row["park_name"] == "鄂城区"
    assert (row["enterprise_code"], row["enterprise_name"], row["industry_code"]) == (
        ENTERPRISE,
        "测试企业",
        "3120",
    )
    assert row["meter_code"] == "EL"  # ids filled from the subject: the finding gave none
    assert row["evidence"] == {"last_reading": T0.isoformat(), "k": 2, "说明": "无数据"}
    assert row["started_at"] == T0 and row["opened_at"] == T0 and row["last_seen_at"] == T0
    assert (row["observed"], row["expected_high"], row["unit"], row["occurrences"]) == (1800.0, 900.0, "s", 1)
    raw = conn.execute("SELECT evidence::text FROM analytics.alert").fetchone()
    assert raw is not None and "无数据" in str(raw[0])  # stored as text, not \\u escapes
    cur = conn.execute("SELECT * FROM api.alert_event")
    assert [d.name for d in cur.description or []] == EVENT_COLUMNS
    assert cur.fetchone() == (
        1,
        1,
        T0,
        "opened",
        "offline",
        "电表离线 30 分钟",
        "warning",
        "meter.offline",
        EL,
        "ECQ",
        ENTERPRISE,
    )


def test_grafana_and_analytics_roles(conn: Conn) -> None:
    apply_detection(conn, detection(T0, finding()))
    for role in ("parkenergy_grafana", "parkenergy_analytics"):
        conn.execute(f"SET ROLE {role}")
        try:
            assert conn.execute("SELECT count(*) FROM api.alert").fetchone() == (1,)
            assert conn.execute("SELECT count(*) FROM api.alert_event").fetchone() == (1,)
            if role == "parkenergy_grafana":
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute("SELECT * FROM analytics.alert")
            else:  # analytics writes the tables
                apply_detection(conn, detection(T0 + timedelta(minutes=1), finding(GAS)))
                acknowledge(conn, 1, "张三", "已通知企业")
        finally:
            conn.execute("RESET ROLE")


def test_no_duplicate_open_alert_with_concurrent_runs(database_url: str, conn: Conn) -> None:
    subjects = [meter_subject(ENTERPRISE, f"M{i}") for i in range(50)]
    run = detection(T0, *(finding(s) for s in subjects))
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def apply() -> None:
        try:
            with psycopg.connect(database_url, autocommit=True) as c:
                barrier.wait()
                apply_detection(c, run)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=apply) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    counts = conn.execute(
        "SELECT count(*), count(DISTINCT subject), sum(occurrences) FROM analytics.alert WHERE state = 'open'"
    ).fetchone()
    assert counts == (50, 50, 50)
    assert conn.execute("SELECT count(*) FROM analytics.alert_event").fetchone() == (50,)
    # the index is the last guard
    with pytest.raises(psycopg.errors.UniqueViolation):
        conn.execute(
            "INSERT INTO analytics.alert (kind, subject, severity, severity_rank, state, started_at,"
            " episode_starts, opened_at, last_seen_at, acknowledged_at, summary_zh, summary_en, detector)"
            " SELECT kind, subject, severity, severity_rank, 'acknowledged', started_at, episode_starts,"
            " opened_at, last_seen_at, now(), summary_zh, summary_en, detector FROM analytics.alert LIMIT 1"
        )


def test_ack_and_resolve_record_who_and_why(conn: Conn) -> None:
    apply_detection(conn, detection(T0, finding(), finding(GAS)))
    acknowledge(conn, 1, "张三", "已电话通知企业", at=T0 + timedelta(minutes=5))
    with pytest.raises(AlertStateError, match="already acknowledged"):
        acknowledge(conn, 1, "李四")
    # an acknowledged alert keeps updating and escalates
    apply_detection(
        conn, detection(T0 + timedelta(minutes=10), finding(severity=Severity.CRITICAL), finding(GAS))
    )
    resolve(conn, 1, "李四", "表计已更换", at=T0 + timedelta(minutes=20))
    with pytest.raises(AlertStateError, match="already resolved"):
        resolve(conn, 1, "李四", "again")
    with pytest.raises(AlertStateError, match="resolved; nothing to acknowledge"):
        acknowledge(conn, 1, "李四")
    with pytest.raises(UnknownAlertError, match="no alert 99"):
        acknowledge(conn, 99, "李四")
    with pytest.raises(AlertError, match="needs a note"):
        resolve(conn, 2, "李四", "  ")
    with pytest.raises(AlertError, match="say who"):
        acknowledge(conn, 2, "")
    alert = get_alert(conn, 1)
    assert alert.alert["state"] == "resolved" and alert.alert["severity"] == "critical"
    assert (alert.alert["acknowledged_by"], alert.alert["ack_note"]) == ("张三", "已电话通知企业")
    assert (alert.alert["resolved_by"], alert.alert["resolution"], alert.alert["resolve_note"]) == (
        "李四",
        "manual",
        "表计已更换",
    )
    assert [(e["event"], e["actor"], e["note"]) for e in alert.events] == [
        ("opened", "offline", "电表离线 30 分钟"),
        ("acknowledged", "张三", "已电话通知企业"),
        ("escalated", "offline", "warning → critical"),
        ("resolved", "李四", "表计已更换"),
    ]
    # still detected: the resolved episode stays resolved; a new episode opens a new alert
    later = T0 + timedelta(minutes=30)
    assert apply_detection(conn, detection(later, finding(), finding(GAS))) == ApplySummary(updated=1)
    new = apply_detection(
        conn, detection(later + timedelta(hours=1), finding(started_at=later), finding(GAS))
    )
    assert new == ApplySummary(opened=1, updated=1)
    with pytest.raises(UnknownAlertError):
        get_alert(conn, 99)


def test_list_filters(conn: Conn, tmp_path: Path) -> None:
    apply_detection(
        conn,
        detection(
            T0,
            finding(),
            finding(GAS, severity=Severity.CRITICAL, kind="counter.stuck"),
            finding(enterprise_subject(ENTERPRISE), severity=Severity.INFO, kind="quality.completeness"),
            finding(meter_subject(ENTERPRISE, "GAS"), kind="counter.spike", ended_at=T0 + timedelta(hours=1)),
            kinds=("meter.offline", "counter.stuck", "counter.spike", "quality.completeness"),
        ),
    )

    def kinds(**kw: Any) -> list[str]:
        return [str(r["kind"]) for r in list_alerts(conn, AlertFilter(**kw))]

    assert kinds() == ["counter.stuck", "meter.offline", "quality.completeness"]
    assert kinds(kind="counter.", states=("open", "acknowledged", "resolved")) == [
        "counter.stuck",
        "counter.spike",
    ]
    assert kinds(kind="counter.*") == ["counter.stuck"]
    assert kinds(kind="counter") == []
    assert kinds(severity=Severity.WARNING) == ["counter.stuck", "meter.offline"]
    assert kinds(states=("resolved",)) == ["counter.spike"]
    assert kinds(enterprise=ENTERPRISE, limit=1) == ["counter.stuck"]
    assert kinds(park="ECQ", kind="quality.completeness") == ["quality.completeness"]
    everything = ("open", "acknowledged", "resolved")
    assert kinds(states=everything, since=T0 + timedelta(hours=2)) == kinds()
    assert kinds(states=everything, until=T0) == []
    assert len(kinds(states=everything, until=T0 + timedelta(seconds=1))) == 4
    (offline,) = list_alerts(conn, AlertFilter(kind="meter.offline"))
    acknowledge(conn, int(offline["alert_id"]), "张三")
    assert kinds(states=("acknowledged",)) == ["meter.offline"]
    with pytest.raises(BadFilterError, match="unknown park 'NOPE'"):
        list_alerts(conn, AlertFilter(park="NOPE"))
    with pytest.raises(BadFilterError, match="unknown enterprise"):
        list_alerts(conn, AlertFilter(enterprise="NOPE"))
    with pytest.raises(BadFilterError, match="unknown state"):
        AlertFilter(states=("closed",))
    with pytest.raises(BadFilterError, match="timezone"):
        AlertFilter(since=datetime(2025, 1, 1))  # naive: refused
