"""Dashboard benchmark: every panel query of the built dashboards over a year of a simulated park.

A script, not a test: it prints figures measured in one run (docs/benchmarks.md, "Dashboard
benchmark").

1. Starts a private embedded PostgreSQL, builds the simulated park (``--enterprises``, seed
   ``--seed``) and loads its registry and meter events.
2. Readings: the simulator's generator for ``--days`` days up to today's local midnight,
   written by binary COPY straight into ``ingest.reading`` (what the collector stores:
   gateway-batch readings without the duplicates; the first value of a (meter, time) kept).
   This skips MQTT and the collector, which the ingest benchmark measures, and is about an
   order of magnitude faster. Gateway status changes go to ``ingest.gateway_event`` /
   ``gateway_status``.
3. Runs the ``energy`` job, imports the economics files (value added, deflators, 2022
   baseline, output) and runs the ``forecast`` job.
4. Expands every panel, annotation, variable and alert query of the built models as Grafana
   would (tests/grafana_sql.py, ``timescaledb: false``) for the last ``--days`` days,
   ``$__interval`` = ``--interval-h``, variant ``gross``, once with every park, industry and
   enterprise selected and once with one enterprise, and runs each once to warm up and then
   ``--runs`` times as a member of ``parkenergy_grafana``. Prints p50 / p95 / max per query
   and the worst p95; goal < 300 ms p95 each (issue 6).

Always exits 0: a measurement, not a test.

    .venv/bin/python benchmarks/dashboards.py [--enterprises 40] [--days 365] [--runs 20]
"""

from __future__ import annotations

import argparse
import io
import logging
import platform
import statistics
import struct
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

# This script's own directory would shadow the analytics and dashboards packages when run as a file.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import psycopg  # noqa: E402
from psycopg.conninfo import make_conninfo  # noqa: E402

from analytics.economics_file import (  # noqa: E402
    read_baseline_file,
    read_deflators_file,
    read_output_file,
    read_value_added_file,
)
from analytics.economics_store import store_baseline, store_deflators, store_output, store_value_added  # noqa: E402
from analytics.jobs import run_job  # noqa: E402
from dashboards import alerts, catalogue  # noqa: E402
from dashboards.datasource import DATASOURCE_UID  # noqa: E402
from dashboards.messages import Lang  # noqa: E402
from parkdata.migrate import migrate  # noqa: E402
from parkdata.registry_file import read_meter_events_file, read_registry_file  # noqa: E402
from parkdata.registry_store import store_meter_events, store_registry  # noqa: E402
from parkenergy.embedded import EmbeddedPostgres  # noqa: E402
from simulators import FaultRates, Simulation, SimulationConfig  # noqa: E402
from simulators.timebase import CST  # noqa: E402
from tests.grafana_sql import TimeRange, VariableValue, expand  # noqa: E402

