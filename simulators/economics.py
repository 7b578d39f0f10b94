"""Economic statistics of the simulated enterprises, and the intensity they imply. Pure.

From the day tables (the energy the meters really measure):

- monthly value added at current prices = real value added × the industry's
  price index (2022 = 1.0); real value added follows production, and its 2022
  total is set so that the enterprise's 2022 gross intensity is the one its
  model drew (DOMAIN.md §6 ranges);
- monthly product output, so that 2022 energy per unit of product is the
  model's (e.g. ≈550 kgce per tonne of crude steel, CISA 2024);
- 2022 baseline statistics per enterprise and carrier (form 205-1 style);
- the truth: energy in tce (three variants, DOMAIN.md §1) and value added at
  2022 prices per enterprise and year.

Accounting follows GB/T 2589-2020 as DOMAIN.md §2 states it: consumption
inside the boundary, self-consumed PV included (and non-fossil, 发改环资〔2024〕113号),
exported PV not included, feedstock (原料用能) counted in gross and removed
in variant 2 (发改环资〔2022〕803号); electricity at 当量 0.1229 kgce/kWh. Water
is not energy.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from parkdata.carriers import MeterPurpose
from simulators.coefficients import TCE_PER_UNIT
from simulators.daytable import YearTable
from simulators.park import Park
from simulators.rng import Stream, rng

FloatArray = NDArray[np.float64]

PRICE_INDEX_2022: dict[str, tuple[float, ...]] = {
    # GB/T 4754 division: ex-factory price index per year from 2022 (2022 = 1.0), following the
    # direction of the national PPI by industry 2023-2025 (U); the last value holds afterwards.
    "13": (1.0, 1.01, 0.99, 0.99, 1.00),
    "15": (1.0, 1.01, 1.02, 1.02, 1.03),
    "17": (1.0, 0.98, 0.97, 0.97, 0.97),
    "27": (1.0, 1.00, 0.99, 0.99, 0.99),
    "30": (1.0, 0.93, 0.88, 0.86, 0.86),
    "31": (1.0, 0.91, 0.85, 0.82, 0.83),
    "33": (1.0, 0.99, 0.985, 0.98, 0.98),
    "34": (1.0, 0.99, 0.985, 0.98, 0.98),
    "35": (1.0, 0.99, 0.985, 0.98, 0.98),
    "37": (1.0, 0.99, 0.985, 0.98, 0.98),
    "38": (1.0, 0.96, 0.92, 0.90, 0.90),
    "39": (1.0, 0.98, 0.96, 0.95, 0.94),
    "43": (1.0, 1.00, 1.00, 1.00, 1.00),
}


def price_index(industry_code: str, year: int) -> float:
    """Price index of ``industry_code``'s division in ``year`` (2022 = 1.0)."""
    series = PRICE_INDEX_2022[industry_code[:2]]
    return series[min(max(year - 2022, 0), len(series) - 1)]


