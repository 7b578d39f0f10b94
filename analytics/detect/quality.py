"""Data-quality rules of the online energy monitoring: completeness, daily vs monthly, value added. Pure.

The upload quality rules of the provincial online-monitoring practice (DOMAIN.md §4;
DESIGN.md "Anomalies": data-quality rule breaches, completeness < 90 %, daily vs monthly
> 5 %), applied to what this system would report upwards, per enterprise:

``quality.completeness`` — readings received / readings expected over the enterprise's
energy meters (register and interval meters; each meter's readings capped at its expected
number) in one local day is below 90 % (DOMAIN.md §4: completeness = received / expected
uploads ≥ 90 %). One finding per enterprise and day, ``started_at`` = the day's local
midnight. A day is assessed once it ended :data:`DAY_GRACE_S` before the run (batches in
transit are not missing data). The latest assessed day is the current one: its finding is
ongoing; earlier days in the lookback are reported as ended at their day's end (history).
Info below 90 %; a warning below :data:`COMPLETENESS_WARNING` (50 %: more than half a day
of data missing, e.g. a gateway down for half a day).

``quality.daily_vs_monthly`` — for a month, the sum of the enterprise's daily energy and its
monthly energy differ by more than 5 % of the monthly figure (DOMAIN.md §4: daily vs monthly
totals agree within 5 %). There is no monthly energy figure in the economic statistics
(value added and output are monthly, energy only in the annual 2022 baseline), so the two
figures are the ones this system reports: ``api.energy_tce_day`` summed over the month and
``api.energy_tce_month``, gross comprehensive consumption [tce], for the enterprise. They
disagree when the day and month rollups do (a continuous aggregate not refreshed, a
recompute that did not reach one of them, rows edited by hand) or when a factor's validity
starts within the month (each day is converted at its own factor, the month at the factor
of its first day). One finding per enterprise, ``started_at`` = the start of the earliest
month in the lookback that disagrees, ongoing while one does; warning.

``quality.value_added_missing`` — an enterprise with energy data in a month has no
value-added report for it (the monthly statistics of above-designated-size industry) once
the report is due: by the :data:`VALUE_ADDED_DUE_DAY` th of the following month (assumed
reporting calendar: the month's statistics are published in the first half of the next
month). Without it the month drops out of the intensity (docs/accounting.md "matched").
One finding per enterprise, ``started_at`` = the start of its earliest missing month in the
lookback, ongoing while any month is missing; warning.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Final

from analytics.detect.intensity import LOCAL, month_end, month_start
from analytics.findings import Finding, Severity, enterprise_subject

__all__ = [
    "COMPLETENESS",
    "COMPLETENESS_MIN",
    "COMPLETENESS_WARNING",
    "DAILY_VS_MONTHLY",
    "DAILY_VS_MONTHLY_MAX",
    "DAY_GRACE_S",
    "VALUE_ADDED_DUE_DAY",
    "VALUE_ADDED_MISSING",
    "DayCompleteness",
    "EnterpriseMonths",
    "MonthTotals",
    "assessed_days",
    "completeness_findings",
    "daily_vs_monthly_findings",
    "day_start",
    "value_added_due",
    "value_added_missing_findings",
]

COMPLETENESS: Final = "quality.completeness"
DAILY_VS_MONTHLY: Final = "quality.daily_vs_monthly"
VALUE_ADDED_MISSING: Final = "quality.value_added_missing"

COMPLETENESS_MIN: Final = 0.90
"""DOMAIN.md §4: completeness = received / expected uploads >= 90 %."""
COMPLETENESS_WARNING: Final = 0.50
"""Below this a day's completeness is a warning, not info."""
DAILY_VS_MONTHLY_MAX: Final = 0.05
"""DOMAIN.md §4: daily vs monthly totals agree within 5 %."""
DAY_GRACE_S: Final = 2 * 3600.0
"""A day is assessed this long after its end [s]."""
VALUE_ADDED_DUE_DAY: Final = 20
"""The value added of a month is due by this day of the next month (local)."""
MIN_MONTHLY_TCE: Final = 1e-6
"""Months whose both figures are below this [tce] are not compared."""


def day_start(day: date) -> datetime:
    """Local midnight (Asia/Shanghai) starting ``day``."""
    return datetime(day.year, day.month, day.day, tzinfo=LOCAL)


def assessed_days(now: datetime, count: int, grace_s: float = DAY_GRACE_S) -> list[date]:
    """The ``count`` latest local days that ended at least ``grace_s`` before ``now``, oldest first."""
    last = (now - timedelta(seconds=grace_s)).astimezone(LOCAL).date() - timedelta(days=1)
    return [last - timedelta(days=count - 1 - i) for i in range(count)]


