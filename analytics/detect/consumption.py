"""Consumption far from its expected profile, and night baseload creep. Pure.

Two rules over one meter's interval energy (DESIGN.md "Analytics contract": consumption far
from its expected profile with seasonal/calendar regression and robust residual scores;
night/weekend baseload creep). Gaps are not zeros (DOMAIN.md §8): buckets with coverage
below 1, with estimated (spread) energy or with refused deltas are missing (NaN) here, and
so are exact zeros of a register with readings (a stuck register belongs to
``counter.stuck``, a spike to ``counter.spike``).

``consumption.anomaly`` (:func:`hourly_anomalies`)
    The expected hourly energy of a local day comes from an OLS fit (statsmodels) of the
    log hourly energy of the previous :attr:`AnomalyRules.reference_days` days on hour of
    day × day class (working day; non-working Saturday; Sunday; public holiday — holidays
    and the weekend days worked in exchange (调休) from the ``holidays`` CN calendar,
    国务院办公厅 annual notices) plus a linear trend: seasons and activity scale a plant's
    load, so the model is multiplicative. Reference hours that the cell medians score
    beyond the threshold (stops, festival shutdowns) are left out of the fit. The fit is
    then shifted to the median residual of the last :attr:`AnomalyRules.level_days` days
    (a season or harvest step is followed within days). Score = log residual / (1.4826 ×
    MAD of the fit's residuals at the same hour of day, at least
    :attr:`AnomalyRules.scale_floor`). A finding is a run of at least
    :attr:`AnomalyRules.min_hours` consecutive valid hours scored beyond
    ±:attr:`AnomalyRules.z` in the same direction whose energy differs from the expected
    by at least :attr:`AnomalyRules.min_deviation`. Not reported: a low run at or below
    the meter's idle level (5th percentile of its reference hours, + ``min_deviation``) —
    a maintenance stop or a festival shutdown is a real but planned deviation, not a
    fault — and a high run that
    stays within the highest energy the meter showed at the same hours of the reference
    weeks (+ ``min_deviation``): a restart after a stop, work on a day off. Severity
    warning; critical when the run's median |score| ≥ :attr:`AnomalyRules.critical_z` and
    its deviation ≥ :attr:`AnomalyRules.critical_deviation`.

``consumption.baseload_creep`` (:func:`baseload_creep`)
    Per local day, the night baseload N = the mean 15-minute energy of 00:00–06:00 (the
    part of the night 22:00–06:00 that no shift reaches) and the evening level S = that
    of 20:00–22:00 (after sunset: no PV). A creep is a ramp in log N that starts
    on day s, rises linearly and lasts to now (ongoing) or drops back on day e, with a term
    per day class (a plant's night differs between working days, Saturdays, Sundays and
    holidays): among the rising ramps of at least :attr:`CreepRules.min_ramp_days` days
    that start after at least :attr:`CreepRules.reference_days` days, the (s, e) pair of
    least BIC. Its reference is every other day (at least ``reference_days`` valid), or the
    days from a cut on, when an earlier episode (a creep that dropped back) still fills the
    window: the days before the cut get a level of their own (two parameters in the BIC;
    at least :attr:`CreepRules.clean_days` valid days on each side of the cut). It is
    reported when the ramp's slope is significant in a statsmodels OLS with HAC
    (Newey–West) errors (t ≥ :attr:`CreepRules.t_min`), the rise at its end is at least
    :attr:`CreepRules.rise_min` of the reference baseload, a step fits no better than the
    ramp, and log(N/S) rises too
    (t ≥ :attr:`CreepRules.ratio_t_min`, rise ≥ :attr:`CreepRules.ratio_rise_min` and ≥
    :attr:`CreepRules.ratio_share` of the night's rise): a season (cooling or heating)
    moves night and evening together, a harvest moves the evening of a two-shift plant
    only, a creep left on at night moves the night only. Nights far below the usual
    (stops) are left out of the fit. Severity warning. An ended creep is reported for
    :attr:`CreepRules.ended_days` days after its end, with the start the alert state
    already holds for it (see :func:`baseload_creep`, ``known_starts``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache
from typing import Any

import holidays
import numpy as np
import statsmodels.api as sm
from numpy.typing import NDArray

from analytics.findings import Finding, Severity, meter_subject

__all__ = [
    "ANOMALY",
    "CREEP",
    "LOCAL",
    "AnomalyRules",
    "CreepRules",
    "MeterRef",
    "baseload_creep",
    "day_classes",
    "hourly_anomalies",
    "night_levels",
]

FloatArray = NDArray[np.float64]

ANOMALY = "consumption.anomaly"
CREEP = "consumption.baseload_creep"
LOCAL = timezone(timedelta(hours=8), "Asia/Shanghai")
"""Local time of the park: China is UTC+8 without daylight saving (DESIGN.md)."""

WORKING, SATURDAY, SUNDAY, HOLIDAY = 0, 1, 2, 3
CLASSES = 4
NIGHT_HOURS = (*range(0, 6), 22, 23)
"""Local hours of the night baseload (22:00–06:00)."""
BASELOAD_HOURS = tuple(range(0, 6))
"""Local hours of the night baseload that no shift reaches (00:00–06:00)."""
SHOULDER_HOURS = (20, 21)
"""Local evening hours after sunset (no PV) that show the day's level outside the night."""
_MAD_TO_SD = 1.4826  # sd of a normal distribution per MAD


