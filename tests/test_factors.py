"""Factors: the DOMAIN.md §7 vectors from the seeded tables, end to end, and revisions."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
import pytest
from typer.testing import CliRunner

from analytics.accounting import co2_t, tce
from analytics.factors import (
    Co2Factor,
    Confidence,
    FactorError,
    TceFactor,
    TceOverride,
    kgce_per_unit_from_lhv,
)
from analytics.factors_store import add_override, add_tce_factor, list_rows, set_setting
from analytics.target import CITY_TARGET_2027
from parkdata.carriers import CARRIERS
from parkdata.migrate import migrate
from parkdata.registry_file import read_registry_file
from parkdata.registry_store import store_registry
from parkdata.units import UNITS, Dimension, conversion_factor
from parkenergy.cli import app

Conn = psycopg.Connection[tuple[object, ...]]
SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def conn(database_url: str) -> Iterator[Conn]:
    with psycopg.connect(database_url, autocommit=True) as c:
        migrate(c)
        yield c


def _tce_factor(conn: Conn, carrier: str, unit: str, basis: str = "any") -> float:
    """The seeded coefficient of ``carrier`` converted to ``unit`` [kgce per unit]."""
    row = conn.execute(
        "SELECT f.kgce_per_unit, f.unit FROM accounting.tce_factor_current f"
        " JOIN accounting.unit fu ON fu.symbol = f.unit JOIN accounting.unit u ON u.symbol = %s"
        " AND u.dimension = fu.dimension WHERE f.carrier = %s AND f.basis = %s",
        (unit, carrier, basis),
    ).fetchone()
    assert row is not None, (carrier, unit)
    return float(str(row[0])) * conversion_factor(unit, str(row[1]))


def _co2_factor(
    conn: Conn, carrier: str, unit: str, region: str = "any", day: date = date(2022, 6, 1)
) -> float:
    row = conn.execute(
        "SELECT f.kgco2_per_unit, f.unit FROM accounting.co2_factor_current f"
        " JOIN accounting.unit fu ON fu.symbol = f.unit JOIN accounting.unit u ON u.symbol = %s"
        " AND u.dimension = fu.dimension WHERE f.carrier = %s AND f.region = %s"
        " AND f.valid_from <= %s AND (f.valid_to IS NULL OR %s < f.valid_to)"
        " ORDER BY f.valid_from DESC LIMIT 1",
        (unit, carrier, region, day, day),
    ).fetchone()
    assert row is not None, (carrier, unit, region)
    return float(str(row[0])) * conversion_factor(unit, str(row[1]))


def test_domain_section_7_vectors_from_the_seeded_factors(conn: Conn) -> None:
    """Every vector of DOMAIN.md §7, computed with the coefficients as stored."""
    assert math.isclose(tce(1_000_000, _tce_factor(conn, "electricity", "kWh", "calorific")), 122.9)
    assert math.isclose(tce(100_000, _tce_factor(conn, "natural_gas", "m3")), 121.43)
    assert math.isclose(tce(1_000, _tce_factor(conn, "steam", "t")), 128.6)
    assert math.isclose(tce(1_000, _tce_factor(conn, "heat", "GJ")), 34.12)
    assert math.isclose(tce(10, _tce_factor(conn, "diesel", "t")), 14.571)
    assert math.isclose(co2_t(10, _co2_factor(conn, "diesel", "t")), 30.959)
    assert math.isclose(co2_t(1_000, _co2_factor(conn, "electricity", "MWh", "hubei")), 436.4)
    assert math.isclose(co2_t(1_000, _co2_factor(conn, "electricity", "MWh", "national")), 536.6)
    assert math.isclose(co2_t(10_000, _co2_factor(conn, "natural_gas", "m3")), 21.622)
    # DOMAIN.md §3: 100 t of 1.0 MPa saturated steam → 29.63 t CO2.
    assert math.isclose(co2_t(100, _co2_factor(conn, "steam", "t")), 29.63)


VECTOR_REGISTRY = (
    "park_code,park_name,enterprise_code,enterprise_name,industry_code,meter_code,carrier,unit,kind\n"
    """V,Vectors,V-EL,Electricity,3120,M,electricity,kWh,register
