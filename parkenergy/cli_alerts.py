"""``parkenergy alerts list|show|ack|resolve``: what the detectors found, for inspectors (docs/alerts.md)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import psycopg
import typer
from rich.table import Table

from analytics.alert_store import (
    STATES,
    UNRESOLVED_STATES,
    AlertError,
    AlertFilter,
    acknowledge,
    get_alert,
    list_alerts,
    resolve,
)
from analytics.findings import Severity
from parkdata.db import connect
from parkenergy import services
from parkenergy.clikit import console, fail, print_rows, settings_of

__all__ = ["register"]

alerts_app = typer.Typer(
    help="Alerts raised by the detectors: list, show, acknowledge, resolve.", no_args_is_help=True
)

LOCAL = ZoneInfo("Asia/Shanghai")  # times are shown in China's time (UTC+8, no DST)


class Lang(StrEnum):
    zh = "zh"
    en = "en"


# Column headers and labels for people; Chinese first (DESIGN.md "Grafana").
_HEADERS = {
    Lang.zh: {
        "alert_id": "编号",
        "severity": "级别",
        "state": "状态",
        "kind": "类型",
        "enterprise": "企业",
        "subject": "对象",
        "started_at": "开始 (UTC+8)",
        "last_seen_at": "最近检测",
        "summary": "摘要",
    },
    Lang.en: {
        "alert_id": "id",
        "severity": "severity",
        "state": "state",
        "kind": "kind",
        "enterprise": "enterprise",
        "subject": "subject",
        "started_at": "started (UTC+8)",
        "last_seen_at": "last seen",
        "summary": "summary",
    },
}
_LABELS = {
    Lang.zh: {
        "info": "提示",
        "warning": "警告",
        "critical": "严重",
        "open": "未处理",
        "acknowledged": "已确认",
        "resolved": "已解决",
        "opened": "产生",
        "escalated": "升级",
        "reopened": "重新打开",
        "cleared": "未再检测到",
        "ended": "已结束",
        "manual": "人工",
    },
    Lang.en: {},
}
_DETAIL = {
    Lang.zh: {
        "subject": "对象",
        "park": "园区",
        "enterprise": "企业",
        "meter": "计量器具",
        "detector": "检测器",
        "started_at": "开始",
        "ended_at": "结束",
        "opened_at": "产生",
        "last_seen_at": "最近检测",
        "occurrences": "检测次数",
        "observed": "观测值",
        "expected": "预期",
        "score": "得分",
        "acknowledged": "确认",
        "resolved": "解决",
        "evidence": "证据",
        "history": "处理记录",
        "at": "时间",
        "event": "事件",
        "actor": "操作人",
        "note": "备注",
        "severity": "级别",
    },
    Lang.en: {
        "subject": "subject",
        "park": "park",
        "enterprise": "enterprise",
        "meter": "meter",
        "detector": "detector",
        "started_at": "started",
        "ended_at": "ended",
        "opened_at": "opened",
        "last_seen_at": "last seen",
        "occurrences": "occurrences",
        "observed": "observed",
        "expected": "expected",
        "score": "score",
        "acknowledged": "acknowledged",
        "resolved": "resolved",
        "evidence": "evidence",
        "history": "history",
        "at": "at",
        "event": "event",
        "actor": "actor",
        "note": "note",
        "severity": "severity",
    },
}

_LANG = typer.Option("--lang", help="Language of headers, labels and summaries: zh (default) or en.")
_JSON = typer.Option("--json", help="JSON lines with every column of api.alert (docs/alerts.md).")
_ID = typer.Argument(help="The alert's id (first column of `parkenergy alerts list`).", min=1)
_BY = typer.Option("--by", help="Who does it (name or user id); kept in the alert's history.")


def register(app: typer.Typer) -> None:
    """Add ``parkenergy alerts`` to the main command."""
    app.add_typer(alerts_app, name="alerts")


def _label(value: object, lang: Lang) -> str:
    if value is None:
        return ""
    return _LABELS[lang].get(str(value), str(value))


def _local(value: object) -> str:
    if isinstance(value, datetime):
        return value.astimezone(LOCAL).strftime("%Y-%m-%d %H:%M")
    return "" if value is None else str(value)


def _when(text: str | None, option: str) -> datetime | None:
    """An ISO 8601 time; without an offset it is China's time (UTC+8)."""
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise fail(
            f"{option} {text!r} is not an ISO 8601 time (e.g. 2025-06-01 or 2025-06-01T08:00+08:00)", 2
        ) from None
    return value if value.tzinfo is not None else value.replace(tzinfo=LOCAL)


