-- Energy and CO2 per group and day (api.energy_tce_day) computed only for the groups and
-- days a query asks for (docs/accounting.md, docs/benchmarks.md "Intensity benchmark").
--
-- Before, accounting.group_energy aggregated every enterprise's day and joined the group
-- membership afterwards, so a park or enterprise filter could not reach the rollups: a
-- park's or an enterprise's series cost as much as the city's. Now the per-enterprise
-- aggregate carries the enterprise's park, industry and code as grouping columns, and the
-- groups are one branch per level. A filter on level leaves out the other branches when
-- the query is planned; a filter on park_code, industry_code, enterprise_code or bucket is
-- on grouping columns of the remaining branch, so it is applied to the registry and to
-- analytics.energy_day before anything is aggregated. Same rules, columns, types and
-- figures as migrations 0009 and 0010 (tests/test_accounting_pushdown.py compares them).

-- Every day and month bucket of every meter as accounting.meter_energy (0009), with the
-- enterprise's park, industry and code (k). The registry is joined before the factor
-- segments, so that a filter on the keys reaches the rollup's primary key (meter_id,
-- bucket) through the meters of the enterprises asked for. The DISTINCT changes no row
-- (enterprise_id is a key) but makes k one relation to the planner, which then estimates
-- the per-enterprise groups right (enterprises x buckets) and aggregates by hashing.
CREATE VIEW accounting.meter_energy_keyed AS
WITH x AS (
    SELECT 'day'::text AS granularity, meter_id, bucket, quantity, readings, expected_readings
    FROM analytics.energy_day
    UNION ALL
    SELECT 'month'::text, meter_id, bucket, quantity, readings, expected_readings
    FROM analytics.energy_month
)
SELECT x.granularity, x.meter_id, k.enterprise_id, k.park_code, k.industry_code, k.enterprise_code,
       x.bucket, (x.bucket AT TIME ZONE 'Asia/Shanghai')::date AS local_day, m.carrier, m.purpose,
       m.parent_meter_id IS NULL AS top_level, x.quantity,
       least(x.readings, x.expected_readings) AS readings, x.expected_readings, s.kgce_per_meter_unit,
       s.kgco2_per_meter_unit, s.reference_year
FROM x
JOIN registry.meter m ON m.meter_id = x.meter_id
JOIN (
    SELECT DISTINCT en.enterprise_id, p.park_code, en.industry_code, en.enterprise_code
    FROM registry.enterprise en
    JOIN registry.park p ON p.park_id = en.park_id
) k ON k.enterprise_id = m.enterprise_id
LEFT JOIN accounting.meter_factor_segment s
  ON s.meter_id = x.meter_id
 AND (x.bucket AT TIME ZONE 'Asia/Shanghai')::date >= s.seg_from
 AND (x.bucket AT TIME ZONE 'Asia/Shanghai')::date < s.seg_to;

-- The same view as in 0009, now a projection of the keyed one.
CREATE OR REPLACE VIEW accounting.meter_energy AS
SELECT granularity, meter_id, enterprise_id, bucket, local_day, carrier, purpose, top_level, quantity,
       readings, expected_readings, kgce_per_meter_unit, kgco2_per_meter_unit, reference_year
FROM accounting.meter_energy_keyed;

-- Per enterprise and bucket with the enterprise's keys: the rules of 0009/0010 (GB/T
-- 2589-2020, DOMAIN.md §1-2 and §4; the comments of accounting.enterprise_energy in
-- 0009 explain each sign), with park_code, industry_code and enterprise_code as grouping
-- columns so that filters on them are applied before the aggregate.
CREATE VIEW accounting.enterprise_energy_keyed AS
WITH r AS (
    SELECT me.*,
           CASE
               WHEN me.purpose IN ('consumption', 'feedstock') AND me.top_level THEN 1
               WHEN me.purpose = 'generation' AND me.carrier = 'electricity' THEN 1
               WHEN me.purpose = 'export' THEN -1
               ELSE 0
           END AS gross_sign,
           CASE
               WHEN me.purpose IN ('consumption', 'feedstock') AND me.top_level THEN 1
               WHEN me.purpose = 'export' AND me.carrier <> 'electricity' THEN -1
               ELSE 0
           END AS co2_sign,
           CASE
               WHEN me.carrier = 'electricity' AND me.purpose = 'generation' THEN 1
               WHEN me.carrier = 'electricity' AND me.purpose = 'export' THEN -1
               ELSE 0
           END AS nonfossil_sign
    FROM accounting.meter_energy_keyed me
    WHERE me.carrier IN (SELECT carrier FROM accounting.counted_carrier)
), e AS (
    SELECT granularity, enterprise_id, park_code, industry_code, enterprise_code, bucket,
           min(local_day) AS local_day,
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
    GROUP BY granularity, enterprise_id, bucket, park_code, industry_code, enterprise_code
)
SELECT granularity, enterprise_id, park_code, industry_code, enterprise_code, bucket, local_day,
       gross_tce,
       gross_tce - feedstock_tce AS excl_feedstock_tce,
       gross_tce - feedstock_tce - nonfossil_tce AS excl_nonfossil_tce,
       feedstock_tce, nonfossil_tce, co2_t, factors_complete, co2_complete, co2_provisional,
       readings::double precision / nullif(expected_readings, 0) AS coverage,
       readings, expected_readings, meters
