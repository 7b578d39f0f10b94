"""City and park overview (市/园区总览): intensity against 2022 and the 2027 path, energy, CO₂, forecast.

Official figures (status tables, forecast) are the group rows of the
accounting views: the city, and each park selected in ``$park``. Energy, CO₂
and the intensity trend are those of the enterprises selected in
``$enterprise`` (all of them: the city). Every figure is of the variant chosen
in ``$variant`` (DOMAIN.md §1: label every figure with its variant).
"""

from __future__ import annotations

from typing import Final

from dashboards.boards.accounting import (
    CO2_T,
    COVERAGE_FLAG,
    INTENSITY,
    LATEST_YTD_END,
    LOW_COVERAGE,
    RANGE_END_MONTH,
    RATIO,
    SELECTION_INTENSITY_SQL,
    TCE,
    fill,
    variant_energy,
)
from dashboards.panels import Board, Column, Kind, Panel, Row, Threshold

COVERAGE_THRESHOLDS: Final = (Threshold(None, "red"), Threshold(LOW_COVERAGE, "green"))

# -- target: intensity against 2022 and the path ------------------------------------------

INTENSITY_STATUS = Panel(
    key="intensity_status",
    kind=Kind.TABLE,
    sql=fill(
        """SELECT i.level, i.park_code, p.park_name, i.period_type, i.period,
       i.intensity, i.base_2022, i.change_vs_2022, i.path_value, i.target_2027, i.status,
       i.coverage, {coverage_flag} AS coverage_flag, i.value_added_coverage, i.enterprises
FROM api.intensity i
LEFT JOIN api.park p ON p.park_code = i.park_code
WHERE i.variant = '$variant' AND i.period_type IN ('ytd', 'rolling12')
  AND i.period_end = {latest_ytd_end}
  AND (i.level = 'city' OR (i.level = 'park' AND i.park_code IN ($park)))
ORDER BY i.level <> 'city', i.park_code, i.period_type DESC""",
        coverage_flag=COVERAGE_FLAG,
        latest_ytd_end=LATEST_YTD_END,
    ),
    width=24,
    columns=(
        Column("level", mapping="level"),
        Column("park_code"),
        Column("park_name"),
        Column("period_type", mapping="period_type"),
        Column("period"),
        Column("intensity", INTENSITY),
        Column("base_2022", INTENSITY),
        Column("change_vs_2022", RATIO),
        Column("path_value", INTENSITY),
        Column("target_2027", INTENSITY),
        Column("status", mapping="status"),
        Column("coverage", RATIO),
        Column("coverage_flag", mapping="coverage_flag"),
        Column("value_added_coverage", RATIO),
        Column("enterprises"),
    ),
)

SELECTION_INTENSITY = Panel(
    key="selection_intensity",
    kind=Kind.TIMESERIES,
    sql=SELECTION_INTENSITY_SQL,
    unit=INTENSITY,
    width=24,
    columns=(Column("intensity"), Column("base_2022"), Column("path_value"), Column("target_2027")),
)

# -- energy and CO2 -------------------------------------------------------------------------------

ENERGY_TOTAL = Panel(
    key="energy_total",
    kind=Kind.STAT,
    sql=fill(
        """SELECT sum({variant_energy}) AS energy_tce, sum(co2_t) AS co2_t
FROM api.energy_tce_month
WHERE level = 'enterprise' AND $__timeFilter(bucket) AND enterprise_code IN ($enterprise)""",
        variant_energy=variant_energy(),
    ),
    unit=TCE,
    width=8,
    height=6,
    columns=(Column("energy_tce", TCE), Column("co2_t", CO2_T)),
)

ENERGY_BY_INDUSTRY_TOTAL = Panel(
    key="energy_by_industry_total",
    kind=Kind.BARGAUGE,
    sql=fill(
        """SELECT industry_code, sum({variant_energy}) AS energy_tce
FROM api.energy_tce_month
WHERE level = 'enterprise' AND $__timeFilter(bucket) AND enterprise_code IN ($enterprise)
GROUP BY industry_code
ORDER BY energy_tce DESC NULLS LAST""",
        variant_energy=variant_energy(),
    ),
    unit=TCE,
    width=16,
    height=6,
)

ENERGY_BY_INDUSTRY = Panel(
    key="energy_by_industry",
    kind=Kind.TIMESERIES,
    sql=fill(
        """SELECT $__timeGroupAlias(bucket, $__interval), industry_code AS metric,
       sum({variant_energy}) AS energy_tce
FROM api.energy_tce_month
WHERE level = 'enterprise' AND $__timeFilter(bucket) AND enterprise_code IN ($enterprise)
GROUP BY 1, 2
ORDER BY 1, 2""",
        variant_energy=variant_energy(),
    ),
    unit=TCE,
)

