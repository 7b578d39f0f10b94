-- Energy in tce (three variants), CO2, intensity against the 2022 base and the 2027
-- target, and the stored forecast (docs/accounting.md, docs/api.md).
--
-- tce and CO2 are computed when queried: native quantities of analytics.energy_day
-- and analytics.energy_month × the factor valid at each bucket (0007). A revised
-- factor or a changed setting therefore changes every figure at once, and nothing
-- derived has to be recomputed or can go stale.

-- The policy target (DOMAIN.md §1): I_2027 <= 0.90 × I_2022, even path
-- I_t = I_2022 × 0.9^((t - 2022)/5); figures from data below 90 % coverage are
-- marked (DOMAIN.md §4, completeness >= 90 %). One row: the current target.
CREATE TABLE accounting.intensity_target (
    singleton    boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    base_year    integer NOT NULL,
    target_year  integer NOT NULL CHECK (target_year > base_year),
    target_ratio double precision NOT NULL CHECK (target_ratio > 0),
    min_coverage double precision NOT NULL CHECK (min_coverage BETWEEN 0 AND 1),
    source       text NOT NULL
);
INSERT INTO accounting.intensity_target VALUES
    (true, 2022, 2027, 0.90, 0.90,
     'Ezhou draft policy on high-quality industrial development (-10 % by 2027 vs 2022); '
     'completeness >= 90 % (provincial online-monitoring practice)');

-- The factors of every meter as consecutive segments [seg_from, seg_to) covering all
-- dates: at each boundary of any candidate's validity the best candidate is chosen
-- (tce: highest priority, then latest valid_from; CO2: latest valid_from). NULL: no
-- factor in that segment. Energy rows then find their factors by one range join.
CREATE VIEW accounting.meter_factor_segment AS
WITH bounds AS (
    SELECT meter_id, '-infinity'::date AS b FROM registry.meter
    UNION SELECT meter_id, valid_from FROM accounting.meter_tce_factor
    UNION SELECT meter_id, valid_to FROM accounting.meter_tce_factor WHERE valid_to IS NOT NULL
    UNION SELECT meter_id, valid_from FROM accounting.meter_co2_factor
    UNION SELECT meter_id, valid_to FROM accounting.meter_co2_factor WHERE valid_to IS NOT NULL
), seg AS (
    SELECT meter_id, b AS seg_from, lead(b, 1, 'infinity'::date) OVER (PARTITION BY meter_id ORDER BY b) AS seg_to
    FROM bounds
), tce AS (
    SELECT DISTINCT ON (s.meter_id, s.seg_from) s.meter_id, s.seg_from, s.seg_to, f.kgce_per_meter_unit
    FROM seg s
    LEFT JOIN accounting.meter_tce_factor f
      ON f.meter_id = s.meter_id AND f.valid_from <= s.seg_from
     AND (f.valid_to IS NULL OR s.seg_from < f.valid_to)
    ORDER BY s.meter_id, s.seg_from, f.priority DESC NULLS LAST, f.valid_from DESC NULLS LAST
)
SELECT DISTINCT ON (t.meter_id, t.seg_from) t.meter_id, t.seg_from, t.seg_to, t.kgce_per_meter_unit,
       c.kgco2_per_meter_unit, c.reference_year
FROM tce t
LEFT JOIN accounting.meter_co2_factor c
  ON c.meter_id = t.meter_id AND c.valid_from <= t.seg_from
 AND (c.valid_to IS NULL OR t.seg_from < c.valid_to)
ORDER BY t.meter_id, t.seg_from, c.valid_from DESC NULLS LAST;

-- Every day and month bucket of every meter with its tce and CO2 factors
-- [kgce, kg CO2 per meter unit] (NULL: no factor), the meter's role, and its readings
-- (capped at the expected number) and expected readings.
CREATE VIEW accounting.meter_energy AS
WITH e AS (
    SELECT 'day'::text AS granularity, meter_id, bucket, quantity, readings, expected_readings
    FROM analytics.energy_day
    UNION ALL
    SELECT 'month'::text, meter_id, bucket, quantity, readings, expected_readings
    FROM analytics.energy_month
)
SELECT e.granularity, e.meter_id, m.enterprise_id, e.bucket,
       (e.bucket AT TIME ZONE 'Asia/Shanghai')::date AS local_day, m.carrier, m.purpose,
       m.parent_meter_id IS NULL AS top_level, e.quantity,
       least(e.readings, e.expected_readings) AS readings, e.expected_readings, s.kgce_per_meter_unit,
       s.kgco2_per_meter_unit, s.reference_year
