"""Day-level physics of one year: activity, efficiency, and every meter's daily energy. Pure.

For meter *m* of enterprise *e* on day *d*, the load in a 15-minute slot *k* is::

    load = lo[m, d] + hi[m, d] * occupancy[profile, daytype[e, d], k] + creep[m, d] * night[k]   [unit/h]

``lo`` is the idle load (peak × base share, less on shutdown days), ``hi`` the
variable load at full occupancy (peak × (1 - base) × activity). Both carry the
enterprise's efficiency scenario and the meter's seasonal factor. The day's
energy is the sum over slots, so it is known without drawing the slot noise:
the intra-day noise of :mod:`simulators.generator` is normalised to keep it.
Years are built in order from the epoch (the activity noise is an AR(1) that
carries over), each from streams keyed by its year.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from simulators.calendar import YearCalendar, year_calendar
from simulators.faults import Creep
from simulators.industries import ARCHETYPES, Profile, Seasonal, industry
from simulators.park import Park, ScenarioKind, pv_annual_kwh
from simulators.rng import Stream, rng
from simulators.shapes import (
    BASE_FACTOR,
    NIGHT,
    NIGHT_HOURS,
    OCCUPANCY,
    OCCUPANCY_HOURS,
    PROFILE_INDEX,
    SLOT_H,
    DayType,
    pv_split,
    solar_season,
    solar_shape,
)

FloatArray = NDArray[np.float64]

_COOLING = np.array([0, 0, 0, 0, 0.2, 0.6, 1.0, 1.0, 0.5, 0.1, 0, 0], dtype=np.float64)
_HEATING = np.array([1.0, 0.8, 0.3, 0, 0, 0, 0, 0, 0, 0, 0.4, 0.9], dtype=np.float64)
_AR_PHI, _AR_SIGMA = 0.9, 0.02  # day-to-day activity noise, stationary sd ≈ 4.6 % (U)
CEMENT_WINTER_STOP = (-15, 25)
"""Days around the Spring Festival a cement kiln stops: 常态化错峰生产 (工信部联原〔2020〕201号)."""


@dataclass(frozen=True, slots=True)
class PvDay:
    """Rooftop PV of the PV enterprises on each day of the year (rows follow ``enterprises``)."""

    enterprises: NDArray[np.int64]
    generation_kwh: FloatArray  # (n, days)
    own_kwh: FloatArray  # self-consumed
    export_kwh: FloatArray


@dataclass(frozen=True, slots=True)
class YearTable:
    """Day-level quantities of one year; arrays are (enterprises or meters, days).

    Attributes
    ----------
    energy : ndarray
        Metered quantity per meter and day [unit]: grid import for EL-01 of a PV
        enterprise, generation and export for its PV meters.
    cum0 : ndarray
        Metered quantity of each meter from the epoch to 1 January [unit].
    output : ndarray
        Production per enterprise and day [full-load hours of the variable load].
    """

    calendar: YearCalendar
    daytype: NDArray[np.int64]
    activity: FloatArray
    efficiency: FloatArray
    lo: FloatArray
    hi: FloatArray
    creep: FloatArray
    energy: FloatArray
    cum0: FloatArray
    cum_day: FloatArray
    output: FloatArray
    pv: PvDay
    ar_last: FloatArray
    creeps: tuple[Creep, ...]

    @property
    def day0(self) -> int:
        return self.calendar.day0

    @property
    def days(self) -> int:
        return self.calendar.days

    def cum_start(self, day: int) -> FloatArray:
        """Metered quantity per meter from the epoch to the start of ``day`` [unit]."""
        return np.asarray(self.cum_day[:, day - self.day0], dtype=np.float64)


def _daytypes(park: Park, cal: YearCalendar) -> NDArray[np.int64]:
    """Day type per enterprise and day (shifts, weekends, holidays, festival and maintenance stops)."""
    n = len(park.enterprises)
    out = np.zeros((n, cal.days), dtype=np.int64)
    idx = np.arange(cal.days)
    festival = idx - cal.spring_festival
    saturday = (cal.weekday == 5) & ~cal.working & ~cal.holiday
    gen = rng(park.seed, Stream.MAINTENANCE, cal.year)
    starts = gen.random((n, 2))
    for e in park.enterprises:
        row = out[e.index]
        if e.profile in (Profile.CONTINUOUS, Profile.CLEANROOM, Profile.OFFPEAK):
            if e.maintenance_days:
                first = e.maintenance_days // 2
                for part, length in enumerate((first, e.maintenance_days - first)):
                    if length:
                        begin = int(60 + starts[e.index, part] * (cal.days - 120))
                        row[begin : begin + length] = DayType.SHUT
            if e.industry_code == "3011":
                lo, hi = CEMENT_WINTER_STOP
                row[(festival >= lo) & (festival <= hi)] = DayType.SHUT
            continue
        row[:] = np.where(cal.working, DayType.WORK, DayType.OFF)
        if e.profile in (Profile.SHIFT2, Profile.SHIFT3):
            row[saturday] = DayType.SATURDAY
        lo, hi = (-1, 4) if e.profile is Profile.SHIFT3 else (-2, 7)
        row[(festival >= lo) & (festival <= hi)] = DayType.SHUT
    return out


def _activity(park: Park, cal: YearCalendar, prev_ar: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Activity per enterprise and day (season, growth, noise, festival) and the last AR state."""
    n = len(park.enterprises)
    gen = rng(park.seed, Stream.ACTIVITY, cal.year)
    shocks = gen.normal(0.0, _AR_SIGMA, (n, cal.days))
    ar = np.empty((n, cal.days))
    state = prev_ar.copy()
    for d in range(cal.days):
        state = _AR_PHI * state + shocks[:, d]
        ar[:, d] = state
    years = (cal.day0 + np.arange(cal.days)) / 365.25
    festival = np.arange(cal.days) - cal.spring_festival
    act = np.empty((n, cal.days))
    for e in park.enterprises:
        ind = industry(ARCHETYPES[e.archetype], e.industry_code)
        season = np.array(ind.harvest)[cal.month - 1] if ind.harvest else np.ones(cal.days)
        growth = (1 + e.scenario.output_growth) ** years
        holiday = np.ones(cal.days)
        if e.profile in (Profile.CONTINUOUS, Profile.OFFPEAK):
            holiday[(festival >= -1) & (festival <= 6)] = 0.9
        elif e.profile is Profile.CLEANROOM:
            holiday[(festival >= -1) & (festival <= 6)] = 0.85
        act[e.index] = season * growth * (1 + ar[e.index]) * holiday
    return act, state


