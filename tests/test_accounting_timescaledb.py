"""The accounting views give the same results on TimescaleDB (continuous aggregates) as on
plain PostgreSQL (rollup tables).

The small park of tests/test_accounting_park.py as 15-minute energy rows: on the
TimescaleDB path (PGlite with TimescaleDB behind a socket; fixtures of
tests/test_timescaledb.py, rules in TESTING-NOTES.md: one connection, no COPY, at
most 200 rows per statement) only ``analytics.energy_15min`` is written and the
day and month continuous aggregates answer through real-time aggregation; on plain
PostgreSQL the day and month tables get the same sums, as the energy job would
write them.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from psycopg import sql

from analytics.economics_file import read_baseline_file, read_deflators_file, read_value_added_file
from analytics.economics_store import store_baseline, store_deflators, store_value_added
from parkdata.migrate import MigrationReport, migrate
from parkdata.registry_file import read_registry_file
from parkdata.registry_store import store_registry
from tests.test_accounting_park import BASELINE_CSV, DEFLATORS_CSV, QUANTITY, REGISTRY, VALUE_ADDED_CSV
from tests.test_timescaledb import _connect, migration_report, timescale_url  # noqa: F401

Conn = psycopg.Connection[Any]
SHANGHAI = ZoneInfo("Asia/Shanghai")
DAYS = [date(2025, 1, 1) + timedelta(days=i) for i in range(90)]  # January-March 2025
Row = tuple[int, datetime, float, int, int]  # meter_id, bucket, quantity, readings, expected


def _setup(conn: Conn, tmp_path: Path) -> dict[tuple[str, str], int]:
    files = {
        "registry.csv": REGISTRY,
        "va.csv": VALUE_ADDED_CSV,
        "deflators.csv": DEFLATORS_CSV,
        "baseline.csv": BASELINE_CSV,
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    with conn.transaction():
        store_registry(conn, read_registry_file(tmp_path / "registry.csv"))
    store_deflators(conn, read_deflators_file(tmp_path / "deflators.csv"))
    store_value_added(conn, read_value_added_file(tmp_path / "va.csv"))
    store_baseline(conn, read_baseline_file(tmp_path / "baseline.csv"))
    cur = conn.execute(
        "SELECT e.enterprise_code, m.meter_code, m.meter_id FROM registry.meter m"
        " JOIN registry.enterprise e USING (enterprise_id)"
    )
    return {(str(e), str(m)): int(i) for e, m, i in cur}


def _quarter_hours(ids: dict[tuple[str, str], int]) -> list[Row]:
    """One 15-minute row a day (at 00:00 and 12:00 local) per meter; E3 misses half of February."""
    rows: list[Row] = []
    for (enterprise, meter), monthly in QUANTITY.items():
        for day in DAYS:
            days_in_month = (
                date(day.year + day.month // 12, day.month % 12 + 1, 1) - day.replace(day=1)
            ).days
            missing = enterprise == "E3" and day.month == 2 and day.day % 2 == 0
            for hour in (0, 12):
                at = datetime(day.year, day.month, day.day, hour, tzinfo=SHANGHAI)
                quantity = monthly / days_in_month / 2
                rows.append((ids[enterprise, meter], at, quantity, 0 if missing else 1, 1))
    return rows


def _rollup(rows: Sequence[Row], key: str) -> list[tuple[object, ...]]:
    """Day or month sums as the rollups compute them (coverage = least(1, readings / expected))."""
    sums: dict[tuple[int, datetime], list[float]] = defaultdict(lambda: [0.0, 0, 0])
    for meter_id, at, quantity, readings, expected in rows:
        local = at.astimezone(SHANGHAI)
        start = local.replace(hour=0) if key == "day" else local.replace(day=1, hour=0)
        acc = sums[meter_id, start]
        acc[0] += quantity
        acc[1] += readings
        acc[2] += expected
    return [
        (m, b, q, 0.0, 0.0, int(r), int(e), min(1.0, r / e)) for (m, b), (q, r, e) in sorted(sums.items())
    ]


def _insert(conn: Conn, table: str, rows: Sequence[tuple[object, ...]]) -> None:
    for start in range(0, len(rows), 200):
        chunk = rows[start : start + 200]
        values = sql.SQL(", ").join([sql.SQL("(%s, %s, %s, %s, %s, %s, %s, %s)")] * len(chunk))
        conn.execute(
            sql.SQL(
                "INSERT INTO {} (meter_id, bucket, quantity, estimated_quantity, flagged_quantity, readings,"
                " expected_readings, coverage) VALUES {}"
            ).format(sql.Identifier("analytics", table), values),
            [x for row in chunk for x in row],
        )


_QUERIES = {
    "month": "SELECT * FROM api.energy_tce_month"
    " ORDER BY level, park_code, industry_code, enterprise_code, bucket",
    "day": "SELECT * FROM api.energy_tce_day WHERE level IN ('enterprise', 'city')"
    " ORDER BY level, park_code, industry_code, enterprise_code, bucket",
    "intensity": "SELECT * FROM api.intensity"
    " ORDER BY level, park_code, industry_code, enterprise_code, period_type, period, variant",
    "contribution": "SELECT * FROM api.intensity_contribution"
    " ORDER BY park_code, enterprise_code, period_type, period, variant",
}


def _results(conn: Conn) -> dict[str, list[tuple[object, ...]]]:
    return {name: conn.execute(query).fetchall() for name, query in _QUERIES.items()}  # type: ignore[arg-type]


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    return a == b


def test_same_api_results_on_timescaledb_and_plain_postgresql(
    database_url: str,
    timescale_url: str,  # noqa: F811
    migration_report: MigrationReport,  # noqa: F811
    tmp_path: Path,
) -> None:
    assert migration_report.timescaledb is True
    with _connect(timescale_url) as ts:
        ids = _setup(ts, tmp_path)
        quarter_hours = _quarter_hours(ids)
        _insert(
            ts,
            "energy_15min",
            [(m, b, q, 0.0, 0.0, r, e, min(1.0, r / e)) for m, b, q, r, e in quarter_hours],
        )
        on_timescale = _results(ts)

    with psycopg.connect(database_url, autocommit=True) as pg:
        assert migrate(pg).timescaledb is False
        assert _setup(pg, tmp_path) == ids
        _insert(
            pg,
            "energy_15min",
            [(m, b, q, 0.0, 0.0, r, e, min(1.0, r / e)) for m, b, q, r, e in quarter_hours],
        )
        _insert(pg, "energy_day", _rollup(quarter_hours, "day"))
        _insert(pg, "energy_month", _rollup(quarter_hours, "month"))
        on_postgres = _results(pg)

    for name, rows in on_postgres.items():
        assert rows, name
        assert len(on_timescale[name]) == len(rows), name
        for mine, theirs in zip(on_timescale[name], rows, strict=True):
            assert len(mine) == len(theirs)
            assert all(_same(a, b) for a, b in zip(mine, theirs, strict=True)), (name, mine, theirs)
    # The data means what the small park means: E3 at half coverage in February.
    e3 = [r for r in on_postgres["month"] if r[0] == "enterprise" and r[3] == "E3"]
    assert [round(float(str(r[11])), 3) for r in e3] == [1.0, 0.5, 1.0]