FROM e
JOIN registry.meter m USING (meter_id)
LEFT JOIN accounting.meter_factor_segment s
  ON s.meter_id = e.meter_id
 AND (e.bucket AT TIME ZONE 'Asia/Shanghai')::date >= s.seg_from
 AND (e.bucket AT TIME ZONE 'Asia/Shanghai')::date < s.seg_to;

-- Per enterprise and bucket, the accounting rules of DOMAIN.md §1-2 (GB/T 2589-2020):
--   gross = top-level consumption and feedstock meters (sub-meters are already inside
--           their parent) + electricity generation (on-site PV; generation of other
--           carriers converts fuel already counted) - export of any carrier (energy
--           delivered out of the boundary is deducted; exported PV is zero consumption);
--   feedstock = feedstock meters (原料用能, 发改环资〔2022〕803号);
--   non-fossil = electricity generation - electricity export = self-consumed PV, at
--           least 0 (发改环资〔2024〕113号).
--   CO2 = top-level consumption and feedstock × factor (electricity: grid factor of the
--         chosen region; self-consumed PV emits nothing) - non-electricity export.
--   coverage = readings received / readings expected over the enterprise's meters
--         (DOMAIN.md §4: completeness = received / expected uploads).
CREATE VIEW accounting.enterprise_energy AS
WITH r AS (
    SELECT me.*,
           CASE
               WHEN purpose IN ('consumption', 'feedstock') AND top_level THEN 1
               WHEN purpose = 'generation' AND carrier = 'electricity' THEN 1
               WHEN purpose = 'export' THEN -1
               ELSE 0
           END AS gross_sign,
           CASE
               WHEN purpose IN ('consumption', 'feedstock') AND top_level THEN 1
               WHEN purpose = 'export' AND carrier <> 'electricity' THEN -1
               ELSE 0
           END AS co2_sign,
           CASE
               WHEN carrier = 'electricity' AND purpose = 'generation' THEN 1
               WHEN carrier = 'electricity' AND purpose = 'export' THEN -1
               ELSE 0
           END AS nonfossil_sign
    FROM accounting.meter_energy me
), e AS (
    SELECT granularity, enterprise_id, bucket, min(local_day) AS local_day,
           sum(gross_sign * quantity * kgce_per_meter_unit) / 1000 AS gross_tce,
           coalesce(sum(quantity * kgce_per_meter_unit) FILTER (WHERE purpose = 'feedstock'), 0)
               / 1000 AS feedstock_tce,
           greatest(0, sum(nonfossil_sign * quantity * kgce_per_meter_unit)) / 1000 AS nonfossil_tce,
           sum(co2_sign * quantity * kgco2_per_meter_unit) / 1000 AS co2_t,
           coalesce(bool_and(kgce_per_meter_unit IS NOT NULL) FILTER (WHERE gross_sign <> 0), true)
               AS factors_complete,
           coalesce(bool_and(kgco2_per_meter_unit IS NOT NULL) FILTER (WHERE co2_sign <> 0), true)
               AS co2_complete,
           coalesce(bool_or(reference_year IS NOT NULL
                            AND reference_year <> extract(year FROM local_day)::integer)
                    FILTER (WHERE co2_sign <> 0), false) AS co2_provisional,
           sum(readings) AS readings, sum(expected_readings) AS expected_readings,
           count(*) AS meters
    FROM r
    GROUP BY granularity, enterprise_id, bucket
)
SELECT granularity, enterprise_id, bucket, local_day, gross_tce,
       gross_tce - feedstock_tce AS excl_feedstock_tce,
       gross_tce - feedstock_tce - nonfossil_tce AS excl_nonfossil_tce,
       feedstock_tce, nonfossil_tce, co2_t, factors_complete, co2_complete, co2_provisional,
       readings::double precision / nullif(expected_readings, 0) AS coverage,
       readings, expected_readings, meters
FROM e;