CO2_BY_INDUSTRY = Panel(
    key="co2_by_industry",
    kind=Kind.TIMESERIES,
    sql="""SELECT $__timeGroupAlias(bucket, $__interval), industry_code AS metric, sum(co2_t) AS co2_t
FROM api.energy_tce_month
WHERE level = 'enterprise' AND $__timeFilter(bucket) AND enterprise_code IN ($enterprise)
GROUP BY 1, 2
ORDER BY 1, 2""",
    unit=CO2_T,
)

# tce and CO2 per carrier need the coefficients (docs/accounting.md): the api has
# them per group only, so carriers are shown in their physical units.
ENERGY_BY_CARRIER = Panel(
    key="energy_by_carrier",
    kind=Kind.TABLE,
    sql="""SELECT carrier, purpose, unit, count(DISTINCT enterprise_code || '/' || meter_code) AS meters,
       sum(quantity) AS quantity, sum(estimated_quantity) AS estimated_quantity,
       sum(readings)::float8 / nullif(sum(expected_readings), 0) AS coverage
FROM api.meter_energy_day
WHERE $__timeFilter(bucket) AND enterprise_code IN ($enterprise)
GROUP BY carrier, purpose, unit
ORDER BY carrier, purpose, unit""",
    width=24,
    columns=(
        Column("carrier"),
        Column("purpose"),
        Column("unit"),
        Column("meters"),
        Column("quantity"),
        Column("estimated_quantity"),
        Column("coverage", RATIO),
    ),
)

# -- top consumers and movers (latest year to date) ---------------------------------------

_CONTRIBUTION = fill(
    """SELECT c.park_code, c.enterprise_code, e.enterprise_name, c.industry_code, c.period,
       c.energy_tce, c.value_added_10k_yuan, c.intensity, c.base_2022,
       c.intensity / nullif(c.base_2022, 0) - 1 AS change_vs_2022,
       c.contribution_to_change, c.coverage,
       {coverage_flag} AS coverage_flag
FROM api.intensity_contribution c
JOIN api.enterprise e ON e.enterprise_code = c.enterprise_code
WHERE c.period_type = 'ytd' AND c.variant = '$variant' AND c.enterprise_code IN ($enterprise)
  AND c.period = (SELECT max(l.period) FROM api.intensity_contribution l
                  WHERE l.period_type = 'ytd' AND l.variant = '$variant'
                    AND l.period <= {range_end_month})""",
    coverage_flag=COVERAGE_FLAG.replace("i.coverage", "c.coverage"),
    range_end_month=RANGE_END_MONTH,
)

_CONTRIBUTION_COLUMNS: Final = (
    Column("park_code"),
    Column("enterprise_code"),
    Column("enterprise_name"),
    Column("industry_code"),
    Column("period"),
    Column("energy_tce", TCE),
    Column("value_added_10k_yuan"),
    Column("intensity", INTENSITY),
    Column("base_2022", INTENSITY),
    Column("change_vs_2022", RATIO),
    Column("contribution_to_change", RATIO),
    Column("coverage", RATIO),
    Column("coverage_flag", mapping="coverage_flag"),
)

TOP_CONSUMERS = Panel(
    key="top_consumers",
    kind=Kind.TABLE,
    sql=_CONTRIBUTION + "\nORDER BY c.energy_tce DESC NULLS LAST, c.enterprise_code\nLIMIT 10",
    width=24,
    columns=_CONTRIBUTION_COLUMNS,
)

TOP_MOVERS = Panel(
    key="top_movers",
    kind=Kind.TABLE,
    sql=_CONTRIBUTION
    + "\nORDER BY abs(c.contribution_to_change) DESC NULLS LAST, c.enterprise_code\nLIMIT 10",
    width=24,
    columns=_CONTRIBUTION_COLUMNS,
)

# -- forecast to 2027 ----------------------------------------------------------------------------

INTENSITY_FORECAST = Panel(
    key="intensity_forecast",
    kind=Kind.TABLE,
    sql="""SELECT f.level, f.park_code, f.year, f.intensity, f.intensity_lower, f.intensity_upper,
       f.path_value, f.target_2027, f.status, f.energy_tce, f.months_used, f.data_until, f.model
FROM api.intensity_forecast f
WHERE f.variant = '$variant' AND (f.level = 'city' OR (f.level = 'park' AND f.park_code IN ($park)))
ORDER BY f.level <> 'city', f.park_code, f.year""",
    width=24,
    columns=(
        Column("level", mapping="level"),
        Column("park_code"),
        Column("year"),
        Column("intensity", INTENSITY),
        Column("intensity_lower", INTENSITY),
        Column("intensity_upper", INTENSITY),
        Column("path_value", INTENSITY),
        Column("target_2027", INTENSITY),
        Column("status", mapping="status"),
        Column("energy_tce", TCE),
        Column("months_used"),
        Column("data_until"),
        Column("model"),
    ),
)

