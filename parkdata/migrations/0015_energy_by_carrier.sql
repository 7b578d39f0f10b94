-- Energy and CO2 per enterprise, carrier and month (api.energy_carrier_month), for the
-- monthly report's breakdown by carrier (docs/api.md, docs/report.md).
--
-- The signs that decide how a meter counts (GB/T 2589-2020, DOMAIN.md §1-2 and §4; the
-- comments of accounting.enterprise_energy in 0009 explain each) move into one view,
-- accounting.meter_energy_signed, that both the per-enterprise aggregate and the new
-- per-carrier view read: one place for the rules. The per-enterprise view keeps its
-- columns, figures and plans (the planner inlines the signed view; filters on the keys
-- still reach the rollups).

CREATE VIEW accounting.meter_energy_signed AS
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
WHERE me.carrier IN (SELECT carrier FROM accounting.counted_carrier);

CREATE OR REPLACE VIEW accounting.enterprise_energy_keyed AS
WITH e AS (
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
    FROM accounting.meter_energy_signed
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

-- Per enterprise, carrier and month: the carrier's signed share of the enterprise's gross
-- energy and CO2 (exports and PV generation with their signs), so that the carriers of an
-- enterprise and month sum to api.energy_tce_month's energy_tce_gross and co2_t. Carriers
-- not counted under the working-media setting are left out, as there.
CREATE VIEW api.energy_carrier_month AS
SELECT s.park_code, s.industry_code, s.enterprise_code, s.carrier, c.name_zh AS carrier_name_zh,
       c.name_en AS carrier_name_en, s.bucket,
       sum(s.gross_sign * s.quantity * s.kgce_per_meter_unit) / 1000 AS energy_tce_gross,
       coalesce(sum(s.quantity * s.kgce_per_meter_unit) FILTER (WHERE s.purpose = 'feedstock'), 0)
           / 1000 AS feedstock_tce,
       sum(s.co2_sign * s.quantity * s.kgco2_per_meter_unit) / 1000 AS co2_t,
       sum(s.readings)::double precision / nullif(sum(s.expected_readings), 0) AS coverage,
       coalesce(bool_and(s.kgce_per_meter_unit IS NOT NULL) FILTER (WHERE s.gross_sign <> 0), true)
           AS factors_complete,
       count(*)::integer AS meters
FROM accounting.meter_energy_signed s
JOIN registry.carrier c ON c.carrier_code = s.carrier
WHERE s.granularity = 'month'
GROUP BY s.park_code, s.industry_code, s.enterprise_code, s.carrier, c.name_zh, c.name_en, s.bucket;

GRANT SELECT ON accounting.meter_energy_signed TO parkenergy_analytics;
GRANT SELECT ON api.energy_carrier_month TO parkenergy_analytics, parkenergy_grafana;
