"""The accounting panels and the target-path rule, expanded as Grafana would, on the simulated park.

The data is a copy of the shared ``simulated_park`` database (simulator →
Mosquitto → collector → energy job → economics import, tests/simulated_park.py)
with two earlier years of monthly rollups added: the forecast job needs 24
usable months and the simulated readings cover three. Those months are the
first simulated month of each meter scaled by the simulator's own monthly
energy of its enterprise (its economics truth), with full coverage; then the
real forecast job runs on the copy. Every query of the accounting views
(tests/test_dashboards_queries.py, ``ACCOUNTING_QUERIES``) runs as a member of
``parkenergy_grafana`` and must return rows of the shape its panel needs, with
the unit its figures need; a few figures are checked against the views.
"""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from analytics.jobs import run_job
from dashboards import alerts
from dashboards.boards import accounting, enterprise, inspector, overview
from dashboards.panels import Panel
from parkenergy.embedded import EmbeddedPostgres
from simulators.timebase import CST
from tests.grafana_sql import TimeRange, VariableValue, expand
from tests.simulated_park import SimulatedPark
from tests.test_dashboards_queries import (
    ACCOUNTING_QUERIES,
    GrafanaQuery,
    check_result,
    dashboard_models,
    resolve_variables,
    run_query,
)

HISTORY_MONTHS = 24
INTERVAL = timedelta(hours=6)  # about what Grafana picks for a year on a full-width panel

# Accounting figures and the unit they are shown in, wherever a panel returns them.
FIGURE_UNITS = {
    "energy_tce": accounting.TCE,
    "energy_tce_last_year": accounting.TCE,
    "observed_tce": accounting.TCE,
    "forecast_tce": accounting.TCE,
    "forecast_lower_tce": accounting.TCE,
    "forecast_upper_tce": accounting.TCE,
    "co2_t": accounting.CO2_T,
    "intensity": accounting.INTENSITY,
    "intensity_lower": accounting.INTENSITY,
    "intensity_upper": accounting.INTENSITY,
    "base_2022": accounting.INTENSITY,
    "path_value": accounting.INTENSITY,
    "target_2027": accounting.INTENSITY,
    "coverage": accounting.RATIO,
    "change_vs_2022": accounting.RATIO,
    "contribution_to_change": accounting.RATIO,
    "above_path": accounting.RATIO,
    "value_added_coverage": accounting.RATIO,
    "power_kw": "kwatt",
}


def _month(d: date, delta: int) -> date:
    index = d.year * 12 + d.month - 1 + delta
    return date(index // 12, index % 12 + 1, 1)


def _local_midnight(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=CST)


def extend_history(url: str, park: SimulatedPark) -> int:
    """Write :data:`HISTORY_MONTHS` monthly rollup rows per meter before the first simulated month.

    Each is the meter's first simulated month × its enterprise's gross energy of that month /
    of the first month (the simulator's economics truth), with every expected reading received.
    """
    economics = park.simulation().economics()
    codes = [e.code for e in park.simulation().park.enterprises]
    gross = {(codes[r.enterprise], date(r.year, r.month, 1)): r.energy_tce_gross for r in economics.months}
    first = park.config.start.astimezone(CST).date().replace(day=1)
    rows = []
    with psycopg.connect(url) as conn:
        meters = conn.execute(
            "SELECT em.meter_id, e.enterprise_code, em.quantity, em.expected_readings"
            " FROM analytics.energy_month em JOIN registry.meter m USING (meter_id)"
            " JOIN registry.enterprise e USING (enterprise_id) WHERE em.bucket = %s",
            (_local_midnight(first),),
        ).fetchall()
        for meter_id, code, quantity, expected in meters:
            for back in range(1, HISTORY_MONTHS + 1):
                month = _month(first, -back)
                scale = gross[code, month] / gross[code, first] if gross.get((code, first)) else 1.0
                rows.append((meter_id, _local_midnight(month), quantity * scale, expected, expected))
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO analytics.energy_month (meter_id, bucket, quantity, estimated_quantity,"
                " flagged_quantity, readings, expected_readings, coverage)"
                " VALUES (%s, %s, %s, 0, 0, %s, %s, 1)"
                # The month before the first holds the step that ends at its first midnight: kept, added to.
                " ON CONFLICT (meter_id, bucket) DO UPDATE"
                " SET quantity = energy_month.quantity + EXCLUDED.quantity,"
                " readings = EXCLUDED.readings, expected_readings = EXCLUDED.expected_readings, coverage = 1",
                rows,
            )
    return len(rows)


@dataclass(frozen=True, slots=True)
class Accounting:
    url: str  # as a member of parkenergy_grafana only
    owner_url: str
    wide: TimeRange  # a year of data and the forecast months after it
    run_at: datetime
    variables: dict[str, VariableValue]


def _copy_database(pg_server: EmbeddedPostgres, source: str, name: str) -> str:
    deadline = time.monotonic() + 30
    with psycopg.connect(pg_server.url, autocommit=True) as conn:
        while True:
            try:
                conn.execute(
                    sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                        sql.Identifier(name), sql.Identifier(source)
                    )
                )
                break
            except psycopg.errors.ObjectInUse:  # a session on the source is closing
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
    return pg_server.url_for(name)


