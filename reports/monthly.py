"""The monthly report's data model and its pure derivations: rankings, sums, counts.

Every figure comes from the ``api`` views (docs/api.md) through
:mod:`reports.monthly_store`; nothing here reads the database. Units are in the names:
``energy_tce`` [tce], ``value_added_10k_yuan`` [10⁴ yuan at 2022 prices], ``intensity``
[tce/10⁴ yuan], ``co2_t`` [t CO₂], coverage and changes as fractions [-].
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Final
from zoneinfo import ZoneInfo

from analytics.accounting import ASSESSED_VARIANT, Variant
from reports.errors import MonthSpecError

__all__ = [
    "DEFAULT_VARIANT",
    "HEADLINE_COLUMNS",
    "LOCAL",
    "PERIOD_TYPES",
    "RANKING_SHOWN",
    "AlertCount",
    "AlertInMonth",
    "CarrierEnergy",
    "CarrierTotal",
    "EnergyTotals",
    "EnterpriseChange",
    "EnterpriseQuality",
    "ForecastYear",
    "IndustryEnergy",
    "IntensityFigure",
    "IntensitySeries",
    "Month",
    "MonthlyReport",
    "QuarantineCount",
    "Ranking",
    "Scope",
    "ScopeSection",
    "SeriesPoint",
    "carrier_totals",
    "count_alerts",
    "last_complete_month",
    "optional_float",
    "rank_by_change",
]

LOCAL: Final = ZoneInfo("Asia/Shanghai")  # calendar months in China's time (UTC+8, no DST)

DEFAULT_VARIANT: Final = ASSESSED_VARIANT
"""The headline variant: the one the target is assessed in (analytics.accounting.ASSESSED_VARIANT)."""

PERIOD_TYPES: Final = ("month", "ytd", "rolling12")
"""The periods of the headline, all ending with the report's month."""

HEADLINE_COLUMNS: Final = (
    "energy_tce",
    "value_added_10k_yuan",
    "intensity",
    "base_2022",
    "change_vs_2022",
    "path_value",
    "target_2027",
    "status",
    "coverage",
    "value_added_coverage",
)
"""Columns of ``api.intensity`` (and of ``parkenergy intensity --json``) shown per period and variant."""

SEVERITIES: Final = ("critical", "warning", "info")
RANKING_SHOWN: Final = 10
"""Enterprises shown at each end of a park's ranking when it has more than twice as many."""
_MONTH = re.compile(r"([0-9]{4})-(0[1-9]|1[0-2])")


@dataclass(frozen=True, slots=True, order=True)
class Month:
    """A calendar month; its bounds are local midnights in Asia/Shanghai."""

    year: int
    month: int

    def __post_init__(self) -> None:
        if not 1 <= self.month <= 12:
            raise ValueError(f"month must be 1..12, got {self.month}")

    @classmethod
    def parse(cls, text: str) -> Month:
        """``YYYY-MM`` → :class:`Month`; :class:`~reports.errors.MonthSpecError` otherwise."""
        match = _MONTH.fullmatch(text.strip())
        if match is None:
            raise MonthSpecError(text)
        return cls(int(match.group(1)), int(match.group(2)))

    @classmethod
    def containing(cls, moment: datetime) -> Month:
        """The local month that holds ``moment`` (an aware time)."""
        local = moment.astimezone(LOCAL)
        return cls(local.year, local.month)

    @property
    def label(self) -> str:
        """``YYYY-MM``, the ``period`` of ``api.intensity``."""
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def first_day(self) -> date:
        return date(self.year, self.month, 1)

    @property
    def start_at(self) -> datetime:
        """Local midnight of the first day (the ``bucket`` of the monthly views)."""
        return datetime(self.year, self.month, 1, tzinfo=LOCAL)

    @property
    def end_at(self) -> datetime:
        """Local midnight of the first day of the next month (exclusive end)."""
        return self.next().start_at

    def next(self) -> Month:
        return Month(self.year + 1, 1) if self.month == 12 else Month(self.year, self.month + 1)

    def previous(self) -> Month:
        return Month(self.year - 1, 12) if self.month == 1 else Month(self.year, self.month - 1)


