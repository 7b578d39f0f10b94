"""Where the database and the broker are: configured, or embedded under PARKENERGY_HOME.

Without ``DATABASE_URL`` an embedded PostgreSQL runs from
``$PARKENERGY_HOME/postgres`` and keeps running between commands (stop it with
``parkenergy embedded stop``); its schema is migrated automatically. Without
``MQTT_URL`` the command that needs a broker starts one from
``$PARKENERGY_HOME/mosquitto`` and stops it when it ends; persisted sessions
and queued messages survive in that directory.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from parkdata.db import connect
from parkdata.migrate import MigrationError, migrate, pending
from parkdata.settings import MqttEndpoint, Settings
from parkenergy.embedded import EmbeddedBroker, EmbeddedPostgres

log = logging.getLogger(__name__)

EMBEDDED_DATABASE = "parkenergy"


class NotReadyError(RuntimeError):
    """The database is reachable but its schema is not at the packaged version."""


@dataclass(frozen=True, slots=True)
class Database:
    url: str
    embedded: bool


def embedded_postgres(settings: Settings) -> EmbeddedPostgres:
    return EmbeddedPostgres(settings.parkenergy_home / "postgres")


def embedded_broker(settings: Settings) -> EmbeddedBroker:
    return EmbeddedBroker(settings.parkenergy_home / "mosquitto")


def database(settings: Settings) -> Database:
    """The configured database, or the embedded one (started and migrated on demand)."""
    if settings.database_url:
        return Database(settings.database_url, embedded=False)
    settings.parkenergy_home.mkdir(parents=True, exist_ok=True)
    server = embedded_postgres(settings)
    if not server.is_running():
        log.info("starting embedded PostgreSQL in %s", settings.parkenergy_home / "postgres")
    server.start()
    with connect(server.url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (EMBEDDED_DATABASE,)).fetchone()
    if not exists:
        server.create_database(EMBEDDED_DATABASE)
    url = server.url_for(EMBEDDED_DATABASE)
    with connect(url, autocommit=True) as conn:
        report = migrate(conn)
        if report.applied:
            log.info("embedded database migrated: %d migrations applied", len(report.applied))
    return Database(url, embedded=True)


def require_schema(url: str) -> None:
    """Refuse to run against a database whose schema lags the code."""
    with connect(url, autocommit=True) as conn:
        missing = pending(conn)
    if missing:
        names = ", ".join(f"{m.version:04d}_{m.name}" for m in missing)
        raise NotReadyError(f"database schema is not current (pending: {names}); run `parkenergy db migrate`")


def database_url(settings: Settings) -> str:
    db = database(settings)
    if not db.embedded:
        require_schema(db.url)
    return db.url


@contextmanager
def broker(settings: Settings) -> Iterator[MqttEndpoint]:
    """The configured broker, or an embedded one for the duration of the block."""
    configured = settings.mqtt
    if configured is not None:
        yield configured
        return
    settings.parkenergy_home.mkdir(parents=True, exist_ok=True)
    server = embedded_broker(settings)
    server.start()
    log.info("embedded MQTT broker at %s", server.url)
    try:
        # amqtt, the fallback when no mosquitto binary exists, speaks MQTT 3.1.1 only.
        yield MqttEndpoint.parse(server.url, mqtt5=server.kind == "mosquitto")
    finally:
        server.stop()


__all__ = [
    "Database",
    "MigrationError",
    "NotReadyError",
    "broker",
    "database",
    "database_url",
    "embedded_broker",
    "embedded_postgres",
    "require_schema",
]