@pytest.fixture(scope="module")
def data(simulated_park: SimulatedPark, pg_server: EmbeddedPostgres) -> Iterator[Accounting]:
    name = f"test_dash_acc_{uuid.uuid4().hex[:12]}"
    source = psycopg.conninfo.conninfo_to_dict(simulated_park.database_url)["dbname"]
    url = _copy_database(pg_server, str(source), name)
    try:
        assert extend_history(url, simulated_park) > 0
        run_at = simulated_park.run_at + timedelta(seconds=5)
        with psycopg.connect(url, autocommit=True) as conn:
            outcome = run_job(conn, "forecast", run_at)
            assert outcome.status == "ok", outcome.summary
            assert conn.execute("SELECT count(*) FROM api.intensity_forecast").fetchone() != (0,)
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN IN ROLE parkenergy_grafana").format(sql.Identifier(name))
            )
        end = run_at.astimezone(UTC)
        wide = TimeRange(end - timedelta(days=400), end + timedelta(days=400))
        grafana_url = make_conninfo(url, user=name)
        with psycopg.connect(grafana_url, autocommit=True) as conn:
            variables = resolve_variables(conn, wide)
        yield Accounting(grafana_url, url, wide, run_at, variables)
    finally:
        pg_server.drop_database(name)
        with psycopg.connect(pg_server.url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))


# -- helpers ------------------------------------------------------------------------------------


def panel_json(where: str) -> dict[str, Any]:
    uid, rest = where.split("/", 1)
    panel_id = int(rest.split(":", 1)[0])
    board = next(b for b in dashboard_models() if b["uid"] == uid)
    return next(p for p in board["panels"] if p["id"] == panel_id)


def unit_of(panel: dict[str, Any], column: str) -> str | None:
    for override in panel["fieldConfig"].get("overrides", []):
        if override["matcher"] == {"id": "byName", "options": column}:
            for prop in override["properties"]:
                if prop["id"] == "unit":
                    return str(prop["value"])
    unit = panel["fieldConfig"].get("defaults", {}).get("unit")
    return None if unit is None else str(unit)


def rows_of(
    conn: psycopg.Connection[Any],
    query: GrafanaQuery,
    time_range: TimeRange,
    variables: dict[str, VariableValue],
    now: datetime,
) -> list[dict[str, Any]]:
    description, rows = run_query(conn, query, time_range, variables, timescaledb=False, now=now)
    names = [d.name for d in description]
    return [dict(zip(names, row, strict=True)) for row in rows]


def query_of(panel: Panel) -> GrafanaQuery:
    return next(q for q in ACCOUNTING_QUERIES if q.sql == panel.sql)


def _close(a: float | None, b: float | None) -> bool:
    assert a is not None and b is not None
    return abs(float(a) - float(b)) <= 1e-9 * max(1.0, abs(float(b)))


# -- tests ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("query", ACCOUNTING_QUERIES, ids=[q.where for q in ACCOUNTING_QUERIES])
def test_accounting_query_returns_what_its_panel_needs(data: Accounting, query: GrafanaQuery) -> None:
    with psycopg.connect(data.url, autocommit=True) as conn:
        description, rows = run_query(
            conn, query, data.wide, data.variables, timescaledb=False, now=data.run_at
        )
    check_result(query, description, rows)
    if query.shape in ("alert", "variable", "annotation"):
        return
    panel = panel_json(query.where)
    for d in description:
        if d.name in FIGURE_UNITS:
            assert unit_of(panel, d.name) == FIGURE_UNITS[d.name], f"{query.where}: unit of {d.name}"


def test_selection_intensity_of_all_enterprises_is_the_city(data: Accounting) -> None:
    """Σ energy / Σ value added over the enterprise rows = the city row; path and base likewise."""
    with psycopg.connect(data.url, autocommit=True) as conn:
        series = rows_of(conn, query_of(overview.SELECTION_INTENSITY), data.wide, data.variables, data.run_at)
        city = {
            r[0]: r[1:]
            for r in conn.execute(
                "SELECT (period_end::timestamp AT TIME ZONE 'Asia/Shanghai'), intensity, base_2022,"
                " path_value FROM api.intensity"
                " WHERE level = 'city' AND period_type = 'rolling12' AND variant = 'gross'"
            )
        }
    assert len(series) >= 3
    for row in series:
        intensity, base, path = city[row["time"]]
        assert _close(row["intensity"], intensity)
        assert _close(row["base_2022"], base)
        assert _close(row["path_value"], path)
        assert _close(row["target_2027"], 0.9 * base)


def test_energy_total_is_the_city_total(data: Accounting) -> None:
    with psycopg.connect(data.url, autocommit=True) as conn:
        (total,) = rows_of(conn, query_of(overview.ENERGY_TOTAL), data.wide, data.variables, data.run_at)
        expected = conn.execute(
            "SELECT sum(energy_tce_gross), sum(co2_t) FROM api.energy_tce_month"
            " WHERE level = 'city' AND bucket BETWEEN %s AND %s",
            (data.wide.start, data.wide.end),
        ).fetchone()
    assert expected is not None
    assert _close(total["energy_tce"], expected[0])
    assert _close(total["co2_t"], expected[1])


