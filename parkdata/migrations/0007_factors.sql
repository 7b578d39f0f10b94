-- Versioned conversion and emission factors (DOMAIN.md §2-3; docs/accounting.md).
-- Factors are data, never literals in formulas: the accounting views multiply native
-- quantities by the factor valid at each bucket when they are queried, so a revised
-- factor changes every result that depends on it.
--
-- Versioning: a factor is identified by its series (carrier, basis or region, unit)
-- and its valid_from. Correcting a factor inserts the same key with revision + 1;
-- the highest revision is current and earlier ones stay as history. A new value from
-- a later date is a new valid_from. For a date d the factor used is the current row
-- with valid_from <= d < valid_to (valid_to NULL = open) and the latest valid_from.
CREATE SCHEMA IF NOT EXISTS accounting;

-- Units of quantities, mirroring parkdata.units (a test checks they agree):
-- value in unit × to_canonical = value in the canonical unit (kWh, m3, kg).
CREATE TABLE accounting.unit (
    symbol       text PRIMARY KEY,
    dimension    text NOT NULL CHECK (dimension IN ('energy', 'volume', 'mass')),
    to_canonical double precision NOT NULL CHECK (to_canonical > 0)
);
INSERT INTO accounting.unit (symbol, dimension, to_canonical) VALUES
    ('Wh', 'energy', 1e-3),
    ('kWh', 'energy', 1.0),
    ('MWh', 'energy', 1e3),
    ('GWh', 'energy', 1e6),
    ('kJ', 'energy', 1.0 / 3600.0),
    ('MJ', 'energy', 1.0 / 3.6),
    ('GJ', 'energy', 1e3 / 3.6),
    ('L', 'volume', 1e-3),
    ('m3', 'volume', 1.0),
    ('10^4 m3', 'volume', 1e4),
    ('g', 'mass', 1e-3),
    ('kg', 'mass', 1.0),
    ('t', 'mass', 1e3);

-- Accounting switches. electricity_basis: 'calorific' (当量值, default for enterprise
-- energy statistics) or 'equivalent' (等价值, coal for power supply), DOMAIN.md §2.
-- co2_region: the grid region whose electricity factor applies (default Hubei for
-- local reporting, DOMAIN.md §3).
CREATE TABLE accounting.setting (
    key        text PRIMARY KEY CHECK (key IN ('electricity_basis', 'co2_region')),
    value      text NOT NULL,
    changed_at timestamptz NOT NULL DEFAULT now(),
    changed_by text NOT NULL DEFAULT current_user,
    CHECK (key <> 'electricity_basis' OR value IN ('calorific', 'equivalent'))
);
INSERT INTO accounting.setting (key, value) VALUES
    ('electricity_basis', 'calorific'),
    ('co2_region', 'hubei');

-- Standard-coal coefficients [kgce per unit], GB/T 2589-2020 (综合能耗计算通则).
-- basis: 'any' for every carrier except electricity, whose rows are 'calorific'
-- (当量) or 'equivalent' (等价); the setting electricity_basis chooses.
CREATE TABLE accounting.tce_factor (
    factor_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    carrier       text NOT NULL REFERENCES registry.carrier,
    basis         text NOT NULL DEFAULT 'any' CHECK (basis IN ('any', 'calorific', 'equivalent')),
    unit          text NOT NULL REFERENCES accounting.unit,
    kgce_per_unit double precision NOT NULL CHECK (kgce_per_unit > 0),
    valid_from    date NOT NULL,
    valid_to      date CHECK (valid_to > valid_from),
    source        text NOT NULL CHECK (source <> ''),
    confidence    text NOT NULL CHECK (confidence IN ('H', 'M', 'U')),
    note          text,
    revision      integer NOT NULL DEFAULT 1 CHECK (revision >= 1),
    recorded_at   timestamptz NOT NULL DEFAULT now(),
    recorded_by   text NOT NULL DEFAULT current_user,
    UNIQUE (carrier, basis, unit, valid_from, revision)
);

