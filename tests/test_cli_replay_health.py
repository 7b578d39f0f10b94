"""The command line, quarantine replay after a registry fix, and the health endpoints."""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from collector.health import HealthServer
from parkenergy.cli import app
from tests.golden import REGISTRY_CSV
from tests.harness import Publisher, collector_config, prepare_database, running_collector, scalar, wait_for

E1 = "91420700MA49ABCD1X"
runner = CliRunner()


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """The CLI points the root logger at the runner's stream, which closes after each call."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def _commands(group: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [prefix]
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            found += _commands(command, (*prefix, name))
        else:
            found.append((*prefix, name))
    return found


@pytest.mark.parametrize("command", _commands(typer.main.get_command(app)), ids=" ".join)
def test_every_command_has_help(command: tuple[str, ...]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


def test_registry_load_reports_bad_rows_with_lines_and_loads_nothing(
    database_url: str, tmp_path: Path
) -> None:
    env = {"DATABASE_URL": database_url}
    assert runner.invoke(app, ["db", "migrate"], env=env).exit_code == 0
    bad = tmp_path / "bad.csv"
    lines = REGISTRY_CSV.read_text("utf-8").splitlines()
    lines[2] = lines[2].replace(",natural_gas,", ",moonshine,")
    bad.write_text("\n".join(lines) + "\n", "utf-8")
    result = runner.invoke(app, ["registry", "load", str(bad)], env=env)
    assert result.exit_code == 2
    assert "bad.csv:3" in result.output and "moonshine" in result.output
    assert scalar(database_url, "SELECT count(*) FROM registry.meter") == 0
    good = runner.invoke(app, ["registry", "load", str(REGISTRY_CSV)], env=env)
    assert good.exit_code == 0, good.output
    listed = runner.invoke(app, ["registry", "list", "--enterprise", E1, "--json"], env=env)
    codes = sorted(json.loads(line)["meter_code"] for line in listed.stdout.splitlines())
    assert codes == ["EL01", "GAS01", "PV01", "PWR01", "ST01"]
    assert runner.invoke(app, ["db", "status"], env=env).exit_code == 0


def test_replay_after_registry_fix_stores_what_now_validates(
    database_url: str, mqtt_url: str, tmp_path: Path
) -> None:
    prepare_database(database_url)
    topic_new_meter = f"parkenergy/v1/{E1}/EL02"
    naive = b'{"ts": "2026-03-01T08:00:00", "value": 5.0}'
    readings = (
        b'{"readings": [{"ts": "2026-03-01T08:00:00+08:00", "value": 10.0},'
        b' {"ts": 1772324100000, "value": 11.0}]}'
    )
    with running_collector(collector_config(database_url, mqtt_url)) as collector, Publisher(mqtt_url) as pub:
        pub.publish_all([(topic_new_meter, readings), (f"parkenergy/v1/{E1}/EL01", naive)])
        wait_for(lambda: collector.committed_messages >= 2, what="2 messages committed")
    assert scalar(database_url, "SELECT count(*) FROM ingest.quarantine") == 2

    env = {"DATABASE_URL": database_url}
    summary = runner.invoke(app, ["quarantine", "list", "--summary", "--json"], env=env)
    by_reason = {row["reason"]: row["messages"] for row in map(json.loads, summary.stdout.splitlines())}
    assert by_reason == {"registry.unknown_meter": 1, "timestamp.naive": 1}

    fixed = tmp_path / "registry.csv"
    fixed.write_text(
        REGISTRY_CSV.read_text("utf-8")
        + f"GDKFQ,葛店经开区,{E1},鄂州光电芯片有限公司,3976,"
        + "EL02,electricity,kWh,register,1,,900,500,consumption\n",
        "utf-8",
    )
    assert runner.invoke(app, ["registry", "load", str(fixed)], env=env).exit_code == 0
    dry = runner.invoke(app, ["quarantine", "replay", "--dry-run"], env=env)
    assert "1 would store" in dry.stdout and "1 still failing" in dry.stdout
    assert scalar(database_url, "SELECT count(*) FROM api.reading WHERE meter_code = 'EL02'") == 0

    replay = runner.invoke(app, ["quarantine", "replay"], env=env)
    assert replay.exit_code == 0, replay.output
    assert "examined 2 rows: 1 stored (2 new readings), 1 still failing" in replay.stdout
    assert scalar(database_url, "SELECT count(*) FROM api.reading WHERE meter_code = 'EL02'") == 2
    results = scalar(
        database_url, "SELECT array_agg(replay_result ORDER BY quarantine_id) FROM api.quarantine"
    )
    assert results == ["stored", "timestamp.naive"]
    again = runner.invoke(app, ["quarantine", "replay"], env=env)
    assert "examined 1 rows: 0 stored" in again.stdout  # rows already stored are not replayed
    assert scalar(database_url, "SELECT count(*) FROM ingest.quarantine") == 2  # nothing deleted


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        with exc:  # an HTTPError holds the open response: close it, or gc warns later
            return exc.code, exc.read().decode()


def test_health_and_metrics_endpoints(database_url: str, mqtt_url: str) -> None:
    prepare_database(database_url)
    with running_collector(collector_config(database_url, mqtt_url)) as collector:
        server = HealthServer("127.0.0.1", 0, collector.metrics.registry, collector.health)
        server.start()
        try:
            base = f"http://127.0.0.1:{server.port}"
            with Publisher(mqtt_url) as pub:
                pub.publish_all([(f"parkenergy/v1/{E1}/EL01", b'{"ts": "2026-03-01T08:00:00", "value": 1}')])
            wait_for(lambda: collector.committed_messages >= 1, what="a commit")
            status, body = _get(base + "/healthz")
            assert status == 200
            health = json.loads(body)
            assert health["mqtt_connected"] and health["database_ok"] and health["last_commit"]
            status, metrics = _get(base + "/metrics")
            assert status == 200
            assert "parkenergy_collector_messages_total 1.0" in metrics
            assert 'parkenergy_collector_quarantined_total{reason="timestamp.naive"} 1.0' in metrics
            assert _get(base + "/nope")[0] == 404
        finally:
            server.stop()
