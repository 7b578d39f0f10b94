"""Consumption detectors: the pure rules on synthetic series, then one run against PostgreSQL.

Synthetic loads follow the simulated park's shapes (docs/simulator.md): a one-shift plant
(08:00–17:00 on working days, idle at 25 % of the peak otherwise), slot noise of 3 %,
public holidays and 调休 from the ``holidays`` CN calendar.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest

from analytics.detect.consumption import (
    ANOMALY,
    CREEP,
    LOCAL,
    AnomalyRules,
    MeterRef,
    baseload_creep,
    day_classes,
    hourly_anomalies,
    night_levels,
)
from analytics.detect.consumption_store import detect_consumption
from analytics.findings import Severity
from analytics.jobs import run_job
from parkdata.migrate import migrate
from tests.harness import load_registry_rows
from tests.simulated_park import SimulatedPark

FloatArray = np.ndarray[Any, np.dtype[np.float64]]
METER = MeterRef(7, "EL-01", 3, "91420704TEST00001X", 1, "electricity", "kWh")
RULES = AnomalyRules()
SLOT_HOURS = np.arange(96) // 4
NIGHT = np.isin(SLOT_HOURS, (0, 1, 2, 3, 4, 5, 22, 23))


def shift_slots(
    first: date, days: int, seed: int = 1, idle_kwh: float = 10.0, peak_kwh: float = 40.0
) -> FloatArray:
    """15-minute energy [kWh] of a one-shift plant, shape (days, 96): idle all day, shift on working days."""
    rng = np.random.default_rng(seed)
    classes = day_classes(first, days)
    shift = (SLOT_HOURS >= 8) & (SLOT_HOURS < 17)
    out = np.empty((days, 96))
    for d in range(days):
        activity = 1.0 + rng.normal(0.0, 0.03)
        load = idle_kwh + (peak_kwh - idle_kwh) * activity * shift * (classes[d] == 0)
        out[d] = load * (1.0 + np.clip(rng.normal(0.0, 0.03, 96), -0.06, 0.06))
    return out


def hourly_of(slots: FloatArray) -> FloatArray:
    return np.asarray(slots.reshape(-1, 4).sum(axis=1), dtype=np.float64)


def anomalies(day: date, slots: FloatArray, hours_done: int = 24) -> list[Any]:
    hourly = hourly_of(slots)
    assert hourly.shape == ((RULES.reference_days + 1) * 24,)
    return hourly_anomalies(METER, day, hourly, hours_done=hours_done)


def window(day: date) -> tuple[date, int]:
    """First day and length of the anomaly rule's input for ``day``."""
    return day - timedelta(days=RULES.reference_days), RULES.reference_days + 1


# --- consumption.anomaly -------------------------------------------------------------------


def test_sustained_deviation_found_with_stable_start() -> None:
    day = date(2025, 6, 11)  # a Wednesday, working day
    first, days = window(day)
    slots = shift_slots(first, days)
    slots[-1, 10 * 4 : 16 * 4] *= 1.6  # 10:00-16:00, +60 %
    found = anomalies(day, slots)
    assert len(found) == 1
    f = found[0]
    assert f.kind == ANOMALY and f.subject == "meter:91420704TEST00001X/EL-01"
    assert f.started_at == datetime(2025, 6, 11, 10, tzinfo=LOCAL)
    assert f.ended_at == datetime(2025, 6, 11, 16, tzinfo=LOCAL)
    assert f.observed is not None and f.expected_low is not None and f.expected_high is not None
    assert f.expected_low < f.evidence["expected"] < f.expected_high < f.observed
    assert f.score is not None and f.score > RULES.z
    assert f.evidence["deviation"] == pytest.approx(0.6, abs=0.05)
    assert f.severity is Severity.CRITICAL  # +60 % far beyond 10 sd
    # Scored while it lasts: the same start, still ongoing.
    ongoing = anomalies(day, slots, hours_done=14)
    assert [(g.started_at, g.ended_at) for g in ongoing] == [(f.started_at, None)]


def test_low_deviation_and_warning() -> None:
    day = date(2025, 6, 11)
    first, days = window(day)
    slots = shift_slots(first, days)
    slots[-1, 9 * 4 : 15 * 4] *= 0.75  # shift at 75 %: above the idle level, not a stop
    found = anomalies(day, slots)
    assert len(found) == 1
    assert found[0].severity is Severity.WARNING and found[0].evidence["deviation"] < -0.15
    assert found[0].score is not None and found[0].score < -RULES.z


