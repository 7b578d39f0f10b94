"""The path of a simulated park through the service, as ``simulate`` and ``demo`` run it.

- :class:`CollectorThread`: the real collector (:class:`collector.service.Collector`)
  on a thread of this process;
- :func:`collect_backfill`: a simulation's backfill published at QoS 1 (by a child
  process, so that generating and encoding do not compete with the collector for this
  process's interpreter lock) and waited for until the collector has committed every
  message;
- :func:`run_live`: a live simulation through one MQTT connection per gateway;
- :func:`load_registry`, :func:`import_economics`: the simulator's files into the
  database, as ``registry load`` and ``import`` do;
- :func:`analytics_steps`, :func:`run_steps`: the analytics jobs of a freshly loaded
  park, with the detectors replayed once a day so that the alert state and its
  history are what the service would have built.

Nothing here prints: progress goes to callbacks, failures are :class:`PipelineError`
(or :class:`simulators.publish.PublishError` from the broker).
"""

from __future__ import annotations

import logging
import multiprocessing
import queue
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Final, TextIO

from analytics.detection import GROUPS
from analytics.economics_file import (
    read_baseline_file,
    read_deflators_file,
    read_output_file,
    read_value_added_file,
)
from analytics.economics_store import (
    ImportSummary,
    store_baseline,
    store_deflators,
    store_output,
    store_value_added,
)
from analytics.jobs import JobOutcome, progress_hook, run_job
from collector.service import Collector, CollectorConfig
from parkdata.db import connect
from parkdata.registry_file import read_meter_events_file, read_registry_file
from parkdata.registry_store import EventLoadSummary, LoadSummary, store_meter_events, store_registry
from parkdata.settings import MqttEndpoint
from simulators.generator import Replacement
from simulators.publish import BulkPublisher, GatewayFleet, PublishError
from simulators.run import Progress as SimProgress
from simulators.run import RunStats, Simulation, SimulationConfig

__all__ = [
    "DETECTOR_REPLAY_DAYS",
    "CollectorThread",
    "JobStep",
    "PipelineError",
    "analytics_steps",
    "collect_backfill",
    "import_economics",
    "load_registry",
    "publish_backfill",
    "publish_backfill_in_child",
    "run_live",
    "run_steps",
    "running_collector",
    "wait_committed",
]

log = logging.getLogger(__name__)

DETECTOR_REPLAY_DAYS: Final = 14
"""Days over which the detectors are replayed once a day (and once more at the end) [d].

Every detector's lookback is at least two days (docs/alerts.md), so daily runs see every
day of the replay; two weeks give the alert state a history of opened, escalated and
resolved alerts. At 40 enterprises one day of the four detector groups costs about 5 s
(detect-counters 3 s, detect-anomalies 1.5 s), so 35 days would take 3 minutes of the
demo's 10-minute budget; 14 take about 75 s."""

SimProgressCallback = Callable[[SimProgress], None]


class PipelineError(RuntimeError):
    """A step could not complete: the collector did not connect, stopped, or a job failed."""


class CollectorThread:
    """The collector of ``config`` running on a daemon thread of this process.

    Parameters
    ----------
    config : CollectorConfig
        Database, broker and session of the collector.
    """

    def __init__(self, config: CollectorConfig) -> None:
        self.collector = Collector(config)
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="collector", daemon=True)

    def _main(self) -> None:
        try:
            self.collector.run()
        except BaseException as exc:  # reported by wait_committed and stop
            self.error = exc
            log.exception("the collector stopped with an error")

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    @property
    def committed_messages(self) -> int:
        """Messages whose transaction committed (and that were acknowledged) [-]."""
        return self.collector.committed_messages

    def start(self, connect_timeout_s: float = 30.0) -> None:
        """Start the thread and wait until the MQTT session is up."""
        self._thread.start()
        if not self.collector.wait_connected(connect_timeout_s):
            self.stop()
            raise PipelineError(f"the collector could not connect to {self.collector.config.mqtt.url}")

    def stop(self, timeout_s: float = 60.0) -> None:
        """Flush, commit, acknowledge and stop; wait for the thread up to ``timeout_s`` [s]."""
        self.collector.stop()
        if self._thread.is_alive():
            self._thread.join(timeout_s)


@contextmanager
def running_collector(config: CollectorConfig, connect_timeout_s: float = 30.0) -> Iterator[CollectorThread]:
    """A :class:`CollectorThread` for the duration of the block; stopped cleanly at its end."""
    running = CollectorThread(config)
    running.start(connect_timeout_s)
    try:
        yield running
    finally:
        running.stop()


