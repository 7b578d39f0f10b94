"""Detector benchmark: a simulated park with faults through the real pipeline, the detectors
replayed over its history, and their alerts scored against the simulator's ground truth.

1. Simulate ``--enterprises`` enterprises (seed ``--seed``) for ``--days`` days ending at
   the last local midnight (Asia/Shanghai), fault rates scaled up (``--fault-scale``, plus
   the rates of :data:`PROFILE_RATES` so that every kind has cases), through a private
   Mosquitto (:class:`parkenergy.embedded.EmbeddedBroker`) and the real collector into a
   private PostgreSQL (:class:`parkenergy.embedded.EmbeddedPostgres`), registry, meter
   events and economics loaded, then the ``energy`` job, as ``tests/simulated_park.py``
   does. Before the energy job, ``received_at`` of every reading and quarantined message
   is set to when the live gateways would have sent it (``--arrivals simulated``,
   :class:`ArrivalLog`): a backfill delivers months in seconds.
2. Replay the detectors: for ``now`` = start + step … end, run each group of
   :mod:`analytics.detection` at its cadence in simulated time (``detect-offline`` and
   ``detect-counters`` every ``--fast-step`` seconds, ``detect-anomalies`` and
   ``detect-daily`` every ``--slow-step``), so alerts open at the simulated time they would
   have. The detectors read only data with event time ≤ ``now``.
3. Score the alerts (``api.alert``) against the truth per fault kind
   (:mod:`benchmarks.detector_scoring`): recall, precision, median detection delay; the
   silent faults; alert kinds the simulator does not inject.
4. Unless ``--skip-restart``: live operation for a few minutes after the backfill (the same
   park continuing from its end, gateways publishing in real time), ``detect-offline`` and
   ``detect-counters`` run at the wall clock every ``--live-every`` seconds; the collector is
   stopped for ``--collector-down`` seconds and started again, later Mosquitto is killed
   (SIGKILL) and restarted. Counts the alerts opened after each restart.

Prints the figures; always exits 0 (a measurement, not a test).

Run: ``.venv/bin/python benchmarks/detectors.py [--help]``
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import logging
import os
import platform
import shutil
import statistics
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

# Run as a file, this directory is first on sys.path; the project root must be there too.
_ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(_ROOT))

import psycopg  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn  # noqa: E402
from rich.table import Table  # noqa: E402

from analytics.detection import Detector, detectors_of, run_detector  # noqa: E402
from analytics.economics_file import (  # noqa: E402
    read_baseline_file,
    read_deflators_file,
    read_output_file,
    read_value_added_file,
)
from analytics.economics_store import (  # noqa: E402
    store_baseline,
    store_deflators,
    store_output,
    store_value_added,
)
from analytics.jobs import run_job  # noqa: E402
from benchmarks.detector_scoring import (  # noqa: E402
    Alert,
    Context,
    Score,
    Truth,
    parse_truth,
    score,
    split_scored,
)
from collector.service import Collector, CollectorConfig  # noqa: E402
from parkdata.migrate import migrate  # noqa: E402
from parkdata.registry_file import read_meter_events_file, read_registry_file  # noqa: E402
from parkdata.registry_store import store_meter_events, store_registry  # noqa: E402
from parkdata.settings import MqttEndpoint  # noqa: E402
from parkenergy.embedded import EmbeddedBroker, EmbeddedPostgres, find_mosquitto  # noqa: E402
from simulators import FaultRates, Simulation, SimulationConfig, load_rates  # noqa: E402
from simulators.publish import BulkPublisher, GatewayFleet  # noqa: E402
from simulators.timebase import CST  # noqa: E402
from simulators.wire import UPLOAD_LATENCY_S, UPLOAD_PERIOD_S, Message  # noqa: E402

console = Console(width=None if sys.stdout.isatty() else 200)

PROFILE_RATES = {"clock.skew": 0.02, "consumption.baseload_creep": 0.02}
"""Rates set after scaling: a gateway clock skew is rare (0.001) and a creep lasts weeks, so
at the default scale 90 days of 16 enterprises would hold too few of them."""

GROUP_STEPS = {
    "detect-offline": "fast",
    "detect-counters": "fast",
    "detect-anomalies": "slow",
    "detect-daily": "slow",
}
LIVE_GROUPS = ("detect-offline", "detect-counters")
LIVE_CATCHUP_SPEED = 3600.0


# -- setup -----------------------------------------------------------------------------------


def fault_rates(args: argparse.Namespace) -> FaultRates:
    if args.fault_profile:
        return load_rates(Path(args.fault_profile))
    return FaultRates().scaled(args.fault_scale).with_rates(PROFILE_RATES)


def window(args: argparse.Namespace) -> tuple[datetime, datetime]:
    """``[start, end)``: ``--days`` days ending at the last local midnight (or ``--end``)."""
    if args.end:
        end = datetime.fromisoformat(args.end)
        end = end if end.tzinfo else end.replace(tzinfo=CST)
    else:
        end = datetime.now(CST).replace(hour=0, minute=0, second=0, microsecond=0)
    return end - timedelta(days=args.days), end


def import_economics(url: str, directory: Path) -> None:
    with psycopg.connect(url) as conn:
        store_deflators(conn, read_deflators_file(directory / "deflators.csv"), "detector-benchmark")
        store_value_added(conn, read_value_added_file(directory / "value_added.csv"), "detector-benchmark")
        store_baseline(conn, read_baseline_file(directory / "baseline_2022.csv"), "detector-benchmark")
        store_output(conn, read_output_file(directory / "output.csv"), "detector-benchmark")


def load_registry(url: str, registry: Path, events: Path) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        migrate(conn)
    with psycopg.connect(url) as conn:
        store_registry(conn, read_registry_file(registry))
        store_meter_events(conn, read_meter_events_file(events))


@contextmanager
def running_collector(url: str, broker_url: str, client_id: str) -> Iterator[Collector]:
    collector = Collector(
        CollectorConfig(database_url=url, mqtt=MqttEndpoint.parse(broker_url), client_id=client_id)
    )
    errors: list[BaseException] = []

    def run() -> None:
        try:
            collector.run()
        except BaseException as exc:  # reported by the caller
            errors.append(exc)

    worker = threading.Thread(target=run, name=f"collector-{client_id}", daemon=True)
    worker.start()
    if not collector.wait_connected(60):
        raise RuntimeError("the collector did not connect to the broker")
    try:
        yield collector
    finally:
        collector.stop()
        worker.join(120)
        if errors:
            raise errors[0]


def wait_until(predicate: Callable[[], bool], timeout_s: float, what: Callable[[], str]) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout_s:.0f} s waiting for {what()}")
        time.sleep(0.2)


class ArrivalLog:
    """When each stored reading and each quarantined message would have arrived in live operation.

    A backfill publishes weeks of history in minutes, so the collector's ``received_at`` is the
    wall-clock time of the backfill. Live gateways send each quarter hour's readings at its end
    + 5 s, and a late burst's readings when the burst is published (``simulators.wire``): this
    log keeps, per message the backfill sends, that simulated time, so that ``received_at``
    can be set to it before the replay (:meth:`apply`).
    """

    def __init__(self) -> None:
        self.batches: list[tuple[str, bytes, int]] = []
        self.quarantined: list[tuple[bytes, int]] = []

    def wrap(self, sink: Callable[[Message], None]) -> Callable[[Message], None]:
        def publish(message: Message) -> None:
            if message.reason is not None:
                digest = hashlib.sha256(message.topic.encode() + b"\x00" + message.payload).digest()
                self.quarantined.append((digest, message.due_s))
            elif message.status is None and message.stored > 0:
                self.batches.append((message.topic, message.payload, message.due_s))
            sink(message)

        return publish

    def rows(self, meter_ids: dict[tuple[str, str], int]) -> dict[tuple[int, int], int]:
        """(meter id, ts [epoch s]) → simulated arrival [epoch s] (the earliest, for a resent reading)."""
        out: dict[tuple[int, int], int] = {}
        for topic, payload, due_s in self.batches:
            enterprise = topic.rsplit("/", 2)[-2]
            items = json.loads(payload)["readings"]
            stamps = [int(datetime.fromisoformat(i["ts"]).timestamp()) for i in items]
            # A regular backfill batch is due at its last reading; a late burst after all of its readings.
            regular = due_s <= max(stamps)
            for item, ts in zip(items, stamps, strict=True):
                arrival = (
                    (ts // UPLOAD_PERIOD_S + 1) * UPLOAD_PERIOD_S + UPLOAD_LATENCY_S if regular else due_s
                )
                key = (meter_ids[(enterprise, item["meter"])], ts)
                out[key] = min(arrival, out.get(key, arrival))
        return out

    def apply(self, url: str) -> tuple[int, int]:
        """Set ``received_at`` of readings and quarantine rows to their simulated arrival; the counts."""
        with psycopg.connect(url) as conn:
            ids = {
                (str(e), str(m)): int(i)
                for e, m, i in conn.execute(
                    "SELECT e.enterprise_code, m.meter_code, m.meter_id"
                    " FROM registry.meter m JOIN registry.enterprise e USING (enterprise_id)"
                ).fetchall()
            }
            rows = self.rows(ids)
            conn.execute(
                "CREATE TEMP TABLE arrival (meter_id int, ts timestamptz, at timestamptz) ON COMMIT DROP"
            )
            with conn.cursor().copy("COPY arrival (meter_id, ts, at) FROM STDIN") as copy:
                for (meter_id, ts), at in rows.items():
                    copy.write_row(
                        (meter_id, datetime.fromtimestamp(ts, UTC), datetime.fromtimestamp(at, UTC))
                    )
            readings = conn.execute(
                "UPDATE ingest.reading r SET received_at = a.at FROM arrival a"
                " WHERE r.meter_id = a.meter_id AND r.ts = a.ts"
            ).rowcount
            conn.execute("CREATE TEMP TABLE q_arrival (sha bytea, at timestamptz) ON COMMIT DROP")
            with conn.cursor().copy("COPY q_arrival (sha, at) FROM STDIN") as copy:
                for digest, due_s in self.quarantined:
                    copy.write_row((digest, datetime.fromtimestamp(due_s, UTC)))
            quarantined = conn.execute(
                "UPDATE ingest.quarantine q SET received_at = a.at"
                " FROM q_arrival a WHERE q.message_sha256 = a.sha"
            ).rowcount
        return readings, quarantined


@dataclass(slots=True)
class Backfill:
    sim: Simulation
    truth: list[Truth]
    explain_only: list[Truth]
    stats: dict[str, Any]
    seconds: float
    energy_s: float
    meters: int
    rewritten: tuple[int, int] | None


def backfill(args: argparse.Namespace, base: Path, url: str, broker: EmbeddedBroker) -> Backfill:
    start, end = window(args)
    rates = fault_rates(args)
    config = SimulationConfig(enterprises=args.enterprises, seed=args.seed, start=start, end=end, rates=rates)
    sim = Simulation(config)
    registry, events = sim.write_registry(base / "registry")
    sim.write_economics(base / "economics")
    load_registry(url, registry, events)
    import_economics(url, base / "economics")
    started = time.monotonic()
    truth_buf = io.StringIO()
    arrivals = ArrivalLog() if args.arrivals == "simulated" else None
    with (
        running_collector(url, broker.url, "detector-benchmark") as collector,
        Progress(
            TextColumn("backfill"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("days"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        ) as bar,
    ):
        task = bar.add_task("backfill", total=args.days)
        publisher = BulkPublisher(MqttEndpoint.parse(broker.url), max_inflight=500)
        try:
            sink = arrivals.wrap(publisher.publish) if arrivals is not None else publisher.publish
            stats = sim.backfill(
                sink, truth=truth_buf, progress=lambda p: bar.update(task, completed=p.days_done)
            )
        finally:
            publisher.close()
        wait_until(
            lambda: collector.committed_messages >= stats.messages,
            600,
            lambda: f"{collector.committed_messages} of {stats.messages} messages committed",
        )
    (base / "truth.jsonl").write_text(truth_buf.getvalue(), encoding="utf-8")
    seconds = time.monotonic() - started
    rewritten = arrivals.apply(url) if arrivals is not None else None
    t0 = time.monotonic()
    with psycopg.connect(url, autocommit=True) as conn:
        outcome = run_job(conn, "energy", end)
        if outcome.status != "ok":
            raise RuntimeError(f"energy job: {outcome.summary}")
        meters = int(str(conn.execute("SELECT count(*) FROM registry.meter").fetchone()[0]))  # type: ignore[index]
    energy_s = time.monotonic() - t0
    # Faults that began before the window (a creep under way) may explain alerts in it.
    before = io.StringIO()
    lookback = SimulationConfig(
        enterprises=args.enterprises, seed=args.seed, start=start - timedelta(days=60), end=start, rates=rates
    )
    Simulation(lookback, park=sim.park).backfill(None, truth=before)
    return Backfill(
        sim=sim,
        truth=parse_truth(truth_buf.getvalue().splitlines()),
        explain_only=parse_truth(before.getvalue().splitlines()),
        stats=stats.as_dict(),
        seconds=seconds,
        energy_s=energy_s,
        meters=meters,
        rewritten=rewritten,
    )


# -- replay ----------------------------------------------------------------------------------


@dataclass(slots=True)
class DetectorTimes:
    runs: Counter[str] = field(default_factory=Counter)
    seconds: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    worst_s: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    missing: set[str] = field(default_factory=set)
    failures: Counter[str] = field(default_factory=Counter)
    first_failure: dict[str, str] = field(default_factory=dict)
    opened: Counter[str] = field(default_factory=Counter)


def run_one(conn: psycopg.Connection[Any], detector: Detector, now: datetime, times: DetectorTimes) -> None:
    """Run a detector at ``now`` into the alert state; a missing module or a failure is recorded."""
    if detector.name in times.missing:
        return
    t0 = time.perf_counter()
    try:
        outcome = run_detector(conn, detector, now)
    except ModuleNotFoundError as exc:
        if not exc.name or not exc.name.startswith("analytics."):
            raise
        times.missing.add(detector.name)
        return
    except Exception as exc:  # recorded: one failing detector must not stop the replay of the others
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            conn.rollback()
        times.failures[detector.name] += 1
        times.first_failure.setdefault(
            detector.name,
            f"at {now.isoformat()}: {type(exc).__name__}: {exc}\n{traceback.format_exc(limit=4)}",
        )
        return
    spent = time.perf_counter() - t0
    times.runs[detector.name] += 1
    times.seconds[detector.name] += spent
    times.worst_s[detector.name] = max(times.worst_s[detector.name], spent)
    times.opened[detector.name] += outcome.opened


def replay(url: str, start: datetime, end: datetime, fast_s: int, slow_s: int) -> tuple[DetectorTimes, float]:
    """Run every group at its cadence for ``now`` = start + step … end (simulated time)."""
    times = DetectorTimes()
    groups = {g: detectors_of(g) for g in GROUP_STEPS}
    steps = int((end - start).total_seconds()) // fast_s
    started = time.monotonic()
    with (
        psycopg.connect(url, autocommit=True) as conn,
        Progress(
            TextColumn("replay {task.fields[now]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        ) as bar,
    ):
        task = bar.add_task("replay", total=steps, now="")
        for i in range(1, steps + 1):
            now = start + timedelta(seconds=i * fast_s)
            elapsed = int((now - start).total_seconds())
            for group, cadence in GROUP_STEPS.items():
                if cadence == "slow" and elapsed % slow_s:
                    continue
                for detector in groups[group]:
                    run_one(conn, detector, now, times)
            bar.update(task, advance=1, now=f"{now.astimezone(CST):%Y-%m-%d %H:%M}")
            if not console.is_terminal and i % max(1, steps // 20) == 0:
                console.print(
                    f"replay {i}/{steps} steps, now {now.astimezone(CST):%Y-%m-%d %H:%M},"
                    f" {time.monotonic() - started:.0f} s",
                    markup=False,
                )
    return times, time.monotonic() - started


# -- reading back ----------------------------------------------------------------------------


def read_alerts(url: str, after: datetime | None = None) -> list[Alert]:
    query = (
        "SELECT alert_id, kind, subject, started_at, opened_at, ended_at, last_seen_at, resolved_at, state"
        " FROM api.alert"
    )
    with psycopg.connect(url, autocommit=True) as conn:
        if after is None:
            rows = conn.execute(query + " ORDER BY alert_id").fetchall()
        else:
            rows = conn.execute(query + " WHERE opened_at > %s ORDER BY alert_id", (after,)).fetchall()
    return [Alert(int(r[0]), str(r[1]), str(r[2]), r[3], r[4], r[5], r[6], r[7], str(r[8])) for r in rows]


def registry_context(url: str, horizon: datetime, meter_days: float) -> Context:
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT e.enterprise_code, m.meter_code, m.expected_interval_s"
            " FROM registry.meter m JOIN registry.enterprise e USING (enterprise_id)"
        ).fetchall()
    return Context({(str(e), str(m)): float(s) for e, m, s in rows}, horizon, meter_days)


# -- live: restarts --------------------------------------------------------------------------


@dataclass(slots=True)
class LiveResult:
    started: datetime
    caught_up_s: float
    clock_shift_s: float
    collector_stop: datetime | None = None
    collector_start: datetime | None = None
    broker_kill: datetime | None = None
    broker_start: datetime | None = None
    finished: datetime | None = None
    upload_in_outage: bool = False
    detector_runs: int = 0
    detector_s: list[float] = field(default_factory=list)
    after_collector: list[Alert] = field(default_factory=list)
    after_broker: list[Alert] = field(default_factory=list)
    before_restarts: list[Alert] = field(default_factory=list)
    truth: list[Truth] = field(default_factory=list)
    messages: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    stored_after_collector: int = 0
    stored_after_broker: int = 0
    messages_after_broker: int = 0
    collector_reconnect_s: float | None = None


class FleetSink:
    """Hands the live simulation's messages to the current gateway fleet (replaced after a broker restart)."""

    def __init__(self, fleet: GatewayFleet) -> None:
        self.fleet = fleet
        self.lock = threading.Lock()
        self.messages = 0

    def __call__(self, message: Message) -> None:
        with self.lock:
            self.fleet.publish(message)
            self.messages += 1

    def replace(self, fleet: GatewayFleet) -> GatewayFleet:
        with self.lock:
            old, self.fleet = self.fleet, fleet
        return old


