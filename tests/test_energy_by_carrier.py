"""``api.energy_carrier_month``: each carrier's signed share of an enterprise's gross energy and CO₂.

Read-only on the shared ``simulated_park`` fixture: the carriers of an enterprise and month sum to
``api.energy_tce_month`` (same rules, one signed view), and a carrier's share is its meters'
quantities times the factor valid for the month.
"""

from __future__ import annotations

import math

import psycopg
import pytest

from tests.simulated_park import SimulatedPark


def _rows(url: str, query: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(query).fetchall()


def _close(a: object, b: object) -> bool:
    return math.isclose(float(str(a)), float(str(b)), rel_tol=1e-9, abs_tol=1e-9)


def test_carriers_sum_to_the_enterprise_month(simulated_park: SimulatedPark) -> None:
    rows = _rows(
        simulated_park.database_url,
        "SELECT m.enterprise_code, m.bucket, m.energy_tce_gross, m.co2_t, c.energy_tce, c.co2_t,"
        "       m.feedstock_tce, c.feedstock_tce"
        " FROM api.energy_tce_month m"
        " JOIN (SELECT enterprise_code, bucket, sum(energy_tce_gross) AS energy_tce, sum(co2_t) AS co2_t,"
        "              sum(feedstock_tce) AS feedstock_tce"
        "       FROM api.energy_carrier_month GROUP BY enterprise_code, bucket) c"
        "   USING (enterprise_code, bucket)"
        " WHERE m.level = 'enterprise'",
    )
    months = _rows(
        simulated_park.database_url,
        "SELECT count(*) FROM api.energy_tce_month WHERE level = 'enterprise'",
    )[0][0]
    assert len(rows) == months > 0
    assert sum(float(str(r[2])) for r in rows) > 0
    for code, bucket, gross, co2, carrier_gross, carrier_co2, feedstock, carrier_feedstock in rows:
        assert isinstance(gross, float)
        assert _close(carrier_gross, gross), (code, bucket)
        assert _close(carrier_co2, co2), (code, bucket)
        assert _close(carrier_feedstock, feedstock), (code, bucket)


def test_a_carrier_is_its_meters_times_the_factor(simulated_park: SimulatedPark) -> None:
    """Electricity of the top-level meters plus PV generation minus export, at the 当量 factor."""
    rows = _rows(
        simulated_park.database_url,
        "SELECT c.enterprise_code, c.bucket, c.energy_tce_gross, c.carrier_name_zh, q.kwh, q.generated_kwh"
        " FROM api.energy_carrier_month c"
        " JOIN (SELECT x.enterprise_code, x.bucket,"
        "              sum(x.quantity)"
        "                  FILTER (WHERE x.purpose = 'consumption' AND m.parent_meter_code IS NULL) AS kwh,"
        "              coalesce(sum(x.quantity) FILTER (WHERE x.purpose = 'generation'), 0)"
        "              - coalesce(sum(x.quantity) FILTER (WHERE x.purpose = 'export'), 0) AS generated_kwh"
        "       FROM api.meter_energy_month x"
        "       JOIN api.meter m USING (enterprise_code, meter_code)"
        "       WHERE x.carrier = 'electricity' AND x.unit = 'kWh'"
        "       GROUP BY x.enterprise_code, x.bucket) q USING (enterprise_code, bucket)"
        " WHERE c.carrier = 'electricity'",
    )
    factor = _rows(
        simulated_park.database_url,
        "SELECT kgce_per_unit FROM api.tce_factor WHERE carrier = 'electricity' AND basis = 'calorific'"
        " AND unit = 'kWh' AND is_current",
    )
    if not factor:
        pytest.fail("no current 当量 (calorific) electricity factor in api.tce_factor")
    kgce_per_kwh = float(str(factor[0][0]))
    assert rows
    for code, bucket, tce, name, kwh, generated_kwh in rows:
        assert name == "电力"
        expected = (float(str(kwh or 0)) + float(str(generated_kwh))) * kgce_per_kwh / 1000
        assert _close(tce, expected), (code, bucket)