def value_added_due(month: date) -> datetime:
    """When the value added of ``month`` is due: the end of the 20th of the next month (local)."""
    following = month_end(month)
    return following + timedelta(days=VALUE_ADDED_DUE_DAY)


@dataclass(frozen=True, slots=True)
class DayCompleteness:
    """An enterprise's readings in one local day.

    Parameters
    ----------
    readings : readings received, each meter's capped at its expected number [-].
    expected_readings : readings due at the meters' expected intervals [-].
    meters : energy meters with rows that day [-].
    meters_short : codes of the meters below 90 % that day, worst first.
    """

    enterprise_code: str
    day: date
    readings: int
    expected_readings: int
    meters: int
    meters_short: tuple[str, ...] = ()
    enterprise_id: int | None = None
    park_id: int | None = None

    @property
    def completeness(self) -> float | None:
        """readings / expected_readings [-]; None when nothing was due."""
        if self.expected_readings <= 0:
            return None
        return min(1.0, self.readings / self.expected_readings)


def completeness_findings(days: Iterable[DayCompleteness], latest: date) -> list[Finding]:
    """``quality.completeness``: one finding per enterprise and day below 90 %.

    Parameters
    ----------
    days : the enterprise-days of the lookback.
    latest : the latest assessed day; its findings are ongoing, earlier ones ended.
    """
    findings = []
    for d in sorted(days, key=lambda x: (x.enterprise_code, x.day)):
        share = d.completeness
        if share is None or share >= COMPLETENESS_MIN:
            continue
        end = day_start(d.day + timedelta(days=1))
        severity = Severity.WARNING if share < COMPLETENESS_WARNING else Severity.INFO
        short = list(d.meters_short[:10])
        findings.append(
            Finding(
                kind=COMPLETENESS,
                severity=severity,
                subject=enterprise_subject(d.enterprise_code),
                started_at=day_start(d.day),
                ended_at=None if d.day >= latest else end,
                summary_zh=(
                    f"{d.day:%Y-%m-%d} 数据完整率 {share:.1%}"
                    f"（收到 {d.readings} / 应收 {d.expected_readings}），"
                    f"低于 {COMPLETENESS_MIN:.0%}；{len(d.meters_short)} 块表计不足"
                ),
                summary_en=(
                    f"{d.day:%Y-%m-%d} data completeness {share:.1%} ({d.readings} of {d.expected_readings} "
                    f"readings), below {COMPLETENESS_MIN:.0%}; {len(d.meters_short)} meters short"
                ),
                enterprise_id=d.enterprise_id,
                park_id=d.park_id,
                observed=100.0 * share,
                expected_low=100.0 * COMPLETENESS_MIN,
                expected_high=100.0,
                score=share,
                unit="%",
                evidence={
                    "day": f"{d.day:%Y-%m-%d}",
                    "readings": d.readings,
                    "expected_readings": d.expected_readings,
                    "completeness": share,
                    "meters": d.meters,
                    "meters_short": short,
                    "meters_short_count": len(d.meters_short),
                    "threshold": COMPLETENESS_MIN,
                    "warning_below": COMPLETENESS_WARNING,
                },
            )
        )
    return findings


@dataclass(frozen=True, slots=True)
class MonthTotals:
    """An enterprise's energy of one month from the monthly and from the daily figures.

    Parameters
    ----------
    month : first day of the month.
    monthly_tce : the month's figure [tce].
    daily_sum_tce : the sum of the month's daily figures [tce].
    days : days with a daily figure [-].
    """

    enterprise_code: str
    month: date
    monthly_tce: float | None
    daily_sum_tce: float | None
    days: int
    enterprise_id: int | None = None
    park_id: int | None = None

    @property
    def difference(self) -> float | None:
        """|daily sum - monthly| / |monthly| [-]; 1.0 when only one figure exists; None when both ≈ 0."""
        monthly = self.monthly_tce or 0.0
        daily = self.daily_sum_tce or 0.0
        if abs(monthly) < MIN_MONTHLY_TCE:
            return None if abs(daily) < MIN_MONTHLY_TCE else 1.0
        return abs(daily - monthly) / abs(monthly)


