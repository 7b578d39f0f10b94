"""Intensity benchmark: the api accounting views over four years of rollups, city and below.

Starts a private PostgreSQL (:class:`parkenergy.embedded.EmbeddedPostgres`),
migrates it, registers 5 parks × 8 enterprises × 8 meters (electricity main and
sub-meter, natural gas and a feedstock sub-meter, steam, water, PV generation and
export), and writes four years (2022-2025) of synthetic rollup rows the way the
plain-PostgreSQL energy job leaves them: ``analytics.energy_month`` (15 360 rows)
and ``analytics.energy_day`` (≈ 467 000 rows), plus monthly value added,
deflators and the 2022 baseline. Then it times each api query (after one
warm-up run) and prints p50 / p95 / max.

The goal (issue "Energy and carbon accounting"): intensity queries for the city
over 4 years answer in < 200 ms; the dashboards' queries (a year of days, four years
of months, by park and enterprise) < 300 ms p95 each. Always exits 0: a measurement, not a test.

Run: ``.venv/bin/python benchmarks/intensity.py [--runs 30]``
"""

from __future__ import annotations

import argparse
import io
import logging
import math
import platform
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import psycopg

from analytics.intensity_store import parse_period, query_intensity
from parkdata.migrate import migrate
from parkenergy.embedded import EmbeddedPostgres

SHANGHAI = ZoneInfo("Asia/Shanghai")
PARKS = 5
ENTERPRISES_PER_PARK = 8
YEARS = (2022, 2023, 2024, 2025)
GOAL_MS = 200.0
DASHBOARD_GOAL_MS = 300.0  # p95 of each query a dashboard panel makes (1 year of days, 4 of months)
DASHBOARD_CASES = ("day series", "month series", "intensity months", "contributions, park P0, m", "meter ")
# meter code, carrier, unit, purpose, parent, typical monthly quantity
METERS = (
    ("EL", "electricity", "kWh", "consumption", None, 400_000.0),
    ("EL-SUB", "electricity", "kWh", "consumption", "EL", 120_000.0),
    ("NG", "natural_gas", "m3", "consumption", None, 60_000.0),
    ("NG-FEED", "natural_gas", "m3", "feedstock", "NG", 15_000.0),
    ("ST", "steam", "t", "consumption", None, 900.0),
    ("WA", "water", "m3", "consumption", None, 8_000.0),
    ("PV", "electricity", "kWh", "generation", None, 30_000.0),
    ("PV-EX", "electricity", "kWh", "export", None, 6_000.0),
)
INDUSTRIES = ("3120", "3011", "3976", "2710", "1340")

Conn = psycopg.Connection[Any]


def _months() -> list[date]:
    return [date(y, m, 1) for y in YEARS for m in range(1, 13)]


def _local(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=SHANGHAI)