-- Every enterprise in each group it belongs to: itself, its industry within its park,
-- its industry in the city, its park and the city.
CREATE VIEW accounting.enterprise_group AS
SELECT e.enterprise_id, 'enterprise'::text AS level, p.park_code, e.industry_code, e.enterprise_code
FROM registry.enterprise e JOIN registry.park p USING (park_id)
UNION ALL
SELECT e.enterprise_id, 'park_industry', p.park_code, e.industry_code, NULL::text
FROM registry.enterprise e JOIN registry.park p USING (park_id)
UNION ALL
SELECT e.enterprise_id, 'industry', NULL::text, e.industry_code, NULL::text
FROM registry.enterprise e
UNION ALL
SELECT e.enterprise_id, 'park', p.park_code, NULL::text, NULL::text
FROM registry.enterprise e JOIN registry.park p USING (park_id)
UNION ALL
SELECT e.enterprise_id, 'city', NULL::text, NULL::text, NULL::text
FROM registry.enterprise e;

-- Energy and CO2 per group and bucket.
CREATE VIEW accounting.group_energy AS
SELECT ee.granularity, g.level, g.park_code, g.industry_code, g.enterprise_code, ee.bucket,
       sum(ee.gross_tce) AS energy_tce_gross,
       sum(ee.excl_feedstock_tce) AS energy_tce_excl_feedstock,
       sum(ee.excl_nonfossil_tce) AS energy_tce_excl_feedstock_nonfossil,
       sum(ee.feedstock_tce) AS feedstock_tce,
       sum(ee.nonfossil_tce) AS nonfossil_tce,
       sum(ee.co2_t) AS co2_t,
       sum(ee.readings)::double precision / nullif(sum(ee.expected_readings), 0) AS coverage,
       bool_and(ee.factors_complete) AS factors_complete,
       bool_and(ee.co2_complete) AS co2_complete,
       bool_or(ee.co2_provisional) AS co2_provisional,
       count(*)::integer AS enterprises,
       sum(ee.meters)::integer AS meters
FROM accounting.enterprise_energy ee
JOIN accounting.enterprise_group g USING (enterprise_id)
GROUP BY ee.granularity, g.level, g.park_code, g.industry_code, g.enterprise_code, ee.bucket;

CREATE VIEW api.energy_tce_day AS
SELECT ge.level, ge.park_code, ge.industry_code, ge.enterprise_code, ge.bucket,
       ge.energy_tce_gross, ge.energy_tce_excl_feedstock, ge.energy_tce_excl_feedstock_nonfossil,
       ge.feedstock_tce, ge.nonfossil_tce, ge.co2_t, ge.coverage,
       ge.coverage < t.min_coverage AS low_coverage,
       ge.factors_complete, ge.co2_complete, ge.co2_provisional, ge.enterprises, ge.meters
FROM accounting.group_energy ge
CROSS JOIN accounting.intensity_target t
WHERE ge.granularity = 'day';

CREATE VIEW api.energy_tce_month AS
SELECT ge.level, ge.park_code, ge.industry_code, ge.enterprise_code, ge.bucket,
       ge.energy_tce_gross, ge.energy_tce_excl_feedstock, ge.energy_tce_excl_feedstock_nonfossil,
       ge.feedstock_tce, ge.nonfossil_tce, ge.co2_t, ge.coverage,
       ge.coverage < t.min_coverage AS low_coverage,
       ge.factors_complete, ge.co2_complete, ge.co2_provisional, ge.enterprises, ge.meters
FROM accounting.group_energy ge
CROSS JOIN accounting.intensity_target t
WHERE ge.granularity = 'month';

-- Baseline statistics in tce: each carrier's consumption × the coefficient valid on
-- 1 July of the baseline year (an enterprise-wide override first, then the default).
CREATE VIEW accounting.baseline_tce AS
WITH f AS (
    SELECT o.enterprise_id, o.carrier, u.dimension, o.kgce_per_unit / u.to_canonical AS kgce_per_canonical,
           o.valid_from, o.valid_to, 2 AS priority
    FROM accounting.tce_factor_override_current o
    JOIN accounting.unit u ON u.symbol = o.unit
    WHERE o.meter_id IS NULL
    UNION ALL
    SELECT NULL::integer, c.carrier, u.dimension, c.kgce_per_unit / u.to_canonical, c.valid_from, c.valid_to, 1
    FROM accounting.tce_factor_current c
    JOIN accounting.unit u ON u.symbol = c.unit
    JOIN accounting.setting s ON s.key = 'electricity_basis' AND c.basis IN ('any', s.value)
)
SELECT DISTINCT ON (b.enterprise_id, b.year, b.carrier)
       b.enterprise_id, b.year, b.carrier, b.unit, b.consumption, b.feedstock, b.non_fossil,
       f.kgce_per_canonical * bu.to_canonical AS kgce_per_unit
