-- Registry of parks, enterprises and meters (DESIGN.md, storage contract).
CREATE SCHEMA IF NOT EXISTS registry;

CREATE TABLE registry.carrier (
    carrier_code text PRIMARY KEY,
    name_zh      text NOT NULL,
    name_en      text NOT NULL
);

INSERT INTO registry.carrier (carrier_code, name_zh, name_en) VALUES
    ('electricity', '电力', 'Electricity'),
    ('natural_gas', '天然气', 'Natural gas'),
    ('steam', '蒸汽', 'Steam'),
    ('heat', '热力', 'Heat'),
    ('raw_coal', '原煤', 'Raw coal'),
    ('coke', '焦炭', 'Coke'),
    ('diesel', '柴油', 'Diesel'),
    ('gasoline', '汽油', 'Gasoline'),
    ('fuel_oil', '燃料油', 'Fuel oil'),
    ('lpg', '液化石油气', 'LPG'),
    ('water', '水', 'Water');

CREATE TABLE registry.park (
    park_id    integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    park_code  text NOT NULL UNIQUE CHECK (park_code <> ''),
    park_name  text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE registry.enterprise (
    enterprise_id   integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    enterprise_code text NOT NULL UNIQUE CHECK (enterprise_code ~ '^[0-9A-Za-z_-]+$'),
    enterprise_name text NOT NULL,
    park_id         integer NOT NULL REFERENCES registry.park,
    industry_code   text NOT NULL,            -- GB/T 4754 industry classification
    key_energy_unit boolean NOT NULL DEFAULT false,  -- 重点用能单位 (节约能源法 art. 52)
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- Meters are retired, never deleted: raw readings keep their meter_id forever.
CREATE TABLE registry.meter (
    meter_id             integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    enterprise_id        integer NOT NULL REFERENCES registry.enterprise,
    meter_code           text NOT NULL CHECK (meter_code ~ '^[0-9A-Za-z_.-]+$' AND meter_code NOT LIKE '\_%'),
    carrier              text NOT NULL REFERENCES registry.carrier,
    unit                 text NOT NULL,
    kind                 text NOT NULL CHECK (kind IN ('register', 'interval', 'gauge')),
    multiplier           double precision NOT NULL DEFAULT 1 CHECK (multiplier > 0),
    rollover             double precision CHECK (rollover > 0),          -- register modulus [unit]
    expected_interval_s  integer CHECK (expected_interval_s > 0),
    rated_capacity_per_h double precision CHECK (rated_capacity_per_h > 0), -- [unit / h]
    purpose              text NOT NULL DEFAULT 'consumption'
                         CHECK (purpose IN ('consumption', 'generation', 'export', 'feedstock')),
    parent_meter_id      integer REFERENCES registry.meter,
    retired_at           timestamptz,
    updated_at           timestamptz NOT NULL DEFAULT now(),
    UNIQUE (enterprise_id, meter_code)
);
CREATE INDEX ON registry.meter (meter_code);

CREATE TABLE registry.meter_event (
    event_id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    meter_id         integer NOT NULL REFERENCES registry.meter,
    event_type       text NOT NULL CHECK (event_type IN ('replacement', 'multiplier_change', 'calibration')),
    effective_at     timestamptz NOT NULL,
    final_register   double precision,   -- old register's last value [unit], replacement
    initial_register double precision,   -- new register's first value [unit], replacement
    new_multiplier   double precision CHECK (new_multiplier > 0),
    note             text,
    recorded_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (meter_id, event_type, effective_at)
);

-- Bumped by every registry change, so collectors know when to reload.
CREATE TABLE registry.revision (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    revision   bigint NOT NULL,
    changed_at timestamptz NOT NULL
);
INSERT INTO registry.revision VALUES (true, 0, now());

CREATE FUNCTION registry.bump_revision() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE registry.revision SET revision = revision + 1, changed_at = now();
    RETURN NULL;
END $$;

CREATE TRIGGER bump AFTER INSERT OR UPDATE OR DELETE ON registry.enterprise
    FOR EACH STATEMENT EXECUTE FUNCTION registry.bump_revision();
CREATE TRIGGER bump AFTER INSERT OR UPDATE OR DELETE ON registry.meter
    FOR EACH STATEMENT EXECUTE FUNCTION registry.bump_revision();