def _efficiency(park: Park, cal: YearCalendar) -> FloatArray:
    """Energy per unit of output relative to 2022 [-], per enterprise and day."""
    days = cal.day0 + np.arange(cal.days)
    years = days / 365.25
    eff = np.empty((len(park.enterprises), cal.days))
    for e in park.enterprises:
        s = e.scenario
        row = (1 + s.efficiency_change) ** years
        if s.kind is ScenarioKind.RETROFIT and s.retrofit_day is not None:
            row = row * np.where(days >= s.retrofit_day, 1 - s.retrofit_saving, 1.0)
        eff[e.index] = row
    return eff


def _pv(
    park: Park,
    *,
    cal: YearCalendar,
    lo: FloatArray,
    hi: FloatArray,
    creep: FloatArray,
    daytype: NDArray[np.int64],
) -> PvDay:
    pv_ents = np.array([e.index for e in park.enterprises if e.pv_kwp > 0], dtype=np.int64)
    n = len(pv_ents)
    gen_kwh = np.zeros((n, cal.days))
    own = np.zeros((n, cal.days))
    gen = rng(park.seed, Stream.PV, cal.year)
    clouds = gen.beta(5.0, 2.0, (max(n, 1), cal.days)) / (5.0 / 7.0)
    shape = solar_shape(cal.day_of_year)
    season = solar_season(cal.day_of_year)
    for row, e in enumerate(pv_ents):
        ent = park.enterprises[int(e)]
        site = ent.meters[0]  # EL-01
        daily = pv_annual_kwh(ent.pv_kwp) / 365.0 * season * clouds[row]
        gen_kwh[row] = daily
        load = site_load_slots(park, site, lo=lo, hi=hi, creep=creep, daytype=daytype, days=slice(None))
        slots = daily[:, None] * shape
        own[row] = pv_split(load, slots)[0].sum(axis=1)
    return PvDay(pv_ents, gen_kwh, own, gen_kwh - own)