-- Per-site overrides of the tce coefficient, e.g. a measured natural-gas LHV
-- [kJ/m3] ÷ 29 307.6 kJ/kgce (GB/T 2589-2020). meter_id NULL: every meter of the
-- carrier in the enterprise (and its 2022 baseline statistics). A meter override
-- beats an enterprise override, which beats the default coefficient.
CREATE TABLE accounting.tce_factor_override (
    override_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    enterprise_id integer NOT NULL REFERENCES registry.enterprise,
    meter_id      integer REFERENCES registry.meter,
    carrier       text NOT NULL REFERENCES registry.carrier,
    unit          text NOT NULL REFERENCES accounting.unit,
    kgce_per_unit double precision NOT NULL CHECK (kgce_per_unit > 0),
    valid_from    date NOT NULL,
    valid_to      date CHECK (valid_to > valid_from),
    source        text NOT NULL CHECK (source <> ''),
    confidence    text NOT NULL CHECK (confidence IN ('H', 'M', 'U')),
    note          text,
    revision      integer NOT NULL DEFAULT 1 CHECK (revision >= 1),
    recorded_at   timestamptz NOT NULL DEFAULT now(),
    recorded_by   text NOT NULL DEFAULT current_user,
    UNIQUE NULLS NOT DISTINCT (enterprise_id, meter_id, carrier, unit, valid_from, revision)
);

-- CO2 emission factors [kg CO2 per unit]. region: a grid region for electricity
-- ('national', 'central_china', 'hubei', ...), 'any' for fuels and heat.
-- reference_year: the year a yearly published factor is for; the view flags its use
-- for any other year as provisional (DOMAIN.md §3: the latest published factor
-- applies to years not yet published, flagged).
CREATE TABLE accounting.co2_factor (
    factor_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    carrier        text NOT NULL REFERENCES registry.carrier,
    region         text NOT NULL DEFAULT 'any' CHECK (region <> ''),
    unit           text NOT NULL REFERENCES accounting.unit,
    kgco2_per_unit double precision NOT NULL CHECK (kgco2_per_unit >= 0),
    reference_year integer CHECK (reference_year BETWEEN 1990 AND 2100),
    valid_from     date NOT NULL,
    valid_to       date CHECK (valid_to > valid_from),
    source         text NOT NULL CHECK (source <> ''),
    confidence     text NOT NULL CHECK (confidence IN ('H', 'M', 'U')),
    note           text,
    revision       integer NOT NULL DEFAULT 1 CHECK (revision >= 1),
    recorded_at    timestamptz NOT NULL DEFAULT now(),
    recorded_by    text NOT NULL DEFAULT current_user,
    UNIQUE (carrier, region, unit, valid_from, revision)
);

