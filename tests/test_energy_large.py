"""The energy job's paths for large runs, taken here with small data.

From :data:`analytics.energy_store.PARALLEL_ARRIVALS` new readings on, a run does its closing
work (arrival counts, rollups) on a second connection while it computes the meters; the
tests set the threshold to 0. That path must give exactly the rows of the sequential one,
and a run that fails must count nothing, move nothing and leave no connection behind.
Readings are read in chunks of ``_READ_CHUNK``: chunks of 7 give the rows of one read.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest
from psycopg import sql

import analytics.energy_store as energy_store
from analytics.energy_store import run_energy
from analytics.intervals import meter_buckets
from parkdata.migrate import migrate
from tests.harness import load_registry_rows
from tests.test_energy_arrivals import assert_counts_are_raw
from tests.test_energy_store import insert, meter

Conn = psycopg.Connection[Any]
START = datetime(2025, 3, 1, 16, 0, tzinfo=UTC)  # 2025-03-02 00:00 +08:00
QUARTER = timedelta(minutes=15)
TABLES = (
    "energy_15min",
    "energy_hour",
    "energy_day",
    "energy_month",
    "arrival_hour",
    "arrival_day",
    "energy_meter_state",
)


@pytest.fixture
def conn(database_url: str) -> Iterator[Conn]:
    with psycopg.connect(database_url, autocommit=True) as c:
        migrate(c)
        yield c


@pytest.fixture
def threads(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """Take the parallel path for any amount of data; record the threads that count arrivals
    and roll up."""
    seen: dict[str, list[str]] = {"count": [], "roll_up": []}
    count, roll_up = energy_store.count_arrivals, energy_store._roll_up_tables

    def counting(c: Conn, until: datetime) -> int:
        seen["count"].append(threading.current_thread().name)
        return count(c, until)

    def rolling_up(c: Conn, touched: Any) -> None:
        seen["roll_up"].append(threading.current_thread().name)
        roll_up(c, touched)

    monkeypatch.setattr(energy_store, "PARALLEL_ARRIVALS", 0)
    monkeypatch.setattr(energy_store, "count_arrivals", counting)
    monkeypatch.setattr(energy_store, "_roll_up_tables", rolling_up)
    return seen


def _snapshot(conn: Conn) -> dict[str, list[tuple[Any, ...]]]:
    """Energy rows whole; arrival counts without the lags (received_at differs between runs,
    assert_counts_are_raw checks the lags)."""
    columns = {"arrival_hour": "meter_id, hour, readings", "arrival_day": "meter_id, day, readings"}
    return {
        table: conn.execute(
            sql.SQL("SELECT {} FROM analytics.{} ORDER BY 1, 2").format(
                sql.SQL(columns.get(table, "*")), sql.Identifier(table)
            )
        ).fetchall()
        for table in TABLES
        if table != "energy_meter_state"
    }


def _scenario(conn: Conn, ids: dict[str, int], silent_until: datetime) -> None:
    """Readings in three batches (one late, one for a second meter), a run after each."""
    rng = np.random.default_rng(11)
    el = (1000 + np.cumsum(rng.uniform(0, 20, 300))).tolist()
    el[40], el[41] = 0.0, 0.0  # a transient drop
    insert(conn, ids["EL"], START, el[:200])
    run_energy(conn, silent_until=silent_until)
    insert(conn, ids["EL"], START + 200 * QUARTER, el[200:])
    insert(conn, ids["GAS"], START, [10.0 + i for i in range(30)], step=timedelta(hours=1))
    run_energy(conn, silent_until=silent_until)
    insert(conn, ids["EL"], START - timedelta(days=1), [900.0, 905.0])  # late, with old times
    run_energy(conn, silent_until=silent_until)


def _reset(conn: Conn) -> None:
    """Back to the registry alone: no readings, nothing computed, the watermark at the start."""
    conn.execute(
        sql.SQL("TRUNCATE {}").format(sql.SQL(", ").join(sql.Identifier("analytics", t) for t in TABLES))
    )
    conn.execute("TRUNCATE ingest.reading")
    conn.execute("UPDATE analytics.energy_state SET received_through = '-infinity'")


def test_parallel_closing_gives_the_rows_of_the_sequential_one(
    conn: Conn, tmp_path: Path, threads: dict[str, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = load_registry_rows(
        conn, tmp_path / "registry.csv", [meter("EL", rollover="100000"), meter("GAS", interval="3600")]
    )
    silent_until = START + timedelta(days=5)
    _scenario(conn, ids, silent_until)
    assert len(threads["count"]) == 3
    assert all(name.startswith("energy-closing") for name in threads["count"])
    # each meter once committed, by the run's thread or the worker; the silent meters' at the end
    assert threads["roll_up"]
    assert {name.split("_")[0] for name in threads["roll_up"]} <= {"energy-closing", "MainThread"}
    assert_counts_are_raw(conn)
    parallel = _snapshot(conn)
    assert len(parallel["energy_15min"]) > 400 and parallel["energy_month"]

    monkeypatch.setattr(energy_store, "PARALLEL_ARRIVALS", 10**12)
    _reset(conn)
    threads["count"].clear()
    threads["roll_up"].clear()
    _scenario(conn, ids, silent_until)
    assert threads["count"] == threads["roll_up"] == [threading.current_thread().name] * 3
    assert_counts_are_raw(conn)
    assert _snapshot(conn) == parallel


def test_a_failed_parallel_run_counts_nothing(
    conn: Conn, tmp_path: Path, threads: dict[str, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = load_registry_rows(conn, tmp_path / "registry.csv", [meter("EL"), meter("GAS", interval="3600")])
    insert(conn, ids["EL"], START, [100.0 + i for i in range(40)])
    insert(conn, ids["GAS"], START, [10.0 + i for i in range(10)], step=timedelta(hours=1))
    watermark = conn.execute("SELECT received_through::text FROM analytics.energy_state").fetchone()
    buckets = meter_buckets
    calls: list[int] = []

    def failing(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("crash in the second meter")
        return buckets(*args, **kwargs)

    monkeypatch.setattr(energy_store, "meter_buckets", failing)
    with pytest.raises(RuntimeError, match="second meter"):
        run_energy(conn)
    assert threads["count"] and threads["count"][0].startswith("energy-closing")
    assert conn.execute("SELECT count(*) FROM analytics.arrival_hour").fetchone() == (0,)
    assert conn.execute("SELECT received_through::text FROM analytics.energy_state").fetchone() == watermark
    others = conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        " AND backend_type = 'client backend'"
    ).fetchone()
    assert others == (0,)

    monkeypatch.setattr(energy_store, "meter_buckets", buckets)
    assert run_energy(conn).arrivals == 50
    assert_counts_are_raw(conn)


def test_readings_read_in_chunks_give_the_same_rows(
    conn: Conn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = load_registry_rows(
        conn, tmp_path / "registry.csv", [meter("EL", rollover="100000"), meter("GAS", interval="3600")]
    )
    silent_until = START + timedelta(days=5)
    _scenario(conn, ids, silent_until)
    whole = _snapshot(conn)
    monkeypatch.setattr(energy_store, "_READ_CHUNK", 7)
    _reset(conn)
    _scenario(conn, ids, silent_until)
    chunked = _snapshot(conn)
    assert chunked == whole
    assert sum(r[5] for r in chunked["energy_15min"]) > 7 * 10  # many chunks read
