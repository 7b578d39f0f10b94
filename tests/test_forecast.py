"""The statsmodels forecast to 2027: intervals, status rule, and the stored job run."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import psycopg
import pytest

from analytics.economics_file import read_baseline_file, read_value_added_file
from analytics.economics_store import store_baseline, store_value_added
from analytics.forecast import run
from analytics.forecast_model import MIN_MONTHS, forecast_series
from analytics.jobs import Job, register, run_job
from analytics.target import Status
from parkdata.migrate import migrate
from parkdata.registry_file import read_registry_file
from parkdata.registry_store import store_registry

SHANGHAI = ZoneInfo("Asia/Shanghai")
MONTHS = [date(2022 + i // 12, i % 12 + 1, 1) for i in range(36)]  # 2022-01 .. 2024-12


def _series(
    energy_growth: float, va_growth: float, seed: int, months: list[date] = MONTHS
) -> list[tuple[date, float, float]]:
    """Monthly energy and value added with yearly growth rates, seasonality and 2 % noise."""
    rng = np.random.default_rng(seed)
    rows = []
    for i, month in enumerate(months):
        season = 1 + 0.1 * math.sin(2 * math.pi * (month.month - 1) / 12)
        energy = 100 * (1 + energy_growth) ** (i / 12) * season * math.exp(rng.normal(0, 0.02))
        va = 50 * (1 + va_growth) ** (i / 12) * math.exp(rng.normal(0, 0.02))
        rows.append((month, energy, va))
    return rows


def _true_intensity(year: int, energy_growth: float, va_growth: float) -> float:
    """Noise-free Σ energy / Σ value added of a calendar year of the generating process."""
    energy = va = 0.0
    for m in range(12):
        i = (year - 2022) * 12 + m
        energy += 100 * (1 + energy_growth) ** (i / 12) * (1 + 0.1 * math.sin(2 * math.pi * m / 12))
        va += 50 * (1 + va_growth) ** (i / 12)
    return energy / va


def test_forecast_intervals_cover_the_truth_and_status_follows_the_rule() -> None:
    observed = _series(-0.03, 0.05, seed=1)
    base = _true_intensity(2022, -0.03, 0.05)
    result = forecast_series(observed, base_intensity=base)
    assert result.months_used == 36
    assert [m.month for m in result.months] == [date(2025 + i // 12, i % 12 + 1, 1) for i in range(36)]
    for m in result.months:
        assert m.energy_tce_lower < m.energy_tce < m.energy_tce_upper
        assert m.value_added_10k_yuan_lower < m.value_added_10k_yuan < m.value_added_10k_yuan_upper
    assert [y.year for y in result.years] == [2025, 2026, 2027]
    for y in result.years:
        truth = _true_intensity(y.year, -0.03, 0.05)
        assert y.intensity_lower < truth < y.intensity_upper, (y.year, truth, y)
        assert y.intensity_lower < y.intensity < y.intensity_upper
        assert y.path_value is not None
        assert math.isclose(y.path_value, base * 0.9 ** ((y.year - 2022) / 5))
    final = result.years[-1]
    # Intensity falls ≈ 7.6 %/yr: far below the target, with the whole interval.
    assert final.intensity_upper < 0.9 * base
    assert final.status is Status.ON_TRACK

    rising = forecast_series(_series(0.05, 0.0, seed=2), base_intensity=_true_intensity(2022, 0.05, 0.0))
    assert rising.years[-1].status is Status.OFF_TRACK

    # A decline close to the target: point below, upper bound above → at risk.
    flat = _series(0.0, 0.0, seed=3)
    final_flat = forecast_series(flat, base_intensity=None).years[-1]
    assert final_flat.status is None
    limit_base = (final_flat.intensity + final_flat.intensity_upper) / 2 / 0.9
    at_risk = forecast_series(flat, base_intensity=limit_base)
    assert at_risk.years[-1].intensity < 0.9 * limit_base < at_risk.years[-1].intensity_upper
    assert at_risk.years[-1].status is Status.AT_RISK


def test_forecast_is_reproducible_and_refuses_short_series() -> None:
    observed = _series(0.0, 0.02, seed=4)
    assert forecast_series(observed, base_intensity=1.0) == forecast_series(observed, base_intensity=1.0)
    with pytest.raises(ValueError, match="months of data"):
        forecast_series(observed[: MIN_MONTHS - 1], base_intensity=1.0)
    with pytest.raises(ValueError, match="positive"):
        forecast_series([(m, 0.0, v) for m, _, v in observed], base_intensity=1.0)


def test_a_calendar_month_missing_from_every_year_still_fits() -> None:
    # Every April unusable (e.g. a yearly maintenance stop with low coverage): the April
    # dummy would be all zero and the design rank-deficient (statsmodels warns; warnings are
    # errors here). The forecast still covers every month, April included.
    observed = [row for row in _series(-0.03, 0.05, seed=5) if row[0].month != 4]
    result = forecast_series(observed, base_intensity=_true_intensity(2022, -0.03, 0.05))
    assert result.months_used == 33
    aprils = [m for m in result.months if m.month.month == 4]
    assert len(aprils) == 3
    for m in aprils:
        assert 0 < m.energy_tce_lower < m.energy_tce < m.energy_tce_upper
    assert result.years[-1].status is Status.ON_TRACK


REGISTRY = """park_code,park_name,enterprise_code,enterprise_name,industry_code,meter_code,carrier,unit,kind
P,Park,A,Alpha,3120,EL,electricity,kWh,register
"""


@pytest.fixture
def history(database_url: str, tmp_path: Path) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """36 months of energy and value added of one enterprise, and its 2022 baseline."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        migrate(conn)
        registry = tmp_path / "registry.csv"
        registry.write_text(REGISTRY, encoding="utf-8")
        store_registry(conn, read_registry_file(registry))
        observed = _series(-0.03, 0.04, seed=5)
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO analytics.energy_month (meter_id, bucket, quantity, estimated_quantity,"
                " flagged_quantity, readings, expected_readings, coverage) VALUES (1, %s, %s, 0, 0, 1, 1, 1)",
                [(datetime(m.year, m.month, 1, tzinfo=SHANGHAI), e * 1000 / 0.1229) for m, e, _ in observed],
            )
        va = tmp_path / "va.csv"
        va.write_text(
            "enterprise_code,period,value_added_10k_yuan,price_index_2022\n"
            + "".join(f"A,{m:%Y-%m},{v!r},1\n" for m, _, v in observed),
            encoding="utf-8",
        )
        store_value_added(conn, read_value_added_file(va))
        energy_2022 = sum(e for m, e, _ in observed if m.year == 2022)
        va_2022 = sum(v for m, _, v in observed if m.year == 2022)
        base = tmp_path / "base.csv"
        base.write_text(
            "enterprise_code,year,carrier,unit,consumption,value_added_10k_yuan\n"
            f"A,2022,electricity,kWh,{energy_2022 * 1000 / 0.1229!r},{va_2022!r}\n",
            encoding="utf-8",
        )
        store_baseline(conn, read_baseline_file(base))
        yield conn


