"""Fault kinds, their rates, and the schedule of faults a seed gives. Pure.

Rates are probabilities per meter and day (meter faults), per enterprise and day
(gateway faults), per main electricity meter and day (the start of a baseload
creep) and per register and day (a rollover, at most one per meter). A rate of 1
puts a fault on every meter-day; when several kinds are drawn for the same cell,
one of them wins (the smallest ``u / rate``), so each kind gets its share.
The schedule of a year is drawn from a stream keyed by that year (and kind), so
it does not depend on the run's start or end.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from simulators.calendar import year_calendar
from simulators.park import Meter, Park
from simulators.rng import Stream, rng
from simulators.timebase import DAY_S, day_start_s


class FaultKind(StrEnum):
    GATEWAY_OFFLINE = "gateway.offline"
    METER_GAP = "meter.gap"
    TRANSIENT_ZERO = "register.transient_zero"
    UNAVAILABLE = "register.unavailable"
    ROLLOVER = "register.rollover"
    REPLACEMENT = "meter.replacement"
    STUCK = "register.stuck"
    SPIKE = "register.spike"
    CLOCK_SKEW = "clock.skew"
    DUPLICATE = "delivery.duplicate"
    LATE_BURST = "delivery.late_burst"
    MALFORMED = "payload.malformed"
    WRONG_UNIT = "unit.wrong"
    FOREIGN_TOPIC = "topic.foreign"
    BASELOAD_CREEP = "consumption.baseload_creep"


METER_KINDS: tuple[FaultKind, ...] = (
    FaultKind.METER_GAP,
    FaultKind.TRANSIENT_ZERO,
    FaultKind.UNAVAILABLE,
    FaultKind.REPLACEMENT,
    FaultKind.STUCK,
    FaultKind.SPIKE,
    FaultKind.MALFORMED,
    FaultKind.WRONG_UNIT,
    FaultKind.FOREIGN_TOPIC,
)
GATEWAY_KINDS: tuple[FaultKind, ...] = (
    FaultKind.GATEWAY_OFFLINE,
    FaultKind.LATE_BURST,
    FaultKind.CLOCK_SKEW,
    FaultKind.DUPLICATE,
)

DEFAULT_RATES: dict[FaultKind, float] = {
    FaultKind.GATEWAY_OFFLINE: 0.002,
    FaultKind.LATE_BURST: 0.002,
    FaultKind.CLOCK_SKEW: 0.001,
    FaultKind.DUPLICATE: 0.01,
    FaultKind.METER_GAP: 0.002,
    FaultKind.TRANSIENT_ZERO: 0.001,
    FaultKind.UNAVAILABLE: 0.002,
    FaultKind.ROLLOVER: 0.0005,
    FaultKind.REPLACEMENT: 0.0003,
    FaultKind.STUCK: 0.001,
    FaultKind.SPIKE: 0.001,
    FaultKind.MALFORMED: 0.001,
    FaultKind.WRONG_UNIT: 0.0005,
    FaultKind.FOREIGN_TOPIC: 0.0005,
    FaultKind.BASELOAD_CREEP: 0.0005,
}


class FaultRateError(ValueError):
    """A fault kind is unknown or a rate is outside 0..1."""


@dataclass(frozen=True, slots=True)
class FaultRates:
    """Rate of every fault kind [1/day per meter or per enterprise]."""

    rates: Mapping[FaultKind, float] = field(default_factory=lambda: dict(DEFAULT_RATES))

    def __post_init__(self) -> None:
        for kind, rate in self.rates.items():
            if not 0.0 <= rate <= 1.0 or math.isnan(rate):
                raise FaultRateError(f"rate of {kind} must be within 0..1, got {rate}")

    def __getitem__(self, kind: FaultKind) -> float:
        return float(self.rates.get(kind, 0.0))

    @classmethod
    def none(cls) -> FaultRates:
        return cls({k: 0.0 for k in FaultKind})

    @classmethod
    def uniform(cls, rate: float) -> FaultRates:
        return cls({k: rate for k in FaultKind})

    def with_rates(self, changes: Mapping[str, float]) -> FaultRates:
        """A copy with the rates of ``changes`` (keys are dotted kinds) replaced."""
        merged = dict(self.rates)
        for name, rate in changes.items():
            merged[parse_kind(name)] = float(rate)
        return FaultRates(merged)

    def scaled(self, factor: float) -> FaultRates:
        """Every rate × ``factor`` (at most 1); ``factor`` must be a finite number ≥ 0."""
        if not (factor >= 0 and math.isfinite(factor)):
            raise FaultRateError(f"a fault scale must be a finite number, 0 or more, got {factor}")
        return FaultRates({k: min(1.0, v * factor) for k, v in self.rates.items()})


def parse_kind(name: str) -> FaultKind:
    try:
        return FaultKind(name.strip())
    except ValueError:
        known = ", ".join(k.value for k in FaultKind)
        raise FaultRateError(f"unknown fault kind {name!r} (known: {known})") from None


def load_rates(path: Path, base: FaultRates | None = None) -> FaultRates:
    """Rates from a TOML profile: ``[rates]`` with ``"meter.gap" = 0.01`` lines (others kept).

    A top-level ``scale = 2.0`` multiplies the base rates first. Any other key, a value
    that is not a number, an unknown kind or a rate outside 0..1 is refused with the
    file named (a misspelt key would otherwise be ignored without a word).
    """
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise FaultRateError(f"cannot read fault profile {path}: {exc}") from exc
    unknown = sorted(set(data) - {"scale", "rates"})
    if unknown:
        raise FaultRateError(f"{path}: unknown key(s) {', '.join(unknown)}; a profile has scale and [rates]")
    try:
        rates = base or FaultRates()
        if "scale" in data:
            rates = rates.scaled(_profile_number(data["scale"], "scale"))
        table = data.get("rates", {})
        if not isinstance(table, dict):
            raise FaultRateError("[rates] must be a table")
        return rates.with_rates({str(k): _profile_number(v, str(k)) for k, v in table.items()})
    except FaultRateError as exc:
        raise FaultRateError(f"{path}: {exc}") from None


def _profile_number(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FaultRateError(f"{name} must be a number, got {value!r}")
    return float(value)


# --- the schedule ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MeterFault:
    """A reading-level fault on one meter and day: readings ``slot .. slot + count - 1``.

    ``magnitude`` is kind-specific: spike factor, initial register of a replacement,
    the choice of wrong unit or of foreign enterprise.
    """

    kind: FaultKind
    meter: int
    day: int
    slot: int
    count: int
    magnitude: float


@dataclass(frozen=True, slots=True)
class GatewayFault:
    """A fault of one enterprise's gateway over ``[start_s, end_s)`` (epoch seconds).

    ``param_s``: clock offset (clock.skew) or delay after ``end_s`` before
    publishing (late burst, duplicate) [s].
    """

    kind: FaultKind
    enterprise: int
    day: int
    start_s: int
    end_s: int
    param_s: int


@dataclass(frozen=True, slots=True)
class Creep:
    """A night-time baseload creeping up over ``days`` days from ``start_day``, then fixed.

    ``amplitude``: extra night load at the end as a share of the meter's idle load [-].
    """

    meter: int
    start_day: int
    days: int
    amplitude: float


@dataclass(frozen=True, slots=True)
class YearFaults:
    year: int
    meter_faults: dict[int, list[MeterFault]]  # by day
    gateway_faults: dict[int, list[GatewayFault]]  # by day


def _applicable(meter: Meter, kind: FaultKind) -> bool:
    if kind in (FaultKind.TRANSIENT_ZERO, FaultKind.REPLACEMENT):
        return meter.is_register
    if kind is FaultKind.STUCK:
        return meter.is_register and meter.interval_s < DAY_S
    return True


def _race(
    seed: int,
    *,
    year: int,
    days: int,
    kinds: tuple[FaultKind, ...],
    rates: FaultRates,
    allowed: NDArray[np.bool_],
) -> NDArray[np.int64]:
    """Kind index per (row, day) cell, -1 where none: the smallest u/rate among kinds drawn."""
    rows = allowed.shape[0]
    best = np.full((rows, days), np.inf, dtype=np.float32)
    winner = np.full((rows, days), -1, dtype=np.int64)
    for k, kind in enumerate(kinds):
        rate = rates[kind]
        if rate <= 0:
            continue
        u = rng(seed, Stream.FAULTS, year, list(FaultKind).index(kind)).random((rows, days), dtype=np.float32)
        score = np.where(allowed[:, k, None] & (u < rate), u / np.float32(rate), np.float32(np.inf))
        better = score < best
        best = np.where(better, score, best)
        winner = np.where(better, k, winner)
    return winner


def year_faults(park: Park, rates: FaultRates, year: int) -> YearFaults:
    """The meter and gateway faults of ``year`` (days of that calendar year)."""
    cal = year_calendar(year)
    meters = park.meters
    allowed = np.array([[_applicable(m, k) for k in METER_KINDS] for m in meters], dtype=np.bool_)
    winner = _race(park.seed, year=year, days=cal.days, kinds=METER_KINDS, rates=rates, allowed=allowed)
    params = rng(park.seed, Stream.FAULT_PARAMS, year)
    by_day: dict[int, list[MeterFault]] = {}
    rows, cols = np.nonzero(winner >= 0)
    order = np.lexsort((rows, cols))
    draws = params.random((len(order), 3))
    for i, j in enumerate(order):
        m, d = int(rows[j]), int(cols[j])
        kind = METER_KINDS[int(winner[m, d])]
        by_day.setdefault(cal.day0 + d, []).append(_meter_fault(kind, meters[m], cal.day0 + d, draws[i]))
    g_allowed = np.ones((len(park.enterprises), len(GATEWAY_KINDS)), dtype=np.bool_)
    g_winner = _race(park.seed, year=year, days=cal.days, kinds=GATEWAY_KINDS, rates=rates, allowed=g_allowed)
    g_params = rng(park.seed, Stream.FAULT_PARAMS, year, 1)
    gateway: dict[int, list[GatewayFault]] = {}
    rows, cols = np.nonzero(g_winner >= 0)
    order = np.lexsort((rows, cols))
    g_draws = g_params.random((len(order), 3))
    for i, j in enumerate(order):
        e, d = int(rows[j]), int(cols[j])
        kind = GATEWAY_KINDS[int(g_winner[e, d])]
        gateway.setdefault(cal.day0 + d, []).append(_gateway_fault(kind, e, cal.day0 + d, g_draws[i]))
    return YearFaults(year, by_day, gateway)


def _meter_fault(kind: FaultKind, meter: Meter, day: int, u: NDArray[np.float64]) -> MeterFault:
    slots = DAY_S // meter.interval_s
    if kind is FaultKind.METER_GAP:
        count = 1 + int(u[0] * max(1, slots * 2 // 3))
    elif kind in (FaultKind.TRANSIENT_ZERO, FaultKind.UNAVAILABLE):
        count = 1 + int(u[0] * 3)
    elif kind is FaultKind.STUCK:
        count = slots // 6 + int(u[0] * slots // 3)
    elif kind in (FaultKind.MALFORMED, FaultKind.WRONG_UNIT, FaultKind.FOREIGN_TOPIC):
        count = 1 + int(u[0] * 8)
    else:  # spike, replacement
        count = 1
    count = max(1, min(count, slots - 1 if slots > 1 else 1))
    first = 1 if slots > 1 else 0
    slot = first + int(u[1] * (slots - count - first + 1))
    if kind is FaultKind.SPIKE:
        magnitude = 5.0 + 45.0 * float(u[2])
    elif kind is FaultKind.REPLACEMENT:
        magnitude = round(5.0 * float(u[2]), 1)  # initial register of the new meter
    else:
        magnitude = float(u[2])
    return MeterFault(kind, meter.index, day, slot, count, magnitude)


def _gateway_fault(kind: FaultKind, enterprise: int, day: int, u: NDArray[np.float64]) -> GatewayFault:
    if kind is FaultKind.GATEWAY_OFFLINE:
        duration, param = 3600 + int(u[0] * 11 * 3600), 0
    elif kind is FaultKind.LATE_BURST:
        duration, param = 3600 + int(u[0] * 7 * 3600), 60 + int(u[2] * 1740)
    elif kind is FaultKind.CLOCK_SKEW:
        duration = 2 * 3600 + int(u[0] * 18 * 3600)
        # Behind by up to an hour, or ahead by less than the collector's 5-minute future tolerance;
        # never a whole minute, so a skewed time never lands on another reading's slot.
        param = -(61 + int(u[2] * 3500)) if u[2] < 0.8 else 31 + int((u[2] - 0.8) * 1000)
        if param % 60 == 0:
            param += 7
    else:  # duplicate
        duration, param = 900 + int(u[0] * 3 * 3600), 10 + int(u[2] * 590)
    start = day_start_s(day) + int(u[1] * (DAY_S - duration))
    return GatewayFault(kind, enterprise, day, start, start + duration, param)


def main_meter(park: Park, enterprise: int) -> int | None:
    """The enterprise's EL-01 (the meter a baseload creep shows on)."""
    for i in park.enterprises[enterprise].meters:
        if park.meters[i].code == "EL-01":
            return i
    return None


