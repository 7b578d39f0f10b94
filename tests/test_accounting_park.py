"""A small park with hand-computed energy, CO2 and intensities per variant.

Two parks, three enterprises, January-March 2025 of monthly (and some daily)
energy rows written straight into analytics.energy_month / energy_day (the
plain-PostgreSQL rollup tables), economics imported through ``parkenergy import``,
and the results read through ``parkenergy intensity --json`` and the api views.

Hand computation (GB/T 2589-2020 coefficients of migration 0007, electricity 当量):

E1 (3120, park P1), per month
  EL  90 000 kWh consumption        × 0.1229  = 11.061 tce; CO2 × 0.4364 (Hubei 2022) = 39.276 t
  NG  10 000 m3  consumption        × 1.2143  = 12.143 tce; CO2 × 2.1622 = 21.622 t
  NGF  4 000 m3  feedstock, sub of NG × 1.2143 = 4.8572 tce (inside NG: not added to gross)
  PV  20 000 kWh generation         × 0.1229  = 2.458 tce
  EX   5 000 kWh export             × 0.1229  = 0.6145 tce
  gross = 11.061 + 12.143 + 2.458 - 0.6145 = 25.0475
  excl_feedstock = 25.0475 - 4.8572 = 20.1903
  excl_feedstock_nonfossil = 20.1903 - (20 000 - 5 000) × 0.1229 / 1000 = 18.3468
  CO2 = 39.276 + 21.622 = 60.898 t
E2 (2710, park P1), per month
  EL2 50 MWh consumption × 122.9 kgce/MWh = 6.145 tce; CO2 50 000 kWh × 0.4364 = 21.82 t
  ST  90 t steam         × 128.6 kgce/t   = 11.574 tce; CO2 90 000 kg × 0.2963 = 26.667 t
  SUB 30 000 kWh, sub-meter of EL2: not counted
  all variants 17.719 tce; CO2 48.487 t
E3 (3311, park P2), per month
  EL3 210 000 kWh × 0.1229 = 25.809 tce (coverage 0.5 in February)

Value added per month at current prices [10⁴ yuan] and its 2022-price value:
  E1 1250 / deflator of prefix 31 (1.25)  = 1000
  E2  500 / own index 1.0                 = 500
  E3  400 / deflator of prefix 3 (2.0)    = 200
Baseline 2022 (gross, excl_feedstock, excl_feedstock_nonfossil [tce]; VA [10⁴ yuan]):
  E1 EL 1 300 000 kWh (non-fossil 150 000), NG 120 000 m3 (feedstock 48 000)
     → 305.486, 247.1996, 228.7646; 12 000
  E2 EL 600 000 kWh, steam 1 200 t → 228.06 (all variants); 6 000
  E3 EL 2 400 000 kWh → 294.96 (all variants); 2 400
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
import pytest
from typer.testing import CliRunner

from analytics.accounting import MeterQuantity, account
from analytics.target import CITY_TARGET_2027, path_intensity
from parkdata.carriers import MeterPurpose
from parkdata.migrate import migrate
from parkdata.registry_file import read_registry_file
from parkdata.registry_store import store_registry
from parkenergy.cli import app

runner = CliRunner()
SHANGHAI = ZoneInfo("Asia/Shanghai")
MONTHS = (date(2025, 1, 1), date(2025, 2, 1), date(2025, 3, 1))

REGISTRY = (
    "park_code,park_name,enterprise_code,enterprise_name,industry_code,meter_code,carrier,unit,kind,purpose,"
    "parent_meter_code\n"
    """P1,Park one,E1,Steel,3120,EL,electricity,kWh,register,consumption,