FROM economics.baseline b
JOIN accounting.unit bu ON bu.symbol = b.unit
LEFT JOIN f
  ON f.carrier = b.carrier AND f.dimension = bu.dimension
 AND (f.enterprise_id IS NULL OR f.enterprise_id = b.enterprise_id)
 AND f.valid_from <= make_date(b.year, 7, 1) AND (f.valid_to IS NULL OR make_date(b.year, 7, 1) < f.valid_to)
ORDER BY b.enterprise_id, b.year, b.carrier, f.priority DESC NULLS LAST, f.valid_from DESC NULLS LAST;

CREATE VIEW accounting.enterprise_baseline AS
SELECT bv.enterprise_id, bv.year, bv.value_added_10k_yuan,
       coalesce(sum(b.consumption * b.kgce_per_unit), 0) / 1000 AS gross_tce,
       coalesce(sum((b.consumption - b.feedstock) * b.kgce_per_unit), 0) / 1000 AS excl_feedstock_tce,
       coalesce(sum((b.consumption - b.feedstock - b.non_fossil) * b.kgce_per_unit), 0) / 1000
           AS excl_nonfossil_tce,
       coalesce(bool_and(b.kgce_per_unit IS NOT NULL), true) AS factors_complete
FROM economics.baseline_value_added bv
LEFT JOIN accounting.baseline_tce b USING (enterprise_id, year)
GROUP BY bv.enterprise_id, bv.year, bv.value_added_10k_yuan;

-- The dense grid of enterprise × month over the months that have energy data, with
-- monthly energy, value added at 2022 prices and coverage (0 for a missing month).
-- "matched": the month has both energy and comparable value added; intensity uses
-- matched months only, in numerator and denominator alike.
CREATE VIEW accounting.enterprise_month_cell AS
WITH em AS MATERIALIZED (
    SELECT enterprise_id, local_day AS month, gross_tce, excl_feedstock_tce, excl_nonfossil_tce,
           co2_t, coverage
    FROM accounting.enterprise_energy
    WHERE granularity = 'month'
), va AS (
    SELECT enterprise_id, period AS month, value_added_10k_yuan_2022
    FROM economics.value_added_comparable
), months AS (
    SELECT generate_series(min(month), max(month), interval '1 month')::date AS month FROM em
), ents AS (
    SELECT enterprise_id FROM em
    UNION
    SELECT enterprise_id FROM economics.value_added
    UNION
    SELECT enterprise_id FROM economics.baseline_value_added bv, accounting.intensity_target t
    WHERE bv.year = t.base_year
)
SELECT ents.enterprise_id, months.month, em.gross_tce, em.excl_feedstock_tce, em.excl_nonfossil_tce,
       em.co2_t, va.value_added_10k_yuan_2022 AS va_2022,
       em.enterprise_id IS NOT NULL AS has_energy,
       em.enterprise_id IS NOT NULL AND va.value_added_10k_yuan_2022 IS NOT NULL AS matched,
       coalesce(em.coverage, 0) AS coverage
FROM ents
CROSS JOIN months
LEFT JOIN em USING (enterprise_id, month)
LEFT JOIN va USING (enterprise_id, month);

CREATE VIEW accounting.group_month AS
SELECT g.level, g.park_code, g.industry_code, g.enterprise_code, c.month,
       coalesce(sum(c.gross_tce) FILTER (WHERE c.matched), 0) AS gross_tce,
       coalesce(sum(c.excl_feedstock_tce) FILTER (WHERE c.matched), 0) AS excl_feedstock_tce,
       coalesce(sum(c.excl_nonfossil_tce) FILTER (WHERE c.matched), 0) AS excl_nonfossil_tce,
       coalesce(sum(c.va_2022) FILTER (WHERE c.matched), 0) AS va_2022,
       sum(c.coverage) AS coverage_sum,
       count(*) AS enterprises,
       count(*) FILTER (WHERE c.has_energy) AS energy_cells,
       count(*) FILTER (WHERE c.matched) AS matched_cells
FROM accounting.enterprise_month_cell c
JOIN accounting.enterprise_group g USING (enterprise_id)
GROUP BY g.level, g.park_code, g.industry_code, g.enterprise_code, c.month;

