"""Real tests of the embedded PostgreSQL server and MQTT brokers (no mocks).

PostgreSQL: start, attach from a second process' view, stop/start keeping
port and data, kill -9 and crash recovery. Mosquitto: QoS 1 delivery, the
queue and in-flight limits of the generated configuration, persistence
across a restart and a kill. amqtt: the fallback delivers QoS 1 over MQTT
3.1.1 (and refuses MQTT 5).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psutil
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from parkenergy.embedded import (
    PG_PORT_FILE,
    SERVICE_USER,
    EmbeddedBroker,
    EmbeddedPostgres,
    EmbeddedServerError,
    mosquitto_config,
)

# ---------------------------------------------------------------------------
# PostgreSQL
# ---------------------------------------------------------------------------


def _count_rows(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM readings").fetchone()
    assert row is not None
    return int(row[0])


def _fill(url: str, rows: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE readings (id int PRIMARY KEY, energy_kwh double precision)")
        conn.execute("INSERT INTO readings SELECT i, i * 0.5 FROM generate_series(1, %s) AS i", (rows,))


def test_postgres_serves_postgresql_18_on_loopback(pg_private: EmbeddedPostgres) -> None:
    names = ["server_version", "listen_addresses", "fsync", "server_encoding", "max_connections"]
    with psycopg.connect(pg_private.url) as conn:
        row = conn.execute(
            "SELECT array_agg(current_setting(name) ORDER BY ord)"
            " FROM unnest(%s::text[]) WITH ORDINALITY AS s(name, ord)",
            (names,),
        ).fetchone()
    assert row is not None
    settings = dict(zip(names, row[0], strict=True))
    assert settings["server_version"].startswith("18")
    assert (
        settings
        | {
            "listen_addresses": "127.0.0.1",
            "fsync": "on",
            "server_encoding": "UTF8",
            "max_connections": "100",
        }
        == settings
    )
    assert pg_private.url == f"postgresql://postgres@127.0.0.1:{pg_private.port}/postgres"
    assert (pg_private.data_dir / PG_PORT_FILE).read_text().strip() == str(pg_private.port)
    assert pg_private.log_path.is_file()
    # PostgreSQL refuses to run as root: as root, the server runs as the service user.
    expected_user = SERVICE_USER if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
    assert pg_private.pid is not None
    assert psutil.Process(pg_private.pid).username() == expected_user


def test_postgres_second_instance_attaches_and_can_stop_it(pg_private: EmbeddedPostgres) -> None:
    other = EmbeddedPostgres(pg_private.data_dir)  # as a later process would: no port given
    other.start()
    assert (other.port, other.pid) == (pg_private.port, pg_private.pid)

    other.stop()
    assert not pg_private.is_running()
    assert pg_private.pid is None
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(pg_private.url, connect_timeout=2)


def test_postgres_stop_and_start_keep_port_and_data(pg_private: EmbeddedPostgres) -> None:
    _fill(pg_private.url, 500)
    port = pg_private.port

    pg_private.stop()
    pg_private.start()

    assert pg_private.port == port
    assert _count_rows(pg_private.url) == 500


@pytest.mark.fault
def test_postgres_kill_then_start_recovers_committed_rows_only(pg_private: EmbeddedPostgres) -> None:
    _fill(pg_private.url, 10_000)
    uncommitted = psycopg.connect(pg_private.url)
    uncommitted.execute("INSERT INTO readings SELECT i, 0 FROM generate_series(10001, 10100) AS i")
    port, offset = pg_private.port, pg_private.log_path.stat().st_size

    pg_private.kill()

    assert not pg_private.is_running()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(pg_private.url, connect_timeout=2)
    uncommitted.close()

    pg_private.start()

    assert pg_private.port == port
    assert _count_rows(pg_private.url) == 10_000
    with pg_private.log_path.open(encoding="utf-8") as log:
        log.seek(offset)
        assert "automatic recovery in progress" in log.read()


def test_postgres_start_on_busy_port_fails_with_log_tail(pg_private: EmbeddedPostgres) -> None:
    pg_private.stop()
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        busy = squatter.getsockname()[1]
        with pytest.raises(EmbeddedServerError) as failure:
            EmbeddedPostgres(pg_private.data_dir, port=busy, start_timeout_s=20).start()
    assert failure.value.server == "postgresql"
    assert failure.value.log_path == pg_private.log_path
    assert "could not bind" in failure.value.log_tail
    assert "could not bind" in str(failure.value)


def test_postgres_with_deep_data_dir_puts_socket_in_short_dir(embedded_base_dir: Path) -> None:
    deep = embedded_base_dir / ("d" * 60) / ("e" * 60)
    deep.parent.mkdir()
    deep.parent.chmod(0o711)
    server = EmbeddedPostgres(deep)
    try:
        server.start()
        assert server.socket_dir != deep
        assert (server.socket_dir / f".s.PGSQL.{server.port}").is_socket()
        with psycopg.connect(host=str(server.socket_dir), port=server.port, user="postgres") as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        server.stop()
    assert not server.socket_dir.exists()


def test_database_url_is_a_fresh_empty_database(database_url: str, pg_server: EmbeddedPostgres) -> None:
    assert database_url.startswith(f"postgresql://postgres@127.0.0.1:{pg_server.port}/test_")
    with psycopg.connect(database_url) as conn:
        name = conn.execute("SELECT current_database()").fetchone()
        tables = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchone()
    assert name is not None
    assert database_url.endswith(f"/{name[0]}")
    assert tables == (0,)


# ---------------------------------------------------------------------------
# MQTT: small paho 2.x helpers
# ---------------------------------------------------------------------------


@dataclass
class Inbox:
    """Collects messages from paho's network thread."""

    messages: list[mqtt.MQTTMessage] = field(default_factory=list)
    _cond: threading.Condition = field(default_factory=threading.Condition)

    def on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        with self._cond:
            self.messages.append(message)
            self._cond.notify_all()

    def wait_for(self, count: int, timeout_s: float = 10.0) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: len(self.messages) >= count, timeout_s)

    def __len__(self) -> int:
        with self._cond:
            return len(self.messages)

    def snapshot(self) -> list[mqtt.MQTTMessage]:
        with self._cond:
            return list(self.messages)