P1,Park one,E1,Steel,3120,NG,natural_gas,m3,register,consumption,
P1,Park one,E1,Steel,3120,NGF,natural_gas,m3,register,feedstock,NG
P1,Park one,E1,Steel,3120,PV,electricity,kWh,register,generation,
P1,Park one,E1,Steel,3120,EX,electricity,kWh,register,export,
P1,Park one,E2,Pharma,2710,EL2,electricity,MWh,register,consumption,
P1,Park one,E2,Pharma,2710,ST,steam,t,register,consumption,
P1,Park one,E2,Pharma,2710,SUB,electricity,kWh,register,consumption,EL2
P2,Park two,E3,Machines,3311,EL3,electricity,kWh,register,consumption,
"""
)

# (enterprise, meter) → monthly quantity in the meter's unit
QUANTITY = {
    ("E1", "EL"): 90_000.0,
    ("E1", "NG"): 10_000.0,
    ("E1", "NGF"): 4_000.0,
    ("E1", "PV"): 20_000.0,
    ("E1", "EX"): 5_000.0,
    ("E2", "EL2"): 50.0,
    ("E2", "ST"): 90.0,
    ("E2", "SUB"): 30_000.0,
    ("E3", "EL3"): 210_000.0,
}
# Hand-computed monthly figures (module docstring): gross, excl_feedstock, excl_feedstock_nonfossil, CO2
MONTHLY = {
    "E1": (25.0475, 20.1903, 18.3468, 60.898),
    "E2": (17.719, 17.719, 17.719, 48.487),
    "E3": (25.809, 25.809, 25.809, 210_000 * 0.4364 / 1000),
}
VA_2022_PRICES = {"E1": 1000.0, "E2": 500.0, "E3": 200.0}
BASE = {"E1": (305.486, 247.1996, 228.7646), "E2": (228.06,) * 3, "E3": (294.96,) * 3}
BASE_VA = {"E1": 12_000.0, "E2": 6_000.0, "E3": 2_400.0}
PARK_OF = {"E1": "P1", "E2": "P1", "E3": "P2"}
VARIANTS = ("gross", "excl_feedstock", "excl_feedstock_nonfossil")

VALUE_ADDED_CSV = "enterprise_code,period,value_added_10k_yuan,price_index_2022\n" + "".join(
    f"E1,{m:%Y-%m},1250,\nE2,{m:%Y-%m},500,1.0\nE3,{m:%Y-%m},400,\n" for m in MONTHS
)
DEFLATORS_CSV = "industry_code,year,price_index_2022\n31,2025,1.25\n3,2025,2.0\n27,2024,1.1\n"
BASELINE_CSV = """enterprise_code,year,carrier,unit,consumption,feedstock,non_fossil,value_added_10k_yuan
E1,2022,electricity,kWh,1300000,0,150000,12000
E1,2022,natural_gas,m3,120000,48000,0,12000
E2,2022,electricity,kWh,600000,,,6000
E2,2022,steam,t,1200,,,6000
E3,2022,electricity,kWh,2400000,,,2400
"""


def _local(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=SHANGHAI)


def _meter_ids(conn: psycopg.Connection[tuple[object, ...]]) -> dict[tuple[str, str], int]:
    cur = conn.execute(
        "SELECT e.enterprise_code, m.meter_code, m.meter_id FROM registry.meter m JOIN registry.enterprise e"
        " USING (enterprise_id)"
    )
    return {(str(e), str(m)): int(str(i)) for e, m, i in cur}


def _coverage(enterprise: str, month: date) -> float:
    return 0.5 if enterprise == "E3" and month.month == 2 else 1.0


def write_energy(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    """Monthly rows for January-March 2025 and daily rows for January."""
    ids = _meter_ids(conn)
    month_rows = []
    day_rows = []
    for (enterprise, meter), quantity in QUANTITY.items():
        for month in MONTHS:
            cov = _coverage(enterprise, month)
            month_rows.append((ids[enterprise, meter], _local(month), quantity, 2976, int(2976 * cov), cov))
        for d in range(31):
            day = date(2025, 1, 1) + timedelta(days=d)
            day_rows.append((ids[enterprise, meter], _local(day), quantity / 31, 96, 96, 1.0))
    with conn.transaction(), conn.cursor() as cur:
        for table, rows in (("energy_month", month_rows), ("energy_day", day_rows)):
            cur.executemany(
                f"INSERT INTO analytics.{table} (meter_id, bucket, quantity, estimated_quantity,"
                " flagged_quantity, expected_readings, readings, coverage)"
                " VALUES (%s, %s, %s, 0, 0, %s, %s, %s)",
                rows,
            )


@pytest.fixture
def park(database_url: str, tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """A migrated database with the small park, its energy and its imported economics."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        migrate(conn)
    registry = tmp_path / "registry.csv"
    registry.write_text(REGISTRY, encoding="utf-8")
    with psycopg.connect(database_url) as conn:
        store_registry(conn, read_registry_file(registry))
        write_energy(conn)
    env = {"DATABASE_URL": database_url}
    for name, text in (
        ("value-added", VALUE_ADDED_CSV),
        ("deflators", DEFLATORS_CSV),
        ("baseline", BASELINE_CSV),
    ):
        path = tmp_path / f"{name}.csv"
        path.write_text(text, encoding="utf-8")
        result = runner.invoke(app, ["import", name, str(path), "--by", "tester"], env=env)
        assert result.exit_code == 0, result.output
    yield database_url, env


