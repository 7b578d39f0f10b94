"""SHARED session fixture: a small simulated park through the real pipeline, for any test to read.

``simulated_park`` (session scope) builds ONE database on the session's ``pg_server``:

1. :class:`simulators.Simulation` of :data:`ENTERPRISES` enterprises, seed :data:`SEED`,
   default fault rates, readings from the first day of the month three months before the
   current one up to today's local midnight (Asia/Shanghai);
2. its ``registry.csv`` / ``meter_events.csv`` loaded, as ``parkenergy registry load`` does;
3. every reading published through a private mosquitto to the real collector;
4. the ``energy`` job (:func:`analytics.jobs.run_job`);
5. the economics files (value added, deflators, 2022 baseline, output) imported as the
   demo does (:func:`parkenergy.pipeline.import_economics`) — the 2022 base comes from the
   baseline statistics, so the readings need not start in 2022;
6. the ``forecast`` job (it needs 24 usable months per series, so with three months of
   readings it stores a run without series; the run itself is still recorded);
7. the detector jobs (:data:`analytics.detection.GROUPS`) once a day over the last
   :data:`DETECTOR_DAYS` days and at the end, so the alert state holds what they found.

Tests must treat the database as READ-ONLY (other test modules share it). A test that
changes data needs its own database. Import the fixtures in ``tests/conftest.py`` with
``from tests.simulated_park import simulated_park  # noqa: F401``.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from analytics.detection import GROUPS
from analytics.jobs import run_job
from parkenergy import pipeline
from parkenergy.embedded import EmbeddedBroker, EmbeddedPostgres, find_mosquitto
from simulators import FaultRates, Simulation, SimulationConfig
from simulators.timebase import CST
from tests.harness import collector_config, running_collector
from tests.sim_support import load_simulated_registry, publish_backfill

__all__ = ["DETECTOR_DAYS", "ENTERPRISES", "SEED", "SimulatedPark", "simulated_park", "simulation_window"]

ENTERPRISES = 5
SEED = 20250601
MONTHS = 3
DETECTOR_DAYS = 35


@dataclass(frozen=True, slots=True)
class SimulatedPark:
    """What ``simulated_park`` built.

    Attributes
    ----------
    database_url : str
        The shared database (read it; do not change it).
    config : SimulationConfig
        The simulation (``start``/``end`` are local midnights, ``end`` exclusive);
        ``Simulation(config)`` rebuilds the same park, economics and truth.
    registry_dir : Path
        Holds ``registry.csv`` and ``meter_events.csv``.
    economics_dir : Path
        Holds ``value_added``, ``deflators``, ``baseline_2022``, ``output`` (``.csv`` and
        ``.xlsx``) and ``truth_intensity.csv``.
    truth_path : Path
        Ground truth of the injected faults (JSONL).
    run_at : datetime
        The ``now`` given to the jobs (the simulation's end).
    stored_readings : int
        Readings the simulator expects the collector to store.
    build_s : float
        Wall time of building the fixture [s].
    """

    database_url: str
    config: SimulationConfig
    registry_dir: Path
    economics_dir: Path
    truth_path: Path
    run_at: datetime
    stored_readings: int
    build_s: float

    @property
    def registry_csv(self) -> Path:
        return self.registry_dir / "registry.csv"

    @property
    def truth_intensity_csv(self) -> Path:
        return self.economics_dir / "truth_intensity.csv"

    def simulation(self) -> Simulation:
        """A fresh :class:`Simulation` of the same configuration (for its ``economics()``)."""
        return Simulation(self.config)


def simulation_window(today: datetime | None = None) -> tuple[datetime, datetime]:
    """``[start, end)``: the first day of the month :data:`MONTHS` months back, to today's midnight (CST)."""
    now = (today or datetime.now(CST)).astimezone(CST)
    end = now.replace(hour=0, minute=0, second=0, microsecond=0)
    year, month = end.year, end.month - MONTHS
    while month < 1:
        year, month = year - 1, month + 12
    return datetime(year, month, 1, tzinfo=CST), end


def _run(url: str, job: str, now: datetime) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        outcome = run_job(conn, job, now)
    assert outcome.status == "ok", f"job {job}: {outcome.status}: {outcome.summary}"


def _replay_detectors(url: str, end: datetime) -> None:
    """The detector jobs once a day over the last :data:`DETECTOR_DAYS` days, then at ``end``:
    the alert state as the service would have built it (the detectors read event time ≤ now)."""
    for day in range(DETECTOR_DAYS, -1, -1):
        now = end - timedelta(days=day)
        for group in GROUPS:
            _run(url, group, now)


@pytest.fixture(scope="session")
def simulated_park(
    pg_server: EmbeddedPostgres, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SimulatedPark]:
    """A database holding a simulated park's readings, energy, economics and a forecast run (shared)."""
    if find_mosquitto() is None:
        pytest.skip("no mosquitto binary on PATH (apt-get install mosquitto)")
    started = time.monotonic()
    base = tmp_path_factory.mktemp("simulated_park")
    start, end = simulation_window()
    config = SimulationConfig(enterprises=ENTERPRISES, seed=SEED, start=start, end=end, rates=FaultRates())
    sim = Simulation(config)
    registry_dir, economics_dir, truth_path = base / "registry", base / "economics", base / "faults.jsonl"
    sim.write_registry(registry_dir)
    sim.write_economics(economics_dir)
    url = pg_server.create_database("simulated_park")
    load_simulated_registry(url, registry_dir)
    broker = EmbeddedBroker(base / "mqtt")
    broker.start()
    try:
        with running_collector(collector_config(url, broker.url, client_id="simulated-park")) as collector:
            truth = io.StringIO()
            stats = publish_backfill(sim, collector, broker.url, truth, max_inflight=500, timeout_s=120)
        truth_path.write_text(truth.getvalue(), encoding="utf-8")
    finally:
        broker.stop()
    _run(url, "energy", end)
    pipeline.import_economics(url, economics_dir, "simulated_park")
    _run(url, "forecast", end + timedelta(seconds=1))
    _replay_detectors(url, end)
    park = SimulatedPark(
        database_url=url,
        config=config,
        registry_dir=registry_dir,
        economics_dir=economics_dir,
        truth_path=truth_path,
        run_at=end,
        stored_readings=stats.stored,
        build_s=time.monotonic() - started,
    )
    try:
        yield park
    finally:
        if pg_server.is_running():
            pg_server.drop_database("simulated_park")
