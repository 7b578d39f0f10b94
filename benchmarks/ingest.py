"""Ingest benchmark: the collector end to end against its own ceilings, in one run.

Starts a private Mosquitto (:class:`parkenergy.embedded.EmbeddedBroker`, which
raises ``max_queued_messages``) and a private PostgreSQL
(:class:`parkenergy.embedded.EmbeddedPostgres`), loads a registry of many
meters, then measures, each phase on an emptied ``ingest.reading``:

1. COPY ceiling: binary COPY into a temp staging table, then
   ``INSERT … SELECT … ON CONFLICT DO NOTHING``, committed per batch of the
   collector's ``batch_size`` rows; then the same rows through
   ``collector.writer.write_batch`` (the collector's own SQL, no MQTT).
2. Bare subscriber: a paho 2.x MQTT 5 client, QoS 1, auto-ack, that only
   counts what N publisher processes send (single-reading and 100-reading
   messages).
3. The collector (``collector.service.Collector`` on a thread of this
   process) for the same two workloads, timed from the go signal to the
   publishers until ``committed_messages`` shows every message committed
   (and acknowledged); ``SELECT count(*) FROM ingest.reading`` then checks
   that every reading is stored.

Prints a table, the collector's memory, the goals and a verdict per goal.
Always exits 0: it is a measurement, not a test.

Run: ``.venv/bin/python benchmarks/ingest.py [--help]``
"""

from __future__ import annotations

import argparse
import gc
import logging
import multiprocessing as mp
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from importlib.metadata import version
from multiprocessing.synchronize import Event as MpEvent
from pathlib import Path
from typing import Any

import msgspec
import paho.mqtt.client as mqtt
import psutil
import psycopg
from paho.mqtt.enums import CallbackAPIVersion

from collector.registry_cache import load_registry_cache
from collector.service import Collector, CollectorConfig
from collector.validate import Limits, Message, Outcome, classify
from collector.writer import Batch, BatchStats, write_batch
from parkdata.migrate import migrate
from parkdata.registry_file import read_registry_file
from parkdata.registry_store import store_registry
from parkdata.settings import MqttEndpoint
from parkenergy.embedded import EmbeddedBroker, EmbeddedPostgres

PREFIX = "parkenergy/v1"
BASE_TS = datetime(2024, 1, 1, tzinfo=timezone(timedelta(hours=8)))
STEP = timedelta(minutes=15)
Row = tuple[int, datetime, float]

GOAL_SINGLE_RATIO = 0.80
GOAL_BATCH_READINGS = 100_000.0
GOAL_BATCH_RATIO = 0.70


