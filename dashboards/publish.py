"""Publish the generated Grafana objects to a running Grafana over its HTTP API, idempotently.

Every object is read first and written only when missing or different, so a
second run makes no writes. Objects pushed this way get Grafana's ``api``
provenance (not editable in the UI); do not also file-provision the same
objects into that Grafana. Secrets that Grafana redacts when read back
(``[REDACTED]``: robot URLs, the datasource password) cannot be compared: a
changed secret is sent with ``--force``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from grafana_client.client import GrafanaClientError, GrafanaException

from dashboards import alerts, catalogue, datasource
from dashboards.messages import Lang, text

log = logging.getLogger(__name__)

REDACTED: Final = "[REDACTED]"
HTTP_NOT_FOUND: Final = 404


class GrafanaApiLike(Protocol):
    """The parts of ``grafana_client.GrafanaApi`` used here."""

    @property
    def folder(self) -> Any: ...
    @property
    def datasource(self) -> Any: ...
    @property
    def dashboard(self) -> Any: ...
    @property
    def alertingprovisioning(self) -> Any: ...


@dataclass(frozen=True, slots=True)
class PushPlan:
    """Everything to publish, as the JSON bodies of Grafana's HTTP API."""

    folder_uid: str
    folder_title: str
    datasource: dict[str, Any] | None
    dashboards: list[dict[str, Any]]
    rule_groups: list[dict[str, Any]]
    contact_points: list[dict[str, Any]]
    policy: dict[str, Any]


@dataclass(slots=True)
class PushReport:
    """What was written (``kind uid`` per write) and what was already current."""

    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)


class PushError(RuntimeError):
    """Grafana could not be reached, or refused a request.

    ``step`` names the object being read or written; ``report`` holds what was
    written before (a second push completes the rest: every step is idempotent).
    """

    def __init__(self, step: str, reason: str, report: PushReport) -> None:
        super().__init__(f"{step}: {reason}")
        self.step = step
        self.reason = reason
        self.report = report


def _root_cause(exc: BaseException) -> BaseException:
    """The innermost error of a chain (e.g. ``ConnectionRefusedError`` under niquests' wrappers)."""
    seen: set[int] = set()
    while id(exc) not in seen:
        seen.add(id(exc))
        inner = exc.__cause__ or exc.__context__ or getattr(exc, "reason", None)
        if inner is None and exc.args and isinstance(exc.args[0], BaseException):
            inner = exc.args[0]
        if not isinstance(inner, BaseException):
            break
        exc = inner
    return exc


def _reason(exc: Exception) -> str:
    """One line saying why a request failed: the HTTP status and Grafana's message, or the network error."""
    if isinstance(exc, GrafanaException) and exc.status_code:
        response = exc.response
        if exc.status_code == 401:
            text = "unauthorized: the token is missing, wrong or expired"
        elif isinstance(response, dict) and response.get("message"):
            text = str(response["message"])
            if exc.status_code == 403:
                text = f"forbidden (the token needs the Admin role): {text}"
        else:
            text = "the answer is not Grafana's (is the URL Grafana's base URL?)"
        return f"HTTP {exc.status_code}: {' '.join(text.split())[:200]}"
    root = _root_cause(exc)
    text = " ".join(str(root).split())[:200]
    if isinstance(exc, ValueError) and not isinstance(root, OSError):
        return f"the answer is not Grafana's JSON (is the URL Grafana's base URL?): {text}"
    return f"cannot reach Grafana: {text or type(root).__name__}"


def make_plan(
    lang: Lang,
    timescaledb: bool,
    database: datasource.DatabaseTarget | None,
    channels: dict[alerts.Channel, str],
) -> PushPlan:
    """The objects to publish.

    Parameters
    ----------
    database : DatabaseTarget or None
        Where Grafana finds the database; None leaves the datasource alone.
    channels : dict
        Configured channels and their addresses; only these contact points
        are published and routed to.
    """
    folder_uid = catalogue.FOLDER_UID
    groups = [alerts.to_plain(alerts.build_group(g, folder_uid, lang)) for g in alerts.GROUPS]
    points = [alerts.to_plain(alerts.contact_point(c, a, lang)) for c, a in channels.items()]
    return PushPlan(
        folder_uid=folder_uid,
        folder_title=text("folder.title", lang),
        datasource=datasource.api_body(database, timescaledb) if database is not None else None,
        dashboards=[alerts.to_plain(d) for d in catalogue.build_all(lang)],
        rule_groups=groups,
        contact_points=points,
        policy=alerts.to_plain(alerts.notification_policy(set(channels))),
    )


