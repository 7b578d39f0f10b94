"""The monthly report as one self-contained HTML file, and the same HTML laid out as a PDF.

``write_monthly_report`` is the entry point: it reads the figures
(:mod:`reports.monthly_store`), draws the charts (:mod:`reports.charts`), fills the
Jinja2 template ``templates/monthly.html.j2`` and, for the PDF, hands the same HTML to
WeasyPrint with ``@font-face`` rules for Noto Sans CJK SC (:mod:`reports.fonts`).
WeasyPrint is imported only when a PDF is asked for: the HTML report needs neither it
nor the system's Pango.
"""

from __future__ import annotations

import functools
import importlib
import json
import logging
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any, Final

import jinja2
import psycopg
from markupsafe import Markup, escape

from analytics.accounting import Variant
from reports import charts
from reports.errors import PdfEngineError, ReportInputError
from reports.fonts import font_face_css, noto_sans_cjk
from reports.formatting import exact, figure, local_time, number, percent, signed_percent
from reports.industries import division_name
from reports.messages import Lang, parse_lang, text
from reports.monthly import (
    DEFAULT_VARIANT,
    HEADLINE_COLUMNS,
    PERIOD_TYPES,
    Month,
    MonthlyReport,
    Scope,
    last_complete_month,
)
from reports.monthly_store import load_monthly_report

__all__ = [
    "FORMATS",
    "STEPS",
    "load_pdf_engine",
    "render_html",
    "report_filename",
    "write_monthly_report",
    "write_pdf",
]

log = logging.getLogger(__name__)

FORMATS: Final = ("html", "pdf")
STEPS: Final = ("query", "charts", "html", "pdf")
"""The steps :func:`write_monthly_report` reports to its ``progress`` callback, in order."""

ALERT_LIMIT: Final = 100
"""Warning and critical alerts listed at most (highest severity and score first)."""
QUALITY_LIMIT: Final = 60
"""Above this many enterprises, the quality table lists only those with a problem."""

Connection = psycopg.Connection[Any]


def report_filename(month: Month, park_code: str | None, lang: Lang, fmt: str) -> str:
    """``parkenergy-report-2026-10[-<park>][-en].html|pdf``."""
    park = f"-{park_code}" if park_code else ""
    suffix = "-en" if lang is Lang.EN else ""
    return f"parkenergy-report-{month.label}{park}{suffix}.{fmt}"


@dataclass(frozen=True, slots=True)
class _Charts:
    """Data URIs of the charts: intensity by scope key, contribution by park code, carriers."""

    intensity: dict[str, str]
    contribution: dict[str, str]
    carriers: str | None


def _scope_name(scope: Scope, lang: Lang) -> str:
    if scope.park_code is None:
        return text("report.scope.city", lang)
    return text("report.scope.park", lang, name=scope.park_name or scope.park_code, code=scope.park_code)


def _draw_charts(report: MonthlyReport, lang: Lang) -> _Charts:
    intensity: dict[str, str] = {}
    contribution: dict[str, str] = {}
    for section in (report.overview, *report.parks):
        svg = charts.intensity_chart(section.series, report.month, lang, _scope_name(section.scope, lang))
        if svg is not None:
            intensity[section.scope.key] = charts.data_uri(svg)
        if section.ranking is not None:
            rows = (*section.ranking.best(), *section.ranking.worst())
            svg = charts.contribution_chart(rows, lang)
            if svg is not None:
                contribution[section.ranking.park_code] = charts.data_uri(svg)
    carrier_svg = charts.carrier_chart(report.carrier_totals, lang)
    return _Charts(intensity, contribution, None if carrier_svg is None else charts.data_uri(carrier_svg))


def _markup(value: str) -> Markup:
    """Escaped text with CO₂ and 10⁴ as <sub>/<sup> (the CJK font has no such digits)."""
    return Markup(str(escape(value)).replace("₂", "<sub>2</sub>").replace("⁴", "<sup>4</sup>"))


@functools.cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("reports", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        exact=exact,
        fig=figure,
        num=number,
        pct=percent,
        spct=signed_percent,
        ltime=local_time,
    )
    return env


def _heading(n: int, lang: Lang) -> str:
    numerals = "一二三四五六七八九十"
    if lang is Lang.ZH and 1 <= n <= len(numerals):
        return f"{numerals[n - 1]}、"
    return f"{n}. "


def render_html(report: MonthlyReport, lang: Lang, *, chart_uris: _Charts | None = None) -> str:
    """The report as one HTML document: styles inside, charts as SVG data URIs."""
    drawn = chart_uris if chart_uris is not None else _draw_charts(report, lang)

    def t(key: str, **fields: object) -> Markup:
        return _markup(text(key, lang, **fields))

    counter = (
        f'"{text("page.before", lang)}" counter(page) "{text("page.middle", lang)}" counter(pages)'
        f' "{text("page.after", lang)}"'
    )
    variant_name = text(f"variant.{report.variant}", lang)
    month = report.month
    template = _environment().get_template("monthly.html.j2")
    return template.render(
        report=report,
        lang=lang.value,
        t=t,
        title=text("report.title", lang),
        month_title=text("report.month", lang, year=month.year, month=month.month),
        scope_title=_scope_name(report.scope, lang),
        scope_name=lambda scope: _scope_name(scope, lang),
        generated=text("report.generated", lang, time=local_time(report.generated_at)),
        variant=report.variant,
        variant_name=variant_name,
        default_variant=report.variant == DEFAULT_VARIANT,
        variants=[v.value for v in Variant],
        period_types=PERIOD_TYPES,
        columns=HEADLINE_COLUMNS,
        charts=drawn,
        industry=lambda code: _industry_label(code, lang),
        heading=lambda n: _heading(n, lang),
        period_range=lambda period_type: _period_range(month, period_type),
        page_counter=Markup(counter),
        running_prefix=Markup(json.dumps(text("report.title", lang) + " · ", ensure_ascii=False)),
        alert_limit=ALERT_LIMIT,
        quality_limit=QUALITY_LIMIT,
    )


