-- Economic statistics imported from files (docs/accounting.md, "Economics files"):
-- monthly value added at current prices, industry deflators, the 2022 baseline
-- statistics (energy by carrier and value added) and product output.
-- Each import runs in one transaction; a revised value replaces the stored one and
-- the previous value is kept in economics.revision (who, when, what it was).
CREATE SCHEMA IF NOT EXISTS economics;

-- Value added [10^4 yuan] at current prices of one enterprise and month (period =
-- first day of the month); price_index_2022: the enterprise's own deflator (2022 = 1).
CREATE TABLE economics.value_added (
    enterprise_id        integer NOT NULL REFERENCES registry.enterprise,
    period               date NOT NULL CHECK (extract(day FROM period) = 1),
    value_added_10k_yuan double precision NOT NULL CHECK (value_added_10k_yuan >= 0),
    price_index_2022     double precision CHECK (price_index_2022 > 0),
    revision             integer NOT NULL DEFAULT 1,
    source_file          text NOT NULL,
    imported_at          timestamptz NOT NULL DEFAULT now(),
    imported_by          text NOT NULL DEFAULT current_user,
    PRIMARY KEY (enterprise_id, period)
);

-- Price index of an industry (GB/T 4754 code or prefix) and year: comparable value
-- added = current / price_index_2022. Looked up by the longest matching prefix.
CREATE TABLE economics.deflator (
    industry_code    text NOT NULL CHECK (industry_code ~ '^[0-9A-Za-z]{1,5}$'),
    year             integer NOT NULL CHECK (year BETWEEN 1990 AND 2100),
    price_index_2022 double precision NOT NULL CHECK (price_index_2022 > 0),
    revision         integer NOT NULL DEFAULT 1,
    source_file      text NOT NULL,
    imported_at      timestamptz NOT NULL DEFAULT now(),
    imported_by      text NOT NULL DEFAULT current_user,
    PRIMARY KEY (industry_code, year)
);

-- Annual energy statistics by carrier (form 205-1 style), in a unit the carrier
-- allows: consumption inside the boundary, of which feedstock (原料用能) and of
-- which non-fossil (self-consumed PV, green electricity).
CREATE TABLE economics.baseline (
    enterprise_id integer NOT NULL REFERENCES registry.enterprise,
    year          integer NOT NULL CHECK (year BETWEEN 1990 AND 2100),
    carrier       text NOT NULL REFERENCES registry.carrier,
    unit          text NOT NULL,
    consumption   double precision NOT NULL CHECK (consumption >= 0),
    feedstock     double precision NOT NULL DEFAULT 0 CHECK (feedstock >= 0),
    non_fossil    double precision NOT NULL DEFAULT 0 CHECK (non_fossil >= 0),
    revision      integer NOT NULL DEFAULT 1,
    source_file   text NOT NULL,
    imported_at   timestamptz NOT NULL DEFAULT now(),
    imported_by   text NOT NULL DEFAULT current_user,
    PRIMARY KEY (enterprise_id, year, carrier),
    CHECK (feedstock + non_fossil <= consumption * (1 + 1e-6) + 1e-3)  -- parts, with rounding slack
);

-- Annual value added [10^4 yuan] of the baseline year at that year's prices.
CREATE TABLE economics.baseline_value_added (
    enterprise_id        integer NOT NULL REFERENCES registry.enterprise,
    year                 integer NOT NULL CHECK (year BETWEEN 1990 AND 2100),
    value_added_10k_yuan double precision NOT NULL CHECK (value_added_10k_yuan > 0),
    revision             integer NOT NULL DEFAULT 1,
    source_file          text NOT NULL,
    imported_at          timestamptz NOT NULL DEFAULT now(),
    imported_by          text NOT NULL DEFAULT current_user,
    PRIMARY KEY (enterprise_id, year)
);

-- Monthly product output (e.g. crude steel [t]).
CREATE TABLE economics.output (
    enterprise_id integer NOT NULL REFERENCES registry.enterprise,
    period        date NOT NULL CHECK (extract(day FROM period) = 1),
    product       text NOT NULL CHECK (product <> ''),
    quantity      double precision NOT NULL CHECK (quantity >= 0),
    unit          text NOT NULL CHECK (unit <> ''),
    revision      integer NOT NULL DEFAULT 1,
    source_file   text NOT NULL,
    imported_at   timestamptz NOT NULL DEFAULT now(),
    imported_by   text NOT NULL DEFAULT current_user,
    PRIMARY KEY (enterprise_id, period, product)
);

