"""The ``timescaledb: true`` forms (``time_bucket``) of every query, on a real TimescaleDB.

The server is PGlite with TimescaleDB 2.23 behind the PostgreSQL wire protocol
(tests/timescale/server.mjs, see tests/test_timescaledb.py): no COPY, one
connection, so the data of tests/test_dashboards_queries.py is written with
plain INSERTs here (the collector's own path is tested on plain PostgreSQL).
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg import sql

from analytics.energy_store import count_arrivals
from analytics.jobs import run_job
from parkdata.migrate import TimescaleMode, migrate
from parkdata.registry_file import read_registry_file
from parkdata.registry_store import store_registry
from tests.golden import REGISTRY_CSV
from tests.grafana_sql import TimeRange, VariableValue, expand
from tests.test_accounting_timescaledb import _insert, _quarter_hours, _setup
from tests.test_dashboards_queries import (
    ACCOUNTING_QUERIES,
    ALL_QUERIES,
    E2,
    PREFIX,
    GrafanaQuery,
    check_result,
    resolve_variables,
    run_query,
    stream,
)
from tests.test_timescaledb import timescale_url  # noqa: F401 (the PGlite server fixture)

BAD_REASONS = ("value.not_numeric", "timestamp.naive", "registry.unknown_meter")


def _connect(url: str) -> psycopg.Connection[Any]:
    return psycopg.connect(url, prepare_threshold=None, autocommit=True, connect_timeout=30)


def _load(conn: psycopg.Connection[Any], now: datetime) -> None:
    """The stream of the plain-PostgreSQL test, written as the collector would have stored it."""
    migrate(conn, TimescaleMode.ON)
    with conn.transaction():
        store_registry(conn, read_registry_file(REGISTRY_CSV))
    meter_ids = {
        (e, m): i
        for e, m, i in conn.execute(
            "SELECT e.enterprise_code, m.meter_code, m.meter_id FROM registry.meter m"
            " JOIN registry.enterprise e USING (enterprise_id)"
        )
    }
    readings: dict[tuple[int, str], float] = {}
    conflicts, bad = [], []
    for topic, payload in stream(now):
        _, _, enterprise, meter = topic.split("/")
        if meter == "_status":
            continue
        body = json.loads(payload)
        key = (enterprise, meter)
        if key not in meter_ids or not isinstance(body["value"], int | float) or "+" not in body["ts"]:
            bad.append((topic, payload))
            continue
        row = (meter_ids[key], body["ts"])
        if row in readings:
            conflicts.append((*row, float(body["value"]), topic))
        else:
            readings[row] = float(body["value"])
    rows = [(m, ts, v) for (m, ts), v in readings.items()]
    for i in range(0, len(rows), 500):
        chunk = rows[i : i + 500]
        values = sql.SQL(", ").join([sql.SQL("(%s, %s::timestamptz, %s, now())")] * len(chunk))
        conn.execute(
            sql.SQL("INSERT INTO ingest.reading (meter_id, ts, value, received_at) VALUES {}").format(values),
            [x for row in chunk for x in row],
        )
    for meter_id, ts, value, topic in conflicts:
        conn.execute(
            "INSERT INTO ingest.reading_conflict (meter_id, ts, value, topic) VALUES (%s, %s, %s, %s)",
            (meter_id, ts, value, topic),
        )
    for (topic, payload), reason in zip(bad, BAD_REASONS, strict=True):
        conn.execute(
            "INSERT INTO ingest.quarantine (received_at, topic, payload, payload_is_utf8, reason, detail,"
            " message_sha256, collector_id) VALUES (now(), %s, %s, true, %s, 'test', %s, 'test')",
            (topic, payload, reason, hashlib.sha256(topic.encode() + b"\0" + payload).digest()),
        )
    conn.execute(
        "INSERT INTO ingest.gateway_status (enterprise_id, status, changed_at)"
        " SELECT enterprise_id, 'offline', now() FROM registry.enterprise WHERE enterprise_code = %s",
        (E2,),
    )
    conn.execute(  # the collector records every change as an event too
        "INSERT INTO ingest.gateway_event (enterprise_id, status, received_at)"
        " SELECT enterprise_id, 'offline', now() FROM registry.enterprise WHERE enterprise_code = %s",
        (E2,),
    )
    conn.execute(
        "INSERT INTO ingest.collector_stats"
        " (collector_id, started_at, updated_at, messages, readings, stored)"
        " VALUES ('test', now() - interval '1 hour', now(), %s, %s, %s)",
        (len(rows), len(rows), len(rows)),
    )
    assert topic.startswith(PREFIX)
    # The arrival rollups, counted as the energy job counts them. Not the whole job: its
    # energy rows of today would become the latest month of the accounting panels below,
    # which read another small park in this database (the job runs on TimescaleDB in
    # tests/test_energy_timescaledb.py).
    with conn.transaction():
        until = conn.execute("SELECT now()").fetchone()
        assert until is not None and count_arrivals(conn, until[0]) == len(rows)
    # The detectors that read raw data (not the energy rows, for the same reason) fill the
    # alert state the inspector's alert panels and the enterprise annotations read.
    for group in ("detect-offline", "detect-counters"):
        outcome = run_job(conn, group, until[0])
        assert outcome.status == "ok", f"{group}: {outcome.summary}"


@pytest.fixture(scope="module")
def loaded(timescale_url: str) -> tuple[str, TimeRange, dict[str, VariableValue]]:  # noqa: F811
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    with _connect(timescale_url) as conn:
        _load(conn, now)
        time_range = TimeRange(now - timedelta(hours=25), datetime.now(UTC) + timedelta(seconds=1))
        variables = resolve_variables(conn, time_range)
    return timescale_url, time_range, variables


def test_readings_are_in_a_hypertable(loaded: tuple[str, TimeRange, dict[str, VariableValue]]) -> None:
    with _connect(loaded[0]) as conn:
        row = conn.execute(
            "SELECT count(*) FROM timescaledb_information.hypertables WHERE hypertable_name = 'reading'"
        ).fetchone()
    assert row == (1,)


TIME_SERIES = [q for q in ALL_QUERIES if q.format == "time_series"]


def test_time_series_queries_use_time_bucket() -> None:
    assert TIME_SERIES, "no time-series panel: the time_bucket form would go untested"
    span = TimeRange(datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 1, 2, tzinfo=UTC))
    values = {"enterprise": VariableValue(("x",), multi=True)}
    for query in TIME_SERIES:
        assert "time_bucket('300.000s'," in expand(
            query.sql, span, timedelta(minutes=5), timescaledb=True, variables=values
        )


@pytest.mark.parametrize("query", ALL_QUERIES, ids=[q.where for q in ALL_QUERIES])
def test_query_on_timescaledb(
    loaded: tuple[str, TimeRange, dict[str, VariableValue]], query: GrafanaQuery
) -> None:
    url, time_range, variables = loaded
    with _connect(url) as conn:
        description, rows = run_query(
            conn, query, time_range, variables, timescaledb=True, now=datetime.now(UTC)
        )
    check_result(query, description, rows)


# -- the accounting panels ----------------------------------------------------------------------------
#
# The small park of tests/test_accounting_park.py as 15-minute energy rows in the
# hypertable (as in tests/test_accounting_timescaledb.py), added to the same
# database: the hour, day and month continuous aggregates answer through
# real-time aggregation, and every accounting query runs in its timescaledb form.
# No forecast run exists here (24 months are needed): queries of the forecast
# views alone may return no rows; their columns are checked on plain PostgreSQL
# (tests/test_dashboards_accounting.py).

ACCOUNTING_SPAN = TimeRange(datetime(2024, 12, 1, tzinfo=UTC), datetime(2025, 4, 30, tzinfo=UTC))


@pytest.fixture(scope="module")
def accounting_loaded(
    loaded: tuple[str, TimeRange, dict[str, VariableValue]], tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, dict[str, VariableValue]]:
    url = loaded[0]
    with _connect(url) as conn:
        ids = _setup(conn, tmp_path_factory.mktemp("accounting"))
        rows = [(m, b, q, 0.0, 0.0, r, e, min(1.0, r / e)) for m, b, q, r, e in _quarter_hours(ids)]
        _insert(conn, "energy_15min", rows)
        variables = resolve_variables(conn, ACCOUNTING_SPAN)
    return url, variables


def test_accounting_series_use_time_bucket() -> None:
    bucketed = [q for q in ACCOUNTING_QUERIES if "$__timeGroup" in q.sql]
    assert bucketed
    values = {
        "enterprise": VariableValue(("x",), multi=True),
        "variant": VariableValue(("gross",), multi=False),
    }
    for query in bucketed:
        assert "time_bucket('300.000s'," in expand(
            query.sql, ACCOUNTING_SPAN, timedelta(minutes=5), timescaledb=True, variables=values
        )


@pytest.mark.parametrize("query", ACCOUNTING_QUERIES, ids=[q.where for q in ACCOUNTING_QUERIES])
def test_accounting_query_on_timescaledb(
    accounting_loaded: tuple[str, dict[str, VariableValue]], query: GrafanaQuery
) -> None:
    url, variables = accounting_loaded
    end = ACCOUNTING_SPAN.end
    with _connect(url) as conn:
        description, rows = run_query(conn, query, ACCOUNTING_SPAN, variables, timescaledb=True, now=end)
    if not rows and "api.intensity_forecast" in query.sql:
        assert description, "the forecast query runs (no forecast run exists here)"
        return
    check_result(query, description, rows)
