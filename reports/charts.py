"""The report's charts as SVG text, drawn with matplotlib.

Charts are drawn on :class:`matplotlib.figure.Figure` objects, never through
``pyplot``, so no global backend or figure registry is involved; settings apply only
inside :func:`matplotlib.rc_context`. Text is written as outlines (``svg.fonttype =
"path"``) with Noto Sans CJK SC, so an SVG embedded as a data URI shows Chinese in any
browser and WeasyPrint needs no font for the charts. ``CO₂`` and ``10⁴`` are set with
matplotlib's mathtext (the CJK font has no sub- or superscript digits).
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date, timedelta
from typing import Any, Final

from analytics.target import CITY_TARGET_2027, path_intensity
from reports.fonts import matplotlib_family
from reports.messages import Lang, text
from reports.monthly import CarrierTotal, EnterpriseChange, IntensitySeries, Month, SeriesPoint

__all__ = ["carrier_chart", "contribution_chart", "data_uri", "intensity_chart"]

# Okabe-Ito colours (distinguishable with colour-vision deficiencies).
_BLUE, _ORANGE, _GREEN, _RED = "#0072B2", "#E69F00", "#009E73", "#D55E00"
_PURPLE, _SKY, _GREY, _YELLOW = "#CC79A7", "#56B4E9", "#777777", "#F0E442"
_PARK_COLOURS: Final = (_BLUE, _ORANGE, _GREEN, _PURPLE, _SKY, _RED, _YELLOW, _GREY)
_WIDTH_IN: Final = 7.0  # fits the A4 text width (180 mm) at 100 %


@contextmanager
def _style() -> Iterator[None]:
    import matplotlib  # noqa: PLC0415 - loaded only when charts are drawn

    family = matplotlib_family()
    with matplotlib.rc_context(
        {
            "svg.fonttype": "path",
            "svg.hashsalt": "parkenergy-report",  # stable element ids: the same data gives the same SVG
            "font.family": "sans-serif",
            "font.sans-serif": [family, "DejaVu Sans"],
            "font.size": 8.5,
            "axes.unicode_minus": False,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.titlesize": 9.5,
            "legend.fontsize": 7.5,
            "legend.frameon": False,
        }
    ):
        yield


def _tex(label: str) -> str:
    """A label for matplotlib: ``$`` escaped, CO₂ and 10⁴ as mathtext."""
    return label.replace("$", r"\$").replace("₂", "$_2$").replace("⁴", "$^4$")


def _svg(fig: Any) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    return buf.getvalue()


def data_uri(svg: str) -> str:
    """``data:image/svg+xml;base64,…``: the chart inside the HTML file, no separate file."""
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


def _year_fraction(d: date) -> float:
    """``d`` on the chart's x axis [a]: the year plus the elapsed share of it (1 July 2026 ≈ 2026.5)."""
    start = date(d.year, 1, 1).toordinal()
    return d.year + (d.toordinal() - start) / (date(d.year + 1, 1, 1).toordinal() - start)


def _mid_month(d: date) -> float:
    """The middle of the month starting on ``d``, where a monthly figure is drawn."""
    return _year_fraction(d + timedelta(days=14))


def _plot_points(ax: Any, points: Sequence[SeriesPoint], colour: str, label: str, *, main: bool) -> None:
    xs = [_mid_month(p.period_end) for p in points if p.intensity is not None]
    ys = [p.intensity for p in points if p.intensity is not None]
    if not xs:
        return
    ax.plot(
        xs,
        ys,
        color=colour,
        linewidth=1.8 if main else 1.0,
        linestyle="-" if main else "--",
        label=_tex(label),
        zorder=3,
    )
    if not main:
        return
    for p in points:
        if p.intensity is None:
            continue
        ax.plot(
            [_mid_month(p.period_end)],
            [p.intensity],
            marker="o",
            markersize=4.5,
            color=colour,
            markerfacecolor="white" if p.low_coverage else colour,
            zorder=4,
        )