def test_job_stores_a_run_read_through_the_api(history: psycopg.Connection[tuple[object, ...]]) -> None:
    now = datetime(2025, 1, 15, tzinfo=UTC)
    summary = run(history, now)
    assert summary.startswith("forecast run 1: 9 series forecast, 0 skipped; city 2027 gross: ")
    rows = history.execute(
        "SELECT level, variant, year, status, run_at,"
        " intensity_lower < intensity AND intensity < intensity_upper,"
        " base_2022, target_2027 FROM api.intensity_forecast ORDER BY level, variant, year"
    ).fetchall()
    assert len(rows) == 3 * 3 * 3  # city, park, enterprise × variants × 2025-2027
    assert {r[0] for r in rows} == {"city", "park", "enterprise"}
    assert {r[2] for r in rows} == {2025, 2026, 2027}
    assert all(r[4] == now and r[5] for r in rows)
    for r in rows:
        assert r[6] is not None and r[7] is not None
        assert math.isclose(float(str(r[7])), 0.9 * float(str(r[6])))
    # Energy -3 %/yr and value added +4 %/yr: about -6.7 %/yr, well ahead of the path.
    assert {r[3] for r in rows if r[2] == 2027} == {"on_track"}
    months = history.execute(
        "SELECT count(*), min(month), max(month) FROM api.energy_forecast_month WHERE level = 'city'"
        " AND variant = 'gross'"
    ).fetchone()
    assert months == (36, date(2025, 1, 1), date(2027, 12, 1))

    # Through the job registry, as `parkenergy analyze run forecast` runs it.
    job = register(Job("forecast", "analytics.forecast:run", 3600.0, "intensity forecast to 2027"))
    outcome = run_job(history, job.name, datetime(2025, 1, 16, tzinfo=UTC))
    assert (outcome.status, outcome.summary[:15]) == ("ok", "forecast run 2:")
    assert history.execute("SELECT count(*) FROM api.intensity_forecast").fetchone() == (27,)
    assert history.execute("SELECT count(*) FROM accounting.forecast_run").fetchone() == (2,)