def site_load_slots(
    park: Park,
    meter: int,
    *,
    lo: FloatArray,
    hi: FloatArray,
    creep: FloatArray,
    daytype: NDArray[np.int64],
    days: slice,
) -> FloatArray:
    """Noiseless 15-minute load of a meter over ``days`` of a table, shape (days, 96) [unit per slot]."""
    m = park.meters[meter]
    e = m.enterprise_index
    occ = OCCUPANCY[PROFILE_INDEX[m.profile]][daytype[e, days]]
    return np.asarray(
        (lo[meter, days, None] + hi[meter, days, None] * occ + creep[meter, days, None] * NIGHT) * SLOT_H,
        dtype=np.float64,
    )


def build_year(park: Park, year: int, previous: YearTable | None, creeps: list[Creep]) -> YearTable:
    """The day table of ``year``; ``previous`` must be the table of ``year - 1`` (None at the epoch)."""
    cal = year_calendar(year)
    n_e, n_m = len(park.enterprises), len(park.meters)
    if previous is None:
        prev_ar = rng(park.seed, Stream.ACTIVITY, 0).normal(0, _AR_SIGMA / np.sqrt(1 - _AR_PHI**2), n_e)
        cum0 = np.zeros(n_m)
    else:
        prev_ar = previous.ar_last
        cum0 = previous.cum0 + previous.energy.sum(axis=1)
    daytype = _daytypes(park, cal)
    act, ar_last = _activity(park, cal, prev_ar)
    eff = _efficiency(park, cal)
    base_factor = BASE_FACTOR[daytype]
    lo = np.zeros((n_m, cal.days))
    hi = np.zeros((n_m, cal.days))
    occ_hours = np.zeros((n_m, cal.days))
    for m in park.meters:
        if m.profile is Profile.SOLAR:
            continue
        e = m.enterprise_index
        season = np.ones(cal.days)
        if m.seasonal is Seasonal.COOLING:
            season = 1 + m.seasonal_amplitude * _COOLING[cal.month - 1]
        elif m.seasonal is Seasonal.HEATING:
            season = 1 + m.seasonal_amplitude * _HEATING[cal.month - 1]
        common = m.peak_per_h * eff[e] * season
        lo[m.index] = common * m.base_share * base_factor[e]
        hi[m.index] = common * (1 - m.base_share) * act[e]
        occ_hours[m.index] = OCCUPANCY_HOURS[PROFILE_INDEX[m.profile]][daytype[e]]
    creep = np.zeros((n_m, cal.days))
    active = [c for c in creeps if c.start_day < cal.day0 + cal.days and c.start_day + c.days > cal.day0]
    for c in active:
        m = park.meters[c.meter]
        for d in range(max(c.start_day, cal.day0), min(c.start_day + c.days, cal.day0 + cal.days)):
            ramp = (d - c.start_day + 1) / c.days
            creep[c.meter, d - cal.day0] = m.peak_per_h * m.base_share * c.amplitude * ramp
    energy = lo * 24 + hi * occ_hours + creep * NIGHT_HOURS
    pv = _pv(park, cal=cal, lo=lo, hi=hi, creep=creep, daytype=daytype)
    for row, e in enumerate(pv.enterprises):
        site, gen_meter, export_meter = park.enterprises[int(e)].meters[0], *pv_meters(park, int(e))
        energy[site] -= pv.own_kwh[row]
        energy[gen_meter] = pv.generation_kwh[row]
        energy[export_meter] = pv.export_kwh[row]
    output = np.empty((n_e, cal.days))
    for ent in park.enterprises:
        output[ent.index] = act[ent.index] * OCCUPANCY_HOURS[PROFILE_INDEX[ent.profile]][daytype[ent.index]]
    return YearTable(
        calendar=cal,
        daytype=daytype,
        activity=act,
        efficiency=eff,
        lo=lo,
        hi=hi,
        creep=creep,
        energy=energy,
        cum0=cum0,
        cum_day=np.concatenate([cum0[:, None], cum0[:, None] + np.cumsum(energy, axis=1)], axis=1),
        output=output,
        pv=pv,
        ar_last=ar_last,
        creeps=tuple(active),
    )


def pv_meters(park: Park, enterprise: int) -> tuple[int, int]:
    """Indexes of the PV-GEN and PV-EXP meters of a PV enterprise."""
    gen_meter = export_meter = -1
    for i in park.enterprises[enterprise].meters:
        code = park.meters[i].code
        if code == "PV-GEN":
            gen_meter = i
        elif code == "PV-EXP":
            export_meter = i
    return gen_meter, export_meter
