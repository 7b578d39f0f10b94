"""Every panel, variable and alert query, expanded as Grafana would, runs on a database holding data.

The data is a day of readings of the test registry pushed through the real
collector over a real Mosquitto (plus a conflict, quarantined messages, an
offline gateway and meters that went silent), so ``api.collector_stats``,
``api.quarantine`` and the rest are written the way production writes them; then
the ``energy`` job runs once (arrival and energy rollups).
Queries are found by walking the built dashboard and alert models: a new panel
is covered without touching this file.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from analytics.detection import GROUPS
from analytics.jobs import run_job
from dashboards import alerts, catalogue
from dashboards.boards import inspector, quality
from dashboards.datasource import DATASOURCE_UID
from dashboards.messages import Lang
from parkenergy.embedded import EmbeddedBroker, EmbeddedPostgres, find_mosquitto
from tests.grafana_sql import TimeRange, VariableValue, expand
from tests.harness import Publisher, collector_config, prepare_database, running_collector, scalar, wait_for

E1 = "91420700MA49ABCD1X"  # GDKFQ, five meters
E2 = "91420704MA4A0PQR2Y"  # ECQ, two meters
PREFIX = "parkenergy/v1"
INTERVAL = timedelta(minutes=5)

NUMERIC_OIDS = {20, 21, 23, 700, 701, 1700}
TIME_OIDS = {1082, 1114, 1184}
TEXT_OIDS = {19, 25, 1043}


# -- the queries of the built models --------------------------------------------


@dataclass(frozen=True, slots=True)
class GrafanaQuery:
    """One query as Grafana holds it: where it comes from, its SQL and what its result must look like."""

    where: str
    sql: str
    shape: str  # panel type, "variable" or "alert"
    format: str
    window: timedelta | None = None  # alert rules: relative time range


def dashboard_models(lang: Lang = Lang.ZH) -> list[dict[str, Any]]:
    return [alerts.to_plain(d) for d in catalogue.build_all(lang)]


def rule_group_models(lang: Lang = Lang.ZH) -> list[dict[str, Any]]:
    return [alerts.to_plain(alerts.build_group(g, catalogue.FOLDER_UID, lang)) for g in alerts.GROUPS]


def panel_queries() -> list[GrafanaQuery]:
    found = []
    for board in dashboard_models():
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                found.append(
                    GrafanaQuery(
                        f"{board['uid']}/{panel['id']}:{target['refId']}",
                        target["rawSql"],
                        panel["type"],
                        target["format"],
                    )
                )
    return found


def annotation_queries() -> list[GrafanaQuery]:
    found = []
    for board in dashboard_models():
        for annotation in board["annotations"].get("list", []):
            target = annotation["target"]
            found.append(
                GrafanaQuery(
                    f"{board['uid']}/annotation:{annotation['name']}",
                    target["rawSql"],
                    "annotation",
                    target["format"],
                )
            )
    return found


def variable_queries() -> list[GrafanaQuery]:
    found = {}
    for board in dashboard_models():
        for variable in board["templating"]["list"]:
            if variable["type"] == "query":
                found[variable["name"]] = GrafanaQuery(
                    f"variable/{variable['name']}", variable["query"], "variable", "table"
                )
    return list(found.values())


def alert_queries() -> list[GrafanaQuery]:
    found = []
    for group in rule_group_models():
        for rule in group["rules"]:
            for query in rule["data"]:
                if query["datasourceUid"] == DATASOURCE_UID:
                    window = timedelta(seconds=query["relativeTimeRange"]["from"])
                    found.append(
                        GrafanaQuery(
                            f"alert/{rule['uid']}:{query['refId']}",
                            query["model"]["rawSql"],
                            "alert",
                            "table",
                            window,
                        )
                    )
    return found


# Queries of the accounting views need energy rollups, economics and a forecast: they run on the
# simulated park (tests/test_dashboards_accounting.py); the others on this module's stream.
ACCOUNTING_VIEWS = re.compile(
    r"\bapi\.(energy_tce_|meter_energy_|intensity|energy_forecast_month|value_added|baseline|output)"
)


def reads_accounting(query: GrafanaQuery) -> bool:
    return ACCOUNTING_VIEWS.search(query.sql) is not None


EVERY_QUERY = panel_queries() + annotation_queries() + variable_queries() + alert_queries()
ALL_QUERIES = [q for q in EVERY_QUERY if not reads_accounting(q)]
ACCOUNTING_QUERIES = [q for q in EVERY_QUERY if reads_accounting(q)]


# -- variables ----------------------------------------------------------------------


def resolve_variables(conn: psycopg.Connection[Any], time_range: TimeRange) -> dict[str, VariableValue]:
    """Every variable with "All" selected (its current value), options from its own query."""
    values: dict[str, VariableValue] = {}
    for board in dashboard_models():
        for variable in board["templating"]["list"]:
            name = variable["name"]
            if name in values:
                continue
            if variable["type"] == "custom":
                values[name] = VariableValue((variable["current"]["value"],), multi=False)
                continue
            sql = expand(variable["query"], time_range, INTERVAL, timescaledb=False, variables=values)
            cur = conn.execute(sql)
            names = [d.name for d in cur.description or []]
            column = names.index("__value") if "__value" in names else 0
            options = tuple(str(row[column]) for row in cur.fetchall())
            assert options, f"variable {name} has no options"
            values[name] = VariableValue(options, multi=bool(variable["multi"] or variable["includeAll"]))
    return values


# -- result checks ---------------------------------------------------------------------


def check_result(query: GrafanaQuery, description: Sequence[Any], rows: Sequence[Sequence[Any]]) -> None:
    """The columns the panel type needs are there, and there are rows."""
    assert rows, f"{query.where} returned no rows"
    names = [d.name for d in description]
    oids = {d.name: d.type_code for d in description}
    numeric = [n for n in names if oids[n] in NUMERIC_OIDS]
    if query.format == "time_series":
        assert "time" in names, f"{query.where}: a time series needs a 'time' column, got {names}"
        assert oids["time"] in TIME_OIDS | NUMERIC_OIDS, f"{query.where}: 'time' has type {oids['time']}"
        values = [n for n in numeric if n != "time"]
        assert values, f"{query.where}: no numeric value column in {names}"
        others = set(names) - {"time", *values}
        assert others <= {"metric"}, f"{query.where}: unexpected columns {others}"
        times = [row[names.index("time")] for row in rows]
        assert times == sorted(times), f"{query.where}: rows are not in time order"
    elif query.shape in ("stat", "bargauge"):
        assert numeric, f"{query.where}: a {query.shape} needs a numeric column, got {names}"
        if query.shape == "bargauge":
            assert any(oids[n] in TEXT_OIDS for n in names), f"{query.where}: no name column"
    elif query.shape == "alert":
        assert len(numeric) == 1, f"{query.where}: an alert query needs one numeric column, got {names}"
        labels = [n for n in names if n not in numeric]
        assert all(oids[n] in TEXT_OIDS for n in labels), f"{query.where}: label columns must be text"
        keys = [tuple(row[names.index(n)] for n in labels) for row in rows]
        assert len(keys) == len(set(keys)), f"{query.where}: label sets repeat: {keys}"
    elif query.shape == "annotation":
        assert names[0] == "time" and oids["time"] in TIME_OIDS, f"{query.where}: needs 'time' first: {names}"
        assert "text" in names and oids["text"] in TEXT_OIDS, f"{query.where}: needs a 'text' column"
        assert set(names) <= {"time", "timeend", "text", "tags", "title"}, f"{query.where}: columns {names}"
    elif query.shape == "variable":
        assert names[0] == "__value" or len(names) == 1, f"{query.where}: columns {names}"
    else:
        assert query.shape == "table", f"{query.where}: panel type {query.shape} has no check"
        assert names


def run_query(
    conn: psycopg.Connection[Any],
    query: GrafanaQuery,
    time_range: TimeRange,
    variables: dict[str, VariableValue],
    *,
    timescaledb: bool,
    now: datetime,
) -> tuple[Sequence[Any], list[Any]]:
    if query.window is not None:  # an alert rule: its relative range, ending now, no variables
        time_range = TimeRange(now - query.window, now)
        variables = {}
    sql = expand(query.sql, time_range, INTERVAL, timescaledb=timescaledb, variables=variables)
    assert "$" not in sql.replace("$$", ""), f"{query.where}: unexpanded {sql}"
    cur = conn.execute(sql)
    assert cur.description is not None
    return cur.description, cur.fetchall()


# -- the data ---------------------------------------------------------------------------------


def _reading(ts: datetime, value: float) -> bytes:
    return json.dumps({"ts": ts.isoformat(), "value": value}).encode()


def stream(now: datetime) -> list[tuple[str, bytes]]:
    """A day of readings; PV01 silent for 6 h, ST01 never reporting; bad messages; E2's gateway offline."""
    start = now - timedelta(hours=24)
    messages: list[tuple[str, bytes]] = []

    def series(
        enterprise: str, meter: str, step: timedelta, until: datetime, first: float, rise: float
    ) -> None:
        ts, value = start, first
        while ts <= until:
            messages.append((f"{PREFIX}/{enterprise}/{meter}", _reading(ts, value)))
            ts, value = ts + step, value + rise

    quarter = timedelta(minutes=15)
    series(E1, "EL01", quarter, now - quarter, 1000.0, 2.5)
    series(E1, "GAS01", timedelta(hours=1), now - timedelta(hours=1), 50.0, 3.0)
    series(E1, "PV01", quarter, now - timedelta(hours=6), 10.0, 0.5)
    series(E1, "PWR01", timedelta(minutes=1), now - timedelta(minutes=1), 800.0, 0.0)
    series(E2, "EL01", quarter, now - quarter, 5000.0, 40.0)
    messages.append((f"{PREFIX}/{E2}/COAL01", _reading(now - timedelta(hours=2), 12.0)))
    # A different value for a stored (meter, ts): kept as a conflict.
    messages.append((f"{PREFIX}/{E1}/EL01", _reading(start, 999.0)))
    # Quarantine: not numeric, naive timestamp, unknown meter.
    bad_ts = (now - timedelta(minutes=30)).isoformat()
    messages.append((f"{PREFIX}/{E1}/EL01", json.dumps({"ts": bad_ts, "value": "n/a"}).encode()))
    messages.append((f"{PREFIX}/{E1}/GAS01", json.dumps({"ts": "2025-01-01T08:00:00", "value": 1}).encode()))
    messages.append((f"{PREFIX}/{E1}/NOPE01", _reading(now - timedelta(minutes=20), 1.0)))
    messages.append((f"{PREFIX}/{E2}/_status", b"offline"))
    return messages