def _load(conn: Conn) -> tuple[int, int]:
    rng = np.random.default_rng(7)
    meters: list[tuple[int, float, float]] = []  # meter_id, monthly quantity, yearly growth
    with conn.transaction():
        for p in range(PARKS):
            park = conn.execute(
                "INSERT INTO registry.park (park_code, park_name) VALUES (%s, %s) RETURNING park_id",
                (f"P{p}", f"Park {p}"),
            ).fetchone()
            assert park is not None
            for e in range(ENTERPRISES_PER_PARK):
                code = f"P{p}E{e}"
                ent = conn.execute(
                    "INSERT INTO registry.enterprise (enterprise_code, enterprise_name, park_id,"
                    " industry_code)"
                    " VALUES (%s, %s, %s, %s) RETURNING enterprise_id",
                    (code, code, park[0], INDUSTRIES[(p + e) % len(INDUSTRIES)]),
                ).fetchone()
                assert ent is not None
                ids: dict[str, int] = {}
                scale = float(rng.uniform(0.3, 3.0))
                growth = float(rng.uniform(-0.04, 0.05))
                for meter_code, carrier, unit, purpose, parent, monthly in METERS:
                    row = conn.execute(
                        "INSERT INTO registry.meter (enterprise_id, meter_code, carrier, unit, kind, purpose,"
                        " parent_meter_id, expected_interval_s)"
                        " VALUES (%s, %s, %s, %s, 'register', %s, %s, 900)"
                        " RETURNING meter_id",
                        (ent[0], meter_code, carrier, unit, purpose, ids.get(parent or "")),
                    ).fetchone()
                    assert row is not None
                    ids[meter_code] = int(row[0])
                    meters.append((int(row[0]), monthly * scale, growth))
                va = [
                    (ent[0], m, 2_000 * scale * (1.06 ** (m.year - 2022 + m.month / 12)), None)
                    for m in _months()
                ]
                with conn.cursor() as cur:
                    cur.executemany(
                        "INSERT INTO economics.value_added (enterprise_id, period, value_added_10k_yuan,"
                        " price_index_2022, source_file) VALUES (%s, %s, %s, %s, 'benchmark')",
                        va,
                    )
                    cur.executemany(
                        "INSERT INTO economics.baseline (enterprise_id, year, carrier, unit, consumption,"
                        " feedstock, non_fossil, source_file)"
                        " VALUES (%s, 2022, %s, %s, %s, %s, %s, 'benchmark')",
                        [
                            (ent[0], "electricity", "kWh", 12 * 430_000 * scale, 0, 12 * 24_000 * scale),
                            (ent[0], "natural_gas", "m3", 12 * 60_000 * scale, 12 * 15_000 * scale, 0),
                            (ent[0], "steam", "t", 12 * 900 * scale, 0, 0),
                            (ent[0], "water", "m3", 12 * 8_000 * scale, 0, 0),
                        ],
                    )
                    cur.execute(
                        "INSERT INTO economics.baseline_value_added (enterprise_id, year,"
                        " value_added_10k_yuan,"
                        " source_file) VALUES (%s, 2022, %s, 'benchmark')",
                        (ent[0], 12 * 2_000 * scale),
                    )
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO economics.deflator (industry_code, year, price_index_2022, source_file)"
                " VALUES (%s, %s, %s, 'benchmark')",
                [(code[:2], y, 1.02 ** (y - 2022)) for code in INDUSTRIES for y in YEARS],
            )
    month_rows = io.StringIO()
    day_rows = io.StringIO()
    first, last = date(YEARS[0], 1, 1), date(YEARS[-1], 12, 31)
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    for meter_id, monthly, growth in meters:
        for m in _months():
            q = monthly * (1 + growth) ** (m.year - 2022 + m.month / 12) * float(rng.uniform(0.9, 1.1))
            cov = float(rng.choice([1.0, 1.0, 1.0, 0.97, 0.8]))
            month_rows.write(
                f"{meter_id}\t{_local(m).isoformat()}\t{q}\t0\t0\t{int(2976 * cov)}\t2976\t{cov}\n"
            )
        for d in days:
            q = monthly / 30 * (1 + growth) ** (d.year - 2022 + d.month / 12)
            day_rows.write(f"{meter_id}\t{_local(d).isoformat()}\t{q}\t0\t0\t96\t96\t1\n")
    with conn.transaction(), conn.cursor() as cur:
        for table, buffer in (("energy_month", month_rows), ("energy_day", day_rows)):
            with cur.copy(
                f"COPY analytics.{table} (meter_id, bucket, quantity, estimated_quantity, flagged_quantity,"
                " readings, expected_readings, coverage) FROM STDIN"
            ) as copy:
                copy.write(buffer.getvalue())
    conn.execute("ANALYZE")
    return len(meters) * len(_months()), len(meters) * len(days)