def _intensity(env: dict[str, str], *args: str) -> list[dict[str, object]]:
    result = runner.invoke(app, ["intensity", *args, "--json"], env=env)
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def _close(actual: object, expected: float) -> None:
    assert isinstance(actual, float | int), actual
    assert math.isclose(float(actual), expected, rel_tol=1e-9, abs_tol=1e-12), (actual, expected)


def test_hand_computed_monthly_figures_match_the_pure_rules() -> None:
    """The literals above are what analytics.accounting computes from quantities and factors."""
    factors = {
        "EL": ("electricity", MeterPurpose.CONSUMPTION, True, 0.1229, 0.4364),
        "NG": ("natural_gas", MeterPurpose.CONSUMPTION, True, 1.2143, 2.1622),
        "NGF": ("natural_gas", MeterPurpose.FEEDSTOCK, False, 1.2143, 2.1622),
        "PV": ("electricity", MeterPurpose.GENERATION, True, 0.1229, 0.4364),
        "EX": ("electricity", MeterPurpose.EXPORT, True, 0.1229, 0.4364),
        "EL2": ("electricity", MeterPurpose.CONSUMPTION, True, 122.9, 436.4),
        "ST": ("steam", MeterPurpose.CONSUMPTION, True, 128.6, 296.3),
        "SUB": ("electricity", MeterPurpose.CONSUMPTION, False, 0.1229, 0.4364),
        "EL3": ("electricity", MeterPurpose.CONSUMPTION, True, 0.1229, 0.4364),
    }
    for enterprise, expected in MONTHLY.items():
        meters = [
            MeterQuantity(c, p, top, QUANTITY[enterprise, code], k, co2)
            for (e, code) in QUANTITY
            if e == enterprise
            for c, p, top, k, co2 in [factors[code]]
        ]
        got = account(meters)
        for value, want in zip(
            (got.gross_tce, got.excl_feedstock_tce, got.excl_feedstock_nonfossil_tce, got.co2_t),
            expected,
            strict=True,
        ):
            _close(value, want)