@dataclass(frozen=True, slots=True)
class Dataset:
    url: str  # as a member of parkenergy_grafana only, like Grafana's datasource
    time_range: TimeRange


@pytest.fixture(scope="module")
def dataset(pg_server: EmbeddedPostgres, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dataset]:
    """A database of this module with the stream stored by the real collector."""
    if find_mosquitto() is None:
        pytest.skip("no mosquitto binary on PATH (apt-get install mosquitto)")
    name = f"test_dash_{uuid.uuid4().hex[:12]}"
    url = pg_server.create_database(name)
    broker = EmbeddedBroker(tmp_path_factory.mktemp("mqtt"))
    broker.start()
    try:
        prepare_database(url)
        now = datetime.now(UTC).replace(second=0, microsecond=0)
        messages = stream(now)
        readings = len(messages) - 6  # the conflict, three quarantined, the status... and the duplicate key
        with running_collector(collector_config(url, broker.url)), Publisher(broker.url) as publisher:
            publisher.publish_all(messages)
            wait_for(
                lambda: (
                    scalar(url, "SELECT count(*) FROM ingest.quarantine") == 3
                    and scalar(url, "SELECT count(*) FROM ingest.reading_conflict") == 1
                    and scalar(url, "SELECT count(*) FROM ingest.gateway_status") == 1
                ),
                what="quarantine, conflict and gateway status",
            )
            wait_for(
                lambda: scalar(url, "SELECT count(*) FROM ingest.reading") == readings + 1,
                what=lambda: (
                    f"{readings + 1} readings, got {scalar(url, 'SELECT count(*) FROM ingest.reading')}"
                ),
            )
        end = datetime.now(UTC) + timedelta(seconds=1)
        with psycopg.connect(url, autocommit=True) as conn:
            # The energy job counts the arrivals the readings and lag panels read; the detectors
            # fill the alert state the inspector's alert panels and the enterprise annotations read.
            for job in ("energy", *GROUPS):
                outcome = run_job(conn, job, end)
                assert outcome.status == "ok", f"{job}: {outcome.summary}"
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN IN ROLE parkenergy_grafana").format(sql.Identifier(name))
            )
        yield Dataset(make_conninfo(url, user=name), TimeRange(now - timedelta(hours=25), end))
    finally:
        broker.stop()
        pg_server.drop_database(name)
        with psycopg.connect(pg_server.url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))