def _time(fn: Callable[[], object], runs: int) -> tuple[float, float, float, int]:
    fn()  # warm-up
    times = []
    rows = 0
    for _ in range(runs):
        start = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - start) * 1000)
        rows = len(result) if isinstance(result, list) else rows
    times.sort()
    p95 = times[min(len(times) - 1, math.ceil(0.95 * len(times)) - 1)]
    return statistics.median(times), p95, times[-1], rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=30, help="timed runs per query (after one warm-up)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    base = Path(tempfile.mkdtemp(prefix="parkenergy-bench-intensity-"))
    base.chmod(0o711)
    server = EmbeddedPostgres(base / "pg")
    server.start()
    try:
        with psycopg.connect(server.url, autocommit=True) as conn:
            migrate(conn)
            started = time.perf_counter()
            month_count, day_count = _load(conn)
            print(
                f"loaded {month_count} month rows and {day_count} day rows for "
                f"{PARKS * ENTERPRISES_PER_PARK} enterprises × {len(METERS)} meters × {len(YEARS)} years "
                f"in {time.perf_counter() - started:.1f} s"
            )

            def sql_rows(query: str, params: tuple[object, ...] = ()) -> Callable[[], object]:
                return lambda: conn.execute(query, params).fetchall()  # type: ignore[call-overload]

            day_from, day_to = _local(date(2025, 6, 1)), _local(date(2025, 7, 1))
            year = (_local(date(2025, 1, 1)), _local(date(2026, 1, 1)))
            cases: list[tuple[str, Callable[[], object]]] = [
                ("city, calendar years 2022-2025, 3 variants", sql_rows(
                    "SELECT * FROM api.intensity WHERE level = 'city' AND period_type = 'year'")),
                ("city, 48 months, 3 variants", sql_rows(
                    "SELECT * FROM api.intensity WHERE level = 'city' AND period_type = 'month'")),
                ("city, every period over 4 years", sql_rows(
                    "SELECT * FROM api.intensity WHERE level = 'city'")),
                ("CLI: intensity --level city --period ytd", lambda: query_intensity(
                    conn, "city", parse_period("ytd"))),
                ("park P0, rolling 12 months, gross", sql_rows(
                    "SELECT * FROM api.intensity WHERE level = 'park' AND park_code = 'P0'"
                    " AND period_type = 'rolling12' AND variant = 'gross'")),
                ("40 enterprises, year 2025, gross", sql_rows(
                    "SELECT * FROM api.intensity WHERE level = 'enterprise' AND period_type = 'year'"
                    " AND period = '2025' AND variant = 'gross'")),
                ("contributions in park P0, year 2025", sql_rows(
                    "SELECT * FROM api.intensity_contribution WHERE park_code = 'P0' AND period_type = 'year'"
                    " AND period = '2025'")),
                ("city energy & CO2, 48 months", sql_rows(
                    "SELECT * FROM api.energy_tce_month WHERE level = 'city'")),
                ("city energy & CO2, days of June 2025", sql_rows(
                    "SELECT * FROM api.energy_tce_day WHERE level = 'city' AND bucket >= %s AND bucket < %s",
                    (day_from, day_to))),
                ("city energy & CO2, 1461 days", sql_rows(
                    "SELECT * FROM api.energy_tce_day WHERE level = 'city'")),
                # What the dashboards query: a year of days, four years of months, by park and enterprise.
                ("day series 2025: city", sql_rows(
                    "SELECT * FROM api.energy_tce_day WHERE level = 'city' AND bucket >= %s AND bucket < %s",
                    year)),
                ("day series 2025: park P0", sql_rows(
                    "SELECT * FROM api.energy_tce_day WHERE level = 'park' AND park_code = 'P0'"
                    " AND bucket >= %s AND bucket < %s", year)),
                ("day series 2025: enterprise P0E0", sql_rows(
                    "SELECT * FROM api.energy_tce_day WHERE level = 'enterprise' AND enterprise_code = 'P0E0'"
                    " AND bucket >= %s AND bucket < %s", year)),
                ("day series 2025: 8 enterprises of park P0", sql_rows(
                    "SELECT * FROM api.energy_tce_day WHERE level = 'enterprise' AND park_code = 'P0'"
                    " AND bucket >= %s AND bucket < %s", year)),
                ("month series 2022-2025: park P0", sql_rows(
                    "SELECT * FROM api.energy_tce_month WHERE level = 'park' AND park_code = 'P0'")),
                ("month series 2022-2025: enterprise P0E0", sql_rows(
                    "SELECT * FROM api.energy_tce_month WHERE level = 'enterprise'"
                    " AND enterprise_code = 'P0E0'")),
                ("month series 2022-2025: 40 enterprises", sql_rows(
                    "SELECT * FROM api.energy_tce_month WHERE level = 'enterprise'")),
                ("intensity months 2025: park P0", sql_rows(
                    "SELECT * FROM api.intensity WHERE level = 'park' AND park_code = 'P0'"
                    " AND period_type = 'month' AND period LIKE '2025-%%'")),
                ("intensity months 2025: enterprise P0E0", sql_rows(
                    "SELECT * FROM api.intensity WHERE level = 'enterprise' AND enterprise_code = 'P0E0'"
                    " AND period_type = 'month' AND period LIKE '2025-%%'")),
                ("contributions, park P0, months of 2025", sql_rows(
                    "SELECT * FROM api.intensity_contribution WHERE park_code = 'P0'"
                    " AND period_type = 'month' AND period LIKE '2025-%%' AND variant = 'gross'")),
                ("meter days 2025: electricity per day, 40 ent.", sql_rows(
                    "SELECT bucket, sum(quantity) FROM api.meter_energy_day WHERE carrier = 'electricity'"
                    " AND purpose = 'consumption' AND bucket >= %s AND bucket < %s GROUP BY 1", year)),
                ("meter days 2025: enterprise P0E0", sql_rows(
                    "SELECT * FROM api.meter_energy_day WHERE enterprise_code = 'P0E0'"
                    " AND bucket >= %s AND bucket < %s", year)),
                ("meter months 2022-2025: park P0", sql_rows(
                    "SELECT * FROM api.meter_energy_month WHERE park_code = 'P0'")),
            ]  # fmt: skip
            print(f"\n{'query':<48} {'rows':>5} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
            city_p95 = []
            dashboard_p95 = []
            for name, fn in cases:
                p50, p95, worst, rows = _time(fn, args.runs)
                if name.startswith(("city,", "CLI")) and "energy" not in name:
                    city_p95.append(p95)
                if name.startswith(DASHBOARD_CASES):
                    dashboard_p95.append(p95)
                print(f"{name:<48} {rows:>5} {p50:>8.1f} {p95:>8.1f} {worst:>8.1f}")
            verdict = "met" if max(city_p95) < GOAL_MS else "NOT met"
            print(
                f"\ngoal: city intensity over 4 years < {GOAL_MS:.0f} ms: {verdict} "
                f"(worst p95 {max(city_p95):.1f} ms); {args.runs} runs each; "
                f"{platform.python_implementation()} {platform.python_version()}, "
                f"PostgreSQL {conn.info.server_version // 10000}"
            )
            verdict = "met" if max(dashboard_p95) < DASHBOARD_GOAL_MS else "NOT met"
            print(
                f"goal: each dashboard query < {DASHBOARD_GOAL_MS:.0f} ms p95: {verdict} "
                f"(worst p95 {max(dashboard_p95):.1f} ms)"
            )
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
