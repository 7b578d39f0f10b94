"""The monthly energy-saving report (reports/, ``parkenergy report``) on the simulated park.

The report of the last complete month of the shared ``simulated_park`` database is
rendered once per module: the city in Chinese as HTML and PDF, and in English as HTML.
Its figures are compared with ``parkenergy intensity --json`` (run through the real CLI)
and with the ``api`` views it reads; the PDF's text is read back with pypdfium2.
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from parkenergy.cli import app
from reports import charts
from reports.errors import MonthSpecError, PdfEngineError, ReportInputError
from reports.formatting import exact, number, signed_percent
from reports.messages import Lang, text
from reports.monthly import (
    DEFAULT_VARIANT,
    HEADLINE_COLUMNS,
    LOCAL,
    AlertInMonth,
    CarrierEnergy,
    EnterpriseChange,
    ForecastYear,
    IntensitySeries,
    Month,
    SeriesPoint,
    carrier_totals,
    count_alerts,
    last_complete_month,
    rank_by_change,
)
from reports.monthly_store import read_quarantine
from reports.render import STEPS, load_pdf_engine, write_monthly_report
from tests.simulated_park import SimulatedPark

runner = CliRunner()

SECTIONS = ("overview", "parks", "carriers", "industries", "alerts", "quality", "method")
SECTION_TITLES = (
    "section.overview",
    "section.parks",
    "section.ranking",
    "section.carriers",
    "section.industries",
    "section.alerts",
    "section.quality",
    "section.method",
)


class _Page(HTMLParser):
    """What the tests read from a rendered HTML report."""

    def __init__(self) -> None:
        super().__init__()
        self.values: dict[str, list[str]] = {}
        self.ids: set[str] = set()
        self.images: list[str] = []
        self.tags: Counter[str] = Counter()
        self.links: list[str] = []
        self.ranking: dict[str, list[str]] = {}
        self.texts: list[str] = []
        self._park: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        self.tags[tag] += 1
        if "data-key" in a:
            self.values.setdefault(a["data-key"], []).append(a.get("data-value", ""))
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "img":
            self.images.append(a.get("src", ""))
        for attr in ("href", "src"):
            if attr in a and tag != "img":
                self.links.append(a[attr])
        if tag == "table" and "ranking" in a.get("class", ""):
            self._park = a["data-park"]
        if tag == "tr" and self._park is not None and "data-enterprise" in a:
            self.ranking.setdefault(self._park, []).append(a["data-enterprise"])

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._park = None

    def handle_data(self, data: str) -> None:
        self.texts.append(data)

    @property
    def text(self) -> str:
        return "".join(self.texts)

    def value(self, key: str) -> str:
        """The data-value of ``key`` (every cell with the key must show the same figure)."""
        found = self.values.get(key)
        assert found, f"no figure with data-key {key!r}"
        assert len(set(found)) == 1, f"{key}: different values {found}"
        return found[0]


def _parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def _close(shown: str, expected: float | None) -> bool:
    """A ``data-value`` against a view's figure: empty for NULL, else equal to 12 digits.

    Not bit-for-bit: PostgreSQL may sum the same rows in another order when an autoanalyze
    of the fresh database changes a plan between two queries.
    """
    return shown == "" if expected is None else float(shown) == pytest.approx(expected, rel=1e-12)


def _plain(value: str) -> str:
    """A catalogue text as the HTML shows it (CO₂ and 10⁴ are set with <sub>/<sup>)."""
    return value.replace("₂", "2").replace("⁴", "4")


@dataclass
class Rendered:
    month: Month
    url: str
    parks: list[str]
    html: Path
    html_en: Path
    pdf: Path | None
    skip_pdf: str = ""
    steps: list[str] = field(default_factory=list)
    page: _Page = field(default_factory=_Page)
    page_en: _Page = field(default_factory=_Page)


def _report_month(park: SimulatedPark) -> Month:
    """The last month wholly inside the simulated window."""
    end = park.config.end
    assert end is not None
    return Month.containing(end - timedelta(seconds=1)).previous()


@pytest.fixture(scope="module")
def rendered(simulated_park: SimulatedPark, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rendered]:
    month = _report_month(simulated_park)
    out = tmp_path_factory.mktemp("report")
    steps: list[str] = []
    skip_pdf = ""
    try:
        load_pdf_engine()
        formats: tuple[str, ...] = ("html", "pdf")
    except PdfEngineError as exc:
        skip_pdf, formats = f"WeasyPrint cannot load Pango: {exc.cause}", ("html",)
    with psycopg.connect(simulated_park.database_url, autocommit=True) as conn:
        parks = [str(c) for (c,) in conn.execute("SELECT park_code FROM api.park ORDER BY 1")]
        written = write_monthly_report(
            conn, month=month.label, lang="zh", formats=formats, out_dir=out, progress=steps.append
        )
        (html_en,) = write_monthly_report(conn, month=month.label, lang="en", formats=("html",), out_dir=out)
    result = Rendered(
        month=month,
        url=simulated_park.database_url,
        parks=parks,
        html=written[0],
        html_en=html_en,
        pdf=written[1] if len(written) > 1 else None,
        skip_pdf=skip_pdf,
        steps=steps,
    )
    result.page, result.page_en = _parse(result.html), _parse(result.html_en)
    yield result


def test_files_are_named_by_month_park_and_language(rendered: Rendered) -> None:
    label = rendered.month.label
    assert rendered.html.name == f"parkenergy-report-{label}.html"
    assert rendered.html_en.name == f"parkenergy-report-{label}-en.html"
    if rendered.pdf is not None:
        assert rendered.pdf.name == f"parkenergy-report-{label}.pdf"
        assert rendered.pdf.read_bytes()[:5] == b"%PDF-"
        assert rendered.steps == list(STEPS)
    else:
        assert rendered.steps == [s for s in STEPS if s != "pdf"]


def test_html_is_self_contained_and_charts_are_outlined_svg(rendered: Rendered) -> None:
    page = rendered.page
    assert page.tags["script"] == 0 and page.tags["link"] == 0
    assert not [link for link in page.links if "://" in link]
    # one intensity chart for the city and each park, a contribution chart per park, the carriers
    assert len(page.images) == 1 + 2 * len(rendered.parks) + 1
    for src in page.images:
        assert src.startswith("data:image/svg+xml;base64,")
        svg = base64.b64decode(src.split(",", 1)[1]).decode("utf-8")
        assert "<path" in svg and "<text" not in svg  # text drawn as outlines: no font needed
    assert "file:" not in rendered.html.read_text(encoding="utf-8")


@pytest.mark.parametrize("lang", [Lang.ZH, Lang.EN])
def test_sections_are_present(rendered: Rendered, lang: Lang) -> None:
    page = rendered.page if lang is Lang.ZH else rendered.page_en
    expected = (
        set(SECTIONS) | {f"park-{p}" for p in rendered.parks} | {f"ranking-{p}" for p in rendered.parks}
    )
    assert expected <= page.ids
    for key in SECTION_TITLES:
        assert _plain(text(key, lang)) in page.text, key
    assert _plain(text("variant." + DEFAULT_VARIANT, lang)) in page.text
    assert text("report.month", lang, year=rendered.month.year, month=rendered.month.month) in page.text


@pytest.mark.parametrize("level", ["city", "park"])
@pytest.mark.parametrize("period_type", ["month", "ytd", "rolling12"])
def test_headline_figures_equal_the_intensity_command(
    rendered: Rendered, level: str, period_type: str
) -> None:
    label = rendered.month.label
    period = label if period_type == "month" else f"{period_type}:{label}"
    result = runner.invoke(
        app, ["intensity", "--level", level, "--period", period, "--json"], env={"DATABASE_URL": rendered.url}
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    assert len(rows) == 3 * (1 if level == "city" else len(rendered.parks))
    for row in rows:
        scope = "city" if level == "city" else f"park.{row['park_code']}"
        for column in HEADLINE_COLUMNS:
            shown = rendered.page.value(f"{scope}.{period_type}.{row['variant']}.{column}")
            expected = row[column]
            if isinstance(expected, float):
                assert _close(shown, expected), (scope, column, shown, expected)
            else:
                assert shown == exact(expected), (scope, column)
    for row in rows:  # the same figures in the English report
        scope = "city" if level == "city" else f"park.{row['park_code']}"
        zh = rendered.page.value(f"{scope}.{period_type}.{row['variant']}.intensity")
        en = rendered.page_en.value(f"{scope}.{period_type}.{row['variant']}.intensity")
        assert _close(en, None if zh == "" else float(zh))


def test_pdf_text_has_the_section_titles_and_rounded_headline_figures(rendered: Rendered) -> None:
    if rendered.pdf is None:
        pytest.skip(rendered.skip_pdf)
    import pypdfium2 as pdfium  # noqa: PLC0415

    pdf = pdfium.PdfDocument(str(rendered.pdf))
    try:
        pages = [pdf[i].get_textpage().get_text_range() for i in range(len(pdf))]
    finally:
        pdf.close()
    assert len(pages) >= 4
    whole = "".join(pages)
    flat = whole.replace("\r", "").replace("\n", "")
    for key in SECTION_TITLES:
        assert text(key, Lang.ZH) in flat, key
    page = rendered.page
    for scope in ["city", *(f"park.{p}" for p in rendered.parks)]:
        for period_type in ("month", "ytd", "rolling12"):
            value = float(page.value(f"{scope}.{period_type}.{DEFAULT_VARIANT}.intensity"))
            assert number(value, 4) in whole, (scope, period_type)
        change = float(page.value(f"{scope}.ytd.{DEFAULT_VARIANT}.change_vs_2022"))
        assert signed_percent(change) in whole
    assert f"{len(pages)}" in pages[-1]  # page numbers "第 n 页 / 共 N 页"
    assert "第 1 页 / 共" in pages[0]


def test_ranking_follows_the_views(rendered: Rendered) -> None:
    label = rendered.month.label
    with psycopg.connect(rendered.url) as conn:
        for park in rendered.parks:
            order = [
                str(c)
                for (c,) in conn.execute(
                    "SELECT enterprise_code FROM api.intensity"
                    " WHERE level = 'enterprise' AND period_type = 'ytd'"
                    " AND period = %s AND variant = %s AND park_code = %s"
                    " ORDER BY change_vs_2022 NULLS LAST, enterprise_code",
                    (label, DEFAULT_VARIANT.value, park),
                )
            ]
            assert order and rendered.page.ranking[park] == order
            contributions = dict(
                conn.execute(
                    "SELECT enterprise_code, contribution_to_change FROM api.intensity_contribution"
                    " WHERE period_type = 'ytd' AND period = %s AND variant = %s AND park_code = %s",
                    (label, DEFAULT_VARIANT.value, park),
                ).fetchall()
            )
            shown = {
                code: float(rendered.page.value(f"park.{park}.enterprise.{code}.contribution_to_change"))
                for code in order
            }
            assert shown == pytest.approx(contributions, rel=1e-12)
            park_change = float(rendered.page.value(f"park.{park}.ytd.{DEFAULT_VARIANT}.change_vs_2022"))
            assert sum(shown.values()) == pytest.approx(park_change, rel=1e-9)


def test_alert_counts_match_the_alert_view(rendered: Rendered) -> None:
    month = rendered.month
    with psycopg.connect(rendered.url) as conn:
        reopened = conn.execute("SELECT count(*) FROM api.alert_event WHERE event = 'reopened'").fetchone()
        assert reopened == (0,)  # then api.alert's opened_at / resolved_at are the whole history
        rows = conn.execute(
            "SELECT kind, count(*) FILTER (WHERE opened_at >= %(s)s AND opened_at < %(e)s),"
            " count(*) FILTER (WHERE resolved_at >= %(s)s AND resolved_at < %(e)s),"
            " count(*) FILTER (WHERE opened_at < %(e)s AND (resolved_at IS NULL OR resolved_at >= %(e)s))"
            " FROM api.alert GROUP BY kind",
            {"s": month.start_at, "e": month.end_at},
        ).fetchall()
    expected = {kind: (o, r, u) for kind, o, r, u in rows if o or r or u}
    shown: dict[str, list[int]] = {}
    for key, values in rendered.page.values.items():
        parts = key.split(".")
        if parts[0] == "alerts" and parts[1] != "total":
            kind, what = ".".join(parts[1:-2]), parts[-1]
            counts = shown.setdefault(kind, [0, 0, 0])
            counts[("opened", "resolved", "open_at_end").index(what)] += int(values[0])
    assert {k: tuple(v) for k, v in shown.items()} == expected
    totals = tuple(sum(v[i] for v in expected.values()) for i in range(3))
    if expected:
        shown_totals = tuple(
            int(rendered.page.value(f"alerts.total.{w}")) for w in ("opened", "resolved", "open_at_end")
        )
        assert shown_totals == totals
    else:
        assert text("alerts.none", Lang.ZH) in rendered.page.text


def test_carrier_and_industry_sums_match_the_energy_views(rendered: Rendered) -> None:
    with psycopg.connect(rendered.url) as conn:
        city = conn.execute(
            "SELECT energy_tce_gross, co2_t FROM api.energy_tce_month WHERE level = 'city' AND bucket = %s",
            (rendered.month.start_at,),
        ).fetchone()
        carriers = conn.execute(
            "SELECT carrier, sum(energy_tce_gross), sum(co2_t) FROM api.energy_carrier_month"
            " WHERE bucket = %s"
            " GROUP BY carrier",
            (rendered.month.start_at,),
        ).fetchall()
        industries = conn.execute(
            "SELECT park_code, industry_code, energy_tce_gross, co2_t FROM api.energy_tce_month"
            " WHERE level = 'park_industry' AND bucket = %s",
            (rendered.month.start_at,),
        ).fetchall()
    assert city is not None and len(carriers) >= 3 and industries
    page = rendered.page
    assert float(page.value("carrier.total.energy_tce_gross")) == pytest.approx(city[0], rel=1e-9)
    assert float(page.value("carrier.total.co2_t")) == pytest.approx(city[1], rel=1e-9)
    assert float(page.value("city.month.energy.co2_t")) == pytest.approx(city[1], rel=1e-12)
    for carrier, energy, co2 in carriers:
        assert float(page.value(f"carrier.{carrier}.energy_tce_gross")) == pytest.approx(energy, rel=1e-12)
        assert _close(page.value(f"carrier.{carrier}.co2_t"), co2)
    for park, industry, energy, co2 in industries:
        assert float(page.value(f"industry.{park}.{industry}.energy_tce_gross")) == pytest.approx(
            energy, rel=1e-12
        )
        assert _close(page.value(f"industry.{park}.{industry}.co2_t"), co2)


def test_quality_table_shows_each_enterprise_coverage(rendered: Rendered) -> None:
    with psycopg.connect(rendered.url) as conn:
        rows = conn.execute(
            "SELECT enterprise_code, coverage FROM api.energy_tce_month"
            " WHERE level = 'enterprise' AND bucket = %s",
            (rendered.month.start_at,),
        ).fetchall()
        enterprises = conn.execute("SELECT count(*) FROM api.enterprise").fetchone()
    assert enterprises is not None and len(rows) == enterprises[0]
    for code, coverage in rows:
        assert float(rendered.page.value(f"quality.{code}.coverage")) == pytest.approx(coverage, rel=1e-12)


def test_quarantine_counts_by_reason_and_park(rendered: Rendered) -> None:
    # The simulated messages were received when the fixture ran (today), not in the report's month.
    start, end = datetime.now(UTC) - timedelta(days=2), datetime.now(UTC) + timedelta(hours=1)
    with psycopg.connect(rendered.url) as conn:
        expected = dict(
            conn.execute(
                "SELECT reason, count(*) FROM api.quarantine WHERE received_at >= %s AND received_at < %s"
                " GROUP BY reason",
                (start, end),
            ).fetchall()
        )
        city = read_quarantine(conn, start, end)
        by_park = [read_quarantine(conn, start, end, park) for park in rendered.parks]
        in_month = read_quarantine(conn, rendered.month.start_at, rendered.month.end_at)
    assert expected and {q.reason: q.messages for q in city} == expected
    assert [q.messages for q in city] == sorted((q.messages for q in city), reverse=True)
    per_park = Counter[str]()
    for counts in by_park:
        per_park.update({q.reason: q.messages for q in counts})
    # each message counts for at most one park; topics naming no registered enterprise for the city only
    assert sum(per_park.values()) > 0 and all(per_park[r] <= n for r, n in expected.items())
    assert {q.reason: q.messages for q in in_month} == {
        k.removeprefix("quarantine."): int(v[0])
        for k, v in rendered.page.values.items()
        if k.startswith("quarantine.")
    }


def test_cli_writes_a_park_report_in_english(rendered: Rendered, tmp_path: Path) -> None:
    park = rendered.parks[-1]
    result = runner.invoke(
        app,
        [
            *("report", "--month", rendered.month.label, "--park", park, "--format", "html", "--lang", "en"),
            *("--variant", "gross", "--out", str(tmp_path / "out")),
        ],
        env={"DATABASE_URL": rendered.url},
    )
    assert result.exit_code == 0, result.output
    path = Path(result.stdout.strip())
    assert path == tmp_path / "out" / f"parkenergy-report-{rendered.month.label}-{park}-en.html"
    page = _parse(path)
    assert f"ranking-{park}" in page.ids and "parks" not in page.ids
    assert not [k for k in page.values if k.startswith("park.") and not k.startswith(f"park.{park}.")]
    # the headline variant asked for is the one the cards show
    ytd = page.value(f"park.{park}.ytd.gross.intensity")
    assert ytd == rendered.page.value(f"park.{park}.ytd.gross.intensity")
    assert _plain(text("variant.gross", Lang.EN)) in page.text
    assert "report" in result.stderr  # the progress bar is on stderr


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--park", "NOPE"], 2, "error: unknown park 'NOPE' (parks: "),
        (["--month", "2026-13"], 2, "error: '2026-13' is not a month YYYY-MM"),
        (["--month", "2019-01"], 1, "error: no data for 2019-01 (the city has data from "),
        (["--month", "2019-01", "--park", "NOPE"], 2, "error: unknown park 'NOPE'"),
    ],
)
def test_cli_errors_are_one_clear_line(
    rendered: Rendered, tmp_path: Path, args: list[str], code: int, message: str
) -> None:
    result = runner.invoke(
        app, ["report", "--format", "html", "--out", str(tmp_path), *args], env={"DATABASE_URL": rendered.url}
    )
    assert result.exit_code == code, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(message), result.stderr
    assert not list(tmp_path.iterdir())


def test_bad_requests_are_refused_before_reading(rendered: Rendered, tmp_path: Path) -> None:
    with psycopg.connect(rendered.url, autocommit=True) as conn:
        for kwargs in ({"lang": "fr"}, {"formats": ("docx",)}, {"variant": "net"}, {"month": "2026/10"}):
            with pytest.raises(ReportInputError):
                write_monthly_report(conn, **{"month": rendered.month.label, "out_dir": tmp_path, **kwargs})  # type: ignore[arg-type]
    assert not list(tmp_path.iterdir())


# -- pure parts ---------------------------------------------------------------------------


def test_months_are_local_calendar_months() -> None:
    assert Month.parse("2026-10") == Month(2026, 10)
    for bad in ("2026-13", "2026-1", "26-10", "2026-10-01", ""):
        with pytest.raises(MonthSpecError):
            Month.parse(bad)
    # 2026-10-31 17:00 UTC is 1 November 01:00 in China: October is complete
    assert last_complete_month(datetime(2026, 10, 31, 17, 0, tzinfo=UTC)) == Month(2026, 10)
    assert last_complete_month(datetime(2026, 10, 31, 15, 0, tzinfo=UTC)) == Month(2026, 9)
    assert last_complete_month(datetime(2027, 1, 5, tzinfo=LOCAL)) == Month(2026, 12)
    assert Month(2026, 12).end_at == datetime(2027, 1, 1, tzinfo=LOCAL)


def _change(code: str, change: float | None) -> EnterpriseChange:
    return EnterpriseChange("P", code, code, "3120", None, None, None, None, change, None, None, None, False)


def test_ranking_puts_the_largest_fall_first_and_unknown_changes_last() -> None:
    ranked = rank_by_change([_change("c", None), _change("b", 0.05), _change("a", -0.2), _change("d", 0.05)])
    assert [r.enterprise_code for r in ranked] == ["a", "b", "d", "c"]


def test_carrier_totals_sum_enterprises_and_keep_missing_co2_apart() -> None:
    rows = [
        CarrierEnergy("P1", "3120", "e1", "coke", "焦炭", "Coke", 100.0, 0.0, 280.0, 1.0, True),
        CarrierEnergy("P2", "3011", "e2", "coke", "焦炭", "Coke", 50.0, 10.0, None, 0.8, True),
        CarrierEnergy(
            "P1", "3120", "e1", "electricity", "电力", "Electricity", 200.0, 0.0, 700.0, 0.95, True
        ),
    ]
    electricity, coke = carrier_totals(rows)
    assert electricity.carrier == "electricity" and electricity.energy_tce_gross == 200.0
    assert coke.energy_tce_gross == 150.0 and coke.feedstock_tce == 10.0
    assert coke.co2_t == 280.0 and coke.co2_missing and coke.lowest_coverage == 0.8
    assert coke.by_park == (("P1", 100.0, 280.0), ("P2", 50.0, 0.0)) and coke.enterprises == 2


def _alert(kind: str, severity: str, opened: bool, resolved: bool, open_at_end: bool) -> AlertInMonth:
    t = datetime(2026, 10, 5, tzinfo=LOCAL)
    return AlertInMonth(
        alert_id=1,
        kind=kind,
        severity=severity,
        state="open",
        subject="enterprise:E",
        park_code=None,
        enterprise_code=None,
        enterprise_name=None,
        meter_code=None,
        started_at=t,
        ended_at=None,
        opened_at=t,
        resolved_at=None,
        summary_zh="",
        summary_en="",
        observed=None,
        expected_low=None,
        expected_high=None,
        score=None,
        unit=None,
        opened_in_month=opened,
        resolved_in_month=resolved,
        open_at_end=open_at_end,
    )


def test_alert_counts_group_by_kind_and_severity_most_severe_first() -> None:
    counts = count_alerts(
        [
            _alert("meter.gap", "info", True, True, False),
            _alert("meter.offline", "warning", True, False, True),
            _alert("meter.offline", "warning", False, True, False),
            _alert("counter.stuck", "critical", False, False, True),
        ]
    )
    assert [(c.kind, c.severity, c.opened, c.resolved, c.open_at_end) for c in counts] == [
        ("counter.stuck", "critical", 0, 0, 1),
        ("meter.offline", "warning", 1, 1, 1),
        ("meter.gap", "info", 1, 1, 0),
    ]


def test_intensity_chart_draws_path_points_and_forecast_interval() -> None:
    points = tuple(SeriesPoint(date(2026, m, 1), 0.8 + m / 100, 0.78, 0.95, m == 3) for m in range(1, 4))
    series = IntensitySeries(
        "gross", points, points, (ForecastYear(2027, 0.75, 0.70, 0.81, 0.72, "at_risk"),), 0.80, 0.72
    )
    svg = charts.intensity_chart(series, Month(2026, 3), Lang.ZH, "测试园区")
    assert svg is not None and svg.startswith("<?xml") and "<text" not in svg
    assert svg == charts.intensity_chart(series, Month(2026, 3), Lang.ZH, "测试园区")  # reproducible
    empty = IntensitySeries("gross", (), (), (), None, None)
    assert charts.intensity_chart(empty, Month(2026, 3), Lang.ZH, "x") is None