@pytest.fixture(scope="module")
def variables(dataset: Dataset) -> dict[str, VariableValue]:
    with psycopg.connect(dataset.url, autocommit=True) as conn:
        return resolve_variables(conn, dataset.time_range)


# -- tests ---------------------------------------------------------------------------------------


def test_every_model_query_is_found() -> None:
    """The walk over the built models finds every panel, variable and alert rule."""
    panels = sum(len(b.panels()) for b in catalogue.BOARDS)
    rules = sum(1 + len(r.evidence) for g in alerts.GROUPS for r in g.rules)
    assert len(panel_queries()) == panels
    assert len(annotation_queries()) == sum(len(b.annotations) for b in catalogue.BOARDS) > 0
    assert len(alert_queries()) == rules
    assert ACCOUNTING_QUERIES and len(ALL_QUERIES) + len(ACCOUNTING_QUERIES) == len(EVERY_QUERY)
    assert {q.where for q in variable_queries()} == {
        "variable/park",
        "variable/industry",
        "variable/enterprise",
    }


@pytest.mark.parametrize("query", ALL_QUERIES, ids=[q.where for q in ALL_QUERIES])
@pytest.mark.parametrize("timescaledb", [False], ids=["plain"])
def test_query_runs_and_has_the_columns_its_panel_needs(
    dataset: Dataset, variables: dict[str, VariableValue], query: GrafanaQuery, timescaledb: bool
) -> None:
    with psycopg.connect(dataset.url, autocommit=True) as conn:
        description, rows = run_query(
            conn, query, dataset.time_range, variables, timescaledb=timescaledb, now=datetime.now(UTC)
        )
    check_result(query, description, rows)