-- Sums over the four kinds of period ending in each month: the month, year to date,
-- rolling 12 months, and (at the last month of each year in the data) the calendar year.
CREATE VIEW accounting.group_period AS
WITH w AS (
    SELECT gm.*,
           extract(year FROM gm.month)::integer AS year,
           extract(month FROM gm.month)::integer AS month_no,
           gm.month = max(gm.month) OVER yr AS last_of_year,
           sum(gross_tce) OVER ytd AS ytd_gross, sum(excl_feedstock_tce) OVER ytd AS ytd_excl_feedstock,
           sum(excl_nonfossil_tce) OVER ytd AS ytd_excl_nonfossil, sum(va_2022) OVER ytd AS ytd_va,
           sum(coverage_sum) OVER ytd AS ytd_coverage, sum(energy_cells) OVER ytd AS ytd_energy_cells,
           sum(matched_cells) OVER ytd AS ytd_matched_cells,
           sum(gross_tce) OVER r12 AS r12_gross, sum(excl_feedstock_tce) OVER r12 AS r12_excl_feedstock,
           sum(excl_nonfossil_tce) OVER r12 AS r12_excl_nonfossil, sum(va_2022) OVER r12 AS r12_va,
           sum(coverage_sum) OVER r12 AS r12_coverage, sum(energy_cells) OVER r12 AS r12_energy_cells,
           sum(matched_cells) OVER r12 AS r12_matched_cells,
           sum(gross_tce) OVER yr AS yr_gross, sum(excl_feedstock_tce) OVER yr AS yr_excl_feedstock,
           sum(excl_nonfossil_tce) OVER yr AS yr_excl_nonfossil, sum(va_2022) OVER yr AS yr_va,
           sum(coverage_sum) OVER yr AS yr_coverage, sum(energy_cells) OVER yr AS yr_energy_cells,
           sum(matched_cells) OVER yr AS yr_matched_cells
    FROM accounting.group_month gm
    WINDOW
        ytd AS (PARTITION BY level, park_code, industry_code, enterprise_code, date_trunc('year', month)
                ORDER BY month ROWS UNBOUNDED PRECEDING),
        r12 AS (PARTITION BY level, park_code, industry_code, enterprise_code
                ORDER BY month ROWS BETWEEN 11 PRECEDING AND CURRENT ROW),
        yr AS (PARTITION BY level, park_code, industry_code, enterprise_code, date_trunc('year', month))
)
SELECT w.level, w.park_code, w.industry_code, w.enterprise_code, p.period_type, p.period,
       p.period_start, w.month AS period_end, p.months, p.t_year, w.enterprises,
       p.gross_tce, p.excl_feedstock_tce, p.excl_nonfossil_tce, p.va_2022,
       p.coverage_sum / (w.enterprises * p.months) AS coverage,
       p.matched_cells::double precision / nullif(p.energy_cells, 0) AS value_added_coverage
FROM w
CROSS JOIN LATERAL (
    VALUES
        ('month', to_char(w.month, 'YYYY-MM'), w.month, 1, w.year::double precision,
         w.gross_tce, w.excl_feedstock_tce, w.excl_nonfossil_tce, w.va_2022,
         w.coverage_sum, w.energy_cells, w.matched_cells),
        ('ytd', to_char(w.month, 'YYYY-MM'), make_date(w.year, 1, 1), w.month_no, w.year::double precision,
         w.ytd_gross, w.ytd_excl_feedstock, w.ytd_excl_nonfossil, w.ytd_va,
         w.ytd_coverage, w.ytd_energy_cells, w.ytd_matched_cells),
        ('rolling12', to_char(w.month, 'YYYY-MM'), (w.month - interval '11 months')::date, 12,
         w.year - 1 + w.month_no / 12.0,
         w.r12_gross, w.r12_excl_feedstock, w.r12_excl_nonfossil, w.r12_va,
         w.r12_coverage, w.r12_energy_cells, w.r12_matched_cells),
        ('year', w.year::text, make_date(w.year, 1, 1), 12, w.year::double precision,
         w.yr_gross, w.yr_excl_feedstock, w.yr_excl_nonfossil, w.yr_va,
         w.yr_coverage, w.yr_energy_cells, w.yr_matched_cells)
) AS p(period_type, period, period_start, months, t_year, gross_tce, excl_feedstock_tce,
       excl_nonfossil_tce, va_2022, coverage_sum, energy_cells, matched_cells)
WHERE p.period_type <> 'year' OR w.last_of_year;