def _period_range(month: Month, period_type: str) -> str:
    """The months of a period ending in ``month``: ``2026-10``, ``2026-01 – 2026-10``."""
    if period_type == "month":
        return month.label
    first = Month(month.year, 1) if period_type == "ytd" else Month(month.year - 1, month.month).next()
    return f"{first.label} – {month.label}"


def _industry_label(code: str | None, lang: Lang) -> str:
    if not code:
        return text("none", lang)
    name = division_name(code, lang.value)
    return f"{code} {name}" if name else code


@functools.cache
def load_pdf_engine() -> ModuleType:
    """Import WeasyPrint, or raise :class:`~reports.errors.PdfEngineError` with the install hint.

    WeasyPrint loads Pango, HarfBuzz and fontconfig with ``dlopen`` when imported. Without
    the optional ``harfbuzz-subset`` library it warns (DeprecationWarning) and subsets
    fonts with fontTools instead, which is slower but gives the same PDF; that warning
    is not repeated to the user.
    """
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="HarfBuzz-Subset", category=DeprecationWarning)
            return importlib.import_module("weasyprint")
    except OSError as exc:
        raise PdfEngineError(" ".join(str(exc).split())) from exc


def write_pdf(html: str, path: Path) -> None:
    """Lay out ``html`` with WeasyPrint (A4, fonts from :mod:`reports.fonts`) into ``path``."""
    weasyprint = load_pdf_engine()
    from weasyprint.text.fonts import FontConfiguration  # noqa: PLC0415

    fonts = FontConfiguration()
    css = weasyprint.CSS(string=font_face_css(noto_sans_cjk()), font_config=fonts)
    weasyprint.HTML(string=html, base_url=str(path.parent)).write_pdf(
        str(path), stylesheets=[css], font_config=fonts
    )


def _formats(formats: Sequence[str] | str) -> tuple[str, ...]:
    items = (formats,) if isinstance(formats, str) else formats
    asked = tuple(dict.fromkeys(str(f).lower() for f in items))
    bad = [f for f in asked if f not in FORMATS]
    if bad or not asked:
        raise ReportInputError(f"format must be html or pdf, got {', '.join(bad) or 'none'}")
    return asked


def _variant(variant: str | None) -> str:
    if variant is None:
        return DEFAULT_VARIANT.value
    try:
        return Variant(variant).value
    except ValueError:
        raise ReportInputError(
            f"variant must be one of {', '.join(v.value for v in Variant)}, got {variant!r}"
        ) from None


def write_monthly_report(  # noqa: PLR0917 (the interface the CLI and others call)
    conn: Connection,
    month: str | None = None,
    park_code: str | None = None,
    lang: str = "zh",
    formats: Sequence[str] = FORMATS,
    out_dir: Path = Path("."),
    variant: str | None = None,
    *,
    now: datetime | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[Path]:
    """Write the monthly energy-saving report of ``month`` as HTML and/or PDF; return the files.

    Parameters
    ----------
    conn : psycopg.Connection
        Autocommit connection; only ``api.*`` views are read.
    month : str, optional
        ``YYYY-MM``; default the last complete month in Asia/Shanghai.
    park_code : str, optional
        One park; None: the whole city, one section per park.
    lang : {"zh", "en"}
        Language (file names of English reports end in ``-en``).
    formats : sequence of {"html", "pdf"}
        Files to write; the PDF is laid out from the same HTML.
    out_dir : Path
        Directory for the files (created if missing).
    variant : str, optional
        Headline variant; default ``excl_feedstock_nonfossil``, the one the target is
        assessed in. The tables show all three.
    now : datetime, optional
        The generation time (default: now); decides the default month and whether the
        month is complete.
    progress : callable, optional
        Called with each step of :data:`STEPS` as it starts (``pdf`` only for a PDF).

    Returns
    -------
    list of Path
        ``parkenergy-report-<month>[-<park>][-en].<format>`` in ``out_dir``, in the order
        of ``formats``.

    Raises
    ------
    ReportInputError
        Bad month, language, variant or format (:class:`~reports.errors.MonthSpecError`), or
        an unknown park (:class:`~reports.errors.UnknownParkError`).
    NoDataError
        No figures for the month.
    PdfEngineError
        A PDF was asked for and WeasyPrint cannot load the system's Pango.
    """
    moment = now if now is not None else datetime.now(UTC)
    the_month = Month.parse(month) if month is not None else last_complete_month(moment)
    language = parse_lang(lang)
    kinds = _formats(formats)
    headline = _variant(variant)
    if "pdf" in kinds:
        load_pdf_engine()
    step = progress or (lambda _name: None)

    step("query")
    report = load_monthly_report(conn, the_month, park_code, headline, moment)
    step("charts")
    drawn = _draw_charts(report, language)
    step("html")
    html = render_html(report, language, chart_uris=drawn)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for kind in kinds:
        path = out_dir / report_filename(the_month, park_code, language, kind)
        if kind == "html":
            path.write_text(html, encoding="utf-8")
        else:
            step("pdf")
            write_pdf(html, path)
        log.debug("wrote %s", path)
        written.append(path)
    return written
