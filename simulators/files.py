"""Files the simulator writes: registry, meter events, economics (CSV and XLSX), ground truth.

Formats: the registry and meter-event files of :mod:`parkdata.registry_file`
(``parkenergy registry load`` / ``events``) and the economics files of the
import commands (value added, deflators, 2022 baseline, product output).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from pathlib import Path

from openpyxl import Workbook

from simulators.economics import (
    BASELINE_UNITS,
    PRICE_INDEX_2022,
    Economics,
    truth_intensity,
)
from simulators.generator import Replacement
from simulators.park import Park
from simulators.timebase import rfc3339

REGISTRY_COLUMNS = (
    "park_code",
    "park_name",
    "enterprise_code",
    "enterprise_name",
    "industry_code",
    "key_energy_unit",
    "meter_code",
    "carrier",
    "unit",
    "kind",
    "purpose",
    "multiplier",
    "rollover",
    "expected_interval_s",
    "rated_capacity",
    "parent_meter_code",
)
EVENT_COLUMNS = (
    "enterprise_code",
    "meter_code",
    "event_type",
    "effective_at",
    "final_register",
    "initial_register",
    "new_multiplier",
    "note",
)

Cell = str | int | float


def _number(value: float) -> Cell:
    return int(value) if float(value).is_integer() else float(value)


def write_table(path: Path, header: Sequence[str], rows: Iterable[Sequence[Cell]]) -> Path:
    """CSV (UTF-8, header row) or XLSX (first sheet, header in row 1) by the file's suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".xlsx":
        book = Workbook(write_only=True)
        sheet = book.create_sheet()
        sheet.append(list(header))
        for row in rows:
            sheet.append(list(row))
        book.save(path)
        return path
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    return path


def registry_rows(park: Park) -> list[list[Cell]]:
    rows: list[list[Cell]] = []
    for e in park.enterprises:
        for m in park.meters_of(e):
            rows.append(
                [
                    e.park_code,
                    e.park_name,
                    e.code,
                    e.name,
                    e.industry_code,
                    "true" if e.key_energy_unit else "false",
                    m.code,
                    m.carrier,
                    m.unit,
                    m.kind.value,
                    m.purpose.value,
                    _number(m.multiplier),
                    _number(m.rollover) if m.rollover is not None else "",
                    m.interval_s,
                    _number(m.rated_capacity_per_h),
                    "",
                ]
            )
    return rows


def write_registry(park: Park, directory: Path, replacements: Sequence[Replacement]) -> tuple[Path, Path]:
    """``registry.csv`` and ``meter_events.csv`` in ``directory``."""
    registry = write_table(directory / "registry.csv", REGISTRY_COLUMNS, registry_rows(park))
    events = write_table(directory / "meter_events.csv", EVENT_COLUMNS, [event_row(r) for r in replacements])
    return registry, events


def event_row(r: Replacement) -> list[Cell]:
    return [
        r.enterprise,
        r.meter,
        "replacement",
        rfc3339(r.effective_s),
        _number(r.final_register),
        _number(r.initial_register),
        "",
        "到期更换 (replaced at the end of its verification period)",
    ]


def append_meter_events(path: Path, replacements: Sequence[Replacement]) -> None:
    """Add replacements that happened during a live run to ``meter_events.csv``."""
    with path.open("a", encoding="utf-8", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows(event_row(r) for r in replacements)


def write_economics(park: Park, economics: Economics, directory: Path) -> list[Path]:
    """Value added, deflators, 2022 baseline and output (CSV and XLSX each), and the truth CSV."""
    ents = park.enterprises
    value_added: list[list[Cell]] = [
        [ents[r.enterprise].code, r.period, round(r.value_added_current, 2), r.price_index]
        for r in economics.months
    ]
    divisions = sorted({e.industry_code[:2] for e in ents})
    years = sorted({r.year for r in economics.months} | {2022})
    deflators: list[list[Cell]] = [
        [d, y, PRICE_INDEX_2022[d][min(y - 2022, len(PRICE_INDEX_2022[d]) - 1)]]
        for d in divisions
        for y in years
    ]
    baseline: list[list[Cell]] = []
    for b in economics.baseline:
        unit, factor = BASELINE_UNITS.get(b.carrier, (b.unit, 1.0))
        baseline.append(
            [
                ents[b.enterprise].code,
                2022,
                b.carrier,
                unit,
                round(b.consumption * factor, 4),
                round(b.feedstock * factor, 4),
                round(b.non_fossil * factor, 4),
                round(economics.baseline_value_added[b.enterprise], 2),
            ]
        )
    output: list[list[Cell]] = [
        [
            ents[r.enterprise].code,
            r.period,
            ents[r.enterprise].product,
            round(r.product_quantity, 3),
            ents[r.enterprise].product_unit,
        ]
        for r in economics.months
    ]
    tables: dict[str, tuple[tuple[str, ...], list[list[Cell]]]] = {
        "value_added": (
            ("enterprise_code", "period", "value_added_10k_yuan", "price_index_2022"),
            value_added,
        ),
        "deflators": (("industry_code", "year", "price_index_2022"), deflators),
        "baseline_2022": (
            (
                "enterprise_code",
                "year",
                "carrier",
                "unit",
                "consumption",
                "feedstock",
                "non_fossil",
                "value_added_10k_yuan",
            ),
            baseline,
        ),
        "output": (("enterprise_code", "period", "product", "quantity", "unit"), output),
    }
    written: list[Path] = []
    for name, (header, rows) in tables.items():
        for suffix in (".csv", ".xlsx"):
            written.append(write_table(directory / f"{name}{suffix}", header, rows))
    truth: list[list[Cell]] = [
        [
            ents[t.enterprise].code,
            t.year,
            t.months,
            round(t.energy_tce_gross, 4),
            round(t.energy_tce_excl_feedstock, 4),
            round(t.energy_tce_excl_feedstock_nonfossil, 4),
            round(t.value_added_10k_yuan_2022_prices, 4),
        ]
        for t in truth_intensity(economics)
    ]
    written.append(
        write_table(
            directory / "truth_intensity.csv",
            (
                "enterprise_code",
                "year",
                "months",
                "energy_tce_gross",
                "energy_tce_excl_feedstock",
                "energy_tce_excl_feedstock_nonfossil",
                "value_added_10k_yuan_2022_prices",
            ),
            truth,
        )
    )
    return written
