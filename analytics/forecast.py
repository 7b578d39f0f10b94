"""The forecast job: read monthly intensity data, forecast to the target year, store the run.

``run(conn, now)`` is the job function (register it as ``analytics.forecast:run``):
it reads the monthly rows of ``api.intensity`` for the city, each park and each
enterprise, forecasts every group and variant with at least
:data:`analytics.forecast_model.MIN_MONTHS` usable months
(:mod:`analytics.forecast_model`), and stores the run in
``accounting.forecast_run`` / ``intensity_forecast`` / ``energy_forecast_month``,
read through ``api.intensity_forecast`` and ``api.energy_forecast_month`` (latest
run). A usable month has energy and value added above zero and coverage at or
above the target's minimum. Idempotent: each run is a new complete set; the
:data:`KEEP_RUNS` latest runs are kept.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import date, datetime
from typing import Any

import psycopg

from analytics.forecast_model import MIN_MONTHS, ForecastSettings, SeriesForecast, forecast_series
from analytics.target import IntensityTarget, target_intensity

__all__ = ["KEEP_RUNS", "MODEL", "run"]

log = logging.getLogger(__name__)

Connection = psycopg.Connection[Any]

KEEP_RUNS = 12
MODEL = "OLS log(y) ~ trend + month dummies; yearly intensity by simulation"

_Key = tuple[str, str | None, str | None, str]  # level, park_code, enterprise_code, variant


def _target(conn: Connection) -> IntensityTarget:
    row = conn.execute(
        "SELECT base_year, target_year, target_ratio, min_coverage FROM accounting.intensity_target"
    ).fetchone()
    if row is None:
        raise RuntimeError("accounting.intensity_target is empty")
    return IntensityTarget(int(row[0]), int(row[1]), float(row[2]), float(row[3]))


def _series(conn: Connection) -> tuple[dict[_Key, list[tuple[date, float, float]]], dict[_Key, float | None]]:
    """Usable monthly (month, energy, value added) per group and variant, and base intensities."""
    data: dict[_Key, list[tuple[date, float, float]]] = defaultdict(list)
    bases: dict[_Key, float | None] = {}
    cur = conn.execute(
        "SELECT level, park_code, enterprise_code, variant, period_start, energy_tce, value_added_10k_yuan,"
        " coalesce(low_coverage, true), base_2022"
        " FROM api.intensity WHERE period_type = 'month' AND level IN ('city', 'park', 'enterprise')"
        " ORDER BY level, park_code, enterprise_code, variant, period_start"
    )
    for level, park, enterprise, variant, month, energy, va, low, base in cur:
        key: _Key = (str(level), park, enterprise, str(variant))
        bases[key] = None if base is None else float(base)
        if energy is not None and va is not None and energy > 0 and va > 0 and not low:
            data[key].append((month, float(energy), float(va)))
    return data, bases


def run(conn: Connection, now: datetime) -> str:
    """Forecast every group with enough data and store the run; returns a one-line summary."""
    target = _target(conn)
    settings = ForecastSettings()
    data, bases = _series(conn)
    results: dict[_Key, SeriesForecast] = {}
    skipped = 0
    for key in sorted(bases, key=lambda k: tuple("" if x is None else x for x in k)):
        rows = data.get(key, [])
        if len(rows) < MIN_MONTHS:
            skipped += 1
            continue
        try:
            results[key] = forecast_series(rows, base_intensity=bases[key], target=target, settings=settings)
        except ValueError as exc:
            log.warning("no forecast for %s: %s", key, exc)
            skipped += 1
    data_until = max((rows[-1][0] for rows in data.values() if rows), default=None)
    with conn.transaction():
        row = conn.execute(
            "INSERT INTO accounting.forecast_run (run_at, data_until, model, interval_pct, groups, skipped)"
            " VALUES (%s, %s, %s, %s, %s, %s) RETURNING run_id",
            (now, data_until, MODEL, settings.interval * 100, len(results), skipped),
        ).fetchone()
        assert row is not None
        run_id = int(row[0])
        _store(conn, run_id, results, bases, target)
        conn.execute(
            "DELETE FROM accounting.forecast_run WHERE run_id NOT IN"
            " (SELECT run_id FROM accounting.forecast_run ORDER BY run_id DESC LIMIT %s)",
            (KEEP_RUNS,),
        )
    city = results.get(("city", None, None, "gross"))
    final = city.years[-1] if city is not None and city.years else None
    status = f"; city {final.year} gross: {final.status}" if final is not None and final.status else ""
    return f"forecast run {run_id}: {len(results)} series forecast, {skipped} skipped{status}"


def _store(
    conn: Connection,
    run_id: int,
    results: dict[_Key, SeriesForecast],
    bases: dict[_Key, float | None],
    target: IntensityTarget,
) -> None:
    years: list[tuple[object, ...]] = []
    months: list[tuple[object, ...]] = []
    for key, forecast in results.items():
        level, park, enterprise, variant = key
        base = bases[key]
        target_value = None if base is None else target_intensity(base, target)
        for y in forecast.years:
            years.append(
                (
                    run_id, level, park, enterprise, variant, y.year,
                    y.energy_tce, y.energy_tce_lower, y.energy_tce_upper,
                    y.value_added_10k_yuan, y.value_added_10k_yuan_lower, y.value_added_10k_yuan_upper,
                    y.intensity, y.intensity_lower, y.intensity_upper,
                    base, target_value, y.path_value, None if y.status is None else y.status.value,
                    forecast.months_used,
                )
            )  # fmt: skip
        for m in forecast.months:
            months.append(
                (
                    run_id, level, park, enterprise, variant, m.month,
                    m.energy_tce, m.energy_tce_lower, m.energy_tce_upper,
                    m.value_added_10k_yuan, m.value_added_10k_yuan_lower, m.value_added_10k_yuan_upper,
                )
            )  # fmt: skip
    with conn.cursor() as cur:
        if years:
            cur.executemany(
                "INSERT INTO accounting.intensity_forecast (run_id, level, park_code, enterprise_code,"
                " variant, year, energy_tce, energy_tce_lower, energy_tce_upper, value_added_10k_yuan,"
                " value_added_10k_yuan_lower, value_added_10k_yuan_upper, intensity, intensity_lower,"
                " intensity_upper, base_2022, target_2027, path_value, status, months_used)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s,"
                " %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                years,
            )
        if months:
            cur.executemany(
                "INSERT INTO accounting.energy_forecast_month (run_id, level, park_code, enterprise_code,"
                " variant, month, energy_tce, energy_tce_lower, energy_tce_upper, value_added_10k_yuan,"
                " value_added_10k_yuan_lower, value_added_10k_yuan_upper)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                months,
            )
