"""Conversion and emission factors as values: what a new or revised factor must say.

Pure; :mod:`analytics.factors_store` writes them to the versioned tables of
migration 0007. Every factor carries its validity, source and confidence
(DOMAIN.md: H = primary text or two agreeing sources, M = one secondary source or
reproducing arithmetic, U = unverified).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from parkdata.carriers import CARRIERS
from parkdata.units import UNITS, Dimension

__all__ = [
    "KJ_PER_KGCE",
    "Co2Factor",
    "Confidence",
    "ElectricityBasis",
    "FactorError",
    "TceFactor",
    "TceOverride",
    "kgce_per_unit_from_lhv",
]

KJ_PER_KGCE = 29_307.6
"""1 kgce = 7000 kcal = 29 307.6 kJ (net calorific value), GB/T 2589-2020."""

_QUANTITY = frozenset({Dimension.ENERGY, Dimension.VOLUME, Dimension.MASS})
REFERENCE_YEARS = range(1990, 2101)
"""Years a published factor may be for (the CHECK of ``accounting.co2_factor.reference_year``)."""


class FactorError(ValueError):
    """A factor, override or setting is invalid or names something unknown."""


class Confidence(StrEnum):
    HIGH = "H"
    MEDIUM = "M"
    UNVERIFIED = "U"


class ElectricityBasis(StrEnum):
    """How electricity converts to standard coal (GB/T 2589-2020; DOMAIN.md §2)."""

    CALORIFIC = "calorific"  # 当量值 0.1229 kgce/kWh, default for enterprise statistics
    EQUIVALENT = "equivalent"  # 等价值, coal for power supply, ≈0.300 kgce/kWh, yearly


def kgce_per_unit_from_lhv(lhv_kj_per_unit: float) -> float:
    """Coefficient [kgce/unit] from a measured net calorific value [kJ/unit]: LHV / 29 307.6.

    GB/T 2589-2020: a measured LHV overrides the default coefficient (e.g. natural
    gas: 35 588 kJ/m³ gives 1.2143 kgce/m³).
    """
    if not (lhv_kj_per_unit > 0 and math.isfinite(lhv_kj_per_unit)):
        raise FactorError(f"a calorific value must be a positive finite number, got {lhv_kj_per_unit:g}")
    return lhv_kj_per_unit / KJ_PER_KGCE


def _check_positive(name: str, value: float) -> None:
    """A coefficient must be a finite number > 0 (an infinite one would poison every sum)."""
    if not (value > 0 and math.isfinite(value)):
        raise FactorError(f"{name} must be a positive finite number, got {value:g}")


def _check_common(factor: TceFactor | Co2Factor | TceOverride) -> None:
    """Checks shared by every factor; makes its unit the canonical symbol."""
    carrier, unit = factor.carrier, factor.unit
    if carrier not in CARRIERS:
        raise FactorError(f"unknown carrier {carrier!r}; one of: {', '.join(CARRIERS)}")
    known = UNITS.get(unit)
    if known is None or known.dimension not in _QUANTITY:
        raise FactorError(f"{unit!r} is not a unit of energy, volume or mass")
    if known.dimension not in CARRIERS[carrier].dimensions:
        raise FactorError(f"carrier {carrier} is not measured in {known.dimension} ({unit})")
    if factor.valid_to is not None and factor.valid_to <= factor.valid_from:
        raise FactorError("valid_to must come after valid_from")
    if not factor.source.strip():
        raise FactorError("a factor needs its source")
    object.__setattr__(factor, "unit", known.symbol)


@dataclass(frozen=True, slots=True)
class TceFactor:
    """A standard-coal coefficient [kgce per ``unit``] valid on [valid_from, valid_to).

    ``basis`` is ``calorific`` or ``equivalent`` for electricity, ``any`` otherwise.
    """

    carrier: str
    unit: str
    kgce_per_unit: float
    valid_from: date
    source: str
    confidence: Confidence
    basis: str = "any"
    valid_to: date | None = None
    note: str | None = None

    def __post_init__(self) -> None:
        _check_common(self)
        _check_positive("kgce_per_unit", self.kgce_per_unit)
        allowed = {b.value for b in ElectricityBasis} if self.carrier == "electricity" else {"any"}
        if self.basis not in allowed:
            raise FactorError(f"basis of {self.carrier} must be one of: {', '.join(sorted(allowed))}")


@dataclass(frozen=True, slots=True)
class Co2Factor:
    """An emission factor [kg CO2 per ``unit``] valid on [valid_from, valid_to).

    ``region`` names the grid for electricity (``hubei``, ``central_china``,
    ``national``, ...), ``any`` for other carriers; ``reference_year`` is the year a
    yearly published factor is for.
    """

    carrier: str
    unit: str
    kgco2_per_unit: float
    valid_from: date
    source: str
    confidence: Confidence
    region: str = "any"
    reference_year: int | None = None
    valid_to: date | None = None
    note: str | None = None

    def __post_init__(self) -> None:
        _check_common(self)
        if not (self.kgco2_per_unit >= 0 and math.isfinite(self.kgco2_per_unit)):
            raise FactorError(
                f"kgco2_per_unit must be a finite number, 0 or more, got {self.kgco2_per_unit:g}"
            )
        if not self.region.strip() or self.region != self.region.strip():
            raise FactorError(f"region must be a name without surrounding spaces, got {self.region!r}")
        if (self.carrier == "electricity") == (self.region == "any"):
            raise FactorError("electricity factors name a grid region; other carriers use region 'any'")
        if self.reference_year is not None and self.reference_year not in REFERENCE_YEARS:
            raise FactorError(
                f"reference_year must be within {REFERENCE_YEARS.start}-{REFERENCE_YEARS.stop - 1},"
                f" got {self.reference_year}"
            )


@dataclass(frozen=True, slots=True)
class TceOverride:
    """A site's own coefficient (e.g. measured gas LHV) for one enterprise, or one of its meters."""

    enterprise_code: str
    carrier: str
    unit: str
    kgce_per_unit: float
    valid_from: date
    source: str
    confidence: Confidence
    meter_code: str | None = None
    valid_to: date | None = None
    note: str | None = None

    def __post_init__(self) -> None:
        _check_common(self)
        _check_positive("kgce_per_unit", self.kgce_per_unit)
