"""The energy job on the TimescaleDB path (hypertable + hierarchical continuous aggregates with
real-time aggregation) gives the same api.meter_energy_* rows as on plain PostgreSQL.

TimescaleDB runs in PGlite behind a socket (tests/timescale/server.mjs, fixtures of
tests/test_timescaledb.py; rules in TESTING-NOTES.md: one connection, no COPY).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest
from psycopg import sql

from analytics.energy_store import energy_timescaledb, run_energy
from parkdata.migrate import migrate
from tests.harness import load_meter_event_rows, load_registry_rows
from tests.test_energy_arrivals import assert_counts_are_raw
from tests.test_timescaledb import _connect, migration_report, timescale_url  # noqa: F401

ENTERPRISE = "91420704TSDB00001X"
START = datetime(2025, 1, 30, 16, 0, tzinfo=UTC)  # 2025-01-31 00:00 +08:00: crosses a month
LEVELS = ("15min", "hour", "day", "month")
Conn = psycopg.Connection[Any]


def _registry(conn: Conn, tmp_path: Path) -> dict[str, int]:
    base = ["ECQ", "鄂城区", ENTERPRISE, "测试企业", "3120", "true"]
    return load_registry_rows(
        conn,
        tmp_path / "registry.csv",
        [
            [*base, "EL", "electricity", "kWh", "register", "consumption", "100", "10000", "900", "3000", ""],
            [*base, "COKE", "coke", "t", "interval", "consumption", "1", "", "3600", "80", ""],
        ],
    )


def _events(conn: Conn, tmp_path: Path) -> None:
    at = (START + timedelta(hours=30, minutes=5)).isoformat()
    load_meter_event_rows(
        conn, tmp_path / "events.csv", [[ENTERPRISE, "EL", "replacement", at, "9990", "50", "", ""]]
    )


def _readings(ids: dict[str, int]) -> list[tuple[int, datetime, float]]:
    rng = np.random.default_rng(11)
    n = 4 * 24 * 3
    register = (9000 + np.cumsum(rng.uniform(0, 6, n))) % 10_000
    rows: list[tuple[int, datetime, float]] = []
    for i in range(n):
        ts = START + timedelta(minutes=15 * i)
        if i in (40, 41, 42, 43, 44):  # a gap
            continue
        value = float(register[i])
        if i == 90:
            value = 0.0  # transient zero
        if i == 150:
            value = 1e7  # spike
        if i >= 120:  # the replacement: new register from 50
            value = 50.0 + float(register[i] - register[119])
        rows.append((ids["EL"], ts, value))
    rows += [
        (ids["COKE"], START + timedelta(hours=h + 1), float(rng.uniform(0, 70))) for h in range(72) if h != 5
    ]
    return rows


def _insert(conn: Conn, rows: Sequence[tuple[int, datetime, float]]) -> None:
    for i in range(0, len(rows), 200):
        part = rows[i : i + 200]
        conn.execute(
            sql.SQL("INSERT INTO ingest.reading (meter_id, ts, value) VALUES {}").format(
                sql.SQL(", ").join([sql.SQL("(%s, %s, %s)")] * len(part))
            ),
            [x for r in part for x in r],
        )


def _api(conn: Conn) -> dict[str, list[tuple[Any, ...]]]:
    return {
        level: conn.execute(
            sql.SQL(
                "SELECT meter_code, carrier, unit, bucket, quantity, estimated_quantity, flagged_quantity,"
                " readings, expected_readings, coverage FROM api.{} WHERE enterprise_code = %s"
                " ORDER BY meter_code, bucket"
            ).format(sql.Identifier(f"meter_energy_{level}")),
            (ENTERPRISE,),
        ).fetchall()
        for level in LEVELS
    }


def _scenario(
    conn: Conn, tmp_path: Path
) -> tuple[dict[str, list[tuple[Any, ...]]], dict[str, list[tuple[Any, ...]]]]:
    """Readings with the late part held back, a run, the late part and an event, a run."""
    ids = _registry(conn, tmp_path)
    rows = _readings(ids)
    late = [r for r in rows if START + timedelta(hours=20) <= r[1] < START + timedelta(hours=26)]
    _insert(conn, [r for r in rows if r not in late])
    run_energy(conn)
    assert_counts_are_raw(conn)  # the arrival rollups, plain tables on both paths
    first = _api(conn)
    _insert(conn, late)
    _events(conn, tmp_path)
    run_energy(conn)
    assert_counts_are_raw(conn)
    return first, _api(conn)


def _same(a: dict[str, list[tuple[Any, ...]]], b: dict[str, list[tuple[Any, ...]]]) -> None:
    for level in LEVELS:
        assert [r[:4] for r in a[level]] == [r[:4] for r in b[level]], level
        for x, y in zip(a[level], b[level], strict=True):
            assert x[4:9] == pytest.approx(y[4:9], abs=1e-6), (level, x[3])
            assert (x[9] is None and y[9] is None) or x[9] == pytest.approx(y[9]), (level, x[3])


def test_same_api_results_on_plain_postgresql_and_timescaledb(
    timescale_url: str,  # noqa: F811
    migration_report: object,  # noqa: F811
    database_url: str,
    tmp_path: Path,
) -> None:
    with psycopg.connect(database_url, autocommit=True) as plain:
        migrate(plain)
        assert not energy_timescaledb(plain)
        plain_first, plain_after = _scenario(plain, tmp_path)
    with _connect(timescale_url) as ts:
        assert energy_timescaledb(ts)
        ts_first, ts_after = _scenario(ts, tmp_path)
        # Real-time aggregation: a 15-min row written without a refresh shows in the hour view.
        row = ts.execute(
            "SELECT meter_id, max(bucket) FROM analytics.energy_15min GROUP BY 1 LIMIT 1"
        ).fetchone()
        assert row is not None
        ts.execute(
            "INSERT INTO analytics.energy_15min VALUES (%s, %s, 7, 0, 0, 1, 1, 1)",
            (row[0], row[1] + timedelta(days=400)),
        )
        hour = ts.execute(
            "SELECT quantity FROM analytics.energy_hour WHERE meter_id = %s AND bucket = %s",
            (row[0], row[1] + timedelta(days=400) - timedelta(minutes=row[1].minute)),
        ).fetchone()
        assert hour == (7.0,)
    _same(plain_first, ts_first)
    _same(plain_after, ts_after)
    # The late readings and the replacement changed the already rolled-up month.
    assert [r[:4] for r in plain_first["month"]] == [r[:4] for r in plain_after["month"]]
    assert [r[4] for r in plain_first["month"]] != pytest.approx([r[4] for r in plain_after["month"]])