@contextmanager
def _database(ctx: typer.Context) -> Iterator[psycopg.Connection[Any]]:
    """A connection; bad requests about alerts exit with 2, database failures with 1."""
    url = services.database_url(settings_of(ctx))
    try:
        with connect(url, autocommit=True) as conn:
            yield conn
    except AlertError as exc:
        raise fail(str(exc), 2) from exc
    except psycopg.Error as exc:
        raise fail(f"database: {exc}") from exc


@alerts_app.command("list")
def alerts_list(  # noqa: PLR0917 (typer: one parameter per option)
    ctx: typer.Context,
    park: Annotated[str | None, typer.Option(help="Only this park (park code).")] = None,
    enterprise: Annotated[str | None, typer.Option(help="Only this enterprise (enterprise code).")] = None,
    kind: Annotated[
        str | None,
        typer.Option(help="Only this kind (meter.offline), or kinds by prefix ending in '.' (counter.)."),
    ] = None,
    severity: Annotated[str | None, typer.Option(help="Minimum severity: info, warning or critical.")] = None,
    state: Annotated[
        list[str] | None,
        typer.Option(
            help="open, acknowledged, resolved or all (repeatable; default: open and acknowledged)."
        ),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(help="Only problems lasting at or after this time (ISO 8601; default offset +08:00)."),
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="Only problems started before this time (ISO 8601).")
    ] = None,
    limit: Annotated[
        int, typer.Option(help="At most this many, most severe then latest first.", min=1)
    ] = 100,
    as_json: Annotated[bool, _JSON] = False,
    lang: Annotated[Lang, _LANG] = Lang.zh,
) -> None:
    """List alerts (default: the open and acknowledged ones), most severe and latest first."""
    states = STATES if state and "all" in state else tuple(state or UNRESOLVED_STATES)
    try:
        minimum = Severity.parse(severity) if severity else None
        filters = AlertFilter(
            park=park,
            enterprise=enterprise,
            kind=kind,
            severity=minimum,
            states=states,
            since=_when(since, "--since"),
            until=_when(until, "--until"),
            limit=limit,
        )
    except ValueError as exc:
        raise fail(str(exc), 2) from exc
    with _database(ctx) as conn:
        rows = list_alerts(conn, filters)
    if as_json:
        print_rows(rows, as_json=True, title="alerts")
        return
    headers = _HEADERS[lang]
    summary = "summary_zh" if lang is Lang.zh else "summary_en"
    shown: list[dict[str, object]] = [
        {
            headers["alert_id"]: r["alert_id"],
            headers["severity"]: _label(r["severity"], lang),
            headers["state"]: _label(r["state"], lang),
            headers["kind"]: r["kind"],
            headers["enterprise"]: r["enterprise_name"] or r["enterprise_code"] or "",
            headers["subject"]: r["meter_code"] or r["subject"],
            headers["started_at"]: _local(r["started_at"]),
            headers["last_seen_at"]: _local(r["last_seen_at"]),
            headers["summary"]: r[summary],
        }
        for r in rows
    ]
    print_rows(shown, as_json=False, title="告警" if lang is Lang.zh else "alerts")


def _figure(value: object, unit: object) -> str:
    return "" if value is None else f"{value:g} {unit}".strip() if isinstance(value, float) else str(value)


def _joined(*values: object) -> str:
    """The values that are not empty, separated by spaces."""
    return " ".join(str(v) for v in values if v)