GOAL_MS = 300.0
_PG_EPOCH_S = 946_684_800  # 2000-01-01T00:00:00Z
_ROW = np.dtype(
    [("n", ">i2"), ("l1", ">i4"), ("m", ">i4"), ("l2", ">i4"), ("ts", ">i8"), ("l3", ">i4"), ("v", ">f8"),
     ("l4", ">i4"), ("rx", ">i8")]
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Query:
    where: str
    sql: str


def _copy_block(meter_ids: np.ndarray, ts: np.ndarray, values: np.ndarray, received_s: float) -> bytes:
    rows = np.zeros(len(ts), dtype=_ROW)
    rows["n"], rows["l1"], rows["l2"], rows["l3"], rows["l4"] = 4, 4, 8, 8, 8
    rows["m"] = meter_ids
    rows["ts"] = (ts - _PG_EPOCH_S) * 1_000_000
    rows["v"] = values
    rows["rx"] = int((received_s - _PG_EPOCH_S) * 1_000_000)
    return rows.tobytes()


def load_readings(url: str, sim: Simulation) -> int:
    """The simulation's stored readings by binary COPY; gateway status changes as events."""
    park = sim.park
    with psycopg.connect(url) as conn:
        ids = {
            (str(e), str(m)): int(i)
            for e, m, i in conn.execute(
                "SELECT e.enterprise_code, m.meter_code, m.meter_id FROM registry.meter m"
                " JOIN registry.enterprise e USING (enterprise_id)"
            )
        }
        enterprise_ids: dict[str, int] = {
            str(c): int(i)
            for c, i in conn.execute("SELECT enterprise_code, enterprise_id FROM registry.enterprise")
        }
        meter_id = np.array([ids[park.enterprises[m.enterprise_index].code, m.code] for m in park.meters])
        events: list[tuple[int, str, datetime]] = []
        received_s = time.time()
        assert sim.last_day is not None
        # Staged first: a (meter, time) may come twice (a late burst, a fault); the first value stays.
        conn.execute("CREATE TEMP TABLE staged (LIKE ingest.reading INCLUDING DEFAULTS) ON COMMIT DROP")
        with conn.cursor().copy(
            "COPY staged (meter_id, ts, value, received_at) FROM STDIN (FORMAT binary)"
        ) as cp:
            cp.write(b"PGCOPY\n\xff\r\n\0" + bytes(8))
            for day in range(sim.lookback_day, sim.last_day):
                out = sim.day(day)
                keep = ~out.duplicate
                meters, ts, values = meter_id[out.meter[keep]], out.ts[keep], out.value[keep]
                _, first = np.unique(meters.astype(np.int64) * (1 << 34) + ts, return_index=True)
                first = np.sort(first)
                cp.write(_copy_block(meters[first], ts[first], values[first], received_s))
                for change in out.statuses:
                    code = park.enterprises[change.enterprise].code
                    status = "online" if change.online else "offline"
                    events.append((enterprise_ids[code], status, datetime.fromtimestamp(change.at_s, UTC)))
            cp.write(struct.pack(">h", -1))
        cur = conn.execute(
            "INSERT INTO ingest.reading (meter_id, ts, value, received_at)"
            " SELECT meter_id, ts, value, received_at FROM staged ON CONFLICT DO NOTHING"
        )
        total = cur.rowcount
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO ingest.gateway_event (enterprise_id, status, received_at) VALUES (%s, %s, %s)",
                events,
            )
            cur.execute(
                "INSERT INTO ingest.gateway_status (enterprise_id, status, changed_at)"
                " SELECT DISTINCT ON (enterprise_id) enterprise_id, status, received_at"
                " FROM ingest.gateway_event ORDER BY enterprise_id, received_at DESC"
            )
    return total


def import_economics(url: str, directory: Path) -> None:
    with psycopg.connect(url) as conn:
        store_deflators(conn, read_deflators_file(directory / "deflators.csv"), "benchmark")
        store_value_added(conn, read_value_added_file(directory / "value_added.csv"), "benchmark")
        store_baseline(conn, read_baseline_file(directory / "baseline_2022.csv"), "benchmark")
        store_output(conn, read_output_file(directory / "output.csv"), "benchmark")


def model_queries() -> list[Query]:
    """Every panel, annotation, variable and alert query of the built models (Chinese)."""
    found: list[Query] = []
    variables: dict[str, Query] = {}
    for board in (alerts.to_plain(d) for d in catalogue.build_all(Lang.ZH)):
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                found.append(Query(f"{board['uid']}/{panel['id']} {panel['title']}", target["rawSql"]))
        for annotation in board["annotations"].get("list", []):
            found.append(
                Query(f"{board['uid']}/annotation {annotation['name']}", annotation["target"]["rawSql"])
            )
        for variable in board["templating"]["list"]:
            if variable["type"] == "query":
                variables[variable["name"]] = Query(f"variable {variable['name']}", variable["query"])
    for group in alerts.GROUPS:
        plain = alerts.to_plain(alerts.build_group(group, catalogue.FOLDER_UID, Lang.ZH))
        for rule in plain["rules"]:
            for q in rule["data"]:
                if q["datasourceUid"] == DATASOURCE_UID:
                    found.append(Query(f"alert {rule['uid']}:{q['refId']}", q["model"]["rawSql"]))
    return found + list(variables.values())


