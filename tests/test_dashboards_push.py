"""``parkenergy dashboards push`` against a stand-in of Grafana's HTTP API: exact calls, then none.

The stand-in is a stdlib ``http.server`` that keeps what it is sent and
answers reads the way Grafana 11 does where it matters here: 404 for what does
not exist, ``[REDACTED]`` for secret contact-point settings, no password but
``secureJsonFields`` for a datasource, extra fields (ids, versions,
provenance, query defaults) on what it returns.
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from grafana_client.api import GrafanaApi
from typer.testing import CliRunner

from dashboards import alerts, catalogue, publish
from dashboards.datasource import DATASOURCE_UID, DatabaseTarget
from dashboards.messages import Lang
from parkenergy.cli import app

SECRET_TYPES = {"dingding", "wecom"}
ENV = {
    "GRAFANA_DB_URL": "postgresql://grafana:pw@db:5432/parkenergy",
    "ALERT_EMAIL_ADDRESSES": "ops@example.invalid",
    "ALERT_WEBHOOK_URL": "https://hooks.example.invalid/parkenergy",
    "ALERT_DINGDING_URL": "https://oapi.dingtalk.example.invalid/robot/send?access_token=t",
    "ALERT_WECOM_URL": "https://qyapi.weixin.example.invalid/cgi-bin/webhook/send?key=k",
}


@dataclass
class FakeGrafana:
    """State and request log of the stand-in."""

    requests: list[tuple[str, str, Any]] = field(default_factory=list)
    fail_writes_under: str | None = None  # writes to paths under this prefix answer 500
    auth: list[str | None] = field(default_factory=list)
    folders: dict[str, dict[str, Any]] = field(default_factory=dict)
    datasources: dict[str, dict[str, Any]] = field(default_factory=dict)
    dashboards: dict[str, dict[str, Any]] = field(default_factory=dict)
    groups: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    contact_points: dict[str, dict[str, Any]] = field(default_factory=dict)
    policy: dict[str, Any] = field(
        default_factory=lambda: {
            "receiver": "grafana-default-email",
            "group_by": ["grafana_folder", "alertname"],
        }
    )

    def writes(self) -> list[tuple[str, str]]:
        return [(m, p) for m, p, _ in self.requests if m != "GET"]

    def handle(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        self.requests.append((method, path, body))
        if self.fail_writes_under is not None and method != "GET" and path.startswith(self.fail_writes_under):
            return 500, {"message": "database is locked"}
        parts = path.removeprefix("/api/").split("/")
        if parts[0] == "folders":
            if method == "POST":
                self.folders[body["uid"]] = {
                    "uid": body["uid"],
                    "title": body["title"],
                    "id": 7,
                    "version": 1,
                }
                return 200, self.folders[body["uid"]]
            if method == "PUT":
                self.folders[parts[1]]["title"] = body["title"]
                return 200, self.folders[parts[1]]
            return (
                (200, self.folders[parts[1]]) if parts[1] in self.folders else (404, {"message": "not found"})
            )
        if parts[0] == "datasources":
            if method == "POST":
                self.datasources[body["uid"]] = body
                return 200, {"id": 1, "message": "Datasource added"}
            uid = parts[2]
            if method == "PUT":
                self.datasources[uid] = body
                return 200, {"message": "Datasource updated"}
            if uid not in self.datasources:
                return 404, {"message": "Data source not found"}
            stored = {k: v for k, v in self.datasources[uid].items() if k != "secureJsonData"}
            return 200, {
                **stored,
                "id": 1,
                "orgId": 1,
                "readOnly": False,
                "secureJsonFields": {"password": True},
            }
        if parts[0] == "dashboards":
            if method == "POST":
                board = body["dashboard"]
                self.dashboards[board["uid"]] = {"dashboard": board, "folderUid": body["folderUid"]}
                return 200, {"status": "success", "uid": board["uid"], "version": 1}
            uid = parts[2]
            if uid not in self.dashboards:
                return 404, {"message": "Dashboard not found"}
            stored = self.dashboards[uid]
            return 200, {
                "dashboard": {**stored["dashboard"], "id": 3, "version": 2},
                "meta": {"folderUid": stored["folderUid"], "provisioned": False},
            }
        if parts[:2] == ["v1", "provisioning"]:
            kind = parts[2]
            if kind == "folder":
                key = (parts[3], parts[5])
                if method == "PUT":
                    self.groups[key] = body
                    return 200, body
                if key not in self.groups:
                    return 404, {"message": "rule group does not exist"}
                group = copy.deepcopy(self.groups[key])
                for rule in group["rules"]:
                    rule.update(id=11, updated="2025-01-01T00:00:00Z", provenance="api")
                    for query in rule["data"]:
                        query["model"].update(intervalMs=1000, maxDataPoints=43200)
                return 200, group
            if kind == "contact-points":
                if method == "GET":
                    return 200, [self._redacted(p) for p in self.contact_points.values()]
                uid = body["uid"] if method == "POST" else parts[3]
                self.contact_points[uid] = body
                return 202, {**body, "uid": uid}
            if kind == "policies":
                if method == "PUT":
                    self.policy = body
                    return 202, {"message": "policies updated"}
                return 200, {**self.policy, "provenance": "api"}
        return 404, {"message": f"no route {method} {path}"}

    @staticmethod
    def _redacted(point: dict[str, Any]) -> dict[str, Any]:
        point = copy.deepcopy(point)
        if point["type"] in SECRET_TYPES:
            point["settings"]["url"] = publish.REDACTED
        return point


@pytest.fixture
def grafana() -> Iterator[tuple[FakeGrafana, str]]:
    fake = FakeGrafana()

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            fake.auth.append(self.headers.get("Authorization"))
            status, answer = fake.handle(self.command, unquote(urlsplit(self.path).path), body)
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = _serve  # noqa: N815 - http.server handler names

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def _plan(lang: Lang = Lang.ZH) -> publish.PushPlan:
    channels = {c: ENV[alerts.CHANNEL_SETTING[c].upper()] for c in alerts.Channel}
    return publish.make_plan(lang, True, DatabaseTarget.parse(ENV["GRAFANA_DB_URL"]), channels)


def test_push_makes_exactly_these_calls_then_none(grafana: tuple[FakeGrafana, str]) -> None:
    fake, url = grafana
    runner = CliRunner()
    result = runner.invoke(app, ["dashboards", "push", "--url", url, "--token", "glsa_test"], env=ENV)
    assert result.exit_code == 0, result.output
    plan = _plan()
    folder = catalogue.FOLDER_UID
    groups = [g["title"] for g in plan.rule_groups]
    points = [p["uid"] for p in plan.contact_points]
    assert [(m, p) for m, p, _ in fake.requests] == [
        ("GET", f"/api/folders/{folder}"),
        ("POST", "/api/folders"),
        ("GET", f"/api/datasources/uid/{DATASOURCE_UID}"),
        ("POST", "/api/datasources"),
        *[
            call
            for board in plan.dashboards
            for call in (("GET", f"/api/dashboards/uid/{board['uid']}"), ("POST", "/api/dashboards/db"))
        ],
        *[
            call
            for g in groups
            for call in (
                ("GET", f"/api/v1/provisioning/folder/{folder}/rule-groups/{g}"),
                ("PUT", f"/api/v1/provisioning/folder/{folder}/rule-groups/{g}"),
            )
        ],
        ("GET", "/api/v1/provisioning/contact-points"),
        *[("POST", "/api/v1/provisioning/contact-points") for _ in points],
        ("GET", "/api/v1/provisioning/policies"),
        ("PUT", "/api/v1/provisioning/policies"),
    ]
    bodies = [b for m, _, b in fake.requests if m != "GET"]
    assert bodies[0] == {"title": plan.folder_title, "uid": folder}
    assert bodies[1] == plan.datasource
    assert bodies[1]["url"] == "db:5432"
    assert bodies[1]["secureJsonData"] == {"password": "pw"}
    n = len(plan.dashboards)
    assert bodies[2 : 2 + n] == [
        {"dashboard": d, "folderUid": folder, "overwrite": True, "message": "parkenergy"}
        for d in plan.dashboards
    ]
    assert bodies[2 + n : 2 + n + len(groups)] == plan.rule_groups
    assert bodies[2 + n + len(groups) : -1] == plan.contact_points
    assert bodies[-1] == plan.policy
    assert {
        c["settings"].get("url") or c["settings"]["addresses"] for c in bodies[2 + n + len(groups) : -1]
    } == {ENV[alerts.CHANNEL_SETTING[c].upper()] for c in alerts.Channel}
    assert set(fake.auth) == {"Bearer glsa_test"}

    fake.requests.clear()
    again = runner.invoke(app, ["dashboards", "push", "--url", url, "--token", "glsa_test"], env=ENV)
    assert again.exit_code == 0, again.output
    assert fake.writes() == []
    assert "0 written" in again.output


def test_push_writes_only_what_changed(grafana: tuple[FakeGrafana, str]) -> None:
    fake, url = grafana
    api = GrafanaApi.from_url(url, credential="t")
    first = publish.push(api, _plan())
    boards, groups = len(catalogue.BOARDS), len(alerts.GROUPS)
    assert len(first.written) == 1 + 1 + boards + groups + 4 + 1
    fake.requests.clear()
    assert publish.push(api, _plan()).written == []

    english = publish.push(api, _plan(Lang.EN))  # every title changes, the datasource does not
    assert "datasource parkenergy-pg" in english.unchanged
    assert {w.split()[0] for w in english.written} == {
        "folder",
        "dashboard",
        "rule-group",
        "contact-point",
    }
    fake.requests.clear()
    assert publish.push(api, _plan(Lang.EN)).written == []
    forced = publish.push(api, _plan(Lang.EN), force=True)
    assert forced.unchanged == []


def test_push_without_channels_routes_to_the_default_receiver(grafana: tuple[FakeGrafana, str]) -> None:
    fake, url = grafana
    api = GrafanaApi.from_url(url, credential="t")
    plan = publish.make_plan(Lang.ZH, True, None, {})
    report = publish.push(api, plan)
    assert not any(w.startswith(("datasource", "contact-point")) for w in report.written)
    assert fake.policy["receiver"] == alerts.DEFAULT_RECEIVER
    assert [r["receiver"] for r in fake.policy["routes"]] == [alerts.DEFAULT_RECEIVER]


@pytest.fixture
def refusing_grafana() -> Iterator[str]:
    """A server that answers every request 401 with Grafana's JSON error body."""

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            data = json.dumps({"message": "invalid API key"}).encode()
            self.send_response(401)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = _serve  # noqa: N815 - http.server handler names

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def test_push_failures_are_one_line_with_the_object_and_the_reason(refusing_grafana: str) -> None:
    runner = CliRunner()
    closed = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    port = closed.server_address[1]
    closed.server_close()  # nothing listens there now
    for url, code, message in (
        (
            f"http://127.0.0.1:{port}",
            1,
            f"error: Grafana at http://127.0.0.1:{port}: folder parkenergy: cannot reach Grafana: ",
        ),
        (
            refusing_grafana,
            1,
            f"error: Grafana at {refusing_grafana}: folder parkenergy: HTTP 401: unauthorized",
        ),
        ("grafana.example.com", 2, "error: Grafana URL 'grafana.example.com' is not http(s)://host"),
    ):
        result = runner.invoke(app, ["dashboards", "push", "--url", url, "--token", "t"], env=ENV)
        assert result.exit_code == code, result.output
        errors = [line for line in result.output.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and errors[0].startswith(message), result.output
        assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit)


