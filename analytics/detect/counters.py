"""Counter faults: suspicious resets, stuck registers, spikes and repeated conflicts. Pure.

The counter arithmetic (:mod:`analytics.intervals`) already decides what each reading of a
register is: accepted, or left out as a transient drop or spike; and what each step is:
regular, rollover, reset, replacement, unexplained break or refused. These rules turn its
decisions into findings for inspectors (DOMAIN.md §8; DESIGN.md "Analytics contract",
"counter faults"); nothing is re-derived here.

Kinds (subject ``meter:<enterprise code>/<meter code>``):

- ``counter.reset`` (warning): a drop of a register that no rollover modulus and no
  recorded replacement explains — readings near zero that return to the old level
  (a transient zero, at most :data:`~analytics.intervals.NEAR_ZERO_SHARE` of the level), a
  persisting reset to zero, an unexplained break. DOMAIN.md §8: "accept a reset only with
  corroboration". Rollovers by the modulus and recorded replacements are silent; a small dip
  that returns (a reading stamped early) is neither a reset nor a spike.
- ``counter.stuck`` (warning): a register repeating one value for at least
  :data:`STUCK_MIN_READINGS` readings and :data:`STUCK_MIN_S`, then jumping by what the
  meter consumes over the whole run (a catch-up, :data:`CATCHUP_SHARE`,
  :data:`CATCHUP_STEPS`); or, while the run lasts, at hours when the register moved on every
  one of the previous :data:`REFERENCE_DAYS` days (consumption and feedstock meters only:
  generation and export stop with the weather). A real stop (idle plant) has neither, so it
  is not reported; a catch-up across a gap or a replacement is no evidence.
- ``counter.spike`` (warning; critical when the arithmetic booked the excess as energy,
  which inflates the energy and intensity figures): a register reading that departs from
  the level and returns, or a register jump that persists, by at least :data:`SPIKE_SCORE`
  × rated capacity × max(elapsed, interval, :data:`SPIKE_MIN_SPAN_S`) (DOMAIN.md §8 "bound
  each delta by rated power × elapsed time"; the floor keeps clock skew of up to an hour
  silent); an interval reading above rated capacity × interval, or at least
  :data:`INTERVAL_SPIKE_RATIO` times the higher median of its neighbours on both sides
  (for a daily meter, the nearest days of its day class, working or not, on either side).
  A jump that a stuck register's run explains (plausible from the run's start, or after a
  run long enough to be stuck, below :data:`SPIKE_SCORE` × rated capacity over the run) is
  its catch-up, not a spike.
- ``counter.conflict`` (warning): at least :data:`CONFLICT_MIN` conflicting values
  (``ingest.reading_conflict``) for one meter and local day (Asia/Shanghai).

Times are float seconds since the Unix epoch (UTC), as in :mod:`analytics.intervals`.
Quantities in findings are in the meter's unit with the multiplier applied.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt

from analytics.detect.consumption import WORKING, day_classes
from analytics.detect.localtime import LOCAL_OFFSET_S
from analytics.findings import Finding, Severity, meter_subject
from analytics.intervals import (
    BREAK,
    GAP_FACTOR,
    NEAR_ZERO_SHARE,
    PERSIST_READINGS,
    REFUSED,
    REGULAR,
    RESET,
    ROLLOVER,
    MeterSpec,
    MultiplierChange,
    Replacement,
    Steps,
    interval_steps,
    register_steps,
)

__all__ = [
    "CONFLICT_MIN",
    "INTERVAL_SPIKE_RATIO",
    "KINDS",
    "REFERENCE_DAYS",
    "SPIKE_MIN_SPAN_S",
    "SPIKE_SCORE",
    "STUCK_MIN_READINGS",
    "STUCK_MIN_S",
    "Conflict",
    "CounterMeter",
    "FlatRun",
    "Reference",
    "compute_steps",
    "conflict_findings",
    "interval_findings",
    "ongoing_flat_run",
    "reference_movement",
    "register_findings",
]

Floats = npt.NDArray[np.float64]

RESET_KIND, STUCK_KIND, SPIKE_KIND, CONFLICT_KIND = (
    "counter.reset",
    "counter.stuck",
    "counter.spike",
    "counter.conflict",
)
KINDS = (RESET_KIND, STUCK_KIND, SPIKE_KIND, CONFLICT_KIND)

STUCK_MIN_READINGS = 4
"""A stuck run repeats its value in at least this many readings after the first …"""
STUCK_MIN_S = 7200.0
"""… over at least this long [s] (first to last reading of the run)."""
CATCHUP_SHARE = 0.5
"""The step ending a stuck run holds at least this share of the consumption expected over
the run at the lower of the rates before and after it …"""
CATCHUP_STEPS = 2.0
"""… and at least this many ordinary steps at the higher of those rates, and this many times
the largest of the steps just before the run and just after the catch-up (so that the last
digit of a coarse register moving once after a night of no flow is not a catch-up)."""
RATE_STEPS = 4
"""Steps before the run and after the catch-up whose median rate is the meter's rate."""
REFERENCE_DAYS = 7
"""Previous days whose same hours tell whether the meter normally consumes then."""
REFERENCE_MIN_DAYS = 2
"""An ongoing run is judged only against at least this many reference days with data."""
MOVING_SHARE = 0.5
"""A reference day "moves" when the register changed in at least this share of its steps."""
SPIKE_MIN_SPAN_S = 3600.0
"""The plausible bound of an outlier is taken over at least this long [s] (and at least one
expected interval), so clock jitter of a few minutes never scores as a spike."""
SPIKE_SCORE = 3.0
"""A register outlier is a spike when it departs from the level by at least this many
times the rated capacity over max(elapsed, interval, :data:`SPIKE_MIN_SPAN_S`)."""
INTERVAL_SPIKE_RATIO = 3.0
"""An interval reading is a spike at this many times the higher median of its neighbours."""
INTERVAL_NEIGHBOURS = 3
"""Readings on each side whose median is an interval reading's neighbourhood."""
CONFLICT_MIN = 2
"""Conflicting values for one meter and local day that make a ``counter.conflict``."""
FALLBACK_RATE_FACTOR = 4.0
"""Without a rated capacity, the bound rate is this × the 90th percentile of the meter's
step rates in the window."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DAY_S = 86400.0
_MOVING_PURPOSES = ("consumption", "feedstock")  # generation and export stop with the weather


@dataclass(frozen=True, slots=True)
class CounterMeter:
    """A register or interval meter as the rules need it (registry.meter, registry.meter_event).

    Parameters
    ----------
    meter_id, enterprise_id, park_id : registry ids.
    enterprise_code, meter_code : the meter's identity (its subject).
    unit : the meter's unit (quantities in findings, multiplier applied).
    purpose : ``consumption``, ``generation``, ``export`` or ``feedstock``.
    spec : what the counter arithmetic needs.
    replacements, multiplier_changes : recorded events of the meter.
    """

    meter_id: int
    enterprise_code: str
    meter_code: str
    spec: MeterSpec
    unit: str = ""
    purpose: str = "consumption"
    enterprise_id: int | None = None
    park_id: int | None = None
    replacements: tuple[Replacement, ...] = ()
    multiplier_changes: tuple[MultiplierChange, ...] = ()

    @property
    def subject(self) -> str:
        """``meter:<enterprise code>/<meter code>``."""
        return meter_subject(self.enterprise_code, self.meter_code)


@dataclass(frozen=True, slots=True)
class FlatRun:
    """A run of one repeated register value: its first reading and its last reading [s]."""

    first_s: float
    last_s: float
    readings: int


@dataclass(frozen=True, slots=True)
class Reference:
    """How the register behaved at the same hours of the previous days.

    days : reference days with data over the span; moving : days on which it moved;
    low, high : least and most consumption over the span on those days [unit].
    """

    days: int
    moving: int
    low: float
    high: float

    @property
    def always_moving(self) -> bool:
        """The meter consumed at these hours on every reference day (at least two)."""
        return self.days >= REFERENCE_MIN_DAYS and self.moving == self.days


@dataclass(frozen=True, slots=True)
class Conflict:
    """One recorded conflicting value (``ingest.reading_conflict``) and the stored one."""

    meter_id: int
    ts_s: float
    value: float
    stored: float | None


def _dt(epoch_s: float) -> datetime:
    return _EPOCH + timedelta(seconds=float(epoch_s))


def _iso(epoch_s: float) -> str:
    return _dt(epoch_s).isoformat()


def _num(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def _finding(
    meter: CounterMeter,
    kind: str,
    severity: Severity,
    *,
    started_s: float,
    ended_s: float | None,
    zh: str,
    en: str,
    unit: str | None = None,
    **values: Any,
) -> Finding:
    return Finding(
        kind=kind,
        severity=severity,
        subject=meter.subject,
        started_at=_dt(started_s),
        ended_at=None if ended_s is None else _dt(ended_s),
        summary_zh=zh,
        summary_en=en,
        enterprise_id=meter.enterprise_id,
        meter_id=meter.meter_id,
        park_id=meter.park_id,
        unit=meter.unit if unit is None else unit,
        **values,
    )


def _bound_rate_per_s(spec: MeterSpec, steps: Steps) -> tuple[float, str]:
    """Largest plausible rate [unit/s, multiplier applied] and where it comes from."""
    if spec.rated_capacity_per_h is not None:
        return spec.rated_capacity_per_h / 3600.0, "rated_capacity"
    dt = steps.reading_s - steps.start_s
    ok = (dt > 0) & (steps.kind == REGULAR) & (steps.quantity > 0)
    if not ok.any():
        return math.nan, "none"
    rate = float(np.percentile(steps.quantity[ok] / dt[ok], 90))
    return FALLBACK_RATE_FACTOR * rate, "observed_p90"


def _rate(steps: Steps, idx: Iterable[int]) -> float:
    """Median rate [unit/s] of the regular or rollover steps ending at ``idx``."""
    rates = [
        float(steps.quantity[j] / (steps.reading_s[j] - steps.start_s[j]))
        for j in idx
        if 0 < j < len(steps.kind)
        and steps.kind[j] in (REGULAR, ROLLOVER)
        and steps.reading_s[j] > steps.start_s[j]
    ]
    return float(np.median(rates)) if rates else math.nan


def _raw_rate(ts: Floats, vals: Floats) -> float:
    """Median rate [register unit/s] of the increasing consecutive readings."""
    if len(ts) < 2:
        return math.nan
    d, dt = np.diff(vals), np.diff(ts)
    ok = (d >= 0) & (dt > 0)
    return float(np.median(d[ok] / dt[ok])) if ok.any() else math.nan


def _flat_runs(steps: Steps, values_at: Floats) -> list[tuple[int, int]]:
    """Maximal runs [s, e] of accepted readings with one repeated register value."""
    if len(values_at) < 2:
        return []
    same = np.diff(values_at) == 0
    runs: list[tuple[int, int]] = []
    edges = np.flatnonzero(np.diff(np.concatenate(([0], same.astype(np.int8), [0]))))
    for start, stop in zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True):
        runs.append((int(start), int(stop)))  # readings start..stop share one value
    return runs


def _accepted_values(ts_s: Floats, values: Floats, steps: Steps) -> Floats:
    """Register values of the accepted readings (``steps.reading_s``)."""
    idx = np.searchsorted(ts_s, steps.reading_s)
    return np.asarray(values[idx], dtype=np.float64)


def _finite(ts_s: Floats, values: Floats) -> tuple[Floats, Floats]:
    ok = np.isfinite(values) & np.isfinite(ts_s)
    return np.asarray(ts_s[ok], dtype=np.float64), np.asarray(values[ok], dtype=np.float64)


def _series(meter: CounterMeter, ts_s: Floats, values: Floats) -> tuple[Floats, Floats]:
    """Finite readings; for a register, from the first of the leading readings that agrees
    with its successor (a non-negative step within the rated bound). The arithmetic trusts
    the first reading as the level, so a window must not begin on a transient zero or spike.
    """
    t, v = _finite(ts_s, values)
    if meter.spec.kind != "register":
        return t, v
    cap = meter.spec.rated_capacity_per_h
    m = meter.spec.multiplier
    start = 0
    while start < min(len(t) - 1, PERSIST_READINGS):
        d = v[start + 1] - v[start]
        if d >= 0 and (cap is None or d * m <= cap * (t[start + 1] - t[start]) / 3600 * (1 + 1e-9)):
            break
        start += 1
    return t[start:], v[start:]


def compute_steps(meter: CounterMeter, ts_s: Floats, values: Floats) -> Steps:
    """The counter arithmetic's steps for a meter's readings (finite values only)."""
    t, v = _series(meter, ts_s, values)
    if meter.spec.kind == "register":
        return register_steps(t, v, meter.spec, meter.replacements, meter.multiplier_changes)
    return interval_steps(t, v, meter.spec, meter.multiplier_changes)


def ongoing_flat_run(meter: CounterMeter, ts_s: Floats, values: Floats, steps: Steps) -> FlatRun | None:
    """The run of one repeated value that the register's readings end with, when it is long
    enough to be a stuck register (:data:`STUCK_MIN_READINGS`, :data:`STUCK_MIN_S`) and no
    undecided drop follows it; else None."""
    t, v = _series(meter, ts_s, values)
    if steps.pending_from_s is not None or len(steps.reading_s) < 2:
        return None
    acc = _accepted_values(t, v, steps)
    runs = _flat_runs(steps, acc)
    if not runs or runs[-1][1] != len(acc) - 1 or steps.reading_s[-1] != t[-1]:
        return None
    s, e = runs[-1]
    if e - s < STUCK_MIN_READINGS or steps.reading_s[e] - steps.reading_s[s] < STUCK_MIN_S:
        return None
    return FlatRun(float(steps.reading_s[s]), float(steps.reading_s[e]), e - s + 1)


def reference_movement(
    ts_s: Floats, values: Floats, run: FlatRun, multiplier: float = 1.0, days: int = REFERENCE_DAYS
) -> Reference:
    """How the register moved over the run's clock hours on each of the previous ``days``.

    A day has data when at least two readings fall in the shifted span and cover at least
    half of it; it moves when the register changed in at least :data:`MOVING_SHARE` of its
    steps there. ``low``/``high`` are the least and most increase over the span [unit].
    """
    t, v = _finite(ts_s, values)
    span = run.last_s - run.first_s
    with_data = moving = 0
    amounts: list[float] = []
    for k in range(1, days + 1):
        lo, hi = run.first_s - k * _DAY_S, run.last_s - k * _DAY_S
        inside = (t >= lo) & (t <= hi)
        tt, vv = t[inside], v[inside]
        if len(tt) < 2 or tt[-1] - tt[0] < 0.5 * span:
            continue
        d = np.diff(vv)
        with_data += 1
        if np.count_nonzero(d != 0) >= MOVING_SHARE * len(d):
            moving += 1
        amounts.append(float(np.sum(np.maximum(d, 0.0))) * multiplier)
    return Reference(
        with_data, moving, min(amounts) if amounts else math.nan, max(amounts) if amounts else math.nan
    )


def register_findings(
    meter: CounterMeter,
    ts_s: Floats,
    values: Floats,
    now_s: float,
    report_from_s: float,
    *,
    steps: Steps | None = None,
    reference: Reference | None = None,
    flat_origin: tuple[float, float] | None = None,
) -> list[Finding]:
    """Reset, stuck and spike findings of one register meter.

    Parameters
    ----------
    meter : the meter (kind ``register``).
    ts_s : reading times [s since epoch], strictly increasing, all <= ``now_s``.
    values : register values [register unit, before the multiplier]; non-finite = missing.
    now_s : the run's time [s since epoch].
    report_from_s : episodes that ended at or before this time are not reported [s].
    steps : :func:`compute_steps` of the same readings, when already computed.
    reference : the register's movement at the same hours of previous days, for the flat
        run the readings end with (:func:`ongoing_flat_run`, :func:`reference_movement`).
    flat_origin : when the readings begin inside a flat run, the times [s] of that run's
        first reading and first repeat before the readings (keeps ``started_at`` stable).
    """
    keep = ts_s <= now_s
    t, v = _series(meter, ts_s[keep], values[keep])
    if steps is None:
        steps = compute_steps(meter, t, v)
    if len(steps.reading_s) < 2:
        return []
    m = meter.spec.multiplier
    bound_rate, bound_source = _bound_rate_per_s(meter.spec, steps)
    interval = meter.spec.interval_s
    findings: list[Finding] = []

    def visible(end_s: float | None) -> bool:
        return end_s is None or end_s > report_from_s

    # 1. Readings the arithmetic left out: transient drops and spikes that returned.
    acc_t = steps.reading_s
    acc_v = _accepted_values(t, v, steps)
    accepted = np.isin(t, acc_t)
    pending = t >= steps.pending_from_s if steps.pending_from_s is not None else np.zeros(len(t), bool)
    left_out = np.flatnonzero(~accepted & ~pending)
    step_of = np.searchsorted(acc_t, t[left_out], side="right")
    runs = _flat_runs(steps, acc_v)
    # Flat runs by their last reading: (time of their first reading, their value, whether it
    # is long enough to be a stuck register). A run the readings begin with and whose start
    # the store did not find starts at the first reading at the latest: its span is a floor.
    run_from: dict[int, _Flat] = {}
    for s, e in runs:
        origin = s == 0 and flat_origin is not None
        first_s = flat_origin[0] if flat_origin is not None and origin else float(acc_t[s])
        readings = e - s + (1 if origin else 0)  # repeats of the value, as in rule 3
        long_enough = readings >= STUCK_MIN_READINGS and acc_t[e] - first_s >= STUCK_MIN_S
        run_from[e] = (first_s, float(acc_v[s]), bool(long_enough))
    for j in np.unique(step_of).tolist():
        if j <= 1 or j >= len(acc_t):
            continue  # the level must be a reading after the first (the first is unverified)
        group = left_out[step_of == j]
        findings.extend(
            _excursion(
                meter,
                ts=t[group],
                vals=v[group],
                acc_t=acc_t,
                acc_v=acc_v,
                j=j,
                run_from=run_from.get(j - 1),
                bound_rate=bound_rate,
                bound_source=bound_source,
                visible=visible,
            )
        )

    # 2. Steps the arithmetic classified: resets, breaks, refused jumps.
    for j in range(2, len(acc_t)):  # the first step starts at an unverified reading
        kind = int(steps.kind[j])
        if kind not in (RESET, BREAK, REFUSED) or not visible(float(acc_t[j])):
            continue
        before, after = float(acc_v[j - 1]), float(acc_v[j])
        if kind == REFUSED:
            if _catches_up(meter, run_from.get(j - 1), after, float(acc_t[j]), bound_rate):
                continue  # the catch-up of a stuck run: see rule 3
            findings.extend(
                _spike(
                    meter,
                    at_s=float(acc_t[j]),
                    end_s=float(acc_t[j]),
                    level=before,
                    observed=after,
                    level_t=float(acc_t[j - 1]),
                    bound_rate=bound_rate,
                    bound_source=bound_source,
                    persisting=True,
                )
            )
            continue
        nxt = float(acc_v[j + 1]) if j + 1 < len(acc_v) else None
        reset = kind == RESET
        zh = "寄存器清零且无换表记录" if reset else "寄存器无法解释的回落"
        en = "register reset to zero without a recorded replacement" if reset else "unexplained register drop"
        findings.append(
            _finding(
                meter,
                RESET_KIND,
                Severity.WARNING,
                started_s=float(acc_t[j]),
                ended_s=float(acc_t[j]),
                zh=f"{meter.meter_code} {zh}：{before * m:.6g} → {after * m:.6g} {meter.unit}",
                en=f"{meter.meter_code} {en}: {before * m:.6g} → {after * m:.6g} {meter.unit}",
                observed=after * m,
                expected_low=before * m,
                expected_high=_num(before * m + bound_rate * (acc_t[j] - acc_t[j - 1])),
                evidence={
                    "rule": "reset" if reset else "break",
                    "value_before": before * m,
                    "low_value": after * m,
                    "value_after": None if nxt is None else nxt * m,
                    "register_before": before,
                    "register_low": after,
                    "multiplier": m,
                    "readings": [_iso(acc_t[j])],
                    "before_at": _iso(acc_t[j - 1]),
                    "modulus": meter.spec.rollover,
                    "replacement_recorded": False,
                },
            )
        )

    # 3. Stuck: long runs of one value ended by a catch-up, or ongoing at hours the meter moves.
    for s, e in runs:
        first_s, second_s = float(acc_t[s]), float(acc_t[s + 1])
        if s == 0 and flat_origin is not None:
            first_s, second_s = flat_origin
        readings = e - s + (1 if s == 0 and flat_origin is not None else 0)  # repeats of the value
        if readings < STUCK_MIN_READINGS or acc_t[e] - first_s < STUCK_MIN_S:
            continue
        if s == 0 and flat_origin is None:
            continue  # began before the readings: its start is unknown
        value = float(acc_v[e])
        evidence: dict[str, Any] = {
            "value": value * m,
            "register_value": value,
            "multiplier": m,
            "run_start": _iso(first_s),
            "run_end": _iso(acc_t[e]),
            "readings": readings,
            "duration_s": float(acc_t[e] - first_s),
        }
        nxt = int(np.searchsorted(t, acc_t[e], side="right"))  # the raw reading after the run
        if nxt >= len(t):  # ongoing
            if meter.purpose not in _MOVING_PURPOSES:
                continue
            if reference is None or not reference.always_moving:
                continue
            evidence.update(
                rule="ongoing_at_moving_hours",
                reference_days=reference.days,
                reference_moving_days=reference.moving,
                catch_up=None,
            )
            hours = (acc_t[e] - first_s) / 3600
            findings.append(
                _finding(
                    meter,
                    STUCK_KIND,
                    Severity.WARNING,
                    started_s=second_s,
                    ended_s=None,
                    zh=f"{meter.meter_code} 读数停在 {value * m:.6g} {meter.unit} 已 {hours:.1f} 小时，"
                    f"前 {reference.days} 天同时段均有用量",
                    en=f"{meter.meter_code} register stuck at {value * m:.6g} {meter.unit} "
                    f"for {hours:.1f} h; it moved at these hours on each of the previous "
                    f"{reference.days} days",
                    observed=0.0,
                    expected_low=_num(reference.low),
                    expected_high=_num(reference.high),
                    score=float(reference.moving) / reference.days,
                    evidence=evidence,
                )
            )
            continue
        # The catch-up is the next reading as sent (the arithmetic may refuse it, or leave it
        # out as an excursion when the register later becomes plausible again).
        if t[nxt] - acc_t[e] > GAP_FACTOR * interval:
            continue  # the step spans a gap: the consumption may lie in the gap
        if any(acc_t[e] < r.effective_s <= t[nxt] for r in meter.replacements):
            continue  # a new register: not a catch-up
        delta = float(v[nxt] - value)
        if delta < 0:  # only a rollover by the modulus continues the register
            at = int(np.searchsorted(acc_t, t[nxt]))
            if at >= len(acc_t) or acc_t[at] != t[nxt] or int(steps.kind[at]) != ROLLOVER:
                continue
            delta += float(meter.spec.rollover or 0.0)
        catch = delta * m
        span = float(t[nxt] - first_s)
        rates = [
            r
            for r in (
                _rate(steps, range(s - RATE_STEPS + 1, s + 1)),
                _raw_rate(t[nxt : nxt + RATE_STEPS + 1], v[nxt : nxt + RATE_STEPS + 1]) * m,
            )
            if r > 0
        ]
        if catch <= 0 or not rates:
            continue
        low, high = min(rates) * span, max(rates) * span
        i0 = int(np.searchsorted(t, first_s))
        around = np.concatenate(
            (np.diff(v[max(0, i0 - RATE_STEPS) : i0 + 1]), np.diff(v[nxt : nxt + RATE_STEPS + 1]))
        )
        largest = float(np.max(around, initial=0.0)) * m  # the largest ordinary step nearby
        if catch < CATCHUP_SHARE * low or catch < CATCHUP_STEPS * max(max(rates) * interval, largest):
            continue  # an ordinary step after a real stop (or a register's last digit moving)
        if not visible(float(t[nxt])):
            continue
        evidence.update(
            rule="catch_up",
            catch_up=catch,
            catch_up_at=_iso(t[nxt]),
            rate_before_per_h=_num(rates[0] * 3600),
            expected_low=low,
            expected_high=high,
        )
        findings.append(
            _finding(
                meter,
                STUCK_KIND,
                Severity.WARNING,
                started_s=second_s,
                ended_s=float(acc_t[e]),
                zh=f"{meter.meter_code} 读数停在 {value * m:.6g} {meter.unit} 共 {readings} 次，"
                f"随后一步补回 {catch:.6g} {meter.unit}",
                en=f"{meter.meter_code} register stuck at {value * m:.6g} {meter.unit} "
                f"for {readings} readings, then caught up {catch:.6g} {meter.unit} in one step",
                observed=catch,
                expected_low=low,
                expected_high=high,
                score=catch / (max(rates) * interval),
                evidence=evidence,
            )
        )
    return sorted(findings, key=lambda f: (f.kind, f.started_at))


_Flat = tuple[float, float, bool]
"""A flat run: time of its first reading [s], its register value, long enough to be stuck."""


def _catches_up(
    meter: CounterMeter, flat: _Flat | None, observed: float, at_s: float, bound_rate: float
) -> bool:
    """Whether register value ``observed`` at ``at_s``, the first move after the flat run
    ``flat``, is that run's catch-up rather than a spike.

    It is when it is plausible from the run's first reading (rated capacity × time since
    then, DOMAIN.md §8); or, for a run long enough to be a stuck register
    (:data:`STUCK_MIN_READINGS`, :data:`STUCK_MIN_S`), when measured from the run's first
    reading it scores below :data:`SPIKE_SCORE`, the spike rule's own threshold: a register
    that stood still for hours delivers the consumption of all of them at once, and a meter
    may run a little above its rated capacity. Rule 3 reports such a run as ``counter.stuck``
    (in this run, or while it lasted in an earlier one); the same step must not be a spike too.
    """
    if flat is None or not math.isfinite(bound_rate) or bound_rate <= 0:
        return False
    first_s, value, long_enough = flat
    jump = (observed - value) * meter.spec.multiplier
    if jump <= bound_rate * (at_s - first_s) * (1 + 1e-9):
        return True
    span = max(at_s - first_s, meter.spec.interval_s, SPIKE_MIN_SPAN_S)
    return long_enough and jump < SPIKE_SCORE * bound_rate * span


def _excursion(
    meter: CounterMeter,
    *,
    ts: Floats,
    vals: Floats,
    acc_t: Floats,
    acc_v: Floats,
    j: int,
    run_from: _Flat | None,
    bound_rate: float,
    bound_source: str,
    visible: Callable[[float | None], bool],
) -> list[Finding]:
    """Readings left out before accepted reading j: transient drops and spikes.

    Readings above the level are a spike unless a flat run (``run_from``) ends at the level
    and they are its catch-up (:func:`_catches_up`): the stuck register catching up (rule 3).
    Readings below it are a transient zero (a ``counter.reset``) when near zero, else a
    downward spike when far enough.
    """
    m = meter.spec.multiplier
    level, back = float(acc_v[j - 1]), float(acc_v[j])
    level_t = float(acc_t[j - 1])
    found: list[Finding] = []
    if not visible(float(acc_t[j])):  # decided by the reading that returned to the level
        return found
    highs = vals > level
    if highs.any():
        hts, hvs = ts[highs], vals[highs]
        k = int(np.argmax(hvs))
        if not _catches_up(meter, run_from, float(hvs[k]), float(hts[k]), bound_rate):
            found += _spike(
                meter,
                at_s=float(hts[k]),
                end_s=float(hts[-1]),
                level=level,
                observed=float(hvs[k]),
                level_t=level_t,
                bound_rate=bound_rate,
                bound_source=bound_source,
                persisting=False,
                back=back,
                started_s=float(hts[0]),
                readings=[_iso(x) for x in hts],
            )
    lows = vals < level
    if not lows.any():
        return found
    lts, lvs = ts[lows], vals[lows]
    low = float(np.min(lvs))
    end_s = float(lts[-1])
    if low <= NEAR_ZERO_SHARE * level or low <= 0:
        # DOMAIN.md §8: devices briefly report 0; the low readings are missing, not a reset.
        found.append(
            _finding(
                meter,
                RESET_KIND,
                Severity.WARNING,
                started_s=float(lts[0]),
                ended_s=end_s,
                zh=f"{meter.meter_code} 寄存器短暂回零 {len(lts)} 次：{level * m:.6g} → {low * m:.6g} → "
                f"{back * m:.6g} {meter.unit}",
                en=f"{meter.meter_code} register dropped to {low * m:.6g} for {len(lts)} readings: "
                f"{level * m:.6g} → {low * m:.6g} → {back * m:.6g} {meter.unit}",
                observed=low * m,
                expected_low=level * m,
                expected_high=back * m,
                evidence={
                    "rule": "transient_drop",
                    "value_before": level * m,
                    "low_value": low * m,
                    "value_after": back * m,
                    "register_before": level,
                    "register_low": low,
                    "register_after": back,
                    "multiplier": m,
                    "readings": [_iso(x) for x in lts],
                    "before_at": _iso(level_t),
                    "after_at": _iso(acc_t[j]),
                },
            )
        )
        return found
    k = int(np.argmin(lvs))  # a downward outlier far from the level is a spike too
    return found + _spike(
        meter,
        at_s=float(lts[k]),
        end_s=end_s,
        level=level,
        observed=low,
        level_t=level_t,
        bound_rate=bound_rate,
        bound_source=bound_source,
        persisting=False,
        back=back,
        started_s=float(lts[0]),
        readings=[_iso(x) for x in lts],
    )


def _spike(
    meter: CounterMeter,
    *,
    at_s: float,
    end_s: float,
    level: float,
    observed: float,
    level_t: float,
    bound_rate: float,
    bound_source: str,
    persisting: bool,
    back: float | None = None,
    started_s: float | None = None,
    readings: Sequence[str] = (),
) -> list[Finding]:
    """A register outlier (or persisting jump) ``observed`` against ``level`` (register units)."""
    if not math.isfinite(bound_rate) or bound_rate <= 0:
        return []
    m = meter.spec.multiplier
    elapsed = at_s - level_t
    span = max(elapsed, meter.spec.interval_s, SPIKE_MIN_SPAN_S)
    excess = abs(observed - level) * m
    score = excess / (bound_rate * span)
    if score < SPIKE_SCORE:
        return []
    high = level * m + bound_rate * elapsed
    what_zh = "寄存器跳变后保持" if persisting else "读数尖峰后恢复"
    what_en = "register jumped and stayed" if persisting else "reading spiked and returned"
    return [
        _finding(
            meter,
            SPIKE_KIND,
            Severity.WARNING,
            started_s=at_s if started_s is None else started_s,
            ended_s=end_s,
            zh=f"{meter.meter_code} {what_zh}：{observed * m:.6g} {meter.unit}，合理上限 {high:.6g}"
            "（额定容量×时长），"
            f"为 {score:.1f} 倍",
            en=f"{meter.meter_code} {what_en}: {observed * m:.6g} {meter.unit}, plausible up to {high:.6g} "
            f"(rated capacity × elapsed), score {score:.1f}",
            observed=observed * m,
            expected_low=level * m,
            expected_high=high,
            score=score,
            evidence={
                "rule": "persisting_jump" if persisting else "outlier",
                "value_before": level * m,
                "value_after": None if back is None else back * m,
                "register_before": level,
                "register_observed": observed,
                "multiplier": m,
                "elapsed_s": elapsed,
                "bound_per_h": bound_rate * 3600,
                "bound_source": bound_source,
                "booked": False,
                "readings": list(readings) or [_iso(at_s)],
            },
        )
    ]


def interval_findings(
    meter: CounterMeter, ts_s: Floats, values: Floats, now_s: float, report_from_s: float
) -> list[Finding]:
    """Spike findings of one interval meter (each reading is an interval's consumption).

    A reading is a spike when the arithmetic refused it (above rated capacity × interval,
    DOMAIN.md §8), or when it is at least
    :data:`INTERVAL_SPIKE_RATIO` times the higher of the medians of the
    :data:`INTERVAL_NEIGHBOURS` readings before and after it (it returned: one reading after
    it at least). A daily (or longer) reading is one day's consumption, which depends on the
    day class (DOMAIN.md §5 working days as a driver, §6 weekday/weekend shifts): its
    neighbours are the nearest readings of days of its own class, working day or not
    (Saturday, Sunday, public holiday; 调休 weekends work), on either side that has them, so
    a working day between holidays is not a spike.
    A spike the arithmetic booked is critical: it inflates the energy figures.
    """
    t, v = _finite(ts_s, values)
    keep = (t <= now_s) & (v >= 0)
    t, v = t[keep], v[keep]
    steps = interval_steps(t, v, meter.spec, meter.multiplier_changes)
    m = meter.spec.multiplier
    cap = meter.spec.rated_capacity_per_h
    findings: list[Finding] = []
    n = len(t)
    working = _working_days(t - meter.spec.interval_s) if meter.spec.interval_s >= _DAY_S else None
    for i in range(n):
        if t[i] <= report_from_s:
            continue
        # Beyond capacity over the whole expected interval: a span shortened by clock jitter
        # (a reading stamped early) is the delivery detector's concern, not a spike.
        refused = int(steps.kind[i]) == REFUSED and (
            cap is None or v[i] * m > cap * meter.spec.interval_s / 3600 * (1 + 1e-9)
        )
        if working is None:
            before = v[max(0, i - INTERVAL_NEIGHBOURS) : i]
            after = v[i + 1 : i + 1 + INTERVAL_NEIGHBOURS]
            sides = len(before) > 0 and len(after) > 0
        else:  # a day's reading against the nearest days of its own class, either side
            same = np.flatnonzero(working == working[i])
            k = int(np.searchsorted(same, i))
            before = v[same[max(0, k - INTERVAL_NEIGHBOURS) : k]]
            after = v[same[k + 1 : k + 1 + INTERVAL_NEIGHBOURS]]
            sides = len(before) + len(after) > 0 and i + 1 < n  # it returned: a later reading
        ref = max(
            float(np.median(before)) if len(before) else 0.0, float(np.median(after)) if len(after) else 0.0
        )
        ratio = v[i] / ref if ref > 0 and sides else math.nan
        by_ratio = math.isfinite(ratio) and ratio >= INTERVAL_SPIKE_RATIO
        if not (refused or by_ratio):
            continue
        bound = cap * meter.spec.interval_s / 3600 if cap is not None else math.nan
        score = ratio if math.isfinite(ratio) else v[i] * m / bound
        severity = Severity.WARNING if refused else Severity.CRITICAL
        qty = v[i] * m
        findings.append(
            _finding(
                meter,
                SPIKE_KIND,
                severity,
                started_s=float(t[i]),
                ended_s=float(t[i]),
                zh=f"{meter.meter_code} 区间用量尖峰 {qty:.6g} {meter.unit}，邻近读数约 {ref * m:.6g}"
                + ("（已拒绝计入）" if refused else "（已计入能耗）"),
                en=f"{meter.meter_code} interval reading spike {qty:.6g} {meter.unit}, "
                f"neighbours about {ref * m:.6g}" + (" (refused)" if refused else " (booked)"),
                observed=qty,
                expected_low=_num(ref * m),
                expected_high=_num(bound),
                score=_num(score),
                evidence={
                    "rule": "refused" if refused else "neighbours",
                    "neighbour_median": ref * m,
                    "ratio_to_neighbours": _num(ratio),
                    "neighbour_days": None
                    if working is None
                    else ("working" if working[i] else "non_working"),
                    "capacity_bound": _num(bound),
                    "capacity_ratio": _num(qty / bound) if cap else None,
                    "booked": not refused,
                    "readings": [_iso(t[i])],
                },
            )
        )
    return findings


def _local_day(ts_s: float) -> int:
    return int((ts_s + LOCAL_OFFSET_S) // _DAY_S)


def _working_days(start_s: Floats) -> npt.NDArray[np.bool_]:
    """Whether the local day (Asia/Shanghai) of each interval start [s] is a working day.

    China calendar of the ``holidays`` package (国务院办公厅 notices), with the weekend days
    worked in exchange (调休) as working days, as :func:`analytics.detect.consumption.day_classes`.
    """
    if len(start_s) == 0:
        return np.zeros(0, dtype=np.bool_)
    days = np.array([_local_day(float(x)) for x in start_s], dtype=np.int64)
    first = int(days.min())
    classes = day_classes(_dt(first * _DAY_S).date(), int(days.max()) - first + 1)
    return np.asarray(classes[days - first] == WORKING, dtype=np.bool_)


def conflict_findings(
    meters: Mapping[int, CounterMeter], conflicts: Sequence[Conflict], now_s: float
) -> list[Finding]:
    """One ``counter.conflict`` per meter and local day with at least :data:`CONFLICT_MIN`
    conflicting values (DESIGN.md storage contract: a different value for an existing key is
    kept as a recorded conflict). Ended (``ended_at`` = last conflict) once the day is over."""
    groups: dict[tuple[int, int], list[Conflict]] = {}
    for c in conflicts:
        if c.meter_id in meters and c.ts_s <= now_s:
            groups.setdefault((c.meter_id, _local_day(c.ts_s)), []).append(c)
    findings: list[Finding] = []
    for (meter_id, day), rows in sorted(groups.items()):
        if len(rows) < CONFLICT_MIN:
            continue
        meter = meters[meter_id]
        ordered = sorted(rows, key=lambda c: (c.ts_s, c.value))
        day_end_s = (day + 1) * _DAY_S - LOCAL_OFFSET_S
        ended = float(ordered[-1].ts_s) if now_s >= day_end_s else None
        local = (_dt(day * _DAY_S)).date().isoformat()
        findings.append(
            _finding(
                meter,
                CONFLICT_KIND,
                Severity.WARNING,
                started_s=float(ordered[0].ts_s),
                ended_s=ended,
                zh=f"{meter.meter_code} 在 {local} 有 {len(ordered)} 个相互冲突的读数",
                en=f"{meter.meter_code} has {len(ordered)} conflicting readings on {local}",
                unit="readings",
                observed=float(len(rows)),
                expected_low=0.0,
                expected_high=float(CONFLICT_MIN - 1),
                evidence={
                    "local_day": local,
                    "conflicts": len(rows),
                    "unit_of_observed": "readings",
                    "examples": [
                        {"ts": _iso(c.ts_s), "value": c.value, "stored": c.stored} for c in ordered[:10]
                    ],
                },
            )
        )
    return findings