def last_complete_month(now: datetime) -> Month:
    """The latest month that has ended at ``now`` (local time): in November, October."""
    return Month.containing(now).previous()


@dataclass(frozen=True, slots=True)
class Scope:
    """What a report or one of its sections covers: the city, or one park."""

    park_code: str | None = None
    park_name: str | None = None

    @property
    def level(self) -> str:
        """The ``level`` of the group views: ``city`` or ``park``."""
        return "city" if self.park_code is None else "park"

    @property
    def key(self) -> str:
        """Prefix of the ``data-key`` attributes: ``city`` or ``park.<code>``."""
        return "city" if self.park_code is None else f"park.{self.park_code}"


def optional_float(value: object) -> float | None:
    """``value`` as a float, None kept (numeric and double precision columns alike)."""
    return None if value is None else float(value)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class IntensityFigure:
    """One row of ``api.intensity`` (docs/accounting.md, "Intensity, base, target, path and status").

    Attributes
    ----------
    energy_tce : float or None
        Energy of the enterprise-months with value added [tce].
    value_added_10k_yuan : float or None
        Value added at 2022 prices [10⁴ yuan].
    intensity, base_2022, path_value, target_2027 : float or None
        [tce/10⁴ yuan].
    change_vs_2022 : float or None
        intensity / base_2022 − 1 [-].
    coverage, value_added_coverage : float or None
        [-]; ``low_coverage`` below 0.90 (DOMAIN.md §4).
    """

    period_type: str
    period: str
    variant: str
    energy_tce: float | None
    value_added_10k_yuan: float | None
    intensity: float | None
    base_2022: float | None
    change_vs_2022: float | None
    path_value: float | None
    target_2027: float | None
    status: str | None
    coverage: float | None
    low_coverage: bool
    value_added_coverage: float | None
    enterprises: int | None
    months: int | None

    @classmethod
    def from_row(cls, row: Mapping[str, object]) -> IntensityFigure:
        """From a row of :func:`analytics.intensity_store.query_intensity`."""
        enterprises, months = row.get("enterprises"), row.get("months")
        return cls(
            period_type=str(row["period_type"]),
            period=str(row["period"]),
            variant=str(row["variant"]),
            energy_tce=optional_float(row["energy_tce"]),
            value_added_10k_yuan=optional_float(row["value_added_10k_yuan"]),
            intensity=optional_float(row["intensity"]),
            base_2022=optional_float(row["base_2022"]),
            change_vs_2022=optional_float(row["change_vs_2022"]),
            path_value=optional_float(row["path_value"]),
            target_2027=optional_float(row["target_2027"]),
            status=None if row["status"] is None else str(row["status"]),
            coverage=optional_float(row["coverage"]),
            low_coverage=bool(row["low_coverage"]),
            value_added_coverage=optional_float(row["value_added_coverage"]),
            enterprises=None if enterprises is None else int(enterprises),  # type: ignore[call-overload]
            months=None if months is None else int(months),  # type: ignore[call-overload]
        )

    def value(self, column: str) -> float | str | None:
        """The figure of one of :data:`HEADLINE_COLUMNS`."""
        if column not in HEADLINE_COLUMNS:
            raise KeyError(column)
        value: float | str | None = getattr(self, column)
        return value


@dataclass(frozen=True, slots=True)
class EnergyTotals:
    """One row of ``api.energy_tce_month`` for the month: all enterprises, with or without value added.

    Attributes
    ----------
    energy_tce_gross, energy_tce_excl_feedstock, energy_tce_excl_feedstock_nonfossil : float
        The three variants [tce].
    feedstock_tce, nonfossil_tce : float
        The two deductions [tce].
    co2_t : float or None
        Location-based CO₂ [t]; ``co2_complete`` false when a meter had no CO₂ factor.
    coverage : float or None
        Readings received / expected [-].
    """

    energy_tce_gross: float
    energy_tce_excl_feedstock: float
    energy_tce_excl_feedstock_nonfossil: float
    feedstock_tce: float
    nonfossil_tce: float
    co2_t: float | None
    coverage: float | None
    low_coverage: bool
    factors_complete: bool
    co2_complete: bool
    co2_provisional: bool
    enterprises: int

    def energy_tce(self, variant: str) -> float:
        """Energy in ``variant`` [tce]."""
        value: float = getattr(self, f"energy_tce_{Variant(variant).value}")
        return value