def test_energy_views_per_enterprise_and_park(park: tuple[str, dict[str, str]]) -> None:
    url, _ = park
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT enterprise_code, energy_tce_gross, energy_tce_excl_feedstock,"
            " energy_tce_excl_feedstock_nonfossil, co2_t, coverage, low_coverage, co2_provisional"
            " FROM api.energy_tce_month WHERE level = 'enterprise' AND bucket = %s ORDER BY 1",
            (_local(date(2025, 2, 1)),),
        ).fetchall()
        assert [r[0] for r in rows] == ["E1", "E2", "E3"]
        for code, gross, excl_f, excl_nf, co2, coverage, low, provisional in rows:
            for value, want in zip((gross, excl_f, excl_nf, co2), MONTHLY[str(code)], strict=True):
                _close(value, want)
            assert coverage == _coverage(str(code), date(2025, 2, 1))
            assert low is (code == "E3")
            assert provisional is True  # 2025 uses the latest published (2022) Hubei factor
        park_row = conn.execute(
            "SELECT energy_tce_gross, co2_t, enterprises, meters FROM api.energy_tce_month"
            " WHERE level = 'park' AND park_code = 'P1' AND bucket = %s",
            (_local(date(2025, 1, 1)),),
        ).fetchone()
        assert park_row is not None
        _close(park_row[0], MONTHLY["E1"][0] + MONTHLY["E2"][0])
        _close(park_row[1], MONTHLY["E1"][3] + MONTHLY["E2"][3])
        assert park_row[2:] == (2, 8)
        # The daily view sums to the month (January has daily rows).
        day_sum = conn.execute(
            "SELECT sum(energy_tce_excl_feedstock_nonfossil), count(*) FROM api.energy_tce_day"
            " WHERE level = 'city' AND bucket >= %s AND bucket < %s",
            (_local(date(2025, 1, 1)), _local(date(2025, 2, 1))),
        ).fetchone()
        assert day_sum is not None
        assert day_sum[1] == 31
        _close(day_sum[0], sum(v[2] for v in MONTHLY.values()))


def _expected(enterprises: list[str], months: int, variant: int) -> tuple[float, float, float, float]:
    energy = sum(MONTHLY[e][variant] for e in enterprises) * months
    va = sum(VA_2022_PRICES[e] for e in enterprises) * months
    base = sum(BASE[e][variant] for e in enterprises) / sum(BASE_VA[e] for e in enterprises)
    return energy, va, energy / va, base


@pytest.mark.parametrize(
    ("level", "park_code", "members"),
    [
        ("enterprise", None, None),
        ("park", None, None),
        ("city", None, None),
        ("industry", "P1", None),
    ],
)
def test_intensity_ytd_per_variant(
    park: tuple[str, dict[str, str]], level: str, park_code: str | None, members: None
) -> None:
    _, env = park
    args = ["--level", level, "--period", "ytd"] + (["--park", park_code] if park_code else [])
    rows = _intensity(env, *args)
    groups: dict[str, list[str]]
    if level == "enterprise":
        groups = {e: [e] for e in MONTHLY}
    elif level == "park":
        groups = {"P1": ["E1", "E2"], "P2": ["E3"]}
    elif level == "city":
        groups = {"": ["E1", "E2", "E3"]}
    else:
        groups = {"2710": ["E2"], "3120": ["E1"]}
    assert len(rows) == 3 * len(groups)
    for row in rows:
        key = {
            "enterprise": row["enterprise_code"],
            "park": row["park_code"],
            "city": "",
            "industry": row["industry_code"],
        }[level]
        assert isinstance(key, str)
        variant = VARIANTS.index(str(row["variant"]))
        energy, va, intensity, base = _expected(groups[key], 3, variant)
        assert row["period"] == "2025-03"
        _close(row["energy_tce"], energy)
        _close(row["value_added_10k_yuan"], va)
        _close(row["intensity"], intensity)
        _close(row["base_2022"], base)
        _close(row["change_vs_2022"], intensity / base - 1)
        _close(row["target_2027"], 0.9 * base)
        path = path_intensity(base, 2025, CITY_TARGET_2027)
        _close(row["path_value"], path)
        want = "on_track" if intensity <= path else "at_risk" if intensity <= base else "off_track"
        assert row["status"] == want
        members_ = groups[key]
        coverage = sum(_coverage(e, m) for e in members_ for m in MONTHS) / (3 * len(members_))
        _close(row["coverage"], coverage)
        assert row["low_coverage"] is (coverage < 0.9)