-- Seed: GB/T 2589-2020 coefficients (DOMAIN.md §2). All valid from 2000-01-01, open.
INSERT INTO accounting.tce_factor (carrier, basis, unit, kgce_per_unit, valid_from, source, confidence, note)
VALUES
    ('electricity', 'calorific', 'kWh', 0.1229, '2000-01-01', 'GB/T 2589-2020 当量值', 'H',
     'calorific equivalent; default for enterprise energy statistics'),
    ('electricity', 'equivalent', 'kWh', 0.300, '2000-01-01', 'GB/T 2589-2020 等价值 (供电煤耗, approx.)', 'M',
     'coal for power supply; a yearly published value; add one row per year as published'),
    ('natural_gas', 'any', 'm3', 1.2143, '2000-01-01', 'GB/T 2589-2020', 'H',
     'gas-field gas (Hubei pipeline gas); oil-field gas 1.3300; measured LHV [kJ/m3] / 29307.6 overrides'),
    ('raw_coal', 'any', 'kg', 0.7143, '2000-01-01', 'GB/T 2589-2020', 'H', NULL),
    ('washed_coal', 'any', 'kg', 0.9000, '2000-01-01', 'GB/T 2589-2020', 'H', NULL),
    ('coke', 'any', 'kg', 0.9714, '2000-01-01', 'GB/T 2589-2020', 'H', NULL),
    ('crude_oil', 'any', 'kg', 1.4286, '2000-01-01', 'GB/T 2589-2020', 'H', NULL),
    ('fuel_oil', 'any', 'kg', 1.4286, '2000-01-01', 'GB/T 2589-2020', 'H', NULL),
    ('gasoline', 'any', 'kg', 1.4714, '2000-01-01', 'GB/T 2589-2020', 'H', NULL),
    ('kerosene', 'any', 'kg', 1.4714, '2000-01-01', 'GB/T 2589-2020', 'H', NULL),
    ('diesel', 'any', 'kg', 1.4571, '2000-01-01', 'GB/T 2589-2020', 'H', NULL),
    ('lpg', 'any', 'kg', 1.7143, '2000-01-01', 'GB/T 2589-2020', 'H', NULL),
    ('coke_oven_gas', 'any', 'm3', 0.5929, '2000-01-01', 'GB/T 2589-2020 (range 0.5714-0.6143)', 'M',
     'midpoint of the published range; a measured LHV overrides'),
    ('blast_furnace_gas', 'any', 'm3', 0.1286, '2000-01-01', 'GB/T 2589-2020', 'M', NULL),
    ('heat', 'any', 'MJ', 0.03412, '2000-01-01', 'GB/T 2589-2020', 'H', '34.12 kgce/GJ'),
    ('steam', 'any', 'kg', 0.1286, '2000-01-01', 'GB/T 2589-2020 (low-pressure steam reference)', 'H',
     '128.6 kgce/t; steam metered as heat uses the heat coefficient'),
    ('steam', 'any', 'MJ', 0.03412, '2000-01-01', 'GB/T 2589-2020 (heat-content method)', 'H',
     'steam metered in energy units: 34.12 kgce/GJ'),
    ('water', 'any', 't', 0.0857, '2000-01-01', 'GB/T 2589-2008 (new water)', 'H',
     'a 2020 change to 0.2571 is unverified'),
    ('water', 'any', 'm3', 0.0857, '2000-01-01', 'GB/T 2589-2008 (new water), 1 m3 = 1 t', 'H', NULL),
    ('softened_water', 'any', 't', 0.4857, '2000-01-01', 'GB/T 2589-2020', 'H', NULL),
    ('softened_water', 'any', 'm3', 0.4857, '2000-01-01', 'GB/T 2589-2020, 1 m3 = 1 t', 'H', NULL),
    ('deaerated_water', 'any', 't', 0.9714, '2000-01-01', 'GB/T 2589-2020', 'H', NULL),
    ('deaerated_water', 'any', 'm3', 0.9714, '2000-01-01', 'GB/T 2589-2020, 1 m3 = 1 t', 'H', NULL),
    ('compressed_air', 'any', 'm3', 0.0400, '2000-01-01', 'GB/T 2589-2020', 'M', NULL),
    ('oxygen', 'any', 'm3', 0.4000, '2000-01-01', 'GB/T 2589-2020 (by-product)', 'M', NULL),
    ('nitrogen', 'any', 'm3', 0.4000, '2000-01-01', 'GB/T 2589-2020 (by-product)', 'M', NULL),
    -- Liquid fuels metered by volume: density assumptions, not in GB/T 2589 (U).
    ('diesel', 'any', 'L', 1.4571 * 0.84, '2000-01-01', 'GB/T 2589-2020 × density 0.84 kg/L', 'U',
     'density assumed'),
    ('gasoline', 'any', 'L', 1.4714 * 0.73, '2000-01-01', 'GB/T 2589-2020 × density 0.73 kg/L', 'U',
     'density assumed'),
    ('kerosene', 'any', 'L', 1.4714 * 0.80, '2000-01-01', 'GB/T 2589-2020 × density 0.80 kg/L', 'U',
     'density assumed');

-- Seed: grid electricity [kg CO2/kWh], MEE/NBS announcements (DOMAIN.md §3, M).
-- The earliest year of each region also covers earlier dates, the latest year later
-- ones; both uses are flagged provisional through reference_year.
INSERT INTO accounting.co2_factor
    (carrier, region, unit, kgco2_per_unit, reference_year, valid_from, valid_to, source, confidence)
VALUES
    ('electricity', 'national', 'kWh', 0.5568, 2021, '2000-01-01', '2022-01-01', 'MEE/NBS 2021 national grid', 'M'),
    ('electricity', 'national', 'kWh', 0.5366, 2022, '2022-01-01', '2023-01-01', 'MEE/NBS 2022 national grid', 'M'),
    ('electricity', 'national', 'kWh', 0.5306, 2023, '2023-01-01', NULL, 'MEE/NBS 2023 national grid', 'M'),
    ('electricity', 'central_china', 'kWh', 0.5354, 2021, '2000-01-01', '2022-01-01', 'MEE/NBS 2021 华中 grid', 'M'),
    ('electricity', 'central_china', 'kWh', 0.5395, 2022, '2022-01-01', NULL, 'MEE/NBS 2022 华中 grid', 'M'),
    ('electricity', 'hubei', 'kWh', 0.3672, 2021, '2000-01-01', '2022-01-01', 'MEE/NBS 2021 Hubei', 'M'),
    ('electricity', 'hubei', 'kWh', 0.4364, 2022, '2022-01-01', NULL, 'MEE/NBS 2022 Hubei', 'M'),
    ('electricity', 'national_reporting', 'kWh', 0.5703, NULL, '2023-01-01', '2026-01-01',
     '环办气候函〔2023〕43号 (2023-2025 reporting)', 'M');