def contains(remote: object, ours: object) -> bool:
    """True when every value of ``ours`` is in ``remote`` (dicts may have more keys there).

    A remote ``[REDACTED]`` string matches any value of ours: Grafana never
    returns secrets.
    """
    if isinstance(ours, dict):
        return isinstance(remote, dict) and all(
            k in remote and contains(remote[k], v) for k, v in ours.items()
        )
    if isinstance(ours, list):
        return (
            isinstance(remote, list)
            and len(remote) == len(ours)
            and all(contains(r, o) for r, o in zip(remote, ours, strict=True))
        )
    if remote == REDACTED and isinstance(ours, str):
        return True
    if isinstance(ours, bool) or isinstance(remote, bool):
        return remote is ours
    if isinstance(ours, int | float) and isinstance(remote, int | float):
        return float(ours) == float(remote)
    return remote == ours


def _get(call: Any, *args: object) -> Any | None:
    """``call(*args)``, or None when Grafana answers 404."""
    try:
        return call(*args)
    except GrafanaClientError as exc:
        if exc.status_code == HTTP_NOT_FOUND:
            return None
        raise


def _note(report: PushReport, wrote: bool, what: str) -> None:
    (report.written if wrote else report.unchanged).append(what)
    if wrote:
        log.info("grafana: wrote %s", what)


def push(api: GrafanaApiLike, plan: PushPlan, *, force: bool = False) -> PushReport:
    """Publish ``plan``; with ``force``, write every object even when it looks current.

    Raises
    ------
    PushError
        Grafana is unreachable or answered an error (naming the object and the reason).
    """
    report = PushReport()
    step = [f"folder {plan.folder_uid}"]
    try:
        _push(api, plan, report, step, force=force)
    except GrafanaException as exc:
        raise PushError(step[0], _reason(exc), report) from exc
    except (OSError, ValueError) as exc:  # network errors of niquests are OSErrors; ValueError: not JSON
        raise PushError(step[0], _reason(exc), report) from exc
    return report


def _push(api: GrafanaApiLike, plan: PushPlan, report: PushReport, step: list[str], *, force: bool) -> None:
    """The steps of :func:`push`; ``step[0]`` names the object being handled."""
    folder = _get(api.folder.get_folder, plan.folder_uid)
    if folder is None:
        api.folder.create_folder(plan.folder_title, uid=plan.folder_uid)
    retitle = folder is not None and (folder.get("title") != plan.folder_title or force)
    if retitle:
        api.folder.update_folder(plan.folder_uid, title=plan.folder_title, overwrite=True)
    _note(report, folder is None or retitle, f"folder {plan.folder_uid}")

    if plan.datasource is not None:
        uid = plan.datasource["uid"]
        step[0] = f"datasource {uid}"
        remote = _get(api.datasource.get_datasource_by_uid, uid)
        public = {k: v for k, v in plan.datasource.items() if k != "secureJsonData"}
        if remote is None:
            api.datasource.create_datasource(plan.datasource)
        changed = (
            remote is None
            or force
            or not (contains(remote, public) and remote.get("secureJsonFields", {}).get("password") is True)
        )
        if remote is not None and changed:
            api.datasource.update_datasource_by_uid(uid, plan.datasource)
        _note(report, changed, f"datasource {uid}")

    for board in plan.dashboards:
        step[0] = f"dashboard {board['uid']}"
        remote = _get(api.dashboard.get_dashboard, board["uid"])
        current = (
            remote is not None
            and remote.get("meta", {}).get("folderUid") == plan.folder_uid
            and contains(remote.get("dashboard"), board)
        )
        if not current or force:
            api.dashboard.update_dashboard(
                {"dashboard": board, "folderUid": plan.folder_uid, "overwrite": True, "message": "parkenergy"}
            )
        _note(report, not current or force, f"dashboard {board['uid']}")

    for group in plan.rule_groups:
        step[0] = f"rule-group {group['title']}"
        remote = _get(api.alertingprovisioning.get_rule_group, plan.folder_uid, group["title"])
        current = remote is not None and contains(remote, group)
        if not current or force:
            api.alertingprovisioning.update_rule_group(plan.folder_uid, group["title"], group)
        _note(report, not current or force, f"rule-group {group['title']}")

    step[0] = "contact points"
    existing = {p.get("uid"): p for p in api.alertingprovisioning.get_contactpoints() or []}
    for point in plan.contact_points:
        step[0] = f"contact-point {point['uid']}"
        remote = existing.get(point["uid"])
        current = remote is not None and contains(remote, point)
        if remote is None:
            api.alertingprovisioning.create_contactpoint(point)
        elif not current or force:
            api.alertingprovisioning.update_contactpoint(point["uid"], point)
        _note(report, not current or force, f"contact-point {point['uid']}")

    step[0] = "policy tree"
    remote_policy = api.alertingprovisioning.get_notification_policy_tree()
    current = contains(remote_policy, plan.policy)
    if not current or force:
        api.alertingprovisioning.set_notification_policy_tree(plan.policy)
    _note(report, not current or force, "policy tree")
