"""Every user-facing text of the dashboards and alerts: one key, a Chinese and an English text.

Chinese is the default language (users are park managers and energy-saving
inspectors in Hubei); ``--lang en`` switches to English. Alert annotations
may contain Go-template placeholders (``{{ $values.B.Value }}``) that Grafana
fills with the evidence when the alert fires; both languages carry the same
placeholders.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class Lang(StrEnum):
    """Language of the generated dashboards and alerts."""

    ZH = "zh"
    EN = "en"


class MessageError(KeyError):
    """A text key that the catalogue does not have."""


_CATALOGUE: Final[dict[str, tuple[str, str]]] = {
    # -- folder, dashboards ---------------------------------------------------
    "folder.title": ("园区能耗监测", "Park energy monitoring"),
    "dashboard.quality.title": ("数据质量与采集健康", "Data quality and collector health"),
    "dashboard.quality.description": (
        "采集速率、延迟、隔离区与冲突、各企业数据完整率",
        "Ingest rate, lag, quarantine and conflicts, data coverage by enterprise",
    ),
    "dashboard.inspector.title": ("节能监察", "Energy-saving inspection"),
    "dashboard.inspector.description": (
        "离线表计与网关、相关企业近期隔离数据",
        "Offline meters and gateways, recent quarantine of their enterprises",
    ),
    # -- variables ---------------------------------------------------------------
    "var.park": ("园区", "Park"),
    "var.industry": ("行业", "Industry"),
    "var.enterprise": ("企业", "Enterprise"),
    "var.variant": ("能耗口径", "Energy variant"),
    "variant.gross": ("综合能耗", "Gross consumption"),
    "variant.excl_feedstock": ("扣除原料用能", "Excluding feedstock"),
    "variant.excl_feedstock_nonfossil": (
        "扣除原料用能和非化石能源",
        "Excluding feedstock and non-fossil energy",
    ),
    # -- rows ---------------------------------------------------------------------
    "row.ingest": ("采集", "Ingestion"),
    "row.quarantine": ("隔离区与冲突", "Quarantine and conflicts"),
    "row.coverage": ("数据完整率", "Data coverage"),
    "row.offline": ("离线设备", "Offline devices"),
    # -- panels: data quality -------------------------------------------------------
    "panel.ingest_rate.title": ("采集读数（按事件时间）", "Readings ingested (by event time)"),
    "panel.ingest_rate.description": (
        "每个时间区间内存入的读数条数",
        "Readings stored per interval, bucketed by event time",
    ),
    "panel.lag.title": ("采集延迟", "Ingest lag"),
    "panel.lag.description": (
        "入库时间与事件时间之差（平均与最大）",
        "Time between event and storage (mean and maximum)",
    ),
    "panel.collectors.title": ("采集服务", "Collectors"),
    "panel.collectors.description": (
        "每个采集服务的计数器；最后更新过久说明采集服务已停止",
        "Counters of every collector; an old last update means the collector stopped",
    ),
    "panel.collector_rate.title": ("平均采集速率", "Mean ingest rate"),
    "panel.quarantine_by_reason.title": ("隔离消息（按原因）", "Quarantined messages by reason"),
    "panel.quarantine_table.title": ("隔离原因汇总", "Quarantine by reason"),
    "panel.conflicts.title": ("读数冲突", "Reading conflicts"),
    "panel.conflicts.description": (
        "同一表计同一时刻收到不同数值：保留首个数值，其余记录在此",
        "A different value for an existing meter and time: the first value stays, the others are listed",
    ),
    "panel.conflicts_table.title": ("最近冲突", "Recent conflicts"),
    "panel.coverage.title": ("各企业数据完整率", "Data coverage by enterprise"),
    "panel.coverage.description": (
        "收到读数 / 应收读数（按表计的预期上报间隔）；省级要求 ≥ 90 %",
        "Readings received / expected (from each meter's expected interval); provincial rule ≥ 90 %",
    ),
    # -- panels: inspector --------------------------------------------------------------
    "panel.offline_meters.title": ("离线表计", "Offline meters"),
    "panel.offline_meters.description": (
        "截至所选时间范围末，最后一条读数早于 3 倍预期上报间隔的表计",
        "Meters whose last reading, at the end of the time range, is older than 3 expected intervals",
    ),
    "panel.offline_meter_count.title": ("离线表计数", "Offline meters"),
    "panel.offline_gateways.title": ("离线网关", "Offline gateways"),
    "panel.offline_gateway_count.title": ("离线网关数", "Offline gateways"),
    "panel.enterprise_quarantine.title": ("相关企业近期隔离数据", "Recent quarantine of these enterprises"),
    # -- column names -------------------------------------------------------------------
    "col.park_code": ("园区", "Park"),
    "col.enterprise_code": ("企业代码", "Enterprise code"),
    "col.enterprise_name": ("企业名称", "Enterprise"),
    "col.meter_code": ("表计", "Meter"),
    "col.carrier": ("能源品种", "Carrier"),
    "col.expected_interval_s": ("预期间隔", "Expected interval"),
    "col.last_reading": ("最后读数时间", "Last reading"),
    "col.silent_s": ("静默时长", "Silent for"),
    "col.gateway_status": ("网关状态", "Gateway"),
    "col.status": ("状态", "Status"),
    "col.changed_at": ("状态变化时间", "Changed at"),
    "col.offline_s": ("离线时长", "Offline for"),
    "col.reason": ("原因", "Reason"),
    "col.messages": ("消息数", "Messages"),
    "col.replayed": ("已重放入库", "Replayed"),
    "col.latest": ("最近一次", "Latest"),
    "col.received_at": ("接收时间", "Received at"),
    "col.topic": ("主题", "Topic"),
    "col.detail": ("详情", "Detail"),
    "col.ts": ("读数时间", "Reading time"),
    "col.stored_value": ("保留值", "Stored value"),
    "col.conflicting_value": ("冲突值", "Conflicting value"),
    "col.unit": ("单位", "Unit"),
    "col.received": ("收到读数", "Received"),
    "col.expected": ("应收读数", "Expected"),
    "col.coverage_pct": ("完整率", "Coverage"),
    "col.collector_id": ("采集服务", "Collector"),
    "col.started_at": ("启动时间", "Started"),
    "col.updated_at": ("最后更新", "Last update"),
    "col.stale_s": ("距最后更新", "Since last update"),
    "col.readings": ("读数", "Readings"),
    "col.stored": ("已存储", "Stored"),
    "col.duplicates": ("重复", "Duplicates"),
    "col.conflicts": ("冲突", "Conflicts"),
    "col.quarantined": ("隔离", "Quarantined"),
    "col.db_retries": ("数据库重试", "DB retries"),
    "col.last_lag_s": ("最近延迟", "Last lag"),
    "col.readings_per_s": ("读数/秒", "Readings/s"),
    "col.lag_mean_s": ("平均延迟", "Mean lag"),
    "col.lag_max_s": ("最大延迟", "Maximum lag"),
    "col.offline_meters": ("离线表计", "Offline meters"),
    "col.offline_gateways": ("离线网关", "Offline gateways"),
    # -- alert rules ----------------------------------------------------------------------------
    "alert.group.collector": ("采集健康", "Collector health"),
    "alert.group.devices": ("设备在线", "Device availability"),
    "alert.collector_down.title": ("采集服务停止", "Collector down"),
    "alert.collector_down.summary": (
        "已有 {{ humanizeDuration $values.B.Value }} 没有任何采集服务提交读数",
        "No collector has committed readings for {{ humanizeDuration $values.B.Value }}",
    ),
    "alert.collector_down.description": (
        "api.collector_stats.updated_at 超过 10 分钟未变化：读数没有入库。"
        "检查采集服务进程、MQTT 代理和数据库。",
        "api.collector_stats.updated_at is older than 10 minutes: readings are not being stored. "
        "Check the collector process, the MQTT broker and the database.",
    ),
    "alert.quarantine_spike.title": ("隔离消息激增", "Quarantine spike"),
    "alert.quarantine_spike.summary": (
        "近 10 分钟有 {{ $values.B.Value }} 条消息因「{{ $labels.reason }}」被隔离",
        "{{ $values.B.Value }} messages quarantined for {{ $labels.reason }} in the last 10 minutes",
    ),
    "alert.quarantine_spike.description": (
        "超过 50 条/10 分钟。用 parkenergy quarantine list --reason 查看详情，修正登记后可重放。",
        "More than 50 per 10 minutes. See parkenergy quarantine list --reason; after fixing the registry, "
        "replay them.",
    ),
    "alert.offline_meters.title": ("表计离线", "Meters offline"),
    "alert.offline_meters.summary": (
        "园区 {{ $labels.park }} 企业 {{ $labels.enterprise }} 有 {{ $values.B.Value }} 块表计离线",
        "{{ $values.B.Value }} meters of enterprise {{ $labels.enterprise }} in park {{ $labels.park }} "
        "are offline",
    ),
    "alert.offline_meters.description": (
        "最后读数早于 3 倍预期上报间隔；网关离线的企业不在此报警（另有网关离线报警）。",
        "Last reading older than 3 expected intervals; enterprises whose gateway is offline are left out "
        "(the gateway alert covers them).",
    ),
    "alert.offline_gateways.title": ("网关离线", "Gateway offline"),
    "alert.offline_gateways.summary": (
        "园区 {{ $labels.park }} 企业 {{ $labels.enterprise }} 的网关已离线 "
        "{{ humanizeDuration $values.B.Value }}",
        "The gateway of enterprise {{ $labels.enterprise }} in park {{ $labels.park }} has been offline "
        "for {{ humanizeDuration $values.B.Value }}",
    ),
    "alert.offline_gateways.description": (
        "网关发布了 offline 状态（或其 MQTT 遗嘱生效）超过 10 分钟。",
        "The gateway published offline (or its MQTT last will fired) more than 10 minutes ago.",
    ),
    # -- contact points -----------------------------------------------------------------------------
    "contact.message": (
        "{{ range .Alerts }}{{ .Annotations.summary }}\n{{ .Annotations.description }}\n{{ end }}",
        "{{ range .Alerts }}{{ .Annotations.summary }}\n{{ .Annotations.description }}\n{{ end }}",
    ),
    "contact.title": (
        "[{{ .Status | toUpper }}] 园区能耗监测：{{ .CommonLabels.alertname }}",
        "[{{ .Status | toUpper }}] Park energy: {{ .CommonLabels.alertname }}",
    ),
}


def text(key: str, lang: Lang) -> str:
    """The text of ``key`` in ``lang``.

    Raises
    ------
    MessageError
        The key is not in the catalogue.
    """
    try:
        zh, en = _CATALOGUE[key]
    except KeyError as exc:
        raise MessageError(key) from exc
    return zh if lang is Lang.ZH else en


def keys() -> frozenset[str]:
    """Every key of the catalogue."""
    return frozenset(_CATALOGUE)
