"""The energy job against a real PostgreSQL: readings in, api.meter_energy_* out.

Readings are inserted straight into ingest.reading (the collector is tested elsewhere);
meters come from registry files through parkdata.registry_store.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest
from psycopg import sql

from analytics.energy_store import mark_dirty, run_energy
from analytics.intervals import MeterSpec, meter_buckets
from analytics.jobs import job_lock_key, run_job
from analytics.scheduler import AlreadyRunningError, Service
from parkdata.migrate import migrate
from tests.harness import load_meter_event_rows, load_registry_rows

ENTERPRISE = "91420704TEST00001X"
SHANGHAI_MIDNIGHT = datetime(2025, 1, 31, 16, 0, tzinfo=UTC)  # 2025-02-01 00:00 +08:00
Conn = psycopg.Connection[Any]


def meter(
    code: str,
    kind: str = "register",
    multiplier: str = "1",
    rollover: str = "",
    interval: str = "900",
    capacity: str = "400",
) -> list[str]:
    return [
        "ECQ",
        "鄂城区",
        ENTERPRISE,
        "测试企业",
        "3120",
        "true",
        code,
        "electricity",
        "kWh",
        kind,
        "consumption",
        multiplier,
        rollover,
        interval,
        capacity,
        "",
    ]


@pytest.fixture
def conn(database_url: str) -> Iterator[Conn]:
    with psycopg.connect(database_url, autocommit=True) as c:
        migrate(c)
        yield c


def load(conn: Conn, tmp_path: Path, *rows: list[str]) -> dict[str, int]:
    """Store registry ``rows`` (see :func:`meter`); the meter ids by meter code."""
    return load_registry_rows(conn, tmp_path / "registry.csv", rows)


def insert(
    conn: Conn,
    meter_id: int,
    start: datetime,
    values: Sequence[float | None],
    step: timedelta = timedelta(minutes=15),
) -> None:
    rows = [(meter_id, start + i * step, v) for i, v in enumerate(values) if v is not None]
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO ingest.reading (meter_id, ts, value) VALUES (%s, %s, %s)", rows)


def view(conn: Conn, level: str, meter_code: str) -> list[tuple[Any, ...]]:
    query = sql.SQL(
        "SELECT bucket, quantity, estimated_quantity, flagged_quantity, readings, expected_readings,"
        " coverage FROM api.{} WHERE meter_code = %s ORDER BY bucket"
    ).format(sql.Identifier(f"meter_energy_{level}"))
    return conn.execute(query, (meter_code,)).fetchall()


def total(conn: Conn, level: str, meter_code: str, column: str = "quantity") -> float:
    query = sql.SQL("SELECT coalesce(sum({}), 0) FROM api.{} WHERE meter_code = %s").format(
        sql.Identifier(column), sql.Identifier(f"meter_energy_{level}")
    )
    row = conn.execute(query, (meter_code,)).fetchone()
    assert row is not None
    return float(row[0])


def test_counter_faults_through_all_levels(conn: Conn, tmp_path: Path) -> None:
    ids = load_registry_rows(conn, tmp_path / "registry.csv", [meter("EL", rollover="100000")])
    # Day of 96 readings from 2025-02-01 00:00 local; register rises 10 kWh per 15 min.
    values: list[float | None] = [99_500.0 + 10 * i for i in range(96)]
    values = [v % 100_000 if v is not None else None for v in values]  # true rollover at 100000
    values[10] = 0.0  # transient zero
    values[20] = None  # missing
    values[30] = 5_000_000.0  # spike far above 400 kWh/h
    insert(conn, ids["EL"], SHANGHAI_MIDNIGHT, values)
    summary = run_energy(conn)
    assert summary.meters == 1 and summary.buckets > 0
    # 95 steps of 10 kWh, all booked, between the first and last reading.
    assert total(conn, "15min", "EL") == pytest.approx(950.0)
    assert total(conn, "hour", "EL") == pytest.approx(950.0)
    day = view(conn, "day", "EL")
    month = view(conn, "month", "EL")
    assert [d[0] for d in day] == [SHANGHAI_MIDNIGHT - timedelta(days=1), SHANGHAI_MIDNIGHT]
    assert month[-1][0] == SHANGHAI_MIDNIGHT and sum(m[1] for m in month) == pytest.approx(950.0)
    # Transient zero, missing and spike: three readings not present; their steps are estimated.
    assert total(conn, "15min", "EL", "readings") == 96 - 3
    assert total(conn, "15min", "EL", "estimated_quantity") == pytest.approx(60.0)
    # The spike's excess over the level before it is flagged, never booked.
    assert total(conn, "day", "EL", "flagged_quantity") == pytest.approx(5_000_000.0 - 99_790.0)
    # Same figures as the pure arithmetic on the same readings.
    ts = np.array([(SHANGHAI_MIDNIGHT + timedelta(minutes=15 * i)).timestamp() for i in range(96)])
    vals = np.array([np.nan if v is None else v for v in values])
    pure, _ = meter_buckets(ts, vals, MeterSpec("register", 1.0, 100_000.0, 900, 400.0))
    stored = view(conn, "15min", "EL")
    assert len(stored) == len(pure.bucket_s)
    assert [r[1] for r in stored] == pytest.approx(pure.quantity.tolist())


def test_late_data_recomputes_a_rolled_up_month(conn: Conn, tmp_path: Path) -> None:
    ids = load_registry_rows(
        conn, tmp_path / "registry.csv", [meter("COKE", kind="interval", interval="3600", capacity="80")]
    )
    start = SHANGHAI_MIDNIGHT + timedelta(hours=1)
    hourly = [10.0] * (24 * 28)
    hourly[100] = None  # type: ignore[call-overload]
    insert(conn, ids["COKE"], start, hourly, step=timedelta(hours=1))
    run_energy(conn)
    before = view(conn, "month", "COKE")
    assert [r[0] for r in before] == [SHANGHAI_MIDNIGHT]
    assert before[0][1] == pytest.approx(10.0 * (24 * 28 - 1))
    assert before[0][4] == 24 * 28 - 1 and before[0][5] == 24 * 28
    # The missing hour arrives a month late; only its range is recomputed.
    insert(conn, ids["COKE"], start + timedelta(hours=100), [25.0], step=timedelta(hours=1))
    summary = run_energy(conn)
    assert summary.ranges == 1 and summary.readings < 40
    after = view(conn, "month", "COKE")
    assert after[0][1] == pytest.approx(10.0 * (24 * 28 - 1) + 25.0)
    assert after[0][4] == 24 * 28 and after[0][6] == pytest.approx(1.0)
    assert total(conn, "day", "COKE") == pytest.approx(after[0][1])


def test_gap_spread_estimated_and_refilled_by_late_readings(conn: Conn, tmp_path: Path) -> None:
    ids = load_registry_rows(conn, tmp_path / "registry.csv", [meter("EL")])
    values: list[float | None] = [1000.0 + 20 * i for i in range(48)]
    late = values[16:24]
    values[16:24] = [None] * 8
    insert(conn, ids["EL"], SHANGHAI_MIDNIGHT, values)
    run_energy(conn)
    assert total(conn, "hour", "EL", "estimated_quantity") == pytest.approx(9 * 20.0)
    assert total(conn, "hour", "EL") == pytest.approx(47 * 20.0)
    insert(conn, ids["EL"], SHANGHAI_MIDNIGHT + timedelta(minutes=15 * 16), late)
    run_energy(conn)
    assert total(conn, "hour", "EL", "estimated_quantity") == pytest.approx(0.0)
    assert total(conn, "month", "EL") == pytest.approx(47 * 20.0)
    assert total(conn, "month", "EL", "readings") == 48


def test_multiplier_change_and_replacement_events(conn: Conn, tmp_path: Path) -> None:
    ids = load_registry_rows(
        conn,
        tmp_path / "registry.csv",
        [meter("CT", multiplier="100", capacity="100000"), meter("WA", capacity="400")],
    )
    insert(conn, ids["CT"], SHANGHAI_MIDNIGHT, [10.0 + i for i in range(9)])
    insert(conn, ids["WA"], SHANGHAI_MIDNIGHT, [480.0, 490.0, 500.0, 103.0, 113.0, 123.0, 133.0, 143.0])
    run_energy(conn)
    assert total(conn, "day", "CT") == pytest.approx(8 * 100.0)
    # Without an event the drop 500 → 103 is an unexplained break: not booked.
    assert total(conn, "day", "WA") == pytest.approx(20.0 + 40.0)
    change_at = (SHANGHAI_MIDNIGHT + timedelta(hours=1)).isoformat()
    replaced_at = (SHANGHAI_MIDNIGHT + timedelta(minutes=40)).isoformat()
    load_meter_event_rows(
        conn,
        tmp_path / "events.csv",
        [
            [ENTERPRISE, "CT", "multiplier_change", change_at, "", "", "200", "CT ratio doubled"],
            [ENTERPRISE, "WA", "replacement", replaced_at, "505", "100", "", "new meter"],
        ],
    )
    assert conn.execute("SELECT count(DISTINCT meter_id) FROM analytics.energy_dirty").fetchone() == (2,)
    run_energy(conn)
    # 4 steps before the change at ×100, 4 after at ×200.
    assert total(conn, "day", "CT") == pytest.approx(4 * 100.0 + 4 * 200.0)
    # 500 → final 505, then initial 100 → 103: 8 kWh across the replacement.
    assert total(conn, "day", "WA") == pytest.approx(20.0 + 8.0 + 40.0)
    assert conn.execute("SELECT count(*) FROM analytics.energy_dirty").fetchone() == (0,)


def test_incremental_runs_equal_one_full_recompute(conn: Conn, tmp_path: Path) -> None:
    ids = load_registry_rows(conn, tmp_path / "registry.csv", [meter("EL", rollover="5000", capacity="120")])
    rng = np.random.default_rng(7)
    n = 4 * 24 * 6
    steps = rng.uniform(0, 25, n)
    register = (1000 + np.cumsum(steps)) % 5000
    values: list[float | None] = register.tolist()
    for i in rng.choice(n, 12, replace=False):
        values[int(i)] = [0.0, None, 9e6][int(i) % 3]
    order = rng.permutation(n)  # readings arrive in random batches, late ones included
    for batch in np.array_split(order, 6):
        rows = [
            (ids["EL"], SHANGHAI_MIDNIGHT + timedelta(minutes=15 * int(i)), values[int(i)])
            for i in sorted(batch)
            if values[int(i)] is not None
        ]
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO ingest.reading (meter_id, ts, value) VALUES (%s, %s, %s)", rows)
        run_energy(conn)
    incremental = {level: view(conn, level, "EL") for level in ("15min", "hour", "day", "month")}
    mark_dirty(conn, datetime(1970, 1, 1, tzinfo=UTC), datetime(2200, 1, 1, tzinfo=UTC))
    conn.execute("DELETE FROM analytics.energy_15min")
    run_energy(conn)
    for level, rows in incremental.items():
        full = view(conn, level, "EL")
        assert [r[0] for r in full] == [r[0] for r in rows], level
        for a, b in zip(full, rows, strict=True):
            assert a[1:6] == pytest.approx(b[1:6], abs=1e-6), (level, a[0])


def test_job_lock_lets_one_instance_run(conn: Conn, database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", (job_lock_key("energy"),))
        outcome = run_job(conn, "energy")
        assert outcome.status == "skipped"
        other.execute("SELECT pg_advisory_unlock(%s)", (job_lock_key("energy"),))
    assert run_job(conn, "energy").status == "ok"
    statuses = [r[0] for r in conn.execute("SELECT status FROM analytics.job_run ORDER BY run_id")]
    assert statuses == ["skipped", "ok"]
    first = Service.for_names(database_url, ["energy"], interval_s=3600)
    second = Service.for_names(database_url, ["energy"], interval_s=3600)
    first.start()
    try:
        with pytest.raises(AlreadyRunningError):
            second.start()
        deadline = datetime.now(UTC) + timedelta(seconds=20)
        while datetime.now(UTC) < deadline:
            if conn.execute("SELECT count(*) FROM analytics.job_run WHERE status = 'ok'").fetchone() == (2,):
                break
            time.sleep(0.05)
        assert conn.execute("SELECT count(*) FROM analytics.job_run WHERE status = 'ok'").fetchone() == (2,)
    finally:
        first.stop()
    second.start()  # the lock is free once the first service stopped
    second.stop()
