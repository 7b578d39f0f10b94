"""Simulator benchmark: the generator alone, then a whole backfill through broker and collector.

1. Generator alone (no broker, no encoding): ``Generator.day`` over consecutive
   days, readings per second, for the default park (40 enterprises) and a large
   one (700 enterprises), and the same with the gateway-batch JSON encoding
   (``Encoder.backfill``), which is what a backfill does before publishing.
2. Backfill end to end: a private Mosquitto (:class:`parkenergy.embedded.EmbeddedBroker`)
   and a private PostgreSQL (:class:`parkenergy.embedded.EmbeddedPostgres`),
   migrated, with the simulator's registry loaded; the collector
   (``collector.service.Collector``, default settings) on a thread of this
   process; the simulator in a separate process (``Simulation.backfill`` into a
   ``BulkPublisher``). Timed from the simulator's start until the collector has
   committed every message; then ``count(*)`` of ``ingest.reading`` must equal
   the readings the simulator says the collector stores.

Prints the figures; always exits 0 (a measurement, not a test).

Run: ``.venv/bin/python benchmarks/simulate.py [--help]``
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing as mp
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil
import psycopg

from collector.service import Collector, CollectorConfig
from parkdata.migrate import migrate
from parkdata.registry_file import read_meter_events_file, read_registry_file
from parkdata.registry_store import store_meter_events, store_registry
from parkdata.settings import MqttEndpoint
from parkenergy.embedded import EmbeddedBroker, EmbeddedPostgres
from simulators import FaultRates, Generator, Simulation, SimulationConfig, build_park
from simulators.publish import BulkPublisher
from simulators.timebase import CST, day_of
from simulators.wire import Encoder

GOAL_GENERATOR = 500_000.0
GOAL_BACKFILL_S = 600.0


def generator_rate(enterprises: int, days: int, encode: bool, seed: int = 1) -> tuple[int, float]:
    """(readings, seconds) of generating ``days`` days from 2023-01-01 (year tables built before timing)."""
    park = build_park(enterprises, seed)
    gen = Generator(park, FaultRates())
    first = day_of(datetime(2023, 1, 1, tzinfo=CST))
    gen.day(first - 1)  # build the year tables and the replacement history first
    encoder = Encoder(park)
    readings = 0
    started = time.perf_counter()
    block: list[Any] = []
    for d in range(first, first + days):
        out = gen.day(d)
        readings += len(out.meter)
        if encode:
            block.append(out)
            if len(block) == 7:
                encoder.backfill(block)
                block = []
    if block:
        encoder.backfill(block)
    return readings, time.perf_counter() - started


def _simulator_main(config: SimulationConfig, broker_url: str, results: Any) -> None:
    sim = Simulation(config)
    publisher = BulkPublisher(MqttEndpoint.parse(broker_url), max_inflight=1000)
    cpu0 = time.process_time()
    try:
        stats = sim.backfill(publisher.publish)
    finally:
        publisher.close()
    results.put({**stats.as_dict(), "cpu_s": time.process_time() - cpu0})


def backfill_end_to_end(args: argparse.Namespace, base: Path) -> list[str]:
    end = datetime.now(CST).replace(microsecond=0) if args.end == "now" else datetime.fromisoformat(args.end)
    start = datetime.fromisoformat(args.start).replace(tzinfo=CST)
    config = SimulationConfig(
        enterprises=args.enterprises, seed=args.seed, start=start, end=end, rates=FaultRates()
    )
    pg = EmbeddedPostgres(base / "pg")
    broker = EmbeddedBroker(base / "mqtt", persistence=False)
    pg.start()
    try:
        broker.start()
        try:
            url = pg.create_database("simbench")
            with psycopg.connect(url, autocommit=True) as conn:
                migrate(conn)
            sim = Simulation(config)
            registry, events = sim.write_registry(base / "registry")
            with psycopg.connect(url) as conn:
                store_registry(conn, read_registry_file(registry))
                store_meter_events(conn, read_meter_events_file(events))
            collector = Collector(
                CollectorConfig(database_url=url, mqtt=MqttEndpoint.parse(broker.url), client_id="simbench")
            )
            worker = threading.Thread(target=collector.run, name="collector", daemon=True)
            worker.start()
            assert collector.wait_connected(30)
            ctx = mp.get_context("spawn")
            results = ctx.Queue()
            proc = ctx.Process(target=_simulator_main, args=(config, broker.url, results), name="simulator")
            pg_proc = psutil.Process(pg.pid) if pg.pid else None
            pg_cpu0 = sum(p.cpu_times().user + p.cpu_times().system for p in _tree(pg_proc))
            own0 = time.process_time()
            started = time.monotonic()
            proc.start()
            stats = results.get(timeout=args.timeout)
            published = time.monotonic() - started
            proc.join(30)
            deadline = time.monotonic() + args.timeout
            while collector.committed_messages < stats["messages"] and time.monotonic() < deadline:
                time.sleep(0.2)
            elapsed = time.monotonic() - started
            own_cpu = time.process_time() - own0
            pg_cpu = sum(p.cpu_times().user + p.cpu_times().system for p in _tree(pg_proc)) - pg_cpu0
            collector.stop()
            worker.join(60)
            with psycopg.connect(url, autocommit=True) as conn:
                row = conn.execute("SELECT count(*) FROM ingest.reading").fetchone()
                stored = int(str(row[0])) if row else 0
                quarantined = conn.execute("SELECT count(*) FROM ingest.quarantine").fetchone()
        finally:
            broker.stop()
    finally:
        pg.stop()
    ok = stored == stats["stored"] and collector.committed_messages >= stats["messages"]
    verdict = "met" if elapsed < GOAL_BACKFILL_S and ok else "NOT met"
    return [
        f"backfill {start:%Y-%m-%d} → {end:%Y-%m-%d %H:%M}, {args.enterprises} enterprises, seed {args.seed},"
        " default fault rates:",
        f"  simulator sent {stats['messages']:,} messages, {stats['readings']:,} readings"
        f" ({stats['stored']:,} to store, {stats['duplicates']:,} duplicates,"
        f" {sum(stats['quarantined'].values())} faulty messages) in {published:.1f} s"
        f" ({stats['readings'] / published:,.0f} readings/s; simulator CPU {stats['cpu_s']:.1f} s)",
        f"  collector committed everything after {elapsed:.1f} s: {stored / elapsed:,.0f} readings/s stored;"
        f" ingest.reading holds {stored:,} rows (expected {stats['stored']:,}),"
        f" quarantine {quarantined[0] if quarantined else '?'} rows",
        f"  CPU: collector process {own_cpu:.1f} s, PostgreSQL {pg_cpu:.1f} s",
        f"  goal: < {GOAL_BACKFILL_S:.0f} s end to end → {verdict}" + ("" if ok else " (readings missing!)"),
    ]


def _tree(proc: psutil.Process | None) -> list[psutil.Process]:
    if proc is None:
        return []
    try:
        return [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return [proc]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--enterprises", type=int, default=40, help="enterprises of the backfill [40]")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--start", default="2022-01-01", help="backfill start [2022-01-01]")
    p.add_argument("--end", default="now", help="backfill end, ISO time or 'now' [now]")
    p.add_argument(
        "--generator-days", type=int, default=365, help="days timed for the 40-enterprise generator"
    )
    p.add_argument("--large", type=int, default=700, help="enterprises of the large generator run [700]")
    p.add_argument("--large-days", type=int, default=28, help="days timed for the large generator run [28]")
    p.add_argument("--only", choices=("all", "generator", "backfill"), default="all")
    p.add_argument("--timeout", type=float, default=1800.0, help="give up after this many seconds")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("collector").setLevel(logging.ERROR)
    lines = [
        f"parkenergy simulator benchmark, {datetime.now().astimezone():%Y-%m-%d %H:%M %Z}",
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        f"load average (1 min) at start: {os.getloadavg()[0]:.2f}",
    ]
    if args.only in ("all", "generator"):
        for enterprises, days in ((40, args.generator_days), (args.large, args.large_days)):
            for encode in (False, True):
                n, s = generator_rate(enterprises, days, encode)
                what = "generate + encode JSON batches" if encode else "generate (no broker, no encoding)"
                verdict = (
                    ""
                    if encode
                    else f"  goal ≥ {GOAL_GENERATOR:,.0f}/s: {'met' if n / s >= GOAL_GENERATOR else 'NOT'}"
                )
                lines.append(
                    f"{enterprises} enterprises × {days} days, {what}: {n:,} readings in {s:.2f} s ="
                    f" {n / s:,.0f} readings/s{verdict}"
                )
    if args.only in ("all", "backfill"):
        base = Path(tempfile.mkdtemp(prefix="parkenergy-simbench-"))
        base.chmod(0o711)  # as root, PostgreSQL runs as a service user that must traverse it
        try:
            lines += backfill_end_to_end(args, base)
        finally:
            shutil.rmtree(base, ignore_errors=True)
    lines.append(f"load average (1 min) at end: {os.getloadavg()[0]:.2f}")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