CREATE VIEW accounting.group_base AS
SELECT g.level, g.park_code, g.industry_code, g.enterprise_code,
       sum(b.gross_tce) AS gross_tce, sum(b.excl_feedstock_tce) AS excl_feedstock_tce,
       sum(b.excl_nonfossil_tce) AS excl_nonfossil_tce, sum(b.value_added_10k_yuan) AS va,
       bool_and(b.factors_complete) AS factors_complete
FROM accounting.enterprise_baseline b
JOIN accounting.intensity_target t ON b.year = t.base_year
JOIN accounting.enterprise_group g USING (enterprise_id)
GROUP BY g.level, g.park_code, g.industry_code, g.enterprise_code;

-- Intensity [tce per 10^4 yuan at 2022 prices] per group, period and variant, against
-- the base year and the target (DOMAIN.md §1; analytics/target.py has the same rules).
CREATE VIEW api.intensity AS
WITH v AS (
    SELECT gp.*, var.variant, var.energy_tce, var.base_energy_tce, gb.va AS base_va,
           gb.factors_complete AS base_factors_complete, t.base_year, t.target_year, t.target_ratio,
           t.min_coverage
    FROM accounting.group_period gp
    CROSS JOIN accounting.intensity_target t
    LEFT JOIN accounting.group_base gb
      ON gb.level = gp.level
     AND gb.park_code IS NOT DISTINCT FROM gp.park_code
     AND gb.industry_code IS NOT DISTINCT FROM gp.industry_code
     AND gb.enterprise_code IS NOT DISTINCT FROM gp.enterprise_code
    CROSS JOIN LATERAL (
        VALUES ('gross', gp.gross_tce, gb.gross_tce),
               ('excl_feedstock', gp.excl_feedstock_tce, gb.excl_feedstock_tce),
               ('excl_feedstock_nonfossil', gp.excl_nonfossil_tce, gb.excl_nonfossil_tce)
    ) AS var(variant, energy_tce, base_energy_tce)
), i AS (
    SELECT v.*,
           v.energy_tce / nullif(v.va_2022, 0) AS intensity,
           v.base_energy_tce / nullif(v.base_va, 0) AS base_2022,
           power(v.target_ratio, (v.t_year - v.base_year) / (v.target_year - v.base_year)) AS path_ratio
    FROM v
)
SELECT i.level, i.park_code, i.industry_code, i.enterprise_code, i.period_type, i.period,
       i.period_start, i.period_end, i.variant,
       i.energy_tce, i.va_2022 AS value_added_10k_yuan, i.intensity, i.base_2022,
       i.intensity / i.base_2022 - 1 AS change_vs_2022,
       i.target_ratio * i.base_2022 AS target_2027,
       i.base_2022 * i.path_ratio AS path_value,
       CASE
           WHEN i.intensity IS NULL OR i.base_2022 IS NULL THEN NULL
           WHEN i.intensity <= i.base_2022 * i.path_ratio THEN 'on_track'
           WHEN i.intensity <= i.base_2022 THEN 'at_risk'
           ELSE 'off_track'
       END AS status,
       i.coverage, i.coverage < i.min_coverage AS low_coverage, i.value_added_coverage,
       i.base_energy_tce AS base_energy_tce, i.base_va AS base_value_added_10k_yuan,
       i.enterprises, i.months
FROM i;

-- Each enterprise's share of its park's change against the base year: with
-- I = ΣE/V and I0 = ΣE0/V0, ΔI/I0 = Σ_e (E_e/V - E0_e/V0)/I0 exactly.
CREATE VIEW api.intensity_contribution AS
SELECT e.park_code, e.enterprise_code, e.industry_code, e.period_type, e.period, e.variant,
       e.energy_tce, e.value_added_10k_yuan, e.base_energy_tce, e.base_value_added_10k_yuan,
       e.intensity, e.base_2022,
       pk.intensity AS park_intensity, pk.base_2022 AS park_base_2022,
       pk.change_vs_2022 AS park_change_vs_2022,
       coalesce(e.energy_tce, 0) / nullif(pk.value_added_10k_yuan, 0)
           - coalesce(e.base_energy_tce, 0) / nullif(pk.base_value_added_10k_yuan, 0)
           AS contribution_intensity,
       (coalesce(e.energy_tce, 0) / nullif(pk.value_added_10k_yuan, 0)
           - coalesce(e.base_energy_tce, 0) / nullif(pk.base_value_added_10k_yuan, 0))
           / nullif(pk.base_2022, 0) AS contribution_to_change,
       e.coverage, e.low_coverage
