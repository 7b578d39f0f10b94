"""Counter-fault detectors: pure rules on hand-made series, then one run against PostgreSQL.

Each rule: a true positive, a true negative and the edge of its threshold. Rollovers by the
registered modulus and recorded replacements must stay silent; a stuck register must be told
from a plant that really stops.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest

from analytics.detect.counters import (
    CONFLICT_MIN,
    INTERVAL_SPIKE_RATIO,
    KINDS,
    SPIKE_SCORE,
    STUCK_MIN_READINGS,
    Conflict,
    CounterMeter,
    Reference,
    compute_steps,
    conflict_findings,
    interval_findings,
    ongoing_flat_run,
    reference_movement,
    register_findings,
)
from analytics.detect.counters_store import detect_counters
from analytics.findings import Finding, Severity
from analytics.intervals import MeterSpec, Replacement
from parkdata.migrate import migrate
from tests.harness import load_meter_event_rows, load_registry_rows

Conn = psycopg.Connection[Any]
Floats = np.ndarray[Any, np.dtype[np.float64]]

T0 = datetime(2025, 3, 2, 16, 0, tzinfo=UTC).timestamp()  # 2025-03-03 00:00 +08:00
Q = 900.0  # 15 minutes [s]
CAP = 400.0  # rated capacity [kWh/h]; a regular step is 10 kWh per 15 min


def el(
    rollover: float | None = None,
    replacements: Sequence[Replacement] = (),
    purpose: str = "consumption",
    capacity: float | None = CAP,
    interval_s: int = 900,
) -> CounterMeter:
    return CounterMeter(
        meter_id=1,
        enterprise_code="91420704TEST00001X",
        meter_code="EL-01",
        spec=MeterSpec("register", 1.0, rollover, interval_s, capacity),
        unit="kWh",
        purpose=purpose,
        replacements=tuple(replacements),
    )


def series(values: Sequence[float], start: float = T0, step: float = Q) -> tuple[Floats, Floats]:
    return start + step * np.arange(len(values), dtype=np.float64), np.array(values, dtype=np.float64)


def rising(n: int, first: float = 100_000.0, per_step: float = 10.0) -> list[float]:
    return [first + per_step * i for i in range(n)]


def run(meter: CounterMeter, t: Floats, v: Floats, reference: Reference | None = None) -> list[Finding]:
    now = float(t[-1])
    return register_findings(meter, t, v, now, now - 26 * 3600, reference=reference)


def at(i: int) -> datetime:
    return datetime.fromtimestamp(T0 + i * Q, tz=UTC)


def kinds(findings: Sequence[Finding]) -> list[str]:
    return [f.kind for f in findings]


# --- counter.reset -------------------------------------------------------------------------


def test_clean_register_has_no_findings() -> None:
    assert run(el(), *series(rising(96))) == []


@pytest.mark.parametrize("zeros", [1, 3])
def test_transient_zero_is_a_reset_with_its_readings(zeros: int) -> None:
    values = rising(40)
    for i in range(20, 20 + zeros):
        values[i] = 0.0
    found = run(el(), *series(values))
    assert kinds(found) == ["counter.reset"]
    f = found[0]
    assert f.severity is Severity.WARNING
    assert f.subject == "meter:91420704TEST00001X/EL-01"
    assert (f.started_at, f.ended_at) == (at(20), at(20 + zeros - 1))
    assert f.evidence["rule"] == "transient_drop"
    assert f.evidence["value_before"] == values[19] and f.evidence["low_value"] == 0.0
    assert f.evidence["value_after"] == values[20 + zeros]
    assert len(f.evidence["readings"]) == zeros


def test_near_zero_edge_of_a_transient_drop() -> None:
    values = rising(40)
    level = values[19]
    values[20] = 0.01 * level  # NEAR_ZERO_SHARE of the level: a transient zero
    assert kinds(run(el(), *series(values))) == ["counter.reset"]
    values[20] = level - 50.0  # a small dip (clock jitter size) is neither reset nor spike
    assert run(el(), *series(values)) == []


def test_rollover_by_the_modulus_is_silent_and_without_it_is_a_reset() -> None:
    values = [(99_700.0 + 10 * i) % 100_000 for i in range(60)]
    t, v = series(values)
    assert run(el(rollover=100_000.0), t, v) == []
    found = run(el(rollover=None), t, v)
    assert kinds(found) == ["counter.reset"]
    assert found[0].evidence["rule"] == "reset" and found[0].started_at == at(30)


def test_recorded_replacement_is_silent_and_unrecorded_is_a_reset() -> None:
    values = rising(30) + [2.0 + 10 * i for i in range(30)]
    t, v = series(values)
    replaced = Replacement(effective_s=T0 + 29.5 * Q, final_register=100_295.0, initial_register=0.0)
    assert run(el(replacements=[replaced]), t, v) == []
    found = run(el(), t, v)
    assert kinds(found) == ["counter.reset"] and found[0].started_at == at(30)
    assert found[0].evidence["replacement_recorded"] is False


def test_unexplained_persisting_drop_is_a_break() -> None:
    values = rising(30) + [50_000.0 + 10 * i for i in range(30)]
    found = run(el(), *series(values))
    assert kinds(found) == ["counter.reset"]
    assert found[0].evidence["rule"] == "break"
    assert found[0].observed == 50_000.0 and found[0].expected_low == values[29]


def test_episode_decided_before_the_report_window_is_not_reported() -> None:
    values = rising(200)
    values[20] = 0.0
    t, v = series(values)
    now = float(t[-1])
    assert register_findings(el(), t, v, now, now - 26 * 3600) == []  # decided 44 h ago
    assert len(register_findings(el(), t, v, now, now - 46 * 3600)) == 1


# --- counter.stuck -------------------------------------------------------------------------


def stuck_values(repeats: int, before: int = 40, after: int = 20) -> list[float]:
    values = rising(before + repeats + after)
    held = values[before - 1]
    for i in range(before, before + repeats):
        values[i] = held
    return values


def test_stuck_register_with_catch_up() -> None:
    found = run(el(), *series(stuck_values(16)))
    assert kinds(found) == ["counter.stuck"]
    f = found[0]
    assert (f.started_at, f.ended_at) == (at(40), at(55))  # the first and last repeat
    assert f.evidence["rule"] == "catch_up" and f.evidence["readings"] == 16
    assert f.observed == pytest.approx(170.0)  # 17 steps of 10 kWh in one
    assert f.expected_low == pytest.approx(170.0)


def test_stuck_threshold_edge() -> None:
    # 8 repeats of 15 min = 2 h: long enough; 7 repeats (1 h 45) is not.
    assert kinds(run(el(), *series(stuck_values(8)))) == ["counter.stuck"]
    assert run(el(), *series(stuck_values(7))) == []
    hourly = el(interval_s=3600)
    values = stuck_values(STUCK_MIN_READINGS)
    assert kinds(run(hourly, *series(values, step=3600.0))) == ["counter.stuck"]
    values = stuck_values(STUCK_MIN_READINGS - 1)
    assert run(hourly, *series(values, step=3600.0)) == []


def test_real_stop_without_catch_up_is_not_stuck() -> None:
    # Works 08-18, idle (register flat) at night, then resumes at the usual rate.
    values: list[float] = []
    level = 100_000.0
    for day in range(2):
        for k in range(96):
            working = 32 <= k < 72
            level += 10.0 if working else 0.0
            values.append(level)
        del day
    t, v = series(values)
    assert run(el(), t, v) == []
    steps = compute_steps(el(), t, v)
    flat = ongoing_flat_run(el(), t, v, steps)
    assert flat is not None  # the data end in the night's flat run …
    reference = reference_movement(t, v, flat)
    assert reference.days == 1 and reference.moving == 0  # … which is normal at those hours
    assert run(el(), t, v, reference) == []


def test_ongoing_stuck_at_hours_the_meter_always_moves() -> None:
    values = stuck_values(12, before=40, after=0)
    t, v = series(values)
    steps = compute_steps(el(), t, v)
    flat = ongoing_flat_run(el(), t, v, steps)
    assert flat is not None and flat.readings == 13
    moving = Reference(days=7, moving=7, low=110.0, high=130.0)
    found = run(el(), t, v, moving)
    assert kinds(found) == ["counter.stuck"]
    assert found[0].ongoing and found[0].started_at == at(40)
    assert found[0].evidence["rule"] == "ongoing_at_moving_hours"
    # One idle reference day, too few days, or a PV meter (weather): not reported.
    assert run(el(), t, v, Reference(days=7, moving=6, low=0.0, high=130.0)) == []
    assert run(el(), t, v, Reference(days=1, moving=1, low=110.0, high=110.0)) == []
    assert run(el(purpose="generation"), t, v, moving) == []


def test_run_that_began_before_the_window_keeps_its_start() -> None:
    values = stuck_values(30)  # repeats at 40..69, catch-up at 70
    t, v = series(values)
    t, v = t[45:], v[45:]  # the window begins inside the run
    now = float(t[-1])
    assert register_findings(el(), t, v, now, now - 26 * 3600) == []  # its start is unknown
    origin = (T0 + 39 * Q, T0 + 40 * Q)  # from the database: first reading and first repeat
    found = register_findings(el(), t, v, now, now - 26 * 3600, flat_origin=origin)
    assert kinds(found) == ["counter.stuck"]
    assert (found[0].started_at, found[0].ended_at) == (at(40), at(69))


def test_catch_up_after_a_gap_is_not_evidence() -> None:
    values = stuck_values(16)
    t, v = series(values)
    keep = np.ones(len(t), dtype=bool)
    keep[56:60] = False  # no readings for an hour after the run
    assert run(el(), t[keep], v[keep]) == []


def steam_catch_up(catch_up_t: float) -> tuple[CounterMeter, Floats, Floats]:
    """An hourly steam register rated 1.2 t/h, 1 t/h before and after a run stuck at
    11:00–21:00 whose catch-up at 22:00 is ``catch_up_t``: more than the rated capacity over
    the run when the load was high while the register stood still."""
    meter = CounterMeter(
        4, "91420704TEST00003X", "ST-01", MeterSpec("register", 1.0, 1_000_000.0, 3600, 1.2), "t"
    )
    values = [11_000.0 + i for i in range(36)]  # hour 35 = 11:00 of the second day
    values += [values[-1]] * 10  # 12:00–21:00 repeat the 11:00 value
    values += [values[-1] + catch_up_t + i for i in range(30)]  # 22:00 onwards
    t, v = series(values, start=T0 - 8 * 3600 + 3600, step=3600.0)
    return meter, t, v


def test_catch_up_of_a_stuck_run_is_not_also_a_spike() -> None:
    meter, t, v = steam_catch_up(13.965)  # 1.06 × 1.2 t/h × the 11 h since 11:00
    catch_at = float(t[46])
    moving = Reference(days=7, moving=7, low=10.0, high=12.0)
    stuck_starts = set()
    for end in range(44, len(t)):  # hourly runs over a two-day window, as the store reads it
        keep = (t > t[end] - 2 * 86400) & (t <= t[end])
        now = float(t[end])
        found = register_findings(meter, t[keep], v[keep], now, now - 26 * 3600, reference=moving)
        assert "counter.spike" not in kinds(found), end
        if end < 46:  # ongoing: the earlier runs report it while it lasts …
            assert kinds(found) == ["counter.stuck"] and found[0].ongoing
        elif now - catch_at < 26 * 3600:  # … the later ones with its catch-up, once each
            assert kinds(found) == ["counter.stuck"] and found[0].evidence["catch_up_at"] == at_s(catch_at)
        else:
            assert found == []
        stuck_starts.update(f.started_at for f in found)
    assert len(stuck_starts) == 1  # one episode, one alert
    # A spike at the end of a stuck run is still a spike: the edge is SPIKE_SCORE × the
    # rated capacity over the run.
    edge = SPIKE_SCORE * 1.2 * 11
    meter, t, v = steam_catch_up(edge)
    assert kinds(run(meter, t[:60], v[:60])) == ["counter.spike", "counter.stuck"]
    meter, t, v = steam_catch_up(edge - 0.01)
    assert kinds(run(meter, t[:60], v[:60])) == ["counter.stuck"]


def at_s(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, tz=UTC).isoformat()


# --- counter.spike -------------------------------------------------------------------------


def test_register_spike_that_returns() -> None:
    values = rising(40)
    values[20] += 5 * 24 * CAP  # 5 days of rated capacity, as the simulator injects
    found = run(el(), *series(values))
    assert kinds(found) == ["counter.spike"]
    f = found[0]
    assert (f.started_at, f.ended_at) == (at(20), at(20))
    assert f.severity is Severity.WARNING and f.evidence["booked"] is False
    assert f.expected_low == values[19] and f.expected_high == pytest.approx(values[19] + CAP / 4)
    assert f.score is not None and f.score > 100


def test_register_spike_score_edge() -> None:
    values = rising(40)
    values[20] = values[19] + SPIKE_SCORE * CAP  # 3 h of rated capacity over the 1 h floor
    assert kinds(run(el(), *series(values))) == ["counter.spike"]
    values[20] = values[19] + SPIKE_SCORE * CAP - 1.0
    assert run(el(), *series(values)) == []


def test_persisting_jump_beyond_capacity_is_a_spike() -> None:
    values = rising(30) + [200_000.0 + 10 * i for i in range(30)]
    found = run(el(), *series(values))
    assert kinds(found) == ["counter.spike"]
    assert found[0].evidence["rule"] == "persisting_jump" and found[0].started_at == at(30)


def interval_meter(capacity: float | None = 100.0) -> CounterMeter:
    return CounterMeter(
        2, "91420704TEST00001X", "COAL", MeterSpec("interval", 1.0, None, 3600, capacity), "t"
    )


def test_interval_spike_by_neighbours_is_critical_when_booked() -> None:
    values = [10.0] * 48
    values[30] = 50.0  # ×5, under the capacity of 100 t/h: booked as energy
    t, v = series(values, step=3600.0)
    found = interval_findings(interval_meter(), t, v, float(t[-1]), float(t[-1]) - 26 * 3600)
    assert kinds(found) == ["counter.spike"]
    assert found[0].severity is Severity.CRITICAL and found[0].evidence["booked"] is True
    assert found[0].score == pytest.approx(5.0)
    values[30] = 150.0  # above capacity: refused by the arithmetic, warning
    t, v = series(values, step=3600.0)
    found = interval_findings(interval_meter(), t, v, float(t[-1]), float(t[-1]) - 26 * 3600)
    assert found[0].severity is Severity.WARNING and found[0].evidence["rule"] == "refused"


def test_interval_spike_edge_and_level_change() -> None:
    def found(values: list[float]) -> list[Finding]:
        t, v = series(values, step=3600.0)
        return interval_findings(interval_meter(), t, v, float(t[-1]), float(t[-1]) - 26 * 3600)

    values = [10.0] * 48
    values[30] = 10.0 * INTERVAL_SPIKE_RATIO
    assert len(found(values)) == 1
    values[30] = 10.0 * INTERVAL_SPIKE_RATIO - 0.1
    assert found(values) == []
    assert found([10.0] * 24 + [40.0] * 24) == []  # a start-up, not a spike
    assert found([10.0] * 47 + [50.0]) == []  # the last reading: not known to return yet


def daily_diesel() -> CounterMeter:
    return CounterMeter(
        3, "91420703TEST00002X", "DSL-01", MeterSpec("interval", 1.0, None, 86400, 0.0136), "t"
    )


def national_day_2026(spike_on: str | None = None) -> tuple[Floats, Floats]:
    """Daily readings (stamped at the local midnight ending their day) 2026-09-21 … 10-02:
    0.097 t on working days, 0.022 t on Saturdays, Sundays and the National Day holidays
    (from 10-01), the reading of 09-29 missing (quarantined)."""
    t: list[float] = []
    v: list[float] = []
    for k in range(12):
        day = datetime(2026, 9, 21, tzinfo=UTC) + timedelta(days=k)
        if day.day == 29:
            continue
        working = day.month == 9 and day.weekday() < 5
        t.append(day.timestamp() + 16 * 3600)  # next local midnight (+08:00)
        v.append(0.097 if working else 0.022)
        if spike_on == day.date().isoformat():
            v[-1] *= 5.0  # the simulator's smallest interval spike
    return np.array(t), np.array(v)


def test_daily_working_day_between_holidays_is_not_a_spike() -> None:
    t, v = national_day_2026()
    now = float(t[-1])
    assert v[t.tolist().index(datetime(2026, 9, 30, 16, tzinfo=UTC).timestamp())] == 0.097
    # 4.4 × the holidays after it and the weekend before it, but like the working days.
    assert interval_findings(daily_diesel(), t, v, now, now - 50 * 3600) == []
    # A true spike on that day, and one on a holiday, are still found.
    for day, neighbours in (("2026-09-30", "working"), ("2026-10-01", "non_working")):
        t, v = national_day_2026(spike_on=day)
        found = interval_findings(daily_diesel(), t, v, now, now - 50 * 3600)
        assert kinds(found) == ["counter.spike"], day
        assert found[0].evidence["neighbour_days"] == neighbours
        assert found[0].score == pytest.approx(5.0)


# --- counter.conflict ----------------------------------------------------------------------


def test_conflicts_per_meter_and_local_day() -> None:
    meter = el()
    meters = {1: meter}
    day = T0  # local midnight
    two = [Conflict(1, day + 3600, 5.0, 4.0), Conflict(1, day + 7200, 6.0, 5.0)]
    found = conflict_findings(meters, two, day + 10 * 3600)
    assert len(found) == CONFLICT_MIN - 1 and found[0].kind == "counter.conflict"
    assert found[0].ongoing and found[0].observed == 2.0 and found[0].unit == "readings"
    assert found[0].started_at == datetime.fromtimestamp(day + 3600, tz=UTC)
    over = conflict_findings(meters, two, day + 86400)
    assert over[0].ended_at == datetime.fromtimestamp(day + 7200, tz=UTC)
    assert conflict_findings(meters, two[:1], day + 10 * 3600) == []
    split = [Conflict(1, day - 60, 5.0, 4.0), Conflict(1, day + 60, 6.0, 5.0)]  # two local days
    assert conflict_findings(meters, split, day + 3600) == []
    assert conflict_findings({}, two, day + 10 * 3600) == []  # not a counter


# --- the store -----------------------------------------------------------------------------

ENTERPRISE = "91420704TEST00001X"
MIDNIGHT = datetime(2025, 3, 2, 16, 0, tzinfo=UTC)  # 2025-03-03 00:00 +08:00


def registry_row(
    code: str, kind: str = "register", rollover: str = "", interval: str = "900", unit: str = "kWh"
) -> list[str]:
    return [
        "ECQ",
        "鄂城区",
        ENTERPRISE,
        "测试企业",
        "3120",
        "true",
        code,
        "electricity",
        unit,
        kind,
        "consumption",
        "1",
        rollover,
        interval,
        "400",
        "",
    ]


@pytest.fixture
def conn(database_url: str) -> Iterator[Conn]:
    with psycopg.connect(database_url, autocommit=True) as c:
        migrate(c)
        yield c


def insert(
    conn: Conn, meter_id: int, values: Sequence[float], step: timedelta = timedelta(minutes=15)
) -> None:
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO ingest.reading (meter_id, ts, value) VALUES (%s, %s, %s)",
            [(meter_id, MIDNIGHT + i * step, v) for i, v in enumerate(values)],
        )


def test_detect_counters_on_a_tiny_registry(conn: Conn, tmp_path: Path) -> None:
    ids = load_registry_rows(
        conn,
        tmp_path / "registry.csv",
        [
            registry_row("EL-01"),
            registry_row("EL-RO", rollover="100000"),
            registry_row("EL-RP"),
            registry_row("GAUGE", kind="gauge", unit="kW"),
        ],
    )
    replaced_at = MIDNIGHT + timedelta(minutes=15 * 49.5)
    load_meter_event_rows(
        conn,
        tmp_path / "events.csv",
        [[ENTERPRISE, "EL-RP", "replacement", replaced_at.isoformat(), "100495", "0", "", "new meter"]],
    )
    n = 96
    faulty = rising(n)
    faulty[10] = 0.0  # transient zero
    faulty[30] += 5 * 24 * CAP  # spike
    held = faulty[59]
    for i in range(60, 76):  # stuck 4 h, then the true value
        faulty[i] = held
    insert(conn, ids["EL-01"], faulty)
    insert(conn, ids["EL-RO"], [(99_700.0 + 10 * i) % 100_000 for i in range(n)])
    insert(conn, ids["EL-RP"], rising(50) + [5.0 + 10 * i for i in range(n - 50)])
    insert(conn, ids["GAUGE"], [0.0, 500.0, 0.0, 0.0, 0.0, 0.0])
    with conn.cursor() as cur:  # conflicting values: two on one local day
        cur.executemany(
            "INSERT INTO ingest.reading_conflict (meter_id, ts, value, topic) VALUES (%s, %s, %s, 't')",
            [(ids["EL-RO"], MIDNIGHT + timedelta(minutes=15 * i), 1.0) for i in (3, 4)],
        )
    now = MIDNIGHT + timedelta(hours=23, minutes=45)
    detection = detect_counters(conn, now)
    assert detection.detector == "counters" and detection.kinds == KINDS
    got = {(f.kind, f.subject.rsplit("/", 1)[1], f.started_at, f.ended_at) for f in detection.findings}
    assert got == {
        ("counter.reset", "EL-01", at(10), at(10)),
        ("counter.spike", "EL-01", at(30), at(30)),
        ("counter.stuck", "EL-01", at(60), at(75)),
        ("counter.conflict", "EL-RO", at(3), None),
    }
    assert detection.subjects is not None and f"meter:{ENTERPRISE}/GAUGE" not in detection.subjects
    assert {f.meter_id for f in detection.findings} == {ids["EL-01"], ids["EL-RO"]}
    # Idempotent: the same now gives the same findings.
    assert detect_counters(conn, now).findings == detection.findings
    # Replay: at an earlier now the later readings do not exist; the stuck run is ongoing
    # (no reference days here, so not reported yet) and the spike is not decided before it returns.
    early = detect_counters(conn, MIDNIGHT + timedelta(minutes=15 * 30))
    assert {(f.kind, f.started_at) for f in early.findings} == {
        ("counter.reset", at(10)),
        ("counter.conflict", at(3)),
    }
    later = detect_counters(conn, MIDNIGHT + timedelta(minutes=15 * 31))
    assert ("counter.spike", at(30)) in {(f.kind, f.started_at) for f in later.findings}


def test_store_finds_the_start_of_a_run_longer_than_the_window(conn: Conn, tmp_path: Path) -> None:
    ids = load_registry_rows(conn, tmp_path / "registry.csv", [registry_row("EL-01")])
    values = rising(96 * 4)
    held = values[95]
    for i in range(96, 96 + 60 * 4):  # 60 h on one value, then the true value
        values[i] = held
    insert(conn, ids["EL-01"], values)
    now = MIDNIGHT + timedelta(minutes=15 * (96 + 60 * 4 + 8))
    found = [f for f in detect_counters(conn, now).findings if f.kind == "counter.stuck"]
    assert len(found) == 1
    assert found[0].started_at == at(96) and found[0].ended_at == at(96 + 60 * 4 - 1)
    assert found[0].evidence["rule"] == "catch_up"


def test_store_ongoing_stuck_uses_previous_days(conn: Conn, tmp_path: Path) -> None:
    ids = load_registry_rows(conn, tmp_path / "registry.csv", [registry_row("EL-01")])
    days = 4
    values = rising(96 * days)
    held = values[-25]
    for i in range(96 * days - 24, 96 * days):  # the last 6 h repeat one value
        values[i] = held
    insert(conn, ids["EL-01"], values)
    now = MIDNIGHT + timedelta(minutes=15 * (96 * days - 1))
    found = [f for f in detect_counters(conn, now).findings if f.kind == "counter.stuck"]
    assert len(found) == 1 and found[0].ongoing
    assert found[0].started_at == MIDNIGHT + timedelta(minutes=15 * (96 * days - 24))
    assert found[0].evidence["reference_days"] == days - 1
