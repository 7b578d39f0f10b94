"""Every user-facing text of the dashboards and alerts: one key, a Chinese and an English text.

Chinese is the default language (users are park managers and energy-saving
inspectors in Hubei); ``--lang en`` switches to English. Alert annotations
may contain Go-template placeholders (``{{ $values.B.Value }}``) that Grafana
fills with the evidence when the alert fires; both languages carry the same
placeholders. The words every surface shares (variants, status, severities,
alert states, period types, levels) come from :data:`parkdata.i18n.TERMS`.
"""

from __future__ import annotations

from typing import Final

from parkdata.i18n import Catalogue, Lang, MessageError, term

__all__ = ["Lang", "MessageError", "keys", "text"]

_TEXTS: Final[dict[str, tuple[str, str]]] = {
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
    "variant.gross": term("variant.gross"),
    "variant.excl_feedstock": term("variant.excl_feedstock"),
    "variant.excl_feedstock_nonfossil": term("variant.excl_feedstock_nonfossil"),
    # -- rows ---------------------------------------------------------------------
    "row.ingest": ("采集", "Ingestion"),
    "row.quarantine": ("隔离区与冲突", "Quarantine and conflicts"),
    "row.coverage": ("数据完整率", "Data coverage"),
    "row.offline": ("离线设备", "Offline devices"),
    "row.alerts": ("未处理告警", "Open alerts"),
    "panel.open_alert_counts.title": ("按严重程度的未处理告警", "Open alerts by severity"),
    "panel.open_alerts.title": ("未处理告警及证据", "Open alerts with their evidence"),
    "panel.open_alerts.description": (
        "检测器发现且尚未解决的问题（打开或已确认），严重程度高者在前；观测值、预期范围与得分为证据。"
        "用 parkenergy alerts show/ack/resolve 查看、确认、关闭。",
        "Problems the detectors found that are not resolved (open or acknowledged), most severe first; "
        "observed value, expected range and score are the evidence. Use parkenergy alerts show/ack/resolve.",
    ),
    "panel.alert_history.title": ("告警记录", "Alert history"),
    "col.critical": ("严重", "Critical"),
    "col.warning": ("警告", "Warning"),
    "col.info": ("提示", "Info"),
    "col.severity": ("严重程度", "Severity"),
    "col.state": ("状态", "State"),
    "col.summary": ("说明", "Summary"),
    "col.observed": ("观测值", "Observed"),
    "col.expected_low": ("预期下限", "Expected from"),
    "col.expected_high": ("预期上限", "Expected to"),
    "col.score": ("得分", "Score"),
    "col.since": ("发生时间", "Since"),
    "col.last_seen_at": ("最近检出", "Last seen"),
    "col.occurrences": ("检出次数", "Detections"),
    "col.acknowledged_by": ("确认人", "Acknowledged by"),
    "col.ack_note": ("确认说明", "Acknowledgement note"),
    "col.alert_id": ("告警编号", "Alert id"),
    "col.at": ("时间", "Time"),
    "col.event": ("事件", "Event"),
    "col.actor": ("操作人", "By"),
    "col.note": ("说明", "Note"),
    "value.severity.critical": term("severity.critical"),
    "value.severity.warning": term("severity.warning"),
    "value.severity.info": term("severity.info"),
    "value.alert_state.open": term("alert_state.open"),
    "value.alert_state.acknowledged": term("alert_state.acknowledged"),
    "value.alert_state.resolved": term("alert_state.resolved"),
    "annotation.alerts": ("检测告警", "Detector alerts"),
    # -- panels: data quality -------------------------------------------------------
    "panel.ingest_rate.title": ("采集读数（按事件时间）", "Readings ingested (by event time)"),
    "panel.ingest_rate.description": (
        "每个时间区间内存入的读数条数，按读数的事件时间归入区间。数据来自按小时汇总的到达统计"
        "（api.arrival_hour，时间范围超过 35 天时按日，api.arrival_day），故分辨率为 1 小时（或 1 天），"
        "比区间更细的变化看不到；最近约一分钟内存入的读数在下一次能耗计算后才计入",
        "Readings stored per interval, bucketed by event time. Read from the hourly arrival rollup "
        "(api.arrival_hour; daily, api.arrival_day, for ranges over 35 days): resolution one hour "
        "(or one day), nothing finer shows; readings stored in about the last minute count after the "
        "next energy run",
    ),
    "panel.lag.title": ("采集延迟", "Ingest lag"),
    "panel.lag.description": (
        "入库时间与事件时间之差（平均与最大），按读数的事件时间归入区间。数据来自按小时汇总的到达统计"
        "（时间范围超过 35 天时按日），故分辨率为 1 小时（或 1 天）",
        "Time between event and storage (mean and maximum), bucketed by event time. Read from the "
        "hourly arrival rollup (daily for ranges over 35 days): resolution one hour (or one day)",
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
        "收到读数 / 应收读数，按能耗汇总的口径（api.meter_energy_hour，超过 35 天按日）：累计型与区间型表计的"
        "有效读数，应收读数按各表计预期上报间隔，自其首条读数起，静默表计计至最近一次能耗计算（减宽限期）。"
        "瞬时值表计（gauge）和从未上报的表计不在其内（见节能监察的离线表计）；省级要求 ≥ 90 %",
        "Readings received / expected as the energy rollups count them (api.meter_energy_hour; daily "
        "beyond 35 days): valid readings of register and interval meters, expected at each meter's "
        "interval from its first reading on, silent meters up to the last energy run less a grace. "
        "Gauges and meters that never reported are not included (see offline meters on the inspector "
        "dashboard); provincial rule ≥ 90 %",
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
    # -- accounting dashboards ---------------------------------------------------------
    "dashboard.overview.title": ("市/园区总览", "City and park overview"),
    "dashboard.overview.description": (
        "能耗强度对比 2022 年基数与 2027 年目标路径、能耗与碳排放、重点企业、预测、数据完整率",
        "Energy intensity against the 2022 base and the 2027 path, energy and CO₂, top enterprises, "
        "forecast, data coverage",
    ),
    "dashboard.enterprise.title": ("企业详情", "Enterprise detail"),
    "dashboard.enterprise.description": (
        "表计、负荷曲线、能耗与去年同期对比、能耗强度、数据完整率；网关状态与隔离数据作为注释",
        "Meters, load profiles, energy against the same period last year, intensity, data coverage; "
        "gateway status and quarantine as annotations",
    ),
    "annotation.gateway_events": ("网关状态变化", "Gateway status changes"),
    "annotation.quarantine": ("隔离数据", "Quarantined messages"),
    "row.target": ("目标进度", "Progress to the target"),
    "row.energy": ("能耗与碳排放", "Energy and CO₂"),
    "row.movers": ("重点企业", "Top enterprises"),
    "row.forecast": ("预测（至 2027 年）", "Forecast to 2027"),
    "row.meters": ("表计", "Meters"),
    "row.load": ("负荷曲线", "Load profiles"),
    "row.consumption": ("能耗与强度", "Energy and intensity"),
    "row.above_path": ("高于目标路径的企业", "Enterprises above their target path"),
    "value.status.on_track": term("status.on_track"),
    "value.status.at_risk": term("status.at_risk"),
    "value.status.off_track": term("status.off_track"),
    "value.level.city": term("level.city"),
    "value.level.park": term("level.park"),
    "value.level.enterprise": term("level.enterprise"),
    "value.period_type.ytd": term("period_type.ytd"),
    "value.period_type.rolling12": term("period_type.rolling12"),
    "value.period_type.year": ("全年", "Year"),
    "value.period_type.month": ("月", "Month"),
    "value.coverage_flag.ok": ("正常", "OK"),
    "value.coverage_flag.low": ("完整率不足", "Low coverage"),
    "panel.intensity_status.title": ("能耗强度与目标进度", "Intensity and progress to the target"),
    "panel.intensity_status.description": (
        "全市及所选园区最新的年初至今与滚动 12 个月能耗强度（所选能耗口径，2022 年可比价）。"
        "状态：不高于均匀下降路径为符合路径；高于路径但不高于 2022 年为有风险；高于 2022 年为偏离。"
        "完整率低于 90 % 的数字已标记",
        "Latest year-to-date and rolling-12-month intensity of the city and the selected parks "
        "(selected variant, 2022 prices). Status: at or below the even path on track; above it but not "
        "above 2022 at risk; above 2022 off track. Figures with coverage below 90 % are marked",
    ),
    "panel.selection_intensity.title": (
        "所选企业能耗强度（滚动 12 个月）与目标路径",
        "Intensity of the selected enterprises (rolling 12 months) and the target path",
    ),
    "panel.selection_intensity.description": (
        "所选企业合计：能耗 / 增加值（2022 年可比价）；基数、路径与目标按其 2022 年统计计算。全选时即全市",
        "The selected enterprises together: energy / value added (2022 prices); base, path and target "
        "from their 2022 statistics. With all selected: the city",
    ),
    "panel.energy_total.title": ("所选企业能耗与碳排放", "Energy and CO₂ of the selected enterprises"),
    "panel.energy_total.description": (
        "时间范围内各月合计（月份从范围内的月初算起）；碳排放为基于地点的 CO₂",
        "Sum of the months starting in the range; CO₂ is location-based",
    ),
    "panel.energy_by_industry_total.title": ("分行业能耗", "Energy by industry"),
    "panel.energy_by_industry.title": ("分行业月度能耗", "Monthly energy by industry"),
    "panel.co2_by_industry.title": ("分行业月度碳排放", "Monthly CO₂ by industry"),
    "panel.energy_by_carrier.title": ("分品种能源消费（实物量）", "Energy by carrier (physical units)"),
    "panel.energy_by_carrier.description": (
        "各能源品种按表计单位的合计；折标与碳排放按品种的系数见 docs/accounting.md",
        "Totals per carrier in the meters' units; tce and CO₂ coefficients per carrier: docs/accounting.md",
    ),
    "panel.top_consumers.title": ("能耗最大的企业（年初至今）", "Largest consumers (year to date)"),
    "panel.top_movers.title": (
        "对园区强度变化贡献最大的企业（年初至今）",
        "Largest contributions to the park's intensity change (year to date)",
    ),
    "panel.top_movers.description": (
        "贡献 = (企业能耗/园区增加值 − 企业 2022 年能耗/园区 2022 年增加值) / 园区 2022 年强度；"
        "园区内各企业贡献之和等于园区较 2022 年的变化",
        "Contribution = (enterprise energy / park value added − its 2022 energy / park 2022 value added) "
        "/ park 2022 intensity; a park's contributions add up to its change vs 2022",
    ),
    "panel.intensity_forecast.title": ("能耗强度预测（至 2027 年）", "Intensity forecast to 2027"),
    "panel.intensity_forecast.description": (
        "最新一次预测：全年强度（已测月份 + 预测月份）及其 90 % 区间；"
        "区间上限不高于路径为符合路径，点预测高于路径为偏离",
        "Latest forecast run: calendar-year intensity (observed + forecast months) with its 90 % interval; "
        "on track when the upper bound is at or below the path, off track when the point is above it",
    ),
    "panel.energy_forecast.title": ("月度能耗：实测与预测", "Monthly energy: observed and forecast"),
    "panel.energy_forecast.description": (
        "只选一个园区时为该园区，否则为全市（预测区间不能按园区相加）；区间为 90 % 预测区间",
        "The park when exactly one is selected, otherwise the city (prediction intervals cannot be added "
        "over parks); 90 % prediction interval",
    ),
    "panel.coverage_trend.title": ("各园区数据完整率", "Data coverage by park"),
    "panel.coverage_trend.description": (
        "所选企业表计的收到读数 / 应收读数；低于 90 % 为红色",
        "Readings received / expected over the selected enterprises' meters; red below 90 %",
    ),
    "panel.enterprise_coverage.title": (
        "各企业数据完整率（年初至今）",
        "Coverage by enterprise (year to date)",
    ),
    "panel.enterprise_meters.title": ("表计", "Meters"),
    "panel.electric_load.title": ("电力负荷", "Electric load"),
    "panel.electric_load.description": (
        "各电表每个时段的平均功率 = 电量 / 时长；范围 ≤ 3 天用 15 分钟数据，≤ 35 天用小时数据，更长用日数据",
        "Mean power of each electricity meter = energy / bucket length; 15-minute buckets up to 3 days, "
        "hours up to 35 days, days beyond",
    ),
    "panel.other_load.title": ("其他能源品种用量速率", "Other carriers: rate of use"),
    "panel.other_load.description": (
        "各表计每小时用量（表计单位/小时）",
        "Use per hour of each meter (meter unit per hour)",
    ),
    "panel.energy_vs_last_year.title": (
        "能耗：本期与去年同期",
        "Energy: this period and the same period last year",
    ),
    "panel.energy_vs_last_year.description": (
        "对比基准为去年同期实测值（同比），不是预测：预测只覆盖建模数据之后的月份。"
        "范围 ≤ 92 天按日，更长按月",
        "The comparison is the same period one year earlier, not a forecast: forecasts cover only months "
        "after the data they were fitted on. Daily up to 92 days, monthly beyond",
    ),
    "panel.intensity_history.title": (
        "能耗强度（滚动 12 个月）与目标路径",
        "Intensity (rolling 12 months) and the target path",
    ),
    "panel.enterprise_coverage_daily.title": ("每日数据完整率", "Daily data coverage"),
    "panel.meter_coverage.title": ("各表计数据完整率", "Coverage by meter"),
    "panel.above_path_count.title": ("高于路径的企业数", "Enterprises above their path"),
    "panel.above_path.title": ("高于目标路径的企业", "Enterprises above their target path"),
    "panel.above_path.description": (
        "最新年初至今能耗强度高于 2027 年均匀下降路径的企业（所选能耗口径），附强度、路径、基数、能耗、"
        "增加值与数据完整率",
        "Enterprises whose latest year-to-date intensity is above the even path to 2027 (selected variant), "
        "with intensity, path, base, energy, value added and coverage",
    ),
    "col.level": ("范围", "Scope"),
    "col.park_name": ("园区名称", "Park name"),
    "col.period_type": ("期间", "Period type"),
    "col.period": ("截至", "Period"),
    "col.intensity": ("能耗强度", "Intensity"),
    "col.base_2022": ("2022 年基数", "2022 base"),
    "col.change_vs_2022": ("较 2022 年", "Change vs 2022"),
    "col.path_value": ("路径值", "Path"),
    "col.target_2027": ("2027 年目标", "2027 target"),
    "col.coverage": ("数据完整率", "Coverage"),
    "col.coverage_flag": ("完整率", "Coverage check"),
    "col.value_added_coverage": ("增加值覆盖率", "Value-added coverage"),
    "col.enterprises": ("企业数", "Enterprises"),
    "col.energy_tce": ("能耗", "Energy"),
    "col.co2_t": ("碳排放", "CO₂"),
    "col.industry_code": ("行业代码", "Industry"),
    "col.purpose": ("用途", "Purpose"),
    "col.meters": ("表计数", "Meters"),
    "col.quantity": ("用量", "Quantity"),
    "col.estimated_quantity": ("其中估算", "Of which estimated"),
    "col.value_added_10k_yuan": ("增加值（万元，2022 年价）", "Value added (10⁴ yuan, 2022 prices)"),
    "col.contribution_to_change": ("对园区变化的贡献", "Contribution to the park's change"),
    "col.year": ("年份", "Year"),
    "col.intensity_lower": ("强度下限", "Intensity, lower"),
    "col.intensity_upper": ("强度上限", "Intensity, upper"),
    "col.months_used": ("建模月数", "Months used"),
    "col.data_until": ("数据截至", "Data until"),
    "col.model": ("模型", "Model"),
    "col.observed_tce": ("实测能耗", "Observed"),
    "col.forecast_tce": ("预测能耗", "Forecast"),
    "col.forecast_lower_tce": ("预测下限（90 %）", "Forecast, lower (90 %)"),
    "col.forecast_upper_tce": ("预测上限（90 %）", "Forecast, upper (90 %)"),
    "col.months": ("月数", "Months"),
    "col.kind": ("类型", "Kind"),
    "col.parent_meter_code": ("上级表计", "Parent meter"),
    "col.multiplier": ("倍率", "Multiplier"),
    "col.retired_at": ("停用时间", "Retired"),
    "col.energy_tce_last_year": ("去年同期能耗", "Energy, same period last year"),
    "col.expected_readings": ("应收读数", "Expected readings"),
    "col.estimated_share": ("估算占比", "Estimated share"),
    "col.flagged_quantity": ("被拒增量", "Refused deltas"),
    "col.off_track": term("status.off_track"),
    "col.at_risk": term("status.at_risk"),
    "col.above_path": ("高于路径", "Above the path"),
    # -- alert rules ----------------------------------------------------------------------------
    "alert.group.target": ("目标进度", "Target progress"),
    "alert.target_path_breach.title": ("能耗强度高于目标路径", "Intensity above the target path"),
    "alert.target_path_breach.summary": (
        "园区 {{ $labels.park }}{{ if $labels.enterprise }} 企业 {{ $labels.enterprise }}{{ else }}（全园区）"
        '{{ end }}年初至今能耗强度 {{ printf "%.4f" $values.intensity.Value }} 吨标准煤/万元，'
        '高于目标路径值 {{ printf "%.4f" $values.path.Value }} 达 {{ printf "%.1f" $values.B.Value }} %',
        "Park {{ $labels.park }}{{ if $labels.enterprise }} enterprise {{ $labels.enterprise }}{{ else }} "
        '(whole park){{ end }}: year-to-date intensity {{ printf "%.4f" $values.intensity.Value }} '
        'tce/10⁴ yuan is {{ printf "%.1f" $values.B.Value }} % above the path value '
        '{{ printf "%.4f" $values.path.Value }}',
    ),
    "alert.target_path_breach.description": (
        "口径：扣除原料用能和非化石能源（2022 年可比价）。"
        '2022 年基数 {{ printf "%.4f" $values.base.Value }}，'
        "2027 年目标为基数的 90 %，路径为逐年均匀下降。强度高于基数即为偏离。详见节能监察看板。",
        "Variant: excluding feedstock and non-fossil energy (2022 prices). 2022 base "
        '{{ printf "%.4f" $values.base.Value }}; the 2027 target is 90 % of the base, the path an even '
        "decline. Above the base means off track. See the inspection dashboard.",
    ),
    "alert.group.detectors": ("异常检测", "Anomaly detection"),
    "alert.critical_alerts.title": ("未确认的严重告警", "Unacknowledged critical alerts"),
    "alert.critical_alerts.summary": (
        "园区 {{ $labels.park }} 有 {{ $values.B.Value }} 条未确认的严重告警，涉及 "
        "{{ $values.enterprises.Value }} 家企业，最早一条已持续 {{ humanizeDuration $values.oldest.Value }}",
        "Park {{ $labels.park }} has {{ $values.B.Value }} unacknowledged critical alerts at "
        "{{ $values.enterprises.Value }} enterprises; the oldest has been open for "
        "{{ humanizeDuration $values.oldest.Value }}",
    ),
    "alert.critical_alerts.description": (
        "检测器判定为严重的问题（长时间离线、极端异常、严重偏离目标路径等），最高得分 "
        '{{ printf "%.1f" $values.top_score.Value }}；证据见节能监察看板的“未处理告警”表；'
        "用 parkenergy alerts ack 确认后不再通知。",
        "Problems the detectors rate critical (long outages, extreme anomalies, far off the target path …), "
        'highest score {{ printf "%.1f" $values.top_score.Value }}; the evidence is in the open-alerts table '
        "of the inspection dashboard. Acknowledge them with parkenergy alerts ack to stop the notifications.",
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


_CATALOGUE: Final = Catalogue(_TEXTS)


def text(key: str, lang: Lang) -> str:
    """The text of ``key`` in ``lang`` (:class:`~parkdata.i18n.MessageError` if unknown)."""
    return _CATALOGUE.text(key, lang)


def keys() -> frozenset[str]:
    """Every key of the catalogue."""
    return _CATALOGUE.keys()