-- Seed: fuel combustion [kg CO2 per unit] = NCV × carbon content × oxidation × 44/12,
-- 工业其他行业企业温室气体排放核算方法与报告指南 (2015) (DOMAIN.md §3, M-H); purchased
-- heat and steam 0.11 t CO2/GJ (H).
INSERT INTO accounting.co2_factor (carrier, region, unit, kgco2_per_unit, valid_from, source, confidence, note)
VALUES
    ('natural_gas', 'any', 'm3', 2.1622, '2000-01-01', 'GHG guideline 工业其他行业 2015', 'M',
     '389.31 GJ/10^4 Nm3 × 15.3 tC/TJ × 99 % × 44/12'),
    ('diesel', 'any', 'kg', 3.0959, '2000-01-01', 'GHG guideline 工业其他行业 2015', 'M',
     '42.652 GJ/t × 20.2 tC/TJ × 98 % × 44/12'),
    ('gasoline', 'any', 'kg', 2.9251, '2000-01-01', 'GHG guideline 工业其他行业 2015', 'M',
     '43.070 GJ/t × 18.9 tC/TJ × 98 % × 44/12'),
    ('fuel_oil', 'any', 'kg', 3.1705, '2000-01-01', 'GHG guideline 工业其他行业 2015', 'M',
     '41.816 GJ/t × 21.1 tC/TJ × 98 % × 44/12'),
    ('lpg', 'any', 'kg', 3.1013, '2000-01-01', 'GHG guideline 工业其他行业 2015', 'M',
     '50.179 GJ/t × 17.2 tC/TJ × 98 % × 44/12'),
    ('coke', 'any', 'kg', 2.8604, '2000-01-01', 'GHG guideline 工业其他行业 2015', 'M',
     '28.435 GJ/t × 29.5 tC/TJ × 93 % × 44/12'),
    ('raw_coal', 'any', 'kg', 1.7471, '2000-01-01', 'GHG guideline 工业其他行业 2015 (default NCV disputed)', 'U',
     '19.570 GJ/t × 26.18 tC/TJ × 93 % × 44/12; a measured NCV is preferred'),
    ('heat', 'any', 'MJ', 0.11, '2000-01-01', 'GHG guideline: purchased heat 0.11 t CO2/GJ', 'H', NULL),
    ('steam', 'any', 'MJ', 0.11, '2000-01-01', 'GHG guideline: purchased heat 0.11 t CO2/GJ', 'H', NULL),
    ('steam', 'any', 'kg', 0.2963, '2000-01-01', 'GHG guideline 0.11 t CO2/GJ × 2.693 GJ/t', 'M',
     '1.0 MPa(a) saturated steam: (2777.1 - 83.74) kJ/kg'),
    -- Energy-consuming working media are not a direct emission source in the guideline:
    -- producing them on site uses metered electricity or fuel, bought ones are the
    -- supplier's emissions.
    ('water', 'any', 't', 0, '2000-01-01', 'GHG guideline scope: not a direct source', 'M', NULL),
    ('water', 'any', 'm3', 0, '2000-01-01', 'GHG guideline scope: not a direct source', 'M', NULL),
    ('softened_water', 'any', 't', 0, '2000-01-01', 'GHG guideline scope: not a direct source', 'M', NULL),
    ('softened_water', 'any', 'm3', 0, '2000-01-01', 'GHG guideline scope: not a direct source', 'M', NULL),
    ('deaerated_water', 'any', 't', 0, '2000-01-01', 'GHG guideline scope: not a direct source', 'M', NULL),
    ('deaerated_water', 'any', 'm3', 0, '2000-01-01', 'GHG guideline scope: not a direct source', 'M', NULL),
    ('compressed_air', 'any', 'm3', 0, '2000-01-01', 'GHG guideline scope: not a direct source', 'M', NULL),
    ('oxygen', 'any', 'm3', 0, '2000-01-01', 'GHG guideline scope: not a direct source', 'M', NULL),
    ('nitrogen', 'any', 'm3', 0, '2000-01-01', 'GHG guideline scope: not a direct source', 'M', NULL);

-- Current rows: the highest revision of each key.
CREATE VIEW accounting.tce_factor_current AS
SELECT DISTINCT ON (carrier, basis, unit, valid_from) *
FROM accounting.tce_factor
ORDER BY carrier, basis, unit, valid_from, revision DESC;

CREATE VIEW accounting.tce_factor_override_current AS
SELECT DISTINCT ON (enterprise_id, meter_id, carrier, unit, valid_from) *
FROM accounting.tce_factor_override
ORDER BY enterprise_id, meter_id, carrier, unit, valid_from, revision DESC;