FROM e;

-- The same view as in 0010, now a projection of the keyed one (one place for the rules).
CREATE OR REPLACE VIEW accounting.enterprise_energy AS
SELECT granularity, enterprise_id, bucket, local_day, gross_tce, excl_feedstock_tce, excl_nonfossil_tce,
       feedstock_tce, nonfossil_tce, co2_t, factors_complete, co2_complete, co2_provisional, coverage,
       readings, expected_readings, meters
FROM accounting.enterprise_energy_keyed;

-- Energy and CO2 per group and bucket as accounting.group_energy (0009), one branch per
-- level of accounting.enterprise_group (an enterprise, its industry within its park, its
-- industry in the city, its park, the city), with the same sums. An enterprise is a
-- group of one: its row is its own aggregate. The level and the keys a level has not are constants outside each branch's
-- aggregate, so that a filter on level leaves out the other branches before they are
-- planned, and a filter on a key is applied below the aggregate.
CREATE VIEW accounting.group_energy_by_level AS
SELECT ee.granularity, 'enterprise'::text AS level, ee.park_code, ee.industry_code, ee.enterprise_code,
       ee.bucket,
       ee.gross_tce AS energy_tce_gross,
       ee.excl_feedstock_tce AS energy_tce_excl_feedstock,
       ee.excl_nonfossil_tce AS energy_tce_excl_feedstock_nonfossil,
       ee.feedstock_tce, ee.nonfossil_tce, ee.co2_t,
       ee.readings::double precision / nullif(ee.expected_readings, 0) AS coverage,
       ee.factors_complete, ee.co2_complete, ee.co2_provisional,
       1 AS enterprises,
       ee.meters::integer AS meters
FROM accounting.enterprise_energy_keyed ee
UNION ALL
SELECT g.granularity, 'park_industry'::text, g.park_code, g.industry_code, NULL::text, g.bucket,
       g.energy_tce_gross, g.energy_tce_excl_feedstock, g.energy_tce_excl_feedstock_nonfossil,
       g.feedstock_tce, g.nonfossil_tce, g.co2_t, g.coverage, g.factors_complete, g.co2_complete,
       g.co2_provisional, g.enterprises, g.meters
FROM (SELECT granularity, park_code, industry_code, bucket,
             sum(gross_tce) AS energy_tce_gross, sum(excl_feedstock_tce) AS energy_tce_excl_feedstock,
             sum(excl_nonfossil_tce) AS energy_tce_excl_feedstock_nonfossil,
             sum(feedstock_tce) AS feedstock_tce, sum(nonfossil_tce) AS nonfossil_tce, sum(co2_t) AS co2_t,
             sum(readings)::double precision / nullif(sum(expected_readings), 0) AS coverage,
             bool_and(factors_complete) AS factors_complete, bool_and(co2_complete) AS co2_complete,
             bool_or(co2_provisional) AS co2_provisional, count(*)::integer AS enterprises,
             sum(meters)::integer AS meters
      FROM accounting.enterprise_energy_keyed
      GROUP BY granularity, park_code, industry_code, bucket) g
UNION ALL
SELECT g.granularity, 'industry'::text, NULL::text, g.industry_code, NULL::text, g.bucket,
       g.energy_tce_gross, g.energy_tce_excl_feedstock, g.energy_tce_excl_feedstock_nonfossil,
       g.feedstock_tce, g.nonfossil_tce, g.co2_t, g.coverage, g.factors_complete, g.co2_complete,
       g.co2_provisional, g.enterprises, g.meters
