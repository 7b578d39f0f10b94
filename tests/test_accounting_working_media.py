"""The working_media setting (migration 0010): water and other working media are left out of
energy and of the 2022 base by default (statistics practice, form 205-1), counted at their
GB/T 2589-2020 coefficients with ``include``; meters and baseline statistics alike."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from analytics.factors import FactorError
from analytics.factors_store import set_setting, settings
from parkdata.migrate import migrate
from tests.test_energy_store import SHANGHAI_MIDNIGHT, Conn, load, meter

ELECTRICITY_KWH = 100_000.0
WATER_M3 = 20_000.0
KGCE_PER_KWH = 0.1229  # GB/T 2589-2020, 当量
KGCE_PER_M3_WATER = 0.0857  # GB/T 2589-2008 new water, kept in 2020
BASE_KWH, BASE_WATER_M3, BASE_VA = 1_000_000.0, 300_000.0, 500.0


@pytest.fixture
def conn(database_url: str) -> Iterator[Conn]:
    """A migrated database on an autocommit connection."""
    with psycopg.connect(database_url, autocommit=True) as c:
        migrate(c)
        yield c


def _setup(conn: Conn, tmp_path: Path) -> None:
    water = meter("WA")
    water[7], water[8] = "water", "m3"
    ids = load(conn, tmp_path, meter("EL"), water)
    with conn.transaction():
        for code, quantity in (("EL", ELECTRICITY_KWH), ("WA", WATER_M3)):
            conn.execute(
                "INSERT INTO analytics.energy_month VALUES (%s, %s, %s, 0, 0, 2688, 2688, 1)",
                (ids[code], SHANGHAI_MIDNIGHT, quantity),
            )
        enterprise = conn.execute("SELECT enterprise_id FROM registry.enterprise").fetchone()
        assert enterprise is not None
        conn.execute(
            "INSERT INTO economics.value_added (enterprise_id, period, value_added_10k_yuan,"
            " price_index_2022, source_file) VALUES (%s, '2025-02-01', 40, 1.0, 'test')",
            enterprise,
        )
        for carrier, unit, consumption in (("electricity", "kWh", BASE_KWH), ("water", "m3", BASE_WATER_M3)):
            conn.execute(
                "INSERT INTO economics.baseline (enterprise_id, year, carrier, unit, consumption, feedstock,"
                " non_fossil, source_file) VALUES (%s, 2022, %s, %s, %s, 0, 0, 'test')",
                (enterprise[0], carrier, unit, consumption),
            )
        conn.execute(
            "INSERT INTO economics.baseline_value_added (enterprise_id, year, value_added_10k_yuan,"
            " source_file) VALUES (%s, 2022, %s, 'test')",
            (enterprise[0], BASE_VA),
        )


def _figures(conn: Conn) -> tuple[float, int, float, float]:
    month = conn.execute(
        "SELECT energy_tce_gross, meters FROM api.energy_tce_month WHERE level = 'enterprise'"
    ).fetchone()
    intensity = conn.execute(
        "SELECT energy_tce, base_2022 FROM api.intensity WHERE level = 'city' AND period_type = 'month'"
        " AND variant = 'gross'"
    ).fetchone()
    assert month is not None and intensity is not None
    return float(month[0]), int(month[1]), float(intensity[0]), float(intensity[1])


def test_working_media_are_excluded_by_default_and_included_on_request(conn: Conn, tmp_path: Path) -> None:
    _setup(conn, tmp_path)
    electricity_tce = ELECTRICITY_KWH * KGCE_PER_KWH / 1000
    water_tce = WATER_M3 * KGCE_PER_M3_WATER / 1000
    base_excluded = BASE_KWH * KGCE_PER_KWH / 1000 / BASE_VA
    base_included = (BASE_KWH * KGCE_PER_KWH + BASE_WATER_M3 * KGCE_PER_M3_WATER) / 1000 / BASE_VA

    assert settings(conn)["working_media"] == "exclude"
    energy, meters, intensity_energy, base = _figures(conn)
    assert energy == pytest.approx(electricity_tce) and meters == 1
    assert intensity_energy == pytest.approx(electricity_tce) and base == pytest.approx(base_excluded)

    set_setting(conn, "working_media", "include")
    energy, meters, intensity_energy, base = _figures(conn)
    assert energy == pytest.approx(electricity_tce + water_tce) and meters == 2
    assert intensity_energy == pytest.approx(electricity_tce + water_tce)
    assert base == pytest.approx(base_included)

    with pytest.raises(FactorError, match="working_media"):
        set_setting(conn, "working_media", "sometimes")
    with pytest.raises(psycopg.errors.CheckViolation):
        conn.execute("UPDATE accounting.setting SET value = 'sometimes' WHERE key = 'working_media'")
    assert {r[0] for r in conn.execute("SELECT carrier FROM accounting.working_medium")} == {
        "water",
        "softened_water",
        "deaerated_water",
        "compressed_air",
        "oxygen",
        "nitrogen",
    }
