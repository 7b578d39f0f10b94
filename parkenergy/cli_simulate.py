"""``parkenergy simulate``: a simulated Ezhou park, its files, and its readings over MQTT."""

from __future__ import annotations

import json
import logging
import signal
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Annotated, TextIO

import typer
from rich.progress import Progress, TaskID

from collector.service import CollectorConfig
from parkdata.settings import MqttEndpoint, Settings
from parkenergy import pipeline, services
from parkenergy.clikit import console, err_console, fail, progress_bars, settings_of
from simulators.faults import FaultRateError, FaultRates, load_rates
from simulators.files import append_meter_events
from simulators.generator import Replacement
from simulators.publish import PublishError
from simulators.run import Progress as SimProgress
from simulators.run import RunStats, Simulation, SimulationConfig, now_cst
from simulators.timebase import EPOCH, parse_moment

log = logging.getLogger(__name__)


def register(app: typer.Typer) -> None:
    """Add ``simulate`` to the ``parkenergy`` command."""
    app.command("simulate")(simulate)


def moment_option(text: str | None, default: datetime, now: datetime | None = None) -> datetime:
    """``NOW`` (``now``), a date or an ISO time (``default`` when None); not one of them: exit 2."""
    if text is None:
        return default
    try:
        return parse_moment(text, now=now)
    except ValueError as exc:
        raise fail(f"not a date or time: {text!r} ({exc})", 2) from exc


def _rates(no_faults: bool, profile: Path | None, scale: float | None, overrides: list[str]) -> FaultRates:
    try:
        rates = FaultRates.none() if no_faults else FaultRates()
        if profile is not None:
            rates = load_rates(profile, rates)
        if scale is not None:
            rates = rates.scaled(scale)
        changes: dict[str, float] = {}
        for item in overrides:
            kind, sep, value = item.partition("=")
            if not sep:
                raise FaultRateError(f"--fault needs KIND=RATE, got {item!r}")
            try:
                changes[kind] = float(value)
            except ValueError:
                raise FaultRateError(f"--fault {item}: {value!r} is not a number (a rate 0..1)") from None
        return rates.with_rates(changes)
    except FaultRateError as exc:
        raise fail(str(exc), 2) from exc


def _load_registry(url: str, registry: Path, events: Path) -> None:
    summary, event_summary = pipeline.load_registry(url, registry, events)
    err_console.print(f"registry loaded: {summary}; events: {event_summary}")


@contextmanager
def collector_thread(
    settings: Settings, url: str, endpoint: MqttEndpoint
) -> Iterator[pipeline.CollectorThread]:
    """The collector of ``settings`` on a thread for the block; a connection failure stops the command."""
    try:
        with pipeline.running_collector(CollectorConfig.from_settings(settings, url, endpoint)) as running:
            yield running
    except pipeline.PipelineError as exc:
        raise fail(str(exc)) from exc


