"""Readings, faults and ground truth, day by day. Pure and deterministic.

:class:`Generator` turns the park model into what its gateways send on each local
day: the readings delivered in gateway batches (some late, some twice), the
messages that the collector must quarantine, gateway status changes, meter
replacements and one ground-truth record per injected fault. Everything about a
day depends only on the seed, the rates and the day, so backfill and live mode
(which take days in different block sizes and from different starts) produce the
same readings.

Slot values: the noiseless 15-minute load of :mod:`simulators.daytable` times
(1 + ε), ε ~ N(0, 3 %) clipped to ±6 % and renormalised so that each day keeps its
day-table energy. Register meters read at the start of each slot; interval
meters report the slot's consumption at its end.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from typing import Any

import numpy as np
from numpy.typing import NDArray

from parkdata.carriers import MeterKind
from simulators.daytable import YearTable, build_year, pv_meters
from simulators.faults import (
    Creep,
    FaultKind,
    FaultRates,
    GatewayFault,
    MeterFault,
    YearFaults,
    rollover_days,
    year_creeps,
    year_faults,
)
from simulators.park import Meter, Park
from simulators.rng import Stream, rng
from simulators.shapes import NIGHT, OCCUPANCY, PROFILE_INDEX, pv_split, resample, solar_shape
from simulators.timebase import DAY_S, EPOCH_DATE, day_start_s, rfc3339, rfc3339_array

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]

NOISE_SD = 0.03
NOISE_CLIP = 0.06
CLASSES = (900, 3600, DAY_S)
UNAVAILABLE = "unavailable"
"""What a meter reports for a register it cannot read (DOMAIN.md §8)."""

_WRONG_UNITS: dict[str, tuple[str, str]] = {
    # carrier: (an unknown unit, a unit of another dimension)
    "electricity": ("度", "m3"),
    "natural_gas": ("方", "kWh"),
    "coke_oven_gas": ("方", "kWh"),
    "water": ("方", "kWh"),
    "steam": ("吨", "kWh"),
}
_WRONG_UNIT_DEFAULT = ("吨", "kWh")


# --- output records -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TruthRecord:
    """One injected fault, as written to the ground-truth JSONL file (times in epoch seconds)."""

    kind: FaultKind
    enterprise: str
    meter: str | None
    start_s: int
    end_s: int
    detail: dict[str, Any]

    def as_json(self) -> str:
        return json.dumps(
            {
                "kind": self.kind.value,
                "enterprise": self.enterprise,
                "meter": self.meter,
                "start": rfc3339(self.start_s),
                "end": rfc3339(self.end_s),
                "detail": self.detail,
            },
            ensure_ascii=False,
            sort_keys=False,
        )


@dataclass(frozen=True, slots=True)
class Replacement:
    """A meter replacement, as written to ``meter_events.csv``."""

    enterprise: str
    meter: str
    effective_s: float
    final_register: float
    initial_register: float


@dataclass(frozen=True, slots=True)
class Special:
    """A message of its own, outside the gateway batches: faulty (quarantined) input.

    ``publisher``: index of the enterprise whose gateway sends it.
    """

    kind: FaultKind
    publisher: int
    topic_enterprise: str
    topic_meter: str
    payload: bytes
    due_s: int
    reason: str
    readings: int


@dataclass(frozen=True, slots=True)
class StatusChange:
    enterprise: int
    at_s: int
    online: bool


@dataclass(slots=True)
class DayOutput:
    """What the gateways send for one day.

    ``meter, ts, value``: readings in gateway batches; ``group`` 0 for the normal
    upload (published at the reading's time), g > 0 for a deferred group published
    at ``group_due[g]`` (late burst or duplicate); ``duplicate`` marks copies of
    readings already sent.
    """

    day: int
    meter: IntArray
    ts: IntArray
    value: FloatArray
    group: IntArray
    duplicate: NDArray[np.bool_]
    group_due: dict[int, int]
    specials: list[Special] = field(default_factory=list)
    statuses: list[StatusChange] = field(default_factory=list)
    truth: list[TruthRecord] = field(default_factory=list)
    replacements: list[Replacement] = field(default_factory=list)

    @property
    def stored_readings(self) -> int:
        """Readings the collector stores: everything in gateway batches except duplicates."""
        return int(len(self.meter) - np.count_nonzero(self.duplicate))


# --- timeline -------------------------------------------------------------------------------


class Timeline:
    """Year tables and fault schedules from the epoch, built in order, the last two kept."""

    def __init__(self, park: Park, rates: FaultRates) -> None:
        self.park = park
        self.rates = rates
        self._tables: dict[int, YearTable] = {}
        self._faults: dict[int, YearFaults] = {}
        self._creeps: list[Creep] = []
        self._busy: dict[int, int] = {}
        self._last: YearTable | None = None

    def table(self, year: int) -> YearTable:
        if year < EPOCH_DATE.year:
            raise ValueError(f"the simulation starts in {EPOCH_DATE.year}, not {year}")
        if year in self._tables:
            return self._tables[year]
        if self._last is not None and year < self._last.calendar.year:
            self._tables.clear()
            self._creeps.clear()
            self._busy.clear()
            self._last = None
        first = self._last.calendar.year + 1 if self._last is not None else EPOCH_DATE.year
        for y in range(first, year + 1):
            self._creeps.extend(year_creeps(self.park, self.rates, y, self._busy))
            self._last = build_year(self.park, y, self._last, self._creeps)
            self._tables[y] = self._last
            for old in [k for k in self._tables if k < y - 1]:
                del self._tables[old]
        return self._tables[year]

    def faults(self, year: int) -> YearFaults:
        if year not in self._faults:
            if len(self._faults) > 3:
                self._faults.clear()
            self._faults[year] = year_faults(self.park, self.rates, year)
        return self._faults[year]


@lru_cache(maxsize=8192)
def year_of(day: int) -> int:
    """Calendar year of day number ``day`` (days since 2022-01-01)."""
    return date.fromordinal(EPOCH_DATE.toordinal() + day).year


@dataclass(frozen=True, slots=True)
class _ClassDay:
    """Slot energies of one interval class on one day."""

    meters: IntArray  # global meter indexes (rows)
    energy: FloatArray  # (rows, K) metered quantity per slot [unit]
    cum_slot: FloatArray  # (rows, K) metered quantity from the epoch to each slot start [unit]


@dataclass(slots=True)
class _Segment:
    start_s: float
    cum: float
    register: float


class Generator:
    """The simulated readings of a park, day by day.

    Parameters
    ----------
    park : Park
        The model (:func:`simulators.park.build_park`).
    rates : FaultRates
        Fault rates; :meth:`FaultRates.none` for clean data.
    prefix : str
        MQTT topic prefix of the special messages.
    """

    def __init__(self, park: Park, rates: FaultRates | None = None, prefix: str = "parkenergy/v1") -> None:
        self.park = park
        self.rates = rates if rates is not None else FaultRates()
        self.prefix = prefix
        self.timeline = Timeline(park, self.rates)
        self._classes = {
            c: np.array([m.index for m in park.meters if m.interval_s == c], dtype=np.int64) for c in CLASSES
        }
        self._row = {c: {int(m): r for r, m in enumerate(idx)} for c, idx in self._classes.items()}
        self._mult = np.array([m.multiplier for m in park.meters])
        self._modulus = np.array([m.rollover or np.inf for m in park.meters])
        self._decimals = np.array([m.resolution_decimals for m in park.meters], dtype=np.int64)
        self._register = np.array([m.is_register for m in park.meters], dtype=np.bool_)
        self._enterprise_of = np.array([m.enterprise_index for m in park.meters], dtype=np.int64)
        self._profile_of = np.array([PROFILE_INDEX[m.profile] for m in park.meters], dtype=np.int64)
        self._codes = {e.index: {park.meters[i].code for i in e.meters} for e in park.enterprises}
        self._segments: dict[int, list[_Segment]] = {}
        self._replacements: list[Replacement] = []
        self._replaced_until = 0
        self._class_cache: dict[tuple[int, int], _ClassDay] = {}
        self._emitted_creeps: set[tuple[int, int]] = set()
        self._reg0 = self._initial_registers()

    # -- registers -------------------------------------------------------------------------

    def _initial_registers(self) -> FloatArray:
        """Register at the epoch: set so that a scheduled rollover happens near its day."""
        table = self.timeline.table(EPOCH_DATE.year)
        daily = table.energy.mean(axis=1)
        when = rollover_days(self.park, self.rates)
        u = rng(self.park.seed, Stream.ROLLOVER, 1).random(len(self.park.meters))
        reg0 = np.zeros(len(self.park.meters))
        for m in self.park.meters:
            if not m.is_register or m.rollover is None:
                continue
            if math.isfinite(when[m.index]) and when[m.index] < 3650:
                reg0[m.index] = (-daily[m.index] * when[m.index] / m.multiplier) % m.rollover
            else:
                ten_years = daily[m.index] * 3650 / m.multiplier
                reg0[m.index] = (
                    u[m.index] * max(m.rollover - ten_years, 0.0)
                    if ten_years < m.rollover
                    else (u[m.index] * m.rollover)
                )
            reg0[m.index] = round(float(reg0[m.index]), m.resolution_decimals)
        return reg0

    def _unwrapped(self, meter: int, ts: FloatArray, cum: FloatArray) -> FloatArray:
        """Register value before the modulus at times ``ts`` with metered ``cum`` [register units]."""
        out = self._reg0[meter] + cum / self._mult[meter]
        for seg in self._segments.get(meter, ()):
            later = ts > seg.start_s
            out = np.where(later, seg.register + (cum - seg.cum) / self._mult[meter], out)
        return np.asarray(out, dtype=np.float64)

    def _display(self, meter: int, unwrapped: FloatArray) -> FloatArray:
        modulus = self._modulus[meter]
        shown = np.round(
            np.mod(unwrapped, modulus) if math.isfinite(modulus) else unwrapped, self._decimals[meter]
        )
        if math.isfinite(modulus):
            shown = np.where(shown >= modulus, 0.0, shown)
        return np.asarray(shown, dtype=np.float64)

    def replacements_until(self, day: int) -> list[Replacement]:
        """Every meter replacement before ``day`` (computing their registers in order)."""
        while self._replaced_until < day:
            d = self._replaced_until
            for fault in self._meter_faults(d):
                if fault.kind is FaultKind.REPLACEMENT:
                    self._replace(fault)
            self._replaced_until += 1
        return [r for r in self._replacements if r.effective_s < day_start_s(day)]

    def _replace(self, fault: MeterFault) -> Replacement:
        meter = self.park.meters[fault.meter]
        cd = self._class_day(fault.day, meter.interval_s)
        row = self._row[meter.interval_s][fault.meter]
        at = day_start_s(fault.day) + (fault.slot + 0.5) * meter.interval_s
        cum = float(cd.cum_slot[row, fault.slot] + 0.5 * cd.energy[row, fault.slot])
        final = float(
            self._display(fault.meter, self._unwrapped(fault.meter, np.array([at]), np.array([cum])))[0]
        )
        initial = round(fault.magnitude, meter.resolution_decimals)
        self._segments.setdefault(fault.meter, []).append(_Segment(at, cum, initial))
        record = Replacement(
            self.park.enterprises[meter.enterprise_index].code, meter.code, at, final, initial
        )
        self._replacements.append(record)
        return record

    # -- slot energies ---------------------------------------------------------------------

    def _meter_faults(self, day: int) -> list[MeterFault]:
        return self.timeline.faults(year_of(day)).meter_faults.get(day, [])

    def _gateway_faults(self, day: int) -> list[GatewayFault]:
        return self.timeline.faults(year_of(day)).gateway_faults.get(day, [])

    def _class_day(self, day: int, interval_s: int) -> _ClassDay:
        key = (day, interval_s)
        cached = self._class_cache.get(key)
        if cached is not None:
            return cached
        if len(self._class_cache) > 12:
            self._class_cache.clear()
        table = self.timeline.table(year_of(day))
        j = day - table.day0
        idx = self._classes[interval_s]
        slots = DAY_S // interval_s
        slot_h = interval_s / 3600
        ents = self._enterprise_of[idx]
        occ = resample(OCCUPANCY[self._profile_of[idx], table.daytype[ents, j]], interval_s)
        night = resample(NIGHT[None, :], interval_s)
        load0 = (
            table.lo[idx, j, None] + table.hi[idx, j, None] * occ + table.creep[idx, j, None] * night
        ) * slot_h
        noise = rng(self.park.seed, Stream.NOISE, interval_s, day).normal(0.0, NOISE_SD, (len(idx), slots))
        load = load0 * (1 + np.clip(noise, -NOISE_CLIP, NOISE_CLIP))
        total0, total = load0.sum(axis=1, keepdims=True), load.sum(axis=1, keepdims=True)
        load = np.where(total > 0, load * (total0 / np.where(total > 0, total, 1.0)), load0)
        if interval_s == 900:
            self._pv_slots(table, j, idx, load0, load)
        cum_start = table.cum_start(day)[idx]
        cum_slot = cum_start[:, None] + np.cumsum(load, axis=1) - load
        out = _ClassDay(idx, load, cum_slot)
        self._class_cache[key] = out
        return out

    def _pv_slots(self, table: YearTable, j: int, idx: IntArray, load0: FloatArray, load: FloatArray) -> None:
        """Rooftop PV: generation and export meters, and the grid import of the main incomer."""
        rows = self._row[900]
        shape = solar_shape(np.array([table.calendar.day_of_year[j]]))[0]
        for row, e in enumerate(table.pv.enterprises):
            ent = self.park.enterprises[int(e)]
            site, (gen_meter, export_meter) = ent.meters[0], pv_meters(self.park, int(e))
            gen = table.pv.generation_kwh[row, j] * shape
            own, export = pv_split(load0[rows[site]], gen)
            load[rows[site]] = load[rows[site]] - own
            load[rows[gen_meter]] = gen
            load[rows[export_meter]] = export

    # -- a day -----------------------------------------------------------------------------

    def day(self, day: int) -> DayOutput:
        """Everything the gateways send for local day ``day`` (days since 2022-01-01)."""
        self.replacements_until(day)
        start = day_start_s(day)
        parts_m, parts_ts, parts_v = [], [], []
        offsets: dict[int, tuple[int, int]] = {}  # meter -> (first flat index, readings)
        position = 0
        truth: list[TruthRecord] = []
        replacements: list[Replacement] = []
        faults = self._meter_faults(day)
        for fault in faults:
            if fault.kind is FaultKind.REPLACEMENT:
                replacements.append(self._replace(fault))
                truth.append(self._replacement_truth(replacements[-1], fault))
        self._replaced_until = max(self._replaced_until, day + 1)
        for interval_s in CLASSES:
            cd = self._class_day(day, interval_s)
            if not len(cd.meters):
                continue
            slots = DAY_S // interval_s
            rows = len(cd.meters)
            k = np.arange(slots)
            register = self._register[cd.meters]
            ts = start + np.where(register[:, None], k[None, :], k[None, :] + 1) * interval_s
            unwrapped = self._unwrapped_rows(cd.meters, ts, cd.cum_slot)
            values = np.where(register[:, None], unwrapped, cd.energy)
            values = self._shown_rows(cd.meters, values)
            truth.extend(self._rollovers(day, interval_s, cd, ts, unwrapped))
            for row, meter in enumerate(cd.meters.tolist()):
                offsets[meter] = (position + row * slots, slots)
            position += rows * slots
            parts_m.append(np.repeat(cd.meters, slots))
            parts_ts.append(ts.reshape(-1).astype(np.int64))
            parts_v.append(values.reshape(-1))
        out = DayOutput(
            day=day,
            meter=np.concatenate(parts_m) if parts_m else np.zeros(0, np.int64),
            ts=np.concatenate(parts_ts) if parts_ts else np.zeros(0, np.int64),
            value=np.concatenate(parts_v) if parts_v else np.zeros(0),
            group=np.zeros(position, dtype=np.int64),
            duplicate=np.zeros(position, dtype=np.bool_),
            group_due={},
            truth=truth,
            replacements=replacements,
        )
        keep = np.ones(position, dtype=np.bool_)
        gateway = self._gateway_faults(day)
        windows = {
            g.enterprise: (g.start_s, g.end_s)
            for g in gateway
            if g.kind in (FaultKind.GATEWAY_OFFLINE, FaultKind.LATE_BURST, FaultKind.CLOCK_SKEW)
        }
        for fault in faults:
            if fault.kind is FaultKind.REPLACEMENT:
                continue
            first, _ = offsets[fault.meter]
            span = np.arange(first + fault.slot, first + fault.slot + fault.count)
            window = windows.get(int(self._enterprise_of[fault.meter]))
            ts_span = out.ts[span]
            if window is not None and np.any((ts_span >= window[0]) & (ts_span < window[1])):
                continue  # the gateway's own fault hides this one
            self._apply_meter_fault(out, keep, fault, span)
        for g in gateway:
            self._apply_gateway_fault(out, keep, g)
        self._creep_truth(day, out)
        self._compact(out, keep)
        return out

    def _compact(self, out: DayOutput, keep: NDArray[np.bool_]) -> None:
        base = len(keep)
        extra = len(out.meter) - base
        full_keep = np.concatenate([keep, np.ones(extra, dtype=np.bool_)]) if extra else keep
        out.meter, out.ts, out.value = out.meter[full_keep], out.ts[full_keep], out.value[full_keep]
        out.group, out.duplicate = out.group[full_keep], out.duplicate[full_keep]

    # -- truth helpers ---------------------------------------------------------------------

    def _record(
        self, kind: FaultKind, meter: int | None, enterprise: int, start_s: int, end_s: int, **detail: Any
    ) -> TruthRecord:
        code = self.park.enterprises[enterprise].code
        meter_code = self.park.meters[meter].code if meter is not None else None
        return TruthRecord(kind, code, meter_code, int(start_s), int(end_s), detail)

    def _replacement_truth(self, r: Replacement, fault: MeterFault) -> TruthRecord:
        return self._record(
            FaultKind.REPLACEMENT,
            fault.meter,
            int(self._enterprise_of[fault.meter]),
            int(r.effective_s),
            int(r.effective_s),
            effective_at=rfc3339(r.effective_s),
            final_register=r.final_register,
            initial_register=r.initial_register,
        )

    def _unwrapped_rows(self, meters: IntArray, ts: IntArray, cum: FloatArray) -> FloatArray:
        """:meth:`_unwrapped` for rows of meters at once (rows without registers give garbage)."""
        out = self._reg0[meters, None] + cum / self._mult[meters, None]
        for row, meter in enumerate(meters.tolist()):
            if meter in self._segments:
                out[row] = self._unwrapped(meter, ts[row].astype(np.float64), cum[row])
        return np.asarray(out, dtype=np.float64)

    def _shown_rows(self, meters: IntArray, values: FloatArray) -> FloatArray:
        """Registers modulo their rollover; every value rounded to the meter's decimals."""
        modulus = self._modulus[meters, None]
        finite = np.isfinite(modulus)
        out = np.where(finite, np.mod(values, np.where(finite, modulus, 1.0)), values)
        decimals = self._decimals[meters]
        for d in np.unique(decimals).tolist():
            rows = decimals == d
            out[rows] = np.round(out[rows], d)
        out = np.where(finite & (out >= modulus), 0.0, out)
        return np.asarray(out, dtype=np.float64)

    def _rollovers(
        self, day: int, interval_s: int, cd: _ClassDay, ts: IntArray, unwrapped: FloatArray
    ) -> list[TruthRecord]:
        """A register passing its modulus, between two consecutive readings (the day's first
        reading is compared with the previous day's last)."""
        modulus = self._modulus[cd.meters]
        rows = np.isfinite(modulus) & self._register[cd.meters]
        if not rows.any():
            return []
        series = unwrapped
        first_ts = ts[:, :1]
        if day > 0:
            prev = self._class_day(day - 1, interval_s)
            prev_u = self._unwrapped_rows(cd.meters, first_ts - interval_s, prev.cum_slot[:, -1:])
            series = np.concatenate([prev_u, unwrapped], axis=1)
            ts = np.concatenate([first_ts - interval_s, ts], axis=1)
        turns = np.floor(series / np.where(rows, modulus, 1.0)[:, None])
        hits = np.argwhere((np.diff(turns, axis=1) > 0) & rows[:, None])
        out = []
        for row, i in hits.tolist():
            meter = int(cd.meters[row])
            before, after = int(ts[row, i]), int(ts[row, i + 1])
            # A replacement starts a new register: its drop is not a rollover.
            if any(before < s.start_s <= after for s in self._segments.get(meter, ())):
                continue
            shown = self._display(meter, series[row, i : i + 2])
            out.append(
                self._record(
                    FaultKind.ROLLOVER,
                    meter,
                    int(self._enterprise_of[meter]),
                    before,
                    after,
                    modulus=float(modulus[row]),
                    before=float(shown[0]),
                    after=float(shown[1]),
                )
            )
        return out

    def _creep_truth(self, day: int, out: DayOutput) -> None:
        table = self.timeline.table(year_of(day))
        for c in table.creeps:
            key = (c.meter, c.start_day)
            if key in self._emitted_creeps or not c.start_day <= day < c.start_day + c.days:
                continue
            self._emitted_creeps.add(key)
            meter = self.park.meters[c.meter]
            out.truth.append(
                self._record(
                    FaultKind.BASELOAD_CREEP,
                    c.meter,
                    meter.enterprise_index,
                    day_start_s(c.start_day),
                    day_start_s(c.start_day + c.days) - 900,
                    days=c.days,
                    amplitude=round(c.amplitude, 3),
                    extra_load_per_h_at_end=round(meter.peak_per_h * meter.base_share * c.amplitude, 1),
                    unit_per_h=f"{meter.unit}/h",
                )
            )

    # -- faults ----------------------------------------------------------------------------

    def _apply_meter_fault(
        self, out: DayOutput, keep: NDArray[np.bool_], fault: MeterFault, span: IntArray
    ) -> None:
        meter = self.park.meters[fault.meter]
        e = meter.enterprise_index
        ts = out.ts[span]
        kind = fault.kind
        start, end = int(ts[0]), int(ts[-1])
        if kind is FaultKind.METER_GAP:
            keep[span] = False
            out.truth.append(self._record(kind, fault.meter, e, start, end, readings=len(span)))
        elif kind is FaultKind.TRANSIENT_ZERO:
            out.value[span] = 0.0
            out.truth.append(self._record(kind, fault.meter, e, start, end, readings=len(span)))
        elif kind is FaultKind.STUCK:
            held = float(out.value[span[0] - 1])
            out.value[span] = held
            out.truth.append(self._record(kind, fault.meter, e, start, end, readings=len(span), value=held))
        elif kind is FaultKind.SPIKE:
            true = float(out.value[span[0]])
            out.value[span[0]] = self._spike(meter, true, fault.magnitude)
            out.truth.append(
                self._record(
                    kind, fault.meter, e, start, end, value=float(out.value[span[0]]), true_value=true
                )
            )
        else:
            keep[span] = False
            out.specials.append(self._special(kind, meter, ts, out.value[span], fault.magnitude))
            special = out.specials[-1]
            topic = f"{self.prefix}/{special.topic_enterprise}/{special.topic_meter}"
            out.truth.append(
                self._record(
                    kind, fault.meter, e, start, end, readings=len(span), reason=special.reason, topic=topic
                )
            )

    def _spike(self, meter: Meter, value: float, factor: float) -> float:
        if meter.kind is MeterKind.INTERVAL:
            return round(value * factor, meter.resolution_decimals)
        jump = factor * meter.rated_capacity_per_h * 24 / meter.multiplier
        modulus = meter.rollover or math.inf
        spiked = value + jump if value + jump < modulus else max(0.0, value - jump)
        return round(spiked, meter.resolution_decimals)

    def _special(self, kind: FaultKind, meter: Meter, ts: IntArray, values: FloatArray, u: float) -> Special:
        enterprise = self.park.enterprises[meter.enterprise_index]
        stamps = rfc3339_array(ts)
        unit = meter.unit
        topic_enterprise, reason = enterprise.code, ""
        if kind is FaultKind.UNAVAILABLE:
            items: list[dict[str, object]] = [{"ts": t, "value": UNAVAILABLE, "unit": unit} for t in stamps]
            reason = "value.not_numeric"
        else:
            if kind is FaultKind.WRONG_UNIT:
                unknown, other = _WRONG_UNITS.get(meter.carrier, _WRONG_UNIT_DEFAULT)
                unit, reason = (unknown, "unit.unknown") if u < 0.5 else (other, "unit.not_convertible")
            items = [{"ts": t, "value": float(v), "unit": unit} for t, v in zip(stamps, values, strict=True)]
        if kind is FaultKind.FOREIGN_TOPIC:
            topic_enterprise, reason = self._foreign(meter, u)
        payload = json.dumps({"readings": items}, ensure_ascii=False).encode("utf-8")
        if kind is FaultKind.MALFORMED:
            payload = payload[: max(1, int(len(payload) * (0.3 + 0.5 * u)))]
            reason = "payload.undecodable"
        return Special(
            kind,
            meter.enterprise_index,
            topic_enterprise,
            meter.code,
            payload,
            int(ts[-1]) + 5,
            reason,
            len(ts),
        )

    def _foreign(self, meter: Meter, u: float) -> tuple[str, str]:
        """Another registered enterprise without this meter code; else an unregistered one."""
        candidates = [
            e.code
            for e in self.park.enterprises
            if e.index != meter.enterprise_index and meter.code not in self._codes[e.index]
        ]
        if candidates:
            return candidates[int(u * len(candidates))], "registry.meter_not_owned"
        return "91420700MA4ZZZZZ0X", "registry.unknown_enterprise"

    def _apply_gateway_fault(self, out: DayOutput, keep: NDArray[np.bool_], g: GatewayFault) -> None:
        base = len(keep)
        mine = np.zeros(len(out.meter), dtype=np.bool_)
        mine[:base] = keep & (self._enterprise_of[out.meter[:base]] == g.enterprise)
        hit = np.nonzero(mine & (out.ts >= g.start_s) & (out.ts < g.end_s))[0]
        if len(hit) == 0:
            return
        start, end = int(out.ts[hit].min()), int(out.ts[hit].max())
        window = {"window_start": rfc3339(g.start_s), "window_end": rfc3339(g.end_s)}
        offline = [StatusChange(g.enterprise, g.start_s, False), StatusChange(g.enterprise, g.end_s, True)]

        def truth(**detail: Any) -> None:
            """The fault's ground-truth record: the readings hit, ``detail`` and the window."""
            out.truth.append(
                self._record(g.kind, None, g.enterprise, start, end, readings=len(hit), **detail, **window)
            )

        if g.kind is FaultKind.GATEWAY_OFFLINE:
            keep[hit] = False
            out.statuses += offline
            truth()
        elif g.kind is FaultKind.LATE_BURST:
            group = len(out.group_due) + 1
            out.group[hit] = group
            out.group_due[group] = g.end_s + g.param_s
            out.statuses += offline
            truth(published_at=rfc3339(g.end_s + g.param_s))
        elif g.kind is FaultKind.CLOCK_SKEW:
            out.ts[hit] += g.param_s
            truth(offset_s=g.param_s)
        else:  # duplicate: the window's readings are delivered a second time
            group = len(out.group_due) + 1
            out.group_due[group] = g.end_s + g.param_s
            out.meter = np.concatenate([out.meter, out.meter[hit]])
            out.ts = np.concatenate([out.ts, out.ts[hit]])
            out.value = np.concatenate([out.value, out.value[hit]])
            out.group = np.concatenate([out.group, np.full(len(hit), group, dtype=np.int64)])
            out.duplicate = np.concatenate([out.duplicate, np.ones(len(hit), dtype=np.bool_)])
            truth(published_at=rfc3339(g.end_s + g.param_s))

    # -- iteration -------------------------------------------------------------------------

    def days(self, first: int, last: int) -> Iterator[DayOutput]:
        """Days ``first`` .. ``last - 1`` in order."""
        for d in range(first, last):
            yield self.day(d)


def year_tables(park: Park, rates: FaultRates, last_year: int) -> Iterator[YearTable]:
    """The year tables from 2022 to ``last_year``, built in order (one held at a time)."""
    timeline = Timeline(park, rates)
    for year in range(EPOCH_DATE.year, last_year + 1):
        yield timeline.table(year)