# Prediction intervals of several parks cannot be added up: the panel shows the one
# park selected, or the city.
ENERGY_FORECAST = Panel(
    key="energy_forecast",
    kind=Kind.TIMESERIES,
    sql=fill(
        """WITH scope AS (
    SELECT CASE WHEN count(*) = 1 THEN min(park_code) END AS park_code
    FROM api.park WHERE park_code IN ($park)
), observed AS (
    SELECT t.bucket AS "time", {variant_energy_t} AS observed_tce
    FROM api.energy_tce_month t, scope s
    WHERE $__timeFilter(t.bucket)
      AND t.level = CASE WHEN s.park_code IS NULL THEN 'city' ELSE 'park' END
      AND t.park_code IS NOT DISTINCT FROM s.park_code
), forecast AS (
    SELECT f.month_start AS "time", f.energy_tce AS forecast_tce,
           f.energy_tce_lower AS forecast_lower_tce, f.energy_tce_upper AS forecast_upper_tce
    FROM (SELECT m.*, (m.month::timestamp AT TIME ZONE 'Asia/Shanghai') AS month_start
          FROM api.energy_forecast_month m) f, scope s
    WHERE $__timeFilter(f.month_start) AND f.variant = '$variant'
      AND f.level = CASE WHEN s.park_code IS NULL THEN 'city' ELSE 'park' END
      AND f.park_code IS NOT DISTINCT FROM s.park_code
)
SELECT "time", o.observed_tce, f.forecast_tce, f.forecast_lower_tce, f.forecast_upper_tce
FROM observed o
FULL JOIN forecast f USING ("time")
ORDER BY 1""",
        variant_energy_t=variant_energy("t"),
    ),
    unit=TCE,
    width=24,
    columns=(
        Column("observed_tce"),
        Column("forecast_tce"),
        Column("forecast_lower_tce"),
        Column("forecast_upper_tce"),
    ),
)

# -- data coverage -----------------------------------------------------------------------------------

COVERAGE_TREND = Panel(
    key="coverage_trend",
    kind=Kind.TIMESERIES,
    sql="""SELECT $__timeGroupAlias(bucket, $__interval), park_code AS metric,
       sum(readings)::float8 / nullif(sum(expected_readings), 0) AS coverage
FROM api.meter_energy_day
WHERE $__timeFilter(bucket) AND enterprise_code IN ($enterprise)
GROUP BY 1, 2
ORDER BY 1, 2""",
    unit=RATIO,
    thresholds=COVERAGE_THRESHOLDS,
)

ENTERPRISE_COVERAGE = Panel(
    key="enterprise_coverage",
    kind=Kind.TABLE,
    sql=fill(
        """SELECT i.park_code, i.enterprise_code, e.enterprise_name, i.period, i.coverage,
       {coverage_flag} AS coverage_flag, i.value_added_coverage, i.months
FROM api.intensity i
JOIN api.enterprise e ON e.enterprise_code = i.enterprise_code
WHERE i.level = 'enterprise' AND i.period_type = 'ytd' AND i.variant = '$variant'
  AND i.period_end = {latest_ytd_end} AND i.enterprise_code IN ($enterprise)
ORDER BY i.coverage NULLS FIRST, i.enterprise_code""",
        coverage_flag=COVERAGE_FLAG,
        latest_ytd_end=LATEST_YTD_END,
    ),
    columns=(
        Column("park_code"),
        Column("enterprise_code"),
        Column("enterprise_name"),
        Column("period"),
        Column("coverage", RATIO),
        Column("coverage_flag", mapping="coverage_flag"),
        Column("value_added_coverage", RATIO),
        Column("months"),
    ),
    thresholds=COVERAGE_THRESHOLDS,
)

BOARD = Board(
    uid="parkenergy-overview",
    key="overview",
    rows=(
        Row("target", (INTENSITY_STATUS, SELECTION_INTENSITY)),
        Row(
            "energy",
            (ENERGY_TOTAL, ENERGY_BY_INDUSTRY_TOTAL, ENERGY_BY_INDUSTRY, CO2_BY_INDUSTRY, ENERGY_BY_CARRIER),
        ),
        Row("movers", (TOP_CONSUMERS, TOP_MOVERS)),
        Row("forecast", (INTENSITY_FORECAST, ENERGY_FORECAST)),
        Row("coverage", (COVERAGE_TREND, ENTERPRISE_COVERAGE)),
    ),
    # Two years back and to the end of next year: the forecast to 2027 shows.
    time_from="now-2y/y",
    time_to="now+1y/y",
    refresh="15m",
)