def simulate(  # noqa: PLR0917 (typer: one parameter per option)
    ctx: typer.Context,
    enterprises: Annotated[
        int, typer.Option("--enterprises", "-n", min=1, max=5000, help="Enterprises.")
    ] = 40,
    seed: Annotated[int, typer.Option(min=0, help="Seed of everything random.")] = 1,
    start: Annotated[
        str | None,
        typer.Option(
            help="First reading time: date or ISO time (+08:00 if none) (backfill: 2022-01-01; live: now)."
        ),
    ] = None,
    end: Annotated[
        str | None, typer.Option(help="End (exclusive): NOW, a date or time (backfill: NOW; live: never).")
    ] = None,
    live: Annotated[bool, typer.Option("--live", help="Publish each reading when its time comes.")] = False,
    speed: Annotated[
        float, typer.Option(min=0.001, help="Live: simulated seconds per real second (never ahead of now).")
    ] = 1.0,
    registry_out: Annotated[
        Path | None, typer.Option(help="Write registry.csv and meter_events.csv into this directory.")
    ] = None,
    economics_out: Annotated[
        Path | None,
        typer.Option(
            help="Write value added, deflators, baseline, output (CSV+XLSX) and truth_intensity.csv here."
        ),
    ] = None,
    truth_out: Annotated[
        Path | None, typer.Option(help="Write the ground truth of faults (JSONL) here.")
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", "--no-publish", help="Only generate and write files; publish nothing."),
    ] = False,
    load_registry: Annotated[
        bool,
        typer.Option("--load-registry", help="Load the registry and meter events into the database first."),
    ] = False,
    collect: Annotated[
        bool,
        typer.Option(
            "--collect", help="Run a collector in this command and wait until it has stored everything."
        ),
    ] = False,
    no_faults: Annotated[bool, typer.Option("--no-faults", help="Clean data: every fault rate 0.")] = False,
    fault: Annotated[
        list[str] | None,
        typer.Option(help="KIND=RATE per day and meter (or gateway), e.g. meter.gap=0.01; repeatable."),
    ] = None,
    fault_profile: Annotated[
        Path | None,
        typer.Option(
            help='TOML fault profile: a rates table of "kind" = rate, optional scale.',
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    fault_scale: Annotated[float | None, typer.Option(min=0.0, help="Multiply every fault rate.")] = None,
    max_inflight: Annotated[
        int, typer.Option(min=1, max=65_535, help="Backfill: unacknowledged QoS 1 messages at most.")
    ] = 1000,
    batch_readings: Annotated[
        int, typer.Option(min=1, max=10_000, help="Backfill: readings per message.")
    ] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="Print the run's summary as JSON.")] = False,
) -> None:
    """Simulate the park: write its registry, statistics and ground truth, and publish its readings.

    Backfill (default) sends the history from --start to --end as fast as the broker acknowledges;
    --live sends readings as their time comes. The same --seed gives the same readings and files
    in both modes.
    """
    settings = settings_of(ctx)
    now = now_cst()
    first = moment_option(start, now if live else EPOCH, now)
    last = moment_option(end, now, now) if end is not None or not live else None
    if first < EPOCH:
        raise fail(f"--start {first.isoformat()} is before the simulation's epoch {EPOCH.isoformat()}", 2)
    if not live and last is not None and last > now:
        raise fail("--end is in the future: a backfill sends only the past (use --live)", 2)
    if last is not None and last <= first:
        shown_end = last.isoformat() if end is not None else f"NOW ({last.isoformat()})"
        raise fail(f"--end {shown_end} must be after --start {first.isoformat()}", 2)
    if live and dry_run:
        raise fail("--dry-run generates a backfill; it cannot be combined with --live", 2)
    rates = _rates(no_faults, fault_profile, fault_scale, fault or [])
    try:
        config = SimulationConfig(
            enterprises=enterprises,
            seed=seed,
            start=first,
            end=last,
            rates=rates,
            prefix=settings.mqtt_topic_prefix,
            batch_readings=batch_readings,
        )
    except ValueError as exc:
        raise fail(str(exc), 2) from exc
    if not dry_run and settings.mqtt is None and not collect:
        raise fail(
            "no MQTT_URL: set it to the broker your collector subscribes to, or pass --collect "
            "to run a collector here (or --dry-run to only write files)",
            2,
        )
    sim = Simulation(config)
    err_console.print(
        f"park: {len(sim.park.enterprises)} enterprises, {len(sim.park.meters)} meters, seed {seed}; "
        f"{first.isoformat()} → {last.isoformat() if last else 'open end'}"
    )
    with tempfile.TemporaryDirectory(prefix="parkenergy-sim-") as scratch:
        registry_dir = registry_out or Path(scratch)
        registry, events = sim.write_registry(registry_dir)
        if registry_out is not None:
            err_console.print(f"wrote {registry} and {events}")
        if economics_out is not None:
            written = sim.write_economics(economics_out)
            err_console.print(f"wrote {len(written)} economics files to {economics_out}")
        url = None
        if load_registry or collect:
            try:
                url = services.database_url(settings)
            except services.NotReadyError as exc:
                raise fail(str(exc)) from exc
            _load_registry(url, registry, events)
        truth = truth_out.open("w", encoding="utf-8") if truth_out is not None else None
        try:
            stats = _run(
                sim,
                settings,
                url,
                live=live,
                speed=speed,
                dry_run=dry_run,
                collect=collect,
                truth=truth,
                max_inflight=max_inflight,
                events=events if registry_out else None,
            )
        finally:
            if truth is not None:
                truth.close()
    if as_json:
        console.print_json(json.dumps(stats.as_dict()))
    else:
        quarantine = ", ".join(f"{k} {v}" for k, v in sorted(stats.quarantined.items())) or "none"
        console.print(
            f"{stats.days} days: {stats.messages} messages, {stats.readings} readings "
            f"({stats.stored} to store, {stats.duplicates} duplicates), quarantine: {quarantine}; "
            f"{sum(stats.faults.values())} faults injected; {stats.seconds:.1f} s"
        )