@dataclass
class Session:
    client: mqtt.Client
    session_present: bool


@contextlib.contextmanager
def mqtt_session(
    port: int,
    client_id: str | None = None,
    *,
    protocol: MQTTProtocolVersion = mqtt.MQTTv5,
    clean_start: bool = True,
    session_expiry_s: int = 0,
    receive_maximum: int | None = None,
    manual_ack: bool = False,
    inbox: Inbox | None = None,
) -> Iterator[Session]:
    """A connected paho client (network loop running); disconnected on exit."""
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id or f"test-{uuid.uuid4().hex[:12]}",
        protocol=protocol,
        manual_ack=manual_ack,
        clean_session=clean_start if protocol != mqtt.MQTTv5 else None,
    )
    connected = threading.Event()
    outcome: dict[str, Any] = {}

    def on_connect(c: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        outcome.update(flags=flags, reason=reason)
        connected.set()

    client.on_connect = on_connect
    if inbox is not None:
        client.on_message = inbox.on_message
    if protocol == mqtt.MQTTv5:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        if session_expiry_s:
            props.SessionExpiryInterval = session_expiry_s
        if receive_maximum is not None:
            props.ReceiveMaximum = receive_maximum
        client.connect("127.0.0.1", port, clean_start=clean_start, properties=props)
    else:
        client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        assert connected.wait(10), "no CONNACK"
        assert not outcome["reason"].is_failure, outcome["reason"]
        yield Session(client, bool(outcome["flags"].session_present))
    finally:
        client.disconnect()
        client.loop_stop()


def subscribe(client: mqtt.Client, topic: str, qos: int = 1) -> None:
    """Subscribe and wait for the SUBACK."""
    acked = threading.Event()
    client.on_subscribe = lambda c, u, mid, reasons, props: acked.set()
    rc, _ = client.subscribe(topic, qos)
    assert rc == mqtt.MQTT_ERR_SUCCESS
    assert acked.wait(10), "no SUBACK"


def publish_all(port: int, topic: str, payloads: list[bytes], **kwargs: Any) -> None:
    """Publish every payload at QoS 1 and wait until the broker acknowledged each."""
    with mqtt_session(port, **kwargs) as pub:
        infos = [pub.client.publish(topic, payload, qos=1) for payload in payloads]
        for info in infos:
            info.wait_for_publish(20)
            assert info.is_published()


def unique_topic() -> str:
    return f"parkenergy/test/{uuid.uuid4().hex[:12]}"


# ---------------------------------------------------------------------------
# Mosquitto
# ---------------------------------------------------------------------------


def test_mosquitto_config_lifts_queue_and_inflight_limits(tmp_path: Path) -> None:
    lines = mosquitto_config(tmp_path, 18830, persistence=True, run_as="root").splitlines()
    for expected in (
        "listener 18830 127.0.0.1",
        "allow_anonymous true",
        "max_queued_messages 1000000",
        "max_queued_bytes 0",
        "max_inflight_messages 0",
        "set_tcp_nodelay true",
        "persistence true",
        f"persistence_location {tmp_path}/",
        "autosave_interval 1",
        "user root",
    ):
        assert expected in lines
    assert "persistence true" not in mosquitto_config(tmp_path, 1, persistence=False, run_as=None)


def test_broker_delivers_qos1(broker: EmbeddedBroker, mqtt_url: str) -> None:
    assert broker.kind == "mosquitto"
    assert mqtt_url == f"mqtt://127.0.0.1:{broker.port}"
    topic, inbox = unique_topic(), Inbox()
    with mqtt_session(broker.port, inbox=inbox) as sub:
        subscribe(sub.client, topic)
        publish_all(broker.port, topic, [b"reading-1", b"reading-2"])
        assert inbox.wait_for(2)
    assert [(m.payload, m.qos) for m in inbox.snapshot()] == [(b"reading-1", 1), (b"reading-2", 1)]


def test_broker_stop_closes_port_and_second_instance_attaches(broker: EmbeddedBroker) -> None:
    other = EmbeddedBroker(broker.data_dir)
    other.start()
    assert (other.port, other.pid) == (broker.port, broker.pid)

    broker.stop()

    assert not broker.is_running()
    assert not other.is_running()
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", other.port), timeout=1):
        pass


def test_broker_lets_mqtt5_subscriber_acknowledge_in_batches(broker: EmbeddedBroker) -> None:
    # mosquitto's default max_inflight_messages (20) would stop after 20 unacknowledged
    # messages, and its default max_queued_messages (1000) would drop the rest.
    count, topic, inbox = 3000, unique_topic(), Inbox()
    with mqtt_session(broker.port, manual_ack=True, inbox=inbox) as sub:
        subscribe(sub.client, topic)
        publish_all(broker.port, topic, [str(i).encode() for i in range(count)])
        assert inbox.wait_for(count, 30), f"only {len(inbox)} of {count} arrived without acks"
        for message in inbox.snapshot():
            sub.client.ack(message.mid, message.qos)
    assert [int(m.payload) for m in inbox.snapshot()] == list(range(count))


def test_broker_honours_receive_maximum_and_queues_the_rest(broker: EmbeddedBroker) -> None:
    # An MQTT 5 client's Receive Maximum bounds what it gets unacknowledged; the rest
    # (more than mosquitto's default queue of 1000) must wait in the queue, not be dropped.
    window, count, topic, inbox = 100, 2500, unique_topic(), Inbox()
    with mqtt_session(broker.port, manual_ack=True, receive_maximum=window, inbox=inbox) as sub:
        subscribe(sub.client, topic)
        publish_all(broker.port, topic, [str(i).encode() for i in range(count)])
        assert inbox.wait_for(window)
        time.sleep(0.3)
        assert len(inbox) == window

        acked = 0
        deadline = time.monotonic() + 30
        while acked < count and time.monotonic() < deadline:
            batch = inbox.snapshot()[acked:]
            for message in batch:
                sub.client.ack(message.mid, message.qos)
            acked += len(batch)
            inbox.wait_for(acked + 1, 1.0)
    assert [int(m.payload) for m in inbox.snapshot()] == list(range(count))


def test_broker_restart_keeps_queued_message_for_offline_subscriber(broker: EmbeddedBroker) -> None:
    topic, client_id, port = unique_topic(), f"collector-{uuid.uuid4().hex[:8]}", broker.port
    # clean_start=False already on the first connect: see the next test for why.
    with mqtt_session(port, client_id, clean_start=False, session_expiry_s=3600) as sub:
        subscribe(sub.client, topic)
    publish_all(port, topic, [b"sent-while-offline"])  # queued for the offline session

    broker.restart()

    assert broker.port == port
    inbox = Inbox()
    with mqtt_session(port, client_id, clean_start=False, session_expiry_s=3600, inbox=inbox) as sub:
        assert sub.session_present
        assert inbox.wait_for(1)
    assert [(m.payload, m.qos) for m in inbox.snapshot()] == [(b"sent-while-offline", 1)]


def test_broker_restart_forgets_mqtt5_session_opened_with_clean_start(broker: EmbeddedBroker) -> None:
    # A trap, pinned here: mosquitto (2.0.11, and its persist__client_save to this day)
    # writes only sessions whose CONNECT had clean_start=0 to mosquitto.db. An MQTT 5
    # session opened with clean_start=1 and a session expiry survives a reconnect but NOT
    # a broker restart. paho's default, MQTT_CLEAN_START_FIRST_ONLY, sends clean_start=1
    # on the first connect: a collector must pass clean_start=False itself.
    topic, client_id, port = unique_topic(), f"collector-{uuid.uuid4().hex[:8]}", broker.port
    with mqtt_session(port, client_id, clean_start=True, session_expiry_s=3600) as sub:
        subscribe(sub.client, topic)
    publish_all(port, topic, [b"lost-on-restart"])

    broker.restart()

    inbox = Inbox()
    with mqtt_session(port, client_id, clean_start=False, session_expiry_s=3600, inbox=inbox) as sub:
        assert not sub.session_present
        assert not inbox.wait_for(1, 0.5)


@pytest.mark.fault
def test_broker_kill_keeps_messages_saved_by_autosave(broker: EmbeddedBroker) -> None:
    topic, client_id, port = unique_topic(), f"collector-{uuid.uuid4().hex[:8]}", broker.port
    with mqtt_session(port, client_id, clean_start=False, session_expiry_s=3600) as sub:
        subscribe(sub.client, topic)
    publish_all(port, topic, [b"autosaved"])
    time.sleep(2.5)  # autosave_interval 1: mosquitto saves at most ~2 s after a change

    broker.kill()
    assert not broker.is_running()
    broker.start()

    assert broker.port == port
    inbox = Inbox()
    with mqtt_session(port, client_id, clean_start=False, session_expiry_s=3600, inbox=inbox) as sub:
        assert sub.session_present
        assert inbox.wait_for(1)
    assert [m.payload for m in inbox.snapshot()] == [b"autosaved"]


# ---------------------------------------------------------------------------
# amqtt fallback
# ---------------------------------------------------------------------------


def test_amqtt_fallback_delivers_qos1_over_mqtt311(tmp_path: Path) -> None:
    topic, inbox = unique_topic(), Inbox()
    with EmbeddedBroker(tmp_path / "amqtt", persistence=False, prefer_mosquitto=False) as fallback:
        assert fallback.kind == "amqtt"
        with mqtt_session(fallback.port, protocol=mqtt.MQTTv311, inbox=inbox) as sub:
            subscribe(sub.client, topic)
            publish_all(fallback.port, topic, [b"via-amqtt"], protocol=mqtt.MQTTv311)
            assert inbox.wait_for(1)
        pid = fallback.pid
    assert not fallback.is_running()
    assert pid is not None and not psutil.pid_exists(pid)
    assert [(m.payload, m.qos) for m in inbox.snapshot()] == [(b"via-amqtt", 1)]


def test_amqtt_fallback_refuses_mqtt5(tmp_path: Path) -> None:
    # Documents a limit: the collector speaks MQTT 5, so it needs mosquitto (or another broker).
    with EmbeddedBroker(tmp_path / "amqtt", persistence=False, prefer_mosquitto=False) as fallback:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        answered = threading.Event()
        outcome: list[Any] = []

        def on_connect(c: mqtt.Client, u: Any, flags: Any, reason: Any, props: Any) -> None:
            outcome.append(reason)
            answered.set()

        client.on_connect = on_connect
        client.on_disconnect = lambda c, u, flags, reason, props: answered.set()
        client.connect("127.0.0.1", fallback.port)
        client.loop_start()
        try:
            answered.wait(10)
        finally:
            client.disconnect()
            client.loop_stop()
    assert not any(not reason.is_failure for reason in outcome)
