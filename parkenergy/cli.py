"""The ``parkenergy`` command: a thin layer that wires settings, servers and packages."""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from types import FrameType
from typing import Annotated, Any, TypeVar

import psycopg
import typer
from rich.progress import Progress
from rich.table import Table

from collector.health import HealthServer
from collector.registry_cache import load_registry_cache
from collector.replay import count_replayable, replay_quarantine
from collector.service import Collector, CollectorConfig
from collector.validate import Limits
from dashboards.messages import Lang
from parkdata.db import connect
from parkdata.migrate import MigrationError, TimescaleMode, migrate, packaged_migrations, pending
from parkdata.registry_file import RegistryFileError, read_meter_events_file, read_registry_file
from parkdata.registry_store import list_meters, store_meter_events, store_registry
from parkdata.settings import Settings, SettingsError, load_settings
from parkenergy import (
    cli_accounting,
    cli_alerts,
    cli_analyze,
    cli_dashboards,
    cli_report,
    cli_simulate,
    services,
)
from parkenergy.cli_dashboards import LangOption
from parkenergy.cli_simulate import moment_option
from parkenergy.clikit import Context, console, err_console, fail, fail_problems, print_rows, settings_of
from parkenergy.demo import DemoOptions, check_window, run_demo
from parkenergy.logs import configure_logging
from simulators.run import now_cst

log = logging.getLogger("parkenergy")
_Rows = TypeVar("_Rows")

app = typer.Typer(
    help="parkenergy: energy and carbon monitoring of the enterprises in industrial parks.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema: migrate and inspect.", no_args_is_help=True)
registry_app = typer.Typer(help="Parks, enterprises and meters.", no_args_is_help=True)
quarantine_app = typer.Typer(help="Messages that could not be stored as readings.", no_args_is_help=True)
embedded_app = typer.Typer(help="The embedded PostgreSQL under PARKENERGY_HOME.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(registry_app, name="registry")
app.add_typer(quarantine_app, name="quarantine")
app.add_typer(embedded_app, name="embedded")
cli_dashboards.register(app)
cli_accounting.register(app)
cli_analyze.register(app)
cli_alerts.register(app)
cli_simulate.register(app)
cli_report.register(app)


@app.callback()
def _main(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", help="TOML settings file (env PARKENERGY_CONFIG).", exists=True, dir_okay=False
        ),
    ] = None,
    log_level: Annotated[
        str | None, typer.Option(help="DEBUG, INFO, WARNING or ERROR (env LOG_LEVEL).")
    ] = None,
    log_format: Annotated[str | None, typer.Option(help="text or json (env LOG_FORMAT).")] = None,
) -> None:
    try:
        settings = load_settings(config, log_level=log_level, log_format=log_format)
    except SettingsError as exc:
        raise fail(f"bad settings: {exc}", 2) from exc
    configure_logging(settings.log_level, settings.log_format)
    ctx.obj = Context(settings)


# -- db ----------------------------------------------------------------------


@db_app.command("migrate")
def db_migrate(
    ctx: typer.Context,
    timescaledb: Annotated[
        TimescaleMode,
        typer.Option(help="auto: use TimescaleDB when the server has it; on: require; off: never."),
    ] = TimescaleMode.AUTO,
) -> None:
    """Apply the packaged schema migrations (idempotent, recorded in parkenergy_meta.migration)."""
    url = services.database(settings_of(ctx)).url
    try:
        with connect(url, autocommit=True) as conn:
            report = migrate(conn, timescaledb)
    except MigrationError as exc:
        raise fail(str(exc)) from exc
    for m in report.applied:
        console.print(f"applied {m.version:04d}_{m.name}")
    flavour = "TimescaleDB" if report.timescaledb else "plain PostgreSQL"
    console.print(
        f"schema current: {report.already_applied + len(report.applied)} migrations "
        f"({len(report.applied)} new), {flavour}"
    )


@db_app.command("status")
def db_status(ctx: typer.Context) -> None:
    """Show applied and pending migrations."""
    url = services.database(settings_of(ctx)).url
    with connect(url, autocommit=True) as conn:
        missing = {m.version for m in pending(conn)}
    table = Table("version", "name", "state")
    for m in packaged_migrations():
        table.add_row(f"{m.version:04d}", m.name, "pending" if m.version in missing else "applied")
    console.print(table)
    if missing:
        raise typer.Exit(3)


# -- registry ----------------------------------------------------------------


@registry_app.command("load")
def registry_load(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="CSV or XLSX registry file.", exists=True, dir_okay=False)],
) -> None:
    """Load (upsert) parks, enterprises and meters; nothing is loaded if any row is bad."""
    _load_file(ctx, lambda: read_registry_file(file), store_registry)


