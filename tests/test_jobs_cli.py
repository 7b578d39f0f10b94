"""``parkenergy analyze run|recompute`` against a real PostgreSQL."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from analytics.forecast import run as run_forecast
from analytics.jobs import get, jobs
from parkenergy.cli import app, main
from tests.test_energy_store import SHANGHAI_MIDNIGHT, insert, load, meter, total

runner = CliRunner()


def test_analyze_run_and_recompute(database_url: str, tmp_path: Path) -> None:
    env = {"DATABASE_URL": database_url}
    assert runner.invoke(app, ["db", "migrate"], env=env).exit_code == 0
    with psycopg.connect(database_url, autocommit=True) as conn:
        ids = load(conn, tmp_path, meter("EL"))
        insert(conn, ids["EL"], SHANGHAI_MIDNIGHT, [100.0 + 5 * i for i in range(9)])
    result = runner.invoke(app, ["analyze", "run", "energy"], env=env)
    assert result.exit_code == 0, result.output
    assert "energy: ok: energy: 1 meters" in result.output
    assert runner.invoke(app, ["analyze", "run", "nope"], env=env).exit_code == 2
    with psycopg.connect(database_url, autocommit=True) as conn:
        assert total(conn, "day", "EL") == 40.0
        conn.execute("DELETE FROM analytics.energy_15min")  # lost derived rows come back on demand
    start = (SHANGHAI_MIDNIGHT - timedelta(days=1)).isoformat()
    end = datetime(2025, 3, 1, tzinfo=UTC).isoformat()
    result = runner.invoke(
        app, ["analyze", "recompute", "--from", start, "--to", end, "--meter", "EL"], env=env
    )
    assert result.exit_code == 0, result.output
    assert "marked 1 meters dirty" in result.output
    with psycopg.connect(database_url, autocommit=True) as conn:
        assert total(conn, "15min", "EL") == 40.0
        assert conn.execute("SELECT count(*) FROM analytics.job_run WHERE status = 'ok'").fetchone() == (2,)
    bad = runner.invoke(app, ["analyze", "recompute", "--from", "2025-01-01", "--to", end], env=env)
    assert bad.exit_code != 0


def test_forecast_is_a_scheduled_job_and_runs_from_the_cli(database_url: str) -> None:
    forecast = get("forecast")
    assert forecast.interval_s == 3600.0 and forecast.function() is run_forecast
    assert [j.name for j in jobs()][:2] == ["energy", "forecast"]
    env = {"DATABASE_URL": database_url}
    assert runner.invoke(app, ["db", "migrate"], env=env).exit_code == 0
    result = runner.invoke(app, ["analyze", "run", "forecast"], env=env)
    assert result.exit_code == 0, result.output
    assert "forecast: ok: forecast run 1: 0 series forecast" in result.output
    with psycopg.connect(database_url, autocommit=True) as conn:
        runs = conn.execute("SELECT job, status FROM analytics.job_run").fetchall()
        stored = conn.execute("SELECT groups FROM accounting.forecast_run").fetchall()
    assert runs == [("forecast", "ok")] and stored == [(0,)]


def test_recompute_refuses_bad_times_with_the_option_named(database_url: str) -> None:
    env = {"DATABASE_URL": database_url}
    good = "2025-03-01T00:00+08:00"
    for args, message in (
        (["--from", "garbage", "--to", good], "error: --from 'garbage' is not an ISO 8601 time"),
        (["--from", good, "--to", "2025-03-02"], "error: --to '2025-03-02' has no UTC offset"),
        (
            ["--from", good, "--to", "2025-02-01T00:00+08:00"],
            "error: --to (2025-02-01T00:00:00+08:00) must be after",
        ),
    ):
        result = runner.invoke(app, ["analyze", "recompute", *args], env=env)
        assert result.exit_code == 2, result.output
        assert result.output.startswith(message) and len(result.output.strip().splitlines()) == 1, (
            result.output
        )


def test_the_command_reports_an_unreachable_database_and_bad_settings_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody:secret@127.0.0.1:1/parkenergy")
    monkeypatch.setattr(sys, "argv", ["parkenergy", "analyze", "run", "energy"])
    with pytest.raises(SystemExit) as exit_:
        main()
    assert exit_.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("error: database: connection failed:") and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and "secret" not in err

    monkeypatch.setattr(sys, "argv", ["parkenergy", "--log-level", "LOUD", "analyze", "run"])
    with pytest.raises(SystemExit) as exit_:
        main()
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.strip() == (
        "error: bad settings: log_level (LOG_LEVEL): String should match pattern"
        " '(?i)^(DEBUG|INFO|WARNING|ERROR|CRITICAL)$', got 'LOUD'"
    )