def measure(conn: psycopg.Connection[Any], expanded: str, runs: int) -> tuple[int, list[float]]:
    rows = len(conn.execute(expanded).fetchall())  # warm-up
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        conn.execute(expanded).fetchall()
        times.append((time.perf_counter() - started) * 1000)
    return rows, times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--enterprises", type=int, default=40)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--interval-h", type=float, default=12.0, help="$__interval [h]")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    end = datetime.now(CST).replace(hour=0, minute=0, second=0, microsecond=0)
    start = end - timedelta(days=args.days)
    config = SimulationConfig(
        enterprises=args.enterprises, seed=args.seed, start=start, end=end, rates=FaultRates()
    )
    sim = Simulation(config)
    with tempfile.TemporaryDirectory(prefix="bench-dash-") as tmp:
        base = Path(tmp)
        base.chmod(0o711)
        server = EmbeddedPostgres(base / "pg")
        server.initdb()
        server.start()
        try:
            url = server.create_database("bench")
            sim.write_registry(base / "registry")
            sim.write_economics(base / "economics")
            with psycopg.connect(url, autocommit=True) as conn:
                migrate(conn)
            with psycopg.connect(url) as conn:
                store_registry(conn, read_registry_file(base / "registry" / "registry.csv"))
                store_meter_events(conn, read_meter_events_file(base / "registry" / "meter_events.csv"))
            t0 = time.perf_counter()
            readings = load_readings(url, sim)
            t1 = time.perf_counter()
            with psycopg.connect(url, autocommit=True) as conn:
                energy = run_job(conn, "energy", end)
            t2 = time.perf_counter()
            import_economics(url, base / "economics")
            with psycopg.connect(url, autocommit=True) as conn:
                forecast = run_job(conn, "forecast", end + timedelta(seconds=1))
                conn.execute("ANALYZE")
                conn.execute("CREATE ROLE bench_grafana LOGIN IN ROLE parkenergy_grafana")
                meters = conn.execute("SELECT count(*) FROM registry.meter").fetchone()
                codes = [
                    str(r[0]) for r in conn.execute("SELECT enterprise_code FROM api.enterprise ORDER BY 1")
                ]
                parks = [str(r[0]) for r in conn.execute("SELECT park_code FROM api.park ORDER BY 1")]
                industries = [
                    str(r[0]) for r in conn.execute("SELECT DISTINCT industry_code FROM api.enterprise")
                ]
            t3 = time.perf_counter()
            out = io.StringIO()
            print(f"# Dashboard benchmark ({datetime.now(UTC):%Y-%m-%d}, {platform.machine()})", file=out)
            print(
                f"{args.enterprises} enterprises, {meters[0] if meters else '?'} meters, {args.days} days"
                f" ({start:%Y-%m-%d} to {end:%Y-%m-%d}), {readings} readings: generation and COPY"
                f" {t1 - t0:.1f} s, energy job {t2 - t1:.1f} s ({energy.status}), imports and forecast"
                f" {t3 - t2:.1f} s ({forecast.summary})",
                file=out,
            )
            span = TimeRange(start.astimezone(UTC), end.astimezone(UTC))
            interval = timedelta(hours=args.interval_h)
            selections = {
                "all": {
                    "park": VariableValue(tuple(parks), multi=True),
                    "industry": VariableValue(tuple(industries), multi=True),
                    "enterprise": VariableValue(tuple(codes), multi=True),
                    "variant": VariableValue(("gross",), multi=False),
                },
            }
            selections["one"] = {**selections["all"], "enterprise": VariableValue((codes[0],), multi=True)}
            results = []
            grafana = make_conninfo(url, user="bench_grafana")
            with psycopg.connect(grafana, autocommit=True) as conn:
                for query in model_queries():
                    for name, variables in selections.items():
                        if name == "one" and "$enterprise" not in query.sql:
                            continue
                        window = span
                        if query.where.startswith("alert "):
                            window = TimeRange(span.end - timedelta(minutes=10), span.end)
                        expanded = expand(query.sql, window, interval, timescaledb=False, variables=variables)
                        rows, times = measure(conn, expanded, args.runs)
                        q = statistics.quantiles(times, n=20)
                        results.append((query.where, name, rows, statistics.median(times), q[18], max(times)))
            print(file=out)
            print("| query | selection | rows | p50 ms | p95 ms | max ms |", file=out)
            print("|---|---|---:|---:|---:|---:|", file=out)
            for where, name, rows, p50, p95, worst in results:
                print(f"| {where} | {name} | {rows} | {p50:.1f} | {p95:.1f} | {worst:.1f} |", file=out)
            worst_row = max(results, key=lambda r: r[4])
            over = [r for r in results if r[4] >= GOAL_MS]
            print(file=out)
            print(
                f"Worst p95: {worst_row[4]:.1f} ms ({worst_row[0]}, {worst_row[1]});"
                f" goal < {GOAL_MS:.0f} ms: "
                + ("met" if not over else f"NOT met by {len(over)} of {len(results)}"),
                file=out,
            )
            sys.stdout.write(out.getvalue())
        finally:
            server.stop()


if __name__ == "__main__":
    main()