def test_panels_with_one_enterprise_selected(dataset: Dataset, variables: dict[str, VariableValue]) -> None:
    """A single selection of a multi-value variable is still quoted: every panel query runs."""
    one = {**variables, "enterprise": VariableValue((E1,), multi=True)}
    with psycopg.connect(dataset.url, autocommit=True) as conn:
        for query in panel_queries():
            run_query(conn, query, dataset.time_range, one, timescaledb=False, now=datetime.now(UTC))
        coverage = next(q for q in panel_queries() if "coverage_pct" in q.sql)
        description, rows = run_query(
            conn, coverage, dataset.time_range, one, timescaledb=False, now=datetime.now(UTC)
        )
    names = [d.name for d in description]
    assert [row[names.index("enterprise_code")] for row in rows] == [E1]


def test_offline_and_coverage_figures(dataset: Dataset, variables: dict[str, VariableValue]) -> None:
    """The inspector and coverage panels say what the stream did."""
    by_key = {q.sql: q for q in panel_queries()}
    with psycopg.connect(dataset.url, autocommit=True) as conn:

        def rows_of(sql: str) -> list[dict[str, Any]]:
            description, rows = run_query(
                conn, by_key[sql], dataset.time_range, variables, timescaledb=False, now=datetime.now(UTC)
            )
            names = [d.name for d in description]
            return [dict(zip(names, row, strict=True)) for row in rows]

        offline = {(r["enterprise_code"], r["meter_code"]) for r in rows_of(inspector.OFFLINE_METERS.sql)}
        gateways = rows_of(inspector.OFFLINE_GATEWAYS.sql)
        coverage = {r["enterprise_code"]: r for r in rows_of(quality.COVERAGE.sql)}
        quarantine = rows_of(inspector.ENTERPRISE_QUARANTINE.sql)
        rates = rows_of(quality.INGEST_RATE.sql)
        lags = rows_of(quality.LAG.sql)
        stored = conn.execute(
            "SELECT enterprise_code, meter_code, count(*) FROM api.reading GROUP BY 1, 2"
        ).fetchall()
    # PV01 stopped 6 h ago (> 3 × 15 min), ST01 never reported; COAL01 reports daily.
    assert offline == {(E1, "PV01"), (E1, "ST01")}
    assert [(g["enterprise_code"], g["status"]) for g in gateways] == [(E2, "offline")]
    assert {r["enterprise_code"] for r in quarantine} == {E1}
    assert len(quarantine) == 3
    # Coverage as the energy rollups count it: every reading of the register and interval
    # meters (the gauge PWR01 and the never-reporting ST01 are not counted); PV01's 6 silent
    # hours, less the 1 h grace, are due and missing, so E1 is below E2 (all due readings in).
    counted = {(e, m): n for e, m, n in stored if m != "PWR01"}
    assert float(coverage[E1]["received"]) == sum(n for (e, _), n in counted.items() if e == E1)
    assert float(coverage[E2]["received"]) == sum(n for (e, _), n in counted.items() if e == E2) == 97
    assert 98 <= float(coverage[E2]["coverage_pct"]) <= 100
    pv_due = 4 * 5  # PV01: 15-minute readings due from its last (6 h ago) to the run less the grace
    assert float(coverage[E1]["expected"]) >= float(coverage[E1]["received"]) + pv_due - 2
    assert float(coverage[E1]["coverage_pct"]) < float(coverage[E2]["coverage_pct"])
    # Readings and lag from the arrival rollups: every stored reading once; the stream was
    # published at once, so the oldest readings arrived about 24 h late.
    assert sum(int(r["readings"]) for r in rates) == sum(n for _, _, n in stored)
    assert all(0 <= r["lag_mean_s"] <= r["lag_max_s"] for r in lags)
    assert 23 * 3600 < max(r["lag_max_s"] for r in lags) < 25 * 3600


def test_the_grafana_role_reads_nothing_but_api(dataset: Dataset) -> None:
    """The queries above ran as a parkenergy_grafana member, who cannot read the tables behind the views."""
    with (
        psycopg.connect(dataset.url, autocommit=True) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        assert conn.execute("SELECT count(*) FROM api.reading").fetchone() != (0,)
        conn.execute("SELECT count(*) FROM ingest.reading")


def test_checked_in_provisioning_is_what_runs_here() -> None:
    """The dashboards checked in carry the same SQL as the models tested above."""
    provisioned = Path(__file__).parent.parent / "dashboards" / "provisioning" / "dashboards" / "parkenergy"
    sqls = set()
    for path in provisioned.glob("*.json"):
        board = json.loads(path.read_text("utf-8"))
        sqls |= {t["rawSql"] for p in board["panels"] for t in p.get("targets", [])}
    assert sqls == {q.sql for q in panel_queries()}
