"""Intra-day shapes: shift occupancy per 15-minute slot, night hours, and rooftop PV output.

Shift templates follow DOMAIN.md §6 (1 shift 08-17 weekdays, 2 shifts 08-24,
continuous); valley-tariff hours 23:00-07:00 and peak hours 08-11 and 17-21 are
the common Hubei time-of-use pattern (U). Solar geometry: Cooper's declination
and the sunrise hour angle at Ezhou (30.4° N, 114.9° E).
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np
from numpy.typing import NDArray

from simulators.industries import Profile

SLOTS = 96
SLOT_H = 0.25

FloatArray = NDArray[np.float64]


class DayType(IntEnum):
    WORK = 0
    SATURDAY = 1  # a weekend day worked with fewer shifts
    OFF = 2  # Sunday or public holiday
    SHUT = 3  # maintenance stop or festival shutdown


PROFILES: tuple[Profile, ...] = tuple(Profile)
PROFILE_INDEX = {p: i for i, p in enumerate(PROFILES)}


def _hours(start_h: float, end_h: float, value: float = 1.0) -> FloatArray:
    out = np.zeros(SLOTS)
    out[int(start_h * 4) : int(end_h * 4)] = value
    return out


def _occupancy() -> NDArray[np.float64]:
    """occupancy[profile, daytype, slot] in [0, 1]: share of the variable load in use."""
    occ = np.zeros((len(PROFILES), len(DayType), SLOTS))
    ones = np.ones(SLOTS)
    for p in (Profile.CONTINUOUS, Profile.CLEANROOM):
        for t in (DayType.WORK, DayType.SATURDAY, DayType.OFF):
            occ[PROFILE_INDEX[p], t] = ones
    offpeak = np.full(SLOTS, 0.75)
    offpeak[: 7 * 4] = 1.0
    offpeak[23 * 4 :] = 1.0
    offpeak[8 * 4 : 11 * 4] = 0.45
    offpeak[17 * 4 : 21 * 4] = 0.45
    for t in (DayType.WORK, DayType.SATURDAY, DayType.OFF):
        occ[PROFILE_INDEX[Profile.OFFPEAK], t] = offpeak
    one = _hours(8, 17) - _hours(12, 13, 0.5) + _hours(7.5, 8, 0.5) + _hours(17, 17.5, 0.5)
    occ[PROFILE_INDEX[Profile.SHIFT1], DayType.WORK] = one
    two = _hours(8, 24) - _hours(12, 12.5, 0.3) - _hours(18, 18.5, 0.3)
    occ[PROFILE_INDEX[Profile.SHIFT2], DayType.WORK] = two
    occ[PROFILE_INDEX[Profile.SHIFT2], DayType.SATURDAY] = _hours(8, 17)
    three = ones - _hours(0, 0.5, 0.15) - _hours(8, 8.5, 0.15) - _hours(16, 16.5, 0.15)
    occ[PROFILE_INDEX[Profile.SHIFT3], DayType.WORK] = three
    occ[PROFILE_INDEX[Profile.SHIFT3], DayType.SATURDAY] = np.full(SLOTS, 0.6)
    occ[PROFILE_INDEX[Profile.SHIFT3], DayType.OFF] = np.full(SLOTS, 0.3)
    return occ


OCCUPANCY = _occupancy()
OCCUPANCY_HOURS = OCCUPANCY.sum(axis=2) * SLOT_H
"""[profile, daytype] full-load hours of the variable load in a day [h]."""

NIGHT = _hours(0, 6) + _hours(22, 24)
"""Slots where a night-time baseload shows (consumption.baseload_creep)."""
NIGHT_HOURS = float(NIGHT.sum() * SLOT_H)

BASE_FACTOR = np.array([1.0, 1.0, 1.0, 0.45])
"""Idle load in use per day type; a stopped plant keeps 45 % of its idle load (U)."""

LATITUDE_DEG = 30.4
SOLAR_NOON_H = 12.0 + (120.0 - 114.9) * 4 / 60  # UTC+8 is the 120° E meridian


def resample(slots: NDArray[np.float64], interval_s: int) -> NDArray[np.float64]:
    """Average 15-minute slot values (last axis) over slots of ``interval_s``."""
    per = interval_s // 900
    shape = (*slots.shape[:-1], slots.shape[-1] // per, per)
    return np.asarray(slots.reshape(shape).mean(axis=-1), dtype=np.float64)


def solar_shape(day_of_year: NDArray[np.int64]) -> NDArray[np.float64]:
    """Share of a day's PV output in each 15-minute slot, per day of year; rows sum to 1."""
    decl = np.radians(23.44) * np.sin(2 * np.pi * (284 + day_of_year) / 365.0)  # Cooper (1969)
    lat = np.radians(LATITUDE_DEG)
    half_day_h = np.degrees(np.arccos(np.clip(-np.tan(lat) * np.tan(decl), -1, 1))) / 15.0
    mid = (np.arange(SLOTS) + 0.5) * SLOT_H
    x = (mid[None, :] - SOLAR_NOON_H) / half_day_h[:, None]
    shape = np.where(np.abs(x) < 1, np.clip(np.cos(np.pi * x / 2), 0.0, None) ** 1.5, 0.0)
    return np.asarray(shape / shape.sum(axis=1, keepdims=True), dtype=np.float64)


def solar_season(day_of_year: NDArray[np.int64]) -> NDArray[np.float64]:
    """Relative daily PV yield by season (summer high), mean ≈ 1 (U)."""
    return np.asarray(1.0 + 0.35 * np.cos(2 * np.pi * (day_of_year - 190) / 365.0), dtype=np.float64)


PV_SELF_LIMIT = 0.8
"""Self-consumed PV never exceeds this share of the site's noiseless load in a slot, so that
grid import stays positive under the slot noise (±6 %)."""


def pv_split(
    load_slots: NDArray[np.float64], gen_slots: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Self-consumed and exported PV per slot [kWh] from noiseless site load and generation."""
    own = np.minimum(gen_slots, PV_SELF_LIMIT * load_slots)
    return own, gen_slots - own
