"""A park model from a seed: areas, enterprises, meters and their scenarios. Pure.

:func:`build_park` is deterministic: the same ``(enterprises, seed)`` gives the same
model. Sizes: each enterprise draws its 2022 gross energy [tce] and its 2022
intensity [tce / 10⁴ yuan] from its archetype's ranges (:mod:`simulators.industries`);
each meter's peak load is sized so that its share of that energy is reached in a
typical year.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from parkdata.carriers import MeterKind, MeterPurpose
from simulators.codes import make_uscc
from simulators.coefficients import TCE_PER_UNIT
from simulators.industries import (
    ANCHORS,
    ARCHETYPES,
    AREAS,
    PV_YIELD_KWH_PER_KWP,
    Archetype,
    Area,
    MeterTemplate,
    Profile,
    Seasonal,
    industry,
)
from simulators.rng import Stream, rng
from simulators.shapes import OCCUPANCY_HOURS, PROFILE_INDEX, DayType

KEY_ENERGY_UNIT_TCE = 10_000.0
"""重点用能单位: annual consumption ≥ 10 000 tce (节约能源法 art. 52)."""


class ScenarioKind(StrEnum):
    STEADY = "steady"
    RETROFIT = "retrofit"  # a dated step down in energy per output
    GRADUAL = "gradual"  # a yearly efficiency gain
    DRIFT = "drift"  # energy per output creeps up
    GROWTH = "growth"  # output grows fast


@dataclass(frozen=True, slots=True)
class Scenario:
    """How an enterprise's energy and output evolve after 2022.

    Parameters
    ----------
    output_growth : float
        Output growth per year [1/yr].
    efficiency_change : float
        Change of energy per unit of output per year [1/yr]; negative improves.
    retrofit_day : int or None
        Day number (since 2022-01-01) from which ``retrofit_saving`` applies.
    retrofit_saving : float
        Share of energy saved by the retrofit [-].
    """

    kind: ScenarioKind
    output_growth: float
    efficiency_change: float
    retrofit_day: int | None = None
    retrofit_saving: float = 0.0


@dataclass(frozen=True, slots=True)
class Meter:
    """A simulated meter.

    Parameters
    ----------
    index : int
        Position in :attr:`Park.meters`.
    multiplier : float
        CT × PT ratio: metered quantity = register × multiplier [-].
    rollover : float or None
        Register modulus [unit], registers only.
    resolution_decimals : int
        Decimals the meter shows [-].
    peak_per_h : float
        Load at full production [unit/h, metered quantity].
    base_share : float
        Idle load as a share of the peak [-].
    rated_capacity_per_h : float
        Plausibility bound given to the registry [unit/h].
    """

    index: int
    enterprise_index: int
    code: str
    carrier: str
    unit: str
    kind: MeterKind
    purpose: MeterPurpose
    interval_s: int
    multiplier: float
    rollover: float | None
    resolution_decimals: int
    peak_per_h: float
    base_share: float
    profile: Profile
    seasonal: Seasonal
    seasonal_amplitude: float
    rated_capacity_per_h: float

    @property
    def is_register(self) -> bool:
        return self.kind is MeterKind.REGISTER


@dataclass(frozen=True, slots=True)
class Enterprise:
    """A simulated enterprise.

    Parameters
    ----------
    energy_tce : float
        Planned 2022 gross energy [tce] (the realised figure is in the truth file).
    intensity_2022 : float
        2022 gross intensity [tce / 10⁴ yuan] the value added is calibrated to.
    pv_kwp : float
        Rooftop PV peak power [kWp]; 0 without PV.
    energy_per_product_kgce : float
        2022 gross energy per unit of product [kgce/unit].
    """

    index: int
    code: str
    name: str
    park_code: str
    park_name: str
    archetype: str
    industry_code: str
    industry_name: str
    product: str
    product_unit: str
    profile: Profile
    energy_tce: float
    intensity_2022: float
    energy_per_product_kgce: float
    key_energy_unit: bool
    scenario: Scenario
    pv_kwp: float
    maintenance_days: int
    meters: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Park:
    """The whole simulated city: enterprises and meters, indexable by position."""

    seed: int
    enterprises: tuple[Enterprise, ...]
    meters: tuple[Meter, ...]

    def meters_of(self, enterprise: Enterprise) -> list[Meter]:
        return [self.meters[i] for i in enterprise.meters]


# --- sizing ---------------------------------------------------------------------------------

_CT_PRIMARY_A: tuple[int, ...] = (5, 10, 15, 20, 30, 40, 50, 75, 100, 150, 200, 300, 400, 500, 600)
_CT_PRIMARY_A += (750, 800, 1000, 1200, 1500, 2000, 2500, 3000, 4000)


def electricity_multiplier(peak_kw: float) -> float:
    """CT × PT ratio of a metering point for a load of ``peak_kw``.

    0.4 kV up to 400 kW, 10 kV up to 20 MW, 110 kV above (PT 100 V secondary);
    the CT primary is the smallest standard rating above 1.5 × the peak current
    at power factor 0.9 (DL/T 448-2016 sizing practice, U).
    """
    voltage_kv, pt_ratio = (
        (0.4, 1.0) if peak_kw <= 400 else (10.0, 100.0) if peak_kw <= 20_000 else (110.0, 1100.0)
    )
    amps = 1.5 * peak_kw / (math.sqrt(3) * voltage_kv * 0.9)
    primary = next((c for c in _CT_PRIMARY_A if c >= amps), _CT_PRIMARY_A[-1])
    return primary / 5 * pt_ratio


def mean_load(profile: Profile, base: float) -> float:
    """Average load over a typical week as a share of the peak [-]."""
    hours = OCCUPANCY_HOURS[PROFILE_INDEX[profile]]
    week = 5 * hours[DayType.WORK] + hours[DayType.SATURDAY] + hours[DayType.OFF]
    return base + (1 - base) * 0.92 * float(week) / (7 * 24)


def _register_format(carrier: str, annual: float) -> tuple[float, float, int]:
    """(multiplier, rollover modulus, decimals) of a non-electric register [unit]."""
    if carrier in ("natural_gas", "coke_oven_gas"):
        return (10.0, 1e8, 1) if annual > 5e6 else (1.0, 1e8, 2)
    if carrier == "steam":
        return 1.0, 1e6, 3
    return 1.0, 1e7, 2  # water


def _sig(value: float, digits: int = 3) -> float:
    return float(f"{value:.{digits}g}")


@dataclass(frozen=True, slots=True)
class _MeterPlan:
    template: MeterTemplate
    annual: float  # [unit/yr]


def _plan_meters(
    archetype: Archetype, energy_tce: float, pv: bool, gen: np.random.Generator
) -> list[_MeterPlan]:
    chosen = [
        t
        for t in archetype.meters
        if not (t.optional and gen.random() < 0.5) and not (pv and t.code == "EL-02")
    ]
    energy_share = sum(t.share for t in chosen if t.carrier in TCE_PER_UNIT)
    plans: list[_MeterPlan] = []
    for t in chosen:
        if t.carrier in TCE_PER_UNIT:
            annual = energy_tce * t.share / energy_share / TCE_PER_UNIT[t.carrier]
        else:
            annual = energy_tce * t.share  # water: m³ per tce
        plans.append(_MeterPlan(t, annual))
    return plans


def _meter(
    index: int, enterprise: int, plan: _MeterPlan, archetype: Archetype, gen: np.random.Generator
) -> Meter:
    t = plan.template
    base = float(gen.uniform(*t.base))
    profile = t.profile or archetype.profile
    peak = plan.annual / (8760 * mean_load(profile, base))
    amplitude = 0.0
    if t.seasonal is Seasonal.COOLING:
        amplitude = float(gen.uniform(0.10, 0.25))
    elif t.seasonal is Seasonal.HEATING:
        amplitude = float(gen.uniform(0.15, 0.40))
    if t.kind is MeterKind.INTERVAL:
        multiplier, rollover, decimals = 1.0, None, 3
    elif t.carrier == "electricity":
        multiplier, rollover, decimals = electricity_multiplier(peak * (1 + amplitude)), 1e6, 2
    else:
        multiplier, rollover, decimals = _register_format(t.carrier, plan.annual)
    return Meter(
        index=index,
        enterprise_index=enterprise,
        code=t.code,
        carrier=t.carrier,
        unit=t.unit,
        kind=t.kind,
        purpose=t.purpose,
        interval_s=t.interval_s,
        multiplier=multiplier,
        rollover=rollover,
        resolution_decimals=decimals,
        peak_per_h=peak,
        base_share=base,
        profile=profile,
        seasonal=t.seasonal,
        seasonal_amplitude=amplitude,
        rated_capacity_per_h=_sig(peak * (1 + amplitude) * 1.6),
    )


def _pv_meters(index: int, enterprise: int, kwp: float) -> list[Meter]:
    multiplier = electricity_multiplier(kwp)
    return [
        Meter(
            index=index + i,
            enterprise_index=enterprise,
            code=code,
            carrier="electricity",
            unit="kWh",
            kind=MeterKind.REGISTER,
            purpose=purpose,
            interval_s=900,
            multiplier=multiplier,
            rollover=1e6,
            resolution_decimals=2,
            peak_per_h=kwp,
            base_share=0.0,
            profile=Profile.SOLAR,
            seasonal=Seasonal.NONE,
            seasonal_amplitude=0.0,
            rated_capacity_per_h=_sig(kwp * 1.2),
        )
        for i, (code, purpose) in enumerate(
            (("PV-GEN", MeterPurpose.GENERATION), ("PV-EXP", MeterPurpose.EXPORT))
        )
    ]


# --- names ----------------------------------------------------------------------------------

_BRAND = "华楚鑫泰瑞恒昌宏盛祥丰源达凯新兴润博中金光天宇德嘉信安康汇利东鸿晨卓远航"
_PREFIX = ("鄂州", "湖北", "鄂州市")
_SUFFIX = ("有限公司", "有限公司", "股份有限公司", "科技有限公司")


def _name(words: tuple[str, ...], gen: np.random.Generator, used: set[str]) -> str:
    while True:
        brand = "".join(_BRAND[int(i)] for i in gen.integers(0, len(_BRAND), 2))
        word = words[int(gen.integers(0, len(words)))]
        prefix = _PREFIX[int(gen.integers(0, len(_PREFIX)))]
        suffix = _SUFFIX[int(gen.integers(0, len(_SUFFIX)))]
        name = f"{prefix}{brand}{word}{suffix}"
        if name not in used:
            used.add(name)
            return name


# --- scenarios ------------------------------------------------------------------------------


def _scenario(archetype: str, anchor: int | None, gen: np.random.Generator) -> Scenario:
    """Scenario of an enterprise; the anchors get fixed kinds so every park shows each story."""
    trend = float(np.clip(gen.normal(0.025, 0.02), -0.02, 0.07))
    if anchor == 0:  # the steel works: a dated retrofit (e.g. waste-heat recovery, TRT)
        return Scenario(ScenarioKind.RETROFIT, 0.01, -0.004, 913 + int(gen.integers(0, 60)), 0.07)
    if anchor == 1:  # the cement plant drifts worse
        return Scenario(ScenarioKind.DRIFT, trend, 0.015)
    if anchor == 2:  # the optoelectronics anchor grows fast
        return Scenario(ScenarioKind.GROWTH, 0.12, -0.01)
    kinds = list(ScenarioKind)
    kind = kinds[int(gen.choice(len(kinds), p=[0.3, 0.2, 0.2, 0.15, 0.15]))]
    if kind is ScenarioKind.RETROFIT:
        day = int(gen.integers(425, 1460))  # 2023-03 .. 2025-12
        return Scenario(kind, trend, 0.0, day, float(gen.uniform(0.08, 0.2)))
    if kind is ScenarioKind.GRADUAL:
        return Scenario(kind, trend, -float(gen.uniform(0.02, 0.05)))
    if kind is ScenarioKind.DRIFT:
        return Scenario(kind, trend, float(gen.uniform(0.01, 0.03)))
    if kind is ScenarioKind.GROWTH:
        return Scenario(kind, float(gen.uniform(0.06, 0.12)), 0.0)
    return Scenario(kind, trend, 0.0)


# --- the park -------------------------------------------------------------------------------


def _choose(areas: tuple[Area, ...], gen: np.random.Generator) -> tuple[Area, str, str]:
    weights = np.array([a.weight for a in areas])
    area = areas[int(gen.choice(len(areas), p=weights / weights.sum()))]
    mix = np.array([w for _, _, w in area.mix])
    key, code, _ = area.mix[int(gen.choice(len(area.mix), p=mix / mix.sum()))]
    return area, key, code


def build_park(enterprises: int = 40, seed: int = 1) -> Park:
    """Build the park model.

    Parameters
    ----------
    enterprises : int
        Number of enterprises (1 to 5000). From five on, the first five are one
        of each DOMAIN.md §6 sector (steel works first); the rest are drawn by
        area weight and the area's industry mix.
    seed : int
        The seed of every random choice of the simulation.
    """
    if not 1 <= enterprises <= 5000:
        raise ValueError(f"enterprises must be 1..5000, got {enterprises}")
    gen = rng(seed, Stream.PARK)
    by_code = {a.code: a for a in AREAS}
    names: set[str] = set()
    codes: set[str] = set()
    out_enterprises: list[Enterprise] = []
    meters: list[Meter] = []
    for e in range(enterprises):
        anchor = e if e < len(ANCHORS) else None
        if anchor is not None:
            park_code, key, code = ANCHORS[anchor]
            area = by_code[park_code]
        else:
            area, key, code = _choose(AREAS, gen)
        archetype = ARCHETYPES[key]
        ind = industry(archetype, code)
        lo, hi = archetype.energy_tce
        energy_tce = float(math.exp(gen.uniform(math.log(lo), math.log(hi))))
        i_lo, i_hi = archetype.intensity
        intensity = float(gen.uniform(i_lo + 0.1 * (i_hi - i_lo), i_hi - 0.1 * (i_hi - i_lo)))
        pv = gen.random() < archetype.pv_share
        plans = _plan_meters(archetype, energy_tce, pv, gen)
        first = len(meters)
        for plan in plans:
            meters.append(_meter(len(meters), e, plan, archetype, gen))
        kwp = 0.0
        if pv:
            site = meters[first]  # EL-01: PV feeds in behind the main incomer
            kwp = _sig(site.peak_per_h * site.base_share * float(gen.uniform(0.3, 0.9)), 2)
            kwp = max(kwp, 50.0)
            meters.extend(_pv_meters(len(meters), e, kwp))
        code_text = make_uscc(area.division, gen)
        while code_text in codes:
            code_text = make_uscc(area.division, gen)
        codes.add(code_text)
        m_lo, m_hi = archetype.maintenance_days
        out_enterprises.append(
            Enterprise(
                index=e,
                code=code_text,
                name=_name(ind.name_words or archetype.name_words, gen, names),
                park_code=area.code,
                park_name=area.name_zh,
                archetype=key,
                industry_code=code,
                industry_name=ind.name_zh,
                product=ind.product_zh,
                product_unit=ind.product_unit,
                profile=archetype.profile,
                energy_tce=energy_tce,
                intensity_2022=intensity,
                energy_per_product_kgce=float(gen.uniform(*ind.energy_per_product_kgce)),
                key_energy_unit=energy_tce >= KEY_ENERGY_UNIT_TCE,
                scenario=_scenario(key, anchor, gen),
                pv_kwp=kwp,
                maintenance_days=int(gen.integers(m_lo, m_hi + 1)) if m_hi else 0,
                meters=tuple(range(first, len(meters))),
            )
        )
    return Park(seed, tuple(out_enterprises), tuple(meters))


def pv_annual_kwh(kwp: float) -> float:
    """Planned annual PV generation [kWh]."""
    return kwp * PV_YIELD_KWH_PER_KWP
