"""Energy carriers, meter kinds and meter purposes, as the registry accepts them.

The carrier list follows the energy statistics of GB/T 2589-2020 (综合能耗计算通则);
the database table ``registry.carrier`` holds the same codes (a test checks it).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from parkdata.units import Dimension


class MeterKind(StrEnum):
    REGISTER = "register"  # cumulative counter; consumption is the difference of readings
    INTERVAL = "interval"  # consumption within the interval ending at ts
    GAUGE = "gauge"  # instantaneous value (power, flow)


class MeterPurpose(StrEnum):
    CONSUMPTION = "consumption"
    GENERATION = "generation"
    EXPORT = "export"
    FEEDSTOCK = "feedstock"  # energy used as raw material (原料用能, 发改环资〔2022〕803号)


@dataclass(frozen=True, slots=True)
class Carrier:
    code: str
    name_zh: str
    name_en: str
    dimensions: frozenset[Dimension]
    """Dimensions a meter of this carrier may measure (gauges: the matching rate)."""


def _carrier(code: str, zh: str, en: str, *dims: Dimension) -> Carrier:
    return Carrier(code, zh, en, frozenset(dims))


_E, _V, _M = Dimension.ENERGY, Dimension.VOLUME, Dimension.MASS
_P, _VF, _MF = Dimension.POWER, Dimension.VOLUME_FLOW, Dimension.MASS_FLOW

CARRIERS: dict[str, Carrier] = {
    c.code: c
    for c in (
        _carrier("electricity", "电力", "Electricity", _E, _P),
        _carrier("natural_gas", "天然气", "Natural gas", _V, _VF),
        _carrier("steam", "蒸汽", "Steam", _M, _E, _MF),
        _carrier("heat", "热力", "Heat", _E, _P),
        _carrier("raw_coal", "原煤", "Raw coal", _M, _MF),
        _carrier("coke", "焦炭", "Coke", _M, _MF),
        _carrier("diesel", "柴油", "Diesel", _M, _V, _MF),
        _carrier("gasoline", "汽油", "Gasoline", _M, _V, _MF),
        _carrier("fuel_oil", "燃料油", "Fuel oil", _M, _MF),
        _carrier("lpg", "液化石油气", "LPG", _M, _MF),
        _carrier("water", "水", "Water", _V, _M, _VF),
        _carrier("washed_coal", "洗精煤", "Washed coal", _M, _MF),
        _carrier("crude_oil", "原油", "Crude oil", _M, _MF),
        _carrier("kerosene", "煤油", "Kerosene", _M, _V, _MF),
        _carrier("coke_oven_gas", "焦炉煤气", "Coke-oven gas", _V, _VF),
        _carrier("blast_furnace_gas", "高炉煤气", "Blast-furnace gas", _V, _VF),
        _carrier("softened_water", "软化水", "Softened water", _V, _M, _VF, _MF),
        _carrier("deaerated_water", "除氧水", "Deaerated water", _V, _M, _VF, _MF),
        _carrier("compressed_air", "压缩空气", "Compressed air", _V, _VF),
        _carrier("oxygen", "氧气", "Oxygen", _V, _VF),
        _carrier("nitrogen", "氮气", "Nitrogen", _V, _VF),
    )
}
