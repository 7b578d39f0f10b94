"""Versioned SQL migrations, applied in order, each once, under an advisory lock.

Files ``migrations/NNNN_name.sql`` ship with the package. Applied versions are
recorded with their checksum in ``parkenergy_meta.migration``; a changed file
that was already applied is an error rather than a silent drift.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from enum import StrEnum
from importlib import resources

import psycopg

log = logging.getLogger(__name__)

_LOCK_KEY = 0x7061726B  # "park": one migrator at a time across processes


class MigrationError(RuntimeError):
    """The database schema cannot be brought to the packaged version."""


class TimescaleMode(StrEnum):
    AUTO = "auto"  # use TimescaleDB when the server can load it
    ON = "on"  # require it
    OFF = "off"  # plain PostgreSQL


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql_text: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql_text.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class MigrationReport:
    applied: tuple[Migration, ...]
    already_applied: int
    timescaledb: bool


def packaged_migrations() -> list[Migration]:
    """The migrations shipped in ``parkdata/migrations``, in version order."""
    found = []
    for entry in resources.files("parkdata.migrations").iterdir():
        name = entry.name
        if not name.endswith(".sql"):
            continue
        version_text, _, rest = name.partition("_")
        found.append(Migration(int(version_text), rest.removesuffix(".sql"), entry.read_text("utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"duplicate migration versions: {versions}")
    return found


def _enable_timescaledb(conn: psycopg.Connection[tuple[object, ...]], mode: TimescaleMode) -> bool:
    if mode is TimescaleMode.OFF:
        return False
    if conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").fetchone():
        return True
    available = conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'").fetchone()
    if not available:
        if mode is TimescaleMode.ON:
            raise MigrationError("TimescaleDB requested but the extension is not installed on the server")
        return False
    try:
        with conn.transaction():
            conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    except psycopg.Error as exc:
        if mode is TimescaleMode.ON:
            raise MigrationError(f"cannot create the timescaledb extension: {exc}") from exc
        log.warning("timescaledb is installed but cannot be created (%s); using plain PostgreSQL", exc)
        return False
    return True


def migrate(
    conn: psycopg.Connection[tuple[object, ...]], timescale: TimescaleMode = TimescaleMode.AUTO
) -> MigrationReport:
    """Apply every packaged migration not yet applied. Idempotent.

    ``conn`` must be in autocommit mode; each migration runs in its own transaction.
    """
    if not conn.autocommit:
        raise MigrationError("migrate() needs an autocommit connection")
    migrations = packaged_migrations()
    conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
    try:
        conn.execute("CREATE SCHEMA IF NOT EXISTS parkenergy_meta")
        conn.execute(
            """CREATE TABLE IF NOT EXISTS parkenergy_meta.migration (
                   version     integer PRIMARY KEY,
                   name        text NOT NULL,
                   checksum    text NOT NULL,
                   timescaledb boolean NOT NULL,
                   applied_at  timestamptz NOT NULL DEFAULT now()
               )"""
        )
        done = {
            int(str(v)): str(c)
            for v, c in conn.execute("SELECT version, checksum FROM parkenergy_meta.migration")
        }
        for m in migrations:
            if m.version in done and done[m.version] != m.checksum:
                raise MigrationError(
                    f"migration {m.version:04d}_{m.name} changed after it was applied "
                    "(write a new migration instead of editing an applied one)"
                )
        timescaledb = (
            _enable_timescaledb(conn, timescale)
            if not done
            else bool(conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").fetchone())
        )
        applied = []
        for m in migrations:
            if m.version in done:
                continue
            log.info("applying migration %04d_%s", m.version, m.name)
            with conn.transaction():
                conn.execute(m.sql_text.encode())  # packaged file, not user input
                conn.execute(
                    "INSERT INTO parkenergy_meta.migration (version, name, checksum, timescaledb)"
                    " VALUES (%s, %s, %s, %s)",
                    (m.version, m.name, m.checksum, timescaledb),
                )
            applied.append(m)
        return MigrationReport(tuple(applied), len(done), timescaledb)
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))


def pending(conn: psycopg.Connection[tuple[object, ...]]) -> list[Migration]:
    """Packaged migrations not yet applied to this database."""
    exists = conn.execute("SELECT to_regclass('parkenergy_meta.migration')").fetchone()
    done: set[int] = set()
    if exists and exists[0] is not None:
        done = {int(str(v)) for (v,) in conn.execute("SELECT version FROM parkenergy_meta.migration")}
    return [m for m in packaged_migrations() if m.version not in done]
