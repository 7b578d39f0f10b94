"""Helpers shared by the integration tests: a migrated database with the test
registry, registry and meter-event files written and stored, a collector on a
thread, a QoS 1 publisher, and polling."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion

from collector.service import Collector, CollectorConfig
from parkdata.migrate import migrate
from parkdata.registry_file import read_meter_events_file, read_registry_file
from parkdata.registry_store import store_meter_events, store_registry
from parkdata.settings import MqttEndpoint
from parkenergy import pipeline
from simulators.files import EVENT_COLUMNS, REGISTRY_COLUMNS, Cell, write_table
from tests.golden import REGISTRY_CSV


def prepare_database(url: str, registry: Path = REGISTRY_CSV) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        migrate(conn)
    with psycopg.connect(url) as conn:
        store_registry(conn, read_registry_file(registry))


def load_registry_rows(
    conn: psycopg.Connection[Any], path: Path, rows: Iterable[Sequence[Cell]]
) -> dict[str, int]:
    """Write ``rows`` to ``path`` as a registry CSV of every column
    (:data:`simulators.files.REGISTRY_COLUMNS`) and store it; the meter ids by meter code."""
    write_table(path, REGISTRY_COLUMNS, rows)
    with conn.transaction():
        store_registry(conn, read_registry_file(path))
    return {str(c): int(i) for c, i in conn.execute("SELECT meter_code, meter_id FROM registry.meter")}


def load_meter_event_rows(conn: psycopg.Connection[Any], path: Path, rows: Iterable[Sequence[Cell]]) -> None:
    """Write ``rows`` to ``path`` as a meter-event CSV (:data:`simulators.files.EVENT_COLUMNS`)
    and store it."""
    write_table(path, EVENT_COLUMNS, rows)
    with conn.transaction():
        store_meter_events(conn, read_meter_events_file(path))


def collector_config(
    database_url: str, mqtt_url: str, client_id: str = "test-collector", **kw: Any
) -> CollectorConfig:
    base = CollectorConfig(
        database_url=database_url,
        mqtt=MqttEndpoint.parse(mqtt_url),
        client_id=client_id,
        batch_latency_s=0.05,
        retry_initial_s=0.1,
        retry_max_s=1.0,
        registry_refresh_s=0.5,
    )
    return replace(base, **kw)


@contextmanager
def running_collector(config: CollectorConfig) -> Iterator[Collector]:
    """The collector on a thread (:func:`parkenergy.pipeline.running_collector`) for the block;
    afterwards it must have stopped, and an error it stopped with is raised here."""
    with pipeline.running_collector(config) as running:
        yield running.collector
    assert not running.alive, "collector did not stop"
    if running.error is not None:
        raise running.error


class Publisher:
    """A QoS 1 publisher that waits for every PUBACK, with bounded in-flight messages."""

    def __init__(self, mqtt_url: str, client_id: str = "test-publisher") -> None:
        endpoint = MqttEndpoint.parse(mqtt_url)
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
        self.client.max_inflight_messages_set(500)
        self.client.connect(endpoint.host, endpoint.port)
        self.client.loop_start()

    def publish_all(self, messages: Iterable[tuple[str, bytes]], qos: int = 1) -> int:
        infos = []
        count = 0
        for topic, payload in messages:
            infos.append(self.client.publish(topic, payload, qos=qos))
            count += 1
            if len(infos) >= 2000:
                for info in infos:
                    info.wait_for_publish(30)
                infos = []
        for info in infos:
            info.wait_for_publish(30)
        return count

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def wait_for(
    predicate: Callable[[], bool],
    timeout_s: float = 30.0,
    what: Callable[[], str] | str = "condition",
    interval_s: float = 0.05,
) -> None:
    """Poll ``predicate``; on timeout fail saying ``what`` (a callable is evaluated only then)."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            text = what() if callable(what) else what
            raise AssertionError(f"timed out after {timeout_s} s waiting for {text}")
        time.sleep(interval_s)


def scalar(url: str, query: str, params: tuple[object, ...] = ()) -> Any:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(query, params).fetchone()  # type: ignore[arg-type]
    assert row is not None
    return row[0]