def test_inspector_and_alert_agree_on_who_is_above_the_path(data: Accounting) -> None:
    """The rule's breaching enterprises (value > 0) are the inspector's, for the rule's variant."""
    variables = {**data.variables, "variant": VariableValue((alerts.TARGET_VARIANT,), multi=False)}
    with psycopg.connect(data.url, autocommit=True) as conn:
        panel = rows_of(conn, query_of(inspector.ABOVE_PATH), data.wide, variables, data.run_at)
        rule = next(q for q in ACCOUNTING_QUERIES if q.where == f"alert/{alerts.TARGET_PATH_BREACH.uid}:A")
        fired = rows_of(conn, rule, data.wide, {}, data.run_at)
        evidence = {
            e.key: {
                (r["park"], r["enterprise"]): next(
                    v for k, v in r.items() if k not in ("park", "enterprise", "level")
                )
                for r in rows_of(
                    conn,
                    next(
                        q
                        for q in ACCOUNTING_QUERIES
                        if q.where == f"alert/{alerts.TARGET_PATH_BREACH.uid}:{e.query_ref}"
                    ),
                    data.wide,
                    {},
                    data.run_at,
                )
            }
            for e in alerts.TARGET_PATH_BREACH.evidence
        }
    assert fired, "the rule returns a row per enterprise and park with a path"
    breaching = {r["enterprise"] for r in fired if r["level"] == "enterprise" and r["above_path_pct"] > 0}
    assert breaching == {r["enterprise_code"] for r in panel}
    for r in fired:  # every evidence query has the same label rows, and the value follows from them
        key = (r["park"], r["enterprise"])
        intensity, path = evidence["intensity"][key], evidence["path"][key]
        assert _close(r["above_path_pct"], 100 * (intensity / path - 1))
        assert key in evidence["base"]
    for r in panel:
        assert r["status"] in ("at_risk", "off_track")
        assert r["intensity"] > r["path_value"]


def test_forecast_and_last_year_are_shown(data: Accounting) -> None:
    with psycopg.connect(data.url, autocommit=True) as conn:
        forecast = rows_of(conn, query_of(overview.ENERGY_FORECAST), data.wide, data.variables, data.run_at)
        years = rows_of(conn, query_of(overview.INTENSITY_FORECAST), data.wide, data.variables, data.run_at)
        versus = rows_of(
            conn, query_of(enterprise.ENERGY_VS_LAST_YEAR), data.wide, data.variables, data.run_at
        )
    future = [r for r in forecast if r["forecast_tce"] is not None]
    assert future and all(
        r["forecast_lower_tce"] <= r["forecast_tce"] <= r["forecast_upper_tce"] for r in future
    )
    assert any(r["observed_tce"] is not None for r in forecast)
    assert {r["level"] for r in years} >= {"city", "park"} and max(r["year"] for r in years) == 2027
    assert any(r["energy_tce_last_year"] is not None for r in versus)


@pytest.mark.parametrize(
    ("days", "bucket_s"), [(2, 900), (20, 3600), (60, 86400)], ids=["15min", "hour", "day"]
)
def test_one_enterprise_over_short_ranges(data: Accounting, days: int, bucket_s: int) -> None:
    """Every accounting panel runs for one enterprise; the load profiles read the view suited to the range."""
    end = data.run_at.astimezone(UTC) - timedelta(days=1)
    span = TimeRange(end - timedelta(days=days), end)
    one = sorted(data.variables["enterprise"].values)[0]
    variables = {**data.variables, "enterprise": VariableValue((one,), multi=True)}
    with psycopg.connect(data.url, autocommit=True) as conn:
        for query in ACCOUNTING_QUERIES:
            if query.shape != "alert":
                run_query(conn, query, span, variables, timescaledb=False, now=data.run_at)
        load = rows_of(conn, query_of(enterprise.ELECTRIC_LOAD), span, variables, data.run_at)
    assert load and all(r["metric"].split(" ")[-1] for r in load)
    times = sorted({r["time"] for r in load})
    # $__interval is 5 min here: the rows are the view's own buckets.
    assert min(float(b - a) for a, b in itertools.pairwise(times)) == bucket_s  # epoch seconds


def test_time_bucket_form_of_accounting_series_expands() -> None:
    series: Sequence[GrafanaQuery] = [q for q in ACCOUNTING_QUERIES if "$__timeGroup" in q.sql]
    assert series
    span = TimeRange(datetime(2025, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC))
    values = {
        "enterprise": VariableValue(("x",), multi=True),
        "park": VariableValue(("p",), multi=True),
        "variant": VariableValue(("gross",), multi=False),
    }
    for query in series:
        assert "time_bucket('21600.000s'," in expand(
            query.sql, span, INTERVAL, timescaledb=True, variables=values
        )