@alerts_app.command("show")
def alerts_show(
    ctx: typer.Context,
    alert_id: Annotated[int, _ID],
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object: the alert and its events.")
    ] = False,
    lang: Annotated[Lang, _LANG] = Lang.zh,
) -> None:
    """Show one alert: what, where, since when, its evidence and its history."""
    with _database(ctx) as conn:
        detail = get_alert(conn, alert_id)
    if as_json:
        payload = {**detail.alert, "events": detail.events}
        sys.stdout.write(json.dumps(payload, default=str, ensure_ascii=False) + "\n")
        return
    a, words = detail.alert, _DETAIL[lang]
    title = f"#{a['alert_id']} {a['kind']} · {_label(a['severity'], lang)} · {_label(a['state'], lang)}"
    console.print(title, markup=False, style="bold")
    console.print(str(a["summary_zh" if lang is Lang.zh else "summary_en"]), markup=False)
    low, high, unit = a["expected_low"], a["expected_high"], a["unit"]
    if low is None and high is None:
        expected = ""
    elif low is None:
        expected = f"≤ {_figure(high, unit)}"
    elif high is None:
        expected = f"≥ {_figure(low, unit)}"
    else:
        expected = _figure(low, unit) if low == high else f"{_figure(low, '')} – {_figure(high, unit)}"
    fields = [
        ("subject", str(a["subject"])),
        ("park", _joined(a["park_code"], a["park_name"])),
        ("enterprise", _joined(a["enterprise_code"], a["enterprise_name"])),
        ("meter", str(a["meter_code"] or "")),
        ("detector", str(a["detector"])),
        ("started_at", _local(a["started_at"])),
        ("ended_at", _local(a["ended_at"])),
        ("opened_at", _local(a["opened_at"])),
        ("last_seen_at", _local(a["last_seen_at"])),
        ("occurrences", str(a["occurrences"])),
        ("observed", _figure(a["observed"], unit)),
        ("expected", expected),
        ("score", _figure(a["score"], "")),
        ("acknowledged", _joined(_local(a["acknowledged_at"]), a["acknowledged_by"], a["ack_note"])),
        (
            "resolved",
            _joined(
                _local(a["resolved_at"]), _label(a["resolution"], lang), a["resolved_by"], a["resolve_note"]
            ),
        ),
    ]
    for key, value in fields:
        if value:
            console.print(f"{words[key]}: {value}", markup=False, soft_wrap=True)
    if a["evidence"]:
        console.print(f"{words['evidence']}:", markup=False)
        console.print(json.dumps(a["evidence"], ensure_ascii=False, indent=2, default=str), markup=False)
    table = Table(
        words["at"], words["event"], words["actor"], words["severity"], words["note"], title=words["history"]
    )
    for e in detail.events:
        table.add_row(
            _local(e["at"]),
            _label(e["event"], lang),
            str(e["actor"]),
            _label(e["severity"], lang),
            str(e["note"]),
        )
    console.print(table)


@alerts_app.command("ack")
def alerts_ack(
    ctx: typer.Context,
    alert_id: Annotated[int, _ID],
    by: Annotated[str, _BY],
    note: Annotated[str, typer.Option("--note", help="Why, or what is being done (optional).")] = "",
) -> None:
    """Acknowledge an open alert: someone is on it. It keeps updating until it is resolved."""
    with _database(ctx) as conn:
        acknowledge(conn, alert_id, by, note)
    console.print(f"alert {alert_id} acknowledged by {by}", markup=False)


@alerts_app.command("resolve")
def alerts_resolve(
    ctx: typer.Context,
    alert_id: Annotated[int, _ID],
    by: Annotated[str, _BY],
    note: Annotated[str, typer.Option("--note", help="Why it is resolved (required).")],
) -> None:
    """Resolve an alert by hand; the same episode stays resolved, a new one opens a new alert."""
    with _database(ctx) as conn:
        resolve(conn, alert_id, by, note)
    console.print(f"alert {alert_id} resolved by {by}", markup=False)
