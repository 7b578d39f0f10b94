"""Units of measurement and their conversion.

One canonical unit per dimension; every other unit is a factor to it.
A unit missing from :data:`UNITS` is an error, never a guess.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Dimension(StrEnum):
    ENERGY = "energy"  # canonical kWh
    VOLUME = "volume"  # canonical m³ (Nm³ taken as m³ at reference conditions)
    MASS = "mass"  # canonical kg
    POWER = "power"  # canonical kW
    VOLUME_FLOW = "volume_flow"  # canonical m³/h
    MASS_FLOW = "mass_flow"  # canonical kg/h


class UnitError(ValueError):
    """A unit is unknown, or cannot be converted to another."""


@dataclass(frozen=True, slots=True)
class Unit:
    symbol: str
    dimension: Dimension
    to_canonical: float


_DEFINITIONS: tuple[tuple[tuple[str, ...], Dimension, float], ...] = (
    (("Wh",), Dimension.ENERGY, 1e-3),
    (("kWh",), Dimension.ENERGY, 1.0),
    (("MWh",), Dimension.ENERGY, 1e3),
    (("GWh",), Dimension.ENERGY, 1e6),
    (("kJ",), Dimension.ENERGY, 1.0 / 3600.0),
    (("MJ",), Dimension.ENERGY, 1.0 / 3.6),
    (("GJ",), Dimension.ENERGY, 1e3 / 3.6),
    (("L", "l"), Dimension.VOLUME, 1e-3),
    (("m3", "m³", "Nm3", "Nm³"), Dimension.VOLUME, 1.0),
    (("10^4 m3", "10⁴m³", "10^4 Nm3", "10⁴Nm³"), Dimension.VOLUME, 1e4),
    (("g",), Dimension.MASS, 1e-3),
    (("kg",), Dimension.MASS, 1.0),
    (("t",), Dimension.MASS, 1e3),
    (("W",), Dimension.POWER, 1e-3),
    (("kW",), Dimension.POWER, 1.0),
    (("MW",), Dimension.POWER, 1e3),
    (("m3/h", "m³/h", "Nm3/h", "Nm³/h"), Dimension.VOLUME_FLOW, 1.0),
    (("kg/h",), Dimension.MASS_FLOW, 1.0),
    (("t/h",), Dimension.MASS_FLOW, 1e3),
)

UNITS: dict[str, Unit] = {
    symbol: Unit(symbols[0], dimension, factor)
    for symbols, dimension, factor in _DEFINITIONS
    for symbol in symbols
}


def unit(symbol: str) -> Unit:
    """The unit named ``symbol``; raises :class:`UnitError` when unknown."""
    try:
        return UNITS[symbol]
    except KeyError:
        raise UnitError(f"unknown unit {symbol!r}") from None


def conversion_factor(from_symbol: str, to_symbol: str) -> float:
    """Multiply a value in ``from_symbol`` by this to get it in ``to_symbol``."""
    source, target = unit(from_symbol), unit(to_symbol)
    if source.dimension is not target.dimension:
        raise UnitError(
            f"cannot convert {from_symbol} ({source.dimension}) to {to_symbol} ({target.dimension})"
        )
    if source.symbol == target.symbol:
        return 1.0
    return source.to_canonical / target.to_canonical