@registry_app.command("events")
def registry_events(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="CSV or XLSX meter events file.", exists=True, dir_okay=False)],
) -> None:
    """Load meter events (replacements, multiplier changes, calibrations)."""
    _load_file(ctx, lambda: read_meter_events_file(file), store_meter_events)


def _load_file(ctx: typer.Context, read: Callable[[], _Rows], store: Callable[[Any, _Rows], object]) -> None:
    """Read a file, store it in one transaction, and report every problem or the summary."""
    url = services.database_url(settings_of(ctx))
    try:
        rows = read()
        with connect(url) as conn:
            summary = store(conn, rows)
    except RegistryFileError as exc:
        raise fail_problems(exc.problems, "; nothing was loaded") from exc
    console.print(str(summary))


@registry_app.command("list")
def registry_list(
    ctx: typer.Context,
    park: Annotated[str | None, typer.Option(help="Only this park code.")] = None,
    enterprise: Annotated[str | None, typer.Option(help="Only this enterprise code.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines instead of a table.")] = False,
) -> None:
    """Show the registered meters."""
    url = services.database_url(settings_of(ctx))
    with connect(url) as conn:
        meters = list_meters(conn, park_code=park, enterprise_code=enterprise)
    print_rows([m.as_dict() for m in meters], as_json, title="meters")


# -- collector ---------------------------------------------------------------


@app.command("collect")
def collect(
    ctx: typer.Context,
    client_id: Annotated[str | None, typer.Option(help="Stable MQTT client id (env MQTT_CLIENT_ID).")] = None,
    share_group: Annotated[
        str | None, typer.Option(help="MQTT 5 shared-subscription group (env MQTT_SHARE_GROUP).")
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option(help="Readings per commit (env COLLECTOR_BATCH_SIZE).")
    ] = None,
    batch_latency_s: Annotated[
        float | None,
        typer.Option(help="Longest wait before a commit, in seconds (env COLLECTOR_BATCH_LATENCY_S)."),
    ] = None,
    http_port: Annotated[
        int | None, typer.Option(help="Port of /healthz and /metrics; 0 picks one (env COLLECTOR_HTTP_PORT).")
    ] = None,
) -> None:
    """Receive readings over MQTT and store them; runs until SIGTERM or Ctrl-C."""
    base = settings_of(ctx)
    settings = Settings.model_validate(
        {
            **base.model_dump(),
            **{
                k: v
                for k, v in {
                    "mqtt_client_id": client_id,
                    "mqtt_share_group": share_group,
                    "collector_batch_size": batch_size,
                    "collector_batch_latency_s": batch_latency_s,
                    "collector_http_port": http_port,
                }.items()
                if v is not None
            },
        }
    )
    try:
        url = services.database_url(settings)
    except services.NotReadyError as exc:
        raise fail(str(exc)) from exc
    with services.broker(settings) as endpoint:
        collector = Collector(CollectorConfig.from_settings(settings, url, endpoint))
        health = HealthServer(
            settings.collector_http_host,
            settings.collector_http_port,
            collector.metrics.registry,
            collector.health,
        )
        health.start()
        log.info(
            "health and metrics on http://%s:%d/healthz, /metrics", settings.collector_http_host, health.port
        )

        def _stop(signum: int, frame: FrameType | None) -> None:
            log.info("signal %d: flushing, committing, acknowledging, then stopping", signum)
            collector.stop()

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
        try:
            collector.run()
        finally:
            health.stop()


# -- quarantine --------------------------------------------------------------