FROM (SELECT granularity, industry_code, bucket,
             sum(gross_tce) AS energy_tce_gross, sum(excl_feedstock_tce) AS energy_tce_excl_feedstock,
             sum(excl_nonfossil_tce) AS energy_tce_excl_feedstock_nonfossil,
             sum(feedstock_tce) AS feedstock_tce, sum(nonfossil_tce) AS nonfossil_tce, sum(co2_t) AS co2_t,
             sum(readings)::double precision / nullif(sum(expected_readings), 0) AS coverage,
             bool_and(factors_complete) AS factors_complete, bool_and(co2_complete) AS co2_complete,
             bool_or(co2_provisional) AS co2_provisional, count(*)::integer AS enterprises,
             sum(meters)::integer AS meters
      FROM accounting.enterprise_energy_keyed
      GROUP BY granularity, industry_code, bucket) g
UNION ALL
SELECT g.granularity, 'park'::text, g.park_code, NULL::text, NULL::text, g.bucket,
       g.energy_tce_gross, g.energy_tce_excl_feedstock, g.energy_tce_excl_feedstock_nonfossil,
       g.feedstock_tce, g.nonfossil_tce, g.co2_t, g.coverage, g.factors_complete, g.co2_complete,
       g.co2_provisional, g.enterprises, g.meters
FROM (SELECT granularity, park_code, bucket,
             sum(gross_tce) AS energy_tce_gross, sum(excl_feedstock_tce) AS energy_tce_excl_feedstock,
             sum(excl_nonfossil_tce) AS energy_tce_excl_feedstock_nonfossil,
             sum(feedstock_tce) AS feedstock_tce, sum(nonfossil_tce) AS nonfossil_tce, sum(co2_t) AS co2_t,
             sum(readings)::double precision / nullif(sum(expected_readings), 0) AS coverage,
             bool_and(factors_complete) AS factors_complete, bool_and(co2_complete) AS co2_complete,
             bool_or(co2_provisional) AS co2_provisional, count(*)::integer AS enterprises,
             sum(meters)::integer AS meters
      FROM accounting.enterprise_energy_keyed
      GROUP BY granularity, park_code, bucket) g
UNION ALL
SELECT g.granularity, 'city'::text, NULL::text, NULL::text, NULL::text, g.bucket,
       g.energy_tce_gross, g.energy_tce_excl_feedstock, g.energy_tce_excl_feedstock_nonfossil,
       g.feedstock_tce, g.nonfossil_tce, g.co2_t, g.coverage, g.factors_complete, g.co2_complete,
       g.co2_provisional, g.enterprises, g.meters
FROM (SELECT granularity, bucket,
             sum(gross_tce) AS energy_tce_gross, sum(excl_feedstock_tce) AS energy_tce_excl_feedstock,
             sum(excl_nonfossil_tce) AS energy_tce_excl_feedstock_nonfossil,
             sum(feedstock_tce) AS feedstock_tce, sum(nonfossil_tce) AS nonfossil_tce, sum(co2_t) AS co2_t,
             sum(readings)::double precision / nullif(sum(expected_readings), 0) AS coverage,
             bool_and(factors_complete) AS factors_complete, bool_and(co2_complete) AS co2_complete,
             bool_or(co2_provisional) AS co2_provisional, count(*)::integer AS enterprises,
             sum(meters)::integer AS meters
      FROM accounting.enterprise_energy_keyed
      GROUP BY granularity, bucket) g;

-- The daily view reads the groups by level. api.energy_tce_month stays on
-- accounting.group_energy: a query whose level is not a constant (the overview's forecast
-- panel picks 'park' or 'city' from the selection) would compute every branch here, five
-- times the per-enterprise work, where group_energy computes it once.
CREATE OR REPLACE VIEW api.energy_tce_day AS
SELECT ge.level, ge.park_code, ge.industry_code, ge.enterprise_code, ge.bucket,
       ge.energy_tce_gross, ge.energy_tce_excl_feedstock, ge.energy_tce_excl_feedstock_nonfossil,
       ge.feedstock_tce, ge.nonfossil_tce, ge.co2_t, ge.coverage,
       ge.coverage < t.min_coverage AS low_coverage,
       ge.factors_complete, ge.co2_complete, ge.co2_provisional, ge.enterprises, ge.meters
FROM accounting.group_energy_by_level ge
CROSS JOIN accounting.intensity_target t
WHERE ge.granularity = 'day';

GRANT SELECT ON accounting.meter_energy_keyed, accounting.enterprise_energy_keyed, accounting.group_energy_by_level
    TO parkenergy_analytics;
