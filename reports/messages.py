"""Every text of the monthly report: one key, a Chinese and an English text.

Chinese is the default (the readers are park managers and energy-saving inspectors in
Hubei); ``--lang en`` switches to English. Texts may hold ``{name}`` fields filled by
:func:`text`. Status, severity, variant and period words are the shared terms of
:mod:`parkdata.i18n`, so that a figure reads the same in Grafana and in the report.
"""

from __future__ import annotations

from typing import Final

from parkdata.i18n import Catalogue, Lang, MessageError, term
from reports.errors import ReportInputError

__all__ = ["Lang", "MessageError", "keys", "parse_lang", "text"]


def parse_lang(value: str | Lang) -> Lang:
    """``zh`` or ``en`` → :class:`Lang`; :class:`~reports.errors.ReportInputError` otherwise."""
    try:
        return Lang(value)
    except ValueError:
        raise ReportInputError(f"language must be zh or en, got {value!r}") from None


_TEXTS: Final[dict[str, tuple[str, str]]] = {
    # -- the document -----------------------------------------------------------------------
    "report.title": ("月度节能报告", "Monthly energy-saving report"),
    "report.month": ("{year} 年 {month} 月", "{month_en} {year}"),
    "report.scope.city": term("level.city"),
    "report.scope.park": ("{name}（{code}）", "{name} ({code})"),
    "report.generated": ("生成时间：{time}（北京时间）", "Generated {time} (China time, UTC+8)"),
    "report.variant": ("标题数字口径：{variant}", "Headline figures: {variant}"),
    "report.variant.default": (
        "（目标考核口径：发改环资〔2022〕803号扣除原料用能，发改环资〔2024〕113号非化石能源不纳入能耗强度调控）",
        " (the variant the target is assessed in: feedstock excluded by 发改环资〔2022〕803号, non-fossil "
        "energy by 发改环资〔2024〕113号)",
    ),
    "report.incomplete": (
        "本月尚未结束：数字截至生成时间，月末前仍会变化。",
        "This month has not ended: the figures are those at the time of generation and will change.",
    ),
    "report.sources": (
        "数据来自 api 视图：api.intensity、api.intensity_contribution、api.intensity_forecast、"
        "api.energy_tce_month、api.energy_carrier_month、api.alert、api.alert_event、api.quarantine、"
        "api.value_added。",
        "Data from the api views: api.intensity, api.intensity_contribution, api.intensity_forecast, "
        "api.energy_tce_month, api.energy_carrier_month, api.alert, api.alert_event, api.quarantine, "
        "api.value_added.",
    ),
    "report.low_mark": ("标 ! 者数据完整率低于 90 %", "! marks coverage below 90 %"),
    "page.before": ("第 ", "Page "),
    "page.middle": (" 页 / 共 ", " of "),
    "page.after": (" 页", ""),
    # -- sections ----------------------------------------------------------------------------
    "section.overview": ("总体情况", "Overview"),
    "section.parks": ("各园区", "Parks"),
    "section.ranking": ("企业排名：年初至今较 2022 年", "Enterprises ranked by change vs 2022, year to date"),
    "section.carriers": ("分品种能耗与碳排放", "Energy and CO₂ by carrier"),
    "section.industries": ("分行业能耗与碳排放", "Energy and CO₂ by industry"),
    "section.alerts": ("告警", "Alerts"),
    "section.quality": ("数据质量", "Data quality"),
    "section.method": ("口径与说明", "Definitions and sources"),
    "section.figures": ("能耗强度与目标（三种口径）", "Intensity and target (three variants)"),
    "section.chart": ("能耗强度与目标路径", "Intensity and the target path"),
    # -- headline cards ----------------------------------------------------------------------
    "card.month_intensity": ("本月能耗强度", "Intensity this month"),
    "card.ytd_intensity": ("年初至今能耗强度", "Intensity, year to date"),
    "card.ytd_change": ("年初至今较 2022 年", "Year to date vs 2022"),
    "card.rolling12_intensity": ("滚动 12 个月能耗强度", "Intensity, rolling 12 months"),
    "card.energy": ("本月能耗", "Energy this month"),
    "card.co2": ("本月碳排放", "CO₂ this month"),
    "card.coverage": ("数据完整率 {coverage}", "coverage {coverage}"),
    "card.energy_note": ("全部企业，含未报增加值者", "all enterprises, with or without value added"),
    "card.co2_incomplete": ("部分品种无排放因子", "some carriers have no CO₂ factor"),
    "card.co2_provisional": ("部分电网因子为最近年份暂用值", "a provisional grid factor was used"),
    # -- units and columns -------------------------------------------------------------------
    "unit.tce": ("tce", "tce"),
    "unit.intensity": ("tce/万元", "tce/10⁴ yuan"),
    "unit.co2": ("t CO₂", "t CO₂"),
    "col.period": ("期间", "Period"),
    "col.variant": ("口径", "Variant"),
    "col.energy_tce": ("能耗 (tce)", "Energy (tce)"),
    "col.value_added_10k_yuan": ("增加值 (万元, 2022 年价)", "Value added (10⁴ yuan, 2022 prices)"),
    "col.intensity": ("能耗强度 (tce/万元)", "Intensity (tce/10⁴ yuan)"),
    "col.base_2022": ("2022 年基数 (tce/万元)", "2022 base (tce/10⁴ yuan)"),
    "col.change_vs_2022": ("较 2022 年", "vs 2022"),
    "col.path_value": ("路径值 (tce/万元)", "Path (tce/10⁴ yuan)"),
    "col.target_2027": ("2027 年目标 (tce/万元)", "2027 target (tce/10⁴ yuan)"),
    "col.status": ("状态", "Status"),
    "col.coverage": ("数据完整率", "Coverage"),
    "col.value_added_coverage": ("增加值覆盖率", "Value-added coverage"),
    "col.rank": ("排名", "Rank"),
    "col.enterprise": term("level.enterprise"),
    "col.industry": ("行业 (GB/T 4754-2017)", "Industry (GB/T 4754-2017)"),
    "col.contribution": ("对园区变化的贡献", "Contribution to the park's change"),
    "col.park": term("level.park"),
    "col.carrier": ("能源品种", "Carrier"),
    "col.energy_gross": ("综合能耗 (tce)", "Gross energy (tce)"),
    "col.energy_variant": ("{variant} (tce)", "{variant} (tce)"),
    "col.share": ("占比", "Share"),
    "col.feedstock_tce": ("其中原料用能 (tce)", "Of which feedstock (tce)"),
    "col.co2_t": ("碳排放 (t CO₂)", "CO₂ (t CO₂)"),
    "col.lowest_coverage": ("最低完整率", "Lowest coverage"),
    "col.enterprises": ("企业数", "Enterprises"),
    "col.kind": ("类型", "Kind"),
    "col.severity": ("严重程度", "Severity"),
    "col.opened": ("本月新开", "Opened in the month"),
    "col.resolved": ("本月解决", "Resolved in the month"),
    "col.open_at_end": ("月末未解决", "Unresolved at month end"),
    "col.alert_id": ("编号", "Id"),
    "col.subject": ("对象", "Subject"),
    "col.summary": ("说明", "Summary"),
    "col.window": ("时段（北京时间）", "Episode (China time)"),
    "col.observed": ("观测值", "Observed"),
    "col.expected": ("预期范围", "Expected"),
    "col.unit": ("单位", "Unit"),
    "col.score": ("得分", "Score"),
    "col.state": ("目前状态", "State now"),
    "col.value_added_current": ("增加值 (万元, 当年价)", "Value added (10⁴ yuan, current prices)"),
    "col.quality_alerts": ("质量告警", "Quality alerts"),
    "col.reason": ("原因代码", "Reason code"),
    "col.messages": ("消息数", "Messages"),
    "col.replayed": ("已重放入库", "Replayed and stored"),
    "row.total": ("合计", "Total"),
    # -- values ------------------------------------------------------------------------------
    "period.month": ("本月", "Month"),
    "period.ytd": term("period_type.ytd"),
    "period.rolling12": term("period_type.rolling12"),
    "variant.gross": term("variant.gross"),
    "variant.excl_feedstock": term("variant.excl_feedstock"),
    "variant.excl_feedstock_nonfossil": term("variant.excl_feedstock_nonfossil"),
    "variant.short.gross": ("综合能耗", "Gross"),
    "variant.short.excl_feedstock": ("扣除原料", "Excl. feedstock"),
    "variant.short.excl_feedstock_nonfossil": ("扣除原料和非化石", "Excl. feedstock, non-fossil"),
    "word.coverage": ("完整率", "coverage"),
    "status.on_track": term("status.on_track"),
    "status.at_risk": term("status.at_risk"),
    "status.off_track": term("status.off_track"),
    "status.none": ("—", "—"),
    "severity.critical": term("severity.critical"),
    "severity.warning": term("severity.warning"),
    "severity.info": term("severity.info"),
    "state.open": term("alert_state.open"),
    "state.acknowledged": term("alert_state.acknowledged"),
    "state.resolved": term("alert_state.resolved"),
    "va.present": ("已报", "reported"),
    "va.missing": ("未报", "not reported"),
    "va.no_index": ("无价格指数", "no price index"),
    "none": ("—", "—"),
    # -- section texts -----------------------------------------------------------------------
    "figures.variants": (
        "口径：综合能耗；扣除原料 = 扣除原料用能；扣除原料和非化石 = 扣除原料用能和非化石能源；"
        "加粗行为标题口径。",
        "Variants: gross consumption; excluding feedstock; excluding feedstock and non-fossil energy; the "
        "bold rows are the headline variant.",
    ),
    "figures.note": (
        "能耗与增加值只计同时有能耗数据和 2022 年可比价增加值的企业月份；"
        "本月数字与全年路径比较，季节性会体现出来。",
        "Energy and value added count only the enterprise-months that have both energy data and value "
        "added at 2022 prices; a single month is compared with an annual path, so seasons show.",
    ),
    "chart.none": ("没有可绘制的强度数据。", "No intensity figures to draw."),
    "chart.no_base": (
        "没有 2022 年基数（缺少基年统计），无法绘制目标路径。",
        "No 2022 base (no base-year statistics): the target path cannot be drawn.",
    ),
    "ranking.park_change": (
        "口径：{variant}。园区年初至今较 2022 年 {change}，各企业贡献之和等于园区的变化。",
        "Variant: {variant}. The park's year to date vs 2022 is {change}; the enterprises' contributions "
        "add up to it.",
    ),
    "ranking.best": ("最好的 {n} 家", "Best {n}"),
    "ranking.worst": ("最差的 {n} 家", "Worst {n}"),
    "ranking.none": (
        "本园区没有企业的年初至今数字。",
        "No enterprise of this park has a year-to-date figure.",
    ),
    "carriers.note": (
        "各品种为其在综合能耗中的份额（外供能源与自发光伏电力按其符号计入，分表不重复计），"
        "各品种之和等于综合能耗；碳排放为基于地点的 CO₂。完整率为该品种各企业中的最低值。",
        "Each carrier's share of gross consumption (exported energy and on-site PV electricity with their "
        "signs, sub-meters not counted twice); the carriers add up to gross consumption. CO₂ is "
        "location-based. Coverage is the lowest of the carrier among the enterprises.",
    ),
    "carriers.no_co2": ("— 该品种无碳排放因子", "— no CO₂ factor for the carrier"),
    "carriers.none": ("本月没有分品种数据。", "No energy by carrier this month."),
    "industries.note": (
        "行业名称为 GB/T 4754-2017《国民经济行业分类》的大类名称（代码前两位）。",
        "Industry names are the divisions (first two digits) of GB/T 4754-2017; English names are "
        "this report's translation.",
    ),
    "industries.co2_mark": (
        "* 部分品种无碳排放因子，碳排放偏低。",
        "* some carriers have no CO₂ factor: the CO₂ figure is understated.",
    ),
    "industries.none": ("本月没有分行业数据。", "No energy by industry this month."),
    "alerts.note": (
        "按告警历史（api.alert_event）统计：本月新开 = 本月首次打开或重新打开；本月解决 = 本月被解决；"
        "月末未解决 = 月末时仍为待处理或已确认。严重程度为月末前达到的最高级别；"
        "说明与证据为告警最新一次检出。",
        "Counted from the alert history (api.alert_event): opened = first opened or reopened in the "
        "month; resolved = resolved in the month; unresolved at month end = open or acknowledged at the "
        "end of the month. Severity is the highest reached by the month's end; summary and evidence are "
        "the alert's latest detection.",
    ),
    "alerts.none": ("本月没有告警。", "No alerts this month."),
    "alerts.list": ("警告与严重告警", "Warning and critical alerts"),
    "alerts.list_none": ("本月没有警告或严重告警。", "No warning or critical alerts this month."),
    "alerts.more": ("另有 {n} 条未列出（得分较低）。", "{n} more not listed (lower scores)."),
    "quality.enterprises": ("各企业本月数据", "Each enterprise's data this month"),
    "quality.note": (
        "数据完整率 = 收到读数 / 应收读数（api.energy_tce_month），省级在线监测上传要求 ≥ 90 %；"
        "增加值为本月是否已报（api.value_added）。",
        "Coverage = readings received / expected (api.energy_tce_month); the provincial rule for online "
        "monitoring uploads is ≥ 90 %. Value added: whether this month's was reported (api.value_added).",
    ),
    "quality.omitted": (
        "另有 {n} 家企业数据完整、增加值已报、无质量告警，未列出。",
        "{n} more enterprises with full coverage, value added reported and no quality alert are not listed.",
    ),
    "quality.quarantine": (
        "本月隔离消息（按接收时间、原因）",
        "Quarantined messages this month (by receipt, reason)",
    ),
    "quality.no_quarantine": ("本月没有隔离消息。", "No quarantined messages this month."),
    "quality.alerts": ("数据质量告警", "Data-quality alerts"),
    "quality.no_alerts": ("本月没有数据质量告警。", "No data-quality alerts this month."),
    # -- charts ------------------------------------------------------------------------------
    "chart.ytd": ("年初至今", "Year to date"),
    "chart.rolling12": ("滚动 12 个月", "Rolling 12 months"),
    "chart.path": ("均匀下降路径", "Even path"),
    "chart.base": ("2022 年基数", "2022 base"),
    "chart.target": ("2027 年目标", "2027 target"),
    "chart.forecast": ("全年预测（90 % 区间）", "Year forecast (90 % interval)"),
    "chart.low": ("完整率 < 90 %", "coverage < 90 %"),
    "chart.report_month": ("报告月份", "Report month"),
    "chart.intensity_axis": ("能耗强度 (tce/万元)", "Intensity (tce/10⁴ yuan)"),
    "chart.energy_axis": ("能耗 (tce)", "Energy (tce)"),
    "chart.co2_axis": ("碳排放 (t CO₂)", "CO₂ (t CO₂)"),
    "chart.contribution_axis": ("对园区变化的贡献（百分点）", "Contribution to the park's change (points)"),
    "chart.intensity_alt": (
        "{scope}能耗强度（{variant}）与 2022 年基数、均匀下降路径和 2027 年目标",
        "{scope}: intensity ({variant}) with the 2022 base, the even path and the 2027 target",
    ),
    "chart.carriers_alt": ("分品种能耗与碳排放", "Energy and CO₂ by carrier"),
    "chart.contribution_alt": ("{scope}各企业对园区变化的贡献", "{scope}: each enterprise's contribution"),
    # -- definitions -------------------------------------------------------------------------
    "method.intensity": (
        "能耗强度 = 能耗 (tce) / 工业增加值 (万元, 2022 年可比价)。较 2022 年 = 强度 / 2022 年基数 − 1，"
        "负值为下降。2027 年目标 = 2022 年基数 × 0.90；均匀下降路径 = 基数 × 0.9^((t − 2022)/5)"
        "（每年下降 2.085 %）。",
        "Intensity = energy (tce) / industrial value added (10⁴ yuan at 2022 prices). vs 2022 = intensity / "
        "2022 base − 1; negative is a fall. 2027 target = 0.90 × 2022 base; even path = base × "
        "0.9^((t − 2022)/5) (2.085 % a year).",
    ),
    "method.status": (
        "状态：不高于路径值为符合路径；高于路径但不高于 2022 年基数为有风险；高于基数为偏离。",
        "Status: at or below the path value on track; above it but not above the 2022 base at risk; above "
        "the base off track.",
    ),
    "method.variants": (
        "三种口径：综合能耗（GB/T 2589-2020）；扣除原料用能（发改环资〔2022〕803号）；"
        "再扣除非化石能源（发改环资〔2024〕113号）。每个数字均注明其口径。",
        "Three variants: gross consumption (GB/T 2589-2020); excluding feedstock (发改环资〔2022〕803号); "
        "also excluding non-fossil energy (发改环资〔2024〕113号). Every figure states its variant.",
    ),
    "method.coverage": (
        "数据完整率 = 收到读数 / 应收读数；期间内缺失的月份按 0 计。低于 90 % 的数字标 !，不隐藏"
        "（省级在线监测上传完整率要求）。",
        "Coverage = readings received / expected; months missing in a period count 0. Figures below 90 % "
        "are marked !, never hidden (the provincial completeness rule for online monitoring uploads).",
    ),
    "method.co2": (
        "碳排放为基于地点的 CO₂：电力按所选电网区域当年排放因子，"
        "燃料按《工业其他行业企业温室气体排放核算方法与报告指南》。",
        "CO₂ is location-based: electricity at the selected grid region's factor of the year, fuels by the "
        "GHG accounting guideline for other industrial enterprises (2015).",
    ),
    "method.details": (
        "规则与因子来源见 docs/accounting.md，视图见 docs/api.md，告警见 docs/alerts.md。",
        "Rules and factor sources: docs/accounting.md; views: docs/api.md; alerts: docs/alerts.md.",
    ),
}

_MONTHS_EN: Final = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


_CATALOGUE: Final = Catalogue(_TEXTS)


def text(key: str, lang: Lang, **fields: object) -> str:
    """The text of ``key`` in ``lang``, its ``{name}`` fields filled from ``fields``.

    A ``month`` field (1–12) also fills ``month_en`` with the month's English name.

    Raises
    ------
    MessageError
        The key is not in the catalogue.
    """
    month = fields.get("month")
    if isinstance(month, int) and "month_en" not in fields:
        fields = {**fields, "month_en": _MONTHS_EN[month - 1]}
    return _CATALOGUE.text(key, lang, **fields)


def keys() -> frozenset[str]:
    """Every key of the catalogue."""
    return _CATALOGUE.keys()
