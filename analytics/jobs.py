"""Named analytics jobs: a registry, and one idempotent run of a job under a database lock.

A job is a function ``run(conn, now) -> str`` (a one-line summary) on an autocommit
connection; it must be idempotent, since a crash means it runs again. Jobs are registered
by name with their default schedule; other modules add theirs with one line here, naming
the function by its dotted path so that nothing is imported before it is needed::

    register(Job("report", "analytics.report:run", interval_s=86400, description="..."))

:func:`run_job` runs one job at most once at a time across all processes (a PostgreSQL
advisory lock per job name) and records every run in ``analytics.job_run``.
"""

from __future__ import annotations

import contextvars
import hashlib
import importlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg

__all__ = [
    "Job",
    "JobOutcome",
    "JobRun",
    "UnknownJobError",
    "get",
    "job_lock_key",
    "jobs",
    "progress_hook",
    "register",
    "run_job",
]

log = logging.getLogger(__name__)

Connection = psycopg.Connection[Any]
JobRun = Callable[[Connection, datetime], str]

progress_hook: contextvars.ContextVar[Callable[[int, int], None] | None] = contextvars.ContextVar(
    "progress_hook", default=None
)
"""Set by a caller that shows progress (the CLI); long jobs report (done, total) to it."""


class UnknownJobError(KeyError):
    """No job is registered under this name."""


@dataclass(frozen=True, slots=True)
class Job:
    """A named job: ``target`` is the function or its ``"module:function"`` path.

    interval_s : default period of ``parkenergy analyze serve`` [s].
    """

    name: str
    target: JobRun | str
    interval_s: float = 60.0
    description: str = ""

    def function(self) -> JobRun:
        """The job's function, importing its module if it was named by path."""
        if not isinstance(self.target, str):
            return self.target
        module, _, attribute = self.target.partition(":")
        found: JobRun = getattr(importlib.import_module(module), attribute)
        return found


@dataclass(frozen=True, slots=True)
class JobOutcome:
    """How one call of :func:`run_job` ended: ``ok``, ``failed`` or ``skipped`` (locked)."""

    job: str
    status: str
    summary: str
    seconds: float


_REGISTRY: dict[str, Job] = {}


def register(job: Job) -> Job:
    """Add (or replace) a job in the registry; returns it."""
    _REGISTRY[job.name] = job
    return job


def jobs() -> list[Job]:
    """The registered jobs, in registration order."""
    return list(_REGISTRY.values())


def get(name: str) -> Job:
    """The job registered as ``name``."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownJobError(name) from None


def job_lock_key(name: str) -> int:
    """The advisory lock key of a job: a stable signed 64-bit hash of its name."""
    digest = hashlib.sha256(f"parkenergy.job.{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def run_job(conn: Connection, name: str, now: datetime | None = None) -> JobOutcome:
    """Run job ``name`` once on an autocommit connection, unless it is running elsewhere.

    Holds the job's session advisory lock while it runs; records the run in
    ``analytics.job_run``. A failure is logged and recorded, and returned as ``failed``.
    """
    job = get(name)
    if not conn.autocommit:
        raise ValueError("run_job needs an autocommit connection")
    now = now or datetime.now(UTC)
    key = job_lock_key(name)
    started = time.monotonic()
    locked = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
    if not locked or not locked[0]:
        conn.execute(
            "INSERT INTO analytics.job_run (job, started_at, finished_at, status, summary)"
            " VALUES (%s, %s, now(), 'skipped', 'already running')",
            (name, now),
        )
        log.info("job %s skipped: already running", name, extra={"job": name, "status": "skipped"})
        return JobOutcome(name, "skipped", "already running", 0.0)
    try:
        row = conn.execute(
            "INSERT INTO analytics.job_run (job, started_at, status)"
            " VALUES (%s, %s, 'running') RETURNING run_id",
            (name, now),
        ).fetchone()
        assert row is not None
        run_id = row[0]
        try:
            summary = job.function()(conn, now)
            status = "ok"
        except Exception as exc:  # recorded and returned: a scheduler must outlive one bad run
            if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                conn.rollback()
            summary, status = f"{type(exc).__name__}: {exc}", "failed"
            log.exception("job %s failed", name, extra={"job": name, "status": status})
        seconds = time.monotonic() - started
        conn.execute(
            "UPDATE analytics.job_run SET finished_at = now(), status = %s, summary = %s WHERE run_id = %s",
            (status, summary, run_id),
        )
        if status == "ok":
            log.info(
                "job %s ok in %.2f s: %s",
                name,
                seconds,
                summary,
                extra={"job": name, "status": status, "duration_s": round(seconds, 3)},
            )
        return JobOutcome(name, status, summary, seconds)
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (key,))


def _energy(conn: Connection, now: datetime) -> str:
    """Interval energy from new and late readings, and its rollups (analytics.energy_store)."""
    from analytics.energy_store import run_energy  # noqa: PLC0415 - jobs load lazily

    return str(run_energy(conn, progress=progress_hook.get(), silent_until=now))


register(Job("energy", _energy, 60.0, "interval energy per meter (15 min) and its hour/day/month rollups"))
register(
    Job(
        "forecast",
        "analytics.forecast:run",
        3600.0,
        "forecast of energy and value added to the target year, with the target status (analytics.forecast)",
    )
)


def _detect(group: str) -> JobRun:
    """The job of a detector group (analytics.detection): its detectors into the alert state."""

    def run(conn: Connection, now: datetime) -> str:
        from analytics.detection import run_group  # noqa: PLC0415 - jobs load lazily

        return run_group(conn, group, now)

    return run


def _register_detectors() -> None:
    from analytics.detection import GROUPS  # noqa: PLC0415 - a table of names, no detector loaded

    for group, (interval_s, description) in GROUPS.items():
        register(Job(group, _detect(group), interval_s, description))


_register_detectors()