@dataclass(frozen=True, slots=True)
class MonthRow:
    """One enterprise and month (``period`` = ``YYYY-MM``)."""

    enterprise: int
    year: int
    month: int
    energy_tce_gross: float
    energy_tce_feedstock: float
    energy_tce_non_fossil: float
    value_added_real: float  # [10⁴ yuan, 2022 prices]
    value_added_current: float  # [10⁴ yuan]
    price_index: float
    product_quantity: float

    @property
    def period(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


@dataclass(frozen=True, slots=True)
class BaselineRow:
    enterprise: int
    carrier: str
    unit: str
    consumption: float  # in the meter unit
    feedstock: float
    non_fossil: float


@dataclass(frozen=True, slots=True)
class Economics:
    months: tuple[MonthRow, ...]
    baseline: tuple[BaselineRow, ...]
    baseline_value_added: dict[int, float]


@dataclass(slots=True)
class _YearSums:
    """Per enterprise and month: consumption per carrier, feedstock, PV own use, production."""

    consumption: dict[str, FloatArray]  # carrier -> (enterprises, 12) [meter unit]
    feedstock: dict[str, FloatArray]
    pv_own: FloatArray  # (enterprises, 12) [kWh]
    output: FloatArray  # (enterprises, 12)
    months_complete: int


def _year_sums(park: Park, table: YearTable, last_day: int) -> _YearSums:
    """Monthly sums of ``table`` up to (excluding) ``last_day``."""
    n = len(park.enterprises)
    month = table.calendar.month - 1
    upto = max(0, min(table.days, last_day - table.day0))
    consumption: dict[str, FloatArray] = {}
    feedstock: dict[str, FloatArray] = {}
    for m in park.meters:
        if m.carrier not in TCE_PER_UNIT or m.purpose in (MeterPurpose.GENERATION, MeterPurpose.EXPORT):
            continue
        monthly = np.bincount(month[:upto], weights=table.energy[m.index, :upto], minlength=12)
        consumption.setdefault(m.carrier, np.zeros((n, 12)))[m.enterprise_index] += monthly
        if m.purpose is MeterPurpose.FEEDSTOCK:
            feedstock.setdefault(m.carrier, np.zeros((n, 12)))[m.enterprise_index] += monthly
    pv_own = np.zeros((n, 12))
    for row, e in enumerate(table.pv.enterprises):
        pv_own[int(e)] = np.bincount(month[:upto], weights=table.pv.own_kwh[row, :upto], minlength=12)
    if np.any(pv_own):
        consumption.setdefault("electricity", np.zeros((n, 12)))
        consumption["electricity"] += pv_own
    output = np.zeros((n, 12))
    for e in range(n):
        output[e] = np.bincount(month[:upto], weights=table.output[e, :upto], minlength=12)
    complete = int(np.searchsorted(np.cumsum(np.bincount(month, minlength=12)), upto, side="right"))
    return _YearSums(consumption, feedstock, pv_own, output, complete)


def _tce(sums: dict[str, FloatArray], shape: tuple[int, int]) -> FloatArray:
    total = np.zeros(shape)
    for carrier, quantity in sums.items():
        total += quantity * TCE_PER_UNIT[carrier]
    return total


def build_economics(park: Park, tables: Iterable[YearTable], last_day: int) -> Economics:
    """Monthly statistics for the complete months before ``last_day`` (day number).

    ``tables`` yields the year tables from 2022 on, in order, up to the year of
    ``last_day`` (2022 is needed whole for the calibration even when ``last_day``
    falls in it); each is summed as it comes, so only one is held at a time.
    """
    n = len(park.enterprises)
    sums: list[tuple[int, _YearSums]] = []
    base: _YearSums | None = None
    first_end = 0
    for table in tables:
        if base is None:
            base = _year_sums(park, table, table.day0 + table.days)
            first_end = table.day0 + table.days
        sums.append((table.calendar.year, _year_sums(park, table, last_day)))
    if base is None:
        raise ValueError("no year tables")
    gross_2022 = _tce(base.consumption, (n, 12)).sum(axis=1)
    noise = 1 + np.clip(rng(park.seed, Stream.ECONOMICS).normal(0, 0.03, (n, 12 * 20)), -0.08, 0.08)
    output_2022 = base.output.sum(axis=1)
    va_2022 = np.array([gross_2022[e.index] / e.intensity_2022 for e in park.enterprises])
    weighted_2022 = (base.output * noise[:, :12]).sum(axis=1)
    va_per_output = va_2022 / np.where(weighted_2022 > 0, weighted_2022, 1.0)
    product_per_output = np.array(
        [
            gross_2022[e.index] * 1000 / e.energy_per_product_kgce / max(output_2022[e.index], 1e-9)
            for e in park.enterprises
        ]
    )
    months: list[MonthRow] = []
    for y, (year, s) in enumerate(sums):
        gross = _tce(s.consumption, (n, 12))
        feed = _tce(s.feedstock, (n, 12))
        own = s.pv_own * TCE_PER_UNIT["electricity"]
        for e in park.enterprises:
            index = price_index(e.industry_code, year)
            for mo in range(s.months_complete):
                real = float(va_per_output[e.index] * s.output[e.index, mo] * noise[e.index, y * 12 + mo])
                months.append(
                    MonthRow(
                        enterprise=e.index,
                        year=year,
                        month=mo + 1,
                        energy_tce_gross=float(gross[e.index, mo]),
                        energy_tce_feedstock=float(feed[e.index, mo]),
                        energy_tce_non_fossil=float(own[e.index, mo]),
                        value_added_real=real,
                        value_added_current=real * index,
                        price_index=index,
                        product_quantity=float(product_per_output[e.index] * s.output[e.index, mo]),
                    )
                )
    baseline: list[BaselineRow] = []
    for e in park.enterprises:
        for carrier in sorted(base.consumption):
            quantity = float(base.consumption[carrier][e.index].sum())
            if quantity <= 0:
                continue
            feed_quantity = float(base.feedstock.get(carrier, np.zeros((n, 12)))[e.index].sum())
            own_kwh = float(base.pv_own[e.index].sum()) if carrier == "electricity" else 0.0
            baseline.append(BaselineRow(e.index, carrier, _unit(carrier), quantity, feed_quantity, own_kwh))
    va_2022_rows = {
        e.index: float(
            sum(r.value_added_current for r in months if r.enterprise == e.index and r.year == 2022)
        )
        for e in park.enterprises
    }
    if first_end > last_day:  # 2022 not complete yet: the calibrated total
        va_2022_rows = {e.index: float(va_2022[e.index]) for e in park.enterprises}
    return Economics(tuple(months), tuple(baseline), va_2022_rows)


def _unit(carrier: str) -> str:
    return {"electricity": "kWh", "natural_gas": "m3", "coke_oven_gas": "m3"}.get(carrier, "t")


BASELINE_UNITS: dict[str, tuple[str, float]] = {
    # As the statistics office reports: 10⁴ kWh is not a registry unit, MWh is; gas in 10⁴ m³.
    "electricity": ("MWh", 1e-3),
    "natural_gas": ("10^4 m3", 1e-4),
    "coke_oven_gas": ("10^4 m3", 1e-4),
}
"""Unit of each carrier in the baseline file and the factor from the meter unit."""


@dataclass(frozen=True, slots=True)
class TruthIntensity:
    enterprise: int
    year: int
    months: int
    energy_tce_gross: float
    energy_tce_excl_feedstock: float
    energy_tce_excl_feedstock_nonfossil: float
    value_added_10k_yuan_2022_prices: float


def truth_intensity(economics: Economics) -> list[TruthIntensity]:
    """Per enterprise and year (complete months only): energy in three variants and real value added."""
    acc: dict[tuple[int, int], list[float]] = {}
    for r in economics.months:
        row = acc.setdefault((r.enterprise, r.year), [0, 0.0, 0.0, 0.0, 0.0])
        row[0] += 1
        row[1] += r.energy_tce_gross
        row[2] += r.energy_tce_gross - r.energy_tce_feedstock
        row[3] += r.energy_tce_gross - r.energy_tce_feedstock - r.energy_tce_non_fossil
        row[4] += r.value_added_real
    return [TruthIntensity(e, y, int(v[0]), v[1], v[2], v[3], v[4]) for (e, y), v in sorted(acc.items())]


def park_intensity_by_year(economics: Economics) -> dict[int, float]:
    """Gross intensity of the whole park per year [tce / 10⁴ yuan at 2022 prices]."""
    energy: dict[int, float] = {}
    value: dict[int, float] = {}
    for r in economics.months:
        energy[r.year] = energy.get(r.year, 0.0) + r.energy_tce_gross
        value[r.year] = value.get(r.year, 0.0) + r.value_added_real
    return {y: energy[y] / value[y] for y in sorted(energy) if value[y] > 0}