def _run(
    sim: Simulation,
    settings: Settings,
    url: str | None,
    *,
    live: bool,
    speed: float,
    dry_run: bool,
    collect: bool,
    truth: TextIO | None,
    max_inflight: int,
    events: Path | None,
) -> RunStats:
    if dry_run:
        with progress_bars() as bar:
            task = bar.add_task("generating", total=None, detail="")
            return sim.backfill(None, truth=truth, progress=simulation_updater(bar, task))
    with services.broker(settings) as endpoint:
        if collect and not live:
            assert url is not None
            with collector_thread(settings, url, endpoint) as running:
                return collect_with_progress(sim, running, endpoint, truth=truth, max_inflight=max_inflight)
        if collect:
            assert url is not None
            with collector_thread(settings, url, endpoint) as running:
                stats = _live(sim, endpoint, speed=speed, truth=truth, events=events)
                committed_with_progress(running, stats.messages)
                return stats
        if live:
            return _live(sim, endpoint, speed=speed, truth=truth, events=events)
        return _backfill(sim, endpoint, truth=truth, max_inflight=max_inflight)


@dataclass(frozen=True, slots=True)
class BackfillLabels:
    """Texts of the backfill's progress bars; ``days`` is formatted with ``readings`` and ``messages``."""

    backfill: str = "backfill"
    committing: str = "collector committing"
    days: str = "days · {readings:,} readings in {messages:,} messages"
    messages: str = "messages"


def simulation_updater(
    bar: Progress, task: TaskID, labels: BackfillLabels = BackfillLabels()
) -> Callable[[SimProgress], None]:
    """A simulator progress callback that moves ``task`` of ``bar`` (days; readings in messages)."""

    def update(p: SimProgress) -> None:
        bar.update(
            task,
            total=p.days_total,
            completed=p.days_done,
            detail=labels.days.format(readings=p.readings, messages=p.messages),
        )

    return update


def collect_with_progress(
    sim: Simulation,
    running: pipeline.CollectorThread,
    endpoint: MqttEndpoint,
    *,
    truth: TextIO | None,
    max_inflight: int,
    labels: BackfillLabels = BackfillLabels(),
) -> RunStats:
    """:func:`parkenergy.pipeline.collect_backfill` with a bar for the backfill and one for the commits."""
    with progress_bars() as bar:
        generated = bar.add_task(labels.backfill, total=None, detail="")
        committed = bar.add_task(labels.committing, total=None, detail=labels.messages)
        try:
            return pipeline.collect_backfill(
                sim,
                running,
                endpoint,
                truth=truth,
                max_inflight=max_inflight,
                generated=simulation_updater(bar, generated, labels),
                committed=lambda done, total: bar.update(committed, completed=done, total=total),
            )
        except PublishError as exc:
            raise fail(str(exc)) from exc
        except pipeline.PipelineError as exc:
            raise fail(str(exc)) from exc


def committed_with_progress(running: pipeline.CollectorThread, messages: int) -> None:
    """Wait, with a bar, until the collector has committed ``messages`` messages."""
    with progress_bars() as bar:
        task = bar.add_task("collector committing", total=messages, detail="messages")
        try:
            pipeline.wait_committed(
                running, messages, progress=lambda done, total: bar.update(task, completed=done, total=total)
            )
        except pipeline.PipelineError as exc:
            raise fail(str(exc)) from exc


def _backfill(
    sim: Simulation, endpoint: MqttEndpoint, *, truth: TextIO | None, max_inflight: int
) -> RunStats:
    try:
        with progress_bars() as bar:
            task = bar.add_task("backfill", total=None, detail="")
            return pipeline.publish_backfill(
                sim, endpoint, truth=truth, max_inflight=max_inflight, progress=simulation_updater(bar, task)
            )
    except PublishError as exc:
        raise fail(str(exc)) from exc


def _live(
    sim: Simulation, endpoint: MqttEndpoint, *, speed: float, truth: TextIO | None, events: Path | None
) -> RunStats:
    stop = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        log.info("signal %d: stopping the simulation", signum)
        stop.set()

    previous = signal.signal(signal.SIGINT, _stop), signal.signal(signal.SIGTERM, _stop)

    def replaced(rows: list[Replacement]) -> None:
        if events is not None:
            append_meter_events(events, rows)

    def connected(gateways: int) -> None:
        err_console.print(f"live: {gateways} gateways connected to {endpoint.url}; Ctrl-C stops")

    try:
        return pipeline.run_live(
            sim, endpoint, speed=speed, stop=stop, truth=truth, on_replacement=replaced, connected=connected
        )
    except PublishError as exc:
        raise fail(str(exc)) from exc
    finally:
        signal.signal(signal.SIGINT, previous[0])
        signal.signal(signal.SIGTERM, previous[1])