def daily_vs_monthly_findings(months: Iterable[MonthTotals]) -> list[Finding]:
    """``quality.daily_vs_monthly``: one finding per enterprise whose months disagree by more than 5 %.

    The finding starts at the earliest disagreeing month; its figures are those of the month
    that disagrees most; every disagreeing month is listed in the evidence.
    """
    by_enterprise: dict[str, list[MonthTotals]] = defaultdict(list)
    for m in months:
        diff = m.difference
        if diff is not None and diff > DAILY_VS_MONTHLY_MAX:
            by_enterprise[m.enterprise_code].append(m)
    findings = []
    for code in sorted(by_enterprise):
        bad = sorted(by_enterprise[code], key=lambda x: x.month)
        worst = max(bad, key=lambda x: (x.difference or 0.0, x.month))
        diff = worst.difference or 0.0
        monthly = worst.monthly_tce or 0.0
        daily = worst.daily_sum_tce or 0.0
        findings.append(
            Finding(
                kind=DAILY_VS_MONTHLY,
                severity=Severity.WARNING,
                subject=enterprise_subject(code),
                started_at=month_start(bad[0].month),
                summary_zh=(
                    f"{worst.month:%Y-%m} 日能耗合计 {daily:.4g} tce 与月能耗 {monthly:.4g} tce "
                    f"相差 {diff:.1%}，"
                    f"超过 {DAILY_VS_MONTHLY_MAX:.0%}（{len(bad)} 个月）"
                ),
                summary_en=(
                    f"{worst.month:%Y-%m} daily energy sums to {daily:.4g} tce against {monthly:.4g} tce for "
                    f"the month, {diff:.1%} apart, above {DAILY_VS_MONTHLY_MAX:.0%} ({len(bad)} months)"
                ),
                enterprise_id=worst.enterprise_id,
                park_id=worst.park_id,
                observed=daily,
                expected_low=monthly - DAILY_VS_MONTHLY_MAX * abs(monthly),
                expected_high=monthly + DAILY_VS_MONTHLY_MAX * abs(monthly),
                score=diff,
                unit="tce",
                evidence={
                    "variant": "gross",
                    "threshold": DAILY_VS_MONTHLY_MAX,
                    "months": [
                        {
                            "month": f"{m.month:%Y-%m}",
                            "monthly_tce": m.monthly_tce,
                            "daily_sum_tce": m.daily_sum_tce,
                            "days": m.days,
                            "difference": m.difference,
                        }
                        for m in bad
                    ],
                    "method": "api.energy_tce_day summed over the month vs api.energy_tce_month",
                },
            )
        )
    return findings


@dataclass(frozen=True, slots=True)
class EnterpriseMonths:
    """The months in which an enterprise has energy data, and those it reported value added for.

    Months are first days of months (local).
    """

    enterprise_code: str
    energy_months: frozenset[date]
    value_added_months: frozenset[date]
    enterprise_id: int | None = None
    park_id: int | None = None


def value_added_missing_findings(enterprises: Iterable[EnterpriseMonths], now: datetime) -> list[Finding]:
    """``quality.value_added_missing``: months with energy data whose value added is overdue at ``now``."""
    findings = []
    for e in sorted(enterprises, key=lambda x: x.enterprise_code):
        missing = sorted(
            m for m in e.energy_months - e.value_added_months if value_added_due(m) <= now.astimezone(LOCAL)
        )
        if not missing:
            continue
        labels = [f"{m:%Y-%m}" for m in missing]
        shown = "、".join(labels[:6]) + ("…" if len(labels) > 6 else "")
        shown_en = ", ".join(labels[:6]) + (" …" if len(labels) > 6 else "")
        findings.append(
            Finding(
                kind=VALUE_ADDED_MISSING,
                severity=Severity.WARNING,
                subject=enterprise_subject(e.enterprise_code),
                started_at=month_start(missing[0]),
                summary_zh=(
                    f"缺少 {len(missing)} 个月的工业增加值报表：{shown}"
                    f"（应于次月 {VALUE_ADDED_DUE_DAY} 日前报送）"
                ),
                summary_en=(
                    f"value added not reported for {len(missing)} month(s): {shown_en} "
                    f"(due by the {VALUE_ADDED_DUE_DAY}th of the next month)"
                ),
                enterprise_id=e.enterprise_id,
                park_id=e.park_id,
                observed=float(len(missing)),
                expected_low=0.0,
                expected_high=0.0,
                unit="months",
                evidence={
                    "missing_months": labels,
                    "due": {
                        label: value_added_due(m).isoformat()
                        for label, m in zip(labels, missing, strict=True)
                    },
                    "due_day_of_next_month": VALUE_ADDED_DUE_DAY,
                },
            )
        )
    return findings