def intensity_chart(series: IntensitySeries, month: Month, lang: Lang, scope_name: str) -> str | None:
    """Intensity against the 2022 base, the even path and the 2027 target, with the forecast.

    The path is drawn per calendar year as ``api.intensity`` assesses the year to date
    (path_value at t = the year; analytics.target.path_intensity, DOMAIN.md §1). Year-to-date
    points of periods with coverage below 90 % are hollow; a forecast year is drawn mid-year
    with its 90 % interval. Returns None when there is nothing to draw.
    """
    if not any(p.intensity is not None for p in (*series.ytd, *series.rolling12)) and not series.forecast:
        return None
    from matplotlib.figure import Figure  # noqa: PLC0415
    from matplotlib.lines import Line2D  # noqa: PLC0415

    with _style():
        fig = Figure(figsize=(_WIDTH_IN, 2.3))
        ax = fig.add_subplot()
        base, target = CITY_TARGET_2027.base_year, CITY_TARGET_2027.target_year
        first = min([float(base)] + [_year_fraction(p.period_end) for p in (*series.ytd, *series.rolling12)])
        ax.set_xlim(first, target + 1.0)
        values: list[float] = []
        if series.base_2022 is not None:
            years = list(range(base, target + 1))
            path = [path_intensity(series.base_2022, y) for y in years]
            ax.step(
                [float(y) for y in [*years, target + 1]],
                [*path, path[-1]],
                where="post",
                color=_GREEN,
                linewidth=1.3,
                label=_tex(text("chart.path", lang)),
                zorder=2,
            )
            ax.axhline(
                series.base_2022,
                color=_GREY,
                linewidth=1.0,
                linestyle=(0, (4, 3)),
                label=_tex(text("chart.base", lang)),
            )
            target_value = series.target_2027 if series.target_2027 is not None else path[-1]
            ax.plot(
                [_year_fraction(date(target, 12, 15))],
                [target_value],
                marker="*",
                markersize=10,
                color=_GREEN,
                linestyle="none",
                label=_tex(text("chart.target", lang)),
                zorder=5,
            )
            values += [series.base_2022, target_value]
        _plot_points(ax, series.ytd, _BLUE, text("chart.ytd", lang), main=True)
        _plot_points(ax, series.rolling12, _ORANGE, text("chart.rolling12", lang), main=False)
        values += [p.intensity for p in (*series.ytd, *series.rolling12) if p.intensity is not None]
        forecast = [f for f in series.forecast if f.intensity is not None]
        if forecast:
            xs = [f.year + 0.5 for f in forecast]  # a calendar year's figure, drawn mid-year
            ys = [f.intensity or 0.0 for f in forecast]
            low = [
                max(0.0, y - (f.intensity_lower if f.intensity_lower is not None else y))
                for f, y in zip(forecast, ys, strict=True)
            ]
            high = [
                max(0.0, (f.intensity_upper if f.intensity_upper is not None else y) - y)
                for f, y in zip(forecast, ys, strict=True)
            ]
            ax.errorbar(
                xs,
                ys,
                yerr=[low, high],
                fmt="D",
                markersize=4,
                color=_PURPLE,
                ecolor=_PURPLE,
                capsize=3,
                linewidth=1.0,
                label=_tex(text("chart.forecast", lang)),
                zorder=4,
            )
            values += [y + h for y, h in zip(ys, high, strict=True)]
        ax.axvline(_mid_month(month.first_day), color=_GREY, linewidth=0.8, linestyle=":", zorder=1)
        top = max(values) if values else 1.0
        bottom = min(values) if values else 0.0
        ax.set_ylim(max(0.0, bottom - 0.25 * (top - bottom) - 0.05 * top), top * 1.08)
        years_shown = range(math.floor(first), target + 1)
        ax.set_xticks([float(y) for y in [*years_shown, target + 1]], [""] * (len(years_shown) + 1))
        ax.set_xticks([y + 0.5 for y in years_shown], [str(y) for y in years_shown], minor=True)
        ax.tick_params(axis="x", which="minor", length=0)
        ax.set_ylabel(_tex(text("chart.intensity_axis", lang)))
        ax.grid(axis="y", color="#dddddd", linewidth=0.6)
        ax.set_title(_tex(f"{scope_name} · {text('variant.' + series.variant, lang)}"), loc="left")
        handles, labels = ax.get_legend_handles_labels()
        handles.append(
            Line2D([], [], marker="o", color=_BLUE, markerfacecolor="white", linestyle="none", markersize=4.5)
        )
        labels.append(_tex(text("chart.low", lang)))
        ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=4)
        return _svg(fig)


