"""The analytics service: APScheduler 3 running the registered jobs on their schedules.

One service at a time per database: the service holds a PostgreSQL session advisory lock
for its lifetime (a second instance exits at once). Each run of a job opens its own
connection and goes through :func:`analytics.jobs.run_job` (a per-job lock, a record in
``analytics.job_run``), so ``parkenergy analyze run`` beside a running service is safe.
Restart-safe: jobs keep their state in the database and are idempotent; after a restart
each job simply runs again. The service checks its lock connection before every run and
stops if it lost the lock and cannot take it back (e.g. another instance took over while
the database restarted).
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from apscheduler.schedulers.background import BackgroundScheduler  # type: ignore[import-untyped]
from apscheduler.triggers.interval import IntervalTrigger  # type: ignore[import-untyped]

from analytics.jobs import Job, get, jobs, run_job

__all__ = ["AlreadyRunningError", "ScheduledJob", "Service", "service_lock_key"]

log = logging.getLogger(__name__)


class AlreadyRunningError(RuntimeError):
    """Another analytics service holds the database lock."""


def service_lock_key() -> int:
    """Advisory lock key of the analytics service (stable 64-bit hash)."""
    return int.from_bytes(hashlib.sha256(b"parkenergy.analytics.service").digest()[:8], "big", signed=True)


@dataclass(frozen=True, slots=True)
class ScheduledJob:
    """A job and its period [s]."""

    job: Job
    interval_s: float


class Service:
    """The scheduler service. ``start()`` takes the lock and schedules; ``stop()`` ends it."""

    def __init__(self, database_url: str, schedule: Sequence[ScheduledJob] | None = None) -> None:
        self._url = database_url
        self._schedule = (
            list(schedule) if schedule is not None else [ScheduledJob(j, j.interval_s) for j in jobs()]
        )
        self._lock_conn: psycopg.Connection[Any] | None = None
        self._scheduler = BackgroundScheduler(
            timezone="Asia/Shanghai",
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 60},
        )
        self._guard = threading.Lock()
        self.stopped = threading.Event()

    @staticmethod
    def for_names(database_url: str, names: Sequence[str], interval_s: float | None = None) -> Service:
        """A service running the named jobs (all if empty), optionally with one period for all."""
        chosen = [get(n) for n in names] if names else jobs()
        return Service(database_url, [ScheduledJob(j, interval_s or j.interval_s) for j in chosen])

    def _take_lock(self) -> bool:
        conn = psycopg.connect(self._url, autocommit=True)
        row = conn.execute("SELECT pg_try_advisory_lock(%s)", (service_lock_key(),)).fetchone()
        if not row or not row[0]:
            conn.close()
            return False
        self._lock_conn = conn
        return True

    def _lock_alive(self) -> bool:
        with self._guard:
            conn = self._lock_conn
            if conn is not None and not conn.closed:
                try:
                    conn.execute("SELECT 1")
                    return True
                except psycopg.Error:
                    conn.close()
            log.warning("analytics service lost its lock connection; taking the lock again")
            try:
                return self._take_lock()
            except psycopg.Error as exc:
                log.warning("cannot reach the database to take the lock again: %s", exc)
                return False

    def start(self) -> None:
        """Take the service lock (raise :class:`AlreadyRunningError` if held) and start the jobs."""
        if not self._take_lock():
            raise AlreadyRunningError("another analytics service holds the lock on this database")
        for item in self._schedule:
            self._scheduler.add_job(
                self._run,
                IntervalTrigger(seconds=item.interval_s),
                args=[item.job.name],
                id=item.job.name,
                next_run_time=datetime.now(UTC),
            )
        self._scheduler.start()
        log.info(
            "analytics service started: %s",
            ", ".join(f"{s.job.name} every {s.interval_s:g} s" for s in self._schedule),
            extra={"jobs": [s.job.name for s in self._schedule]},
        )

    def _run(self, name: str) -> None:
        if not self._lock_alive():
            log.error("analytics service stops: its database lock is lost")
            threading.Thread(target=self.stop, daemon=True).start()
            return
        try:
            with psycopg.connect(self._url, autocommit=True) as conn:
                run_job(conn, name)
        except psycopg.Error as exc:  # database down: the next tick tries again
            log.warning("job %s not run: %s", name, exc, extra={"job": name, "status": "unreachable"})

    def stop(self) -> None:
        """Stop scheduling, wait for a running job, release the lock."""
        if self._scheduler.running:
            self._scheduler.shutdown(wait=True)
        with self._guard:
            if self._lock_conn is not None and not self._lock_conn.closed:
                self._lock_conn.close()
            self._lock_conn = None
        self.stopped.set()
        log.info("analytics service stopped")
