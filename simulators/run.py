"""A simulation run: the park, its files, and its readings in backfill or live mode.

Use from Python::

    from simulators import Simulation, SimulationConfig
    sim = Simulation(SimulationConfig(enterprises=40, seed=1, start=..., end=...))
    sim.write_registry(Path("out"))          # registry.csv, meter_events.csv
    sim.write_economics(Path("out/economics"))
    with BulkPublisher(endpoint) as pub:  # or any callable taking a Message
        stats = sim.backfill(pub.publish, truth=open("truth.jsonl", "w"), progress=print)

Backfill sends each block of days (a week by default) as soon as the broker
acknowledges; live mode sends each message when the simulated clock reaches it.
Both take the same :class:`simulators.generator.DayOutput` of every day, so the
same seed sends the same readings and writes the same ground truth.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TextIO

import numpy as np

from simulators.economics import Economics, build_economics
from simulators.faults import FaultRates
from simulators.files import write_economics, write_registry
from simulators.generator import DayOutput, Generator, Replacement, TruthRecord, year_of, year_tables
from simulators.park import Park, build_park
from simulators.timebase import CST, DAY_S, EPOCH, day_of, day_start_s
from simulators.wire import Encoder, Message

log = logging.getLogger(__name__)

Sink = Callable[[Message], None]


@dataclass(frozen=True, slots=True)
class SimulationConfig:
    """What to simulate.

    Parameters
    ----------
    start, end : datetime
        Event-time window ``[start, end)`` of the readings (UTC+8 aware); ``end``
        None runs a live simulation until stopped.
    batch_readings : int
        Readings per gateway batch message in backfill [-].
    """

    enterprises: int = 40
    seed: int = 1
    start: datetime = EPOCH
    end: datetime | None = None
    rates: FaultRates = field(default_factory=FaultRates)
    prefix: str = "parkenergy/v1"
    batch_readings: int = 100

    def __post_init__(self) -> None:
        if self.start < EPOCH:
            raise ValueError(f"start must not be before {EPOCH.isoformat()}")
        if self.end is not None and self.end <= self.start:
            raise ValueError("end must be after start")
        if self.seed < 0:
            raise ValueError("seed must be 0 or more")


@dataclass(frozen=True, slots=True)
class Progress:
    days_done: int
    days_total: int
    readings: int
    messages: int


@dataclass(slots=True)
class RunStats:
    """What a run sent; ``stored`` and ``quarantined`` are what the collector will make of it."""

    days: int = 0
    messages: int = 0
    readings: int = 0
    stored: int = 0
    duplicates: int = 0
    quarantined: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    statuses: int = 0
    seconds: float = 0.0

    def count(self, message: Message) -> None:
        self.messages += 1
        if message.status is not None:
            self.statuses += 1
            return
        self.readings += message.readings
        self.stored += message.stored
        if message.reason is not None:
            self.quarantined[message.reason] += 1
        elif message.stored == 0:
            self.duplicates += message.readings

    def as_dict(self) -> dict[str, object]:
        return {
            "days": self.days,
            "messages": self.messages,
            "readings": self.readings,
            "stored": self.stored,
            "duplicates": self.duplicates,
            "quarantined": dict(sorted(self.quarantined.items())),
            "faults": dict(sorted(self.faults.items())),
            "statuses": self.statuses,
            "seconds": round(self.seconds, 3),
        }


class Simulation:
    """A park, its generator and encoder, for one window of time."""

    def __init__(self, config: SimulationConfig, park: Park | None = None) -> None:
        self.config = config
        self.park = park or build_park(config.enterprises, config.seed)
        self.generator = Generator(self.park, config.rates, config.prefix)
        self.encoder = Encoder(self.park, config.prefix, config.batch_readings)
        self.start_s = int(config.start.timestamp())
        self.end_s = int(config.end.timestamp()) if config.end is not None else None

    @property
    def first_day(self) -> int:
        return day_of(self.config.start)

    @property
    def lookback_day(self) -> int:
        """First day to generate: the day before the start, whose interval readings end at its midnight."""
        return max(self.first_day - 1, 0)

    @property
    def last_day(self) -> int | None:
        """Day number after the last (partial) day of the window; None when open."""
        if self.end_s is None:
            return None
        return (self.end_s - 1 - day_start_s(0)) // DAY_S + 1

    # -- files -----------------------------------------------------------------------------

    def replacements(self, until_s: int | None = None) -> list[Replacement]:
        """Meter replacements from the epoch to ``until_s`` (default: the end, or now)."""
        limit = until_s if until_s is not None else self.end_s or int(time.time())
        day = (limit - day_start_s(0)) // DAY_S + 1
        return [r for r in self.generator.replacements_until(day) if r.effective_s < limit]

    def write_registry(self, directory: Path) -> tuple[Path, Path]:
        """``registry.csv`` and ``meter_events.csv`` (replacements up to the end)."""
        return write_registry(self.park, directory, self.replacements())

    def economics(self) -> Economics:
        """Monthly statistics from 2022 to the last complete month before the end (or now)."""
        limit = self.end_s or int(time.time())
        last_day = (limit - day_start_s(0)) // DAY_S
        return build_economics(
            self.park, year_tables(self.park, self.config.rates, year_of(max(last_day - 1, 0))), last_day
        )

    def write_economics(self, directory: Path) -> list[Path]:
        return write_economics(self.park, self.economics(), directory)

    # -- days ------------------------------------------------------------------------------

    def day(self, day: int) -> DayOutput:
        """Day ``day`` clipped to the window (readings, faults and status changes inside it)."""
        out = self.generator.day(day)
        lo, hi = self.start_s, self.end_s if self.end_s is not None else np.iinfo(np.int64).max
        if day_start_s(day) >= lo and day_start_s(day + 1) <= hi:
            return out
        inside = (out.ts >= lo) & (out.ts < hi)
        out.meter, out.ts, out.value = out.meter[inside], out.ts[inside], out.value[inside]
        out.group, out.duplicate = out.group[inside], out.duplicate[inside]
        out.specials = [s for s in out.specials if lo <= s.due_s - 5 < hi]
        out.statuses = [s for s in out.statuses if lo <= s.at_s < hi]
        out.truth = [t for t in out.truth if lo <= t.start_s < hi]
        return out

    @staticmethod
    def _emit_truth(
        faults: list[tuple[int, int, TruthRecord]], until_s: float, truth: TextIO | None, stats: RunStats
    ) -> None:
        """Write the truth records that start before ``until_s``, in order of start (then generation)."""
        while faults and faults[0][0] < until_s:
            record = heapq.heappop(faults)[2]
            stats.faults[record.kind.value] += 1
            if truth is not None:
                truth.write(record.as_json() + "\n")

    # -- backfill --------------------------------------------------------------------------

    def messages(self, block_days: int = 7) -> Iterator[tuple[Message, list[DayOutput]]]:
        """Backfill messages in sending order, each with the days generated just before it (or [])."""
        if self.last_day is None:
            raise ValueError("a backfill needs an end")
        pending: list[tuple[int, int, Message]] = []
        order = itertools.count()
        for first in range(self.lookback_day, self.last_day, block_days):
            last = min(first + block_days, self.last_day)
            days = [self.day(d) for d in range(first, last)]
            for m in self.encoder.backfill(days):
                heapq.heappush(pending, (m.due_s, next(order), m))
            fresh: list[DayOutput] = days
            horizon = day_start_s(last)
            while pending and pending[0][0] < horizon:
                yield heapq.heappop(pending)[2], fresh
                fresh = []
            if fresh:
                yield _NOTHING, fresh
        while pending:
            yield heapq.heappop(pending)[2], []

    def backfill(
        self,
        sink: Sink | None,
        *,
        truth: TextIO | None = None,
        progress: Callable[[Progress], None] | None = None,
        block_days: int = 7,
        announce_online: bool = True,
    ) -> RunStats:
        """Send the window's history as fast as ``sink`` takes it (``sink`` None: generate only).

        Parameters
        ----------
        sink : callable or None
            Receives every :class:`Message` in order, e.g. ``BulkPublisher.publish``.
        truth : text file or None
            Ground truth, one JSON line per injected fault.
        progress : callable or None
            Called after each block of days.
        announce_online : bool
            At the end, publish the retained gateway status ``online`` of every enterprise.
        """
        started = time.monotonic()
        stats = RunStats()
        total = (self.last_day or 0) - self.first_day
        faults: list[tuple[int, int, TruthRecord]] = []
        order = itertools.count()
        for message, days in self.messages(block_days):
            for out in days:
                stats.days += out.day >= self.first_day
                for record in out.truth:
                    heapq.heappush(faults, (record.start_s, next(order), record))
            if days:
                # A day's records start at most a day before it (a daily register's rollover).
                self._emit_truth(faults, day_start_s(days[-1].day) - DAY_S, truth, stats)
            if days and progress is not None:
                progress(Progress(stats.days, total, stats.readings, stats.messages))
            if message is _NOTHING:
                continue
            stats.count(message)
            if sink is not None:
                sink(message)
        self._emit_truth(faults, float("inf"), truth, stats)
        if announce_online:
            for e in self.park.enterprises:
                online = Message(
                    f"{self.config.prefix}/{e.code}/_status",
                    b"online",
                    self.end_s or 0,
                    e.index,
                    status="online",
                    retain=True,
                )
                stats.count(online)
                if sink is not None:
                    sink(online)
        stats.seconds = time.monotonic() - started
        if progress is not None:
            progress(Progress(stats.days, total, stats.readings, stats.messages))
        return stats

    # -- live ------------------------------------------------------------------------------

    def live(
        self,
        sink: Sink,
        *,
        speed: float = 1.0,
        truth: TextIO | None = None,
        stop: threading.Event | None = None,
        clock: Callable[[], float] = time.time,
        on_replacement: Callable[[list[Replacement]], None] | None = None,
        progress: Callable[[Progress], None] | None = None,
    ) -> RunStats:
        """Send each message when the simulated clock reaches its time.

        The simulated clock starts at the window's start and runs ``speed`` times
        faster than the wall clock, but never ahead of it (the collector refuses
        readings from the future): a past start is replayed quickly, then the run
        continues in real time. Ends at the window's end (all pending messages are
        then sent) or when ``stop`` is set.
        """
        if speed <= 0:
            raise ValueError("speed must be positive")
        stop = stop or threading.Event()
        started, wall0 = time.monotonic(), clock()
        stats = RunStats()
        pending: list[tuple[int, int, Message]] = []
        faults: list[tuple[int, int, TruthRecord]] = []
        order = itertools.count()
        next_day = self.lookback_day
        end = self.end_s
        total = (self.last_day or next_day) - self.first_day

        def now_s() -> float:
            wall = clock()
            return min(self.start_s + (wall - wall0) * speed, wall)

        while not stop.is_set():
            t = now_s()
            while day_start_s(next_day) <= t + DAY_S and (self.last_day is None or next_day < self.last_day):
                out = self.day(next_day)
                stats.days += out.day >= self.first_day
                for record in out.truth:
                    heapq.heappush(faults, (record.start_s, next(order), record))
                if out.replacements and on_replacement is not None:
                    on_replacement(out.replacements)
                for m in self.encoder.live([out]):
                    heapq.heappush(pending, (m.due_s, next(order), m))
                next_day += 1
                if progress is not None:
                    progress(Progress(stats.days, total, stats.readings, stats.messages))
            finished = end is not None and t >= end
            # Truth once the fault has begun (days are generated a day ahead).
            self._emit_truth(faults, float("inf") if finished else t + 1, truth, stats)
            while pending and (pending[0][0] <= t or finished):
                message = heapq.heappop(pending)[2]
                stats.count(message)
                sink(message)
            if finished and not pending:
                break
            wait = (pending[0][0] - t) / speed if pending else 1.0
            stop.wait(min(max(wait, 0.01), 0.5))
        stats.seconds = time.monotonic() - started
        return stats


_NOTHING = Message("", b"", 0, -1)


def now_cst() -> datetime:
    """Now, in UTC+8, on the second."""
    return datetime.now(CST).replace(microsecond=0)
