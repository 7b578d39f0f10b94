"""The TimescaleDB path of the migrations and of the collector's SQL, on a real TimescaleDB.

There is no TimescaleDB server package here; ``tests/timescale/server.mjs`` serves
PGlite (PostgreSQL 17.5 in WebAssembly) with TimescaleDB 2.23 (TSL build) over
the PostgreSQL wire protocol. See /work/shared/TESTING-NOTES.md, "TimescaleDB on
these machines", for its rules: ``sslmode=disable``, any password,
``prepare_threshold=None``, one connection at a time, no ``COPY``, policies run
only through ``CALL run_job(id)``.

The server holds one in-memory database for the whole module: every test uses
its own meters and time range. It proves the SQL is accepted and gives correct
results, nothing about performance or locking.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from collector.writer import _CONFLICTS, _INSERT, _INSERT_CONFLICT, _STAGING
from parkdata.migrate import MigrationReport, TimescaleMode, migrate, packaged_migrations

SERVER_DIR = Path(__file__).parent / "timescale"
NPM_INSTALL_TIMEOUT_S = 600.0
SERVER_START_TIMEOUT_S = 60.0

Reading = tuple[int, datetime, float]  # meter_id, ts, value


def _node_modules_current() -> bool:
    """Every pinned dependency is installed at its pinned version (else npm must run)."""
    wanted = json.loads((SERVER_DIR / "package.json").read_text("utf-8"))["dependencies"]
    for name, version in wanted.items():
        manifest = SERVER_DIR / "node_modules" / name / "package.json"
        if not manifest.is_file() or json.loads(manifest.read_text("utf-8")).get("version") != version:
            return False
    return True


def _npm_install(npm: str) -> None:
    """``npm ci`` from the lock file (``npm install`` without one); a failure fails the module."""
    command = "ci" if (SERVER_DIR / "package-lock.json").is_file() else "install"
    try:
        done = subprocess.run(
            [npm, command, "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=SERVER_DIR,
            capture_output=True,
            text=True,
            timeout=NPM_INSTALL_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"npm {command} in {SERVER_DIR} did not finish in {NPM_INSTALL_TIMEOUT_S:.0f} s")
    if done.returncode != 0 or not _node_modules_current():
        pytest.fail(
            f"npm {command} in {SERVER_DIR} failed (exit {done.returncode}):\n{done.stdout}\n{done.stderr}"
        )


def _wait_ready(proc: subprocess.Popen[bytes], log_path: Path) -> int:
    """The port from the server's ``READY 127.0.0.1:PORT`` line."""
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        for line in log_path.read_text("utf-8", errors="replace").splitlines():
            if line.startswith("READY "):
                return int(line.rpartition(":")[2])
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    log = log_path.read_text("utf-8", errors="replace")
    state = f"exited with {proc.returncode}" if proc.poll() is not None else "not ready in time"
    raise RuntimeError(f"TimescaleDB test server {state}; its output:\n{log}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture(scope="module")
def timescale_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a PGlite + TimescaleDB server on a free port, for this module; stopped after."""
    node = shutil.which("node")
    npm = shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node and npm are needed for the PGlite TimescaleDB server (apt-get install nodejs npm)")
    if not _node_modules_current():
        _npm_install(npm)
    log_path = tmp_path_factory.mktemp("timescale") / "server.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [node, "server.mjs", "0"], cwd=SERVER_DIR, stdin=subprocess.DEVNULL, stdout=log, stderr=log
        )
    try:
        port = _wait_ready(proc, log_path)
        yield f"postgresql://postgres:x@127.0.0.1:{port}/postgres?sslmode=disable"
    finally:
        _stop(proc)


def _connect(url: str) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(url, prepare_threshold=None, autocommit=True, connect_timeout=30)


@pytest.fixture(scope="module")
def migration_report(timescale_url: str) -> MigrationReport:
    """The first ``migrate(conn, TimescaleMode.ON)`` on the server; it must raise no WARNING."""
    warnings: list[str] = []
    with _connect(timescale_url) as conn:
        conn.add_notice_handler(
            lambda d: warnings.append(str(d.message_primary)) if d.severity == "WARNING" else None
        )
        report = migrate(conn, TimescaleMode.ON)
    assert warnings == [], f"TimescaleDB warned during the migrations: {warnings}"
    return report


@pytest.fixture
def conn(
    timescale_url: str, migration_report: MigrationReport
) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """An autocommit connection to the migrated database (the server takes one at a time)."""
    with _connect(timescale_url) as connection:
        yield connection


def _write(conn: psycopg.Connection[tuple[object, ...]], rows: Sequence[Reading]) -> tuple[int, list[object]]:
    """The collector's row write (collector.writer._write_rows) with a VALUES insert instead of COPY.

    Returns the rows stored and the conflicting rows (ordered by staging order).
    """
    values = sql.SQL(", ").join([sql.SQL("(%s, %s, %s, %s)")] * len(rows))
    fill = sql.SQL("INSERT INTO pg_temp.staging_reading (ord, meter_id, ts, value) VALUES {}").format(values)
    params = [x for ord_, row in enumerate(rows) for x in (ord_, *row)]
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(_STAGING)
        cur.execute(fill, params)
        cur.execute(_INSERT)
        stored = cur.rowcount
        conflicts = cur.execute(_CONFLICTS).fetchall()
    return stored, [(m, t, v) for _, m, t, v in sorted(conflicts)]


def _stored(conn: psycopg.Connection[tuple[object, ...]], meter_id: int) -> list[object]:
    cur = conn.execute(
        "SELECT meter_id, ts, value FROM ingest.reading WHERE meter_id = %s ORDER BY ts", (meter_id,)
    )
    return [(m, t, v) for m, t, v in cur]


def _series(meter_id: int, start: datetime, n: int, step: timedelta = timedelta(minutes=15)) -> list[Reading]:
    return [(meter_id, start + i * step, float(i)) for i in range(n)]


def _register_meter(conn: psycopg.Connection[tuple[object, ...]], code: str) -> int:
    """A park, an enterprise and an electricity meter named after ``code``; returns the meter_id."""
    with conn.transaction():
        park = conn.execute(
            "INSERT INTO registry.park (park_code, park_name) VALUES (%s, %s) RETURNING park_id",
            (f"P-{code}", f"Park {code}"),
        ).fetchone()
        assert park is not None
        enterprise = conn.execute(
            "INSERT INTO registry.enterprise (enterprise_code, enterprise_name, park_id, industry_code)"
            " VALUES (%s, %s, %s, 'C26') RETURNING enterprise_id",
            (f"E-{code}", f"Enterprise {code}", park[0]),
        ).fetchone()
        assert enterprise is not None
        meter = conn.execute(
            "INSERT INTO registry.meter (enterprise_id, meter_code, carrier, unit, kind)"
            " VALUES (%s, %s, 'electricity', 'kWh', 'register') RETURNING meter_id",
            (enterprise[0], f"M-{code}"),
        ).fetchone()
        assert meter is not None
        return int(str(meter[0]))


def test_migrate_on_makes_reading_a_compressed_hypertable(
    migration_report: MigrationReport, conn: psycopg.Connection[tuple[object, ...]]
) -> None:
    packaged = [m.version for m in packaged_migrations()]
    assert migration_report.timescaledb is True
    assert [m.version for m in migration_report.applied] == packaged
    assert migration_report.already_applied == 0
    recorded = conn.execute("SELECT version, timescaledb FROM parkenergy_meta.migration ORDER BY version")
    assert recorded.fetchall() == [(v, True) for v in packaged]

    hypertable = conn.execute(
        "SELECT compression_enabled FROM timescaledb_information.hypertables"
        " WHERE hypertable_schema = 'ingest' AND hypertable_name = 'reading'"
    ).fetchall()
    assert hypertable == [(True,)]
    dimension = conn.execute(
        "SELECT column_name, time_interval FROM timescaledb_information.dimensions"
        " WHERE hypertable_schema = 'ingest' AND hypertable_name = 'reading'"
    ).fetchall()
    assert dimension == [("ts", timedelta(days=7))]
    settings = conn.execute(
        "SELECT attname, segmentby_column_index, orderby_column_index, orderby_asc"
        " FROM timescaledb_information.compression_settings"
        " WHERE hypertable_schema = 'ingest' AND hypertable_name = 'reading'"
        " ORDER BY attname"
    ).fetchall()
    assert settings == [("meter_id", 1, None, None), ("ts", None, 1, True)]
    jobs = conn.execute(
        "SELECT config->>'compress_after' FROM timescaledb_information.jobs"
        " WHERE proc_name = 'policy_compression'"
        " AND hypertable_schema = 'ingest' AND hypertable_name = 'reading'"
    ).fetchall()
    assert jobs == [("30 days",)]
    # The plain-PostgreSQL branch of 0002 did not run.
    brin = conn.execute("SELECT to_regclass('ingest.reading_ts_brin')").fetchone()
    assert brin == (None,)

    again = migrate(conn, TimescaleMode.ON)
    assert again.applied == ()
    assert again.already_applied == len(packaged)
    assert again.timescaledb is True


def test_collector_insert_on_conflict_on_hypertable(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    meter_id = 9_001  # readings have no foreign key to the registry
    rows = _series(meter_id, datetime(2024, 1, 1, tzinfo=UTC), 20)  # spans one 7-day chunk

    assert _write(conn, rows) == (20, [])
    assert _stored(conn, meter_id) == rows

    # Redelivery: nothing new, and identical values are duplicates, not conflicts.
    assert _write(conn, rows) == (0, [])

    changed = (meter_id, rows[3][1], 42.5)
    new = (meter_id, datetime(2024, 1, 20, tzinfo=UTC), 7.0)  # another chunk
    assert _write(conn, [rows[0], changed, new]) == (1, [changed])
    assert _stored(conn, meter_id) == [*rows, new]  # the first value stays
    chunks = conn.execute(
        "SELECT count(*) FROM show_chunks('ingest.reading',"
        " newer_than => '2023-12-20'::timestamptz, older_than => '2024-02-01'::timestamptz)"
    ).fetchone()
    assert chunks is not None
    assert int(str(chunks[0])) >= 2


def test_api_views_read_the_hypertable(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    views = {
        str(name)
        for (name,) in conn.execute(
            "SELECT table_name FROM information_schema.views WHERE table_schema = 'api'"
        )
    }
    expected = {
        "park",
        "enterprise",
        "meter",
        "meter_event",
        "reading",
        "reading_conflict",
        "quarantine",
        "collector_stats",
        "gateway_status",
        "gateway_event",
    }
    assert expected <= views

    meter_id = _register_meter(conn, "api")
    rows = _series(meter_id, datetime(2024, 3, 1, tzinfo=UTC), 4)
    assert _write(conn, rows) == (4, [])
    conflict = (meter_id, rows[1][1], 99.0)
    assert _write(conn, [conflict]) == (0, [conflict])
    with conn.transaction():
        conn.execute(_INSERT_CONFLICT, (*conflict, "park/P-api/E-api/readings"))

    got = conn.execute(
        "SELECT park_code, enterprise_code, meter_code, carrier, ts, value, unit FROM api.reading"
        " WHERE meter_code = 'M-api' ORDER BY ts"
    ).fetchall()
    assert got == [("P-api", "E-api", "M-api", "electricity", ts, value, "kWh") for _, ts, value in rows]
    conflicts = conn.execute(
        "SELECT meter_code, ts, stored_value, conflicting_value FROM api.reading_conflict"
        " WHERE meter_code = 'M-api'"
    ).fetchall()
    assert conflicts == [("M-api", rows[1][1], 1.0, 99.0)]


def test_insert_on_conflict_into_a_compressed_chunk(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    meter_id = 9_002
    start = datetime(2020, 1, 6, tzinfo=UTC)  # alone in its chunks: no other test writes in 2020
    rows = _series(meter_id, start, 10)
    assert _write(conn, rows) == (10, [])

    compressed = conn.execute(
        "SELECT compress_chunk(c) FROM show_chunks('ingest.reading',"
        " newer_than => '2019-12-01'::timestamptz, older_than => '2020-02-01'::timestamptz) c"
    ).fetchall()
    assert compressed
    states = conn.execute(
        "SELECT is_compressed FROM timescaledb_information.chunks"
        " WHERE hypertable_schema = 'ingest' AND hypertable_name = 'reading'"
        " AND range_start <= %s AND range_end > %s",
        (start, start),
    ).fetchall()
    assert states == [(True,)]

    changed = (meter_id, rows[2][1], -1.0)
    between = (meter_id, start + timedelta(minutes=7), 0.5)
    assert _write(conn, [rows[0], changed, between]) == (1, [changed])
    assert _stored(conn, meter_id) == sorted([*rows, between], key=lambda r: r[1])
    # Redelivery of the whole lot into the (partly) compressed chunk stores nothing.
    assert _write(conn, [*rows, between]) == (0, [])


def test_compression_policy_runs(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    """The policy added by 0002 compresses chunks older than 30 days (run by hand: no scheduler here)."""
    meter_id = 9_003
    start = datetime(2021, 6, 7, tzinfo=UTC)
    rows = _series(meter_id, start, 5)
    assert _write(conn, rows) == (5, [])
    job = conn.execute(
        "SELECT job_id FROM timescaledb_information.jobs"
        " WHERE proc_name = 'policy_compression' AND hypertable_schema = 'ingest'"
        " AND hypertable_name = 'reading'"
    ).fetchone()
    assert job is not None

    conn.execute(sql.SQL("CALL run_job({})").format(sql.Literal(job[0])))

    states = conn.execute(
        "SELECT is_compressed FROM timescaledb_information.chunks"
        " WHERE hypertable_schema = 'ingest' AND hypertable_name = 'reading'"
        " AND range_start <= %s AND range_end > %s",
        (start, start),
    ).fetchall()
    assert states == [(True,)]
    assert _stored(conn, meter_id) == rows