# --- workload -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Workload:
    """Messages on meter topics; message ``i`` goes to meter ``i % meters``, steps never repeat."""

    name: str
    messages: int
    readings_per_message: int
    enterprises: int
    meters_per_enterprise: int

    @property
    def meters(self) -> int:
        return self.enterprises * self.meters_per_enterprise

    @property
    def readings(self) -> int:
        return self.messages * self.readings_per_message

    def codes(self, meter_index: int) -> tuple[str, str]:
        """(enterprise_code, meter_code) of a meter."""
        e, m = divmod(meter_index, self.meters_per_enterprise)
        return enterprise_code(e), meter_code(m)

    def readings_of(self, i: int) -> Iterator[tuple[int, int, float]]:
        """(meter_index, step, value) of each reading in message ``i``."""
        meter_index = i % self.meters
        first = (i // self.meters) * self.readings_per_message
        for step in range(first, first + self.readings_per_message):
            yield meter_index, step, reading_value(meter_index, step)


def enterprise_code(e: int) -> str:
    return f"BENCH{e + 1:04d}"


def meter_code(m: int) -> str:
    return f"EL{m + 1:02d}"


def reading_value(meter_index: int, step: int) -> float:
    """A register that only grows: valid for a ``register`` meter."""
    return 1000.0 + meter_index * 0.5 + step * 1.25


def timestamp(step: int) -> datetime:
    return BASE_TS + step * STEP


def message(workload: Workload, i: int) -> tuple[str, bytes]:
    """Topic and payload of message ``i``: one reading, or ``{"readings": [...]}``."""
    meter_index = i % workload.meters
    ent, met = workload.codes(meter_index)
    items = [
        {"ts": timestamp(step).isoformat(), "value": value} for _, step, value in workload.readings_of(i)
    ]
    if workload.readings_per_message == 1:
        body: dict[str, Any] = {**items[0], "unit": "kWh"}
    else:
        body = {"readings": items}
    return f"{PREFIX}/{ent}/{met}", msgspec.json.encode(body)


def rows(workload: Workload, meter_ids: dict[tuple[str, str], int]) -> list[Row]:
    """The rows the collector would store for the workload, in message order."""
    out: list[Row] = []
    for i in range(workload.messages):
        for meter_index, step, value in workload.readings_of(i):
            out.append((meter_ids[workload.codes(meter_index)], timestamp(step), value))
    return out


def registry_csv(path: Path, enterprises: int, meters_per_enterprise: int) -> Path:
    header = "park_code,park_name,enterprise_code,enterprise_name,industry_code,meter_code,carrier,unit,kind,"
    lines = [header + "expected_interval_s"]
    for e in range(enterprises):
        for m in range(meters_per_enterprise):
            lines.append(
                f"BENCH,Benchmark park,{enterprise_code(e)},Enterprise {e + 1},3976,"
                f"{meter_code(m)},electricity,kWh,register,900"
            )
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# --- servers and database -------------------------------------------------------------------


@dataclass(slots=True)
class Servers:
    pg: EmbeddedPostgres
    broker: EmbeddedBroker
    database_url: str


@contextmanager
def private_servers(base: Path) -> Iterator[Servers]:
    pg = EmbeddedPostgres(base / "pg")
    broker = EmbeddedBroker(base / "mqtt", persistence=False)
    pg.start()
    try:
        broker.start()
        try:
            yield Servers(pg, broker, pg.create_database("bench"))
        finally:
            broker.stop()
    finally:
        pg.stop()


def prepare_database(url: str, registry: Path) -> dict[tuple[str, str], int]:
    """Migrate, load the registry; returns (enterprise_code, meter_code) → meter_id."""
    with psycopg.connect(url, autocommit=True) as conn:
        migrate(conn)
    with psycopg.connect(url) as conn:
        store_registry(conn, read_registry_file(registry))
        found = conn.execute(
            "SELECT e.enterprise_code, m.meter_code, m.meter_id"
            " FROM registry.meter m JOIN registry.enterprise e USING (enterprise_id)"
        ).fetchall()
    return {(str(e), str(m)): int(str(i)) for e, m, i in found}


def empty_tables(url: str) -> None:
    """Fresh tables for the next phase, and a checkpoint so that none runs during it."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "TRUNCATE ingest.reading, ingest.reading_conflict, ingest.quarantine, ingest.collector_stats"
        )
        conn.execute("CHECKPOINT")


def count_readings(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM ingest.reading").fetchone()
    return int(str(row[0])) if row else 0


# --- resource accounting --------------------------------------------------------------------


class CpuMeter:
    """CPU seconds of a process group between :meth:`start` and :meth:`stop`."""

    def __init__(self, roots: Callable[[], list[psutil.Process]]) -> None:
        self._roots = roots
        self._before: dict[int, float] = {}

    def _snapshot(self) -> dict[int, float]:
        procs: list[psutil.Process] = []
        for root in self._roots():
            procs.append(root)
            try:
                procs.extend(root.children(recursive=True))
            except psutil.Error:
                continue
        out: dict[int, float] = {}
        for p in procs:
            try:
                t = p.cpu_times()
            except psutil.Error:
                continue
            out[p.pid] = t.user + t.system
        return out

    def start(self) -> None:
        self._before = self._snapshot()

    def stop(self) -> float:
        after = self._snapshot()
        return sum(v - self._before.get(pid, 0.0) for pid, v in after.items())


def own_cpu() -> float:
    t = psutil.Process().cpu_times()
    return float(t.user + t.system)


def system_cpu() -> tuple[float, float]:
    """CPU seconds all processes of the machine used, and stolen by the hypervisor (cores summed)."""
    t = psutil.cpu_times()
    busy = t.user + t.nice + t.system + getattr(t, "irq", 0.0) + getattr(t, "softirq", 0.0)
    return float(busy), float(getattr(t, "steal", 0.0))


class PhaseCpu:
    """CPU seconds of this process, the broker, PostgreSQL and the whole machine during a phase."""

    def __init__(self, servers: Servers) -> None:
        pg_pid, broker_pid = servers.pg.pid, servers.broker.pid
        self._groups = {
            "pg": CpuMeter(lambda: [psutil.Process(pg_pid)] if pg_pid else []),
            "broker": CpuMeter(lambda: [psutil.Process(broker_pid)] if broker_pid else []),
        }
        self._own = 0.0
        self._system = (0.0, 0.0)

    def start(self) -> None:
        for m in self._groups.values():
            m.start()
        self._own, self._system = own_cpu(), system_cpu()

    def stop(self) -> dict[str, float]:
        own = own_cpu() - self._own
        busy, steal = (after - before for after, before in zip(system_cpu(), self._system, strict=True))
        groups = {k: m.stop() for k, m in self._groups.items()}
        return {"bench": own, "system": busy, "steal": steal, **groups}


@dataclass(slots=True)
class RssSampler:
    """RSS of this process, sampled on a thread every ``interval_s``."""

    interval_s: float = 0.1
    baseline: int = 0
    samples: list[int] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        gc.collect()
        self.baseline = psutil.Process().memory_info().rss
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        proc = psutil.Process()
        while not self._stop.wait(self.interval_s):
            self.samples.append(proc.memory_info().rss)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    @property
    def peak(self) -> int:
        return max(self.samples, default=self.baseline)

    @property
    def steady(self) -> int:
        """Median of the middle half of the samples (ramp-up and drain left out)."""
        n = len(self.samples)
        middle = self.samples[n // 4 : max(n // 4 + 1, 3 * n // 4)]
        return int(statistics.median(middle)) if middle else self.baseline


# --- publishers -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PublisherResult:
    index: int
    sent: int
    seconds: float
    cpu_s: float


def _settle(client: mqtt.Client, window: deque[mqtt.MQTTMessageInfo], limit: int) -> None:
    """Run the client's loop until at most ``limit`` messages of ``window`` are unacknowledged."""
    while True:
        while window and window[0].is_published():
            window.popleft()
        if len(window) <= limit:
            return
        client.loop(0.01)


def _publisher_main(
    broker_port: int,
    workload: Workload,
    index: int,
    count: int,
    inflight: int,
    ready: Any,
    go: MpEvent,
    results: Any,
) -> None:
    """One publisher process: build its messages, wait for go, publish at QoS 1 in windows.

    Single-threaded (``client.loop`` called inline, no ``loop_start``): with
    paho's network thread every publish wakes that thread through a socket
    pair, which cost ~4x the CPU per message and made the publishers, not the
    subscriber, the limit on this kind of machine.
    """
    messages = [message(workload, i) for i in range(index, workload.messages, count)]
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{index}-{uuid.uuid4().hex[:8]}")
    client.max_inflight_messages_set(inflight)
    client.connect("127.0.0.1", broker_port)
    while not client.is_connected():
        client.loop(0.1)
    ready.put(index)
    go.wait()
    cpu0, t0 = time.process_time(), time.monotonic()
    window: deque[mqtt.MQTTMessageInfo] = deque()
    for k, (topic, payload) in enumerate(messages):
        window.append(client.publish(topic, payload, qos=1))
        if k % 32 == 0:
            client.loop(0)  # read PUBACKs, send what the in-flight limit held back
        if len(window) >= inflight:
            _settle(client, window, inflight - 1)
    _settle(client, window, 0)
    results.put(PublisherResult(index, len(messages), time.monotonic() - t0, time.process_time() - cpu0))
    client.disconnect()
    client.loop(0.1)


class Publishers:
    """N publisher processes, connected and with their messages built, waiting for :meth:`go`."""

    def __init__(self, broker_port: int, workload: Workload, count: int, inflight: int) -> None:
        ctx = mp.get_context("spawn")
        self._ready = ctx.Queue()
        self._results = ctx.Queue()
        self._go = ctx.Event()
        self.procs = [
            ctx.Process(
                target=_publisher_main,
                args=(broker_port, workload, i, count, inflight, self._ready, self._go, self._results),
                name=f"bench-publisher-{i}",
                daemon=True,
            )
            for i in range(count)
        ]
        for p in self.procs:
            p.start()
        for _ in self.procs:
            self._ready.get(timeout=120)

    def go(self) -> float:
        started = time.monotonic()
        self._go.set()
        return started

    def join(self, timeout_s: float) -> list[PublisherResult]:
        results = [self._results.get(timeout=timeout_s) for _ in self.procs]
        for p in self.procs:
            p.join(10)
        return results

    def terminate(self) -> None:
        for p in self.procs:
            if p.is_alive():
                p.terminate()
                p.join(5)


# --- phases ---------------------------------------------------------------------------------


@dataclass(slots=True)
class Result:
    phase: str
    messages: int
    readings: int
    seconds: float
    cpu: dict[str, float] = field(default_factory=dict)
    note: str = ""
    memory: RssSampler | None = None

    @property
    def msgs_per_s(self) -> float:
        return self.messages / self.seconds if self.seconds > 0 else 0.0

    @property
    def readings_per_s(self) -> float:
        return self.readings / self.seconds if self.seconds > 0 else 0.0

    @property
    def other_cpu(self) -> float:
        """CPU seconds of processes that are not part of the benchmark (noise)."""
        ours = sum(self.cpu.get(k, 0.0) for k in ("bench", "publishers", "broker", "pg"))
        return max(0.0, self.cpu.get("system", 0.0) - ours)


@dataclass(slots=True)
class Bench:
    args: argparse.Namespace
    servers: Servers
    meter_ids: dict[tuple[str, str], int]
    single: Workload
    batched: Workload

    @property
    def url(self) -> str:
        return self.servers.database_url


def _staging_sql(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS bench_staging (meter_id int4 NOT NULL, ts timestamptz NOT NULL,"
        " value float8 NOT NULL) ON COMMIT DELETE ROWS"
    )


def copy_ceiling(bench: Bench, all_rows: list[Row], size: int) -> Result:
    """Binary COPY into a temp table + INSERT … ON CONFLICT DO NOTHING, one commit per ``size`` rows."""
    empty_tables(bench.url)
    cpu = PhaseCpu(bench.servers)
    with psycopg.connect(bench.url) as conn:
        _staging_sql(conn)
        conn.commit()
        cpu.start()
        t0 = time.monotonic()
        for start in range(0, len(all_rows), size):
            with conn.transaction(), conn.cursor() as cur:
                with cur.copy("COPY bench_staging (meter_id, ts, value) FROM STDIN (FORMAT BINARY)") as copy:
                    copy.set_types(["int4", "timestamptz", "float8"])
                    for row in all_rows[start : start + size]:
                        copy.write_row(row)
                cur.execute(
                    "INSERT INTO ingest.reading (meter_id, ts, value)"
                    " SELECT meter_id, ts, value FROM bench_staging ON CONFLICT (meter_id, ts) DO NOTHING"
                )
        seconds = time.monotonic() - t0
        used = cpu.stop()
    stored = count_readings(bench.url)
    return Result(f"COPY + ON CONFLICT ceiling, {size} rows/commit", 0, stored, seconds, used)


def writer_only(bench: Bench, all_rows: list[Row]) -> Result:
    """The same rows through ``collector.writer.write_batch``: the collector's SQL, no MQTT."""
    empty_tables(bench.url)
    size = bench.args.batch_size
    per_message = bench.batched.readings_per_message
    now = datetime.now(UTC)
    cpu = PhaseCpu(bench.servers)
    with psycopg.connect(bench.url, autocommit=True) as conn:
        cpu.start()
        t0 = time.monotonic()
        for start in range(0, len(all_rows), size):
            batch = Batch()
            for s in range(start, min(start + size, len(all_rows)), per_message):
                batch.add(Message("t", b"", now), Outcome(rows=all_rows[s : s + per_message]))
            write_batch(conn, batch, BatchStats("bench-writer", now, batch.readings, 0, None))
        seconds = time.monotonic() - t0
        used = cpu.stop()
    stored = count_readings(bench.url)
    return Result(f"collector.writer.write_batch, {size} rows/commit", 0, stored, seconds, used)


def classify_cost(bench: Bench, workload: Workload, limit: int = 20_000) -> float:
    """CPU µs per message of ``collector.validate.classify`` alone (registry from the database)."""
    with psycopg.connect(bench.url, autocommit=True) as conn:
        cache = load_registry_cache(conn)
    now = datetime.now(UTC)
    msgs = [
        Message(t, p, now) for t, p in (message(workload, i) for i in range(min(limit, workload.messages)))
    ]
    limits = Limits(prefix=PREFIX)
    t0 = time.process_time()
    for m in msgs:
        classify(m, cache, limits)
    return (time.process_time() - t0) / len(msgs) * 1e6


def _publish_and_time(
    bench: Bench, publishers: Publishers, done: Callable[[float], float | None]
) -> tuple[float, dict[str, float], bool]:
    """Release the publishers; ``done(deadline)`` blocks until all arrived (monotonic time) or None."""
    cpu = PhaseCpu(bench.servers)
    cpu.start()
    t0 = publishers.go()
    finished = done(t0 + bench.args.timeout)
    t_end = finished if finished is not None else time.monotonic()
    used = cpu.stop()
    results = publishers.join(bench.args.timeout)
    used["publishers"] = sum(r.cpu_s for r in results)
    used["publishing_s"] = max(r.seconds for r in results)
    return t_end - t0, used, finished is not None


def _mqtt_note(cpu: dict[str, float], messages: int) -> str:
    """Publishers' time (are they the limit?) and this process's CPU per message."""
    per_msg = cpu["bench"] / messages * 1e6 if messages else 0.0
    return f"publishers done after {cpu['publishing_s']:.2f} s; {per_msg:.0f} us CPU/msg in this process"


def _start_publishers(bench: Bench, workload: Workload) -> Publishers:
    args = bench.args
    return Publishers(bench.servers.broker.port, workload, args.publishers, args.inflight)


def bare_subscriber(bench: Bench, workload: Workload) -> Result:
    """Messages/s a paho MQTT 5 subscriber (QoS 1, auto-ack) only counting receives."""
    expected = workload.messages
    arrived = threading.Event()
    state = {"count": 0, "last": 0.0}

    def on_message(client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        state["count"] += 1
        if state["count"] == expected:
            state["last"] = time.monotonic()
            arrived.set()

    subscribed = threading.Event()
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=f"bench-sub-{uuid.uuid4().hex[:8]}", protocol=mqtt.MQTTv5
    )
    client.on_message = on_message
    client.on_subscribe = lambda *a: subscribed.set()
    client.connect("127.0.0.1", bench.servers.broker.port, clean_start=True)
    client.loop_start()
    client.subscribe(f"{PREFIX}/#", qos=1)
    subscribed.wait(10)
    publishers = _start_publishers(bench, workload)

    def done(deadline: float) -> float | None:
        return state["last"] if arrived.wait(max(0.0, deadline - time.monotonic())) else None

    try:
        seconds, cpu, ok = _publish_and_time(bench, publishers, done)
    finally:
        publishers.terminate()
        client.disconnect()
        client.loop_stop()
    received = int(state["count"])
    note = _mqtt_note(cpu, received)
    if not ok:
        note += f"; TIMEOUT: {received} of {expected} received"
    readings = received * workload.readings_per_message
    return Result(f"bare paho subscriber, {workload.name}", received, readings, seconds, cpu, note)


@contextmanager
def collector_thread(config: CollectorConfig) -> Iterator[Collector]:
    collector = Collector(config)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            collector.run()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run, name="collector", daemon=True)
    thread.start()
    if not collector.wait_connected(30):
        raise RuntimeError("the collector did not connect to the broker")
    time.sleep(0.5)  # connected is set when SUBSCRIBE is sent, not when it is acknowledged
    try:
        yield collector
    finally:
        collector.stop()
        thread.join(60)
        if errors:
            raise errors[0]


def _collector_config(bench: Bench) -> CollectorConfig:
    args = bench.args
    return CollectorConfig(
        database_url=bench.url,
        mqtt=MqttEndpoint.parse(bench.servers.broker.url),
        client_id=f"bench-collector-{uuid.uuid4().hex[:8]}",
        batch_size=args.batch_size,
        batch_latency_s=args.batch_latency,
        max_inflight=args.max_inflight,
    )


def _commit_note(collector: Collector, stored: int) -> str:
    sample = collector.metrics.registry.get_sample_value
    commits = sample("parkenergy_collector_batches_committed_total") or 0.0
    commit_s = sample("parkenergy_collector_commit_seconds_sum") or 0.0
    return (
        f"{commits:.0f} commits, {stored / max(commits, 1.0):,.0f} readings/commit,"
        f" {commit_s:.2f} s in write+commit"
    )


def _wait_committed(collector: Collector, expected: int, deadline: float) -> float | None:
    """Monotonic time of the commit that completed ``expected`` messages; None on timeout.

    Polls only every 0.1 s (a thread waking often steals the GIL from the
    collector) and takes the exact moment from the collector's last commit.
    """
    while collector.committed_messages < expected:
        if time.monotonic() > deadline:
            return None
        time.sleep(0.1)
    last = collector.health()["last_commit"]
    if not isinstance(last, str):
        return time.monotonic()
    ago = time.time() - datetime.fromisoformat(last).timestamp()
    return time.monotonic() - ago


def collector_phase(bench: Bench, workload: Workload) -> Result:
    """The collector end to end: first message → every message committed and acknowledged."""
    empty_tables(bench.url)
    publishers = _start_publishers(bench, workload)
    sampler = RssSampler()
    sampler.start()
    try:
        with collector_thread(_collector_config(bench)) as collector:

            def done(deadline: float) -> float | None:
                return _wait_committed(collector, workload.messages, deadline)

            seconds, cpu, ok = _publish_and_time(bench, publishers, done)
    finally:
        sampler.stop()
        publishers.terminate()
    stored = count_readings(bench.url)
    note = f"{_mqtt_note(cpu, workload.messages)}; {_commit_note(collector, stored)}"
    if not ok or stored != workload.readings:
        note += f"; INCOMPLETE: {stored} of {workload.readings} readings stored"
    result = Result(f"collector, {workload.name}", workload.messages, stored, seconds, cpu, note)
    result.memory = sampler
    return result


# --- report ---------------------------------------------------------------------------------


def machine() -> list[str]:
    freq = psutil.cpu_freq()
    mosq = shutil.which("mosquitto", path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin"]))
    mosquitto = "?"
    if mosq:
        out = subprocess.run([mosq, "-h"], capture_output=True, text=True, check=False).stdout
        mosquitto = out.splitlines()[0].replace("mosquitto version ", "") if out else "?"
    cpu = platform.processor() or platform.machine()
    return [
        f"cores: {psutil.cpu_count(logical=True)} logical / {psutil.cpu_count(logical=False)} physical"
        f" ({cpu}{f', {freq.current:.0f} MHz' if freq else ''}),"
        f" RAM {psutil.virtual_memory().total / 2**30:.1f} GiB",
        f"OS: {platform.platform()}",
        f"Python {platform.python_version()}, paho-mqtt {version('paho-mqtt')}, psycopg {version('psycopg')},"
        f" msgspec {version('msgspec')}, Mosquitto {mosquitto}",
    ]


def pg_info(url: str) -> str:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT current_setting('server_version'), current_setting('fsync'),"
            " current_setting('synchronous_commit'), current_setting('shared_buffers')"
        ).fetchone()
    assert row is not None
    return (
        f"PostgreSQL {row[0]} (embedded; fsync={row[1]}, synchronous_commit={row[2]},"
        f" shared_buffers={row[3]})"
    )


def best(runs: list[Result]) -> Result:
    """The least disturbed run: the shortest."""
    return min(runs, key=lambda r: r.seconds)


def table(phases: dict[str, list[Result]]) -> list[str]:
    head = (
        f"{'phase (best of runs)':<47} {'msgs':>6} {'readings':>8} {'s':>6} {'msgs/s':>7}"
        f" {'readings/s':>10} {'median r/s':>10}  CPU s bench/pub/broker/pg/other"
    )
    lines = [head, "-" * len(head)]
    for runs in phases.values():
        r = best(runs)
        c = r.cpu
        cpu = "/".join(f"{c[k]:.1f}" if k in c else "-" for k in ("bench", "publishers", "broker", "pg"))
        msgs = f"{r.msgs_per_s:7,.0f}" if r.messages else f"{'-':>7}"
        median = statistics.median(x.readings_per_s for x in runs)
        lines.append(
            f"{r.phase:<47} {r.messages or '-':>6} {r.readings:>8} {r.seconds:6.2f} {msgs}"
            f" {r.readings_per_s:10,.0f} {median:10,.0f}  {cpu}/{r.other_cpu:.1f}"
        )
        spread = ", ".join(f"{x.seconds:.2f}" for x in runs)
        notes = [f"runs (s): {spread}", *([r.note] if r.note else [])]
        if c.get("steal", 0.0) >= 0.05:
            notes.append(f"{c['steal']:.1f} s CPU stolen by the hypervisor")
        lines.append(f"{'':<4}{'; '.join(notes)}")
    return lines


def memory(phases: dict[str, list[Result]]) -> list[str]:
    mib = 2**20
    out = []
    for runs in phases.values():
        samplers = [r.memory for r in runs if r.memory is not None]
        if not samplers:
            continue
        s = max(samplers, key=lambda x: x.peak - x.baseline)
        out.append(
            f"memory, {runs[0].phase} (RSS of this process, worst of {len(samplers)} runs): baseline"
            f" {s.baseline / mib:.0f} MiB, steady {s.steady / mib:.0f} MiB"
            f" (+{(s.steady - s.baseline) / mib:.0f}), peak {s.peak / mib:.0f} MiB"
            f" (+{(s.peak - s.baseline) / mib:.0f})"
        )
    return out


def verdict(name: str, value: float, goal: float, unit: str = "") -> str:
    ok = "MET" if value >= goal else "MISSED"
    return f"{ok:<7}{name}: {value:,.2f}{unit} (goal >= {goal:,.2f}{unit})"


def verdicts(phases: dict[str, list[Result]]) -> list[str]:
    single, sub = best(phases["collector-single"]), best(phases["sub-single"])
    batch, ceiling = best(phases["collector-batch"]), best(phases["ceiling"])
    return [
        verdict(
            "collector single-reading msgs/s / bare subscriber msgs/s",
            single.msgs_per_s / sub.msgs_per_s if sub.msgs_per_s else 0.0,
            GOAL_SINGLE_RATIO,
        ),
        verdict("collector 100-batch readings/s", batch.readings_per_s, GOAL_BATCH_READINGS, " /s"),
        verdict(
            "collector 100-batch readings/s / COPY ceiling rows/s",
            batch.readings_per_s / ceiling.readings_per_s if ceiling.readings_per_s else 0.0,
            GOAL_BATCH_RATIO,
        ),
    ]


# --- main -----------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Measure the collector against raw COPY and a bare MQTT subscriber, in one run.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--messages", type=int, default=60_000, help="single-reading messages per phase")
    p.add_argument("--batches", type=int, default=3_000, help="batch messages per phase")
    p.add_argument("--batch-readings", type=int, default=100, help="readings per batch message")
    p.add_argument("--repeat", type=int, default=3, help="runs of each phase, interleaved; best is reported")
    p.add_argument("--publishers", type=int, default=2, help="publisher processes")
    p.add_argument("--inflight", type=int, default=2_000, help="unacknowledged QoS 1 messages per publisher")
    p.add_argument("--enterprises", type=int, default=200, help="enterprises in the registry")
    p.add_argument("--meters-per-enterprise", type=int, default=5, help="meters of each enterprise")
    p.add_argument(
        "--batch-size", type=int, default=5_000, help="collector batch_size (and ceiling rows/commit)"
    )
    p.add_argument(
        "--ceiling-large",
        type=int,
        default=50_000,
        help="also measure the COPY ceiling at this many rows/commit (0: skip); for information",
    )
    p.add_argument("--batch-latency", type=float, default=0.1, help="collector batch_latency_s")
    p.add_argument("--max-inflight", type=int, default=20_000, help="collector MQTT 5 Receive Maximum")
    p.add_argument("--timeout", type=float, default=120.0, help="per phase [s]")
    p.add_argument("--only", choices=["all", "single", "batch"], default="all", help="workloads to run")
    p.add_argument("--keep-dir", action="store_true", help="keep the servers' data directory")
    p.add_argument("-v", "--verbose", action="store_true", help="log at INFO (collector included)")
    args = p.parse_args(argv)
    if not 1 <= args.inflight <= 65_535:
        p.error("--inflight must be 1..65535 (paho refuses more unacknowledged QoS 1 messages)")
    if min(args.messages, args.batches, args.batch_readings, args.publishers, args.repeat) < 1:
        p.error("sizes, --publishers and --repeat must be at least 1")
    return args


def _workloads(args: argparse.Namespace) -> tuple[Workload, Workload]:
    per = args.meters_per_enterprise
    single = Workload("single-reading msgs", args.messages, 1, args.enterprises, per)
    batched = Workload(
        f"{args.batch_readings}-reading batch msgs", args.batches, args.batch_readings, args.enterprises, per
    )
    return single, batched


def _round(bench: Bench, phases: dict[str, list[Result]], all_rows: list[Row]) -> None:
    """One run of every selected phase, in a fixed order."""
    steps: list[tuple[str, Callable[[], Result]]] = []
    if bench.args.only in ("all", "batch"):
        steps += [
            ("ceiling", lambda: copy_ceiling(bench, all_rows, bench.args.batch_size)),
            ("writer", lambda: writer_only(bench, all_rows)),
        ]
        if bench.args.ceiling_large:
            steps.append(("ceiling-large", lambda: copy_ceiling(bench, all_rows, bench.args.ceiling_large)))
    if bench.args.only in ("all", "single"):
        steps += [
            ("sub-single", lambda: bare_subscriber(bench, bench.single)),
            ("collector-single", lambda: collector_phase(bench, bench.single)),
        ]
    if bench.args.only in ("all", "batch"):
        steps += [
            ("sub-batch", lambda: bare_subscriber(bench, bench.batched)),
            ("collector-batch", lambda: collector_phase(bench, bench.batched)),
        ]
    for key, step in steps:
        gc.collect()
        phases.setdefault(key, []).append(step())


def run(args: argparse.Namespace, base: Path) -> list[str]:
    single, batched = _workloads(args)
    load_before = os.getloadavg()
    with private_servers(base) as servers:
        registry = registry_csv(base / "registry.csv", args.enterprises, args.meters_per_enterprise)
        bench = Bench(args, servers, prepare_database(servers.database_url, registry), single, batched)
        all_rows = rows(batched, bench.meter_ids) if args.only != "single" else []
        gc.collect()
        gc.freeze()  # the benchmark's own data must not lengthen the collector's GC passes
        phases: dict[str, list[Result]] = {}
        for _ in range(args.repeat):
            _round(bench, phases, all_rows)
        classify_us = {w.name: classify_cost(bench, w) for w in (single, batched)}
        postgres = pg_info(servers.database_url)
    load_after = os.getloadavg()
    out = [
        f"parkenergy ingest benchmark, {datetime.now().astimezone():%Y-%m-%d %H:%M %Z}",
        *machine(),
        postgres,
        f"load average (1 min) before/after: {load_before[0]:.2f} / {load_after[0]:.2f}",
        f"workload: {single.meters} meters ({args.enterprises} enterprises x {args.meters_per_enterprise});"
        f" {args.messages} single-reading msgs, {args.batches} x {args.batch_readings}-reading msgs;"
        f" {args.publishers} publisher processes (paho, QoS 1, {args.inflight} in flight each)",
        f"collector: in-process on a thread; batch_size {args.batch_size},"
        f" batch_latency_s {args.batch_latency}, receive maximum {args.max_inflight};"
        f" {args.repeat} interleaved runs per phase",
        "",
        *table(phases),
        "",
        *(f"classify() alone, {name}: {us:,.1f} us CPU per message" for name, us in classify_us.items()),
        *memory(phases),
        "",
    ]
    if {"ceiling", "sub-single", "collector-single", "collector-batch"} <= phases.keys():
        out += verdicts(phases)
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:
        logging.getLogger("collector").setLevel(logging.ERROR)  # "MQTT disconnected" at each stop
    base = Path(tempfile.mkdtemp(prefix="parkenergy-bench-"))
    base.chmod(0o711)  # as root, PostgreSQL runs as a service user that must traverse it
    try:
        lines = run(args, base)
    finally:
        if not args.keep_dir:
            shutil.rmtree(base, ignore_errors=True)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
