-- Working media (耗能工质: new water, softened and deaerated water, compressed air, oxygen,
-- nitrogen) in the accounting: a setting, like electricity_basis (docs/accounting.md).
--
--   exclude (default): statistics practice. The city's indicator 规模以上工业单位增加值能耗
--     is computed from the statistics office's energy forms (国家统计局 能源统计报表制度,
--     form 205-1 工业企业能源购进、消费与库存), where working media are not energy items;
--     the 2022 base comes from those forms. Their meters and baseline lines are left out of
--     energy, coverage and meter counts.
--   include: GB/T 2589-2020 综合能耗计算通则 counts the energy spent producing working media
--     bought from outside the boundary, at their equivalent coefficients (new water
--     0.0857 kgce/t …), for enterprise and product comprehensive consumption.
--
-- Applied alike to meters (accounting.enterprise_energy) and to baseline statistics
-- (accounting.enterprise_baseline), so that the intensity and its 2022 base agree.

CREATE TABLE accounting.working_medium (
    carrier text PRIMARY KEY REFERENCES registry.carrier,
    source  text NOT NULL
);
INSERT INTO accounting.working_medium (carrier, source) VALUES
    ('water', 'GB/T 2589-2020 耗能工质; not an energy item of 国家统计局 form 205-1'),
    ('softened_water', 'GB/T 2589-2020 耗能工质; not an energy item of 国家统计局 form 205-1'),
    ('deaerated_water', 'GB/T 2589-2020 耗能工质; not an energy item of 国家统计局 form 205-1'),
    ('compressed_air', 'GB/T 2589-2020 耗能工质; not an energy item of 国家统计局 form 205-1'),
    ('oxygen', 'GB/T 2589-2020 耗能工质; not an energy item of 国家统计局 form 205-1'),
    ('nitrogen', 'GB/T 2589-2020 耗能工质; not an energy item of 国家统计局 form 205-1');

ALTER TABLE accounting.setting DROP CONSTRAINT setting_key_check;
ALTER TABLE accounting.setting ADD CONSTRAINT setting_key_check
    CHECK (key IN ('electricity_basis', 'co2_region', 'working_media'));
ALTER TABLE accounting.setting ADD CONSTRAINT setting_working_media_check
    CHECK (key <> 'working_media' OR value IN ('exclude', 'include'));
INSERT INTO accounting.setting (key, value) VALUES ('working_media', 'exclude');

-- Carriers counted as energy under the current setting: all but the working media when
-- working_media = exclude.
CREATE VIEW accounting.counted_carrier AS
SELECT c.carrier_code AS carrier
FROM registry.carrier c
CROSS JOIN accounting.setting s
WHERE s.key = 'working_media'
  AND (s.value = 'include' OR c.carrier_code NOT IN (SELECT w.carrier FROM accounting.working_medium w));

-- As in 0009, with the meters of carriers not counted left out (energy, coverage, meters).
CREATE OR REPLACE VIEW accounting.enterprise_energy AS
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
    WHERE me.carrier IN (SELECT carrier FROM accounting.counted_carrier)
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

-- As in 0009, with the baseline lines of carriers not counted left out.
CREATE OR REPLACE VIEW accounting.enterprise_baseline AS
SELECT bv.enterprise_id, bv.year, bv.value_added_10k_yuan,
       coalesce(sum(b.consumption * b.kgce_per_unit), 0) / 1000 AS gross_tce,
       coalesce(sum((b.consumption - b.feedstock) * b.kgce_per_unit), 0) / 1000 AS excl_feedstock_tce,
       coalesce(sum((b.consumption - b.feedstock - b.non_fossil) * b.kgce_per_unit), 0) / 1000
           AS excl_nonfossil_tce,
       coalesce(bool_and(b.kgce_per_unit IS NOT NULL), true) AS factors_complete
FROM economics.baseline_value_added bv
LEFT JOIN (
    SELECT * FROM accounting.baseline_tce
    WHERE carrier IN (SELECT carrier FROM accounting.counted_carrier)
) b USING (enterprise_id, year)
GROUP BY bv.enterprise_id, bv.year, bv.value_added_10k_yuan;

GRANT SELECT ON accounting.working_medium, accounting.counted_carrier TO parkenergy_analytics;