def year_creeps(park: Park, rates: FaultRates, year: int, busy_until: dict[int, int]) -> list[Creep]:
    """Creeps starting in ``year``; ``busy_until`` (meter → first free day) is updated."""
    rate = rates[FaultKind.BASELOAD_CREEP]
    cal = year_calendar(year)
    mains = [m for e in range(len(park.enterprises)) if (m := main_meter(park, e)) is not None]
    gen = rng(park.seed, Stream.CREEP, year)
    u = gen.random((len(mains), cal.days))
    params = gen.random((len(mains), cal.days, 2))
    out: list[Creep] = []
    if rate <= 0:
        return out
    for row, meter in enumerate(mains):
        for d in np.nonzero(u[row] < rate)[0]:
            day = cal.day0 + int(d)
            if day < busy_until.get(meter, 0):
                continue
            days = 14 + int(params[row, d, 0] * 29)
            out.append(Creep(meter, day, days, 0.3 + 0.5 * float(params[row, d, 1])))
            busy_until[meter] = day + days
    return out


def rollover_days(park: Park, rates: FaultRates) -> NDArray[np.float64]:
    """Per meter, the day (fractional) its register is set to roll over; inf for none."""
    rate = rates[FaultKind.ROLLOVER]
    u = rng(park.seed, Stream.ROLLOVER).random((len(park.meters), 2))
    out = np.full(len(park.meters), np.inf)
    if rate <= 0:
        return out
    waits = np.floor(np.log(u[:, 0]) / math.log1p(-rate)) if rate < 1 else np.zeros(len(park.meters))
    for m in park.meters:
        if m.is_register and m.rollover is not None:
            out[m.index] = float(waits[m.index]) + 0.1 + 0.8 * float(u[m.index, 1])
    return out