@dataclass(frozen=True, slots=True)
class MeterRef:
    """The meter a series belongs to (registry identity)."""

    meter_id: int
    meter_code: str
    enterprise_id: int
    enterprise_code: str
    park_id: int | None
    carrier: str
    unit: str

    @property
    def subject(self) -> str:
        return meter_subject(self.enterprise_code, self.meter_code)


@dataclass(frozen=True, slots=True)
class AnomalyRules:
    """Thresholds of ``consumption.anomaly`` (see the module docstring).

    Attributes
    ----------
    reference_days, level_days : days of the profile fit and of the local level [d].
    min_reference_hours : valid reference hours needed to score a day [h].
    z : robust score beyond which an hour is anomalous [-].
    min_hours : consecutive anomalous hours of a finding [h].
    min_deviation : least relative deviation of a run's energy from the expected [-].
    critical_z, critical_deviation : median |score| and deviation of a critical run [-].
    scale_floor : least score scale, on log energy (≈ relative deviation) [-].
    idle_quantile : quantile of the reference hours taken as the idle level [-].
    """

    reference_days: int = 56
    level_days: int = 7
    min_reference_hours: int = 14 * 24
    z: float = 5.0
    min_hours: int = 4
    min_deviation: float = 0.15
    critical_z: float = 10.0
    critical_deviation: float = 0.5
    scale_floor: float = 0.02
    idle_quantile: float = 0.05


@dataclass(frozen=True, slots=True)
class CreepRules:
    """Thresholds of ``consumption.baseload_creep`` (see the module docstring).

    Attributes
    ----------
    window_days : complete local days looked at [d].
    reference_days : least days before a ramp's start [d].
    min_ramp_days, min_ramp_valid : least length of a ramp, and valid days in it [d].
    clean_days : least valid days on each side of a cut (an earlier episode's end) [d].
    t_min, rise_min : HAC t statistic of the night's slope, and its rise at the ramp's end
        relative to the reference baseload [-].
    ratio_t_min, ratio_rise_min, ratio_share : the same for night / evening, and its least
        share of the night's rise [-].
    hac_lags : Newey–West lags [d].
    same_episode_days : a known start this close to the fitted one is the same episode [d].
    ended_days : days an ended creep is still reported [d].
    min_night_slots, min_shoulder_slots : least valid 15-minute slots of a day's spans.
    """

    window_days: int = 70
    reference_days: int = 28
    min_ramp_days: int = 10
    min_ramp_valid: int = 5
    clean_days: int = 7
    t_min: float = 4.0
    rise_min: float = 0.10
    ratio_t_min: float = 3.0
    ratio_rise_min: float = 0.05
    ratio_share: float = 0.5
    hac_lags: int = 7
    same_episode_days: int = 14
    ended_days: int = 14
    min_night_slots: int = 20
    min_shoulder_slots: int = 6


@lru_cache(maxsize=16)
def _cn_calendar(year: int) -> holidays.HolidayBase:
    return holidays.country_holidays("CN", years=year)


