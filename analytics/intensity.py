"""Energy intensity at comparable prices, deflation, and contributions to a group's change.

Pure functions; the database views of migration 0009 apply the same rules (tests
compare them on a small park).

- Intensity = comprehensive energy consumption [tce] / industrial value added at
  comparable (2022) prices [10⁴ yuan] (DOMAIN.md §1).
- Value added at comparable prices = current-price value added / price index
  (2022 = 1); the index is input data, never invented (DOMAIN.md §1). An
  enterprise's own index comes first, then the industry deflator of the longest
  prefix of its GB/T 4754 code (contracts: 3120 → 312 → 31 → 3).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = [
    "Contribution",
    "GroupMember",
    "comparable_value_added",
    "contributions",
    "deflator_for",
    "intensity",
    "price_index",
]


def comparable_value_added(current_10k_yuan: float, price_index_2022: float) -> float:
    """Value added at 2022 prices [10⁴ yuan] = current-price value added / price index (2022 = 1)."""
    if not price_index_2022 > 0:
        raise ValueError("a price index must be positive")
    return current_10k_yuan / price_index_2022


def deflator_for(industry_code: str, year: int, deflators: Mapping[tuple[str, int], float]) -> float | None:
    """The industry deflator of ``year`` for the longest prefix of ``industry_code`` that has one.

    Parameters
    ----------
    industry_code : str
        GB/T 4754 code of the enterprise, e.g. ``3120``.
    year : int
        Calendar year of the value added [a].
    deflators : Mapping[(str, int), float]
        Price index (2022 = 1) by (industry code or prefix, year) [-].

    Returns
    -------
    float or None
        The index of ``3120``, else ``312``, ``31``, ``3``; None when none is known.
    """
    for length in range(len(industry_code), 0, -1):
        found = deflators.get((industry_code[:length], year))
        if found is not None:
            return found
    return None


def price_index(
    own_index: float | None,
    industry_code: str,
    year: int,
    deflators: Mapping[tuple[str, int], float],
    base_year: int = 2022,
) -> float | None:
    """The index that converts one month's value added to base-year prices [-].

    The enterprise's own index, else the industry deflator, else 1 within the base
    year itself, else None (unknown: the month is left out of intensity).
    """
    if own_index is not None:
        return own_index
    found = deflator_for(industry_code, year, deflators)
    if found is not None:
        return found
    return 1.0 if year == base_year else None


def intensity(energy_tce: float, value_added_10k_yuan: float) -> float | None:
    """Energy intensity [tce/10⁴ yuan]; None without value added."""
    if value_added_10k_yuan <= 0:
        return None
    return energy_tce / value_added_10k_yuan


@dataclass(frozen=True, slots=True)
class GroupMember:
    """One enterprise of a group: its energy and value added now and in the base year.

    Parameters
    ----------
    energy_tce, value_added_10k_yuan : float
        The reporting period [tce], [10⁴ yuan at 2022 prices].
    base_energy_tce, base_value_added_10k_yuan : float
        The base year [tce], [10⁴ yuan]; 0 for an enterprise without a base.
    """

    enterprise_code: str
    energy_tce: float
    value_added_10k_yuan: float
    base_energy_tce: float
    base_value_added_10k_yuan: float


@dataclass(frozen=True, slots=True)
class Contribution:
    """An enterprise's part of its group's change against the base.

    ``contribution_to_change`` values of a group add up exactly to the group's
    ``I / I_base - 1``.
    """

    enterprise_code: str
    contribution_intensity: float
    """E_e / V - E0_e / V0 [tce/10⁴ yuan]."""
    contribution_to_change: float
    """(E_e / V - E0_e / V0) / I0 [-]."""


def contributions(members: Sequence[GroupMember]) -> list[Contribution]:
    """Split a group's intensity change among its enterprises.

    With I = ΣE/V and I0 = ΣE0/V0 (V, V0 the group's value added),
    I - I0 = Σ_e (E_e/V - E0_e/V0): each enterprise's energy measured against the
    whole group's value added. The shares add up exactly; an enterprise whose
    value added grows faster than the group's lowers the others' terms through V.
    """
    total_va = sum(m.value_added_10k_yuan for m in members)
    total_base_va = sum(m.base_value_added_10k_yuan for m in members)
    if total_va <= 0 or total_base_va <= 0:
        raise ValueError("the group needs value added in both periods")
    base_intensity = sum(m.base_energy_tce for m in members) / total_base_va
    result = []
    for m in members:
        delta = m.energy_tce / total_va - m.base_energy_tce / total_base_va
        result.append(Contribution(m.enterprise_code, delta, delta / base_intensity))
    return result