def test_a_failed_push_names_the_object_and_what_was_written_before(grafana: tuple[FakeGrafana, str]) -> None:
    fake, url = grafana
    fake.fail_writes_under = "/api/v1/provisioning/folder/"
    plan = _plan()
    with pytest.raises(publish.PushError) as exc:
        publish.push(GrafanaApi.from_url(url, credential="t"), plan)
    assert exc.value.step == f"rule-group {plan.rule_groups[0]['title']}"
    assert exc.value.reason == "HTTP 500: database is locked"
    assert exc.value.report.written == [
        f"folder {catalogue.FOLDER_UID}",
        f"datasource {DATASOURCE_UID}",
        *[f"dashboard {b['uid']}" for b in plan.dashboards],
    ]
    result = CliRunner().invoke(app, ["dashboards", "push", "--url", url, "--token", "t"], env=ENV)
    assert result.exit_code == 1
    assert f"rule-group {plan.rule_groups[0]['title']}: HTTP 500: database is locked" in result.output
    assert "written before" not in result.output  # the objects before it were already current
    fake.fail_writes_under = None
    again = CliRunner().invoke(app, ["dashboards", "push", "--url", url, "--token", "t"], env=ENV)
    assert again.exit_code == 0, again.output  # a second push completes the rest
    assert set(fake.groups) == {(catalogue.FOLDER_UID, g["title"]) for g in plan.rule_groups}