def day_classes(first: date, days: int) -> NDArray[np.int64]:
    """Day class per local day: 0 working, 1 non-working Saturday, 2 Sunday, 3 public holiday.

    Public holidays and the weekend days worked in exchange (调休) from the ``holidays``
    package's China calendar (国务院办公厅 notices), as the simulated park uses them.
    """
    out = np.empty(days, dtype=np.int64)
    for i in range(days):
        d = first + timedelta(days=i)
        cn = _cn_calendar(d.year)
        if cn.is_working_day(d):
            out[i] = WORKING
        elif d in cn:
            out[i] = HOLIDAY
        elif d.weekday() == 5:
            out[i] = SATURDAY
        else:
            out[i] = SUNDAY
    return out


# --- consumption.anomaly -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Expected:
    log_energy: FloatArray  # expected log energy per hour of the scored day [log unit]
    scale: FloatArray  # score scale per hour of day [log]
    idle: float  # idle level: low quantile of the reference hours [unit]
    top: FloatArray  # highest reference energy per hour of day [unit]


@dataclass(frozen=True, slots=True)
class _Run:
    first: int  # hour index within the scored day
    last: int
    observed: float
    expected: float
    z_median: float


def _fit_profile(
    cell: NDArray[np.int64], t: FloatArray, y: FloatArray, cells: int
) -> tuple[FloatArray, float]:
    """OLS of y on one dummy per cell plus a common trend ``t``: cell intercepts and slope.

    Frisch–Waugh: the slope is the statsmodels OLS of the within-cell deviations of y on
    those of t; the intercepts follow from the cell means. Cells without data get NaN.
    """
    count = np.bincount(cell, minlength=cells).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        y_mean = np.bincount(cell, weights=y, minlength=cells) / count
        t_mean = np.bincount(cell, weights=t, minlength=cells) / count
    dt = t - t_mean[cell]
    slope = 0.0
    if float(np.dot(dt, dt)) > 0:
        result: Any = sm.OLS(y - y_mean[cell], dt).fit()
        slope = float(np.asarray(result.params)[0])
    return y_mean - slope * t_mean, slope


def _column_quantile(values: FloatArray, q: float) -> FloatArray:
    """The ``q`` quantile of each column, ignoring NaN (linear interpolation); NaN for empty columns."""
    ordered = np.sort(values, axis=0)  # NaN sort last
    count = np.isfinite(values).sum(axis=0)
    position = q * np.maximum(count - 1, 0)
    below = np.floor(position).astype(np.int64)
    above = np.minimum(below + 1, np.maximum(count - 1, 0))
    columns = np.arange(values.shape[1])
    low, high = ordered[below, columns], ordered[above, columns]
    out = low + (position - below) * (high - low)
    return np.asarray(np.where(count > 0, out, np.nan), dtype=np.float64)


def _hour_scale(resid: FloatArray, use: NDArray[np.bool_], rules: AnomalyRules) -> FloatArray:
    """Score scale per hour of day [log]: 1.4826 × MAD of the residuals, at least ``scale_floor``.

    ``resid`` and ``use`` have shape (days, 24); hours with fewer than 3 values get inf.
    """
    r = np.where(use, resid, np.nan)
    enough = use.sum(axis=0) > 2
    spread = _MAD_TO_SD * _column_quantile(np.abs(r - _column_quantile(r, 0.5)), 0.5)
    return np.where(enough, np.maximum(spread, rules.scale_floor), np.inf)


