"""End to end: simulated readings → broker → collector → energy job → accounting views, against the
simulator's ground truth (the shared ``simulated_park`` fixture, read-only).

Tolerance of energy: the truth is the energy the meters measured BEFORE faults (docs/simulator.md),
the database holds what arrived. With the default fault rates, lost interval-meter messages,
refused spikes and jumps (flagged, not booked), unavailable registers and gaps at month ends (a gap
is spread in time between its two valid readings, so part of a month's energy lands in the next one)
move up to a few tenths of a percent of an enterprise's energy over three months (0.2 % at most
with this seed); the first month also misses the energy before each meter's first reading. Hence:
each enterprise within :data:`ENTERPRISE_TOLERANCE` over the complete months, the park within
:data:`PARK_TOLERANCE` (faults of different enterprises partly average out). Water is metered but
is not energy in the truth; the accounting leaves it out by default (``working_media = exclude``).
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import date

import psycopg
import pytest
from typer.testing import CliRunner

from analytics.detection import GROUPS
from parkenergy.cli import app
from simulators.economics import Economics
from tests.simulated_park import SimulatedPark

ENTERPRISE_TOLERANCE = 0.01  # relative, see the module docstring
PARK_TOLERANCE = 0.005
# The value-added file states current prices to 0.01 × 10⁴ yuan; deflating divides that rounding by the index.
VALUE_ADDED_ROUNDING = 0.005  # [10⁴ yuan, current prices]


def _complete_months(park: SimulatedPark) -> list[date]:
    """Months wholly inside the simulated window."""
    start, end = park.config.start, park.config.end
    assert end is not None
    months = []
    year, month = start.year, start.month
    while (year, month) < (end.year, end.month):
        months.append(date(year, month, 1))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


@pytest.fixture(scope="module")
def economics(simulated_park: SimulatedPark) -> Economics:
    return simulated_park.simulation().economics()


@pytest.fixture(scope="module")
def codes(simulated_park: SimulatedPark) -> dict[int, str]:
    return {e.index: e.code for e in simulated_park.simulation().park.enterprises}


def _truth_energy(economics: Economics, codes: dict[int, str], months: list[date]) -> dict[str, float]:
    wanted = {(m.year, m.month) for m in months}
    out: dict[str, float] = defaultdict(float)
    for row in economics.months:
        if (row.year, row.month) in wanted:
            out[codes[row.enterprise]] += row.energy_tce_gross
    return out


def _db_energy(url: str, months: list[date]) -> tuple[dict[str, float], float, float]:
    """Gross tce per enterprise and of the city over ``months``, and the lowest enterprise coverage."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT level, enterprise_code, energy_tce_gross, coverage FROM api.energy_tce_month"
            " WHERE level IN ('enterprise', 'city')"
            " AND (bucket AT TIME ZONE 'Asia/Shanghai')::date = ANY(%s)",
            (months,),
        ).fetchall()
    per: dict[str, float] = defaultdict(float)
    city = 0.0
    lowest = 1.0
    for level, code, energy, coverage in rows:
        if level == "city":
            city += energy
        else:
            per[code] += energy
            lowest = min(lowest, coverage)
    return per, city, lowest


def test_the_fixture_is_small_and_complete(simulated_park: SimulatedPark) -> None:
    assert simulated_park.build_s < 60
    assert simulated_park.registry_csv.exists() and simulated_park.truth_intensity_csv.exists()
    assert simulated_park.truth_path.read_text(encoding="utf-8").count("\n") > 0  # faults were injected
    with psycopg.connect(simulated_park.database_url) as conn:
        stored = conn.execute("SELECT count(*) FROM ingest.reading").fetchone()
        jobs = conn.execute("SELECT job, status FROM analytics.job_run ORDER BY run_id").fetchall()
    assert stored == (simulated_park.stored_readings,)
    assert jobs[:2] == [("energy", "ok"), ("forecast", "ok")]
    assert {job for job, _ in jobs[2:]} == set(GROUPS) and {status for _, status in jobs[2:]} == {"ok"}


