"""The detector benchmark's matching and scoring (benchmarks/detector_scoring.py), on hand-made alerts."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest

from benchmarks.detector_scoring import Alert, Context, Truth, parse_truth, score, split_scored
from simulators.timebase import CST

E1, E2 = "91420704MA4L2TEU8K", "91420704MA4LJ4681R"
T0 = datetime(2026, 9, 1, tzinfo=CST)
H = timedelta(hours=1)


def ctx() -> Context:
    return Context(
        intervals_s={
            (E1, "EL-01"): 900.0,
            (E1, "NG-01"): 3600.0,
            (E1, "WA-01"): 86400.0,
            (E2, "EL-01"): 900.0,
        },
        horizon=T0 + timedelta(days=30),
        meter_days=4 * 30,
    )


def truth(kind: str, start: datetime, end: datetime, meter: str | None = "EL-01", enterprise: str = E1,
          **detail: object) -> Truth:  # fmt: skip
    return Truth(kind, enterprise, meter, start, end, detail)


def alert(
    i: int, kind: str, subject: str, start: datetime, opened: datetime, end: datetime | None = None
) -> Alert:
    return Alert(i, kind, subject, start, opened, ended_at=end, last_seen_at=end or opened)


def by_kind(result: object, attr: str, kind: str) -> Any:
    return next(x for x in getattr(result, attr) if x.kind == kind)


def test_parse_truth_reads_the_simulator_jsonl() -> None:
    line = json.dumps(
        {
            "kind": "meter.gap",
            "enterprise": E1,
            "meter": "ST-01",
            "start": "2022-01-03T01:00:00+08:00",
            "end": "2022-01-03T16:00:00+08:00",
            "detail": {"readings": 16},
        }
    )
    (t,) = parse_truth([line, ""])
    assert (t.kind, t.enterprise, t.meter, t.detail["readings"]) == ("meter.gap", E1, "ST-01", 16)
    assert t.end - t.start == timedelta(hours=15)


def test_a_gap_is_detected_by_an_overlapping_offline_alert_and_the_delay_is_from_the_start() -> None:
    gap = truth("meter.gap", T0 + 10 * H, T0 + 14 * H)
    hit = alert(1, "meter.offline", f"meter:{E1}/EL-01", T0 + 9.75 * H, T0 + 11 * H, T0 + 14.25 * H)
    result = score([gap], [hit], ctx())
    f = by_kind(result, "faults", "meter.gap")
    assert (f.truth, f.detected, f.recall, f.median_delay_s) == (1, 1, 1.0, 3600.0)
    a = by_kind(result, "alert_kinds", "meter.offline")
    assert (a.primary, a.secondary, a.precision) == (1, 0, 1.0)


def test_an_alert_on_another_meter_or_far_away_in_time_neither_detects_nor_is_explained() -> None:
    gap = truth("meter.gap", T0 + 10 * H, T0 + 14 * H)
    other_meter = alert(1, "meter.offline", f"meter:{E2}/EL-01", T0 + 10 * H, T0 + 11 * H, T0 + 13 * H)
    later = alert(2, "meter.offline", f"meter:{E1}/EL-01", T0 + 20 * H, T0 + 21 * H, T0 + 22 * H)
    result = score([gap], [other_meter, later], ctx())
    assert by_kind(result, "faults", "meter.gap").detected == 0
    a = by_kind(result, "alert_kinds", "meter.offline")
    assert a.precision == 0.0 and len(a.false) == 2


def test_tolerance_is_three_intervals_but_at_least_an_hour() -> None:
    gap = truth("meter.gap", T0 + 10 * H, T0 + 10 * H)
    subject = f"meter:{E1}/EL-01"  # 15-min meter: tolerance 1 h
    just_inside = alert(1, "meter.gap", subject, T0 + 11 * H, T0 + 12 * H, T0 + 11 * H)
    just_outside = alert(
        2, "meter.gap", subject, T0 + 11 * H + timedelta(seconds=1), T0 + 12 * H, T0 + 12 * H
    )
    assert score([gap], [just_inside], ctx()).faults[3].detected == 1
    assert score([gap], [just_outside], ctx()).faults[3].detected == 0
    assert ctx().tolerance(f"meter:{E1}/WA-01") == timedelta(days=3)
    assert ctx().tolerance(f"gateway:{E1}") == timedelta(hours=1)


def test_an_ongoing_alert_lasts_until_last_seen() -> None:
    stuck = truth("register.stuck", T0 + 50 * H, T0 + 55 * H)
    ongoing = Alert(
        1, "counter.stuck", f"meter:{E1}/EL-01", T0 + 49 * H, T0 + 51 * H, last_seen_at=T0 + 56 * H
    )
    assert by_kind(score([stuck], [ongoing], ctx()), "faults", "register.stuck").detected == 1


def test_a_gateway_outage_explains_the_offline_meters_behind_it_as_secondary() -> None:
    outage = truth("gateway.offline", T0 + 10 * H, T0 + 12 * H, meter=None)
    gw = alert(1, "gateway.offline", f"gateway:{E1}", T0 + 10 * H, T0 + 11 * H, T0 + 12 * H)
    meter = alert(2, "meter.offline", f"meter:{E1}/NG-01", T0 + 10 * H, T0 + 11 * H, T0 + 12 * H)
    result = score([outage], [gw, meter], ctx())
    assert by_kind(result, "faults", "gateway.offline").recall == 1.0
    m = by_kind(result, "alert_kinds", "meter.offline")
    assert (m.primary, m.secondary, dict(m.secondary_by)) == (0, 1, {"gateway.offline": 1})


def test_quarantine_kinds_match_the_topic_subject_and_explain_the_missing_readings() -> None:
    topic_meter = f"parkenergy/v1/{E1}/EL-01"
    foreign = f"parkenergy/v1/{E2}/ZZ-09"
    unavailable = truth("register.unavailable", T0 + 5 * H, T0 + 5 * H, topic=topic_meter)
    moved = truth("topic.foreign", T0 + 7 * H, T0 + 8 * H, topic=foreign)
    alerts = [
        alert(1, "quarantine.value", f"meter:{E1}/EL-01", T0 + 5 * H, T0 + 6 * H),
        alert(2, "quarantine.registry", f"topic:{foreign}", T0 + 7 * H, T0 + 8 * H),
        alert(3, "meter.gap", f"meter:{E1}/EL-01", T0 + 7 * H, T0 + 9 * H, T0 + 8 * H),
    ]
    result = score([unavailable, moved], alerts, ctx())
    assert by_kind(result, "faults", "register.unavailable").detected == 1
    assert by_kind(result, "faults", "topic.foreign").detected == 1
    gap = by_kind(result, "alert_kinds", "meter.gap")
    assert gap.precision == 1.0


def test_silent_faults_count_unexplained_alerts_on_them() -> None:
    rollover = truth("register.rollover", T0 + 3 * H, T0 + 3.25 * H)
    zero = truth("register.transient_zero", T0 + 30 * H, T0 + 30 * H)
    reset_on_rollover = alert(1, "counter.reset", f"meter:{E1}/EL-01", T0 + 3 * H, T0 + 4 * H, T0 + 3.25 * H)
    reset_on_zero = alert(2, "counter.reset", f"meter:{E1}/EL-01", T0 + 30 * H, T0 + 31 * H, T0 + 30.25 * H)
    result = score([rollover, zero], [reset_on_rollover, reset_on_zero], ctx())
    silent = by_kind(result, "silent", "register.rollover")
    assert (silent.truth, silent.with_alert) == (1, 1)
    reset = by_kind(result, "alert_kinds", "counter.reset")
    assert (reset.primary, len(reset.false)) == (1, 1)


def test_non_injected_kinds_are_counted_per_1000_meter_days() -> None:
    creep = truth("consumption.baseload_creep", T0, T0 + timedelta(days=20))
    alerts = [
        alert(1, "consumption.anomaly", f"meter:{E1}/EL-01", T0 + 48 * H, T0 + 49 * H, T0 + 50 * H),
        alert(2, "consumption.anomaly", f"meter:{E2}/EL-01", T0 + 48 * H, T0 + 49 * H, T0 + 50 * H),
        alert(3, "quality.completeness", f"enterprise:{E2}", T0, T0 + 24 * H, T0 + 24 * H),
    ]
    result = score([creep], alerts, ctx())
    anomaly = by_kind(result, "non_injected", "consumption.anomaly")
    assert anomaly.alerts == 2 and anomaly.overlapping_truth == 1
    assert anomaly.per_1000_meter_days == pytest.approx(2000 / 120)
    assert by_kind(result, "non_injected", "quality.completeness").overlapping_truth == 0


def test_explain_only_records_explain_alerts_without_counting_for_recall() -> None:
    earlier = truth("consumption.baseload_creep", T0 - timedelta(days=10), T0 + timedelta(days=5))
    found = alert(1, "consumption.baseload_creep", f"meter:{E1}/EL-01", T0, T0 + 24 * H, T0 + 72 * H)
    result = score([], [found], ctx(), explain_only=[earlier])
    assert by_kind(result, "faults", "consumption.baseload_creep").truth == 0
    assert by_kind(result, "alert_kinds", "consumption.baseload_creep").precision == 1.0


def test_faults_starting_near_the_start_or_the_end_are_not_scored_for_recall() -> None:
    start, end = T0, T0 + timedelta(days=60)
    gap = truth("meter.gap", end - timedelta(hours=23), end - timedelta(hours=22))
    old_gap = truth("meter.gap", end - timedelta(hours=25), end - timedelta(hours=24))
    first_day = truth("meter.gap", start + timedelta(hours=23), start + timedelta(hours=24))
    creep = truth("consumption.baseload_creep", end - timedelta(days=13), end + timedelta(days=10))
    early_creep = truth("consumption.baseload_creep", start + timedelta(days=27), start + timedelta(days=40))
    scored_creep = truth("consumption.baseload_creep", start + timedelta(days=28), start + timedelta(days=40))
    scored, edge = split_scored([gap, old_gap, first_day, creep, early_creep, scored_creep], start, end)
    assert scored == [old_gap, scored_creep]
    assert edge == [gap, first_day, creep, early_creep]