def _expected_day(hourly: FloatArray, classes: NDArray[np.int64], rules: AnomalyRules) -> _Expected | None:
    """Expected energy and score scale per hour of the last day of ``hourly``.

    ``hourly`` holds ``reference_days + 1`` days × 24 hours; the last day is the scored one.
    The model: log hourly energy ~ hour of day × day class (96 cells) + linear trend [per
    day], OLS; seasons and activity act on a plant's load multiplicatively.
    """
    days = rules.reference_days
    raw = hourly[: days * 24]
    valid = np.isfinite(raw) & (raw > 0)
    if int(valid.sum()) < rules.min_reference_hours:
        return None
    ref = np.log(np.where(valid, raw, 1.0))
    hours = np.tile(np.arange(24), days)
    cell = np.repeat(classes[:days], 24) * 24 + hours
    cells = CLASSES * 24
    t = np.repeat(np.arange(days, dtype=np.float64), 24)
    grid = (days, 24)
    # Pass 1: cell medians (no trend) mark outlying reference hours (stops, festivals);
    # pass 2: OLS with the trend on the rest. Scores use the MAD of pass 2's residuals.
    medians = np.full(cells, np.nan)
    by_day = np.where(valid, ref, np.nan).reshape(grid)
    for c in range(CLASSES):
        rows = classes[:days] == c
        if rows.any():
            medians[c * 24 : c * 24 + 24] = _column_quantile(by_day[rows], 0.5)
    resid = ref - medians[cell]
    scale = _hour_scale(resid.reshape(grid), valid.reshape(grid), rules)
    with np.errstate(invalid="ignore"):
        keep = valid & (np.abs(resid / scale[hours]) <= rules.z)
    intercept, slope = _fit_profile(cell[keep], t[keep], ref[keep], cells)
    fitted = intercept[cell] + slope * t
    resid = ref - fitted
    scale = _hour_scale(resid.reshape(grid), keep.reshape(grid), rules)
    today = classes[days] * 24 + np.arange(24)
    if not np.isfinite(intercept[today]).all():
        return None  # no reference day of the scored day's class
    # Local level: median log ratio observed/fitted over the last days (season and harvest
    # steps, restarts); every valid hour counts, so that a new level is followed.
    recent = slice((days - rules.level_days) * 24, days * 24)
    ok = valid[recent] & np.isfinite(fitted[recent])
    shift = float(np.median(resid[recent][ok])) if ok.sum() >= 24 else 0.0
    expected = intercept[today] + slope * days + shift
    idle = float(np.quantile(raw[valid], rules.idle_quantile))
    top = np.where(valid, raw, 0.0).reshape(grid).max(axis=0)
    return _Expected(expected, scale, idle, top)


def _runs(z: FloatArray, observed: FloatArray, expected: FloatArray, rules: AnomalyRules) -> list[_Run]:
    """Runs of consecutive valid hours beyond ±z in one direction."""
    out: list[_Run] = []
    sign = np.where(np.isfinite(z), np.sign(z) * (np.abs(z) > rules.z), 0)
    i = 0
    while i < len(z):
        if sign[i] == 0:
            i += 1
            continue
        j = i
        while j + 1 < len(z) and sign[j + 1] == sign[i]:
            j += 1
        if j - i + 1 >= rules.min_hours:
            seg = slice(i, j + 1)
            out.append(
                _Run(i, j, float(observed[seg].sum()), float(expected[seg].sum()), float(np.median(z[seg])))
            )
        i = j + 1
    return out