def test_gross_energy_per_enterprise_and_park_matches_the_truth(
    simulated_park: SimulatedPark, economics: Economics, codes: dict[int, str]
) -> None:
    months = _complete_months(simulated_park)
    assert len(months) >= 3
    truth = _truth_energy(economics, codes, months)
    measured, city, lowest_coverage = _db_energy(simulated_park.database_url, months)
    assert set(measured) == set(truth) == set(codes.values())
    errors = {code: measured[code] / truth[code] - 1 for code in truth}
    assert all(abs(e) < ENTERPRISE_TOLERANCE for e in errors.values()), errors
    assert city == pytest.approx(sum(measured.values()), rel=1e-9)
    assert abs(city / sum(truth.values()) - 1) < PARK_TOLERANCE
    assert lowest_coverage > 0.5  # faults lose readings, but no enterprise went dark


def test_value_added_at_2022_prices_equals_the_truth(
    simulated_park: SimulatedPark, economics: Economics, codes: dict[int, str]
) -> None:
    truth = {(codes[r.enterprise], date(r.year, r.month, 1)): r for r in economics.months}
    with psycopg.connect(simulated_park.database_url) as conn:
        rows = conn.execute(
            "SELECT enterprise_code, period, value_added_10k_yuan_2022 FROM api.value_added"
        ).fetchall()
    stored = {(code, period): va for code, period, va in rows}
    assert set(stored) == set(truth)
    for key, row in truth.items():
        bound = VALUE_ADDED_ROUNDING / row.price_index * 1.000001
        assert stored[key] == pytest.approx(row.value_added_real, abs=bound), key
    months = _complete_months(simulated_park)
    with psycopg.connect(simulated_park.database_url) as conn:
        intensity_va = conn.execute(
            "SELECT enterprise_code, period_start, value_added_10k_yuan FROM api.intensity"
            " WHERE level = 'enterprise' AND period_type = 'month' AND variant = 'gross'"
            " AND period_start = ANY(%s)",
            (months,),
        ).fetchall()
    assert len(intensity_va) == len(codes) * len(months)
    for code, month, value in intensity_va:
        assert value == pytest.approx(stored[(code, month)], rel=1e-12)


@pytest.mark.parametrize("level", ["enterprise", "park", "city"])
def test_cli_intensity_json_agrees_with_the_view(simulated_park: SimulatedPark, level: str) -> None:
    month = _complete_months(simulated_park)[-1].strftime("%Y-%m")
    result = CliRunner().invoke(
        app,
        ["intensity", "--level", level, "--period", month, "--json"],
        env={"DATABASE_URL": simulated_park.database_url},
    )
    assert result.exit_code == 0, result.output
    printed = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    with psycopg.connect(simulated_park.database_url) as conn:
        cur = conn.execute(
            "SELECT park_code, enterprise_code, variant, energy_tce, value_added_10k_yuan, intensity,"
            " base_2022, change_vs_2022, status, coverage FROM api.intensity"
            " WHERE level = %s AND period_type = 'month' AND period = %s",
            (level, month),
        )
        view = {(r[0], r[1], r[2]): r[3:] for r in cur}
    assert printed and len(printed) == len(view)
    for row in printed:
        assert row["level"] == level and row["period"] == month
        energy, va, intensity, base, change, status, coverage = view[
            (row["park_code"], row["enterprise_code"], row["variant"])
        ]
        assert row["energy_tce"] == pytest.approx(energy)
        assert row["value_added_10k_yuan"] == pytest.approx(va)
        assert row["intensity"] == pytest.approx(intensity) and intensity > 0
        assert row["base_2022"] == pytest.approx(base) and base > 0
        assert row["change_vs_2022"] == pytest.approx(change)
        assert row["status"] == status in ("on_track", "at_risk", "off_track")
        assert row["coverage"] == pytest.approx(coverage)
