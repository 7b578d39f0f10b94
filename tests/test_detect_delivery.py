"""Late delivery, clock skew and quarantine: the pure rules, then the detector on a real PostgreSQL.

Readings are inserted straight into ingest.reading with the receipt times a collector would
have given them (one receipt time per transaction); quarantine rows straight into
ingest.quarantine.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest

from analytics.detect.delivery import (
    DeliveryRules,
    GatewayRef,
    LateReading,
    OffGridReading,
    QuarantineRow,
    late_findings,
    late_threshold_s,
    payload_event_time,
    quarantine_findings,
    quarantine_kind,
    skew_findings,
    topic_subject,
)
from analytics.detect.delivery_store import detect_delivery
from analytics.findings import Detection, Finding, Severity
from parkdata.migrate import migrate
from tests.harness import load_registry_rows
from tests.test_detect_offline import meter_row
from tests.test_detect_offline import series as grid

Conn = psycopg.Connection[Any]
LOCAL = ZoneInfo("Asia/Shanghai")
DAY = datetime(2025, 3, 1, tzinfo=LOCAL)
WALL = datetime(2026, 11, 1, tzinfo=LOCAL)  # receipt times of a backfill: long after the readings
Q = timedelta(minutes=15)
H = timedelta(hours=1)
RULES = DeliveryRules()
ENT_A, ENT_B = "91420704TESTAAAA1X", "91420704TESTBBBB2Y"


def at(hours: float) -> datetime:
    return DAY + timedelta(hours=hours)


# --- pure rules ---------------------------------------------------------------------------

GW = {1: GatewayRef(1, "E1", 1, 2)}


def test_late_threshold() -> None:
    assert late_threshold_s(900, RULES) == 1800
    assert late_threshold_s(3600, RULES) == 7200
    assert late_threshold_s(None, RULES) == 1800


def test_late_episode_needs_two_readings_and_ends_with_on_time_data() -> None:
    rows = [LateReading(1, "M1", at(10), 5000, 900), LateReading(1, "M2", at(10.25), 4000, 900)]
    (finding,) = late_findings(rows, GW, {1: at(12)}, DAY - timedelta(days=1), RULES)
    assert finding.kind == "delivery.late" and finding.subject == "gateway:E1"
    assert finding.started_at == at(10) and finding.ended_at == at(10.25)
    assert finding.evidence["max_lateness_s"] == 5000 and finding.evidence["readings"] == 2
    ongoing = late_findings(rows, GW, {1: at(9)}, DAY - timedelta(days=1), RULES)
    assert ongoing[0].ended_at is None
    assert late_findings(rows[:1], GW, {1: at(12)}, DAY - timedelta(days=1), RULES) == []
    # Far apart in event time: two episodes.
    far = [*rows, LateReading(1, "M1", at(20), 3000, 900), LateReading(1, "M2", at(20), 3000, 900)]
    assert len(late_findings(far, GW, {1: at(21)}, DAY - timedelta(days=1), RULES)) == 2


def test_skew_needs_consistent_offsets_of_two_meters() -> None:
    rows = [OffGridReading(1, f"M{i % 2}", at(10) + i * Q / 2, -7.0, 900) for i in range(6)]
    (finding,) = skew_findings(rows, GW, {1: at(14)}, DAY - timedelta(days=1), RULES)
    assert finding.kind == "clock.skew" and finding.evidence["offset_s"] == -7.0
    assert finding.ended_at == rows[-1].ts and finding.severity is Severity.WARNING
    # Jitter: deviations that do not agree.
    jitter = [OffGridReading(1, f"M{i % 2}", at(10) + i * Q / 2, float(3 * i - 8), 900) for i in range(6)]
    assert skew_findings(jitter, GW, {}, DAY - timedelta(days=1), RULES) == []
    # One meter of two: not the gateway's clock.
    one = [OffGridReading(1, "M1", at(10) + i * Q, -7.0, 900) for i in range(6)]
    assert skew_findings(one, GW, {}, DAY - timedelta(days=1), RULES) == []
    # Edge: the minimum number of readings.
    assert skew_findings(rows[:3], GW, {}, DAY - timedelta(days=1), RULES) == []
    assert len(skew_findings(rows[:4], GW, {}, DAY - timedelta(days=1), RULES)) == 1


def test_topic_subject_and_kind() -> None:
    assert topic_subject("parkenergy/v1/E1/EL-01") == ("meter:E1/EL-01", "E1", "EL-01")
    assert topic_subject("parkenergy/v1/E1/_batch")[0] == "topic:parkenergy/v1/E1/_batch"
    assert topic_subject("junk")[0] == "topic:junk"
    assert quarantine_kind("payload.undecodable") == "quarantine.payload"
    assert quarantine_kind("value.not_numeric") == "quarantine.value"


def test_payload_event_time() -> None:
    received = WALL
    good = QuarantineRow(
        received, "t", b'{"ts": "2025-03-01T10:00:00+08:00", "value": "x"}', "value.not_numeric", ""
    )
    assert payload_event_time(good) == at(10)
    epoch = QuarantineRow(
        received,
        "t",
        json.dumps({"readings": [{"ts": int(at(9).timestamp() * 1000)}]}).encode(),
        "unit.unknown",
        "",
    )
    assert payload_event_time(epoch) == at(9)
    truncated = QuarantineRow(
        received, "t", b'{"readings": [{"ts": "2025-03-01T11:00:00+08:00", "val', "payload.undecodable", ""
    )
    assert payload_event_time(truncated) == at(11)
    cut = QuarantineRow(received, "t", b'{"readings": [{"ts": "2025-03-01T13:0', "payload.undecodable", "")
    assert payload_event_time(cut) == at(13)
    garbage = QuarantineRow(received, "t", b"\xff\xfe", "payload.undecodable", "")
    assert payload_event_time(garbage) == received
    too_old = QuarantineRow(received, "t", b'{"ts": "2010-01-01T00:00:00+08:00"}', "timestamp.too_old", "")
    assert payload_event_time(too_old) == received


def test_quarantine_findings_per_subject_kind_and_day() -> None:
    topic = "parkenergy/v1/E1/EL-01"
    rows = [
        QuarantineRow(
            WALL,
            topic,
            b'{"ts": "2025-03-01T10:00:00+08:00", "value": "unavailable"}',
            "value.not_numeric",
            "d1",
        ),
        QuarantineRow(
            WALL,
            topic,
            b'{"ts": "2025-03-01T12:00:00+08:00", "value": "unavailable"}',
            "value.not_numeric",
            "d2",
        ),
        QuarantineRow(WALL, topic, b'{"ts": "2025-03-01T12:00:00+08:00", "unit": "x"}', "unit.unknown", "d3"),
        QuarantineRow(
            WALL,
            topic,
            b'{"ts": "2025-03-02T01:00:00+08:00", "value": "unavailable"}',
            "value.not_numeric",
            "d4",
        ),
    ]
    ids = {("E1", "EL-01"): (1, 7, 3)}
    findings = quarantine_findings(rows, at(30), DAY - timedelta(days=1), ids)
    assert [(f.kind, f.started_at, f.ended_at, f.observed) for f in findings] == [
        ("quarantine.unit", at(12), at(12), 1.0),
        ("quarantine.value", at(10), at(12), 2.0),
        ("quarantine.value", at(25), None, 1.0),
    ]
    unit, value, _ = findings
    assert unit.severity is Severity.WARNING and value.severity is Severity.INFO
    assert value.meter_id == 7 and value.evidence["reasons"] == {"value.not_numeric": 2}
    # Not yet visible before its event time; a day begun before the window is left out.
    assert quarantine_findings(rows, at(11), DAY - timedelta(days=1), ids)[0].observed == 1.0
    assert [f.started_at for f in quarantine_findings(rows, at(30), DAY + H, ids)] == [at(25)]


# --- the detector on PostgreSQL -----------------------------------------------------------


@pytest.fixture
def conn(database_url: str) -> Iterator[Conn]:
    with psycopg.connect(database_url, autocommit=True) as c:
        migrate(c)
        yield c


@pytest.fixture
def ids(conn: Conn, tmp_path: Path) -> dict[str, int]:
    rows = [meter_row(ENT_A, "A-EL1"), meter_row(ENT_A, "A-EL2"), meter_row(ENT_B, "B-EL1")]
    return load_registry_rows(conn, tmp_path / "registry.csv", rows)


def publish(
    conn: Conn, ids: dict[str, int], messages: Sequence[tuple[datetime, Sequence[str]]], base: datetime = WALL
) -> None:
    """Store one transaction per (ts, meters) in order, as a collector would: receipt times increase."""
    with conn.cursor() as cur:
        for i, (ts, codes) in enumerate(messages):
            received = base + timedelta(seconds=i)
            cur.executemany(
                "INSERT INTO ingest.reading (meter_id, ts, value, received_at) VALUES (%s, %s, 1, %s)",
                [(ids[c], ts, received) for c in codes],
            )


EVERY = ("A-EL1", "A-EL2", "B-EL1")


def of(detection: Detection, kind: str) -> list[Finding]:
    return [f for f in detection.findings if f.kind == kind]


def test_in_order_backfill_is_not_late(conn: Conn, ids: dict[str, int]) -> None:
    publish(conn, ids, [(t, EVERY) for t in grid(at(0), at(20))])
    detection = detect_delivery(conn, at(20))
    assert detection.findings == ()
    assert "delivery.late" in detection.kinds and "quarantine.payload" in detection.kinds


def test_late_burst_in_a_backfill(conn: Conn, ids: dict[str, int]) -> None:
    # A's 10:00-11:45 readings are published after those up to 12:20 (a 2 h outage delivered late).
    burst = grid(at(10), at(11.75))
    order: list[tuple[datetime, Sequence[str]]] = []
    for t in grid(at(0), at(20)):
        order.append((t, ("B-EL1",) if t in burst else EVERY))
        if t == at(12.25):
            order.extend((b, ("A-EL1", "A-EL2")) for b in burst)
    publish(conn, ids, order)
    first = detect_delivery(conn, at(20))
    (late,) = first.findings
    assert late.kind == "delivery.late" and late.subject == f"gateway:{ENT_A}"
    assert late.started_at == at(10) and late.ended_at is not None
    # 10:00 arrived when A's data had reached 12:15; 11:30 (45 min late) is late, 11:45 (30 min) is not.
    assert late.evidence["max_lateness_s"] == 8100 and late.ended_at == at(11.5)
    assert late.evidence["readings"] == 2 * 7
    assert detect_delivery(conn, at(20)) == first  # idempotent
    # As of 11:50 (event time) A's data had not gone past 11:45: nothing was late yet.
    assert detect_delivery(conn, at(11.8)).findings == ()


def test_arrival_order_within_one_transaction(conn: Conn, ids: dict[str, int]) -> None:
    # A large backfill commits many messages in one transaction: one received_at for all.
    burst = grid(at(10), at(11))
    rows = [t for t in grid(at(0), at(14)) if t not in burst]
    order = [*[t for t in rows if t <= at(12)], *burst, *[t for t in rows if t > at(12)]]
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO ingest.reading (meter_id, ts, value, received_at) VALUES (%s, %s, 1, %s)",
            [(ids[code], t, WALL) for t in order for code in ("A-EL1", "A-EL2")],
        )
    (late,) = detect_delivery(conn, at(14)).findings
    assert late.started_at == at(10) and late.evidence["readings"] == 2 * 5
    assert late.evidence["max_lateness_s"] == 2 * 3600


def test_live_lateness_from_receipt_time(conn: Conn, ids: dict[str, int]) -> None:
    # Live: received a few seconds after their time, except two readings received 31 min late.
    with conn.cursor() as cur:
        for t in grid(at(0), at(6)):
            delay = timedelta(minutes=31) if t == at(3) else timedelta(seconds=5)
            cur.execute(
                "INSERT INTO ingest.reading (meter_id, ts, value, received_at)"
                " VALUES (%s, %s, 1, %s), (%s, %s, 1, %s)",
                (ids["A-EL1"], t, t + delay, ids["A-EL2"], t, t + delay),
            )
    (late,) = detect_delivery(conn, at(6)).findings
    assert late.started_at == at(3) and late.evidence["readings"] == 2
    assert late.evidence["max_lateness_s"] == 31 * 60
    # Received after now: not seen as late yet (and nothing else is).
    assert detect_delivery(conn, at(3.25)).findings == ()


def test_lateness_edge(conn: Conn, ids: dict[str, int]) -> None:
    # Exactly 30 min behind the enterprise's data is not late.
    order: list[tuple[datetime, Sequence[str]]] = []
    for t in grid(at(0), at(6)):
        if t == at(3):
            continue
        order.append((t, ("A-EL1", "A-EL2")))
        if t == at(3.5):
            order.append((at(3), ("A-EL1", "A-EL2")))
    publish(conn, ids, order)
    assert detect_delivery(conn, at(6)).findings == ()


def test_clock_skew_of_a_gateway(conn: Conn, ids: dict[str, int]) -> None:
    offset = timedelta(seconds=-907)  # 15 min 7 s early: 7 s off the 15-min grid
    order: list[tuple[datetime, Sequence[str]]] = []
    for t in grid(at(0), at(20)):
        if at(8) <= t < at(12):
            order.append((t + offset, ("A-EL1", "A-EL2")))
            order.append((t, ("B-EL1",)))
        else:
            order.append((t, EVERY))
    publish(conn, ids, order)
    detection = detect_delivery(conn, at(20))
    (skew,) = detection.findings
    assert skew.kind == "clock.skew" and skew.subject == f"gateway:{ENT_A}"
    assert skew.evidence["offset_s"] == -7.0 and skew.evidence["readings"] == 32
    assert skew.started_at == at(8) + offset and skew.ended_at == at(11.75) + offset
    assert skew.evidence["meters"] == ["A-EL1", "A-EL2"]
    # While it lasts: ongoing.
    (ongoing,) = detect_delivery(conn, at(10)).findings
    assert ongoing.ended_at is None and ongoing.started_at == at(8) + offset


def quarantine(conn: Conn, topic: str, payload: bytes, reason: str, received: datetime = WALL) -> None:
    digest = hashlib.sha256(topic.encode() + b"\0" + payload).digest()
    conn.execute(
        "INSERT INTO ingest.quarantine (received_at, topic, payload, payload_is_utf8, reason, detail,"
        " message_sha256, collector_id) VALUES (%s, %s, %s, true, %s, %s, %s, 'test')",
        (received, topic, payload, reason, f"detail of {reason}", digest),
    )


def test_quarantine_in_a_replay(conn: Conn, ids: dict[str, int]) -> None:
    meter_topic = f"parkenergy/v1/{ENT_A}/A-EL1"
    quarantine(
        conn, meter_topic, b'{"ts": "2025-03-01T10:00:00+08:00", "value": "unavailable"}', "value.not_numeric"
    )
    quarantine(
        conn, meter_topic, b'{"readings": [{"ts": "2025-03-01T11:00:00+08:00", "val', "payload.undecodable"
    )
    quarantine(
        conn,
        f"parkenergy/v1/{ENT_A}/NOPE",
        b'{"ts": "2025-03-01T11:30:00+08:00", "value": 1}',
        "registry.unknown_meter",
    )
    quarantine(conn, "bad topic", b"{}", "topic.invalid", received=at(12))
    detection = detect_delivery(conn, at(12))
    got = sorted(
        (f.kind, f.subject, f.started_at, f.severity, f.meter_id, f.enterprise_id) for f in detection.findings
    )
    enterprise_a = conn.execute(
        "SELECT enterprise_id FROM registry.enterprise WHERE enterprise_code = %s", (ENT_A,)
    ).fetchone()
    assert enterprise_a is not None
    assert got == [
        (
            "quarantine.payload",
            f"meter:{ENT_A}/A-EL1",
            at(11),
            Severity.WARNING,
            ids["A-EL1"],
            enterprise_a[0],
        ),
        ("quarantine.registry", f"meter:{ENT_A}/NOPE", at(11.5), Severity.WARNING, None, enterprise_a[0]),
        ("quarantine.topic", "topic:bad topic", at(12), Severity.WARNING, None, None),
        ("quarantine.value", f"meter:{ENT_A}/A-EL1", at(10), Severity.INFO, ids["A-EL1"], enterprise_a[0]),
    ]
    # Earlier in the replay only what had happened by then.
    assert [f.kind for f in detect_delivery(conn, at(10.5)).findings] == ["quarantine.value"]
    assert detect_delivery(conn, at(12)) == detection
    # Received before the lookback: out of it.
    assert detect_delivery(conn, WALL + timedelta(days=3)).findings == ()