def publish_backfill(
    sim: Simulation,
    endpoint: MqttEndpoint,
    *,
    truth: TextIO | None = None,
    max_inflight: int = 1000,
    progress: SimProgressCallback | None = None,
) -> RunStats:
    """Publish ``sim``'s backfill at QoS 1 as fast as the broker acknowledges it."""
    publisher = BulkPublisher(endpoint, max_inflight=max_inflight)
    try:
        return sim.backfill(publisher.publish, truth=truth, progress=progress)
    finally:
        publisher.close()


def wait_committed(
    running: CollectorThread,
    messages: int,
    *,
    timeout_s: float = 3600.0,
    progress: Callable[[int, int], None] | None = None,
    poll_s: float = 0.2,
) -> None:
    """Wait until the collector has committed ``messages`` messages.

    Parameters
    ----------
    progress : callable, optional
        Called with (committed, messages) at every poll and at the end.
    timeout_s, poll_s : float
        Longest wait, and time between two looks [s].

    Raises
    ------
    PipelineError
        The collector stopped, or did not commit them all within ``timeout_s``.
    """
    deadline = time.monotonic() + timeout_s
    while (done := running.committed_messages) < messages:
        if progress is not None:
            progress(done, messages)
        if not running.alive:
            reason = f": {running.error}" if running.error is not None else ""
            raise PipelineError(
                f"the collector stopped after committing {done} of {messages} messages{reason}"
            )
        if time.monotonic() > deadline:
            raise PipelineError(f"the collector committed {done} of {messages} messages in {timeout_s:.0f} s")
        time.sleep(poll_s)
    if progress is not None:
        progress(messages, messages)


def _publish_child(
    config: SimulationConfig,
    endpoint: MqttEndpoint,
    truth_path: str | None,
    max_inflight: int,
    events: multiprocessing.Queue[tuple[str, object]],
) -> None:
    """In the child process: publish the backfill of ``config``; report progress and the end."""
    try:
        with open(truth_path, "w", encoding="utf-8") if truth_path else nullcontext() as truth:
            stats = publish_backfill(
                Simulation(config),
                endpoint,
                truth=truth,
                max_inflight=max_inflight,
                progress=lambda p: events.put(("progress", p)),
            )
        events.put(("done", stats))
    except PublishError as exc:
        events.put(("publish_error", str(exc)))
    except BaseException as exc:  # the parent re-raises it as a PipelineError
        events.put(("error", f"{type(exc).__name__}: {exc}"))


def publish_backfill_in_child(
    sim: Simulation,
    endpoint: MqttEndpoint,
    *,
    truth: TextIO | None = None,
    max_inflight: int = 1000,
    progress: SimProgressCallback | None = None,
) -> RunStats:
    """:func:`publish_backfill` run by a child process (spawned: this one has threads).

    The child rebuilds the same simulation from ``sim.config`` (the simulator is
    deterministic), writes the fault ground truth to a scratch file that is then copied
    into ``truth``, and sends its progress and statistics back over a queue.

    Raises
    ------
    PublishError
        The broker refused or dropped the publisher.
    PipelineError
        The child failed otherwise, or ended without a result.
    """
    context = multiprocessing.get_context("spawn")
    events: multiprocessing.Queue[tuple[str, object]] = context.Queue()
    with tempfile.TemporaryDirectory(prefix="parkenergy-backfill-") as scratch:
        truth_path = str(Path(scratch) / "faults.jsonl") if truth is not None else None
        child = context.Process(
            target=_publish_child,
            args=(sim.config, endpoint, truth_path, max_inflight, events),
            name="parkenergy-backfill",
            daemon=True,
        )
        child.start()
        try:
            while True:
                try:
                    kind, value = events.get(timeout=1.0)
                except queue.Empty:
                    if not child.is_alive():
                        raise PipelineError(
                            f"the backfill process ended without a result (exit code {child.exitcode})"
                        ) from None
                    continue
                if kind == "progress" and progress is not None:
                    assert isinstance(value, SimProgress)
                    progress(value)
                elif kind == "done":
                    assert isinstance(value, RunStats)
                    stats = value
                    break
                elif kind == "publish_error":
                    raise PublishError(str(value))
                elif kind == "error":
                    raise PipelineError(f"the backfill failed: {value}")
        finally:
            child.join(30)
            if child.is_alive():
                child.terminate()
                child.join(5)
        if truth is not None and truth_path is not None:
            with open(truth_path, encoding="utf-8") as written:
                truth.write(written.read())
    return stats