V,Vectors,V-GAS,Gas,3120,M,natural_gas,m3,register
V,Vectors,V-ST,Steam,3120,M,steam,t,register
V,Vectors,V-HEAT,Heat,3120,M,heat,GJ,register
V,Vectors,V-DSL,Diesel,3120,M,diesel,t,register
V,Vectors,V-MWH,Grid,3120,M,electricity,MWh,register
"""
)


def test_domain_section_7_vectors_through_the_energy_views(
    conn: Conn, database_url: str, tmp_path: Path
) -> None:
    """The same vectors as metered quantities of June 2022, read from api.energy_tce_month."""
    registry = tmp_path / "registry.csv"
    registry.write_text(VECTOR_REGISTRY, encoding="utf-8")
    with psycopg.connect(database_url) as c:
        store_registry(c, read_registry_file(registry))
    quantity = {
        "V-EL": 1_000_000,
        "V-GAS": 100_000,
        "V-ST": 1_000,
        "V-HEAT": 1_000,
        "V-DSL": 10,
        "V-MWH": 1_000,
    }
    bucket = datetime(2022, 6, 1, tzinfo=SHANGHAI)
    for code, q in quantity.items():
        conn.execute(
            "INSERT INTO analytics.energy_month (meter_id, bucket, quantity, estimated_quantity,"
            " flagged_quantity,"
            " readings, expected_readings, coverage) SELECT meter_id, %s, %s, 0, 0, 1, 1, 1"
            " FROM registry.meter JOIN registry.enterprise USING (enterprise_id) WHERE enterprise_code = %s",
            (bucket, q, code),
        )
    got = {
        str(code): (float(str(energy)), float(str(co2)))
        for code, energy, co2 in conn.execute(
            "SELECT enterprise_code, energy_tce_gross, co2_t FROM api.energy_tce_month"
            " WHERE level = 'enterprise'"
        )
    }
    expected = {
        "V-EL": (122.9, 436.4),
        "V-GAS": (121.43, 216.22),
        "V-ST": (128.6, 296.3),
        "V-HEAT": (34.12, 110.0),
        "V-DSL": (14.571, 30.959),
        "V-MWH": (122.9, 436.4),
    }
    assert got.keys() == expected.keys()
    for code, (energy, co2) in expected.items():
        assert math.isclose(got[code][0], energy), code
        assert math.isclose(got[code][1], co2), code
    set_setting(conn, "co2_region", "national")
    national = conn.execute(
        "SELECT co2_t FROM api.energy_tce_month WHERE level = 'enterprise' AND enterprise_code = 'V-MWH'"
    ).fetchone()
    assert national is not None
    assert math.isclose(float(str(national[0])), 536.6)


def test_units_table_mirrors_parkdata_units(conn: Conn) -> None:
    stored = {str(s): (str(d), float(str(f))) for s, d, f in conn.execute("SELECT * FROM accounting.unit")}
    quantity = {Dimension.ENERGY, Dimension.VOLUME, Dimension.MASS}
    expected = {
        u.symbol: (str(u.dimension), u.to_canonical) for u in UNITS.values() if u.dimension in quantity
    }
    assert stored.keys() == expected.keys()
    for symbol, (dimension, factor) in expected.items():
        assert stored[symbol][0] == dimension
        assert math.isclose(stored[symbol][1], factor)


def test_every_carrier_has_a_tce_factor_for_each_quantity_dimension(conn: Conn) -> None:
    registry = {str(c) for (c,) in conn.execute("SELECT carrier_code FROM registry.carrier")}
    assert registry == set(CARRIERS)
    covered = {
        (str(c), str(d))
        for c, d in conn.execute(
            "SELECT f.carrier, u.dimension FROM accounting.tce_factor_current f"
            " JOIN accounting.unit u ON u.symbol = f.unit"
        )
    }
    for carrier in CARRIERS.values():
        for dimension in carrier.dimensions & {Dimension.ENERGY, Dimension.VOLUME, Dimension.MASS}:
            assert (carrier.code, str(dimension)) in covered, (carrier.code, dimension)
    rows = list_rows(conn, "tce")
    assert all(r["source"] and r["confidence"] in ("H", "M", "U") for r in rows)


def test_target_table_mirrors_the_python_target(conn: Conn) -> None:
    row = conn.execute(
        "SELECT base_year, target_year, target_ratio, min_coverage FROM accounting.intensity_target"
    ).fetchone()
    t = CITY_TARGET_2027
    assert row == (t.base_year, t.target_year, t.target_ratio, t.min_coverage)


def test_revisions_keep_history(conn: Conn) -> None:
    factor = TceFactor("natural_gas", "m3", 1.2143, date(2000, 1, 1), "GB/T 2589-2020", Confidence.HIGH)
    assert add_tce_factor(conn, factor) == 2  # the seed is revision 1 of the same key
    rows = [r for r in list_rows(conn, "tce", current_only=False) if r["carrier"] == "natural_gas"]
    assert [(r["revision"], r["is_current"]) for r in rows] == [(1, False), (2, True)]
    with pytest.raises(FactorError, match="per m3"):
        add_tce_factor(
            conn, TceFactor("natural_gas", "L", 0.0012, date(2000, 1, 1), "x", Confidence.UNVERIFIED)
        )


def test_factor_values_are_checked() -> None:
    with pytest.raises(FactorError, match="unknown carrier"):
        TceFactor("plutonium", "kg", 1.0, date(2024, 1, 1), "x", Confidence.UNVERIFIED)
    with pytest.raises(FactorError, match="not measured in energy"):
        TceFactor("natural_gas", "kWh", 1.0, date(2024, 1, 1), "x", Confidence.UNVERIFIED)
    with pytest.raises(FactorError, match="basis"):
        TceFactor("natural_gas", "m3", 1.0, date(2024, 1, 1), "x", Confidence.UNVERIFIED, basis="calorific")
    with pytest.raises(FactorError, match="valid_to"):
        TceFactor("coke", "kg", 1.0, date(2024, 1, 1), "x", Confidence.UNVERIFIED, valid_to=date(2023, 1, 1))
    # GB/T 2589-2020: gas-field gas of LHV 35 588 kJ/m3 is the default 1.2143 kgce/m3.
    assert math.isclose(kgce_per_unit_from_lhv(35_588), 1.2143, rel_tol=1e-4)
    with pytest.raises(FactorError):
        kgce_per_unit_from_lhv(0)
    # An infinite coefficient would turn every sum it enters into inf (psycopg stores 'Infinity').
    for bad in (math.inf, math.nan, -1.0):
        with pytest.raises(FactorError, match="positive finite number"):
            TceFactor("coke", "kg", bad, date(2024, 1, 1), "x", Confidence.UNVERIFIED)
        with pytest.raises(FactorError, match="positive finite number"):
            kgce_per_unit_from_lhv(bad)
    with pytest.raises(FactorError, match="finite number, 0 or more"):
        Co2Factor("coke", "kg", math.inf, date(2024, 1, 1), "x", Confidence.UNVERIFIED)


def test_co2_factor_region_and_reference_year_are_checked_before_the_database() -> None:
    """The table's CHECKs (reference_year 1990-2100, region not empty) as FactorErrors, not tracebacks."""
    day = date(2024, 1, 1)
    with pytest.raises(FactorError, match="reference_year must be within 1990-2100, got 3000"):
        Co2Factor("electricity", "kWh", 0.5, day, "x", Confidence.MEDIUM, region="hubei", reference_year=3000)
    for region in ("", " hubei"):
        with pytest.raises(FactorError, match="region must be a name"):
            Co2Factor("electricity", "kWh", 0.5, day, "x", Confidence.MEDIUM, region=region)
    ok = Co2Factor(
        "electricity", "kWh", 0.5, day, "x", Confidence.MEDIUM, region="hubei", reference_year=2024
    )
    assert (ok.region, ok.reference_year) == ("hubei", 2024)
    args = ["factors", "add-co2", "--carrier", "electricity", "--unit", "kWh", "--kgco2-per-unit", "0.5"]
    args += ["--valid-from", "2024-01-01", "--source", "x", "--confidence", "M", "--region", "hubei"]
    # refused before any connection: the database URL leads nowhere
    result = CliRunner().invoke(
        app, [*args, "--reference-year", "3000"], env={"DATABASE_URL": "postgresql://x@127.0.0.1:1/x"}
    )
    assert result.exit_code == 2
    assert result.output.strip() == "error: reference_year must be within 1990-2100, got 3000"


def test_override_needs_a_known_enterprise_and_meter(conn: Conn, database_url: str, tmp_path: Path) -> None:
    registry = tmp_path / "registry.csv"
    registry.write_text(VECTOR_REGISTRY, encoding="utf-8")
    with psycopg.connect(database_url) as c:
        store_registry(c, read_registry_file(registry))
    base = TceOverride("V-GAS", "natural_gas", "m3", 1.25, date(2024, 1, 1), "lab", Confidence.HIGH)
    assert add_override(conn, base) == 1
    assert add_override(conn, base) == 2
    with pytest.raises(FactorError, match="unknown enterprise"):
        add_override(
            conn, TceOverride("NOPE", "natural_gas", "m3", 1.2, date(2024, 1, 1), "lab", Confidence.HIGH)
        )
    with pytest.raises(FactorError, match="measures natural_gas"):
        add_override(
            conn,
            TceOverride("V-GAS", "coke", "kg", 1.0, date(2024, 1, 1), "lab", Confidence.HIGH, meter_code="M"),
        )
    listed = list_rows(conn, "override")
    assert [(r["enterprise_code"], r["revision"]) for r in listed] == [("V-GAS", 2)]
