"""Migration 0012: api.energy_tce_day / api.energy_tce_month give the same figures as the
definitions of migrations 0009 and 0010, whatever the filter.

A small generated park (two parks, four enterprises, an industry in both parks; meters of
several carriers and purposes, sub-meters, feedstock, PV generation and export, a steam
export, water as a working medium, washed coal without a CO2 factor, an enterprise
override of the gas coefficient from 2022; days and months around the turn of 2022 and in
2025, with gaps and partial coverage; fixed seed) is read through the migrated views and
through the old view texts, kept below as temporary views. Every level, with and without
filters on the group keys and the bucket, for both working_media settings.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any, LiteralString
from zoneinfo import ZoneInfo

import psycopg
import pytest
from psycopg import sql

from analytics.factors_store import set_setting
from parkdata.migrate import migrate

Conn = psycopg.Connection[tuple[Any, ...]]
SHANGHAI = ZoneInfo("Asia/Shanghai")

# The view texts of migrations 0009 (meter_energy, enterprise_group, group_energy and the
# two api views) and 0010 (enterprise_energy), as temporary views: the reference.
REFERENCE_VIEWS = (
    """CREATE TEMP VIEW ref_meter_energy AS
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
 AND (e.bucket AT TIME ZONE 'Asia/Shanghai')::date < s.seg_to""",
    """CREATE TEMP VIEW ref_enterprise_energy AS
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
    FROM ref_meter_energy me
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
FROM e""",
    """CREATE TEMP VIEW ref_enterprise_group AS
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
FROM registry.enterprise e""",
    """CREATE TEMP VIEW ref_group_energy AS
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
FROM ref_enterprise_energy ee
JOIN ref_enterprise_group g USING (enterprise_id)
GROUP BY ee.granularity, g.level, g.park_code, g.industry_code, g.enterprise_code, ee.bucket""",
    """CREATE TEMP VIEW ref_energy_tce_day AS
SELECT ge.level, ge.park_code, ge.industry_code, ge.enterprise_code, ge.bucket,
       ge.energy_tce_gross, ge.energy_tce_excl_feedstock, ge.energy_tce_excl_feedstock_nonfossil,
       ge.feedstock_tce, ge.nonfossil_tce, ge.co2_t, ge.coverage,
       ge.coverage < t.min_coverage AS low_coverage,
       ge.factors_complete, ge.co2_complete, ge.co2_provisional, ge.enterprises, ge.meters
FROM ref_group_energy ge
CROSS JOIN accounting.intensity_target t
WHERE ge.granularity = 'day'""",
    """CREATE TEMP VIEW ref_energy_tce_month AS
SELECT ge.level, ge.park_code, ge.industry_code, ge.enterprise_code, ge.bucket,
       ge.energy_tce_gross, ge.energy_tce_excl_feedstock, ge.energy_tce_excl_feedstock_nonfossil,
       ge.feedstock_tce, ge.nonfossil_tce, ge.co2_t, ge.coverage,
       ge.coverage < t.min_coverage AS low_coverage,
       ge.factors_complete, ge.co2_complete, ge.co2_provisional, ge.enterprises, ge.meters