CREATE VIEW accounting.co2_factor_current AS
SELECT DISTINCT ON (carrier, region, unit, valid_from) *
FROM accounting.co2_factor
ORDER BY carrier, region, unit, valid_from, revision DESC;

-- Candidate coefficients of every meter, converted to the meter's own unit
-- [kgce per meter unit], with their validity and priority (3 meter override,
-- 2 enterprise override, 1 default of the chosen electricity basis).
CREATE VIEW accounting.meter_tce_factor AS
SELECT m.meter_id, o.valid_from, o.valid_to,
       o.kgce_per_unit * mu.to_canonical / fu.to_canonical AS kgce_per_meter_unit,
       CASE WHEN o.meter_id IS NULL THEN 2 ELSE 3 END AS priority
FROM registry.meter m
JOIN accounting.tce_factor_override_current o
  ON o.enterprise_id = m.enterprise_id AND o.carrier = m.carrier
 AND (o.meter_id IS NULL OR o.meter_id = m.meter_id)
JOIN accounting.unit mu ON mu.symbol = m.unit
JOIN accounting.unit fu ON fu.symbol = o.unit AND fu.dimension = mu.dimension
UNION ALL
SELECT m.meter_id, f.valid_from, f.valid_to,
       f.kgce_per_unit * mu.to_canonical / fu.to_canonical,
       1
FROM registry.meter m
JOIN accounting.tce_factor_current f ON f.carrier = m.carrier
JOIN accounting.setting s ON s.key = 'electricity_basis' AND f.basis IN ('any', s.value)
JOIN accounting.unit mu ON mu.symbol = m.unit
JOIN accounting.unit fu ON fu.symbol = f.unit AND fu.dimension = mu.dimension;

-- Candidate CO2 factors of every meter [kg CO2 per meter unit]: electricity of the
-- chosen region, other carriers their 'any' row.
CREATE VIEW accounting.meter_co2_factor AS
SELECT m.meter_id, f.valid_from, f.valid_to, f.reference_year,
       f.kgco2_per_unit * mu.to_canonical / fu.to_canonical AS kgco2_per_meter_unit
FROM registry.meter m
JOIN accounting.co2_factor_current f ON f.carrier = m.carrier
JOIN accounting.setting s ON s.key = 'co2_region'
 AND f.region = CASE WHEN m.carrier = 'electricity' THEN s.value ELSE 'any' END
JOIN accounting.unit mu ON mu.symbol = m.unit
JOIN accounting.unit fu ON fu.symbol = f.unit AND fu.dimension = mu.dimension;

-- Read API of the factors (docs/api.md).
CREATE VIEW api.tce_factor AS
SELECT f.carrier, f.basis, f.unit, f.kgce_per_unit, f.valid_from, f.valid_to, f.source, f.confidence,
       f.note, f.revision, f.recorded_at, f.recorded_by,
       c.factor_id IS NOT NULL AS is_current
FROM accounting.tce_factor f
LEFT JOIN accounting.tce_factor_current c USING (factor_id);

CREATE VIEW api.tce_factor_override AS
SELECT p.park_code, e.enterprise_code, m.meter_code, o.carrier, o.unit, o.kgce_per_unit,
       o.valid_from, o.valid_to, o.source, o.confidence, o.note, o.revision, o.recorded_at,
       o.recorded_by, c.override_id IS NOT NULL AS is_current
FROM accounting.tce_factor_override o
JOIN registry.enterprise e USING (enterprise_id)
JOIN registry.park p USING (park_id)
LEFT JOIN registry.meter m ON m.meter_id = o.meter_id
LEFT JOIN accounting.tce_factor_override_current c USING (override_id);

CREATE VIEW api.co2_factor AS
SELECT f.carrier, f.region, f.unit, f.kgco2_per_unit, f.reference_year, f.valid_from, f.valid_to,
       f.source, f.confidence, f.note, f.revision, f.recorded_at, f.recorded_by,
       c.factor_id IS NOT NULL AS is_current
FROM accounting.co2_factor f
LEFT JOIN accounting.co2_factor_current c USING (factor_id);

CREATE VIEW api.accounting_setting AS
SELECT key, value, changed_at, changed_by FROM accounting.setting;

GRANT USAGE ON SCHEMA accounting TO parkenergy_analytics;
GRANT SELECT ON ALL TABLES IN SCHEMA accounting TO parkenergy_analytics;
GRANT SELECT ON api.tce_factor, api.tce_factor_override, api.co2_factor, api.accounting_setting
    TO parkenergy_analytics, parkenergy_grafana;