-- Every change of a stored value: dataset ('value_added', 'deflator', 'baseline',
-- 'baseline_value_added', 'output'), its key, the previous and the new values
-- (new NULL: removed by a revised baseline file that no longer lists the carrier).
CREATE TABLE economics.revision (
    revision_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    dataset     text NOT NULL,
    key         jsonb NOT NULL,
    previous    jsonb NOT NULL,
    new         jsonb,
    source_file text NOT NULL,
    changed_at  timestamptz NOT NULL DEFAULT now(),
    changed_by  text NOT NULL
);
CREATE INDEX ON economics.revision (dataset, changed_at);

-- Value added at 2022 comparable prices: the enterprise's own index, else the
-- deflator of the longest prefix of its industry code for that year (contracts:
-- 3120 → 312 → 31 → 3), else 1 in 2022 itself; NULL when no index is known
-- (DOMAIN.md §1: deflation is input data, never invented).
CREATE VIEW economics.value_added_comparable AS
SELECT v.enterprise_id, v.period, v.value_added_10k_yuan, v.price_index_2022 AS own_index,
       d.price_index_2022 AS industry_index,
       CASE WHEN v.price_index_2022 IS NULL THEN d.industry_code END AS deflator_industry_code,
       coalesce(v.price_index_2022, d.price_index_2022,
                CASE WHEN extract(year FROM v.period) = 2022 THEN 1.0 END) AS price_index_2022,
       v.value_added_10k_yuan
         / coalesce(v.price_index_2022, d.price_index_2022,
                    CASE WHEN extract(year FROM v.period) = 2022 THEN 1.0 END) AS value_added_10k_yuan_2022
FROM economics.value_added v
JOIN registry.enterprise e USING (enterprise_id)
LEFT JOIN LATERAL (
    SELECT dd.price_index_2022, dd.industry_code
    FROM economics.deflator dd
    WHERE dd.year = extract(year FROM v.period)::integer
      AND left(e.industry_code, length(dd.industry_code)) = dd.industry_code
    ORDER BY length(dd.industry_code) DESC
    LIMIT 1
) d ON true;

CREATE VIEW api.value_added AS
SELECT p.park_code, e.enterprise_code, e.industry_code, c.period, c.value_added_10k_yuan,
       c.own_index, c.industry_index, c.deflator_industry_code, c.price_index_2022,
       c.value_added_10k_yuan_2022, v.revision, v.source_file, v.imported_at, v.imported_by
FROM economics.value_added_comparable c
JOIN economics.value_added v USING (enterprise_id, period)
JOIN registry.enterprise e USING (enterprise_id)
JOIN registry.park p USING (park_id);

CREATE VIEW api.deflator AS
SELECT industry_code, year, price_index_2022, revision, source_file, imported_at, imported_by
FROM economics.deflator;

CREATE VIEW api.baseline AS
SELECT p.park_code, e.enterprise_code, e.industry_code, b.year, b.carrier, b.unit, b.consumption,
       b.feedstock, b.non_fossil, bv.value_added_10k_yuan, b.revision, b.source_file, b.imported_at,
       b.imported_by
FROM economics.baseline b
JOIN registry.enterprise e USING (enterprise_id)
JOIN registry.park p USING (park_id)
LEFT JOIN economics.baseline_value_added bv USING (enterprise_id, year);

CREATE VIEW api.output AS
SELECT p.park_code, e.enterprise_code, o.period, o.product, o.quantity, o.unit, o.revision,
       o.source_file, o.imported_at, o.imported_by
FROM economics.output o
JOIN registry.enterprise e USING (enterprise_id)
JOIN registry.park p USING (park_id);

CREATE VIEW api.economics_revision AS
SELECT revision_id, dataset, key, previous, new, source_file, changed_at, changed_by
FROM economics.revision;

GRANT USAGE ON SCHEMA economics TO parkenergy_analytics;
GRANT SELECT ON ALL TABLES IN SCHEMA economics TO parkenergy_analytics;
GRANT SELECT ON api.value_added, api.deflator, api.baseline, api.output, api.economics_revision
    TO parkenergy_analytics, parkenergy_grafana;
