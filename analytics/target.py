"""The 2027 intensity target, the even path to it, and the decline arithmetic.

Pure functions. The rules follow the city's draft policy (DOMAIN.md §1): energy
consumption per unit of industrial value added at comparable prices shall be 10 %
below its 2022 level by 2027. The parameters live in the database table
``accounting.intensity_target`` (migration 0009); :data:`CITY_TARGET_2027` mirrors
its seed row, and a test checks that they agree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "CITY_TARGET_2027",
    "IntensityTarget",
    "Status",
    "decline_from_growth",
    "decline_rate",
    "forecast_status",
    "path_intensity",
    "required_yearly_decline",
    "status_against_path",
    "target_intensity",
]


@dataclass(frozen=True, slots=True)
class IntensityTarget:
    """An intensity target: ``I_target_year <= target_ratio × I_base_year``.

    Parameters
    ----------
    base_year, target_year : int
        Years of the base and of the target [a].
    target_ratio : float
        Target intensity as a share of the base intensity [-].
    min_coverage : float
        Data coverage below which a figure is marked [-] (DOMAIN.md §4: completeness
        of uploads >= 90 %).
    """

    base_year: int
    target_year: int
    target_ratio: float
    min_coverage: float

    def __post_init__(self) -> None:
        if self.target_year <= self.base_year:
            raise ValueError("target_year must come after base_year")
        if not self.target_ratio > 0:
            raise ValueError("target_ratio must be positive")
        if not 0 <= self.min_coverage <= 1:
            raise ValueError("min_coverage must be within [0, 1]")


CITY_TARGET_2027 = IntensityTarget(base_year=2022, target_year=2027, target_ratio=0.90, min_coverage=0.90)
"""Ezhou draft policy: -10 % by 2027 against 2022 (DOMAIN.md §1); coverage rule DOMAIN.md §4."""


class Status(StrEnum):
    """Where a figure stands against the target (docs/accounting.md, "Status rules")."""

    ON_TRACK = "on_track"
    AT_RISK = "at_risk"
    OFF_TRACK = "off_track"


def decline_rate(intensity_report: float, intensity_base: float) -> float:
    """Change of intensity against the base [-]; negative is an improvement.

    DOMAIN.md §1: decline rate = I_report / I_base - 1.
    """
    if intensity_base <= 0:
        raise ValueError("the base intensity must be positive")
    return intensity_report / intensity_base - 1.0


def decline_from_growth(energy_growth: float, real_value_added_growth: float) -> float:
    """Change of intensity from the growth of energy and of real value added [-].

    DOMAIN.md §1: (1 + energy growth) / (1 + real value-added growth) - 1; e.g.
    energy +3 % and real value added +6 % give -2.83 %.
    """
    if real_value_added_growth <= -1:
        raise ValueError("real value added cannot fall by 100 % or more")
    return (1.0 + energy_growth) / (1.0 + real_value_added_growth) - 1.0


def target_intensity(base_intensity: float, target: IntensityTarget = CITY_TARGET_2027) -> float:
    """The intensity to reach in the target year [tce/10⁴ yuan]: ratio × base (0.80 → 0.72)."""
    return target.target_ratio * base_intensity


def path_intensity(base_intensity: float, t_year: float, target: IntensityTarget = CITY_TARGET_2027) -> float:
    """The even path [tce/10⁴ yuan]: I_base × ratio^((t - base_year) / (target_year - base_year)).

    DOMAIN.md §1: the policy fixes only the end point; the even path (a constant
    yearly decline of 2.085 % for -10 % over five years) is a display and
    assessment choice. ``t_year`` may be fractional (a rolling 12 months ending in
    June 2025 is 2024.5).
    """
    span = target.target_year - target.base_year
    return float(base_intensity * target.target_ratio ** ((t_year - target.base_year) / span))


def required_yearly_decline(target: IntensityTarget = CITY_TARGET_2027) -> float:
    """Constant yearly decline that reaches the target exactly [-]: 1 - ratio^(1/span) (2.085 %)."""
    return float(1.0 - target.target_ratio ** (1.0 / (target.target_year - target.base_year)))


def status_against_path(intensity: float, base_intensity: float, path_value: float) -> Status:
    """Status of an observed figure (the rule of ``api.intensity.status``).

    on_track: at or below the even path; at_risk: above the path but not above the
    base; off_track: above the base.
    """
    if intensity <= path_value:
        return Status.ON_TRACK
    if intensity <= base_intensity:
        return Status.AT_RISK
    return Status.OFF_TRACK


def forecast_status(point: float, upper: float, limit: float) -> Status:
    """Status of a forecast intensity against a limit (the path value, in the target year the target).

    on_track: the upper bound of the prediction interval is at or below the limit;
    off_track: the point forecast is above the limit; at_risk otherwise.
    """
    if math.isnan(point) or math.isnan(upper):
        raise ValueError("a forecast needs a point and an upper bound")
    if upper <= limit:
        return Status.ON_TRACK
    if point > limit:
        return Status.OFF_TRACK
    return Status.AT_RISK