def _stacked_barh(ax: Any, names: list[str], by_park: list[dict[str, float]], parks: list[str]) -> None:
    positions = list(range(len(names)))
    positive = [0.0] * len(names)
    negative = [0.0] * len(names)
    for i, park in enumerate(parks):
        widths = [row.get(park, 0.0) for row in by_park]
        lefts = [positive[k] if w >= 0 else negative[k] for k, w in enumerate(widths)]
        ax.barh(
            positions, widths, left=lefts, color=_PARK_COLOURS[i % len(_PARK_COLOURS)], label=park, height=0.6
        )
        for k, w in enumerate(widths):
            if w >= 0:
                positive[k] += w
            else:
                negative[k] += w
    ax.set_yticks(positions, [_tex(n) for n in names])
    ax.invert_yaxis()
    ax.grid(axis="x", color="#dddddd", linewidth=0.6)
    ax.axvline(0, color="#999999", linewidth=0.6)


def carrier_chart(totals: Sequence[CarrierTotal], lang: Lang) -> str | None:
    """Energy [tce] and CO₂ [t] per carrier, stacked by park; None without carriers."""
    if not totals:
        return None
    from matplotlib.figure import Figure  # noqa: PLC0415
    from matplotlib.ticker import MaxNLocator, StrMethodFormatter  # noqa: PLC0415

    names = [t.name_zh if lang is Lang.ZH else t.name_en for t in totals]
    parks = sorted({p for t in totals for p, _, _ in t.by_park})
    energy = [{p: e for p, e, _ in t.by_park} for t in totals]
    co2 = [{p: c for p, _, c in t.by_park} for t in totals]
    with _style():
        fig = Figure(figsize=(_WIDTH_IN, 1.1 + 0.26 * len(totals)))
        left, right = fig.subplots(1, 2, sharey=True)
        _stacked_barh(left, names, energy, parks)
        _stacked_barh(right, names, co2, parks)
        left.set_xlabel(_tex(text("chart.energy_axis", lang)))
        right.set_xlabel(_tex(text("chart.co2_axis", lang)))
        for ax in (left, right):
            ax.xaxis.set_major_locator(MaxNLocator(nbins=4))
            ax.xaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
        if len(parks) > 1:
            fig.legend(
                *left.get_legend_handles_labels(),
                loc="upper center",
                bbox_to_anchor=(0.5, 0.0),
                ncol=len(parks),
            )
        return _svg(fig)


def contribution_chart(rows: Sequence[EnterpriseChange], lang: Lang) -> str | None:
    """Each enterprise's contribution to its park's change vs 2022 [percentage points], ranked."""
    shown = [r for r in rows if r.contribution_to_change is not None]
    if not shown:
        return None
    from matplotlib.figure import Figure  # noqa: PLC0415

    with _style():
        fig = Figure(figsize=(_WIDTH_IN, 0.7 + 0.26 * len(shown)))
        ax = fig.add_subplot()
        values = [(r.contribution_to_change or 0.0) * 100 for r in shown]
        positions = list(range(len(shown)))
        ax.barh(positions, values, color=[_GREEN if v <= 0 else _RED for v in values], height=0.6)
        ax.set_yticks(positions, [_tex(r.enterprise_name) for r in shown])
        ax.invert_yaxis()
        ax.axvline(0, color="#999999", linewidth=0.6)
        ax.grid(axis="x", color="#dddddd", linewidth=0.6)
        ax.set_xlabel(_tex(text("chart.contribution_axis", lang)))
        for pos, value in zip(positions, values, strict=True):
            ax.annotate(
                f"{value:+.1f}",
                (value, pos),
                xytext=(3 if value >= 0 else -3, 0),
                textcoords="offset points",
                ha="left" if value >= 0 else "right",
                va="center",
                fontsize=7.5,
            )
        ax.margins(x=0.15)
        return _svg(fig)
