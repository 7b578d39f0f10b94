"""``parkenergy alerts list|show|ack|resolve`` against a real PostgreSQL."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import psycopg
from typer.testing import CliRunner

from analytics.alert_store import apply_detection
from analytics.findings import Severity
from parkenergy.cli import app
from tests.test_alert_store import GAS, T0, detection, finding
from tests.test_energy_store import ENTERPRISE, load, meter

runner = CliRunner()


def test_list_show_ack_resolve(database_url: str, tmp_path: Path) -> None:
    env = {"DATABASE_URL": database_url, "COLUMNS": "200"}  # a wide terminal: no wrapped cells
    assert runner.invoke(app, ["db", "migrate"], env=env).exit_code == 0
    with psycopg.connect(database_url, autocommit=True) as conn:
        load(conn, tmp_path, meter("EL"), meter("GAS"))
        apply_detection(conn, detection(T0, finding(), finding(GAS, severity=Severity.CRITICAL)))

    listed = runner.invoke(app, ["alerts", "list"], env=env)
    assert listed.exit_code == 0, listed.output
    assert "编号" in listed.output and "严重" in listed.output and "电表离线" in listed.output
    english = runner.invoke(app, ["alerts", "list", "--lang", "en", "--severity", "critical"], env=env)
    assert english.exit_code == 0, english.output
    assert "severity" in english.output and "critical" in english.output and "GAS" in english.output
    assert "EL " not in english.output
    as_json = runner.invoke(app, ["alerts", "list", "--json", "--enterprise", ENTERPRISE], env=env)
    rows = [json.loads(line) for line in as_json.output.splitlines()]
    assert [(r["alert_id"], r["severity"], r["meter_code"]) for r in rows] == [
        (2, "critical", "GAS"),
        (1, "warning", "EL"),
    ]
    assert rows[0]["evidence"]["说明"] == "无数据"

    ack = runner.invoke(app, ["alerts", "ack", "1", "--by", "张三", "--note", "已通知企业"], env=env)
    assert ack.exit_code == 0, ack.output
    assert "acknowledged by 张三" in ack.output
    resolved = runner.invoke(app, ["alerts", "resolve", "1", "--by", "李四", "--note", "表计已修复"], env=env)
    assert resolved.exit_code == 0, resolved.output

    shown = runner.invoke(app, ["alerts", "show", "1"], env=env)
    assert shown.exit_code == 0, shown.output
    for text in (
        "meter.offline",
        "已解决",
        "证据",
        "处理记录",
        "张三",
        "已通知企业",
        "李四",
        "表计已修复",
        "人工",
    ):
        assert text in shown.output, text
    detail = json.loads(runner.invoke(app, ["alerts", "show", "1", "--json"], env=env).output)
    assert [(e["event"], e["actor"]) for e in detail["events"]] == [
        ("opened", "offline"),
        ("acknowledged", "张三"),
        ("resolved", "李四"),
    ]
    assert detail["state"] == "resolved" and detail["resolve_note"] == "表计已修复"

    open_only = runner.invoke(app, ["alerts", "list", "--json"], env=env)
    assert [json.loads(line)["alert_id"] for line in open_only.output.splitlines()] == [2]
    every = runner.invoke(app, ["alerts", "list", "--json", "--state", "all", "--kind", "meter."], env=env)
    assert len(every.output.splitlines()) == 2
    since = (T0 + timedelta(hours=1)).isoformat()
    assert runner.invoke(app, ["alerts", "list", "--since", since], env=env).exit_code == 0


def test_bad_input_exits_2(database_url: str, tmp_path: Path) -> None:
    env = {"DATABASE_URL": database_url}
    assert runner.invoke(app, ["db", "migrate"], env=env).exit_code == 0
    with psycopg.connect(database_url, autocommit=True) as conn:
        load(conn, tmp_path, meter("EL"))
        apply_detection(conn, detection(T0, finding()))
    for args, message in (
        (["show", "99"], "error: no alert 99"),
        (["ack", "99", "--by", "张三"], "error: no alert 99"),
        (["resolve", "1", "--by", "张三", "--note", " "], "error: a manual resolve needs a note"),
        (["list", "--park", "NOPE"], "error: unknown park 'NOPE'"),
        (["list", "--severity", "loud"], "error: unknown severity 'loud'"),
        (["list", "--state", "closed"], "error: unknown state"),
        (["list", "--since", "yesterday"], "error: --since 'yesterday' is not an ISO 8601 time"),
    ):
        result = runner.invoke(app, ["alerts", *args], env=env)
        assert result.exit_code == 2, (args, result.output)
        assert result.output.startswith(message), (args, result.output)
    assert runner.invoke(app, ["alerts", "ack", "1", "--by", "张三"], env=env).exit_code == 0
    again = runner.invoke(app, ["alerts", "ack", "1", "--by", "张三"], env=env)
    assert again.exit_code == 2 and "already acknowledged" in again.output
    missing_note = runner.invoke(app, ["alerts", "resolve", "1", "--by", "张三"], env=env)
    assert missing_note.exit_code == 2  # typer: --note is required
    helped = runner.invoke(app, ["alerts", "--help"], env=env)
    assert helped.exit_code == 0 and "acknowledge" in helped.output
