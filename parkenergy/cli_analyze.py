"""``parkenergy analyze``: run the analytics jobs once, serve them on schedule, force a recompute."""

from __future__ import annotations

import signal
from datetime import datetime
from types import FrameType
from typing import Annotated

import typer
from rich.progress import Progress, TaskID

from analytics.energy_store import mark_dirty
from analytics.jobs import UnknownJobError, get, jobs, progress_hook, run_job
from analytics.scheduler import AlreadyRunningError, Service
from parkdata.db import connect
from parkenergy import services
from parkenergy.clikit import console, err_console, fail, settings_of

analyze_app = typer.Typer(help="Analytics jobs: interval energy and rollups, and more.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add ``parkenergy analyze`` to the main command."""
    app.add_typer(analyze_app, name="analyze")


def _when(text: str, option: str) -> datetime:
    """An ISO 8601 time with its UTC offset; anything else stops the command with exit code 2."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise fail(f"{option} {text!r} is not an ISO 8601 time (e.g. 2025-06-01T00:00+08:00)", 2) from None
    if value.tzinfo is None:
        raise fail(f"{option} {text!r} has no UTC offset (e.g. 2025-06-01T00:00+08:00)", 2)
    return value


@analyze_app.command("run")
def analyze_run(
    ctx: typer.Context,
    job: Annotated[str | None, typer.Argument(help="Job name (default: every registered job).")] = None,
) -> None:
    """Run one job (or all) once, now; a progress bar shows long recomputes."""
    try:
        chosen = [get(job)] if job else jobs()
    except UnknownJobError as exc:
        known = ", ".join(j.name for j in jobs())
        raise fail(f"no job {exc.args[0]!r} (jobs: {known})", 2) from exc
    url = services.database_url(settings_of(ctx))
    failed = False
    with connect(url, autocommit=True) as conn, Progress(console=err_console, transient=True) as progress:
        for item in chosen:
            task = progress.add_task(item.name, total=None)

            def advance(done: int, total: int, task: TaskID = task) -> None:
                progress.update(task, completed=done, total=total)

            token = progress_hook.set(advance)
            try:
                outcome = run_job(conn, item.name)
            finally:
                progress_hook.reset(token)
                progress.remove_task(task)
            console.print(f"{outcome.job}: {outcome.status}: {outcome.summary}")
            failed = failed or outcome.status == "failed"
    if failed:
        raise typer.Exit(1)


@analyze_app.command("serve")
def analyze_serve(
    ctx: typer.Context,
    job: Annotated[list[str] | None, typer.Option("--job", help="Only this job (repeatable).")] = None,
    interval_s: Annotated[
        float | None,
        typer.Option(help="Run every job this often, in seconds, instead of its default.", min=1),
    ] = None,
) -> None:
    """Run the jobs on their schedules until stopped (one service per database)."""
    url = services.database_url(settings_of(ctx))
    try:
        service = Service.for_names(url, job or [], interval_s)
    except UnknownJobError as exc:
        raise fail(f"no job {exc.args[0]!r}", 2) from exc

    def _stop(signum: int, _frame: FrameType | None) -> None:
        service.stopped.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        service.start()
    except AlreadyRunningError as exc:
        raise fail(str(exc), 3) from exc
    try:
        service.stopped.wait()
    finally:
        service.stop()


@analyze_app.command("recompute")
def analyze_recompute(
    ctx: typer.Context,
    from_: Annotated[str, typer.Option("--from", help="Start, ISO 8601 with offset.")],
    to: Annotated[str, typer.Option("--to", help="End, ISO 8601 with offset.")],
    meter: Annotated[
        list[str] | None,
        typer.Option(
            "--meter", help="Meter code, in every enterprise that has it (repeatable; default all)."
        ),
    ] = None,
    now: Annotated[
        bool,
        typer.Option(
            "--now/--later", help="Run the energy job at once (default) or leave it to the service."
        ),
    ] = True,
) -> None:
    """Force a recompute of the energy of [FROM, TO] (all meters or the given ones)."""
    start, end = _when(from_, "--from"), _when(to, "--to")
    if end <= start:
        raise fail(f"--to ({end.isoformat()}) must be after --from ({start.isoformat()})", 2)
    url = services.database_url(settings_of(ctx))
    with connect(url, autocommit=True) as conn:
        ids: list[int] | None = None
        if meter:
            found = conn.execute(
                "SELECT meter_code, meter_id FROM registry.meter WHERE meter_code = ANY(%s)", (meter,)
            ).fetchall()
            unknown = sorted(set(meter) - {str(c) for c, _ in found})
            if unknown:
                raise fail(f"unknown meter codes: {', '.join(unknown)}", 2)
            ids = [int(str(i)) for _, i in found]
        marked = mark_dirty(conn, start, end, ids)
        console.print(f"marked {marked} meters dirty from {start.isoformat()} to {end.isoformat()}")
    if now:
        analyze_run(ctx, "energy")