def hourly_anomalies(
    meter: MeterRef,
    day: date,
    hourly: Sequence[float] | FloatArray,
    *,
    hours_done: int,
    rules: AnomalyRules = AnomalyRules(),
    skip_night: bool = False,
    open_end: bool = True,
) -> list[Finding]:
    """``consumption.anomaly`` findings of one local day of one meter.

    Parameters
    ----------
    meter : MeterRef
        The meter.
    day : date
        The scored local day (Asia/Shanghai).
    hourly : array of float
        Hourly energy [meter unit] of the ``reference_days`` days before ``day`` and of
        ``day`` itself, ``(reference_days + 1) × 24`` values from local midnight; NaN where
        missing (coverage < 1, estimated, refused, stuck) or not yet due.
    hours_done : int
        Hours of ``day`` that have ended by the run's time (0–24); a run reaching the last
        of them is ongoing.
    rules : AnomalyRules
        Thresholds.
    skip_night : bool
        Leave out 22:00–06:00 (the night belongs to a baseload creep found on the meter).
    open_end : bool
        Whether a run reaching the last done hour is ongoing (False: the data go on in
        a later scored day, so the run ended there).

    Returns
    -------
    list of Finding
        One per run of anomalous hours.
    """
    series = np.asarray(hourly, dtype=np.float64)
    if series.shape != ((rules.reference_days + 1) * 24,):
        raise ValueError(f"hourly needs {(rules.reference_days + 1) * 24} values, got {series.shape}")
    first = day - timedelta(days=rules.reference_days)
    classes = day_classes(first, rules.reference_days + 1)
    model = _expected_day(series, classes, rules)
    if model is None:
        return []
    expected = np.exp(model.log_energy)
    observed = series[rules.reference_days * 24 :].copy()
    observed[hours_done:] = np.nan
    if skip_night:
        observed[list(NIGHT_HOURS)] = np.nan
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (np.log(np.where(observed > 0, observed, np.nan)) - model.log_energy) / model.scale
    # The band of ±z scores around the expected energy, per hour [unit].
    band_low = np.exp(model.log_energy - rules.z * model.scale)
    band_high = np.exp(model.log_energy + rules.z * model.scale)
    midnight = datetime(day.year, day.month, day.day, tzinfo=LOCAL)
    findings: list[Finding] = []
    for run in _runs(z, observed, expected, rules):
        deviation = run.observed / run.expected - 1.0
        if abs(deviation) < rules.min_deviation:
            continue
        n = run.last - run.first + 1
        seg = slice(run.first, run.last + 1)
        if deviation < 0 and run.observed / n <= (1 + rules.min_deviation) * model.idle:
            continue  # a stop (maintenance, festival shutdown): planned, not a fault
        if deviation > 0 and (observed[seg] <= (1 + rules.min_deviation) * model.top[seg]).all():
            continue  # a restart, work on a day off: levels of the reference weeks at these hours
        critical = abs(run.z_median) >= rules.critical_z and abs(deviation) >= rules.critical_deviation
        start = midnight + timedelta(hours=run.first)
        ongoing = open_end and run.last == hours_done - 1
        end = midnight + timedelta(hours=run.last + 1)
        low = float(band_low[seg].sum())
        high = float(band_high[seg].sum())
        word_zh, word_en = ("偏高", "above") if deviation > 0 else ("偏低", "below")
        local = start.strftime("%Y-%m-%d %H:%M")
        findings.append(
            Finding(
                kind=ANOMALY,
                severity=Severity.CRITICAL if critical else Severity.WARNING,
                subject=meter.subject,
                started_at=start,
                ended_at=None if ongoing else end,
                summary_zh=(
                    f"{meter.meter_code} 自 {local} 起连续 {n} 小时用量{word_zh}："
                    f"{run.observed:.4g} {meter.unit}，预期 {run.expected:.4g} {meter.unit}"
                    f"（{deviation:+.0%}，稳健 z = {run.z_median:.1f}）"
                ),
                summary_en=(
                    f"{meter.meter_code}: {n} h from {local} {word_en} its profile: "
                    f"{run.observed:.4g} {meter.unit} vs {run.expected:.4g} expected "
                    f"({deviation:+.0%}, robust z {run.z_median:.1f})"
                ),
                enterprise_id=meter.enterprise_id,
                meter_id=meter.meter_id,
                park_id=meter.park_id,
                observed=run.observed,
                expected_low=low,
                expected_high=high,
                score=run.z_median,
                unit=meter.unit,
                evidence={
                    "method": "OLS log energy ~ hour of day x day class + trend; local level; robust z (MAD)",
                    "hours": n,
                    "expected": run.expected,
                    "deviation": deviation,
                    "z_threshold": rules.z,
                    "min_hours": rules.min_hours,
                    "min_deviation": rules.min_deviation,
                    "reference_days": rules.reference_days,
                    "day_class": ("working", "saturday", "sunday", "holiday")[int(classes[-1])],
                    "night_skipped": skip_night,
                },
            )
        )
    return findings


# --- consumption.baseload_creep -----------------------------------------------------------


def night_levels(slots: FloatArray, rules: CreepRules = CreepRules()) -> tuple[FloatArray, FloatArray]:
    """Night baseload and evening level per local day [meter unit per 15 min].

    Means over contiguous spans, not quantiles of single slots: the 15-minute energy of a
    register is quantised by its resolution × multiplier, while a span's sum is the register
    difference across it.

    Parameters
    ----------
    slots : ndarray, shape (days, 96)
        15-minute energy per local day and slot from midnight [meter unit]; NaN = missing.
    rules : CreepRules
        Least valid slots per span.

    Returns
    -------
    (ndarray, ndarray)
        Per day, the mean 15-minute energy of 00:00–06:00 (the part of the night that no
        shift reaches) and of 20:00–22:00 (after sunset, before the night); NaN when too
        few slots are valid.
    """
    hour = np.arange(96) // 4
    night = slots[:, np.isin(hour, BASELOAD_HOURS)]
    evening = slots[:, np.isin(hour, SHOULDER_HOURS)]
    n_valid = np.isfinite(night).sum(axis=1)
    e_valid = np.isfinite(evening).sum(axis=1)
    n_out = np.nansum(night, axis=1) / np.maximum(n_valid, 1)
    e_out = np.nansum(evening, axis=1) / np.maximum(e_valid, 1)
    n_out = np.where(n_valid >= rules.min_night_slots, n_out, np.nan)
    e_out = np.where(e_valid >= rules.min_shoulder_slots, e_out, np.nan)
    return np.asarray(n_out, dtype=np.float64), np.asarray(e_out, dtype=np.float64)


