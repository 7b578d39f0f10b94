"""Data-quality detectors: completeness, daily vs monthly, missing value added.

Pure rules on hand-made values (true positive, true negative, the edge of each threshold);
the store on a small hand-built database (day and month rollup rows written straight into
analytics.energy_day / energy_month, as tests/test_accounting_park.py does); and the store
read-only on the shared simulated park, against the api views.

The small park: enterprises Q1, Q2, Q3 (class 3120), one electricity meter each, January
2025 of day rows (1000 kWh and 96 of 96 readings a day) and one month row, except:
  Q1 29 Jan: 90 of 100 readings (exactly 90 %: not below)
  Q2 31 Jan: 80 of 96 readings (83 %: info); month row 10 % above the sum of its days
  Q3 30 Jan: 40 of 96 readings (42 %: warning); month row 4 % above the sum of its days
Value added for January: Q1 and Q3 (Q2's is missing; due by 20 February).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
import pytest

from analytics.detect.intensity_store import detect_intensity
from analytics.detect.quality import (
    COMPLETENESS,
    DAILY_VS_MONTHLY,
    VALUE_ADDED_MISSING,
    DayCompleteness,
    EnterpriseMonths,
    MonthTotals,
    assessed_days,
    completeness_findings,
    daily_vs_monthly_findings,
    value_added_due,
    value_added_missing_findings,
)
from analytics.detect.quality_store import detect_quality
from analytics.findings import Severity
from tests.harness import prepare_database
from tests.simulated_park import SimulatedPark

SHANGHAI = ZoneInfo("Asia/Shanghai")


def _local(y: int, m: int, d: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(y, m, d, hour, minute, tzinfo=SHANGHAI)


# ---- pure: completeness -----------------------------------------------------------------------


def _day(code: str, day: date, readings: int, expected: int = 100) -> DayCompleteness:
    short = ("EL", "NG") if readings < 0.9 * expected else ()
    return DayCompleteness(code, day, readings, expected, meters=3, meters_short=short)


def test_completeness_threshold_severity_and_edge() -> None:
    d = date(2025, 3, 9)
    days = [
        _day("FULL", d, 100),
        _day("EDGE", d, 90),  # exactly 90 %: not below
        _day("INFO", d, 89),
        _day("HALF", d, 50),  # exactly 50 %: info
        _day("WARN", d, 49),
        _day("NONE", d, 0, expected=0),  # nothing due
    ]
    found = {f.subject.removeprefix("enterprise:"): f for f in completeness_findings(days, latest=d)}
    assert {k: v.severity for k, v in found.items()} == {
        "INFO": Severity.INFO,
        "HALF": Severity.INFO,
        "WARN": Severity.WARNING,
    }
    f = found["INFO"]
    assert f.kind == COMPLETENESS and f.ongoing
    assert f.started_at == _local(2025, 3, 9)
    assert f.observed is not None and math.isclose(f.observed, 89.0) and f.unit == "%"
    assert f.expected_low == 90.0
    assert f.evidence["readings"] == 89 and f.evidence["expected_readings"] == 100
    assert f.evidence["meters_short"] == ["EL", "NG"]
    # More readings than due (duplicates at another cadence) count as complete.
    assert completeness_findings([_day("MORE", d, 120)], latest=d) == []


def test_completeness_one_finding_per_day_earlier_days_ended() -> None:
    days = [_day("A", date(2025, 3, 7), 10), _day("A", date(2025, 3, 8), 95), _day("A", date(2025, 3, 9), 10)]
    found = completeness_findings(days, latest=date(2025, 3, 9))
    assert [(f.started_at, f.ended_at) for f in found] == [
        (_local(2025, 3, 7), _local(2025, 3, 8)),
        (_local(2025, 3, 9), None),
    ]


def test_assessed_days_wait_for_the_grace() -> None:
    assert assessed_days(_local(2025, 3, 10, 1, 59), 2) == [date(2025, 3, 7), date(2025, 3, 8)]
    assert assessed_days(_local(2025, 3, 10, 2, 0), 2) == [date(2025, 3, 8), date(2025, 3, 9)]


# ---- pure: daily vs monthly -------------------------------------------------------------------


def _month(code: str, month: date, monthly: float | None, daily: float | None) -> MonthTotals:
    return MonthTotals(code, month, monthly, daily, days=31)


def test_daily_vs_monthly_threshold_and_edge() -> None:
    jan = date(2025, 1, 1)
    months = [
        _month("SAME", jan, 100.0, 100.0),
        _month("EDGE", jan, 100.0, 105.0),  # exactly 5 %: not above
        _month("OVER", jan, 100.0, 105.5),
        _month("UNDER", jan, 100.0, 94.0),
        _month("ZERO", jan, 0.0, 0.0),  # nothing to compare
        _month("NOMONTH", jan, None, 3.0),  # daily figures without a monthly one
    ]
    found = {f.subject.removeprefix("enterprise:"): f for f in daily_vs_monthly_findings(months)}
    assert set(found) == {"OVER", "UNDER", "NOMONTH"}
    f = found["OVER"]
    assert f.kind == DAILY_VS_MONTHLY and f.severity is Severity.WARNING and f.ongoing
    assert f.score is not None and math.isclose(f.score, 0.055)
    assert f.observed == 105.5 and f.expected_low == 95.0 and f.expected_high == 105.0 and f.unit == "tce"
    assert f.started_at == _local(2025, 1, 1)
    assert found["NOMONTH"].score == 1.0


def test_daily_vs_monthly_one_finding_per_enterprise_from_the_earliest_month() -> None:
    months = [
        _month("A", date(2024, 11, 1), 100.0, 100.0),
        _month("A", date(2024, 12, 1), 100.0, 107.0),
        _month("A", date(2025, 1, 1), 100.0, 80.0),
    ]
    (f,) = daily_vs_monthly_findings(months)
    assert f.started_at == _local(2024, 12, 1)
    assert f.score is not None and math.isclose(f.score, 0.2)  # the worst month's figures
    assert [m["month"] for m in f.evidence["months"]] == ["2024-12", "2025-01"]


# ---- pure: value added missing ----------------------------------------------------------------


def test_value_added_missing_after_the_due_date() -> None:
    jan, feb, mar = date(2025, 1, 1), date(2025, 2, 1), date(2025, 3, 1)
    assert value_added_due(jan) == _local(2025, 2, 21)
    e = EnterpriseMonths("A", frozenset({jan, feb, mar}), frozenset({jan}))
    # February's report is due by the end of 20 March.
    assert value_added_missing_findings([e], _local(2025, 3, 20, 23, 59)) == []
    (f,) = value_added_missing_findings([e], _local(2025, 3, 21))
    assert f.kind == VALUE_ADDED_MISSING and f.severity is Severity.WARNING and f.ongoing
    assert f.started_at == _local(2025, 2, 1)
    assert f.evidence["missing_months"] == ["2025-02"] and f.observed == 1.0
    # Both months overdue: still one finding, from the earliest.
    (f,) = value_added_missing_findings([e], _local(2025, 4, 21))
    assert f.started_at == _local(2025, 2, 1) and f.evidence["missing_months"] == ["2025-02", "2025-03"]
    # Reported, or no energy in the month: nothing.
    done = EnterpriseMonths("B", frozenset({jan, feb}), frozenset({jan, feb}))
    idle = EnterpriseMonths("C", frozenset(), frozenset())
    assert value_added_missing_findings([done, idle], _local(2025, 4, 21)) == []


# ---- the store on a small hand-built park -----------------------------------------------------

REGISTRY = (
    "park_code,park_name,enterprise_code,enterprise_name,industry_code,meter_code,carrier,unit,kind,purpose\n"
    + "".join(
        f"P1,Park one,{c},Enterprise {c},3120,EL,electricity,kWh,register,consumption\n"
        for c in ("Q1", "Q2", "Q3")
    )
)
# (enterprise, day of January) → (readings, expected)
SHORT_DAYS = {("Q1", 29): (90, 100), ("Q2", 31): (80, 96), ("Q3", 30): (40, 96)}
MONTH_FACTOR = {"Q1": 1.0, "Q2": 1.10, "Q3": 1.04}


@pytest.fixture
def park(database_url: str, tmp_path: Path) -> Iterator[str]:
    registry = tmp_path / "registry.csv"
    registry.write_text(REGISTRY, encoding="utf-8")
    prepare_database(database_url, registry)
    with psycopg.connect(database_url) as conn:
        ids = dict(
            conn.execute(
                "SELECT e.enterprise_code, m.meter_id FROM registry.meter m JOIN registry.enterprise e"
                " USING (enterprise_id)"
            ).fetchall()
        )
        days, months = [], []
        for code, meter_id in ids.items():
            readings_sum = expected_sum = 0
            for d in range(1, 32):
                readings, expected = SHORT_DAYS.get((code, d), (96, 96))
                readings_sum, expected_sum = readings_sum + readings, expected_sum + expected
                days.append((meter_id, _local(2025, 1, d), 1000.0, expected, readings, readings / expected))
            months.append(
                (
                    meter_id,
                    _local(2025, 1, 1),
                    31_000.0 * MONTH_FACTOR[code],
                    expected_sum,
                    readings_sum,
                    readings_sum / expected_sum,
                )
            )
        with conn.transaction(), conn.cursor() as cur:
            for table, rows in (("energy_day", days), ("energy_month", months)):
                cur.executemany(
                    f"INSERT INTO analytics.{table} (meter_id, bucket, quantity, estimated_quantity,"
                    " flagged_quantity, expected_readings, readings, coverage)"
                    " VALUES (%s, %s, %s, 0, 0, %s, %s, %s)",
                    rows,
                )
            cur.execute(
                "INSERT INTO economics.value_added (enterprise_id, period, value_added_10k_yuan, source_file)"
                " SELECT enterprise_id, date '2025-01-01', 500, 'test' FROM registry.enterprise"
                " WHERE enterprise_code IN ('Q1', 'Q3')"
            )
    yield database_url


def test_store_completeness_and_daily_vs_monthly(park: str) -> None:
    now = _local(2025, 2, 1, 3, 0)
    with psycopg.connect(park) as conn:
        detection = detect_quality(conn, now)
        assert detect_quality(conn, now) == detection
        before_grace = detect_quality(conn, now - timedelta(hours=1, minutes=1))
    assert detection.kinds == (COMPLETENESS, DAILY_VS_MONTHLY, VALUE_ADDED_MISSING)
    completeness = [f for f in detection.findings if f.kind == COMPLETENESS]
    # Q1's 29 January is exactly 90 %: not below. Q2's 31 January is the latest day: ongoing.
    assert [(f.subject, f.started_at, f.ended_at, f.severity) for f in completeness] == [
        ("enterprise:Q2", _local(2025, 1, 31), None, Severity.INFO),
        ("enterprise:Q3", _local(2025, 1, 30), _local(2025, 1, 31), Severity.WARNING),
    ]
    q2 = completeness[0]
    assert q2.evidence["readings"] == 80 and q2.evidence["expected_readings"] == 96
    assert q2.evidence["meters_short"] == ["EL"] and q2.enterprise_id is not None
    # Daily vs monthly: Q2 10 % apart fires, Q3 4 % does not.
    (dvm,) = [f for f in detection.findings if f.kind == DAILY_VS_MONTHLY]
    assert dvm.subject == "enterprise:Q2" and dvm.started_at == _local(2025, 1, 1)
    daily_tce = 31_000 * 0.1229 / 1000
    assert dvm.observed is not None and math.isclose(dvm.observed, daily_tce)
    assert dvm.score is not None and math.isclose(dvm.score, 0.1 / 1.1)
    assert dvm.evidence["months"][0]["days"] == 31
    # January's value added is not due yet.
    assert not [f for f in detection.findings if f.kind == VALUE_ADDED_MISSING]
    # Before 02:00 on 1 February, 31 January is not assessed yet: Q3's 30 January is current.
    assert [(f.subject, f.ended_at) for f in before_grace.findings if f.kind == COMPLETENESS] == [
        ("enterprise:Q3", None)
    ]


def test_store_value_added_missing_once_due(park: str) -> None:
    due = _local(2025, 2, 21)
    with psycopg.connect(park) as conn:
        early = detect_quality(conn, due - timedelta(seconds=1))
        late = detect_quality(conn, due)
    assert not [f for f in early.findings if f.kind == VALUE_ADDED_MISSING]
    (f,) = [f for f in late.findings if f.kind == VALUE_ADDED_MISSING]
    assert f.subject == "enterprise:Q2" and f.started_at == _local(2025, 1, 1)
    assert f.evidence["missing_months"] == ["2025-01"]
    # The January rollups still disagree for Q2 three weeks on; no day of the lookback has data.
    assert {g.subject for g in late.findings if g.kind == DAILY_VS_MONTHLY} == {"enterprise:Q2"}
    assert not [g for g in late.findings if g.kind == COMPLETENESS]


# ---- read-only on the shared simulated park ---------------------------------------------------


def test_simulated_park_quality_against_the_api_views(simulated_park: SimulatedPark) -> None:
    now = simulated_park.run_at
    with psycopg.connect(simulated_park.database_url) as conn:
        started = time.monotonic()
        detection = detect_quality(conn, now)
        quality_s = time.monotonic() - started
        started = time.monotonic()
        intensity = detect_intensity(conn, now)
        intensity_s = time.monotonic() - started
        assert detect_quality(conn, now) == detection
        assert detect_intensity(conn, now) == intensity
        enterprises = {str(c) for (c,) in conn.execute("SELECT enterprise_code FROM api.enterprise")}
        for f in detection.findings:
            assert f.subject.removeprefix("enterprise:") in enterprises
            assert f.started_at < now
            if f.kind != COMPLETENESS:
                continue
            # The completeness is that of the api view's meter days (capped per meter).
            row = conn.execute(
                "SELECT sum(least(readings, expected_readings)), sum(expected_readings)"
                " FROM api.meter_energy_day WHERE enterprise_code = %s AND bucket = %s",
                (f.subject.removeprefix("enterprise:"), f.started_at),
            ).fetchone()
            assert row is not None
            assert (f.evidence["readings"], f.evidence["expected_readings"]) == (row[0], row[1])
            assert row[0] < 0.9 * row[1]
    # The pipeline's day and month rollups agree, and every complete month's value added was
    # imported: neither rule fires on the simulated park.
    assert not [f for f in detection.findings if f.kind in (DAILY_VS_MONTHLY, VALUE_ADDED_MISSING)]
    # Three months of data: every rolling 12 months has coverage <= 25 %, nothing is assessed.
    assert intensity.findings == ()
    assert quality_s < 5.0 and intensity_s < 5.0, (quality_s, intensity_s)
