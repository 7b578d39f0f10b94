"""What every ``parkenergy`` command module shares: the settings context, errors and output."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from parkdata.settings import Settings

console = Console()
err_console = Console(stderr=True)


@dataclass(slots=True)
class Context:
    """Stored on the typer context by the top-level callback: settings loaded once."""

    settings: Settings


def settings_of(ctx: typer.Context) -> Settings:
    """The settings loaded by the top-level callback."""
    obj = ctx.find_object(Context)
    assert obj is not None
    return obj.settings


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``message`` (plain text, not markup) as an error; raise the returned exit to stop with it."""
    err_console.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)
    return typer.Exit(code)


def fail_problems(problems: Sequence[object], outcome: str) -> typer.Exit:
    """Print every problem of a file (plain text), then fail (exit 2) with their count and ``outcome``.

    ``outcome`` follows the count, e.g. ``"; nothing was loaded"``.
    """
    for problem in problems:
        err_console.print(str(problem), markup=False, soft_wrap=True)
    count = len(problems)
    return fail(f"{count} problem{'s' if count != 1 else ''}{outcome}", 2)


def print_rows(rows: list[dict[str, object]], as_json: bool, title: str) -> None:
    """Rows as a rich table, or as JSON lines on stdout."""
    if as_json:
        for row in rows:
            sys.stdout.write(json.dumps(row, default=str, ensure_ascii=False) + "\n")
        return
    if not rows:
        console.print(f"no {title}")
        return
    table = Table(*rows[0].keys(), title=title)
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row.values()))
    console.print(table)


def progress_bars() -> Progress:
    """Progress bars on stderr: description, bar, done/total, detail, elapsed time.

    Every task gives a ``detail`` field (``""`` for none): ``bar.add_task(…, detail="")``.
    """
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
        console=err_console,
        transient=False,
    )
