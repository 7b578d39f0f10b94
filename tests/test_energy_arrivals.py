"""The arrival rollups (analytics.arrival_hour / _day, api.arrival_hour / _day) kept by the energy job.

Each reading must be counted exactly once, whatever the order and timing of its arrival:
readings arriving between runs, a reading arriving late with an old time, a transaction
still writing while a run takes its watermark, a run that fails before it commits, and
the readings stored before migration 0011 was applied.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from analytics.energy_store import count_arrivals, run_energy
from parkdata.migrate import migrate
from tests.harness import load_registry_rows
from tests.test_energy_store import insert, meter

Conn = psycopg.Connection[Any]
START = datetime(2025, 3, 1, 16, 0, tzinfo=UTC)  # 2025-03-02 00:00 +08:00
QUARTER = timedelta(minutes=15)
# A raw count as the rollups should hold it: per meter and hour, and per local day.
_RAW_HOURS = """
SELECT meter_id, date_trunc('hour', ts, 'UTC'), count(*)::integer,
       sum(date_part('epoch', received_at - ts)), max(date_part('epoch', received_at - ts))
FROM ingest.reading GROUP BY 1, 2 ORDER BY 1, 2
"""
_RAW_DAYS = """
SELECT meter_id, date_trunc('day', ts, 'Asia/Shanghai'), count(*)::integer,
       sum(date_part('epoch', received_at - ts)), max(date_part('epoch', received_at - ts))
