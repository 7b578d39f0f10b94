"""``parkenergy demo`` end to end at a small size, on a private database and broker.

The demo runs through the real CLI (5 enterprises, three months to today's midnight, so
that a second run sees the same window), its ``--json`` summary is compared exactly with
figures computed here from the ``api`` views, its files are checked, and a second run on
the same database must change no count. ``--keep-running`` runs in a subprocess: its
``/healthz`` answers, the live simulator's readings arrive, and SIGTERM ends it with 0.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import check_jsonschema
import jsonschema
import psycopg
import pytest
import yaml
from click.testing import Result
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from typer.testing import CliRunner

from analytics.accounting import ASSESSED_VARIANT
from analytics.detection import GROUPS
from parkenergy.cli import app
from parkenergy.demo import covers_month
from parkenergy.embedded import EmbeddedBroker, EmbeddedPostgres, find_mosquitto
from parkenergy.pipeline import DETECTOR_REPLAY_DAYS
from reports.monthly import Month, last_complete_month
from simulators.timebase import CST
from tests.harness import wait_for
from tests.simulated_park import simulation_window

ROOT = Path(__file__).parent.parent
ENTERPRISES = 5
SEED = 7

runner = CliRunner()


@pytest.fixture(scope="module")
def demo_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    if find_mosquitto() is None:
        pytest.skip("no mosquitto binary on PATH (apt-get install mosquitto)")
    server = EmbeddedBroker(tmp_path_factory.mktemp("demo-mqtt"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def demo_db(pg_server: EmbeddedPostgres) -> Iterator[str]:
    url = pg_server.create_database("demo_e2e")
    try:
        yield url
    finally:
        if pg_server.is_running():
            pg_server.drop_database("demo_e2e")


def _env(url: str, mqtt_url: str, home: Path, client_id: str) -> dict[str, str]:
    return {
        "DATABASE_URL": url,
        "MQTT_URL": mqtt_url,
        "MQTT_CLIENT_ID": client_id,
        "PARKENERGY_HOME": str(home),
        "COLLECTOR_HTTP_PORT": "0",
        "COLUMNS": "200",
    }


@pytest.fixture(scope="module")
def window() -> tuple[datetime, datetime]:
    return simulation_window()


def _invoke(args: list[str], env: dict[str, str]) -> Result:
    """``parkenergy ARGS``, with the root logger as it was before (the command's handler writes
    to the runner's stream, which is closed after the call)."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        return runner.invoke(app, args, env=env)
    finally:
        root.handlers[:], root.level = handlers, level


def _run_demo(env: dict[str, str], out: Path, window: tuple[datetime, datetime]) -> dict[str, Any]:
    start, end = window
    args = ["demo", "-n", str(ENTERPRISES), "--seed", str(SEED), "--out", str(out), "--json"]
    args += ["--start", start.isoformat(), "--end", end.isoformat()]
    result = _invoke(args, env)
    assert result.exit_code == 0, result.output
    document: dict[str, Any] = json.loads(result.stdout)
    return document


@pytest.fixture(scope="module")
def first_run(
    demo_db: str,
    demo_broker: EmbeddedBroker,
    tmp_path_factory: pytest.TempPathFactory,
    window: tuple[datetime, datetime],
) -> tuple[dict[str, Any], Path, dict[str, str]]:
    base = tmp_path_factory.mktemp("demo")
    env = _env(demo_db, demo_broker.url, base / "home", "demo-e2e")
    return _run_demo(env, base / "out", window), base / "out", env


def _rows(url: str, query: str | sql.Composed, params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(query, params).fetchall()  # type: ignore[arg-type]


VIEWS = (
    "reading",
    "quarantine",
    "alert",
    "alert_event",
    "enterprise",
    "meter",
    "meter_event",
    "economics_revision",
)


def _counts(url: str) -> dict[str, int]:
    """Rows of each view of :data:`VIEWS`."""
    query = sql.SQL("SELECT count(*) FROM {}")
    return {v: int(_rows(url, query.format(sql.Identifier("api", v)))[0][0]) for v in VIEWS}


def test_summary_equals_the_api_views(
    first_run: tuple[dict[str, Any], Path, dict[str, str]], demo_db: str, window: tuple[datetime, datetime]
) -> None:
    summary, _, _ = first_run
    end = window[1]
    month = (end.replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
    assert summary["period"] == month and summary["variant"] == ASSESSED_VARIANT.value

    ytd = (
        "SELECT level, park_code, enterprise_code, intensity, base_2022, change_vs_2022, path_value,"
        " target_2027, status, coverage, low_coverage FROM api.intensity"
        " WHERE period_type = 'ytd' AND period = %s AND variant = %s"
    )
    rows = _rows(demo_db, ytd, (month, ASSESSED_VARIANT.value))
    areas = {(r[0], r[1]): r for r in rows if r[0] in ("city", "park")}
    assert len(areas) >= 2 and ("city", None) in areas
    assert [(a["level"], a["park_code"]) for a in summary["areas"]] == sorted(
        areas, key=lambda k: (k[0] == "park", k[1] or "")
    )
    for a in summary["areas"]:
        r = areas[(a["level"], a["park_code"])]
        shown = (
            a["intensity_tce_per_10k_yuan"],
            a["base_2022_tce_per_10k_yuan"],
            a["change_vs_2022"],
            a["path_tce_per_10k_yuan"],
            a["target_2027_tce_per_10k_yuan"],
            a["status"],
            a["coverage"],
            a["low_coverage"],
        )
        assert shown == r[3:11], a
        assert a["intensity_tce_per_10k_yuan"] is not None and a["status"] in (
            "on_track",
            "at_risk",
            "off_track",
        )
        # Three months of history make no forecast (24 usable months needed).
        assert a["forecast_2027_tce_per_10k_yuan"] is None

    enterprises = [r for r in rows if r[0] == "enterprise"]
    assert len(enterprises) == ENTERPRISES
    worst = sorted((r for r in enterprises if r[5] is not None), key=lambda r: (-r[5], r[2]))[:5]
    assert [(e["enterprise_code"], e["change_vs_2022"], e["status"]) for e in summary["off_track"]] == [
        (r[2], r[5], r[8]) for r in worst
    ]
    low = sorted((r for r in enterprises if r[10]), key=lambda r: (r[9], r[2]))
    assert [(e["enterprise_code"], e["coverage"]) for e in summary["coverage"]["low_coverage"]] == [
        (r[2], r[9]) for r in low
    ]
    assert summary["coverage"]["city"] == areas[("city", None)][9]

    open_alerts = dict(
        _rows(demo_db, "SELECT severity, count(*) FROM api.alert WHERE state <> 'resolved' GROUP BY severity")
    )
    assert summary["alerts"]["by_severity"] == {
        s: open_alerts.get(s, 0) for s in ("critical", "warning", "info")
    }
    assert sum(a["alerts"] for a in summary["alerts"]["by_kind"]) == sum(open_alerts.values())
    # The detectors were replayed once a day and at the end: the alert history is not empty.
    replayed = _rows(
        demo_db, "SELECT count(DISTINCT job), count(*) FROM analytics.job_run WHERE job LIKE 'detect-%%'"
    )
    assert replayed[0] == (len(GROUPS), len(GROUPS) * (DETECTOR_REPLAY_DAYS + 1))
    assert _rows(demo_db, "SELECT count(*) FROM api.alert")[0][0] > 0

    quarantine = dict(_rows(demo_db, "SELECT reason, count(*) FROM api.quarantine GROUP BY reason"))
    assert summary["coverage"]["quarantine"] == quarantine and quarantine
    readings = _rows(demo_db, "SELECT count(*) FROM api.reading")[0][0]
    assert summary["coverage"]["readings"] == readings == summary["run"]["ingest"]["stored"]
    assert summary["coverage"]["enterprises"] == ENTERPRISES


def _compose_schema() -> dict[str, Any]:
    vendor = Path(check_jsonschema.__file__).parent / "builtin_schemas" / "vendor"
    raw = (vendor / "compose-spec.json").read_bytes()
    assert (
        hashlib.sha256(raw).hexdigest()
        == (vendor / "sha256" / "compose-spec.sha256").read_text("utf-8").split()[0]
    )
    schema: dict[str, Any] = json.loads(raw)
    return schema


def test_files_report_and_grafana(
    first_run: tuple[dict[str, Any], Path, dict[str, str]], demo_db: str
) -> None:
    summary, out, _ = first_run
    paths = summary["paths"]
    assert Path(paths["sim"]) == out.absolute() / "sim"
    for name in ("registry.csv", "meter_events.csv", "faults.jsonl", "economics/value_added.csv"):
        assert (out / "sim" / name).is_file(), name
    report = [Path(p) for p in paths["report"]]
    assert sorted(p.suffix for p in report) == [".html", ".pdf"]
    for path in report:
        assert path.parent == out.absolute() and path.stat().st_size > 0
    assert report[[p.suffix for p in report].index(".pdf")].read_bytes().startswith(b"%PDF")
    grafana = Path(paths["grafana"])
    assert (grafana / "datasources" / "parkenergy.yaml").is_file()
    assert list((grafana / "dashboards").rglob("*.json")) and (grafana / "alerting" / "rules.yaml").is_file()
    # The datasource matches the database: no TimescaleDB on the test server.
    datasource = yaml.safe_load((grafana / "datasources" / "parkenergy.yaml").read_text("utf-8"))
    assert datasource["datasources"][0]["jsonData"]["timescaledb"] is summary["run"]["timescaledb"] is False

    compose = yaml.safe_load(Path(paths["grafana_compose"]).read_text("utf-8"))
    errors = [e.message for e in jsonschema.Draft202012Validator(_compose_schema()).iter_errors(compose)]
    assert errors == []
    grafana_service = compose["services"]["grafana"]
    main = yaml.safe_load((ROOT / "docker-compose.yml").read_text("utf-8"))
    assert grafana_service["image"] == main["services"]["grafana"]["image"]
    env = grafana_service["environment"]
    info = conninfo_to_dict(demo_db)
    assert env["GRAFANA_DB_HOST"] == f"{info['host']}:{info['port']}" and env["GRAFANA_DB_NAME"] == "demo_e2e"
    # Every ${VAR} the provisioning files use is set by the compose file.
    used = {
        m for f in grafana.rglob("*.yaml") for m in re.findall(r"\$\{([A-Z0-9_]+)\}", f.read_text("utf-8"))
    }
    assert used and used <= set(env)


def test_a_second_run_changes_no_count(
    first_run: tuple[dict[str, Any], Path, dict[str, str]], demo_db: str, window: tuple[datetime, datetime]
) -> None:
    summary, out, env = first_run
    before = _counts(demo_db)
    assert before["reading"] > 0 and before["alert"] > 0
    again = _run_demo(env, out, window)
    assert _counts(demo_db) == before
    assert again["run"]["ingest"]["stored"] == summary["run"]["ingest"]["stored"]
    assert {k: v for k, v in again.items() if k != "run"} == {k: v for k, v in summary.items() if k != "run"}


def test_bad_windows_fail_with_one_line_and_exit_code_2(tmp_path: Path) -> None:
    env = {"PARKENERGY_HOME": str(tmp_path / "home")}
    tomorrow = (datetime.now(CST) + timedelta(days=1)).date().isoformat()
    for args, message in (
        (["--start", "2021-12-31"], "is before the simulation's epoch"),
        (["--end", tomorrow], "is in the future"),
        (["--start", "2024-06-01", "--end", "2024-05-01"], "must be after --start"),
        (["--start", "soon"], "not a date or time: 'soon'"),
    ):
        result = _invoke(["demo", *args], env)
        assert result.exit_code == 2, (args, result.output)
        assert result.output.startswith("error: ") and message in result.output, (args, result.output)
        assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "home").exists()  # refused before any server started


def _lines(stream: Any, into: queue.Queue[str]) -> None:
    for line in iter(stream.readline, ""):
        into.put(line)


def _health_url(
    proc: subprocess.Popen[str], lines: queue.Queue[str], seen: list[str], timeout_s: float = 90.0
) -> str:
    """The /healthz URL the running demo prints; what it printed before goes to ``seen``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            seen.append(lines.get(timeout=1))
        except queue.Empty:
            continue
        found = re.search(r"collector health: (http://\S+/healthz)", seen[-1])
        if found:
            return found.group(1)
    raise AssertionError(f"no health URL within {timeout_s} s (exit code {proc.poll()})")


def test_keep_running_serves_health_and_live_readings_until_sigterm(
    pg_server: EmbeddedPostgres, mqtt_url: str, tmp_path: Path
) -> None:
    url = pg_server.create_database("demo_live")
    try:
        end = datetime.now(CST).replace(microsecond=0) - timedelta(hours=1)
        script = Path(sys.executable).parent / "parkenergy"
        start = (end - timedelta(days=2)).isoformat()
        options = f"-n 1 --lang en --keep-running --speed 3600 --start {start} --end {end.isoformat()}"
        args = [str(script), "demo", "--out", str(tmp_path / "out"), *options.split()]
        env = {**os.environ, **_env(url, mqtt_url, tmp_path / "home", "demo-live")}
        with subprocess.Popen(
            args,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            text=True,
        ) as proc:
            lines: queue.Queue[str] = queue.Queue()
            threading.Thread(target=_lines, args=(proc.stdout, lines), daemon=True).start()
            try:
                seen: list[str] = []
                health = _health_url(proc, lines, seen)
                printed = "".join(seen)
                for text in ("Unresolved alerts", "Data coverage", "Written", "Running"):
                    assert text in printed, (text, printed)
                with urllib.request.urlopen(health, timeout=5) as response:
                    assert response.status == 200 and json.loads(response.read())["mqtt_connected"] is True
                wait_for(
                    lambda: _rows(url, "SELECT count(*) FROM api.reading WHERE ts >= %s", (end,))[0][0] > 0,
                    30,
                    "readings of the live simulator",
                    interval_s=0.5,
                )
                proc.send_signal(signal.SIGTERM)
                assert proc.wait(60) == 0
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(10)
    finally:
        if pg_server.is_running():
            pg_server.drop_database("demo_live")


def test_the_report_is_of_a_month_the_window_covers_whole() -> None:
    """A window starting mid-month gets no report of that month (docs/demo.md, step 5)."""
    end = datetime(2026, 10, 10, tzinfo=CST)
    month = last_complete_month(end)
    assert month == Month(2026, 9)
    assert covers_month(datetime(2026, 9, 1, tzinfo=CST), month)
    assert covers_month(datetime(2026, 8, 31, 16, tzinfo=UTC), month)  # 09-01 00:00 +08
    assert not covers_month(datetime(2026, 9, 15, tzinfo=CST), month)
    assert not covers_month(datetime(2026, 8, 31, 16, 0, 1, tzinfo=UTC), month)
