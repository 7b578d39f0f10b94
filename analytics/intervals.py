"""Counter arithmetic: raw meter readings → energy per 15-minute bucket, pure and vectorised.

One meter at a time. Rules (DESIGN.md "Analytics contract", DOMAIN.md §8; docs/energy.md):

- Register meters (cumulative): the energy of a step between two accepted readings is the
  register delta × the multiplier in force over the step (``multiplier_change`` events
  change it from their ``effective_at``; a step crossing a change is weighted by time).
- A reading that is not a finite number is missing, never 0 (DOMAIN.md §8).
- A drop of the register is a reset only with corroboration (DOMAIN.md §8):
  a drop whose register returns to the old level within the persistence window is
  transient (the low readings are missing, not consumption); a drop that persists is a
  rollover when the meter has a modulus and the wrapped delta is plausible, a reset when
  the new value is near zero and counting goes on, otherwise an unexplained break whose
  step is not booked. A drop that stays flat at one value is a placeholder, treated as
  missing. A recorded replacement (``registry.meter_event``) joins the old register's
  ``final_register`` to the new one's ``initial_register``.
- A step above rated capacity × elapsed time (after the multiplier) is refused: flagged,
  not booked (DOMAIN.md §8 "bound each delta by rated power × elapsed time"). A single
  reading far above its neighbours that returns (a spike) is missing; its excess is flagged.
- A step longer than 1.5 expected intervals spans a gap: its energy is spread evenly over
  the gap and counted as estimated (DOMAIN.md §8 "Gaps are not zeros. Mark estimated").
  Steps are spread over buckets by time in any case; only gap steps are estimated.
- Interval meters: a reading is the consumption of the interval ending at its time.
- Gauges (instantaneous rates) are not energy and are not handled here.
- Coverage of a bucket: accepted readings ending in it / readings due in it at the
  meter's expected interval, capped at 1 (DOMAIN.md §8 "attach coverage to every KPI").

Times are float seconds since the Unix epoch (UTC). 15-minute buckets aligned on the epoch
are also aligned on local quarter hours in China (UTC+8, no DST).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

__all__ = [
    "BUCKET_S",
    "DEFAULT_INTERVAL_S",
    "GAP_FACTOR",
    "NEAR_ZERO_SHARE",
    "PERSIST_READINGS",
    "PERSIST_S",
    "BucketEnergy",
    "MeterSpec",
    "MultiplierChange",
    "Replacement",
    "Steps",
    "bucket_energy",
    "interval_steps",
    "meter_buckets",
    "register_steps",
]

Floats = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]
Ints = npt.NDArray[np.int64]

BUCKET_S = 900
"""Length of the finest bucket [s]."""
DEFAULT_INTERVAL_S = 900
"""Expected reporting interval when the registry gives none [s] (15-min metering)."""
GAP_FACTOR = 1.5
"""A step longer than this many expected intervals spans a gap (at least one reading missed)."""
PERSIST_READINGS = 4
"""A drop or jump must persist for this many readings …"""
PERSIST_S = 3600.0
"""… and this long [s] before it is believed (DOMAIN.md §8 "persisting")."""
NEAR_ZERO_SHARE = 0.01
"""A persisting drop to at most this share of the old register counts as a reset to zero."""
_REL_TOL = 1e-9

# Kinds of a step, in Steps.kind.
REGULAR, ROLLOVER, RESET, REPLACEMENT, BREAK, REFUSED = range(6)


@dataclass(frozen=True, slots=True)
class MeterSpec:
    """What the arithmetic needs to know about a meter (registry.meter).

    Parameters
    ----------
    kind : ``register`` or ``interval``.
    multiplier : multiplier in force before the first multiplier change [-].
    rollover : register modulus [unit, before the multiplier], or None.
    expected_interval_s : expected reporting interval [s], or None (then 900 s).
    rated_capacity_per_h : plausibility bound after the multiplier [unit/h], or None.
    """

    kind: str
    multiplier: float = 1.0
    rollover: float | None = None
    expected_interval_s: int | None = None
    rated_capacity_per_h: float | None = None

    @property
    def interval_s(self) -> float:
        """The expected reporting interval [s], defaulted."""
        return float(self.expected_interval_s or DEFAULT_INTERVAL_S)


@dataclass(frozen=True, slots=True)
class Replacement:
    """A recorded meter replacement: old register ended at ``final_register``, new started at
    ``initial_register`` [unit], effective at ``effective_s`` [s since epoch]."""

    effective_s: float
    final_register: float
    initial_register: float


@dataclass(frozen=True, slots=True)
class MultiplierChange:
    """From ``effective_s`` [s since epoch] on, register × ``multiplier`` = quantity."""

    effective_s: float
    multiplier: float


@dataclass(frozen=True, slots=True, eq=False)
class Steps:
    """Accepted readings of one meter and the energy of the step ending at each.

    Attributes
    ----------
    reading_s : times of the accepted readings [s], increasing.
    start_s : start of the step ending at each reading [s] (= reading_s for the first).
    quantity : booked energy of each step [unit, multiplier applied].
    flagged : refused energy attached to each step [unit].
    estimated : whether the step spans a gap (its quantity is estimated).
    kind : REGULAR, ROLLOVER, RESET, REPLACEMENT, BREAK (not booked) or REFUSED.
    pending_from_s : time of the first reading left undecided at the end (a drop or jump
        not yet persisting long enough), or None.
    """

    reading_s: Floats
    start_s: Floats
    quantity: Floats
    flagged: Floats
    estimated: Bools
    kind: Ints
    pending_from_s: float | None = None
    rejected: int = field(default=0)


def _mean_multiplier(a: Floats, b: Floats, changes: Sequence[MultiplierChange], base: float) -> Floats:
    """Time-weighted multiplier over each step (a, b]; at a point (a == b), the one in force.

    ``base`` is in force before the first change; each change from its ``effective_s`` on.
    """
    if not changes:
        return np.full(np.shape(a), base)
    ordered = sorted(changes, key=lambda c: c.effective_s)
    points = np.array([c.effective_s for c in ordered], dtype=np.float64)
    values = np.array([base] + [c.multiplier for c in ordered], dtype=np.float64)
    integral = np.concatenate(([0.0], np.cumsum(np.diff(points) * values[1:-1])))

    def cumulative(t: Floats) -> Floats:
        """∫ m dt from the first change to t (negative before it)."""
        k = np.searchsorted(points, t, side="right")  # values[k] is in force at t
        j = np.maximum(k - 1, 0)
        return np.where(k > 0, integral[j], 0.0) + (t - points[j]) * values[k]

    span = b - a
    at_point = values[np.searchsorted(points, a, side="right")]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (cumulative(b) - cumulative(a)) / span
    return np.where(span > 0, mean, at_point)


def _bound(spec: MeterSpec, dt_s: Floats | float) -> Floats:
    """Largest plausible quantity over ``dt_s`` [unit]; +inf without a rated capacity."""
    if spec.rated_capacity_per_h is None:
        return np.full(np.shape(dt_s), np.inf)
    return np.asarray(spec.rated_capacity_per_h * np.asarray(dt_s) / 3600.0, dtype=np.float64)


@dataclass
class _Walk:
    """Mutable state of the sequential pass over the irregular steps of one register.

    Only steps that are not plain increases within the rated bound come here, so the
    Python loop runs once per anomaly, not once per reading.
    """

    t: Floats
    v: Floats
    seg: Ints
    spec: MeterSpec
    changes: Sequence[MultiplierChange]
    replacements: Sequence[Replacement]
    accepted: Bools
    qty: Floats
    flagged: Floats
    kind: Ints
    start: Floats
    pending_from: float | None = None

    def mult(self, a: float, b: float) -> float:
        return float(_mean_multiplier(np.array([a]), np.array([b]), self.changes, self.spec.multiplier)[0])

    def plausible(self, level: float, ta: float, k: int) -> bool:
        """Reading k continues the register from ``level`` at ``ta`` within the rated bound."""
        delta = self.v[k] - level
        if delta < -_REL_TOL * max(1.0, abs(level)):
            return False
        energy = max(delta, 0.0) * self.mult(ta, self.t[k])
        return bool(energy <= float(_bound(self.spec, self.t[k] - ta)) * (1 + 1e-9))

    def segment_last(self, i: int) -> int:
        """Last index read by the same physical register as reading i."""
        return int(np.searchsorted(self.seg, self.seg[i], side="right")) - 1

    def window_end(self, i: int) -> int | None:
        """Last index of the persistence window after reading i, or None when the data ends
        inside it (not decidable yet). A recorded replacement closes the window early."""
        want = max(i + PERSIST_READINGS, int(np.searchsorted(self.t, self.t[i] + PERSIST_S, side="left")))
        last = self.segment_last(i)
        if want <= last:
            return want
        return last if last < len(self.t) - 1 else None

    def book(self, a: int, k: int, quantity: float, kind: int, flagged: float = 0.0) -> None:
        self.accepted[k] = True
        self.qty[k] = quantity
        self.flagged[k] += flagged
        self.kind[k] = kind
        self.start[k] = self.t[a]

    def previous(self, a: int) -> int | None:
        """The accepted reading before a, or None."""
        for j in range(a - 1, -1, -1):
            if self.accepted[j]:
                return j
        return None

    def join(self, a: int, i: int) -> None:
        """Step across recorded replacements: old register to its final value, new from its initial."""
        crossed = sorted(
            (r for r in self.replacements if self.t[a] < r.effective_s <= self.t[i]),
            key=lambda r: r.effective_s,
        )
        raw = max(crossed[0].final_register - self.v[a], 0.0)
        for before, after in itertools.pairwise(crossed):
            raw += max(after.final_register - before.initial_register, 0.0)
        raw += max(self.v[i] - crossed[-1].initial_register, 0.0)
        self.book(a, i, raw * self.mult(self.t[a], self.t[i]), REPLACEMENT)

    def continue_from(self, a: int, k: int) -> int:
        """Decide reading k after accepted reading a; returns the last index decided."""
        while True:
            if self.seg[k] != self.seg[a]:
                self.join(a, k)
                return k
            if self.plausible(self.v[a], self.t[a], k):
                self.book(a, k, max(self.v[k] - self.v[a], 0.0) * self.mult(self.t[a], self.t[k]), REGULAR)
                return k
            outcome = self.resolve(a, k)
            if outcome >= 0:
                return outcome
            k = -outcome  # readings before k were rejected; try k against a again
            if k >= len(self.t):
                return len(self.t) - 1

    def resolve(self, a: int, i: int) -> int:
        """Decide the implausible step (a, i]. Returns the last index decided, or −k when readings
        i..k−1 were rejected and reading k must be tried again against a."""
        level, ta, x = self.v[a], self.t[a], self.v[i]
        end = self.window_end(i)
        horizon = self.segment_last(i) if end is None else end
        for k in range(i + 1, horizon + 1):
            if self.plausible(level, ta, k):
                # Transient drop (0, placeholder) or spike: readings i..k-1 are missing (DOMAIN.md §8).
                m = self.mult(ta, self.t[k])
                high = float(np.max(self.v[i:k]))
                self.accepted[i:k] = False
                self.book(a, k, max(self.v[k] - level, 0.0) * m, REGULAR, flagged=max(high - level, 0.0) * m)
                return k
        if end is None:  # not persisting long enough yet: undecided, nothing booked
            self.pending_from = float(self.t[i])
            self.accepted[i:] = False
            return len(self.t) - 1
        m = self.mult(ta, self.t[i])
        dt = self.t[i] - ta
        if x > level:  # persisting jump beyond rated capacity: refused, new level
            self.book(a, i, 0.0, REFUSED, flagged=(x - level) * m)
            return i
        run_end = i
        while run_end + 1 <= self.segment_last(i) and self.v[run_end + 1] == x:
            run_end += 1
        if run_end >= end:  # drop to a flat placeholder value: missing (DOMAIN.md §8)
            if run_end == len(self.t) - 1:
                self.pending_from = float(self.t[i])
                self.accepted[i:] = False
                return run_end
            self.accepted[i : run_end + 1] = False
            return -(run_end + 1)
        before = self.previous(a)
        if (
            before is not None
            and self.kind[a] == REGULAR
            and self.seg[before] == self.seg[a]
            and self.v[before] <= x
            and self.plausible(self.v[before], self.t[before], i)
        ):  # reading a was the outlier (a spike booked without a rated bound): drop it
            high = self.v[a]
            self.accepted[a] = False
            self.qty[a] = 0.0
            mb = self.mult(self.t[before], self.t[i])
            self.book(before, i, (x - self.v[before]) * mb, REGULAR, flagged=(high - self.v[before]) * mb)
            return i
        modulus = self.spec.rollover
        if modulus is not None:
            wrapped = (x + modulus - level) * m
            limit = float(_bound(self.spec, dt)) if self.spec.rated_capacity_per_h else modulus / 2 * m
            if 0 <= wrapped <= limit:  # rollover by the registered modulus
                self.book(a, i, wrapped, ROLLOVER)
                return i
        if x <= NEAR_ZERO_SHARE * level and x * m <= float(_bound(self.spec, dt)):
            self.book(a, i, x * m, RESET)  # reset to zero, counting from there
            return i
        self.book(a, i, 0.0, BREAK)  # unexplained drop: the step is unknown, not booked
        return i


def register_steps(
    ts_s: Floats,
    values: Floats,
    spec: MeterSpec,
    replacements: Sequence[Replacement] = (),
    multiplier_changes: Sequence[MultiplierChange] = (),
) -> Steps:
    """Energy steps of a cumulative register (rules in the module docstring).

    Parameters
    ----------
    ts_s : reading times [s since epoch], strictly increasing.
    values : register values [unit, before the multiplier]; non-finite = missing.
    spec : the meter.
    replacements : recorded replacements of this meter.
    multiplier_changes : recorded multiplier changes of this meter.
    """
    ok = np.isfinite(values)
    t = np.asarray(ts_s[ok], dtype=np.float64)
    v = np.asarray(values[ok], dtype=np.float64)
    n = len(t)
    rep_times = np.array(sorted(r.effective_s for r in replacements), dtype=np.float64)
    seg = np.searchsorted(rep_times, t, side="right").astype(np.int64)
    start = t.copy()
    qty = np.zeros(n)
    flagged = np.zeros(n)
    kind = np.full(n, REGULAR, dtype=np.int64)
    accepted = np.ones(n, dtype=np.bool_)
    if n > 1:
        m = _mean_multiplier(t[:-1], t[1:], multiplier_changes, spec.multiplier)
        delta = np.diff(v)
        tol = _REL_TOL * np.maximum(1.0, np.abs(v[:-1]))
        energy = np.maximum(delta, 0.0) * m
        regular = (delta >= -tol) & (energy <= _bound(spec, np.diff(t)) * (1 + 1e-9)) & (seg[1:] == seg[:-1])
        qty[1:] = energy
        start[1:] = t[:-1]
        kind[0] = BREAK
        walk = _Walk(t, v, seg, spec, multiplier_changes, replacements, accepted, qty, flagged, kind, start)
        irregular = np.flatnonzero(~regular) + 1
        done, last = 0, 0  # readings <= done are decided; last = last accepted
        for i in irregular.tolist():
            if i <= done:
                continue
            a = i - 1 if i - 1 > done else last
            done = walk.continue_from(a, i)
            last = done if accepted[done] else last
            if walk.pending_from is not None:
                break
        pending = walk.pending_from
    else:
        kind[:] = BREAK
        pending = None
    keep = accepted
    reading_s = t[keep]
    steps_start = start[keep]
    quantity = qty[keep]
    refused = flagged[keep]
    kinds = kind[keep]
    if len(kinds):
        kinds[0] = BREAK  # the first accepted reading closes no step
        quantity[0] = 0.0
        steps_start[0] = reading_s[0]
    estimated = (reading_s - steps_start) > GAP_FACTOR * spec.interval_s
    estimated &= quantity > 0
    return Steps(reading_s, steps_start, quantity, refused, estimated, kinds, pending, int(n - keep.sum()))


def interval_steps(
    ts_s: Floats, values: Floats, spec: MeterSpec, multiplier_changes: Sequence[MultiplierChange] = ()
) -> Steps:
    """Energy steps of an interval meter: each reading is the consumption of the expected
    interval ending at its time [unit, before the multiplier].

    Negative or non-finite values are missing; a value above rated capacity × interval is
    refused (flagged, not booked). Missing intervals stay missing: no bounds to spread from.
    """
    ok = np.isfinite(values) & (values >= 0)
    t = np.asarray(ts_s[ok], dtype=np.float64)
    v = np.asarray(values[ok], dtype=np.float64)
    start = t - spec.interval_s
    if len(t) > 1:
        start[1:] = np.maximum(start[1:], t[:-1])  # never overlap the previous interval
    energy = v * _mean_multiplier(start, t, multiplier_changes, spec.multiplier)
    refused = energy > _bound(spec, t - start) * (1 + 1e-9)
    return Steps(
        reading_s=t,
        start_s=start,
        quantity=np.where(refused, 0.0, energy),
        flagged=np.where(refused, energy, 0.0),
        estimated=np.zeros(len(t), dtype=np.bool_),
        kind=np.where(refused, REFUSED, REGULAR).astype(np.int64),
        rejected=int((~ok).sum()),
    )


@dataclass(frozen=True, slots=True, eq=False)
class BucketEnergy:
    """Energy of one meter per bucket (the columns of analytics.energy_15min).

    bucket_s : bucket starts [s since epoch]; quantities in the meter's unit.
    """

    bucket_s: Floats
    quantity: Floats
    estimated_quantity: Floats
    flagged_quantity: Floats
    readings: Ints
    expected_readings: Ints
    coverage: Floats  # NaN where no reading was due


def bucket_energy(steps: Steps, interval_s: float, bucket_s: int = BUCKET_S) -> BucketEnergy:
    """Spread the steps over buckets by time and count readings per bucket.

    A step (start, end] gives each bucket the share of its energy that falls in the bucket
    (uniform in time). A reading ending at ``ts`` belongs to the bucket holding (ts − ε).
    Buckets span from the first step's start to the last reading.
    """
    t = steps.reading_s
    if len(t) == 0:
        empty = np.empty(0)
        return BucketEnergy(empty, empty, empty, empty, np.empty(0, np.int64), np.empty(0, np.int64), empty)
    first = (
        min(math.floor(float(np.min(steps.start_s)) / bucket_s), math.ceil(float(t[0]) / bucket_s) - 1)
        * bucket_s
    )
    last = (math.ceil(float(t[-1]) / bucket_s) - 1) * bucket_s
    edges = np.arange(first, last + 2 * bucket_s, bucket_s, dtype=np.float64)
    quantity = _spread(steps.start_s, t, steps.quantity, edges)
    estimated = _spread(steps.start_s, t, np.where(steps.estimated, steps.quantity, 0.0), edges)
    flagged = _spread(steps.start_s, t, steps.flagged, edges)
    # readings: ts in (edge_k, edge_k+1]
    counts = np.diff(np.searchsorted(t, edges, side="right")).astype(np.int64)
    due = (np.floor(edges[1:] / interval_s) - np.floor(edges[:-1] / interval_s)).astype(np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        coverage = np.where(due > 0, np.minimum(1.0, counts / np.maximum(due, 1)), np.nan)
    return BucketEnergy(edges[:-1], quantity, estimated, flagged, counts, due, coverage)


def _spread(start: Floats, end: Floats, amount: Floats, edges: Floats) -> Floats:
    """Sum over buckets of each step's amount spread uniformly over (start, end]."""
    points = amount != 0
    if not points.any():
        return np.zeros(len(edges) - 1)
    s, e, q = start[points], end[points], amount[points]
    instant = e <= s  # zero-length step: all of it at its end
    result = np.zeros(len(edges) - 1)
    if instant.any():
        idx = np.clip(np.searchsorted(edges, e[instant], side="left") - 1, 0, len(edges) - 2)
        np.add.at(result, idx, q[instant])
    s, e, q = s[~instant], e[~instant], q[~instant]
    if len(s):
        # Piecewise-linear cumulative energy: +rate on [s, e), summed over steps, evaluated at edges.
        rate = q / (e - s)
        knots = np.concatenate((s, e))
        slopes = np.concatenate((rate, -rate))
        order = np.argsort(knots, kind="stable")
        knots, slopes = knots[order], slopes[order]
        slope_after = np.cumsum(slopes)
        # cumulative value at each knot
        value_at = np.concatenate(([0.0], np.cumsum(slope_after[:-1] * np.diff(knots))))
        k = np.searchsorted(knots, edges, side="right") - 1
        inside = k >= 0
        kk = np.maximum(k, 0)
        cum = np.where(inside, value_at[kk] + slope_after[kk] * (edges - knots[kk]), 0.0)
        result += np.diff(cum)
    return result


def meter_buckets(
    ts_s: Floats,
    values: Floats,
    spec: MeterSpec,
    replacements: Sequence[Replacement] = (),
    multiplier_changes: Sequence[MultiplierChange] = (),
) -> tuple[BucketEnergy, Steps]:
    """Readings of one register or interval meter → its 15-minute buckets and its steps."""
    if spec.kind == "register":
        steps = register_steps(ts_s, values, spec, replacements, multiplier_changes)
    elif spec.kind == "interval":
        steps = interval_steps(ts_s, values, spec, multiplier_changes)
    else:
        raise ValueError(f"a {spec.kind} meter does not measure energy")
    return bucket_energy(steps, spec.interval_s), steps