FROM ingest.reading GROUP BY 1, 2 ORDER BY 1, 2
"""


@pytest.fixture
def conn(database_url: str) -> Iterator[Conn]:
    with psycopg.connect(database_url, autocommit=True) as c:
        migrate(c)
        yield c


def _rollups(conn: Conn) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    hours = conn.execute(
        "SELECT meter_id, hour, readings, lag_s_sum, lag_s_max FROM analytics.arrival_hour ORDER BY 1, 2"
    ).fetchall()
    days = conn.execute(
        "SELECT meter_id, day, readings, lag_s_sum, lag_s_max FROM analytics.arrival_day ORDER BY 1, 2"
    ).fetchall()
    return hours, days


def assert_counts_are_raw(conn: Conn) -> None:
    """The rollups hold exactly the raw counts, lag sums and maxima of ingest.reading."""
    for got, raw in zip(_rollups(conn), (_RAW_HOURS, _RAW_DAYS), strict=True):
        want = conn.execute(raw).fetchall()
        assert [r[:3] for r in got] == [r[:3] for r in want]
        for g, w in zip(got, want, strict=True):
            assert g[3:] == pytest.approx(w[3:], rel=1e-9, abs=1e-6), g[:2]


def _meters(conn: Conn, tmp_path: Path) -> dict[str, int]:
    gauge = meter("PWR", kind="gauge", interval="60", capacity="5000")
    gauge[8] = "kW"
    rows = [meter("EL"), meter("GAS", interval="3600"), gauge]
    return load_registry_rows(conn, tmp_path / "registry.csv", rows)


def test_counts_follow_arrivals_across_runs(conn: Conn, tmp_path: Path) -> None:
    ids = _meters(conn, tmp_path)
    insert(conn, ids["EL"], START, [100.0 + i for i in range(40)])
    insert(conn, ids["PWR"], START, [50.0] * 90, step=timedelta(minutes=1))  # gauges are counted too
    first = run_energy(conn)
    assert first.arrivals == 130
    assert_counts_are_raw(conn)

    # More readings arrive, one of them a day late with an old time, and a new meter.
    insert(conn, ids["EL"], START + 40 * QUARTER, [140.0 + i for i in range(20)])
    insert(conn, ids["EL"], START - timedelta(days=1), [90.0])
    insert(conn, ids["GAS"], START, [10.0, 11.0, 12.0], step=timedelta(hours=1))
    second = run_energy(conn)
    assert second.arrivals == 24
    assert_counts_are_raw(conn)
    hours, days = _rollups(conn)
    late = [r for r in hours if r[0] == ids["EL"] and r[1] == START - timedelta(days=1)]
    assert [r[2] for r in late] == [1]  # in the hour of its own time
    assert sum(r[2] for r in days) == 154 and len({r[1] for r in days}) == 2

    # Nothing new: a run changes nothing.
    third = run_energy(conn)
    assert third.arrivals == 0
    assert _rollups(conn) == (hours, days)

    # Through the read API: per hour and day, with the mean lag.
    row = conn.execute(
        "SELECT sum(readings), sum(readings * lag_s_avg), max(lag_s_max) FROM api.arrival_hour"
        " WHERE meter_code = 'EL'"
    ).fetchone()
    raw = conn.execute(
        "SELECT count(*), sum(date_part('epoch', received_at - ts)),"
        " max(date_part('epoch', received_at - ts)) FROM ingest.reading WHERE meter_id = %s",
        (ids["EL"],),
    ).fetchone()
    assert row is not None and raw is not None
    assert row[0] == raw[0] == 61
    assert row[1] == pytest.approx(raw[1]) and row[2] == pytest.approx(raw[2])
    by_day = conn.execute("SELECT sum(readings) FROM api.arrival_day WHERE meter_code = 'EL'").fetchone()
    assert by_day == (61,)


def test_a_transaction_still_writing_is_counted_once(conn: Conn, database_url: str, tmp_path: Path) -> None:
    """A collector transaction that began before a run and commits after it: its readings carry
    received_at = its start, before the run; the run's watermark stops at that start, so the
    next run counts them, and nothing is counted twice."""
    ids = _meters(conn, tmp_path)
    insert(conn, ids["EL"], START, [100.0 + i for i in range(8)])
    with psycopg.connect(database_url) as writer:  # a transaction, as the collector's
        writer.execute(
            "INSERT INTO ingest.reading (meter_id, ts, value) VALUES (%s, %s, 1.0)",
            (ids["GAS"], START),
        )
        during = run_energy(conn)
        assert during.arrivals == 8
        writer.commit()
    hours, _ = _rollups(conn)
    assert sum(r[2] for r in hours) == 8
    after = run_energy(conn)
    assert after.arrivals == 1
    assert_counts_are_raw(conn)
    assert run_energy(conn).arrivals == 0
    assert_counts_are_raw(conn)


def test_a_failed_run_counts_nothing(conn: Conn, tmp_path: Path) -> None:
    """Counts and watermark move in one transaction: rolled back, the next run counts it all once."""
    ids = _meters(conn, tmp_path)
    insert(conn, ids["EL"], START, [100.0 + i for i in range(12)])
    watermark = conn.execute("SELECT received_through::text FROM analytics.energy_state").fetchone()
    with pytest.raises(RuntimeError), conn.transaction():
        now = conn.execute("SELECT now()").fetchone()
        assert now is not None and count_arrivals(conn, now[0] + timedelta(seconds=1)) == 12
        raise RuntimeError("crash before commit")
    assert _rollups(conn) == ([], [])
    assert conn.execute("SELECT received_through::text FROM analytics.energy_state").fetchone() == watermark
    assert run_energy(conn).arrivals == 12
    assert_counts_are_raw(conn)


def test_migration_counts_readings_stored_before_it(database_url: str, tmp_path: Path) -> None:
    """On a database where the energy job ran before 0011, the migration counts the readings
    below the watermark and the job those from it on."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        migrate(conn)
        ids = _meters(conn, tmp_path)
        insert(conn, ids["EL"], START, [100.0 + i for i in range(10)])
        run_energy(conn)
        # Back to the state before 0011: its objects gone, the readings below the watermark.
        conn.execute("DROP VIEW api.arrival_hour, api.arrival_day")
        conn.execute("DROP TABLE analytics.arrival_hour, analytics.arrival_day")
        conn.execute("DELETE FROM parkenergy_meta.migration WHERE version = 11")
        insert(conn, ids["EL"], START + 10 * QUARTER, [110.0, 111.0])  # not yet seen by the job
        migrate(conn)
        hours, _ = _rollups(conn)
        assert sum(r[2] for r in hours) == 10
        assert run_energy(conn).arrivals == 2
        assert_counts_are_raw(conn)