@dataclass(frozen=True, slots=True)
class _Fit:
    start: int
    end: int  # exclusive
    cut: int  # days before it have a level of their own (an earlier episode); 0 = none
    bic_ramp: float
    bic_step: float


def _design(classes: NDArray[np.int64]) -> FloatArray:
    """Constant and one dummy per day class but working days, shape (days, CLASSES)."""
    out = np.zeros((len(classes), CLASSES))
    out[:, 0] = 1.0
    for c in range(1, CLASSES):
        out[:, c] = classes == c
    return out


def _candidate_sse(
    y: FloatArray, valid: NDArray[np.bool_], base: FloatArray, h: FloatArray, cuts: NDArray[np.int64]
) -> FloatArray:
    """Least squared error of y ~ base + [day < cut] + h for every pair of a row of ``h`` and a cut.

    Infinite where the coefficient of ``h`` is not positive.

    Frisch–Waugh: ``base`` is partialled out once, which leaves a 2 × 2 system per pair;
    each row of ``h`` is zero before its cuts, so ``h`` and the cut's dummy are orthogonal
    before the partialling. A cut of 0 has no dummy. Returns shape (rows of h, cuts).
    """
    v = valid.astype(np.float64)
    yv = np.where(valid, y, 0.0)
    xb = base * v[:, None]
    inverse = np.linalg.pinv(base.T @ xb)
    by = xb.T @ yv
    yy = float(yv @ yv - by @ inverse @ by)
    before = np.concatenate([np.zeros((1, base.shape[1])), np.cumsum(xb, axis=0)])[cuts]  # (C, k)
    before_y = np.concatenate([[0.0], np.cumsum(yv)])[cuts]
    pp = before[:, 0] - np.einsum("ck,kl,cl->c", before, inverse, before)
    py = before_y - before @ inverse @ by
    hv = h * v
    hb = hv @ base  # (P, k)
    hh = (hv * h).sum(axis=1) - np.einsum("pk,kl,pl->p", hb, inverse, hb)
    hy = hv @ yv - hb @ inverse @ by
    ph = -(hb @ inverse @ before.T)  # (P, C)
    with np.errstate(divide="ignore", invalid="ignore"):
        only_h = yy - hy**2 / hh
        det = pp[None, :] * hh[:, None] - ph**2
        both = (
            yy
            - (
                hh[:, None] * py[None, :] ** 2
                - 2.0 * ph * py[None, :] * hy[:, None]
                + pp[None, :] * hy[:, None] ** 2
            )
            / det
        )
        rising = np.where(
            pp[None, :] > 1e-9,
            (pp[None, :] * hy[:, None] - ph * py[None, :]) / det,
            hy[:, None] / hh[:, None],
        )
    out = np.where(pp[None, :] > 1e-9, both, only_h[:, None])
    # Only a rise is a creep: a falling ramp (the end of an earlier episode) is no candidate.
    return np.asarray(np.where(np.isfinite(out) & (rising > 0), out, np.inf), dtype=np.float64)