@dataclass(frozen=True, slots=True)
class SeriesPoint:
    """Intensity of a period ending in a month (``period_end``: first day of that month)."""

    period_end: date
    intensity: float | None
    path_value: float | None
    coverage: float | None
    low_coverage: bool


@dataclass(frozen=True, slots=True)
class ForecastYear:
    """One year of the latest forecast run (``api.intensity_forecast``), 90 % interval [tce/10⁴ yuan]."""

    year: int
    intensity: float | None
    intensity_lower: float | None
    intensity_upper: float | None
    path_value: float | None
    status: str | None


@dataclass(frozen=True, slots=True)
class IntensitySeries:
    """What the intensity-versus-path chart of a scope shows, in one variant."""

    variant: str
    ytd: tuple[SeriesPoint, ...]
    rolling12: tuple[SeriesPoint, ...]
    forecast: tuple[ForecastYear, ...]
    base_2022: float | None
    target_2027: float | None


@dataclass(frozen=True, slots=True)
class EnterpriseChange:
    """An enterprise's year-to-date intensity against 2022 and its part of its park's change.

    ``change_vs_2022`` from ``api.intensity`` (enterprise, ytd); ``contribution_to_change`` from
    ``api.intensity_contribution`` (docs/accounting.md, "Contributions"): the park's change is
    the sum of its enterprises' contributions.
    """

    park_code: str
    enterprise_code: str
    enterprise_name: str
    industry_code: str | None
    energy_tce: float | None
    value_added_10k_yuan: float | None
    intensity: float | None
    base_2022: float | None
    change_vs_2022: float | None
    status: str | None
    contribution_to_change: float | None
    coverage: float | None
    low_coverage: bool


def rank_by_change(rows: Iterable[EnterpriseChange]) -> tuple[EnterpriseChange, ...]:
    """Best first: the largest fall of intensity against 2022; enterprises without a change last."""
    return tuple(
        sorted(
            rows,
            key=lambda r: (
                r.change_vs_2022 is None,
                r.change_vs_2022 if r.change_vs_2022 is not None else 0.0,
                r.enterprise_code,
            ),
        )
    )


@dataclass(frozen=True, slots=True)
class Ranking:
    """The enterprises of one park ranked by their year-to-date change against 2022."""

    park_code: str
    park_change_vs_2022: float | None
    rows: tuple[EnterpriseChange, ...]

    @property
    def shortened(self) -> bool:
        """More than twice :data:`RANKING_SHOWN` enterprises: only both ends are shown."""
        return len(self.rows) > 2 * RANKING_SHOWN

    def best(self) -> tuple[EnterpriseChange, ...]:
        """The best :data:`RANKING_SHOWN` (all enterprises when the ranking is not shortened)."""
        return self.rows[:RANKING_SHOWN] if self.shortened else self.rows

    def worst(self) -> tuple[EnterpriseChange, ...]:
        """The worst :data:`RANKING_SHOWN`, worst last (empty when the ranking is not shortened)."""
        return self.rows[-RANKING_SHOWN:] if self.shortened else ()


@dataclass(frozen=True, slots=True)
class ScopeSection:
    """Headline figures, chart series and (for a park) ranking of the city or one park."""

    scope: Scope
    figures: tuple[IntensityFigure, ...]
    energy: EnergyTotals | None
    series: IntensitySeries
    ranking: Ranking | None = None

    def figure(self, period_type: str, variant: str) -> IntensityFigure | None:
        for f in self.figures:
            if f.period_type == period_type and f.variant == variant:
                return f
        return None


