"""Decline arithmetic, the target and the even path, deflation and contributions (pure)."""

from __future__ import annotations

import math

import pytest

from analytics.intensity import (
    GroupMember,
    comparable_value_added,
    contributions,
    deflator_for,
    intensity,
    price_index,
)
from analytics.target import (
    CITY_TARGET_2027,
    IntensityTarget,
    Status,
    decline_from_growth,
    decline_rate,
    forecast_status,
    path_intensity,
    required_yearly_decline,
    status_against_path,
    target_intensity,
)


def test_worked_example_of_domain_section_1() -> None:
    # Energy +3 % while real value added +6 % → 1.03/1.06 - 1 = -2.83 %.
    assert round(decline_from_growth(0.03, 0.06) * 100, 2) == -2.83
    # The same through intensities: I_2022 = 1.00, I_report = 1.03/1.06.
    assert math.isclose(decline_rate(1.03 / 1.06, 1.0), decline_from_growth(0.03, 0.06))
    # I_2022 = 0.80 → target I_2027 <= 0.72.
    assert math.isclose(target_intensity(0.80), 0.72)


def test_even_path() -> None:
    assert math.isclose(path_intensity(0.80, 2022), 0.80)
    assert math.isclose(path_intensity(0.80, 2027), 0.72)
    # ≥ 2.085 %/yr decline (DOMAIN.md §1).
    assert round(required_yearly_decline() * 100, 3) == 2.085
    for year in range(2023, 2028):
        assert math.isclose(
            path_intensity(1.0, year) / path_intensity(1.0, year - 1), 1 - required_yearly_decline()
        )
    assert math.isclose(path_intensity(1.0, 2024.5), 0.9**0.5)


def test_decline_guards() -> None:
    with pytest.raises(ValueError):
        decline_rate(1.0, 0.0)
    with pytest.raises(ValueError):
        decline_from_growth(0.0, -1.0)
    with pytest.raises(ValueError):
        IntensityTarget(2027, 2022, 0.9, 0.9)


def test_status_rules() -> None:
    base, path = 1.0, 0.95
    assert status_against_path(0.95, base, path) is Status.ON_TRACK
    assert status_against_path(0.96, base, path) is Status.AT_RISK
    assert status_against_path(1.0, base, path) is Status.AT_RISK
    assert status_against_path(1.01, base, path) is Status.OFF_TRACK
    target = target_intensity(base)
    assert forecast_status(point=0.85, upper=0.90, limit=target) is Status.ON_TRACK
    assert forecast_status(point=0.89, upper=0.93, limit=target) is Status.AT_RISK
    assert forecast_status(point=0.91, upper=0.95, limit=target) is Status.OFF_TRACK


def test_deflated_value_added() -> None:
    deflators = {("31", 2025): 1.25, ("3", 2025): 2.0, ("3120", 2024): 1.1}
    # 3120 → 312 → 31: the division's index covers the class.
    assert deflator_for("3120", 2025, deflators) == 1.25
    assert deflator_for("3311", 2025, deflators) == 2.0
    assert deflator_for("3120", 2024, deflators) == 1.1
    assert deflator_for("2710", 2025, deflators) is None
    # Own index first; 2022 itself needs none; otherwise unknown (never invented).
    assert price_index(1.05, "3120", 2025, deflators) == 1.05
    assert price_index(None, "3120", 2025, deflators) == 1.25
    assert price_index(None, "2710", 2022, deflators) == 1.0
    assert price_index(None, "2710", 2025, deflators) is None
    # 1250 at current prices with prices up 25 % since 2022 = 1000 at 2022 prices.
    assert comparable_value_added(1250.0, 1.25) == 1000.0
    with pytest.raises(ValueError):
        comparable_value_added(1.0, 0.0)
    # Nominal growth 10 %, prices +4 %: real growth 5.77 %, not 10 %.
    real = comparable_value_added(110.0, 1.04) / 100.0 - 1
    assert round(real * 100, 2) == 5.77
    assert intensity(80.0, 100.0) == 0.8
    assert intensity(80.0, 0.0) is None


def test_contributions_add_up() -> None:
    members = [
        GroupMember("A", 300.0, 1000.0, 305.0, 1000.0),
        GroupMember("B", 200.0, 700.0, 230.0, 600.0),
        GroupMember("C", 50.0, 100.0, 0.0, 0.0),  # new since the base year
    ]
    parts = contributions(members)
    group = (550.0 / 1800.0) / (535.0 / 1600.0) - 1
    assert math.isclose(sum(p.contribution_to_change for p in parts), group)
    assert math.isclose(sum(p.contribution_intensity for p in parts), 550.0 / 1800.0 - 535.0 / 1600.0)
    assert parts[2].contribution_to_change > 0
    with pytest.raises(ValueError):
        contributions([GroupMember("A", 1.0, 0.0, 1.0, 1.0)])
    assert CITY_TARGET_2027.target_ratio == 0.90