FROM ref_group_energy ge
CROSS JOIN accounting.intensity_target t
WHERE ge.granularity = 'month'""",
)

# park, enterprise, industry: industry 3120 is in both parks
ENTERPRISES = (("P1", "E1", "3120"), ("P1", "E2", "2710"), ("P2", "E3", "3120"), ("P2", "E4", "3311"))
# meter, carrier, unit, purpose, parent, typical daily quantity
METERS = (
    ("EL", "electricity", "kWh", "consumption", None, 3_000.0),
    ("EL-SUB", "electricity", "kWh", "consumption", "EL", 900.0),
    ("NG", "natural_gas", "m3", "consumption", None, 400.0),
    ("NG-FEED", "natural_gas", "m3", "feedstock", "NG", 120.0),
    ("PV", "electricity", "kWh", "generation", None, 700.0),
    ("PV-EX", "electricity", "kWh", "export", None, 200.0),
    ("ST", "steam", "t", "consumption", None, 5.0),
    ("ST-EX", "steam", "t", "export", None, 1.0),
    ("WA", "water", "m3", "consumption", None, 60.0),
    ("COAL", "washed_coal", "kg", "consumption", None, 800.0),
)
DAYS = tuple(date(2021, 12, 28) + timedelta(days=i) for i in range(9)) + tuple(
    date(2025, 3, 1) + timedelta(days=i) for i in range(5)
)
# months around the turn of 2022 (provincial grid factors of 2021 and 2022) and of 2025 (provisional)
MONTHS = tuple(
    date(y, m, 1) for y, m in ((2021, 11), (2021, 12), (2022, 1), (2022, 2), (2025, 1), (2025, 2), (2025, 3))
)
COLUMNS = (
    "level, park_code, industry_code, enterprise_code, bucket, energy_tce_gross, energy_tce_excl_feedstock,"
    " energy_tce_excl_feedstock_nonfossil, feedstock_tce, nonfossil_tce, co2_t, coverage, low_coverage,"
    " factors_complete, co2_complete, co2_provisional, enterprises, meters"
)
JANUARY_2022 = (datetime(2022, 1, 1, tzinfo=SHANGHAI), datetime(2022, 2, 1, tzinfo=SHANGHAI))
# WHERE clauses a dashboard or user may put on the views, with their parameters
FILTERS: tuple[tuple[LiteralString, tuple[object, ...]], ...] = (
    ("true", ()),
    ("level = 'enterprise'", ()),
    ("level = 'park_industry'", ()),
    ("level = 'industry'", ()),
    ("level = 'park'", ()),
    ("level = 'city'", ()),
    ("level IN ('enterprise', 'city')", ()),
    ("level = 'enterprise' AND enterprise_code = 'E1'", ()),
    ("level = 'enterprise' AND park_code = 'P1'", ()),
    ("level = 'enterprise' AND enterprise_code IN ('E2', 'E3')", ()),
    ("level = 'park_industry' AND park_code = 'P2' AND industry_code = '3120'", ()),
    ("level = 'industry' AND industry_code = '3120'", ()),
    ("level = 'park' AND park_code = 'P1'", ()),
    ("park_code = 'P2'", ()),
    ("industry_code = '3120'", ()),
    ("enterprise_code = 'E4'", ()),
    ("level = 'city' AND bucket >= %s AND bucket < %s", JANUARY_2022),
    ("level = 'park' AND park_code = 'P2' AND bucket >= %s AND bucket < %s", JANUARY_2022),
    ("level = 'enterprise' AND enterprise_code = 'E3' AND bucket >= %s", JANUARY_2022[:1]),
)


def _local(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=SHANGHAI)


def _load(conn: Conn) -> None:
    """Registry, an override and rollup rows with gaps and partial coverage (seed 12)."""
    rng = random.Random(12)
    meter_ids: list[tuple[int, float]] = []
    with conn.transaction():
        parks: dict[str, int] = {}
        for park_code, enterprise_code, industry_code in ENTERPRISES:
            if park_code not in parks:
                row = conn.execute(
                    "INSERT INTO registry.park (park_code, park_name) VALUES (%s, %s) RETURNING park_id",
                    (park_code, park_code),
                ).fetchone()
                assert row is not None
                parks[park_code] = int(row[0])
            ent = conn.execute(
                "INSERT INTO registry.enterprise (enterprise_code, enterprise_name, park_id, industry_code)"
                " VALUES (%s, %s, %s, %s) RETURNING enterprise_id",
                (enterprise_code, enterprise_code, parks[park_code], industry_code),
            ).fetchone()
            assert ent is not None
            ids: dict[str, int] = {}
            scale = rng.uniform(0.5, 2.0)
            # E4 has only electricity and water: other carriers' meters are left out.
            meters = METERS if enterprise_code != "E4" else (METERS[0], METERS[8])
            for code, carrier, unit, purpose, parent, daily in meters:
                row = conn.execute(
                    "INSERT INTO registry.meter (enterprise_id, meter_code, carrier, unit, kind, purpose,"
                    " parent_meter_id, expected_interval_s) VALUES (%s, %s, %s, %s, 'register', %s, %s, 900)"
                    " RETURNING meter_id",
                    (ent[0], code, carrier, unit, purpose, ids.get(parent or "")),
                ).fetchone()
                assert row is not None
                ids[code] = int(row[0])
                meter_ids.append((int(row[0]), daily * scale))
            if enterprise_code == "E1":
                # a measured LHV of 36 000 kJ/m3 from 2022 (kgce/m3 = LHV / 29 307.6, GB/T 2589-2020)
                conn.execute(
                    "INSERT INTO accounting.tce_factor_override (enterprise_id, carrier, unit, kgce_per_unit,"
                    " valid_from, source, confidence) VALUES (%s, 'natural_gas', 'm3', %s, '2022-01-01',"
                    " 'test: measured LHV', 'M')",
                    (ent[0], 36_000 / 29_307.6),
                )
        for granularity, buckets, per in (("day", DAYS, 1.0), ("month", MONTHS, 30.0)):
            expected_per_bucket = 96 if granularity == "day" else 2880
            with conn.cursor() as cur:
                cur.executemany(
                    sql.SQL(
                        "INSERT INTO {} (meter_id, bucket, quantity, estimated_quantity, flagged_quantity,"
                        " readings, expected_readings, coverage) VALUES (%s, %s, %s, 0, 0, %s, %s, %s)"
                    ).format(sql.Identifier("analytics", f"energy_{granularity}")),
                    [
                        (
                            meter_id,
                            _local(bucket),
                            quantity * per * rng.uniform(0.7, 1.3),
                            readings,
                            expected,
                            None if expected == 0 else min(1.0, readings / expected),
                        )
                        for meter_id, quantity in meter_ids
                        for bucket in buckets
                        if rng.random() > 0.15  # gaps: a meter without a row in some buckets
                        for expected in [rng.choice((expected_per_bucket, expected_per_bucket, 0))]
                        for readings in [rng.choice((expected, expected, expected // 2, expected + 3))]
                    ],
                )
    conn.execute("ANALYZE")


@pytest.fixture
def conn(database_url: str) -> Iterator[Conn]:
    """A migrated database with the generated park and the reference views."""
    with psycopg.connect(database_url, autocommit=True) as c:
        migrate(c)
        _load(c)
        for view in REFERENCE_VIEWS:
            c.execute(view)
        yield c


def _key(row: tuple[Any, ...]) -> tuple[str, ...]:
    return tuple("" if v is None else str(v) for v in row[:5])


def _rows(
    conn: Conn, view: sql.Identifier, where: LiteralString, params: tuple[object, ...]
) -> list[tuple[Any, ...]]:
    query = sql.SQL("SELECT {} FROM {} WHERE {}").format(sql.SQL(COLUMNS), view, sql.SQL(where))
    return sorted(conn.execute(query, params).fetchall(), key=_key)


def _assert_same(new: list[tuple[Any, ...]], reference: list[tuple[Any, ...]], what: str) -> None:
    """Same rows, keys, flags and counts; the same floats up to the order of summation."""
    assert [_key(r) for r in new] == [_key(r) for r in reference], what
    for n, r in zip(new, reference, strict=True):
        for column, a, b in zip(COLUMNS.split(", "), n, r, strict=True):
            if isinstance(b, float) and isinstance(a, float):
                assert math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12), f"{what} {_key(r)} {column}: {a} {b}"
            else:
                assert a == b, f"{what} {_key(r)} {column}: {a!r} {b!r}"


@pytest.mark.parametrize("working_media", ["exclude", "include"])
def test_tce_views_equal_the_0009_definitions_for_every_filter(conn: Conn, working_media: str) -> None:
    set_setting(conn, "working_media", working_media)
    for granularity in ("day", "month"):
        for where, params in FILTERS:
            reference = _rows(conn, sql.Identifier(f"ref_energy_tce_{granularity}"), where, params)
            assert reference, f"{granularity} {where}: the fixture must give rows"
            _assert_same(
                _rows(conn, sql.Identifier("api", f"energy_tce_{granularity}"), where, params),
                reference,
                f"{working_media} {granularity} {where}",
            )


@pytest.mark.parametrize("working_media", ["exclude", "include"])
def test_enterprise_and_meter_energy_equal_the_0009_0010_definitions(conn: Conn, working_media: str) -> None:
    """The views the intensity reads (accounting.enterprise_energy) are unchanged too."""
    set_setting(conn, "working_media", working_media)
    for view, key in (("enterprise_energy", "enterprise_id"), ("meter_energy", "meter_id")):
        order = sql.SQL("ORDER BY granularity, {}, bucket").format(sql.Identifier(key))
        new = conn.execute(
            sql.SQL("SELECT * FROM {} {}").format(sql.Identifier("accounting", view), order)
        ).fetchall()
        reference = conn.execute(
            sql.SQL("SELECT * FROM {} {}").format(sql.Identifier(f"ref_{view}"), order)
        ).fetchall()
        assert reference and len(new) == len(reference), view
        for n, r in zip(new, reference, strict=True):
            assert len(n) == len(r)
            for a, b in zip(n, r, strict=True):
                if isinstance(b, float) and isinstance(a, float):
                    assert math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12), f"{view} {r}"
                else:
                    assert a == b, f"{view} {r}"


def test_the_fixture_exercises_the_rules(conn: Conn) -> None:
    """The generated data reaches every branch the comparison is meant to cover."""
    flags = conn.execute(
        "SELECT bool_or(NOT co2_complete), bool_or(co2_provisional), bool_or(NOT co2_provisional),"
        " bool_or(low_coverage), bool_or(coverage IS NULL), bool_or(feedstock_tce > 0),"
        " bool_or(nonfossil_tce > 0), count(DISTINCT enterprises)"
        " FROM ref_energy_tce_day"
    ).fetchone()
    assert flags is not None
    assert flags[:7] == (True,) * 7 and flags[7] >= 3
    set_setting(conn, "working_media", "exclude")
    excluded = conn.execute("SELECT sum(meters) FROM api.energy_tce_month WHERE level = 'city'").fetchone()
    set_setting(conn, "working_media", "include")
    included = conn.execute("SELECT sum(meters) FROM api.energy_tce_month WHERE level = 'city'").fetchone()
    assert excluded is not None and included is not None and included[0] > excluded[0]