def test_statuses_and_variant_of_the_enterprises(park: tuple[str, dict[str, str]]) -> None:
    _, env = park
    rows = _intensity(env, "--level", "enterprise", "--period", "ytd:2025-03", "--variant", "gross")
    assert {r["enterprise_code"]: r["status"] for r in rows} == {
        "E1": "at_risk",  # -1.6 %: better than 2022, behind the even path
        "E2": "on_track",  # -6.8 %: ahead of the path's -6.1 % by 2025
        "E3": "off_track",  # +5.0 %
    }
    assert {r["variant"] for r in rows} == {"gross"}
    table = runner.invoke(
        app, ["intensity", "--level", "enterprise", "--period", "2025-03", "--variant", "gross"], env=env
    )
    assert table.exit_code == 0, table.output
    assert "intensity, enterprise, 2025-03" in table.stdout  # a table (columns cut at 80 characters)
    bad = runner.invoke(app, ["intensity", "--period", "Q3"], env=env)
    assert bad.exit_code == 2


def test_month_year_and_rolling_periods(park: tuple[str, dict[str, str]]) -> None:
    _, env = park
    feb = _intensity(env, "--level", "park", "--period", "2025-02", "--park", "P2", "--variant", "gross")
    assert len(feb) == 1
    _close(feb[0]["energy_tce"], MONTHLY["E3"][0])
    _close(feb[0]["coverage"], 0.5)
    assert feb[0]["low_coverage"] is True  # marked, not hidden
    assert feb[0]["intensity"] is not None

    year = _intensity(env, "--level", "city", "--period", "2025", "--variant", "gross")
    assert len(year) == 1
    _close(year[0]["energy_tce"], 3 * sum(v[0] for v in MONTHLY.values()))
    assert year[0]["months"] == 12
    _close(year[0]["coverage"], (3 * 3 - 0.5) / (12 * 3))  # only three months of the year have data
    assert year[0]["low_coverage"] is True

    rolling = _intensity(env, "--level", "city", "--period", "rolling12", "--variant", "excl_feedstock")
    assert rolling[0]["period"] == "2025-03"
    _close(rolling[0]["energy_tce"], 3 * sum(v[1] for v in MONTHLY.values()))
    # rolling 12 months ending March 2025: t = 2024.25 on the path
    base = _expected(["E1", "E2", "E3"], 3, 1)[3]
    _close(rolling[0]["path_value"], path_intensity(base, 2024.25, CITY_TARGET_2027))


def test_contributions_add_up_to_the_park_change(park: tuple[str, dict[str, str]]) -> None:
    url, _ = park
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT variant, sum(contribution_to_change), min(park_change_vs_2022), count(*)"
            " FROM api.intensity_contribution WHERE park_code = 'P1' AND period_type = 'ytd'"
            " AND period = '2025-03' GROUP BY variant ORDER BY variant"
        ).fetchall()
    assert len(rows) == 3
    for variant, total, park_change, count in rows:
        assert count == 2
        _, _, intensity, base = _expected(["E1", "E2"], 3, VARIANTS.index(str(variant)))
        _close(total, intensity / base - 1)
        _close(park_change, intensity / base - 1)


def test_changing_a_factor_or_setting_changes_the_result(park: tuple[str, dict[str, str]]) -> None:
    url, env = park
    before = _intensity(env, "--level", "enterprise", "--period", "2025-01", "--variant", "gross")
    e3_before = next(r for r in before if r["enterprise_code"] == "E3")
    _close(e3_before["energy_tce"], 25.809)

    # A revised electricity coefficient from 2025 on (a new valid_from).
    added = runner.invoke(
        app,
        [
            "factors", "add-tce", "--carrier", "electricity", "--basis", "calorific", "--unit", "kWh",
            "--kgce-per-unit", "0.13", "--valid-from", "2025-01-01", "--source", "test revision",
            "--confidence", "U",
        ],
        env=env,
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    after = _intensity(env, "--level", "enterprise", "--period", "2025-01", "--variant", "gross")
    e3_after = next(r for r in after if r["enterprise_code"] == "E3")
    _close(e3_after["energy_tce"], 210_000 * 0.13 / 1000)
    # The 2022 base still uses the 2022 coefficient.
    _close(e3_after["base_2022"], e3_before["base_2022"])  # type: ignore[arg-type]

    # 等价 basis: the 2000-01-01 equivalent row (0.300) applies.
    switched = runner.invoke(app, ["factors", "set", "electricity_basis", "equivalent"], env=env)
    assert switched.exit_code == 0, switched.output
    eq = _intensity(env, "--level", "enterprise", "--period", "2025-01", "--variant", "gross")
    _close(next(r for r in eq if r["enterprise_code"] == "E3")["energy_tce"], 210_000 * 0.300 / 1000)

    # A measured gas LHV for E1 from 2025: 36 000 kJ/m3 → 1.228341 kgce/m3.
    override = runner.invoke(
        app,
        [
            "factors", "override", "--enterprise", "E1", "--carrier", "natural_gas", "--unit", "m3",
            "--lhv-kj-per-unit", "36000", "--valid-from", "2025-01-01", "--source", "lab report",
            "--confidence", "H",
        ],
        env=env,
    )  # fmt: skip
    assert override.exit_code == 0, override.output
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT energy_tce_gross, feedstock_tce FROM api.energy_tce_month WHERE level = 'enterprise'"
            " AND enterprise_code = 'E1' AND bucket = %s",
            (_local(date(2025, 1, 1)),),
        ).fetchone()
    assert row is not None
    gas = 36_000 / 29_307.6
    _close(row[0], (90_000 + 20_000 - 5_000) * 0.300 / 1000 + 10_000 * gas / 1000)
    _close(row[1], 4_000 * gas / 1000)