def _best_ramp(y: FloatArray, valid: NDArray[np.bool_], base: FloatArray, rules: CreepRules) -> _Fit | None:
    """The (start, end, cut) of least BIC for a ramp, and the least BIC of a step instead."""
    n = len(y)
    pairs = [
        (s, e)
        for s in range(rules.reference_days, n - rules.min_ramp_days + 1)
        for e in range(s + rules.min_ramp_days, n + 1)
    ]
    if not pairs:
        return None
    s_arr, e_arr = np.array(pairs).T
    cuts = np.arange(0, max(1, n - rules.min_ramp_days - rules.clean_days + 1))
    d = np.arange(n)
    inside = (d[None, :] >= s_arr[:, None]) & (d[None, :] < e_arr[:, None])
    ramp = np.where(inside, d[None, :] - s_arr[:, None] + 1.0, 0.0)
    valid_cum = np.concatenate([[0], np.cumsum(valid)])
    ramp_ok = (inside & valid[None, :]).sum(axis=1) >= rules.min_ramp_valid
    after = valid_cum[n] - valid_cum[e_arr]
    # Without a cut: reference_days valid days outside the ramp. With one: clean_days
    # valid days between the cut and the ramp's start (the earlier level is its own).
    uncut = (valid_cum[s_arr] + after >= rules.reference_days)[:, None] & (cuts == 0)[None, :]
    clean = valid_cum[s_arr][:, None] - valid_cum[cuts][None, :]
    cut_ok = (cuts > 0)[None, :] & (cuts[None, :] <= s_arr[:, None] - rules.clean_days)
    cut_ok &= (clean >= rules.clean_days) & (valid_cum[cuts] >= rules.clean_days)[None, :]
    ok = (uncut | cut_ok) & ramp_ok[:, None]
    if not ok.any():
        return None
    m = int(valid.sum())
    # BIC (Schwarz 1978): a cut costs two parameters (its day and the earlier level).
    penalty = np.where(cuts > 0, 2.0 * math.log(m), 0.0)[None, :]
    with np.errstate(divide="ignore"):
        bic = m * np.log(np.maximum(_candidate_sse(y, valid, base, ramp, cuts), 1e-12) / m) + penalty
        bic_step = (
            m * np.log(np.maximum(_candidate_sse(y, valid, base, inside.astype(np.float64), cuts), 1e-12) / m)
            + penalty
        )
    bic = np.where(ok, bic, np.inf)
    bic_step = np.where(ok, bic_step, np.inf)
    j, c = np.unravel_index(int(np.argmin(bic)), bic.shape)
    return _Fit(int(s_arr[j]), int(e_arr[j]), int(cuts[c]), float(bic[j, c]), float(bic_step.min()))


def _slope(
    y: FloatArray, valid: NDArray[np.bool_], base: FloatArray, ramp: FloatArray, *, cut: int, lags: int
) -> tuple[float, float, float]:
    """Reference level (working day), slope per day and its HAC t of y ~ base + [day < cut] + ramp."""
    columns = [base[:, i] for i in range(base.shape[1]) if (base[valid, i] != 0).any()]
    if cut > 0 and valid[:cut].any():
        columns.append((np.arange(len(y)) < cut).astype(np.float64))
    x = np.column_stack([*columns, ramp])[valid]
    result: Any = sm.OLS(y[valid], x).fit(cov_type="HAC", cov_kwds={"maxlags": lags})
    params = np.asarray(result.params, dtype=np.float64)
    tvalues = np.asarray(result.tvalues, dtype=np.float64)
    t = float(tvalues[-1]) if math.isfinite(float(tvalues[-1])) else 0.0
    return float(params[0]), float(params[-1]), t


