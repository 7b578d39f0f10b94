"""Enterprise intensity far from its industry peers, and above its path to the 2027 target. Pure.

Both rules read the enterprise rows of ``api.intensity`` (docs/accounting.md, "Intensity,
base, target, path and status") for one variant and the rolling 12 months ending in each
complete month, and turn the months into episodes:

- **Figure.** The rolling 12 months ending in a month that has ended: a whole year of
  seasons, comparable with the annual even path (its path value is taken at
  t = Y − 1 + M/12) and between enterprises whatever the month; a year to date of
  January or February is one or two seasonal months. Variant
  ``excl_feedstock_nonfossil``, the one the target is assessed in (发改环资〔2022〕803号,
  发改环资〔2024〕113号; the target alert rule of the dashboards uses the same).
- **Coverage.** Months whose figure is marked ``low_coverage`` (coverage < 90 %, DOMAIN.md
  §4) are not assessed: they neither open, continue nor end an episode.
- **Episodes.** Consecutive assessed months with the same outcome form one episode whose
  ``started_at`` is the start of its first month (local midnight, Asia/Shanghai), so the
  daily runs of a month, and the months of a lasting problem, update one alert. An
  episode is ongoing while the latest assessed month still shows it; one that ended
  within the lookback is reported with ``ended_at`` = the end of its last month.

``intensity.peer_outlier`` (DESIGN.md "intensity outliers among industry peers"): the
modified z-score of Iglewicz and Hoaglin (1993, *How to Detect and Handle Outliers*),
z = (x − median) / (1.4826 · MAD), over the natural logarithm of the intensities of the
enterprise's peers (intensity is a ratio: twice and half the median are equally far),
outlier when |z| > 3.5. Peers are the enterprises of the same GB/T 4754 class (4-digit
industry code) across the city, the enterprise included, when there are at least
:data:`MIN_PEERS` others; else those of the same division (2 digits); else the enterprise is
not compared. When the MAD is 0 the mean absolute deviation (× 1.2533) is used instead
(Iglewicz and Hoaglin). A high outlier (energy-hungry) is a warning, a low one is info
(implausibly low: often an unmetered carrier or a missing meter).

``intensity.above_path``: status ``at_risk`` or ``off_track`` of ``api.intensity`` (above
the even path; analytics.target.status_against_path). Warning; critical when off track by
more than :data:`OFF_TRACK_MARGIN` (intensity more than 5 % above the enterprise's own 2022
level).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final

import numpy as np

from analytics.detect.localtime import LOCAL
from analytics.findings import Finding, Severity, enterprise_subject
from analytics.target import Status

__all__ = [
    "ABOVE_PATH",
    "LOCAL",
    "MAD_SCALE",
    "MEAN_AD_SCALE",
    "MIN_PEERS",
    "OFF_TRACK_MARGIN",
    "PEER_OUTLIER",
    "PEER_Z_LIMIT",
    "UNIT",
    "EnterpriseIntensity",
    "PeerScore",
    "RobustScale",
    "above_path_findings",
    "month_end",
    "month_start",
    "peer_outlier_findings",
    "peer_scores",
    "robust_scale",
]

PEER_OUTLIER: Final = "intensity.peer_outlier"
ABOVE_PATH: Final = "intensity.above_path"
UNIT: Final = "tce/10^4 yuan"

PEER_Z_LIMIT: Final = 3.5
"""|modified z| above which an intensity is an outlier (Iglewicz and Hoaglin 1993)."""
MAD_SCALE: Final = 1.4826
"""MAD × 1.4826 estimates the standard deviation of normal data."""
MEAN_AD_SCALE: Final = 1.253314
"""Mean absolute deviation × 1.2533 estimates it when the MAD is 0 (Iglewicz and Hoaglin)."""
MIN_PEERS: Final = 4
"""Other enterprises a peer group needs besides the one scored."""
OFF_TRACK_MARGIN: Final = 0.05
"""Above path is critical when the intensity exceeds its 2022 level by more than this [-]."""


def month_start(month: date) -> datetime:
    """Local midnight (Asia/Shanghai) starting the month of ``month``."""
    return datetime(month.year, month.month, 1, tzinfo=LOCAL)


def month_end(month: date) -> datetime:
    """Local midnight (Asia/Shanghai) starting the month after ``month``."""
    year, number = (month.year + 1, 1) if month.month == 12 else (month.year, month.month + 1)
    return datetime(year, number, 1, tzinfo=LOCAL)


@dataclass(frozen=True, slots=True)
class EnterpriseIntensity:
    """One enterprise's intensity over one period of ``api.intensity``.

    Parameters
    ----------
    enterprise_code, industry_code : registry codes (industry: GB/T 4754).
    month : first day of the period's last month (``period_end``).
    period_type, variant : as in ``api.intensity``.
    intensity : energy / value added [tce/10⁴ yuan at 2022 prices]; None without value added.
    base_2022, path_value : the 2022 intensity and the even path at the period [tce/10⁴ yuan].
    status : ``on_track``, ``at_risk``, ``off_track`` or None.
    coverage : data coverage of the period [-]; low_coverage when below 90 %.
    energy_tce, value_added_10k_yuan : the period's matched energy [tce] and value added [10⁴ yuan].
    """

    enterprise_code: str
    industry_code: str
    month: date
    period_type: str
    variant: str
    intensity: float | None
    base_2022: float | None
    path_value: float | None
    status: str | None
    coverage: float
    low_coverage: bool
    energy_tce: float = 0.0
    value_added_10k_yuan: float = 0.0
    enterprise_id: int | None = None
    park_id: int | None = None

    @property
    def assessable(self) -> bool:
        """A positive intensity from data of enough coverage."""
        return self.intensity is not None and self.intensity > 0 and not self.low_coverage

    @property
    def period(self) -> str:
        """``YYYY-MM``, the last month of the period."""
        return f"{self.month:%Y-%m}"


@dataclass(frozen=True, slots=True)
class RobustScale:
    """Median and robust standard deviation of a sample.

    ``scale`` is 1.4826 × MAD, or 1.2533 × the mean absolute deviation when the MAD is 0;
    0 when every value is the same.
    """

    median: float
    scale: float
    method: str

    def z(self, value: float) -> float | None:
        """Modified z-score of ``value`` [-]; None when the sample has no spread."""
        return None if self.scale <= 0 else (value - self.median) / self.scale


def robust_scale(values: Sequence[float]) -> RobustScale:
    """Median and robust scale of ``values`` (Iglewicz and Hoaglin 1993)."""
    if not values:
        raise ValueError("a robust scale needs values")
    x = np.asarray(values, dtype=np.float64)
    median = float(np.median(x))
    deviation = np.abs(x - median)
    mad = float(np.median(deviation))
    if mad > 0:
        return RobustScale(median, MAD_SCALE * mad, "mad")
    mean_ad = float(np.mean(deviation))
    return RobustScale(median, MEAN_AD_SCALE * mean_ad, "mean_absolute_deviation")


@dataclass(frozen=True, slots=True)
class PeerScore:
    """An enterprise's intensity against its peers in one month.

    ``z`` is over ln(intensity) of the group (the enterprise included); ``median``, ``low`` and
    ``high`` are back in intensity units: the group's median and the band within which
    |z| ≤ 3.5; ``peer_min`` and ``peer_max`` the range of the others [tce/10⁴ yuan].
    """

    row: EnterpriseIntensity
    group: str
    group_code: str
    peers: int
    z: float
    median: float
    low: float
    high: float
    peer_min: float
    peer_max: float
    method: str

    @property
    def direction(self) -> str:
        """``high``, ``low`` or ``""`` (within the band)."""
        if self.z > PEER_Z_LIMIT:
            return "high"
        if self.z < -PEER_Z_LIMIT:
            return "low"
        return ""


def peer_scores(rows: Iterable[EnterpriseIntensity], min_peers: int = MIN_PEERS) -> list[PeerScore]:
    """Score every assessable enterprise of one month against its peers.

    Peers: the same industry class (4-digit code), else the same division (2 digits), with at
    least ``min_peers`` others; enterprises without such a group, or in a group without spread,
    get no score.
    """
    usable = [r for r in rows if r.assessable]
    by_class: dict[str, list[EnterpriseIntensity]] = defaultdict(list)
    by_division: dict[str, list[EnterpriseIntensity]] = defaultdict(list)
    for r in usable:
        by_class[r.industry_code].append(r)
        by_division[r.industry_code[:2]].append(r)
    scores = []
    for r in sorted(usable, key=lambda row: row.enterprise_code):
        candidates = (
            ("industry", r.industry_code, by_class[r.industry_code]),
            ("division", r.industry_code[:2], by_division[r.industry_code[:2]]),
        )
        chosen = next((c for c in candidates if len(c[2]) - 1 >= min_peers), None)
        if chosen is None:
            continue
        group, code, members = chosen
        logs = [math.log(m.intensity) for m in members if m.intensity is not None]
        scale = robust_scale(logs)
        assert r.intensity is not None  # assessable
        z = scale.z(math.log(r.intensity))
        if z is None:
            continue
        band = PEER_Z_LIMIT * scale.scale
        others = [m.intensity for m in members if m is not r and m.intensity is not None]
        scores.append(
            PeerScore(
                row=r,
                group=group,
                group_code=code,
                peers=len(members) - 1,
                z=z,
                median=math.exp(scale.median),
                low=math.exp(scale.median - band),
                high=math.exp(scale.median + band),
                peer_min=min(others),
                peer_max=max(others),
                method=scale.method,
            )
        )
    return scores


@dataclass(frozen=True, slots=True)
class _Episode:
    """Consecutive assessed months with the same outcome ``key`` of one enterprise."""

    key: str
    first: date
    last: date
    ongoing: bool


def _episodes(states: Sequence[tuple[date, str]]) -> list[_Episode]:
    """Runs of equal non-empty keys in months ordered by time ('' = assessed, nothing found)."""
    episodes: list[_Episode] = []
    run: tuple[str, date, date] | None = None
    for month, key in states:
        if run is not None and key != run[0]:
            episodes.append(_Episode(run[0], run[1], run[2], ongoing=False))
            run = None
        if key:
            run = (key, run[1] if run else month, month)
    if run is not None:
        episodes.append(_Episode(run[0], run[1], run[2], ongoing=True))
    return episodes


def peer_outlier_findings(rows: Iterable[EnterpriseIntensity], min_peers: int = MIN_PEERS) -> list[Finding]:
    """``intensity.peer_outlier`` episodes from enterprise intensities of several months.

    Parameters
    ----------
    rows : one row per enterprise and month (one period type and variant), e.g. the rolling
        12 months ending in each complete month of the lookback.
    min_peers : peers a group needs besides the enterprise.

    Returns
    -------
    list[Finding]
        One per episode of consecutive months scored beyond ±3.5 in the same direction; the
        evidence is that of the episode's last month.
    """
    by_month: dict[date, list[EnterpriseIntensity]] = defaultdict(list)
    for r in rows:
        by_month[r.month].append(r)
    states: dict[str, list[tuple[date, str]]] = defaultdict(list)
    scored: dict[tuple[str, date], PeerScore] = {}
    for month in sorted(by_month):
        for s in peer_scores(by_month[month], min_peers):
            states[s.row.enterprise_code].append((month, s.direction))
            scored[s.row.enterprise_code, month] = s

    findings = []
    for code in sorted(states):
        for episode in _episodes(states[code]):
            findings.append(_peer_finding(scored[code, episode.last], episode))
    return sorted(findings, key=lambda f: (f.subject, f.started_at))


def _peer_finding(s: PeerScore, episode: _Episode) -> Finding:
    r = s.row
    high = episode.key == "high"
    group_zh = "行业" if s.group == "industry" else "行业大类"
    summary_zh = (
        f"{r.period} 滚动12个月单位增加值能耗 {r.intensity:.4g} tce/万元，"
        f"{'高于' if high else '低于'}同{group_zh}（{s.group_code}，{s.peers} 家）中位数 {s.median:.4g}，"
        f"稳健 z = {s.z:.1f}"
    )
    summary_en = (
        f"rolling-12-month intensity to {r.period} {r.intensity:.4g} tce/10^4 yuan, "
        f"{'above' if high else 'below'} the median {s.median:.4g} of {s.peers} peers in "
        f"{s.group} {s.group_code}; robust z = {s.z:.1f}"
    )
    return _episode_finding(
        r,
        episode,
        kind=PEER_OUTLIER,
        severity=Severity.WARNING if high else Severity.INFO,
        summary_zh=summary_zh,
        summary_en=summary_en,
        expected_low=s.low,
        expected_high=s.high,
        score=s.z,
        direction=episode.key,
        peer_group=s.group,
        peer_group_code=s.group_code,
        peers=s.peers,
        peer_median=s.median,
        peer_min=s.peer_min,
        peer_max=s.peer_max,
        z_limit=PEER_Z_LIMIT,
        scale_method=s.method,
        method="modified z-score of ln(intensity), Iglewicz-Hoaglin 1993",
    )


def above_path_findings(rows: Iterable[EnterpriseIntensity]) -> list[Finding]:
    """``intensity.above_path`` episodes: months whose status is at risk or off track.

    Parameters
    ----------
    rows : one row per enterprise and month (one period type and variant).

    Returns
    -------
    list[Finding]
        One per episode of consecutive assessed months above the even path; severity from
        the episode's last month (critical when more than 5 % above 2022).
    """
    states: dict[str, list[tuple[date, str]]] = defaultdict(list)
    latest: dict[tuple[str, date], EnterpriseIntensity] = {}
    for r in sorted(rows, key=lambda row: (row.enterprise_code, row.month)):
        if not r.assessable or r.status is None or r.path_value is None or r.base_2022 is None:
            continue
        above = r.status in (Status.AT_RISK, Status.OFF_TRACK)
        states[r.enterprise_code].append((r.month, "above" if above else ""))
        latest[r.enterprise_code, r.month] = r
    findings = []
    for code in sorted(states):
        for episode in _episodes(states[code]):
            findings.append(_path_finding(latest[code, episode.last], episode))
    return sorted(findings, key=lambda f: (f.subject, f.started_at))


def _path_finding(r: EnterpriseIntensity, episode: _Episode) -> Finding:
    assert r.intensity is not None and r.path_value is not None and r.base_2022 is not None
    change = r.intensity / r.base_2022 - 1.0
    excess = r.intensity / r.path_value - 1.0
    critical = r.status == Status.OFF_TRACK and change > OFF_TRACK_MARGIN
    status_zh = {"at_risk": "有风险", "off_track": "偏离目标"}.get(r.status or "", r.status or "")
    summary_zh = (
        f"{r.period} 滚动12个月单位增加值能耗 {r.intensity:.4g} tce/万元，高于目标路径 {r.path_value:.4g}"
        f"（{excess:+.1%}），较2022年 {change:+.1%}，{status_zh}"
    )
    summary_en = (
        f"rolling-12-month intensity to {r.period} {r.intensity:.4g} tce/10^4 yuan, above its path "
        f"{r.path_value:.4g} ({excess:+.1%}), {change:+.1%} against 2022, {r.status}"
    )
    return _episode_finding(
        r,
        episode,
        kind=ABOVE_PATH,
        severity=Severity.CRITICAL if critical else Severity.WARNING,
        summary_zh=summary_zh,
        summary_en=summary_en,
        expected_low=None,
        expected_high=r.path_value,
        score=excess,
        status=r.status,
        base_2022=r.base_2022,
        path_value=r.path_value,
        change_vs_2022=change,
        above_path=excess,
        critical_margin_vs_2022=OFF_TRACK_MARGIN,
    )


def _episode_finding(
    r: EnterpriseIntensity,
    episode: _Episode,
    *,
    kind: str,
    severity: Severity,
    summary_zh: str,
    summary_en: str,
    expected_low: float | None,
    expected_high: float | None,
    score: float,
    **evidence: Any,
) -> Finding:
    """The finding of an enterprise's ``episode``, with the figures of its last month ``r``."""
    return Finding(
        kind=kind,
        severity=severity,
        subject=enterprise_subject(r.enterprise_code),
        started_at=month_start(episode.first),
        ended_at=None if episode.ongoing else month_end(episode.last),
        summary_zh=summary_zh,
        summary_en=summary_en,
        enterprise_id=r.enterprise_id,
        park_id=r.park_id,
        observed=r.intensity,
        expected_low=expected_low,
        expected_high=expected_high,
        score=score,
        unit=UNIT,
        evidence={
            "period_type": r.period_type,
            "period": r.period,
            "variant": r.variant,
            "intensity": r.intensity,
            "energy_tce": r.energy_tce,
            "value_added_10k_yuan": r.value_added_10k_yuan,
            "coverage": r.coverage,
            "industry_code": r.industry_code,
            "months": _months_between(episode.first, episode.last),
            "first_month": f"{episode.first:%Y-%m}",
            **evidence,
        },
    )


def _months_between(first: date, last: date) -> int:
    """Months from ``first`` to ``last``, both included."""
    return (last.year - first.year) * 12 + last.month - first.month + 1