def next_upload(t: float) -> float:
    """Wall time of the next quarter-hour upload of the live gateways (end of a quarter hour + 5 s)."""
    return (t // UPLOAD_PERIOD_S + 1) * UPLOAD_PERIOD_S + 5


def live_phase(args: argparse.Namespace, url: str, broker: EmbeddedBroker, bf: Backfill) -> LiveResult:
    """Live operation after the backfill, with a collector restart and a broker kill -9 and restart."""
    end = bf.sim.config.end
    assert end is not None
    config = SimulationConfig(
        enterprises=args.enterprises, seed=args.seed, start=end, end=None, rates=bf.sim.config.rates
    )
    sim = Simulation(config, park=bf.sim.park)
    endpoint = MqttEndpoint.parse(broker.url)
    stop = threading.Event()
    truth_buf = io.StringIO()
    sink = FleetSink(GatewayFleet(endpoint, sim.park, config.prefix))
    errors: list[BaseException] = []

    # Live gateways upload every quarter hour (+5 s). Shift the simulated clock by ``shift_s``
    # (within [-290, 610] s: readings stay within the collector's 5-minute future tolerance,
    # and less than 30 minutes late) so that one upload falls one minute into the collector's
    # outage, whatever the wall-clock minute.
    started = time.time()
    catch_up_s = (started - end.timestamp()) / LIVE_CATCHUP_SPEED + 15.0
    stop_at = started + catch_up_s + args.baseline
    upload_at = stop_at + 60.0
    shift_s: float = next(
        upload_at - n
        for n in (next_upload(upload_at - 620.0) + k * UPLOAD_PERIOD_S for k in range(3))
        if -290.0 <= upload_at - n <= 610.0
    )

    def clock() -> float:
        return time.time() - shift_s

    def simulate() -> None:
        try:
            sim.live(sink, speed=LIVE_CATCHUP_SPEED, truth=truth_buf, stop=stop, clock=clock)
        except BaseException as exc:  # reported below
            errors.append(exc)

    result = LiveResult(started=datetime.now(UTC), caught_up_s=catch_up_s, clock_shift_s=shift_s)
    detectors = [d for g in LIVE_GROUPS for d in detectors_of(g)]
    times = DetectorTimes()
    collector_cm = running_collector(url, broker.url, "detector-benchmark")
    collector_cm.__enter__()
    collector_up = True
    worker = threading.Thread(target=simulate, name="live-simulation", daemon=True)
    worker.start()
    try:
        # Catch up from the backfill's end to now (the collector stores it as it comes).
        time.sleep(max(0.0, started + catch_up_s - time.time()))
        with psycopg.connect(url, autocommit=True) as conn:

            def detect() -> None:
                now = datetime.now(UTC)
                d0 = time.perf_counter()
                for detector in detectors:
                    run_one(conn, detector, now, times)
                result.detector_s.append(time.perf_counter() - d0)
                result.detector_runs += 1

            def run_until(wall: float) -> None:
                while time.time() < wall:
                    detect()
                    time.sleep(max(0.0, min(args.live_every, wall - time.time())))

            live0 = datetime.now(UTC)
            run_until(stop_at)
            result.before_restarts = read_alerts(url, after=live0)
            result.collector_stop = datetime.now(UTC)
            collector_cm.__exit__(None, None, None)
            collector_up = False
            run_until(stop_at + args.collector_down)
            result.upload_in_outage = stop_at < upload_at < time.time()
            collector_cm = running_collector(url, broker.url, "detector-benchmark")
            collector = collector_cm.__enter__()
            collector_up = True
            result.collector_start = datetime.now(UTC)
            run_until(time.time() + args.observe)
            result.broker_kill = datetime.now(UTC)
            broker.kill()
            time.sleep(2)
            broker.start()
            old = sink.replace(GatewayFleet(endpoint, sim.park, config.prefix))
            threading.Thread(target=_close_quietly, args=(old,), daemon=True).start()
            result.broker_start = datetime.now(UTC)
            committed = collector.committed_messages
            reconnected = collector.wait_connected(60)
            result.collector_reconnect_s = (
                time.time() - result.broker_start.timestamp() if reconnected else None
            )
            run_until(time.time() + args.observe)
            # The new gateway connections announce "online": messages through the restarted broker.
            result.messages_after_broker = collector.committed_messages - committed
            result.finished = datetime.now(UTC)
    finally:
        stop.set()
        worker.join(60)
        if collector_up:
            collector_cm.__exit__(None, None, None)
        _close_quietly(sink.fleet)
    if errors:
        raise errors[0]
    assert result.collector_start is not None and result.broker_start is not None
    kill = result.broker_kill or datetime.now(UTC)
    result.after_collector = [
        a for a in read_alerts(url, after=result.collector_start) if a.opened_at <= kill
    ]
    result.after_broker = read_alerts(url, after=result.broker_start)
    with psycopg.connect(url, autocommit=True) as conn:
        count = "SELECT count(*) FROM ingest.reading WHERE received_at > %s AND received_at <= %s"
        row = conn.execute(count, (result.collector_start, kill)).fetchone()
        result.stored_after_collector = int(row[0]) if row else 0
        row = conn.execute(count, (result.broker_start, result.finished or datetime.now(UTC))).fetchone()
        result.stored_after_broker = int(row[0]) if row else 0
    result.truth = parse_truth(truth_buf.getvalue().splitlines())
    result.messages = sink.messages
    result.failures = times.failures
    for name, text in times.first_failure.items():
        console.print(f"[red]live: detector {name} failed {times.failures[name]}×[/red], first {text}")
    return result


def _close_quietly(fleet: GatewayFleet) -> None:
    try:
        fleet.close(timeout_s=40)
    except Exception as exc:  # a fleet whose broker died: nothing more to send
        logging.getLogger(__name__).info("gateway fleet closed with %s", exc)


# -- report ----------------------------------------------------------------------------------


def fmt_ratio(x: float | None) -> str:
    return "–" if x is None else f"{x:.2f}"


def fmt_delay(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    if abs(seconds) >= 86400:
        return f"{seconds / 86400:.1f} d"
    if abs(seconds) >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.0f} min"


def report(result: Score, args: argparse.Namespace, show: int) -> None:
    t = Table(title="Per fault kind (truth → expected alert kinds on its subject)")
    for col in (
        "fault kind",
        "expected alerts",
        "truth",
        "detected",
        "recall",
        "alerts",
        "precision",
        "median delay",
    ):
        t.add_column(col, justify="left" if col in ("fault kind", "expected alerts") else "right")
    for f in result.faults:
        flag = "" if (f.recall or 0) >= 0.9 and (f.precision is None or f.precision >= 0.9) else " ✗"
        t.add_row(
            f.kind + flag,
            ", ".join(f.expected),
            str(f.truth),
            str(f.detected),
            fmt_ratio(f.recall),
            str(f.alerts),
            fmt_ratio(f.precision),
            fmt_delay(f.median_delay_s),
        )
    console.print(t)
    t = Table(
        title="Per alert kind (precision: explained by a truth record; secondary = another fault's effect)"
    )
    for col in (
        "alert kind",
        "alerts",
        "subjects",
        "primary",
        "secondary",
        "unexplained",
        "precision",
        "secondary by",
    ):
        t.add_column(col, justify="left" if col in ("alert kind", "secondary by") else "right")
    for a in result.alert_kinds:
        by = ", ".join(f"{k} {n}" for k, n in sorted(a.secondary_by.items()))
        t.add_row(
            a.kind,
            str(a.alerts),
            str(a.subjects),
            str(a.primary),
            str(a.secondary),
            str(len(a.false)),
            fmt_ratio(a.precision),
            by,
        )
    console.print(t)
    t = Table(
        title="Silent faults (no alert expected): records with an unexplained counter./meter./delivery. alert"
    )
    for col in ("fault kind", "truth", "with an alert"):
        t.add_column(col)
    for s in result.silent:
        t.add_row(s.kind, str(s.truth), str(s.with_alert))
    console.print(t)
    t = Table(title="Alert kinds the simulator does not inject")
    for col in ("alert kind", "alerts", "per 1 000 meter-days", "overlapping a truth record"):
        t.add_column(col)
    for n in result.non_injected:
        t.add_row(n.kind, str(n.alerts), f"{n.per_1000_meter_days:.2f}", str(n.overlapping_truth))
    for kind, count in sorted(result.other.items()):
        t.add_row(kind + " (not in any table)", str(count), "", "")
    console.print(t)
    if show:
        for f in result.faults:
            for miss in f.missed[:show]:
                console.print(
                    f"missed: {miss.label()} {json.dumps(dict(miss.detail), ensure_ascii=False)}",
                    markup=False,
                    soft_wrap=True,
                )
        for a in result.alert_kinds:
            for x in a.false[:show]:
                console.print(
                    f"unexplained: {x.label()} … {x.end(x.opened_at).isoformat()}"
                    f" opened {x.opened_at.isoformat()}",
                    markup=False,
                    soft_wrap=True,
                )
        for s in result.silent:
            for tr, al in s.alerts[:show]:
                console.print(
                    f"silent fault with an alert: {tr.label()} ← {al.label()}", markup=False, soft_wrap=True
                )


def live_report(live: LiveResult, url: str) -> dict[str, Any]:
    ctx = registry_context(url, live.finished or datetime.now(UTC), 1.0)
    truth = live.truth

    def explained(alerts: list[Alert]) -> int:
        s = score(truth, alerts, ctx)
        return sum(a.primary + a.secondary for a in s.alert_kinds)

    def window_s(a: datetime | None, b: datetime | None) -> float:
        return (b - a).total_seconds() if a and b else 0.0

    out: dict[str, Any] = {
        "catch_up_s": round(live.caught_up_s, 1),
        "clock_shift_s": round(live.clock_shift_s, 1),
        "collector_down_s": round(window_s(live.collector_stop, live.collector_start), 1),
        "upload_during_collector_outage": live.upload_in_outage,
        "after_collector_restart": {
            "observed_s": round(window_s(live.collector_start, live.broker_kill), 1),
            "opened": len(live.after_collector),
            "readings_stored": live.stored_after_collector,
            "explained_by_live_truth": explained(live.after_collector),
            "by_kind": dict(Counter(a.kind for a in live.after_collector)),
        },
        "broker_down_s": round(window_s(live.broker_kill, live.broker_start), 1),
        "after_broker_restart": {
            "observed_s": round(window_s(live.broker_start, live.finished), 1),
            "opened": len(live.after_broker),
            "readings_stored": live.stored_after_broker,
            "collector_reconnected_after_s": None
            if live.collector_reconnect_s is None
            else round(live.collector_reconnect_s, 1),
            "messages_committed": live.messages_after_broker,
            "explained_by_live_truth": explained(live.after_broker),
            "by_kind": dict(Counter(a.kind for a in live.after_broker)),
        },
        "opened_before_the_restarts": len(live.before_restarts),
        "live_truth_records": dict(Counter(t.kind for t in truth)),
        "detector_runs": live.detector_runs,
        "detector_run_median_s": round(statistics.median(live.detector_s), 3) if live.detector_s else None,
        "live_messages": live.messages,
        "failures": dict(live.failures),
    }
    t = Table(title="Restart storm check (live, wall-clock now)")
    cols = ("event", "down", "observed after", "readings stored after", "alerts opened", "explained", "kinds")
    for col in cols:
        t.add_column(col)
    c, b = out["after_collector_restart"], out["after_broker_restart"]
    t.add_row(
        "collector stopped and started",
        f"{out['collector_down_s']:.0f} s",
        f"{c['observed_s']:.0f} s",
        str(c["readings_stored"]),
        str(c["opened"]),
        str(c["explained_by_live_truth"]),
        json.dumps(c["by_kind"]),
    )
    t.add_row(
        "mosquitto kill -9 and start",
        f"{out['broker_down_s']:.0f} s",
        f"{b['observed_s']:.0f} s",
        str(b["readings_stored"]),
        str(b["opened"]),
        str(b["explained_by_live_truth"]),
        json.dumps(b["by_kind"]),
    )
    console.print(t)
    console.print(
        f"live: caught up {out['catch_up_s']} s after start; simulated clock = wall clock"
        f" {-live.clock_shift_s:+.0f} s; {live.messages} messages; after the broker restart the collector"
        f" reconnected after {out['after_broker_restart']['collector_reconnected_after_s']} s and committed"
        f" {live.messages_after_broker}"
        f" messages; gateway upload during"
        f" the collector outage: {'yes' if live.upload_in_outage else 'no'}; {live.detector_runs} runs of"
        f" {', '.join(LIVE_GROUPS)}, median {out['detector_run_median_s']} s; alerts opened before the"
        f" restarts (after catch-up): {len(live.before_restarts)}; live truth: {out['live_truth_records']}",
        markup=False,
        soft_wrap=True,
    )
    for a in [*live.after_collector, *live.after_broker]:
        console.print(f"  opened after a restart: {a.label()} opened {a.opened_at.isoformat()}", markup=False)
    return out


# -- main ------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--enterprises", type=int, default=16, help="enterprises of the simulated park [16]")
    p.add_argument(
        "--days", type=int, default=90, help="simulated days, ending at the last local midnight [90]"
    )
    p.add_argument("--end", default="", help="end of the history instead (ISO date or time, +08:00 if naive)")
    p.add_argument("--seed", type=int, default=1, help="simulator seed [1]")
    p.add_argument("--fault-scale", type=float, default=10.0, help="every default fault rate × this [10]")
    p.add_argument(
        "--fault-profile", default="", help="a simulator fault profile (TOML) instead of the scale"
    )
    p.add_argument(
        "--fast-step", type=int, default=3600, help="detect-offline/-counters every N simulated s [3600]"
    )
    p.add_argument(
        "--slow-step", type=int, default=86400, help="detect-anomalies/-daily every N simulated s [86400]"
    )
    p.add_argument(
        "--arrivals",
        choices=("simulated", "collector"),
        default="simulated",
        help="received_at of the backfill: when live gateways would have sent each reading (simulated),"
        " or the collector's wall-clock receipt during the backfill [simulated]",
    )
    p.add_argument("--skip-restart", action="store_true", help="no live phase (restart storm check)")
    p.add_argument(
        "--baseline", type=float, default=60.0, help="live: detection before the collector stops [60 s]"
    )
    p.add_argument("--collector-down", type=float, default=240.0, help="live: collector outage [240 s]")
    p.add_argument(
        "--observe", type=float, default=180.0, help="live: observation after each restart [180 s]"
    )
    p.add_argument("--live-every", type=float, default=30.0, help="live: detector period [30 s]")
    p.add_argument(
        "--show", type=int, default=10, help="list up to N misses and unexplained alerts per kind [10]"
    )
    p.add_argument("--keep", action="store_true", help="keep the database directory (printed at the end)")
    p.add_argument("--json", metavar="OUT", default="", help="write the figures as JSON to OUT")
    args = p.parse_args(argv)
    if args.slow_step % args.fast_step:
        p.error("--slow-step must be a multiple of --fast-step")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("collector").setLevel(logging.ERROR)
    logging.getLogger("analytics").setLevel(logging.ERROR)
    logging.getLogger("simulators").setLevel(logging.ERROR)
    if find_mosquitto() is None:
        console.print("mosquitto is not installed (apt-get install mosquitto)")
        return 0
    started = time.monotonic()
    start, end = window(args)
    console.print(
        f"parkenergy detector benchmark, {datetime.now().astimezone():%Y-%m-%d %H:%M %Z}; "
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    console.print(
        f"park: {args.enterprises} enterprises, seed {args.seed}, {start:%Y-%m-%d} → {end:%Y-%m-%d} "
        f"({args.days} days, +08:00); faults: "
        + (args.fault_profile or f"default rates × {args.fault_scale:g}, then {PROFILE_RATES}")
    )
    base = Path(tempfile.mkdtemp(prefix="parkenergy-detbench-"))
    base.chmod(0o711)  # as root, PostgreSQL runs as a service user that must traverse it
    out: dict[str, Any] = {
        "enterprises": args.enterprises,
        "seed": args.seed,
        "days": args.days,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "fault_scale": args.fault_scale,
        "fault_profile": args.fault_profile or None,
        "profile_rates": PROFILE_RATES,
        "fast_step_s": args.fast_step,
        "slow_step_s": args.slow_step,
    }
    pg = EmbeddedPostgres(base / "pg")
    broker = EmbeddedBroker(base / "mqtt", persistence=True)
    pg.start()
    try:
        broker.start()
        try:
            url = pg.create_database("detectors")
            bf = backfill(args, base, url, broker)
            counts = Counter(t.kind for t in bf.truth)
            console.print(
                f"backfill: {bf.stats['messages']:,} messages, {bf.stats['readings']:,} readings,"
                f" {bf.meters} meters,"
                f" committed in {bf.seconds:.0f} s; energy job {bf.energy_s:.0f} s; injected faults: "
                + ", ".join(f"{k} {n}" for k, n in sorted(counts.items())),
                soft_wrap=True,
            )
            if bf.rewritten is not None:
                console.print(
                    f"received_at set to the simulated arrival of {bf.rewritten[0]:,} readings and"
                    f" {bf.rewritten[1]:,} quarantined messages"
                )
            out.update(
                arrivals=args.arrivals,
                meters=bf.meters,
                backfill_s=round(bf.seconds, 1),
                energy_job_s=round(bf.energy_s, 1),
                truth_counts=dict(sorted(counts.items())),
                simulator=bf.stats,
            )
            times, replay_s = replay(url, start, end, args.fast_step, args.slow_step)
            t = Table(title=f"Replay: {replay_s:.0f} s wall for {args.days} simulated days")
            for col in (
                "detector",
                "group",
                "runs",
                "total s",
                "mean s",
                "worst s",
                "alerts opened",
                "failures",
            ):
                t.add_column(col)
            for g in GROUP_STEPS:
                for d in detectors_of(g):
                    if d.name in times.missing:
                        t.add_row(d.name, g, "module missing", "", "", "", "", "")
                        continue
                    n = times.runs[d.name]
                    t.add_row(
                        d.name,
                        g,
                        str(n),
                        f"{times.seconds[d.name]:.1f}",
                        f"{times.seconds[d.name] / n:.3f}" if n else "–",
                        f"{times.worst_s[d.name]:.3f}",
                        str(times.opened[d.name]),
                        str(times.failures[d.name]),
                    )
            console.print(t)
            for name, text in times.first_failure.items():
                console.print(f"detector {name} failed {times.failures[name]}×; first {text}", markup=False)
            out["replay"] = {
                "seconds": round(replay_s, 1),
                "detectors": {
                    d: {
                        "runs": times.runs[d],
                        "seconds": round(times.seconds[d], 2),
                        "worst_s": round(times.worst_s[d], 3),
                        "opened": times.opened[d],
                        "failures": times.failures[d],
                    }
                    for d in sorted(set(times.runs) | set(times.failures))
                },
                "missing": sorted(times.missing),
                "first_failure": times.first_failure,
            }
            alerts = read_alerts(url)
            ctx = registry_context(url, end, float(bf.meters * args.days))
            scored, late = split_scored(bf.truth, start, end)
            result = score(scored, alerts, ctx, explain_only=[*bf.explain_only, *late])
            out["not_scored_at_the_edges"] = dict(Counter(t.kind for t in late))
            console.print(
                f"{len(alerts)} alerts; {len(scored)} truth records scored; for explanation only:"
                f" {len(late)} starting within a day of the start or the end (creeps: 28 and 14 days),"
                f" {len(bf.explain_only)} in the 60 days before the window"
            )
            report(result, args, args.show)
            out["score"] = result.as_dict()
            out["alerts"] = len(alerts)
            if not args.skip_restart:
                live = live_phase(args, url, broker, bf)
                out["restart"] = live_report(live, url)
        finally:
            broker.stop()
    finally:
        pg.stop()
        if args.keep:
            console.print(f"kept: {base} (PostgreSQL data in {base / 'pg'}, truth in {base / 'truth.jsonl'})")
        else:
            shutil.rmtree(base, ignore_errors=True)
    out["total_s"] = round(time.monotonic() - started, 1)
    console.print(f"total time {out['total_s']:.0f} s; load average at end {os.getloadavg()[0]:.2f}")
    if args.json:
        Path(args.json).write_text(
            json.dumps(out, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
