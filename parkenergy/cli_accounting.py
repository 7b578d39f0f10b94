"""``parkenergy import …``, ``parkenergy intensity`` and ``parkenergy factors …``.

Economics imports (docs/accounting.md, "Economics files"), the intensity table
against the 2022 base and the 2027 target, and the versioned factors.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from analytics.accounting import Variant
from analytics.economics_file import (
    EconomicsFileError,
    read_baseline_file,
    read_deflators_file,
    read_output_file,
    read_value_added_file,
)
from analytics.economics_store import store_baseline, store_deflators, store_output, store_value_added
from analytics.factors import (
    Co2Factor,
    Confidence,
    FactorError,
    TceFactor,
    TceOverride,
    kgce_per_unit_from_lhv,
)
from analytics.factors_store import add_co2_factor, add_override, add_tce_factor, list_rows, set_setting
from analytics.intensity_store import (
    LEVELS,
    PeriodSpecError,
    UnknownParkError,
    check_park,
    parse_period,
    query_intensity,
    why_empty,
)
from parkdata.db import connect
from parkenergy import services
from parkenergy.clikit import console, err_console, fail, fail_problems, print_rows, settings_of

__all__ = ["register"]

_Rows = TypeVar("_Rows")

import_app = typer.Typer(
    help="Import economic statistics (CSV or XLSX): all lines or none.", no_args_is_help=True
)
factors_app = typer.Typer(
    help="tce coefficients, CO2 factors, site overrides and settings.", no_args_is_help=True
)

_FILE = typer.Argument(help="CSV or XLSX file (see docs/accounting.md).", exists=True, dir_okay=False)
_BY = typer.Option("--by", help="Who is importing, recorded with revisions (default: the OS user).")


def register(app: typer.Typer) -> None:
    """Add the accounting commands to the ``parkenergy`` app."""
    app.add_typer(import_app, name="import")
    app.add_typer(factors_app, name="factors")
    app.command("intensity")(intensity)


# -- import ------------------------------------------------------------------


def _import(ctx: typer.Context, read: Callable[[], _Rows], store: Callable[[Any, _Rows], object]) -> None:
    url = services.database_url(settings_of(ctx))
    try:
        rows = read()
        with connect(url) as conn:
            summary = store(conn, rows)
    except EconomicsFileError as exc:
        raise fail_problems(exc.problems, "; nothing was imported") from exc
    if isinstance(summary, tuple):
        for part in summary:
            console.print(str(part))
    else:
        console.print(str(summary))


@import_app.command("value-added")
def import_value_added(
    ctx: typer.Context, file: Annotated[Path, _FILE], by: Annotated[str | None, _BY] = None
) -> None:
    """Monthly value added at current prices [10⁴ yuan].

    Columns: enterprise_code, period (YYYY-MM), value_added_10k_yuan[, price_index_2022].
    """
    _import(ctx, lambda: read_value_added_file(file), lambda c, r: store_value_added(c, r, by))


@import_app.command("deflators")
def import_deflators(
    ctx: typer.Context, file: Annotated[Path, _FILE], by: Annotated[str | None, _BY] = None
) -> None:
    """Industry price indices: industry_code, year, price_index_2022 (comparable = current / index)."""
    _import(ctx, lambda: read_deflators_file(file), lambda c, r: store_deflators(c, r, by))


@import_app.command("baseline")
def import_baseline(
    ctx: typer.Context, file: Annotated[Path, _FILE], by: Annotated[str | None, _BY] = None
) -> None:
    """Base-year (2022) statistics, one line per enterprise and carrier.

    Columns: enterprise_code, year, carrier, unit, consumption[, feedstock][, non_fossil],
    value_added_10k_yuan.
    """
    _import(ctx, lambda: read_baseline_file(file), lambda c, r: store_baseline(c, r, by))


@import_app.command("output")
def import_output(
    ctx: typer.Context, file: Annotated[Path, _FILE], by: Annotated[str | None, _BY] = None
) -> None:
    """Monthly product output: enterprise_code, period, product, quantity, unit."""
    _import(ctx, lambda: read_output_file(file), lambda c, r: store_output(c, r, by))


# -- intensity ---------------------------------------------------------------

_TABLE_COLUMNS = (
    "park_code",
    "industry_code",
    "enterprise_code",
    "variant",
    "energy_tce",
    "value_added_10k_yuan",
    "intensity",
    "base_2022",
    "change_vs_2022",
    "target_2027",
    "path_value",
    "status",
    "coverage",
)


def _shown(value: object, column: str) -> object:
    if not isinstance(value, float):
        return value
    if column == "change_vs_2022":
        return f"{value:+.2%}"
    if column == "coverage":
        return f"{value:.1%}"
    if column in ("energy_tce", "value_added_10k_yuan"):
        return f"{value:,.1f}"
    return f"{value:.4f}"


def intensity(  # noqa: PLR0917 (typer: one parameter per option)
    ctx: typer.Context,
    level: Annotated[str, typer.Option(help="enterprise, industry, park or city.")] = "city",
    period: Annotated[
        str,
        typer.Option(
            help="2025 (year), 2025-06 (month), ytd[:2025-06] or rolling12[:2025-06]; default: ytd."
        ),
    ] = "ytd",
    variant: Annotated[
        Variant | None,
        typer.Option(help="gross, excl_feedstock or excl_feedstock_nonfossil; default: all three."),
    ] = None,
    park: Annotated[
        str | None, typer.Option(help="Only this park (industry level: industries within it).")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="JSON lines (fields in docs/accounting.md).")
    ] = False,
) -> None:
    """Energy intensity (tce per 10⁴ yuan at 2022 prices) against the 2022 base and the 2027 target.

    Exits with 1 and the reason when there is nothing to show (no energy, no value
    added, or no data for the period asked).
    """
    if level not in LEVELS:
        raise fail(f"--level must be one of: {', '.join(LEVELS)}", 2)
    if park is not None and level == "city":
        raise fail("--park does not apply to --level city (use --level park, industry or enterprise)", 2)
    try:
        spec = parse_period(period)
    except PeriodSpecError as exc:
        raise fail(str(exc), 2) from exc
    url = services.database_url(settings_of(ctx))
    with connect(url, autocommit=True) as conn:
        try:
            if park is not None:
                check_park(conn, park)
        except UnknownParkError as exc:
            raise fail(str(exc), 2) from exc
        rows = query_intensity(conn, level, spec, variant, park)
        if not rows:
            raise fail(why_empty(conn, level, spec, park))
    if all(r["intensity"] is None for r in rows):
        err_console.print(
            "note: energy but no value added at 2022 prices for these months: no intensity"
            " (`parkenergy import value-added FILE`, and `import deflators FILE` for years after 2022)",
            markup=False,
            soft_wrap=True,
        )
    if as_json:
        for row in rows:
            sys.stdout.write(json.dumps(row, default=str, ensure_ascii=False) + "\n")
        return
    # The table leaves out what the title says (level, period) and columns empty at this
    # level; a coverage below 90 % is marked with "!" (DOMAIN.md §4), never hidden.
    columns = [c for c in _TABLE_COLUMNS if any(r.get(c) is not None for r in rows)]
    shown: list[dict[str, object]] = [
        {c: f"{_shown(r[c], c)}{'!' if c == 'coverage' and r.get('low_coverage') else ''}" for c in columns}
        for r in rows
    ]
    label = str(rows[0]["period"])
    shown_period = label if spec.period_type in ("year", "month") else f"{spec.period_type} to {label}"
    where = f", park {park}" if park else ""
    print_rows(shown, False, title=f"intensity, {level}{where}, {shown_period} (coverage < 90 % marked !)")


# -- factors -----------------------------------------------------------------


@factors_app.command("list")
def factors_list(
    ctx: typer.Context,
    kind: Annotated[str, typer.Option(help="tce, co2, override or setting.")] = "tce",
    history: Annotated[bool, typer.Option("--history", help="Earlier revisions too.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines instead of a table.")] = False,
) -> None:
    """Show the factors (current revisions unless --history), overrides or settings."""
    url = services.database_url(settings_of(ctx))
    try:
        with connect(url, autocommit=True) as conn:
            rows = list_rows(conn, kind, current_only=not history)
    except FactorError as exc:
        raise fail(str(exc), 2) from exc
    print_rows(rows, as_json, title=f"{kind} factors" if kind in ("tce", "co2") else kind)


def _store_factor(
    ctx: typer.Context, make: Callable[[], Any], store: Callable[[Any, Any], int], what: str
) -> None:
    try:
        value = make()
        with connect(services.database_url(settings_of(ctx))) as conn:
            revision = store(conn, value)
    except FactorError as exc:
        raise fail(str(exc), 2) from exc
    console.print(f"stored {what}, revision {revision}")


_FROM = typer.Option(help="First day of validity (YYYY-MM-DD).", formats=["%Y-%m-%d"])
_TO = typer.Option(help="First day no longer valid (YYYY-MM-DD); default: open.", formats=["%Y-%m-%d"])
_SOURCE = typer.Option(help="Where the value comes from (standard, announcement, test report).")
_CONF = typer.Option(help="H (primary text), M (secondary), U (unverified).")
_CARRIER = typer.Option(help="Registry carrier code.")
_NOTE = typer.Option(help="Free text.")


def _day(value: datetime) -> date:
    return value.date()


def _until(valid_to: datetime | None) -> date | None:
    return None if valid_to is None else valid_to.date()


@factors_app.command("add-tce")
def factors_add_tce(  # noqa: PLR0917 (typer: one parameter per option)
    ctx: typer.Context,
    carrier: Annotated[str, _CARRIER],
    unit: Annotated[str, typer.Option(help="Unit the coefficient is per (e.g. kWh, m3, kg, MJ).")],
    kgce_per_unit: Annotated[float, typer.Option(help="Coefficient, kgce per unit.")],
    valid_from: Annotated[datetime, _FROM],
    source: Annotated[str, _SOURCE],
    confidence: Annotated[Confidence, _CONF],
    basis: Annotated[str, typer.Option(help="Electricity: calorific or equivalent; others: any.")] = "any",
    valid_to: Annotated[datetime | None, _TO] = None,
    note: Annotated[str | None, _NOTE] = None,
) -> None:
    """Add a tce coefficient; the same carrier, basis, unit and valid_from again is a revision."""
    _store_factor(
        ctx,
        lambda: TceFactor(
            carrier,
            unit,
            kgce_per_unit,
            _day(valid_from),
            source,
            confidence,
            basis,
            _until(valid_to),
            note,
        ),
        add_tce_factor,
        f"tce factor {carrier} per {unit}",
    )


@factors_app.command("add-co2")
def factors_add_co2(  # noqa: PLR0917 (typer: one parameter per option)
    ctx: typer.Context,
    carrier: Annotated[str, _CARRIER],
    unit: Annotated[str, typer.Option(help="Unit the factor is per.")],
    kgco2_per_unit: Annotated[float, typer.Option(help="Factor, kg CO2 per unit.")],
    valid_from: Annotated[datetime, _FROM],
    source: Annotated[str, _SOURCE],
    confidence: Annotated[Confidence, _CONF],
    region: Annotated[
        str, typer.Option(help="Electricity: grid region (hubei, national, ...); others: any.")
    ] = "any",
    reference_year: Annotated[int | None, typer.Option(help="Year a yearly published factor is for.")] = None,
    valid_to: Annotated[datetime | None, _TO] = None,
    note: Annotated[str | None, _NOTE] = None,
) -> None:
    """Add a CO2 emission factor; the same carrier, region, unit and valid_from again is a revision."""
    _store_factor(
        ctx,
        lambda: Co2Factor(
            carrier,
            unit,
            kgco2_per_unit,
            _day(valid_from),
            source,
            confidence,
            region,
            reference_year,
            _until(valid_to),
            note,
        ),
        add_co2_factor,
        f"CO2 factor {carrier}/{region} per {unit}",
    )


@factors_app.command("override")
def factors_override(  # noqa: PLR0917 (typer: one parameter per option)
    ctx: typer.Context,
    enterprise: Annotated[str, typer.Option(help="Enterprise code.")],
    carrier: Annotated[str, _CARRIER],
    unit: Annotated[str, typer.Option(help="Unit the value is per (e.g. m3).")],
    valid_from: Annotated[datetime, _FROM],
    source: Annotated[str, _SOURCE],
    confidence: Annotated[Confidence, _CONF],
    meter: Annotated[str | None, typer.Option(help="Only this meter; default: the whole enterprise.")] = None,
    kgce_per_unit: Annotated[float | None, typer.Option(help="Coefficient, kgce per unit.")] = None,
    lhv_kj_per_unit: Annotated[
        float | None, typer.Option(help="Measured net calorific value, kJ per unit; ÷ 29307.6 gives kgce.")
    ] = None,
    valid_to: Annotated[datetime | None, _TO] = None,
    note: Annotated[str | None, _NOTE] = None,
) -> None:
    """Add a site override of a tce coefficient (e.g. measured gas LHV) for an enterprise or one meter."""
    if (kgce_per_unit is None) == (lhv_kj_per_unit is None):
        raise fail("give exactly one of --kgce-per-unit and --lhv-kj-per-unit", 2)

    def make() -> TceOverride:
        value = (
            kgce_per_unit
            if kgce_per_unit is not None
            else kgce_per_unit_from_lhv(float(lhv_kj_per_unit or 0))
        )
        return TceOverride(
            enterprise,
            carrier,
            unit,
            value,
            _day(valid_from),
            source,
            confidence,
            meter,
            _until(valid_to),
            note,
        )

    _store_factor(ctx, make, add_override, f"override {enterprise}{'/' + meter if meter else ''} {carrier}")


@factors_app.command("set")
def factors_set(
    ctx: typer.Context,
    key: Annotated[str, typer.Argument(help="electricity_basis, co2_region or working_media.")],
    value: Annotated[
        str,
        typer.Argument(
            help="calorific | equivalent; a grid region such as hubei or national; exclude | include."
        ),
    ],
) -> None:
    """Change an accounting setting (every tce and CO2 figure follows at once)."""
    try:
        with connect(services.database_url(settings_of(ctx))) as conn:
            set_setting(conn, key, value)
    except FactorError as exc:
        raise fail(str(exc), 2) from exc
    console.print(f"{key} = {value}")