def test_normal_days_with_holidays_give_nothing() -> None:
    # Around National Day (2025-10-01..08) and the Mid-Autumn Festival; 调休 Saturdays
    # (2025-09-28, 2025-10-11) are working days, the plant works them.
    for day in (
        date(2025, 9, 28),
        date(2025, 10, 1),
        date(2025, 10, 3),
        date(2025, 10, 9),
        date(2025, 10, 11),
    ):
        first, days = window(day)
        assert anomalies(day, shift_slots(first, days, seed=day.toordinal())) == [], day


def test_spring_festival_shutdown_is_not_an_anomaly() -> None:
    # 2026 Spring Festival 2026-02-17: the plant stops from the 15th to the 24th at 45 % of its idle load.
    day = date(2026, 2, 16)
    first, days = window(day)
    slots = shift_slots(first, days)
    slots[-1] = 0.45 * 10.0
    assert anomalies(day, slots) == []
    day = date(2026, 2, 25)  # back at work after the stop: the reference holds the stop days
    first, days = window(day)
    slots = shift_slots(first, days)
    slots[-11:-1] = 0.45 * 10.0
    assert anomalies(day, slots) == []


def test_edge_of_the_thresholds() -> None:
    day = date(2025, 6, 11)
    first, days = window(day)
    base = shift_slots(first, days)
    three_hours = base.copy()
    three_hours[-1, 10 * 4 : 13 * 4] *= 1.6
    assert anomalies(day, three_hours) == []  # 3 h < min_hours
    four_hours = base.copy()
    four_hours[-1, 10 * 4 : 14 * 4] *= 1.6
    assert len(anomalies(day, four_hours)) == 1
    # Deviation just below and above min_deviation (15 %), both far beyond z at night.
    night_low = base.copy()
    night_low[-1, 0 : 6 * 4] *= 1.12
    assert anomalies(day, night_low) == []
    night_high = base.copy()
    night_high[-1, 0 : 6 * 4] *= 1.20
    found = anomalies(day, night_high)
    assert len(found) == 1 and found[0].started_at == datetime(2025, 6, 11, tzinfo=LOCAL)
    assert hourly_anomalies(METER, day, hourly_of(night_high), hours_done=24, skip_night=True) == []


def test_missing_hours_are_not_zeros() -> None:
    day = date(2025, 6, 11)
    first, days = window(day)
    hourly = hourly_of(shift_slots(first, days))
    hourly[-24 + 9 : -24 + 17] = np.nan  # a gap during the shift: missing, not low
    hourly[100:300] = np.nan
    assert hourly_anomalies(METER, day, hourly, hours_done=24) == []


# --- consumption.baseload_creep -----------------------------------------------------------

CREEP_FIRST = date(2025, 3, 1)
CREEP_DAYS = 70


def with_creep(
    slots: FloatArray, start: int, days: int, amplitude: float, end: int | None = None
) -> FloatArray:
    """Add a night ramp of ``amplitude`` × the idle load (10 kWh per slot) over ``days`` days."""
    out = slots.copy()
    for d in range(start, end if end is not None else out.shape[0]):
        out[d, NIGHT] += 10.0 * amplitude * min(1.0, (d - start + 1) / days)
    return out


def creep_of(slots: FloatArray, first: date = CREEP_FIRST) -> Any:
    night, shoulder = night_levels(slots)
    return baseload_creep(METER, first, night, shoulder)


def test_creep_of_40_percent_over_three_weeks_found() -> None:
    slots = with_creep(shift_slots(CREEP_FIRST, CREEP_DAYS), start=49, days=21, amplitude=0.4)
    found = creep_of(slots)
    assert found is not None and found.kind == CREEP and found.severity is Severity.WARNING
    assert found.ended_at is None
    start_day = CREEP_FIRST + timedelta(days=49)
    assert abs((found.started_at.date() - start_day).days) <= 2
    assert found.evidence["rise"] == pytest.approx(0.4, abs=0.08)
    assert found.evidence["reference_baseload"] == pytest.approx(10.0 * 0.96, rel=0.05)
    assert found.evidence["slope_per_day"] > 0


def test_noise_and_small_rise_not_a_creep() -> None:
    assert creep_of(shift_slots(CREEP_FIRST, CREEP_DAYS, seed=5)) is None
    noisy = shift_slots(CREEP_FIRST, CREEP_DAYS, seed=6)
    noisy[:, NIGHT] *= 1.0 + np.random.default_rng(6).normal(0.0, 0.05, (CREEP_DAYS, 1))
    assert creep_of(noisy) is None
    small = with_creep(shift_slots(CREEP_FIRST, CREEP_DAYS, seed=7), start=49, days=21, amplitude=0.05)
    assert creep_of(small) is None


