"""Offline meters and gateways, missing readings: the pure rules, then the detector on a real PostgreSQL.

Readings are inserted straight into ingest.reading; the registry is two enterprises:
A (two 15-min meters and an hourly one) and B (two 15-min meters).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest

from analytics.detect.offline import (
    Gap,
    MeterRef,
    OfflineRules,
    gap_findings,
    gateway_outages,
    meter_outages,
)
from analytics.detect.offline_store import detect_offline
from analytics.findings import Detection, Finding, Severity
from parkdata.migrate import migrate
from tests.harness import load_registry_rows

Conn = psycopg.Connection[Any]
LOCAL = ZoneInfo("Asia/Shanghai")
DAY = datetime(2025, 3, 1, tzinfo=LOCAL)  # local midnight
Q = timedelta(minutes=15)
H = timedelta(hours=1)
RULES = OfflineRules()
ENT_A, ENT_B = "91420704TESTAAAA1X", "91420704TESTBBBB2Y"


def at(hours: float) -> datetime:
    return DAY + timedelta(hours=hours)


# --- pure rules ---------------------------------------------------------------------------


def ref(
    meter_id: int, enterprise_id: int = 1, interval_s: int = 900, last: datetime | None = None
) -> MeterRef:
    return MeterRef(meter_id, f"M{meter_id}", enterprise_id, f"E{enterprise_id}", 1, interval_s, last)


def test_threshold_is_k_intervals_plus_tolerance() -> None:
    assert RULES.threshold_s(900) == 3 * 900 + 90
    assert RULES.threshold_s(60) == 3 * 60 + 60
    assert RULES.gap_s(900) == 1350


def test_meter_outage_edge_of_threshold() -> None:
    now = at(12)
    last = now - timedelta(seconds=RULES.threshold_s(900))
    meter = ref(1, last=last)
    gap = Gap(1, last, None)
    assert meter_outages([meter], [gap], now, RULES) == []
    later = now + timedelta(seconds=1)
    (outage,) = meter_outages([meter], [gap], later, RULES)
    assert outage.started_at == last and outage.ended_at is None


def test_one_reading_between_two_silences_is_one_episode() -> None:
    gaps = [Gap(1, at(8), at(10)), Gap(1, at(10), at(13))]
    # 08:00-10:00 and 10:00-13:00 share the 10:00 reading: one episode, from 08:00.
    (outage,) = meter_outages([ref(1, last=at(13))], gaps, at(13.1), RULES)
    assert (outage.started_at, outage.ended_at) == (at(8), None)  # one reading after: not over
    (outage,) = meter_outages([ref(1, last=at(13.25))], gaps, at(13.3), RULES)
    assert (outage.started_at, outage.ended_at) == (at(8), at(13))


def test_restart_grace_counts_silence_from_the_restart() -> None:
    meter = ref(1, last=at(10))
    gap = Gap(1, at(10), None)
    assert meter_outages([meter], [gap], at(12), RULES, restart_at=at(11.5)) == []
    assert len(meter_outages([meter], [gap], at(12.5), RULES, restart_at=at(11.5))) == 1
    # A gap that ended is history, grace or not.
    ended = Gap(1, at(9), at(11))
    assert len(meter_outages([ref(1, last=at(12))], [ended], at(12), RULES, restart_at=at(11.5))) == 1


def test_gateway_needs_every_reporting_meter_silent() -> None:
    meters = [ref(1, last=at(10)), ref(2, last=at(10)), ref(3, interval_s=86_400, last=at(0))]
    gaps = [Gap(1, at(10), None), Gap(2, at(10), None)]
    (outage,) = gateway_outages(meters, gaps, [Gap(1, at(10), None)], at(12), RULES)
    assert outage.meters == ("M1", "M2") and outage.started_at == at(10) and outage.ended_at is None
    assert outage.meter_gaps == {(1, at(10)), (2, at(10))}
    # One meter silent while the enterprise goes on reporting: no enterprise gap, no gateway.
    assert gateway_outages(meters, gaps[:1], [], at(12), RULES) == []
    # A meter dead long before is not part of the gateway's silence.
    dead = [ref(1, last=at(-30)), ref(2, last=at(10))]
    assert (
        gateway_outages(
            dead, [Gap(1, at(-30), None), Gap(2, at(10), None)], [Gap(1, at(10), None)], at(12), RULES
        )
        == []
    )


def test_meter_still_silent_after_its_gateway_recovered_is_offline() -> None:
    meters = [ref(1, last=at(16)), ref(2, last=at(10))]
    gaps = [Gap(1, at(10), at(14)), Gap(2, at(10), None)]
    (outage,) = gateway_outages(meters, gaps, [Gap(1, at(10), at(14))], at(16), RULES)
    assert outage.ended_at == at(14) and outage.meter_gaps == {(1, at(10))}
    (own,) = meter_outages(meters, gaps, at(16), RULES, explained=outage.meter_gaps)
    assert own.meter.meter_id == 2 and own.started_at == at(10) and own.ended_at is None


def test_gateway_status_offline_is_enough_with_one_missed_reading() -> None:
    meters = [ref(1, last=at(10)), ref(2, last=at(10))]
    gaps = [Gap(1, at(10), None), Gap(2, at(10), None)]
    enterprise = [Gap(1, at(10), None)]
    assert gateway_outages(meters, gaps, enterprise, at(10.5), RULES) == []
    (outage,) = gateway_outages(meters, gaps, enterprise, at(10.5), RULES, status_offline={1: at(10.1)})
    assert outage.status_offline_at == at(10.1)
    # A status older than the silence says nothing about it.
    assert gateway_outages(meters, gaps, enterprise, at(10.5), RULES, status_offline={1: at(9)}) == []


def test_skew_boundary_is_not_a_gap() -> None:
    meter = ref(1, last=at(12))
    boundary = Gap(1, at(10) - timedelta(seconds=900 + 3547), at(10), prev_off_grid=True)
    assert meter_outages([meter], [boundary], at(12), RULES) == []
    assert gap_findings([meter], [boundary], at(12), DAY - timedelta(days=1)) == []


def test_gap_findings_per_local_day_with_missing_times() -> None:
    meter = ref(1, last=at(30))
    # 23:15 -> 00:45: 23:30, 23:45 on day 1 and 00:00 .. 00:30 on day 2 missing.
    gaps = [Gap(1, at(23.25), at(24.75)), Gap(1, at(5), at(5.5))]
    findings = gap_findings([meter], gaps, at(30), DAY - timedelta(days=1))
    day1, day2 = findings
    assert day1.kind == "meter.gap" and day1.severity is Severity.INFO
    assert day1.evidence["missing"] == 3 and day1.started_at == at(5.25) and day1.ended_at == at(23.75)
    assert [datetime.fromisoformat(t) for t in day2.evidence["missing_at"]] == [
        at(h) for h in (24, 24.25, 24.5)
    ]
    assert day2.ended_at is None  # the day is not over at 06:00
    # A day that begins before the window is left out (seen only in part).
    assert gap_findings([meter], gaps, at(30), DAY + timedelta(hours=1)) == [day2]
    # Explained by the gateway: nothing.
    explained = {(1, at(23.25)), (1, at(5))}
    assert gap_findings([meter], gaps, at(30), DAY, explained=explained) == []


# --- the detector on PostgreSQL -----------------------------------------------------------


def meter_row(enterprise: str, code: str, interval: int = 900) -> list[str]:
    return [
        "ECQ",
        "鄂城区",
        enterprise,
        f"企业{enterprise[-2:]}",
        "3120",
        "true",
        code,
        "electricity",
        "kWh",
        "register",
        "consumption",
        "1",
        "",
        str(interval),
        "400",
        "",
    ]


@pytest.fixture
def conn(database_url: str) -> Iterator[Conn]:
    with psycopg.connect(database_url, autocommit=True) as c:
        migrate(c)
        yield c


@pytest.fixture
def ids(conn: Conn, tmp_path: Path) -> dict[str, int]:
    rows = [
        meter_row(ENT_A, "A-EL1"),
        meter_row(ENT_A, "A-EL2"),
        meter_row(ENT_A, "A-GAS", 3600),
        meter_row(ENT_B, "B-EL1"),
        meter_row(ENT_B, "B-EL2"),
    ]
    return load_registry_rows(conn, tmp_path / "registry.csv", rows)


def insert(conn: Conn, meter_id: int, times: Sequence[datetime]) -> None:
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO ingest.reading (meter_id, ts, value) VALUES (%s, %s, %s)",
            [(meter_id, t, float(i)) for i, t in enumerate(times)],
        )


def series(start: datetime, end: datetime, step: timedelta = Q) -> list[datetime]:
    """Grid times in [start, end]."""
    out = []
    t = start
    while t <= end:
        out.append(t)
        t += step
    return out


def fill(
    conn: Conn, ids: dict[str, int], end: datetime, skip: dict[str, list[tuple[datetime, datetime]]]
) -> None:
    """Readings of every meter from the day before DAY to ``end``, except the ``skip`` windows."""
    for code, meter_id in ids.items():
        step = H if code.endswith("GAS") else Q
        times = series(DAY - timedelta(days=1), end, step)
        windows = skip.get(code, [])
        insert(conn, meter_id, [t for t in times if not any(a <= t <= b for a, b in windows)])


def of(detection: Detection, kind: str) -> list[Finding]:
    return [f for f in detection.findings if f.kind == kind]


def test_meter_offline_true_positive_true_negative(conn: Conn, ids: dict[str, int]) -> None:
    fill(conn, ids, at(12), {"A-EL1": [(at(10.25), at(12))]})
    detection = detect_offline(conn, at(12))
    (offline,) = detection.findings
    assert offline.kind == "meter.offline" and offline.subject == f"meter:{ENT_A}/A-EL1"
    assert offline.started_at == at(10) and offline.ended_at is None
    assert offline.severity is Severity.WARNING and offline.observed == 7200
    assert offline.meter_id == ids["A-EL1"] and offline.evidence["threshold_s"] == 2790
    assert detection.subjects is not None and f"meter:{ENT_B}/B-EL1" in detection.subjects
    # Before the threshold: nothing.
    assert detect_offline(conn, at(10) + timedelta(seconds=2790)).findings == ()
    assert len(detect_offline(conn, at(10) + timedelta(seconds=2791)).findings) == 1
    # Idempotent: the same now gives the same findings.
    assert detect_offline(conn, at(12)) == detection


def test_offline_becomes_critical_after_a_day(conn: Conn, ids: dict[str, int]) -> None:
    fill(conn, ids, at(34), {"A-EL1": [(at(10.25), at(34))]})
    (offline,) = detect_offline(conn, at(34)).findings
    assert offline.severity is Severity.CRITICAL and offline.started_at == at(10)


def test_ended_outage_with_hysteresis_and_gap(conn: Conn, ids: dict[str, int]) -> None:
    fill(conn, ids, at(14), {"A-EL1": [(at(10.25), at(12.75))]})
    # One reading after the silence (13:00): still offline.
    early = detect_offline(conn, at(13.05))
    (offline,) = of(early, "meter.offline")
    assert offline.ended_at is None and offline.started_at == at(10)
    # Two readings after: the episode ended at the first of them.
    later = detect_offline(conn, at(13.3))
    (offline,) = of(later, "meter.offline")
    assert offline.ended_at == at(13) and offline.started_at == at(10)
    (gap,) = of(later, "meter.gap")
    assert gap.evidence["missing"] == 11 and gap.started_at == at(10.25) and gap.ended_at is None
    # Replayed at a coarse step the next day, the episode and the day's gaps are reported ended.
    next_day = detect_offline(conn, at(25))
    assert [(f.kind, f.started_at, f.ended_at) for f in next_day.findings if f.subject.endswith("A-EL1")] == [
        ("meter.offline", at(10), at(13)),
        ("meter.gap", at(10.25), at(12.75)),
    ]


def test_short_gap_is_info_not_offline(conn: Conn, ids: dict[str, int]) -> None:
    fill(conn, ids, at(14), {"B-EL2": [(at(11), at(11.25))]})  # two readings missing: 45 min of silence
    detection = detect_offline(conn, at(14))
    (gap,) = detection.findings
    assert gap.kind == "meter.gap" and gap.evidence["missing"] == 2 and gap.severity is Severity.INFO
    # Three missing readings are an hour of silence: an outage (and its gap).
    insert(conn, ids["B-EL1"], [])
    conn.execute("DELETE FROM ingest.reading WHERE meter_id = %s AND ts = %s", (ids["B-EL1"], at(11)))
    conn.execute("DELETE FROM ingest.reading WHERE meter_id = %s AND ts = %s", (ids["B-EL1"], at(11.25)))
    conn.execute("DELETE FROM ingest.reading WHERE meter_id = %s AND ts = %s", (ids["B-EL1"], at(11.5)))
    kinds = sorted(f.kind for f in detect_offline(conn, at(14)).findings if f.subject.endswith("B-EL1"))
    assert kinds == ["meter.gap", "meter.offline"]


def test_gateway_suppression_one_alert_not_the_meters(conn: Conn, ids: dict[str, int]) -> None:
    silent = [(at(10.25), at(14.75))]
    fill(conn, ids, at(16), {"A-EL1": silent, "A-EL2": silent, "A-GAS": silent})
    during = detect_offline(conn, at(12))
    (gateway,) = during.findings
    assert gateway.kind == "gateway.offline" and gateway.subject == f"gateway:{ENT_A}"
    assert gateway.started_at == at(10) and gateway.ended_at is None
    assert gateway.evidence["silent_meters"] == ["A-EL1", "A-EL2", "A-GAS"]
    after = detect_offline(conn, at(16))
    (gateway,) = after.findings  # no meter.offline, no meter.gap for the gateway's silence
    assert gateway.kind == "gateway.offline" and gateway.started_at == at(10) and gateway.ended_at == at(15)


def test_gateway_status_offline(conn: Conn, ids: dict[str, int]) -> None:
    silent = [(at(10.25), at(11))]
    fill(conn, ids, at(10.5), {"A-EL1": silent, "A-EL2": silent, "A-GAS": silent})
    assert detect_offline(conn, at(10.5)).findings == ()
    conn.execute(
        "INSERT INTO ingest.gateway_status (enterprise_id, status, changed_at)"
        " SELECT enterprise_id, 'offline', %s FROM registry.enterprise WHERE enterprise_code = %s",
        (at(10.1), ENT_A),
    )
    (gateway,) = detect_offline(conn, at(10.5)).findings
    assert gateway.kind == "gateway.offline" and datetime.fromisoformat(
        gateway.evidence["status_offline_at"]
    ) == at(10.1)
    # A status time after now (wall clock in a replay) is not seen.
    assert detect_offline(conn, at(10.05)).findings == ()


def collector(conn: Conn, started: datetime, updated: datetime, cid: str = "c1") -> None:
    conn.execute(
        "INSERT INTO ingest.collector_stats (collector_id, started_at, updated_at) VALUES (%s, %s, %s)"
        " ON CONFLICT (collector_id) DO UPDATE SET started_at = excluded.started_at,"
        " updated_at = excluded.updated_at",
        (cid, started, updated),
    )


def test_restart_grace(conn: Conn, ids: dict[str, int]) -> None:
    fill(conn, ids, at(13), {"A-EL1": [(at(10.25), at(13))]})
    subject = f"meter:{ENT_A}/A-EL1"
    collector(conn, at(11.5), at(11.99))
    graced = detect_offline(conn, at(12))
    assert graced.findings == ()
    assert graced.subjects is not None and subject not in graced.subjects  # its open alert stays
    assert f"meter:{ENT_B}/B-EL1" in graced.subjects
    # k intervals (+ tolerance) after the restart the outage is judged again, from its old start.
    collector(conn, at(11.5), at(12.3))
    (offline,) = detect_offline(conn, at(12.3)).findings
    assert offline.started_at == at(10)
    # A collector start after now (history being replayed) is ignored.
    collector(conn, at(12.5), at(13))
    (offline,) = detect_offline(conn, at(12)).findings
    assert offline.subject == subject


def test_collector_down_judges_nothing(conn: Conn, ids: dict[str, int]) -> None:
    fill(conn, ids, at(12), {"A-EL1": [(at(10.25), at(12))]})
    collector(conn, at(1), at(12) - timedelta(minutes=11))
    collector(conn, at(2), at(12) - timedelta(minutes=20), "c2")
    down = detect_offline(conn, at(12))
    assert down.findings == () and down.subjects == frozenset()
    # One collector with a fresh heartbeat: not down.
    collector(conn, at(2), at(12) - timedelta(minutes=5), "c2")
    assert len(detect_offline(conn, at(12)).findings) == 1


def test_never_seen_meters_and_empty_database(conn: Conn, ids: dict[str, int]) -> None:
    detection = detect_offline(conn, at(12))
    assert detection.findings == () and detection.subjects == frozenset()
    insert(conn, ids["B-EL1"], series(at(0), at(12)))
    detection = detect_offline(conn, at(12))
    assert detection.findings == () and detection.subjects == {f"meter:{ENT_B}/B-EL1", f"gateway:{ENT_B}"}


def test_clock_skew_end_is_not_an_outage(conn: Conn, ids: dict[str, int]) -> None:
    fill(conn, ids, at(16), {code: [(at(8), at(12.9))] for code in ("A-EL1", "A-EL2", "A-GAS")})
    # 08:00 .. 12:45 stamped 3547 s early (never whole minutes), as a gateway with a slow clock.
    offset = timedelta(seconds=-3547)
    for code in ("A-EL1", "A-EL2"):
        insert(conn, ids[code], [t + offset for t in series(at(8), at(12.75))])
    insert(conn, ids["A-GAS"], [t + offset for t in series(at(8), at(12), H)])
    assert detect_offline(conn, at(16)).findings == ()


def test_query_is_fast_enough(conn: Conn, ids: dict[str, int]) -> None:
    fill(conn, ids, at(48), {})
    started = datetime.now(UTC)
    detect_offline(conn, at(48))
    assert (datetime.now(UTC) - started).total_seconds() < 1.0