@dataclass(frozen=True, slots=True)
class CarrierEnergy:
    """One row of ``api.energy_carrier_month``: a carrier's share of an enterprise's month.

    Attributes
    ----------
    energy_tce_gross : float or None
        The carrier's signed share of gross consumption [tce] (None: no tce coefficient).
    feedstock_tce : float
        Of which feedstock [tce].
    co2_t : float or None
        The carrier's CO₂ [t] (None: no CO₂ factor for it).
    coverage : float or None
        Readings received / expected over the carrier's meters [-].
    """

    park_code: str
    industry_code: str | None
    enterprise_code: str
    carrier: str
    name_zh: str
    name_en: str
    energy_tce_gross: float | None
    feedstock_tce: float
    co2_t: float | None
    coverage: float | None
    factors_complete: bool


@dataclass(frozen=True, slots=True)
class CarrierTotal:
    """A carrier summed over the enterprises of the scope.

    ``co2_t`` sums the rows that have a CO₂ factor (as ``api.energy_tce_month`` does);
    ``co2_missing`` says that some had none. ``lowest_coverage`` is the lowest coverage of
    the carrier among the enterprises (coverages of different meters do not add up).
    """

    carrier: str
    name_zh: str
    name_en: str
    energy_tce_gross: float
    feedstock_tce: float
    co2_t: float | None
    co2_missing: bool
    factors_complete: bool
    lowest_coverage: float | None
    enterprises: int
    by_park: tuple[tuple[str, float, float], ...] = field(default=())
    """(park code, energy [tce], CO₂ [t]) of each park with the carrier."""


def carrier_totals(rows: Iterable[CarrierEnergy]) -> tuple[CarrierTotal, ...]:
    """Sum :class:`CarrierEnergy` rows per carrier; largest energy first."""
    groups: dict[str, list[CarrierEnergy]] = defaultdict(list)
    for row in rows:
        groups[row.carrier].append(row)
    totals = []
    for carrier, items in groups.items():
        co2 = [r.co2_t for r in items if r.co2_t is not None]
        coverages = [r.coverage for r in items if r.coverage is not None]
        parks: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
        for r in items:
            parks[r.park_code][0] += r.energy_tce_gross or 0.0
            parks[r.park_code][1] += r.co2_t or 0.0
        totals.append(
            CarrierTotal(
                carrier=carrier,
                name_zh=items[0].name_zh,
                name_en=items[0].name_en,
                energy_tce_gross=sum(r.energy_tce_gross or 0.0 for r in items),
                feedstock_tce=sum(r.feedstock_tce for r in items),
                co2_t=sum(co2) if co2 else None,
                co2_missing=len(co2) < len(items),
                factors_complete=all(r.factors_complete for r in items),
                lowest_coverage=min(coverages) if coverages else None,
                enterprises=len({r.enterprise_code for r in items}),
                by_park=tuple((p, e, c) for p, (e, c) in sorted(parks.items())),
            )
        )
    return tuple(sorted(totals, key=lambda t: (-t.energy_tce_gross, t.carrier)))


@dataclass(frozen=True, slots=True)
class IndustryEnergy:
    """One ``park_industry`` row of ``api.energy_tce_month``: an industry within a park [tce, t]."""

    park_code: str
    industry_code: str
    energy_tce_gross: float
    energy_tce_excl_feedstock: float
    energy_tce_excl_feedstock_nonfossil: float
    co2_t: float | None
    coverage: float | None
    low_coverage: bool
    co2_complete: bool
    enterprises: int

    def energy_tce(self, variant: str) -> float:
        value: float = getattr(self, f"energy_tce_{Variant(variant).value}")
        return value


@dataclass(frozen=True, slots=True)
class AlertInMonth:
    """An alert that was opened or resolved in the month, or was unresolved at its end.

    From ``api.alert`` (the alert and its latest evidence) and ``api.alert_event`` (its
    history up to the month's end, docs/alerts.md). ``severity`` is the highest severity
    the alert had reached by the month's end.
    """

    alert_id: int
    kind: str
    severity: str
    state: str
    subject: str
    park_code: str | None
    enterprise_code: str | None
    enterprise_name: str | None
    meter_code: str | None
    started_at: datetime
    ended_at: datetime | None
    opened_at: datetime
    resolved_at: datetime | None
    summary_zh: str
    summary_en: str
    observed: float | None
    expected_low: float | None
    expected_high: float | None
    score: float | None
    unit: str | None
    opened_in_month: bool
    resolved_in_month: bool
    open_at_end: bool

    @property
    def is_quality(self) -> bool:
        """A data-quality rule breach (docs/alerts.md, ``quality.*``)."""
        return self.kind.startswith("quality.")