@quarantine_app.command("list")
def quarantine_list(
    ctx: typer.Context,
    reason: Annotated[str | None, typer.Option(help="Only this reason code, e.g. timestamp.naive.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="Most recent rows to show.")] = 50,
    summary: Annotated[bool, typer.Option("--summary", help="Counts by reason instead of rows.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines instead of a table.")] = False,
) -> None:
    """Show quarantined messages, newest first, or counts by reason."""
    url = services.database_url(settings_of(ctx))
    with connect(url, autocommit=True) as conn:
        if summary:
            cur = conn.execute(
                "SELECT reason, count(*) AS messages, count(*) FILTER (WHERE replay_result = 'stored')"
                " AS replayed, max(received_at) AS latest FROM api.quarantine"
                " WHERE (%s::text IS NULL OR reason = %s::text) GROUP BY reason ORDER BY 2 DESC",
                (reason, reason),
            )
        else:
            cur = conn.execute(
                "SELECT quarantine_id AS id, received_at, topic, reason, detail,"
                " left(payload, 120) AS payload, replay_result FROM api.quarantine"
                " WHERE (%s::text IS NULL OR reason = %s::text) ORDER BY quarantine_id DESC LIMIT %s",
                (reason, reason, limit),
            )
        names = [d.name for d in cur.description or []]
        rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    print_rows(rows, as_json, title="quarantine")


@quarantine_app.command("replay")
def quarantine_replay(
    ctx: typer.Context,
    reason: Annotated[str | None, typer.Option(help="Only rows with this reason code.")] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Report what would be stored; write nothing.")
    ] = False,
) -> None:
    """Re-validate quarantined messages against the current registry and store what now passes."""
    settings = settings_of(ctx)
    url = services.database_url(settings)
    limits = Limits(
        prefix=settings.mqtt_topic_prefix,
        future_tolerance=timedelta(seconds=settings.collector_future_tolerance_s),
    )
    with connect(url, autocommit=True) as conn:
        cache = load_registry_cache(conn)
        total = count_replayable(conn, reason)
        with Progress(console=err_console, transient=True) as progress:
            task = progress.add_task("replaying quarantine", total=total)
            result = replay_quarantine(
                conn,
                cache,
                limits,
                reason=reason,
                dry_run=dry_run,
                progress=lambda n: progress.advance(task, n),
            )
    verb = "would store" if dry_run else "stored"
    console.print(
        f"examined {result.examined} rows: {result.now_stored} {verb} "
        f"({result.readings.stored} new readings), {result.still_failing} still failing"
    )


# -- embedded ----------------------------------------------------------------


@embedded_app.command("start")
def embedded_start(ctx: typer.Context) -> None:
    """Start (or attach to) the embedded PostgreSQL and migrate it; prints its URL."""
    db = services.database(settings_of(ctx).model_copy(update={"database_url": None}))
    console.print(db.url)


@embedded_app.command("stop")
def embedded_stop(ctx: typer.Context) -> None:
    """Stop the embedded PostgreSQL if it runs."""
    server = services.embedded_postgres(settings_of(ctx))
    if server.is_running():
        server.stop()
        console.print("stopped")
    else:
        console.print("not running")


@embedded_app.command("status")
def embedded_status(ctx: typer.Context) -> None:
    """Say whether the embedded PostgreSQL runs, and where its data is."""
    settings = settings_of(ctx)
    server = services.embedded_postgres(settings)
    state = f"running at {server.url}" if server.is_running() else "not running"
    console.print(f"PostgreSQL data: {settings.parkenergy_home / 'postgres'} ({state})")


# -- demo --------------------------------------------------------------------


@app.command("demo")
def demo(
    ctx: typer.Context,
    enterprises: Annotated[
        int, typer.Option("--enterprises", "-n", min=1, max=5000, help="Enterprises of the simulated park.")
    ] = 40,
    start: Annotated[
        str, typer.Option(help="First reading: a date or ISO time (+08:00 if none).")
    ] = "2022-01-01",
    end: Annotated[str, typer.Option(help="End of the history (exclusive): NOW, a date or time.")] = "NOW",
    seed: Annotated[int, typer.Option(min=0, help="Seed of everything random.")] = 1,
    out: Annotated[
        Path, typer.Option("--out", file_okay=False, help="Directory for the report, grafana/ and sim/.")
    ] = Path("parkenergy-demo"),
    lang: Annotated[
        LangOption, typer.Option(help="Language of the summary, report and dashboards.")
    ] = LangOption.zh,
    keep_running: Annotated[
        bool,
        typer.Option(
            "--keep-running",
            help="Afterwards keep the collector, the analytics service and a live simulator running "
            "until Ctrl-C or SIGTERM.",
        ),
    ] = False,
    speed: Annotated[
        float, typer.Option(min=0.001, help="Live simulator: simulated seconds per real second.")
    ] = 1.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON on stdout.")] = False,
) -> None:
    """Simulate a park, send its history through MQTT and the collector, run the analytics, summarise.

    Without DATABASE_URL and MQTT_URL it starts an embedded PostgreSQL and broker. Writes the
    simulated park's files, the monthly report of the last complete month and Grafana
    provisioning into --out; prints the intensity against 2022 and the 2027 path, the
    enterprises most off track, unresolved alerts and data coverage.
    """
    now = now_cst()
    first, last = moment_option(start, now, now), moment_option(end, now, now)
    problem = check_window(first, last, now)
    if problem is not None:
        raise fail(problem, 2)
    options = DemoOptions(
        start=first,
        end=last,
        enterprises=enterprises,
        seed=seed,
        out_dir=out,
        lang=Lang(lang.value),
        keep_running=keep_running,
        speed=speed,
        as_json=as_json,
    )
    try:
        run_demo(settings_of(ctx), options)
    except OSError as exc:
        raise fail(f"{exc.filename or out}: {exc.strerror or exc}") from exc


def main() -> None:
    """The console script: a database that cannot be reached, or whose schema lags, is one line, exit 1."""
    try:
        app()
    except services.NotReadyError as exc:
        raise SystemExit(fail(str(exc)).exit_code) from None
    except psycopg.OperationalError as exc:
        reason = " ".join(str(exc).split())
        raise SystemExit(fail(f"database: {reason}").exit_code) from None
