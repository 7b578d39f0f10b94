"""Standard-coal coefficients the simulator uses to size enterprises and to write its ground truth.

GB/T 2589-2020 (综合能耗计算通则), as tabulated in DOMAIN.md §2; electricity at
the calorific equivalent (当量值). Water is a resource, not an energy carrier of
the statistics office's energy balance (form 205-1), so it has no coefficient here.
"""

from __future__ import annotations

TCE_PER_UNIT: dict[str, float] = {
    "electricity": 0.1229e-3,  # tce/kWh, 当量值 (H)
    "natural_gas": 1.2143e-3,  # tce/m³, gas-field gas (H)
    "steam": 0.1286,  # tce/t, low-pressure steam reference (H)
    "raw_coal": 0.7143,  # tce/t (H)
    "washed_coal": 0.9000,  # tce/t (H)
    "coke": 0.9714,  # tce/t (H)
    "diesel": 1.4571,  # tce/t (H)
    "coke_oven_gas": 0.5929e-3,  # tce/m³, middle of 0.5714-0.6143 (M)
}
"""Tonnes of standard coal per unit of the carrier's meter unit."""


def tce(carrier: str, quantity: float) -> float:
    """``quantity`` of ``carrier`` (in its meter unit) in tce; 0 for carriers that are not energy."""
    return quantity * TCE_PER_UNIT.get(carrier, 0.0)