def test_creep_edge_of_rise() -> None:
    base = shift_slots(CREEP_FIRST, CREEP_DAYS, seed=8)
    assert creep_of(with_creep(base, start=49, days=21, amplitude=0.07)) is None  # +7 % < 10 %
    assert creep_of(with_creep(base, start=49, days=21, amplitude=0.14)) is not None


def test_season_step_is_not_a_creep() -> None:
    # Cooling raises night and shoulder alike from a month on (+15 %, then +10 % more).
    slots = shift_slots(CREEP_FIRST, CREEP_DAYS, seed=9)
    slots[31:] *= 1.15
    slots[61:] *= 1.10
    assert creep_of(slots) is None


def test_ended_creep_keeps_its_start() -> None:
    base = shift_slots(CREEP_FIRST - timedelta(days=5), CREEP_DAYS + 5, seed=10)
    slots = with_creep(base, start=35, days=28, amplitude=0.5, end=35 + 28)
    found = [creep_of(slots[k : k + CREEP_DAYS], CREEP_FIRST - timedelta(days=5 - k)) for k in range(6)]
    assert all(f is not None for f in found)
    assert len({f.started_at for f in found}) == 1
    assert all(f.ended_at == datetime(2025, 3, 1, tzinfo=LOCAL) + timedelta(days=30 + 28) for f in found)


def test_ended_creep_reports_the_known_episode_and_is_dropped_later() -> None:
    base = shift_slots(CREEP_FIRST, CREEP_DAYS + 20, seed=12)
    slots = with_creep(base, start=35, days=25, amplitude=0.5, end=35 + 25)
    night, shoulder = night_levels(slots)
    fitted = baseload_creep(METER, CREEP_FIRST, night[:CREEP_DAYS], shoulder[:CREEP_DAYS])
    assert fitted is not None and fitted.ended_at is not None
    known = fitted.started_at - timedelta(days=3)  # the start an earlier run reported
    again = baseload_creep(
        METER, CREEP_FIRST, night[:CREEP_DAYS], shoulder[:CREEP_DAYS], known_starts=[known]
    )
    assert again is not None and again.started_at == known and again.ended_at == fitted.ended_at
    far = known - timedelta(days=20)  # another episode: not this one
    other = baseload_creep(METER, CREEP_FIRST, night[:CREEP_DAYS], shoulder[:CREEP_DAYS], known_starts=[far])
    assert other is not None and other.started_at == fitted.started_at
    # More than ended_days after its end, the window no longer reports it.
    later = CREEP_FIRST + timedelta(days=20)
    assert baseload_creep(METER, later, night[20:], shoulder[20:]) is None


def test_creep_soon_after_an_earlier_one_is_found() -> None:
    # An earlier creep (+60 % in 25 days) drops back on day 35; the next starts 10 days
    # later. The reference weeks hold the earlier episode: the days before the drop have
    # a level of their own, the clean days after it are the reference.
    base = shift_slots(CREEP_FIRST, CREEP_DAYS, seed=13)
    slots = with_creep(base, start=10, days=25, amplitude=0.6, end=35)
    slots = with_creep(slots, start=45, days=21, amplitude=0.5)
    found = creep_of(slots)
    assert found is not None and found.ended_at is None
    assert abs((found.started_at.date() - (CREEP_FIRST + timedelta(days=45))).days) <= 2
    assert found.evidence["reference_from"] == (CREEP_FIRST + timedelta(days=35)).isoformat()
    # The earlier episode's level alone (a drop, then flat) is not a creep.
    assert creep_of(with_creep(base, start=10, days=25, amplitude=0.6, end=35)) is None
    # Edge: 5 days between the episodes are fewer than clean_days (7), no reference.
    close = with_creep(base, start=15, days=25, amplitude=0.6, end=40)
    assert creep_of(with_creep(close, start=45, days=21, amplitude=0.5)) is None


def test_creep_right_after_national_day_is_found() -> None:
    # 2026: an earlier creep ends on 09-21, National Day (10-01..10-07) stops the plant at
    # 45 % of its idle load, and a creep starts on 10-08, the first working day after it.
    first = date(2026, 8, 20)
    base = shift_slots(first, CREEP_DAYS, seed=14)
    classes = day_classes(first, CREEP_DAYS)
    base[classes == 3] *= 0.45
    slots = with_creep(base, start=5, days=28, amplitude=0.5, end=32)
    start = (date(2026, 10, 8) - first).days
    slots = with_creep(slots, start=start, days=30, amplitude=0.45)
    found = creep_of(slots, first)
    assert found is not None and found.ended_at is None
    assert abs((found.started_at.date() - date(2026, 10, 8)).days) <= 3


