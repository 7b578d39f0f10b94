"""``parkenergy report``: the monthly energy-saving report as HTML and PDF (docs/report.md)."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from analytics.accounting import Variant
from parkdata.db import connect
from parkenergy import services
from parkenergy.clikit import console, fail, progress_bars, settings_of
from reports.errors import ReportError, ReportInputError
from reports.messages import Lang
from reports.monthly import Month, last_complete_month
from reports.render import STEPS, write_monthly_report

__all__ = ["register"]


class Format(StrEnum):
    """A file the report is written as."""

    HTML = "html"
    PDF = "pdf"


def register(app: typer.Typer) -> None:
    """Add ``report`` to the ``parkenergy`` command."""
    app.command("report")(report)


def report(  # noqa: PLR0917 (typer: one parameter per option)
    ctx: typer.Context,
    month: Annotated[
        str | None,
        typer.Option(help="YYYY-MM; default: the last complete month (Asia/Shanghai)."),
    ] = None,
    park: Annotated[str | None, typer.Option(help="Only this park; default: the whole city.")] = None,
    formats: Annotated[
        list[Format] | None,
        typer.Option("--format", help="html or pdf; repeat for both (default: both)."),
    ] = None,
    lang: Annotated[Lang, typer.Option("--lang", help="zh (default) or en.")] = Lang.ZH,
    variant: Annotated[
        Variant | None,
        typer.Option(help="Headline variant; default excl_feedstock_nonfossil (the target's)."),
    ] = None,
    out: Annotated[
        Path, typer.Option("--out", help="Directory for the files (created if missing).", file_okay=False)
    ] = Path("."),
) -> None:
    """Write the monthly energy-saving report (HTML and PDF); print the files.

    Headline intensity with variant and coverage, intensity against the path
    per park, enterprises ranked by change, energy and CO₂ by carrier and
    industry, alerts, data quality (docs/report.md). Exits with 2 on a bad
    month or park, with 1 when the month has no data or no PDF engine.
    """
    try:
        the_month = Month.parse(month) if month is not None else last_complete_month(datetime.now(UTC))
    except ReportInputError as exc:
        raise fail(str(exc), 2) from exc
    kinds = [f.value for f in formats] if formats else [f.value for f in Format]
    steps = [s for s in STEPS if s != "pdf" or "pdf" in kinds]
    url = services.database_url(settings_of(ctx))
    try:
        with connect(url, autocommit=True) as conn, progress_bars() as bar:
            task = bar.add_task(f"report {the_month.label}", total=len(steps), detail="")

            def advance(step: str) -> None:
                done = steps.index(step)
                bar.update(task, completed=done, description=f"report {the_month.label}: {step}")

            paths = write_monthly_report(
                conn,
                month=the_month.label,
                park_code=park,
                lang=lang.value,
                formats=kinds,
                out_dir=out,
                variant=None if variant is None else variant.value,
                progress=advance,
            )
            bar.update(task, completed=len(steps), description=f"report {the_month.label}: done")
    except ReportInputError as exc:
        raise fail(str(exc), 2) from exc
    except ReportError as exc:  # no data for the month, or no PDF engine
        raise fail(str(exc), 1) from exc
    except OSError as exc:
        raise fail(f"cannot write the report in {out}: {exc.strerror or exc}", 1) from exc
    for path in paths:
        console.print(str(path), markup=False, highlight=False, soft_wrap=True)
