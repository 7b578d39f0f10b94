"""Energy in tce in three variants, and CO2, from metered quantities and factors.

Pure functions. The view ``accounting.enterprise_energy`` (migration 0009) applies
the same rules in SQL; tests check that both agree.

Accounting rules (GB/T 2589-2020 综合能耗计算通则; DOMAIN.md §1-2):

- tce = quantity × coefficient [kgce per unit] / 1000.
- gross (variant 1): top-level consumption and feedstock meters (a sub-meter is
  already inside its parent), plus electricity generation (on-site PV), minus export
  of any carrier (energy delivered out of the boundary is deducted; exported PV
  counts as zero consumption). Generation of other carriers converts fuel that is
  already counted (on-site working media are not counted twice).
- excl. feedstock (variant 2): gross - feedstock meters (原料用能, 发改环资〔2022〕803号).
- excl. feedstock and non-fossil (variant 3): also - self-consumed PV = electricity
  generation - electricity export, at least 0 (发改环资〔2024〕113号).
- CO2 (location-based, DOMAIN.md §3): top-level consumption and feedstock × factor
  (electricity: the grid factor of the region), minus non-electricity export;
  self-consumed PV emits nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from parkdata.carriers import MeterPurpose

__all__ = [
    "ASSESSED_VARIANT",
    "KGCE_PER_TCE",
    "EnergyVariants",
    "MeterQuantity",
    "Variant",
    "account",
    "co2_t",
    "tce",
]

KGCE_PER_TCE = 1000.0


class Variant(StrEnum):
    """The three assessment variants of DOMAIN.md §1; every figure states its variant."""

    GROSS = "gross"
    EXCL_FEEDSTOCK = "excl_feedstock"
    EXCL_FEEDSTOCK_NONFOSSIL = "excl_feedstock_nonfossil"


ASSESSED_VARIANT: Final = Variant.EXCL_FEEDSTOCK_NONFOSSIL
"""The variant the intensity target is assessed in: without feedstock (发改环资〔2022〕803号) and
non-fossil energy (发改环资〔2024〕113号: 非化石能源不纳入能源消耗总量和强度调控). Headline figures
(report, demo summary, target alerts) use it."""


def tce(quantity: float, kgce_per_unit: float) -> float:
    """Standard coal [tce] of ``quantity`` [unit] at ``kgce_per_unit`` [kgce/unit] (GB/T 2589-2020)."""
    return quantity * kgce_per_unit / KGCE_PER_TCE


def co2_t(quantity: float, kgco2_per_unit: float) -> float:
    """CO2 [t] of ``quantity`` [unit] at ``kgco2_per_unit`` [kg CO2/unit]."""
    return quantity * kgco2_per_unit / 1000.0


@dataclass(frozen=True, slots=True)
class MeterQuantity:
    """One meter's quantity in one bucket, with its factors.

    Parameters
    ----------
    carrier : str
        Registry carrier code.
    purpose : MeterPurpose
        consumption, generation, export or feedstock.
    top_level : bool
        True when the meter has no parent meter.
    quantity : float
        Energy in the meter's unit [unit].
    kgce_per_unit : float
        Standard-coal coefficient valid in the bucket [kgce/unit].
    kgco2_per_unit : float
        Emission factor valid in the bucket [kg CO2/unit].
    """

    carrier: str
    purpose: MeterPurpose
    top_level: bool
    quantity: float
    kgce_per_unit: float
    kgco2_per_unit: float = 0.0


@dataclass(frozen=True, slots=True)
class EnergyVariants:
    """Energy of one enterprise and bucket in the three variants [tce], and its CO2 [t]."""

    gross_tce: float
    feedstock_tce: float
    nonfossil_tce: float
    co2_t: float

    @property
    def excl_feedstock_tce(self) -> float:
        return self.gross_tce - self.feedstock_tce

    @property
    def excl_feedstock_nonfossil_tce(self) -> float:
        return self.gross_tce - self.feedstock_tce - self.nonfossil_tce


def account(meters: Iterable[MeterQuantity]) -> EnergyVariants:
    """Apply the accounting rules of the module docstring to one enterprise's meters."""
    gross = feedstock = nonfossil = co2 = 0.0
    for m in meters:
        energy = tce(m.quantity, m.kgce_per_unit)
        counted = m.purpose in (MeterPurpose.CONSUMPTION, MeterPurpose.FEEDSTOCK) and m.top_level
        electricity = m.carrier == "electricity"
        if counted:
            gross += energy
            co2 += co2_t(m.quantity, m.kgco2_per_unit)
        elif m.purpose is MeterPurpose.GENERATION and electricity:
            gross += energy
        elif m.purpose is MeterPurpose.EXPORT:
            gross -= energy
            if not electricity:
                co2 -= co2_t(m.quantity, m.kgco2_per_unit)
        if m.purpose is MeterPurpose.FEEDSTOCK:
            feedstock += energy
        if electricity and m.purpose is MeterPurpose.GENERATION:
            nonfossil += energy
        elif electricity and m.purpose is MeterPurpose.EXPORT:
            nonfossil -= energy
    return EnergyVariants(gross, feedstock, max(0.0, nonfossil), co2)