# --- the store against PostgreSQL ----------------------------------------------------------

ENTERPRISE = "91420704TEST00001X"
CONN = psycopg.Connection[Any]


@pytest.fixture
def conn(database_url: str) -> Iterator[CONN]:
    with psycopg.connect(database_url, autocommit=True) as c:
        migrate(c)
        yield c


def registry_row(
    code: str, carrier: str = "electricity", unit: str = "kWh", interval: str = "900"
) -> list[str]:
    return [
        "ECQ",
        "鄂城区",
        ENTERPRISE,
        "测试企业",
        "3491",
        "false",
        code,
        carrier,
        unit,
        "register",
        "consumption",
        "1",
        "",
        interval,
        "400",
        "",
    ]


def test_store_finds_creep_and_anomaly_idempotently(conn: CONN, tmp_path: Path) -> None:
    ids = load_registry_rows(conn, tmp_path / "registry.csv", [registry_row("EL-01")])
    days = CREEP_DAYS
    first = date(2025, 4, 1)
    slots = with_creep(shift_slots(first, days, seed=11), start=days - 21, days=21, amplitude=0.4)
    slots[-1, 9 * 4 : 15 * 4] *= 1.8  # the last day: the shift draws 80 % more from 09:00 to 15:00
    start = datetime(first.year, first.month, first.day, tzinfo=LOCAL)
    # Registers read at the start of each interval: value at slot k = energy before it.
    register = np.concatenate([[1000.0], 1000.0 + np.cumsum(slots.ravel())])
    rows = [
        (ids["EL-01"], start + timedelta(minutes=15 * i), round(float(v), 2)) for i, v in enumerate(register)
    ]
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO ingest.reading (meter_id, ts, value) VALUES (%s, %s, %s)", rows)
    now = start + timedelta(days=days, minutes=30)  # 00:30 on the next day
    assert run_job(conn, "energy", now).status == "ok"
    detection = detect_consumption(conn, now)
    assert detection.kinds == (ANOMALY, CREEP)
    assert set(detection.subjects or ()) == {f"meter:{ENTERPRISE}/EL-01"}
    kinds = sorted(f.kind for f in detection.findings)
    assert kinds == [ANOMALY, CREEP], detection.findings
    creep = next(f for f in detection.findings if f.kind == CREEP)
    assert creep.ended_at is None and creep.meter_id == ids["EL-01"] and creep.enterprise_id is not None
    assert abs((creep.started_at.date() - (first + timedelta(days=days - 21))).days) <= 2
    anomaly = next(f for f in detection.findings if f.kind == ANOMALY)
    last_day = first + timedelta(days=days - 1)
    assert anomaly.started_at == datetime(last_day.year, last_day.month, last_day.day, 9, tzinfo=LOCAL)
    assert anomaly.ended_at is not None
    again = detect_consumption(conn, now)
    assert again.findings == detection.findings
    # Event time only: an earlier now sees neither the anomaly nor the last days.
    earlier = detect_consumption(conn, now - timedelta(days=1, hours=16))
    assert all(f.started_at < now - timedelta(days=1, hours=16) for f in earlier.findings)
    assert ANOMALY not in {f.kind for f in earlier.findings}


def test_store_without_meters(conn: CONN) -> None:
    detection = detect_consumption(conn, datetime(2025, 6, 1, tzinfo=UTC))
    assert detection.findings == () and detection.subjects == ()


def test_simulated_park_has_few_anomalies(simulated_park: SimulatedPark) -> None:
    """A normal simulated park with default faults: few anomalies, each run well under a second."""
    with psycopg.connect(simulated_park.database_url, autocommit=True) as c:
        c.execute("SET default_transaction_read_only = on")
        meters = len(detect_consumption(c, simulated_park.run_at).subjects or ())
        first = simulated_park.config.start + timedelta(days=AnomalyRules().reference_days + 1)
        runs = [simulated_park.run_at - timedelta(days=k) for k in range(0, 60, 2)]
        runs = [r for r in runs if r >= first]
        anomalies: set[tuple[str, datetime]] = set()
        slowest_s = 0.0
        for now in runs:
            started = time.monotonic()
            detection = detect_consumption(c, now)
            slowest_s = max(slowest_s, time.monotonic() - started)
            anomalies |= {(f.subject, f.started_at) for f in detection.findings if f.kind == ANOMALY}
    meter_months = meters * 2 * len(runs) / 30.0  # each run scores two days
    assert meters > 0 and runs
    assert len(anomalies) <= max(1.0, meter_months), sorted(anomalies)
    assert slowest_s < 2.0
