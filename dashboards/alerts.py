"""Grafana alert rules, contact points and the notification policy, generated from values.

Each rule is a SQL query ``A`` on the datasource (one row per alert
instance: text columns become labels, the numeric column the value), a
``reduce`` ``B`` (last value) and a ``threshold`` ``C``, the condition.
Summaries quote the evidence with ``{{ $values.B.Value }}`` and the labels.

The SDK models give the HTTP provisioning API shape (``folderUid``,
``interval`` in seconds); :func:`file_groups` turns them into the
file-provisioning shape (``folder`` title, ``interval: 1m``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final, Literal

from grafana_foundation_sdk.builders import alerting as alert_builders
from grafana_foundation_sdk.builders import expr as expr_builders
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import alerting
from grafana_foundation_sdk.models import dashboard as model

from dashboards.boards import inspector, quality
from dashboards.boards.accounting import fill
from dashboards.datasource import DATASOURCE_UID
from dashboards.messages import Lang, text
from dashboards.query import PostgresQueryBuilder, register

ORG_ID: Final = 1
GROUP_INTERVAL_S: Final = 60
EXPR_UID: Final = "__expr__"


class Severity(StrEnum):
    """Label ``severity``: critical goes to the instant-messaging robots too."""

    CRITICAL = "critical"
    WARNING = "warning"


Comparison = Literal["gt", "lt", "gte", "lte"]


@dataclass(frozen=True, slots=True)
class Evidence:
    """A figure quoted in a rule's annotations: a query with the same label rows as ``A``, reduced.

    The query (refId ``query_ref``) returns the rule's label columns and one
    numeric column; its ``last`` reduction has refId ``key``, so annotations
    quote it as ``{{ $values.<key>.Value }}`` (Grafana fills ``$values`` with
    the reduce and math results of the alert instance's label set).
    """

    key: str
    query_ref: str
    sql: str


@dataclass(frozen=True, slots=True)
class AlertRule:
    """One alert rule.

    Parameters
    ----------
    uid : str
        Stable Grafana uid (≤ 40 characters).
    key : str
        Texts ``alert.<key>.title``, ``.summary``, ``.description``.
    sql : str
        Query ``A``: no dashboard variables; Grafana's macros expand with the
        rule's time range (``window_s`` back to now).
    threshold : float
        ``C`` fires when the reduced value ``B`` compares true against it.
    window_s : int
        Query time range: from ``now - window_s`` to now [s].
    for_s : int
        How long ``C`` must hold before the alert fires [s].
    no_data : str
        State when ``A`` returns no rows (``OK`` when no rows means nothing wrong).
    dashboard_uid : str or None
        Dashboard linked from the alert.
    evidence : tuple of Evidence
        Further figures for the annotations (not part of the condition).
    """

    uid: str
    key: str
    sql: str
    threshold: float
    severity: Severity
    comparison: Comparison = "gt"
    window_s: int = 600
    for_s: int = 300
    no_data: Literal["OK", "NoData", "Alerting"] = "OK"
    dashboard_uid: str | None = None
    evidence: tuple[Evidence, ...] = ()


@dataclass(frozen=True, slots=True)
class AlertGroup:
    """Rules evaluated together every :data:`GROUP_INTERVAL_S`; title ``alert.group.<key>``."""

    key: str
    rules: tuple[AlertRule, ...]


# A stale updated_at means no batch was committed: with meters reporting every
# 1-15 min, ten silent minutes mean nothing is being stored.
COLLECTOR_DOWN = AlertRule(
    uid="parkenergy-collector-down",
    key="collector_down",
    sql="SELECT extract(epoch FROM now() - max(updated_at)) AS stale_s FROM api.collector_stats",
    threshold=600,
    severity=Severity.CRITICAL,
    no_data="Alerting",
    dashboard_uid=quality.BOARD.uid,
)

QUARANTINE_SPIKE = AlertRule(
    uid="parkenergy-quarantine-spike",
    key="quarantine_spike",
    sql="""SELECT reason, count(*) AS messages
FROM api.quarantine
WHERE $__timeFilter(received_at)
GROUP BY reason""",
    threshold=50,
    severity=Severity.WARNING,
    for_s=0,
    dashboard_uid=quality.BOARD.uid,
)

# Meters behind an offline gateway are left out: the gateway rule covers them
# (DOMAIN.md §8: suppress meters behind a gateway that is down).
OFFLINE_METERS = AlertRule(
    uid="parkenergy-offline-meters",
    key="offline_meters",
    sql=inspector.with_offline_meters("""SELECT o.park_code AS park, o.enterprise_code AS enterprise,
       count(*) AS offline_meters
FROM (offline_meters) o
WHERE o.gateway_status <> 'offline'
GROUP BY o.park_code, o.enterprise_code"""),
    threshold=0,
    severity=Severity.WARNING,
    for_s=900,
    dashboard_uid=inspector.BOARD.uid,
)

OFFLINE_GATEWAYS = AlertRule(
    uid="parkenergy-offline-gateways",
    key="offline_gateways",
    sql="""SELECT park_code AS park, enterprise_code AS enterprise,
       extract(epoch FROM now() - changed_at) AS offline_s
FROM api.gateway_status
WHERE status = 'offline'""",
    threshold=600,
    severity=Severity.CRITICAL,
    for_s=0,
    dashboard_uid=inspector.BOARD.uid,
)

# The intensity target is assessed without feedstock and non-fossil energy
# (发改环资〔2022〕803号; 发改环资〔2024〕113号: 非化石能源不纳入能源消耗总量和强度调控).
TARGET_VARIANT: Final = "excl_feedstock_nonfossil"


def _target_rows(value: str) -> str:
    """Every enterprise and park with a year-to-date intensity and path in the city's latest month.

    Labels ``park``, ``enterprise`` ('' for a park row) and ``level``; ``value`` is the numeric column.
    """
    return fill(
        """SELECT i.park_code AS park, coalesce(i.enterprise_code, '') AS enterprise, i.level,
       {value}
FROM api.intensity i
WHERE i.level IN ('enterprise', 'park') AND i.period_type = 'ytd' AND i.variant = '{target_variant}'
  AND i.intensity IS NOT NULL AND i.path_value IS NOT NULL
  AND i.period_end = (SELECT max(l.period_end) FROM api.intensity l
                      WHERE l.level = 'city' AND l.period_type = 'ytd' AND l.variant = '{target_variant}')""",
        value=value,
        target_variant=TARGET_VARIANT,
    )


# Value: how far the intensity is above the even path [%]; fires above 0. The
# figures are monthly, so an hour of pending state only rides out an import.
TARGET_PATH_BREACH = AlertRule(
    uid="parkenergy-target-path-breach",
    key="target_path_breach",
    sql=_target_rows("100 * (i.intensity / i.path_value - 1) AS above_path_pct"),
    threshold=0,
    severity=Severity.WARNING,
    for_s=3600,
    dashboard_uid=inspector.BOARD.uid,
    evidence=(
        Evidence("intensity", "I", _target_rows("i.intensity")),
        Evidence("path", "P", _target_rows("i.path_value")),
        Evidence("base", "Q", _target_rows("i.base_2022")),
    ),
)


def _critical_rows(value: str) -> str:
    """One row per park: label ``park``; ``value`` over its open critical alerts ``a`` (none: NULL
    or 0), so a park without one reports OK instead of no data."""
    return fill(
        """SELECT p.park_code AS park, {value}
FROM api.park p
LEFT JOIN api.alert a ON a.park_code = p.park_code AND a.state = 'open' AND a.severity = 'critical'
GROUP BY p.park_code""",
        value=value,
    )


# Critical alerts of the detectors (docs/alerts.md) that nobody has acknowledged yet, per park
# (routing by park); acknowledging them in `parkenergy alerts ack` silences the rule.
CRITICAL_ALERTS = AlertRule(
    uid="parkenergy-critical-alerts",
    key="critical_alerts",
    sql=_critical_rows("count(a.alert_id) AS critical_alerts"),
    threshold=0,
    severity=Severity.CRITICAL,
    for_s=0,
    dashboard_uid=inspector.BOARD.uid,
    evidence=(
        Evidence("oldest", "O", _critical_rows("extract(epoch FROM now() - min(a.opened_at)) AS oldest_s")),
        Evidence("enterprises", "E", _critical_rows("count(DISTINCT a.enterprise_code) AS enterprises")),
        Evidence("top_score", "S", _critical_rows("max(abs(a.score)) AS top_score")),
    ),
)

GROUPS: Final[tuple[AlertGroup, ...]] = (
    AlertGroup("collector", (COLLECTOR_DOWN, QUARANTINE_SPIKE)),
    AlertGroup("devices", (OFFLINE_METERS, OFFLINE_GATEWAYS)),
    AlertGroup("target", (TARGET_PATH_BREACH,)),
    AlertGroup("detectors", (CRITICAL_ALERTS,)),
)


def _duration(seconds: int) -> str:
    """Grafana's duration text: ``0s``, ``5m``, ``15m``, ``1h``."""
    if seconds % 3600 == 0 and seconds:
        return f"{seconds // 3600}h"
    if seconds % 60 == 0 and seconds:
        return f"{seconds // 60}m"
    return f"{seconds}s"


def _expr_ref() -> model.DataSourceRef:
    return model.DataSourceRef(type_val=EXPR_UID, uid=EXPR_UID)


def _sql_query(ref_id: str, sql: str, window_s: int) -> alert_builders.Query:
    return (
        alert_builders.Query(ref_id)
        .datasource_uid(DATASOURCE_UID)
        .relative_time_range(alerting.RelativeTimeRange(from_val=window_s, to=0))
        .model(PostgresQueryBuilder(sql, ref_id=ref_id))
    )


def _last(ref_id: str, source: str) -> alert_builders.Query:
    """``reduce``: the last number of each series of ``source`` (non-numbers dropped)."""
    return (
        alert_builders.Query(ref_id)
        .datasource_uid(EXPR_UID)
        .relative_time_range(alerting.RelativeTimeRange(from_val=0, to=0))
        .model(
            expr_builders.TypeReduce()
            .ref_id(ref_id)
            .datasource(_expr_ref())
            .expression(source)
            .reducer("last")
            .settings(expr_builders.ExprTypeReduceSettings().mode("dropNN"))
        )
    )


def build_rule(rule: AlertRule, group_title: str, folder_uid: str, lang: Lang) -> alert_builders.Rule:
    """The SDK builder of ``rule``."""
    register()
    annotations = {
        "summary": text(f"alert.{rule.key}.summary", lang),
        "description": text(f"alert.{rule.key}.description", lang),
    }
    if rule.dashboard_uid is not None:
        annotations["__dashboardUid__"] = rule.dashboard_uid
    query = _sql_query("A", rule.sql, rule.window_s)
    reduce = _last("B", "A")
    threshold = (
        alert_builders.Query("C")
        .datasource_uid(EXPR_UID)
        .relative_time_range(alerting.RelativeTimeRange(from_val=0, to=0))
        .model(
            expr_builders.TypeThreshold()
            .ref_id("C")
            .datasource(_expr_ref())
            .expression("B")
            .conditions(
                [
                    expr_builders.ExprTypeThresholdConditions().evaluator(
                        expr_builders.ExprTypeThresholdConditionsEvaluator()
                        .type(rule.comparison)
                        .params([rule.threshold])
                    )
                ]
            )
        )
    )
    return (
        alert_builders.Rule(text(f"alert.{rule.key}.title", lang))
        .uid(rule.uid)
        .org_id(ORG_ID)
        .folder_uid(folder_uid)
        .rule_group(group_title)
        .condition("C")
        .queries(
            [
                query,
                reduce,
                threshold,
                *(
                    q
                    for e in rule.evidence
                    for q in (_sql_query(e.query_ref, e.sql, rule.window_s), _last(e.key, e.query_ref))
                ),
            ]
        )
        .for_val(_duration(rule.for_s))
        .no_data_state(rule.no_data)
        .exec_err_state("Error")
        .is_paused(False)
        .labels({"severity": str(rule.severity), "service": "parkenergy"})
        .annotations(annotations)
    )


def build_group(group: AlertGroup, folder_uid: str, lang: Lang) -> alerting.RuleGroup:
    """The SDK model of ``group`` (HTTP provisioning API shape)."""
    title = text(f"alert.group.{group.key}", lang)
    return (
        alert_builders.RuleGroup(title)
        .folder_uid(folder_uid)
        .interval(GROUP_INTERVAL_S)
        .rules([build_rule(rule, title, folder_uid, lang) for rule in group.rules])
        .build()
    )


def to_plain(value: object) -> Any:
    """An SDK model as plain JSON values (dicts, lists, strings, numbers)."""
    return json.loads(json.dumps(value, cls=JSONEncoder, ensure_ascii=False))


def file_groups(groups: list[alerting.RuleGroup], folder_title: str) -> dict[str, object]:
    """``provisioning/alerting/rules.yaml``: the file-provisioning shape of ``groups``."""
    out = []
    for group in groups:
        plain = to_plain(group)
        rules = []
        for rule in plain["rules"]:
            rules.append(
                {
                    "uid": rule["uid"],
                    "title": rule["title"],
                    "condition": rule["condition"],
                    "data": rule["data"],
                    "for": rule["for"],
                    "noDataState": rule["noDataState"],
                    "execErrState": rule["execErrState"],
                    "isPaused": rule["isPaused"],
                    "labels": rule["labels"],
                    "annotations": rule["annotations"],
                }
            )
        out.append(
            {
                "orgId": ORG_ID,
                "name": plain["title"],
                "folder": folder_title,
                "interval": _duration(int(plain["interval"])),
                "rules": rules,
            }
        )
    return {"apiVersion": 1, "groups": out}


# -- contact points and policy ------------------------------------------------


class Channel(StrEnum):
    """Notification channels; the value is Grafana's integration type."""

    EMAIL = "email"
    WEBHOOK = "webhook"
    DINGDING = "dingding"  # DingTalk group robot
    WECOM = "wecom"  # WeCom (企业微信) group robot


# The setting (and environment variable) holding each channel's address.
CHANNEL_SETTING: Final[dict[Channel, str]] = {
    Channel.EMAIL: "alert_email_addresses",
    Channel.WEBHOOK: "alert_webhook_url",
    Channel.DINGDING: "alert_dingding_url",
    Channel.WECOM: "alert_wecom_url",
}


def receiver_name(channel: Channel) -> str:
    return f"parkenergy-{channel.value}"


def contact_point(channel: Channel, address: str, lang: Lang) -> alerting.ContactPoint:
    """The contact point of ``channel`` sending to ``address`` (e-mail addresses or robot URL).

    ``address`` may be a ``${ENV}`` reference: file provisioning interpolates
    contact-point settings from Grafana's environment.
    """
    title = text("contact.title", lang)
    message = text("contact.message", lang)
    settings: dict[str, object]
    if channel is Channel.EMAIL:
        settings = {"addresses": address, "singleEmail": False, "subject": title, "message": message}
    elif channel is Channel.WEBHOOK:
        settings = {"url": address, "httpMethod": "POST", "title": title, "message": message}
    elif channel is Channel.DINGDING:
        settings = {"url": address, "msgType": "link", "title": title, "message": message}
    else:
        settings = {"url": address, "msgtype": "markdown", "title": title, "message": message}
    return (
        alert_builders.ContactPoint()
        .uid(receiver_name(channel))
        .name(receiver_name(channel))
        .type(channel.value)
        .settings(settings)
        .disable_resolve_message(False)
        .build()
    )


DEFAULT_RECEIVER: Final = "grafana-default-email"


def notification_policy(channels: set[Channel]) -> alerting.NotificationPolicy:
    """Routing by severity and park, to the receivers of ``channels`` only.

    - critical → DingTalk and WeCom robots (and on);
    - every alert with a ``park`` label → webhook, one notification per park;
    - everything → e-mail (Grafana's default receiver when no e-mail is set).
    """
    root = receiver_name(Channel.EMAIL) if Channel.EMAIL in channels else DEFAULT_RECEIVER
    routes: list[cogbuilder.Builder[alerting.NotificationPolicy]] = []
    for channel in (Channel.DINGDING, Channel.WECOM):
        if channel in channels:
            routes.append(
                alert_builders.NotificationPolicy()
                .receiver(receiver_name(channel))
                .object_matchers([["severity", "=", Severity.CRITICAL.value]])
                .continue_val(True)
            )
    if Channel.WEBHOOK in channels:
        routes.append(
            alert_builders.NotificationPolicy()
            .receiver(receiver_name(Channel.WEBHOOK))
            .object_matchers([["park", "=~", ".+"]])
            .group_by(["park", "alertname"])
            .continue_val(True)
        )
    routes.append(alert_builders.NotificationPolicy().receiver(root))
    return (
        alert_builders.NotificationPolicy()
        .receiver(root)
        .group_by(["grafana_folder", "alertname", "park"])
        .group_wait("30s")
        .group_interval("5m")
        .repeat_interval("4h")
        .routes(routes)
        .build()
    )
