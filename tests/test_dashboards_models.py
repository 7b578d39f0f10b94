"""Dashboards and alerts as SDK models: round trips, references, texts, and the checked-in files."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from grafana_foundation_sdk.models import alerting, units
from grafana_foundation_sdk.models import dashboard as model
from typer.testing import CliRunner

from dashboards import alerts, catalogue, provisioning
from dashboards.datasource import DATASOURCE_TYPE, DATASOURCE_UID
from dashboards.messages import Lang, MessageError, keys, text
from dashboards.panels import Kind, Panel, render_panel
from dashboards.query import PostgresAnnotationTarget, PostgresQuery
from parkenergy.cli import app
from tests.test_dashboards_queries import dashboard_models, rule_group_models

CHECKED_IN = Path(__file__).parent.parent / "dashboards" / "provisioning"
UNITS = {v for v in vars(units).values() if isinstance(v, str)}
# Grafana's custom units: "suffix:<text>" shows the value followed by the text (valueFormats.ts).
CUSTOM_UNIT = re.compile(r"suffix:\S.*")
VARIABLE = re.compile(r"\$(\w+)|\$\{(\w+)\}|\[\[(\w+)\]\]")


@pytest.mark.parametrize("lang", list(Lang))
def test_dashboards_round_trip_through_the_sdk(lang: Lang) -> None:
    """Whole dashboards round-trip; annotation targets through PostgresAnnotationTarget.

    The SDK reads an annotation's ``target`` as the built-in Grafana datasource's
    (it would drop the SQL), so those targets are compared through our own class.
    """
    annotated = 0
    for plain in dashboard_models(lang):
        back = model.Dashboard.from_json(plain)
        assert back.annotations is not None
        listed = plain["annotations"].get("list", [])
        for annotation, original in zip(back.annotations.list_val or [], listed, strict=True):
            annotation.target = PostgresAnnotationTarget.from_json(original["target"])
            annotated += 1
        assert alerts.to_plain(back) == plain
        targets = [t for p in back.panels or [] if isinstance(p, model.Panel) for t in p.targets or []]
        assert targets
        assert all(isinstance(t, PostgresQuery) for t in targets)
    assert annotated > 0


@pytest.mark.parametrize("lang", list(Lang))
def test_alerting_round_trips_through_the_sdk(lang: Lang) -> None:
    for plain in rule_group_models(lang):
        assert alerts.to_plain(alerting.RuleGroup.from_json(plain)) == plain
    for channel in alerts.Channel:
        point = alerts.to_plain(alerts.contact_point(channel, "https://example.invalid/x", lang))
        assert alerts.to_plain(alerting.ContactPoint.from_json(point)) == point
    policy = alerts.to_plain(alerts.notification_policy(set(alerts.Channel)))
    assert alerts.to_plain(alerting.NotificationPolicy.from_json(policy)) == policy


def test_structurally_wrong_json_is_refused() -> None:
    """The round trip is a real check: unknown fields are lost, malformed ones raise."""
    plain = dashboard_models()[0]
    plain["panels"][1]["gridPos"] = {"h": 8, "w": 12, "x": 0, "y": 1, "bogus": 1}
    assert alerts.to_plain(model.Dashboard.from_json(plain)) != plain
    del plain["panels"][1]["type"]
    with pytest.raises(KeyError):
        model.Dashboard.from_json(plain)
    target = dict(dashboard_models()[0]["panels"][1]["targets"][0])
    with pytest.raises(ValueError, match="raw code-mode"):
        PostgresQuery.from_json(dict(target, editorMode="builder"))
    with pytest.raises(ValueError):
        PostgresQuery.from_json(dict(target, format="graph"))


def _units(field_config: dict[str, Any]) -> set[str]:
    found = {field_config["defaults"]["unit"]} if "unit" in field_config.get("defaults", {}) else set()
    for override in field_config.get("overrides", []):
        found |= {p["value"] for p in override["properties"] if p["id"] == "unit"}
    return found


def test_every_uid_variable_and_unit_referenced_exists() -> None:
    provisioned = yaml.safe_load((CHECKED_IN / "datasources" / "parkenergy.yaml").read_text("utf-8"))
    uids = {d["uid"]: d["type"] for d in provisioned["datasources"]}
    assert uids == {DATASOURCE_UID: DATASOURCE_TYPE}
    boards = dashboard_models()
    board_uids = {b["uid"] for b in boards}
    for board in boards:
        variables = {v["name"] for v in board["templating"]["list"]}
        for v in board["templating"]["list"]:
            if v["type"] == "query":
                assert v["datasource"]["uid"] in uids
        for panel in board["panels"]:
            if panel["type"] == "row":
                continue
            assert panel["datasource"]["uid"] in uids
            custom = {u for u in _units(panel["fieldConfig"]) if CUSTOM_UNIT.fullmatch(u)}
            assert _units(panel["fieldConfig"]) - custom <= UNITS, panel["title"]
            for target in panel["targets"]:
                assert target["datasource"] == {"type": DATASOURCE_TYPE, "uid": DATASOURCE_UID}
                used = {a or b or c for a, b, c in VARIABLE.findall(target["rawSql"])}
                used = {u for u in used if not u.startswith("__")}
                assert used <= variables, f"{panel['title']}: {used - variables}"
                assert not re.search(r"\b(registry|ingest|analytics)\.", target["rawSql"])
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids))
    for group in rule_group_models():
        for rule in group["rules"]:
            assert rule["annotations"]["__dashboardUid__"] in board_uids
            for query in rule["data"]:
                assert query["datasourceUid"] in {DATASOURCE_UID, alerts.EXPR_UID}
                raw = query["model"].get("rawSql", "")
                used = {a or b or c for a, b, c in VARIABLE.findall(raw)}
                assert all(u.startswith("__") for u in used), "alert queries cannot use dashboard variables"
            assert rule["condition"] == "C"
            evidence = next(r.evidence for g in alerts.GROUPS for r in g.rules if r.uid == rule["uid"])
            extra = {ref for e in evidence for ref in (e.key, e.query_ref)}
            assert {q["refId"] for q in rule["data"]} == {"A", "B", "C"} | extra
            assert len(extra) == 2 * len(evidence)
            for e in evidence:  # every evidence value is quoted, and reduces its own query
                assert any(f"$values.{e.key}.Value" in v for v in rule["annotations"].values())
                reduce = next(q for q in rule["data"] if q["refId"] == e.key)
                assert reduce["model"]["expression"] == e.query_ref


def test_texts_exist_in_both_languages_and_differ() -> None:
    zh = alerts.to_plain(catalogue.build_all(Lang.ZH))
    en = alerts.to_plain(catalogue.build_all(Lang.EN))
    assert zh != en
    assert [d["title"] for d in zh] == ["市/园区总览", "企业详情", "节能监察", "数据质量与采集健康"]
    assert [d["title"] for d in en] == [
        "City and park overview",
        "Enterprise detail",
        "Energy-saving inspection",
        "Data quality and collector health",
    ]
    for key in keys():
        assert text(key, Lang.ZH) and text(key, Lang.EN)
    with pytest.raises(MessageError):
        text("panel.nope.title", Lang.ZH)
    with pytest.raises(MessageError):
        render_panel(Panel("nope", Kind.TABLE, "SELECT 1 AS x FROM api.park"), Lang.ZH, 1)


def test_alert_summaries_quote_the_evidence() -> None:
    for lang in Lang:
        for group in rule_group_models(lang):
            for rule in group["rules"]:
                assert "$values.B.Value" in rule["annotations"]["summary"]


def test_file_provisioning_shape_of_alerts() -> None:
    rules = yaml.safe_load((CHECKED_IN / "alerting" / "rules.yaml").read_text("utf-8"))
    assert rules["apiVersion"] == 1
    for group in rules["groups"]:
        assert group["folder"] == text("folder.title", Lang.ZH)
        assert group["interval"] == "1m"
        assert "folderUid" not in group
        for rule in group["rules"]:
            assert set(rule) == {
                "uid",
                "title",
                "condition",
                "data",
                "for",
                "noDataState",
                "execErrState",
                "isPaused",
                "labels",
                "annotations",
            }
    points = yaml.safe_load((CHECKED_IN / "alerting" / "contact-points.yaml").read_text("utf-8"))
    types = {r["type"] for p in points["contactPoints"] for r in p["receivers"]}
    assert types == {"email", "webhook", "dingding", "wecom"}
    addresses = [
        r["settings"].get("url") or r["settings"]["addresses"]
        for p in points["contactPoints"]
        for r in p["receivers"]
    ]
    assert all(re.fullmatch(r"\$\{ALERT_[A-Z_]+\}", a) for a in addresses), "no secret in a checked-in file"
    policies = yaml.safe_load((CHECKED_IN / "alerting" / "policies.yaml").read_text("utf-8"))
    receivers = {p["name"] for p in points["contactPoints"]}
    tree = policies["policies"][0]
    assert tree["receiver"] in receivers
    assert {r["receiver"] for r in tree["routes"]} <= receivers


def test_checked_in_provisioning_is_current() -> None:
    """Fails when dashboards/provisioning/ is stale: run `parkenergy dashboards build`."""
    assert provisioning.stale(CHECKED_IN, provisioning.BuildOptions()) == []


def test_build_command_writes_and_checks(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "prov"
    first = runner.invoke(app, ["dashboards", "build", "--out", str(out), "--lang", "en"])
    assert first.exit_code == 0, first.output
    assert "9 files changed" in " ".join(first.output.split())
    assert (
        runner.invoke(app, ["dashboards", "build", "--out", str(out), "--lang", "en", "--check"]).exit_code
        == 0
    )
    stale = runner.invoke(app, ["dashboards", "build", "--out", str(out), "--check"])  # zh now
    assert stale.exit_code == 1
    (out / "dashboards" / "parkenergy" / "old-board.json").write_text("{}", "utf-8")
    again = runner.invoke(app, ["dashboards", "build", "--out", str(out), "--lang", "en"])
    assert again.exit_code == 0
    assert not (out / "dashboards" / "parkenergy" / "old-board.json").exists()
    assert (out / "datasources" / "parkenergy.yaml").read_text("utf-8") == (
        CHECKED_IN / "datasources" / "parkenergy.yaml"
    ).read_text("utf-8")
    plain = runner.invoke(app, ["dashboards", "build", "--out", str(out), "--no-timescaledb"])
    assert plain.exit_code == 0
    datasource = yaml.safe_load((out / "datasources" / "parkenergy.yaml").read_text("utf-8"))
    assert datasource["datasources"][0]["jsonData"]["timescaledb"] is False
