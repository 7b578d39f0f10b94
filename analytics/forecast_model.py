"""Forecast of monthly energy and value added to the target year, and of yearly intensity.

Pure (numpy, statsmodels); :mod:`analytics.forecast` reads the data and
stores the results.

Model (docs/accounting.md, "Forecast"): for energy [tce] of each variant and for
value added [10⁴ yuan, 2022 prices] separately, an ordinary least-squares
regression of log(monthly value) on a linear trend and month-of-year dummies
(statsmodels OLS; log keeps forecasts positive and makes the trend a constant
growth rate). Monthly prediction intervals come from
``OLSResults.get_prediction`` (parameter and residual uncertainty). Yearly
intensity = Σ energy / Σ value added of the calendar year (observed months plus
forecast ones); its interval is simulated: coefficients drawn from their estimated
normal distribution, residuals drawn with the correlation seen between the energy
and value-added residuals, a fixed random seed.

Status of a forecast year (``analytics.target.forecast_status``): on_track when the
upper bound of the intensity interval is at or below the path value (in the target
year: the target), off_track when the point forecast (the simulations' median) is
above it, at_risk otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import statsmodels.api as sm

from analytics.target import CITY_TARGET_2027, IntensityTarget, Status, forecast_status, path_intensity

__all__ = [
    "MIN_MONTHS",
    "ForecastSettings",
    "MonthForecast",
    "SeriesForecast",
    "YearForecast",
    "forecast_series",
]

MIN_MONTHS = 24
"""Fewest observed months for a forecast: two of every calendar month (trend + 11 dummies)."""


@dataclass(frozen=True, slots=True)
class ForecastSettings:
    """Parameters of the forecast.

    Parameters
    ----------
    interval : float
        Central probability of the prediction intervals [-] (0.9: 5 % to 95 %).
    simulations : int
        Monte-Carlo draws for the yearly intensity interval [-].
    seed : int
        Random seed of the simulation (results are reproducible).
    """

    interval: float = 0.90
    simulations: int = 2000
    seed: int = 20_270_101


@dataclass(frozen=True, slots=True)
class MonthForecast:
    """Forecast of one month: point and interval of energy [tce] and value added [10⁴ yuan]."""

    month: date
    energy_tce: float
    energy_tce_lower: float
    energy_tce_upper: float
    value_added_10k_yuan: float
    value_added_10k_yuan_lower: float
    value_added_10k_yuan_upper: float


@dataclass(frozen=True, slots=True)
class YearForecast:
    """Forecast of one calendar year (observed months included) and its status against the path."""

    year: int
    energy_tce: float
    energy_tce_lower: float
    energy_tce_upper: float
    value_added_10k_yuan: float
    value_added_10k_yuan_lower: float
    value_added_10k_yuan_upper: float
    intensity: float
    intensity_lower: float
    intensity_upper: float
    path_value: float | None
    status: Status | None


@dataclass(frozen=True, slots=True)
class SeriesForecast:
    """The monthly and yearly forecast of one group and variant."""

    months_used: int
    months: tuple[MonthForecast, ...]
    years: tuple[YearForecast, ...]


def _month_number(month: date) -> int:
    return month.year * 12 + month.month - 1


def _first_of(number: int) -> date:
    return date(number // 12, number % 12 + 1, 1)


def _design(months: Sequence[date], origin: date) -> np.ndarray:
    """Columns: constant, trend [months since origin], dummies of February..December."""
    x = np.zeros((len(months), 13))
    for row, month in enumerate(months):
        x[row, 0] = 1.0
        x[row, 1] = float(_month_number(month) - _month_number(origin))
        if month.month > 1:
            x[row, month.month] = 1.0
    return x


def forecast_series(
    observed: Sequence[tuple[date, float, float]],
    *,
    base_intensity: float | None,
    target: IntensityTarget = CITY_TARGET_2027,
    settings: ForecastSettings = ForecastSettings(),
) -> SeriesForecast:
    """Forecast one group's monthly energy and value added to December of the target year.

    Parameters
    ----------
    observed : sequence of (date, float, float)
        Usable months (first day of the month, energy [tce], value added [10⁴ yuan at
        2022 prices]), in any order; months without a usable value left out.
    base_intensity : float or None
        The group's base-year intensity [tce/10⁴ yuan]; None: no path and no status.

    Raises
    ------
    ValueError
        Fewer than :data:`MIN_MONTHS` months, or a value that is not positive.
    """
    rows = sorted(observed)
    if len(rows) < MIN_MONTHS:
        raise ValueError(f"{len(rows)} months of data; a forecast needs {MIN_MONTHS}")
    months = [m for m, _, _ in rows]
    energy = np.array([e for _, e, _ in rows], dtype=float)
    va = np.array([v for _, _, v in rows], dtype=float)
    if (energy <= 0).any() or (va <= 0).any():
        raise ValueError("energy and value added must be positive to be modelled in logs")
    origin = months[0]
    end = _month_number(date(target.target_year, 12, 1))
    future = [_first_of(n) for n in range(_month_number(months[-1]) + 1, end + 1)]
    if not future:
        return SeriesForecast(len(rows), (), ())
    x = _design(months, origin)
    # A calendar month absent from the data (e.g. every February unusable) leaves its dummy
    # column all zero and the design rank-deficient: drop such columns, in the forecast too,
    # so that month is modelled like January.
    present = x.any(axis=0)
    x = x[:, present]
    fit_e = sm.OLS(np.log(energy), x).fit()
    fit_v = sm.OLS(np.log(va), x).fit()
    x_new = _design(future, origin)[:, present]
    alpha = 1.0 - settings.interval
    pred_e = fit_e.get_prediction(x_new).summary_frame(alpha=alpha)
    pred_v = fit_v.get_prediction(x_new).summary_frame(alpha=alpha)

    def at(frame: object, column: str, i: int) -> float:
        return float(np.exp(np.asarray(frame[column])[i]))  # type: ignore[index]

    forecast_months = tuple(
        MonthForecast(
            month=month,
            energy_tce=at(pred_e, "mean", i),
            energy_tce_lower=at(pred_e, "obs_ci_lower", i),
            energy_tce_upper=at(pred_e, "obs_ci_upper", i),
            value_added_10k_yuan=at(pred_v, "mean", i),
            value_added_10k_yuan_lower=at(pred_v, "obs_ci_lower", i),
            value_added_10k_yuan_upper=at(pred_v, "obs_ci_upper", i),
        )
        for i, month in enumerate(future)
    )
    sim_e, sim_v = _simulate(fit_e, fit_v, x_new, settings)
    years = _years(
        rows, future, sim_e, sim_v, base_intensity=base_intensity, target=target, settings=settings
    )
    return SeriesForecast(len(rows), forecast_months, years)


def _simulate(
    fit_e: Any,
    fit_v: Any,
    x_new: np.ndarray,
    settings: ForecastSettings,
) -> tuple[np.ndarray, np.ndarray]:
    """Simulated monthly energy and value added, shape (simulations, months)."""
    rng = np.random.default_rng(settings.seed)
    n = settings.simulations
    resid_e = np.asarray(fit_e.resid)
    resid_v = np.asarray(fit_v.resid)
    sigma_e = float(np.sqrt(fit_e.scale))
    sigma_v = float(np.sqrt(fit_v.scale))
    rho = float(np.corrcoef(resid_e, resid_v)[0, 1]) if sigma_e > 0 and sigma_v > 0 else 0.0
    rho = 0.0 if not np.isfinite(rho) else max(-0.99, min(0.99, rho))
    beta_e = rng.multivariate_normal(np.asarray(fit_e.params), np.asarray(fit_e.cov_params()), size=n)
    beta_v = rng.multivariate_normal(np.asarray(fit_v.params), np.asarray(fit_v.cov_params()), size=n)
    z_v = rng.standard_normal((n, x_new.shape[0]))
    z_e = rho * z_v + np.sqrt(1.0 - rho**2) * rng.standard_normal((n, x_new.shape[0]))
    log_e = beta_e @ x_new.T + sigma_e * z_e
    log_v = beta_v @ x_new.T + sigma_v * z_v
    return np.exp(log_e), np.exp(log_v)


def _years(
    observed: Sequence[tuple[date, float, float]],
    future: Sequence[date],
    sim_e: np.ndarray,
    sim_v: np.ndarray,
    *,
    base_intensity: float | None,
    target: IntensityTarget,
    settings: ForecastSettings,
) -> tuple[YearForecast, ...]:
    low_q, high_q = (1.0 - settings.interval) / 2, 1.0 - (1.0 - settings.interval) / 2
    future_years = np.array([m.year for m in future])
    result = []
    for year in sorted(set(future_years.tolist())):
        in_year = future_years == year
        energy = sim_e[:, in_year].sum(axis=1) + sum(e for m, e, _ in observed if m.year == year)
        va = sim_v[:, in_year].sum(axis=1) + sum(v for m, _, v in observed if m.year == year)

        def q(values: np.ndarray) -> tuple[float, float, float]:
            lo, mid, hi = np.quantile(values, [low_q, 0.5, high_q])
            return float(mid), float(lo), float(hi)

        e_mid, e_lo, e_hi = q(energy)
        v_mid, v_lo, v_hi = q(va)
        i_mid, i_lo, i_hi = q(energy / va)
        path = None if base_intensity is None else path_intensity(base_intensity, year, target)
        status = None if path is None else forecast_status(i_mid, i_hi, path)
        result.append(
            YearForecast(int(year), e_mid, e_lo, e_hi, v_mid, v_lo, v_hi, i_mid, i_lo, i_hi, path, status)
        )
    return tuple(result)