@dataclass(frozen=True, slots=True)
class AlertCount:
    """Alerts of one kind and severity: opened and resolved in the month, unresolved at its end."""

    kind: str
    severity: str
    opened: int
    resolved: int
    open_at_end: int


def count_alerts(alerts: Iterable[AlertInMonth]) -> tuple[AlertCount, ...]:
    """Counts per kind and severity, most severe first, then by kind."""
    counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    for a in alerts:
        c = counts[(a.kind, a.severity)]
        c[0] += a.opened_in_month
        c[1] += a.resolved_in_month
        c[2] += a.open_at_end
    order = {s: i for i, s in enumerate(SEVERITIES)}
    return tuple(
        AlertCount(kind, severity, *c)
        for (kind, severity), c in sorted(counts.items(), key=lambda kv: (order.get(kv[0][1], 9), kv[0][0]))
    )


@dataclass(frozen=True, slots=True)
class QuarantineCount:
    """Messages quarantined in the month (by receipt time) with one reason code."""

    reason: str
    messages: int
    replayed: int


@dataclass(frozen=True, slots=True)
class EnterpriseQuality:
    """Data quality of one enterprise in the month.

    Attributes
    ----------
    coverage : float or None
        Readings received / expected over its meters (``api.energy_tce_month``); None: no
        energy row for the month.
    value_added_10k_yuan : float or None
        Reported value added at current prices (``api.value_added``); None: not reported.
    value_added_comparable : bool
        The value added could be converted to 2022 prices (a price index is known).
    quality_alerts : int
        ``quality.*`` alerts of the enterprise opened or resolved in the month, or unresolved
        at its end.
    """

    park_code: str
    enterprise_code: str
    enterprise_name: str
    industry_code: str | None
    coverage: float | None
    low_coverage: bool
    value_added_10k_yuan: float | None
    value_added_comparable: bool
    quality_alerts: int

    @property
    def has_problem(self) -> bool:
        return (
            self.coverage is None
            or self.low_coverage
            or self.value_added_10k_yuan is None
            or not self.value_added_comparable
            or self.quality_alerts > 0
        )


@dataclass(frozen=True, slots=True)
class MonthlyReport:
    """Everything one report shows.

    ``overview`` is the scope asked for (the city, or one park with its ranking); ``parks``
    the sections of each park in a report of the whole city (empty for a park's report).
    ``complete`` is false when the month had not ended at ``generated_at``.
    """

    month: Month
    scope: Scope
    variant: str
    generated_at: datetime
    overview: ScopeSection
    parks: tuple[ScopeSection, ...]
    carriers: tuple[CarrierEnergy, ...]
    industries: tuple[IndustryEnergy, ...]
    alerts: tuple[AlertInMonth, ...]
    quality: tuple[EnterpriseQuality, ...]
    quarantine: tuple[QuarantineCount, ...]

    @property
    def complete(self) -> bool:
        return self.generated_at >= self.month.end_at

    @property
    def carrier_totals(self) -> tuple[CarrierTotal, ...]:
        return carrier_totals(self.carriers)

    @property
    def alert_counts(self) -> tuple[AlertCount, ...]:
        return count_alerts(self.alerts)

    @property
    def alert_total(self) -> AlertCount:
        counts = self.alert_counts
        return AlertCount(
            "",
            "",
            sum(c.opened for c in counts),
            sum(c.resolved for c in counts),
            sum(c.open_at_end for c in counts),
        )

    @property
    def quality_alerts(self) -> tuple[AlertInMonth, ...]:
        return tuple(a for a in self.alerts if a.is_quality)

    @property
    def park_codes(self) -> tuple[str, ...]:
        if self.scope.park_code is not None:
            return (self.scope.park_code,)
        return tuple(s.scope.park_code for s in self.parks if s.scope.park_code is not None)