def test_co2_region_setting(park: tuple[str, dict[str, str]]) -> None:
    url, env = park
    assert runner.invoke(app, ["factors", "set", "co2_region", "national"], env=env).exit_code == 0
    bad = runner.invoke(app, ["factors", "set", "co2_region", "atlantis"], env=env)
    assert bad.exit_code == 2
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT co2_t FROM api.energy_tce_month WHERE level = 'enterprise' AND enterprise_code = 'E3'"
            " AND bucket = %s",
            (_local(date(2025, 1, 1)),),
        ).fetchone()
    assert row is not None
    _close(row[0], 210_000 * 0.5306 / 1000)  # national 2023, the latest published


def test_intensity_names_an_unknown_park_and_says_why_nothing_is_shown(
    park: tuple[str, dict[str, str]],
) -> None:
    url, env = park
    unknown = runner.invoke(app, ["intensity", "--level", "park", "--park", "NOPE"], env=env)
    assert (unknown.exit_code, unknown.stdout) == (2, "")
    assert "error: unknown park 'NOPE' (parks: P1, P2)" in unknown.output
    city = runner.invoke(app, ["intensity", "--park", "P1"], env=env)
    assert city.exit_code == 2
    assert "--park does not apply to --level city" in city.output

    year = runner.invoke(app, ["intensity", "--period", "2023", "--json"], env=env)
    assert (year.exit_code, year.stdout) == (1, "")
    assert "error: no intensity for 2023: data from 2025 to 2025" in year.output
    ytd = runner.invoke(
        app, ["intensity", "--level", "park", "--park", "P2", "--period", "ytd:2024-12"], env=env
    )
    assert ytd.exit_code == 1
    assert "no intensity for ytd:2024-12 in park P2: data from 2025-01 to 2025-03" in ytd.output
    table = runner.invoke(app, ["intensity", "--level", "park", "--park", "P2"], env=env)
    assert table.exit_code == 0, table.output
    assert "intensity, park, park P2, ytd to 2025-03" in table.stdout  # the month a ytd ends in

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DELETE FROM economics.value_added")
    no_value_added = runner.invoke(app, ["intensity", "--json"], env=env)
    assert no_value_added.exit_code == 0, no_value_added.output  # energy is there, shown
    assert {json.loads(line)["intensity"] for line in no_value_added.stdout.splitlines()} == {None}
    assert "note: energy but no value added at 2022 prices" in no_value_added.output

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DELETE FROM analytics.energy_month")
        conn.execute("DELETE FROM analytics.energy_day")
    no_energy = runner.invoke(app, ["intensity", "--level", "enterprise"], env=env)
    assert no_energy.exit_code == 1
    assert "no interval energy yet" in no_energy.output
    for result in (unknown, city, year, ytd, no_energy):
        assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1