FROM api.intensity e
JOIN api.intensity pk
  ON pk.level = 'park' AND pk.park_code = e.park_code AND pk.period_type = e.period_type
 AND pk.period = e.period AND pk.variant = e.variant
WHERE e.level = 'enterprise';

-- Forecast runs (analytics/forecast.py): yearly intensity to the target year with
-- prediction intervals and a status, and the monthly energy and value added behind it.
CREATE TABLE accounting.forecast_run (
    run_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_at      timestamptz NOT NULL,
    data_until  date,
    model       text NOT NULL,
    interval_pct double precision NOT NULL,
    groups      integer NOT NULL,
    skipped     integer NOT NULL
);

CREATE TABLE accounting.intensity_forecast (
    run_id           bigint NOT NULL REFERENCES accounting.forecast_run ON DELETE CASCADE,
    level            text NOT NULL,
    park_code        text,
    enterprise_code  text,
    variant          text NOT NULL,
    year             integer NOT NULL,
    energy_tce       double precision NOT NULL,
    energy_tce_lower double precision NOT NULL,
    energy_tce_upper double precision NOT NULL,
    value_added_10k_yuan       double precision NOT NULL,
    value_added_10k_yuan_lower double precision NOT NULL,
    value_added_10k_yuan_upper double precision NOT NULL,
    intensity        double precision NOT NULL,
    intensity_lower  double precision NOT NULL,
    intensity_upper  double precision NOT NULL,
    base_2022        double precision,
    target_2027      double precision,
    path_value       double precision,
    status           text CHECK (status IN ('on_track', 'at_risk', 'off_track')),
    months_used      integer NOT NULL,
    UNIQUE NULLS NOT DISTINCT (run_id, level, park_code, enterprise_code, variant, year)
);

CREATE TABLE accounting.energy_forecast_month (
    run_id          bigint NOT NULL REFERENCES accounting.forecast_run ON DELETE CASCADE,
    level           text NOT NULL,
    park_code       text,
    enterprise_code text,
    variant         text NOT NULL,
    month           date NOT NULL,
    energy_tce       double precision NOT NULL,
    energy_tce_lower double precision NOT NULL,
    energy_tce_upper double precision NOT NULL,
    value_added_10k_yuan       double precision NOT NULL,
    value_added_10k_yuan_lower double precision NOT NULL,
    value_added_10k_yuan_upper double precision NOT NULL,
    UNIQUE NULLS NOT DISTINCT (run_id, level, park_code, enterprise_code, variant, month)
);

CREATE VIEW api.intensity_forecast AS
SELECT r.run_at, r.data_until, r.model, r.interval_pct, f.level, f.park_code, f.enterprise_code,
       f.variant, f.year, f.energy_tce, f.energy_tce_lower, f.energy_tce_upper,
       f.value_added_10k_yuan, f.value_added_10k_yuan_lower, f.value_added_10k_yuan_upper,
       f.intensity, f.intensity_lower, f.intensity_upper, f.base_2022,
       f.target_2027, f.path_value, f.status, f.months_used
FROM accounting.intensity_forecast f
JOIN accounting.forecast_run r USING (run_id)
WHERE r.run_id = (SELECT max(run_id) FROM accounting.forecast_run);

CREATE VIEW api.energy_forecast_month AS
SELECT r.run_at, f.level, f.park_code, f.enterprise_code, f.variant, f.month, f.energy_tce,
       f.energy_tce_lower, f.energy_tce_upper, f.value_added_10k_yuan, f.value_added_10k_yuan_lower,
       f.value_added_10k_yuan_upper
FROM accounting.energy_forecast_month f
JOIN accounting.forecast_run r USING (run_id)
WHERE r.run_id = (SELECT max(run_id) FROM accounting.forecast_run);

GRANT SELECT ON ALL TABLES IN SCHEMA accounting TO parkenergy_analytics;
GRANT INSERT, UPDATE, DELETE ON accounting.forecast_run, accounting.intensity_forecast,
    accounting.energy_forecast_month TO parkenergy_analytics;
GRANT SELECT ON api.energy_tce_day, api.energy_tce_month, api.intensity, api.intensity_contribution,
    api.intensity_forecast, api.energy_forecast_month TO parkenergy_analytics, parkenergy_grafana;