def baseload_creep(
    meter: MeterRef,
    first_day: date,
    night: Sequence[float] | FloatArray,
    shoulder: Sequence[float] | FloatArray,
    *,
    rules: CreepRules = CreepRules(),
    known_starts: Sequence[datetime] = (),
) -> Finding | None:
    """The ``consumption.baseload_creep`` of one meter over complete local days, if any.

    Parameters
    ----------
    meter : MeterRef
        The meter.
    first_day : date
        Local day of the first value.
    night, shoulder : array of float
        Night baseload and shoulder level per local day [meter unit per 15 min]
        (:func:`night_levels`), NaN where missing; the last value is the last complete day.
    rules : CreepRules
        Thresholds.
    known_starts : sequence of datetime
        Starts already reported for this meter's creeps (the alert state's episodes). The
        fitted start moves by days while the ramp grows (the open alert absorbs each); once
        the creep has ended, the nearest known start within
        :attr:`CreepRules.same_episode_days` is reported instead, so that the ended episode
        is the one the alert state already holds.

    Returns
    -------
    Finding or None
        The creep: started at local midnight of its first day, ended at local midnight
        after its last day when the baseload dropped back before the last day (else ongoing).
    """
    n_arr = np.asarray(night, dtype=np.float64)
    s_arr = np.asarray(shoulder, dtype=np.float64)
    n = len(n_arr)
    valid = np.isfinite(n_arr) & (n_arr > 0)
    if int(valid.sum()) < rules.reference_days + rules.min_ramp_valid:
        return None
    y = np.where(valid, np.log(np.where(valid, n_arr, 1.0)), 0.0)
    base = _design(day_classes(first_day, n))
    # Days far below the usual night (stops) are not baseload: leave them out of the fit.
    valid &= y >= np.median(y[valid]) - math.log(2.0)
    fit = _best_ramp(y, valid, base, rules)
    if fit is None or fit.bic_step <= fit.bic_ramp:
        return None
    d = np.arange(n)
    ramp = np.where((d >= fit.start) & (d < fit.end), d - fit.start + 1.0, 0.0)
    level, slope, t = _slope(y, valid, base, ramp, cut=fit.cut, lags=rules.hac_lags)
    length = fit.end - fit.start
    rise = math.exp(slope * length) - 1.0
    if slope <= 0 or t < rules.t_min or rise < rules.rise_min:
        return None
    ratio_valid = valid & np.isfinite(s_arr) & (s_arr > 0)
    if int(ratio_valid.sum()) < rules.reference_days + rules.min_ramp_valid:
        return None
    r = np.where(ratio_valid, y - np.log(np.where(ratio_valid, s_arr, 1.0)), 0.0)
    _, r_slope, r_t = _slope(r, ratio_valid, base, ramp, cut=fit.cut, lags=rules.hac_lags)
    r_rise = math.exp(r_slope * length) - 1.0
    if r_t < rules.ratio_t_min or r_rise < max(rules.ratio_rise_min, rules.ratio_share * rise):
        return None
    reference = math.exp(level)
    current = reference * (1.0 + rise)
    start_day = first_day + timedelta(days=fit.start)
    start = datetime(start_day.year, start_day.month, start_day.day, tzinfo=LOCAL)
    ongoing = fit.end == n
    end = start + timedelta(days=length)
    if not ongoing and end < datetime(
        first_day.year, first_day.month, first_day.day, tzinfo=LOCAL
    ) + timedelta(days=n - rules.ended_days):
        return None  # ended long ago: the alert state holds it already
    same = [k for k in known_starts if abs(k - start) <= timedelta(days=rules.same_episode_days) and k < end]
    if same and not ongoing:
        start = min(same, key=lambda k: (abs(k - start), k))
        start_day = start.astimezone(LOCAL).date()
        length = (end - start).days
    slope_per_day = reference * slope  # near the reference level [unit per 15 min per day]
    return Finding(
        kind=CREEP,
        severity=Severity.WARNING,
        subject=meter.subject,
        started_at=start,
        ended_at=None if ongoing else end,
        summary_zh=(
            f"{meter.meter_code} 夜间基础负荷自 {start_day.isoformat()} 起持续上升 {length} 天："
            f"{reference:.4g} → {current:.4g} {meter.unit}/15min（{rise:+.0%}）"
        ),
        summary_en=(
            f"{meter.meter_code}: night baseload creeping up for {length} days from "
            f"{start_day.isoformat()}: {reference:.4g} -> {current:.4g} {meter.unit}/15min ({rise:+.0%})"
        ),
        enterprise_id=meter.enterprise_id,
        meter_id=meter.meter_id,
        park_id=meter.park_id,
        observed=current,
        expected_low=reference,
        expected_high=reference,
        score=t,
        unit=f"{meter.unit}/15min",
        evidence={
            "method": (
                "log night baseload ~ 1 + day class + earlier level(cut) + ramp(start, end),"
                " OLS with HAC errors"
            ),
            "reference_from": (first_day + timedelta(days=fit.cut)).isoformat(),
            "reference_baseload": reference,
            "current_baseload": current,
            "slope_per_day": slope_per_day,
            "slope_log_per_day": slope,
            "rise": rise,
            "rise_pct": 100.0 * rise,
            "t": t,
            "ramp_days": length,
            "night_vs_shoulder_rise": r_rise,
            "night_vs_shoulder_t": r_t,
            "thresholds": {"t_min": rules.t_min, "rise_min": rules.rise_min},
            "night_hours": "22:00-06:00",
        },
    )