def collect_backfill(
    sim: Simulation,
    running: CollectorThread,
    endpoint: MqttEndpoint,
    *,
    truth: TextIO | None = None,
    max_inflight: int = 1000,
    generated: SimProgressCallback | None = None,
    committed: Callable[[int, int], None] | None = None,
    timeout_s: float = 3600.0,
) -> RunStats:
    """Publish ``sim``'s backfill to ``endpoint`` and wait until ``running`` has committed all of it.

    The publisher runs in a child process (:func:`publish_backfill_in_child`): generating
    and encoding the history would otherwise hold this process's interpreter lock
    against the collector's thread (the demo's 40-enterprise backfill: 281 s in one
    process, 251 s with the child; docs/demo.md). ``generated`` follows the simulator
    (days), ``committed`` the collector (messages).
    """
    base = running.committed_messages
    stats = publish_backfill_in_child(
        sim, endpoint, truth=truth, max_inflight=max_inflight, progress=generated
    )
    wait_committed(running, base + stats.messages, timeout_s=timeout_s, progress=committed)
    return stats


def run_live(
    sim: Simulation,
    endpoint: MqttEndpoint,
    *,
    speed: float,
    stop: threading.Event,
    truth: TextIO | None = None,
    on_replacement: Callable[[list[Replacement]], None] | None = None,
    connected: Callable[[int], None] | None = None,
) -> RunStats:
    """Run ``sim`` live through one MQTT connection per gateway until ``stop`` is set (or its end).

    ``connected`` is told the number of gateways once they are connected.
    """
    fleet = GatewayFleet(endpoint, sim.park, sim.config.prefix)
    try:
        if connected is not None:
            connected(len(fleet.clients))
        return sim.live(fleet.publish, speed=speed, truth=truth, stop=stop, on_replacement=on_replacement)
    finally:
        fleet.close()


def load_registry(url: str, registry: Path, events: Path) -> tuple[LoadSummary, EventLoadSummary]:
    """Store the registry and meter-event files (upserts); their summaries."""
    rows = read_registry_file(registry)
    with connect(url) as conn:
        summary = store_registry(conn, rows)
        event_summary = store_meter_events(conn, read_meter_events_file(events))
    return summary, event_summary


def import_economics(url: str, directory: Path, changed_by: str) -> list[ImportSummary]:
    """Import the simulator's economics CSV files of ``directory`` (identical values are left alone)."""
    with connect(url) as conn:
        deflators = store_deflators(conn, read_deflators_file(directory / "deflators.csv"), changed_by)
        value_added = store_value_added(
            conn, read_value_added_file(directory / "value_added.csv"), changed_by
        )
        baseline = store_baseline(conn, read_baseline_file(directory / "baseline_2022.csv"), changed_by)
        output = store_output(conn, read_output_file(directory / "output.csv"), changed_by)
    return [deflators, value_added, *baseline, output]


@dataclass(frozen=True, slots=True)
class JobStep:
    """One run of analytics job ``job`` as if the time were ``now``."""

    job: str
    now: datetime


def analytics_steps(end: datetime, detector_days: int = DETECTOR_REPLAY_DAYS) -> list[JobStep]:
    """The ``energy`` and ``forecast`` jobs at ``end``, then every detector group once a day
    over the last ``detector_days`` days and at ``end``.

    The forecast needs the economics imported first. The detectors read only data with
    event time at or before their ``now``, so the replay opens, escalates and resolves
    alerts at the times the running service would have.
    """
    steps = [JobStep("energy", end), JobStep("forecast", end)]
    for day in range(detector_days, -1, -1):
        steps.extend(JobStep(group, end - timedelta(days=day)) for group in GROUPS)
    return steps


def run_steps(
    url: str,
    steps: Sequence[JobStep],
    *,
    progress: Callable[[int, JobStep], None] | None = None,
    job_progress: Callable[[int, int], None] | None = None,
    busy_wait_s: float = 600.0,
) -> list[JobOutcome]:
    """Run ``steps`` in order on one connection.

    Parameters
    ----------
    progress : callable, optional
        Called with (steps done, the step about to run) before each step.
    job_progress : callable, optional
        Receives (done, total) of long jobs (the ``energy`` job's meters).
    busy_wait_s : float
        How long a step waits for its job while it runs elsewhere (an analytics service on
        the same database) [s].

    Raises
    ------
    PipelineError
        A job failed (its error is in ``analytics.job_run``), or ran elsewhere too long.
    """
    outcomes = []
    token = progress_hook.set(job_progress)
    try:
        with connect(url, autocommit=True) as conn:
            for done, step in enumerate(steps):
                if progress is not None:
                    progress(done, step)
                deadline = time.monotonic() + busy_wait_s
                while (outcome := run_job(conn, step.job, step.now)).status == "skipped":
                    if time.monotonic() > deadline:
                        break
                    time.sleep(1.0)
                if outcome.status != "ok":
                    raise PipelineError(
                        f"job {step.job} at {step.now.isoformat()}: {outcome.status}: {outcome.summary}"
                    )
                outcomes.append(outcome)
    finally:
        progress_hook.reset(token)
    return outcomes
