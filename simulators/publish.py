"""MQTT publishing (the only module of the package that imports paho).

- :class:`BulkPublisher`: one connection for a backfill, QoS 1, at most
  ``max_inflight`` unacknowledged messages (paho refuses more than 65 535, its
  message ids being 16-bit), paho's loop driven inline rather than on a thread
  (a network thread costs several times the CPU per publish).
- :class:`GatewayFleet`: one connection per enterprise gateway for live mode,
  each with the retained last will ``offline`` on ``{prefix}/{enterprise}/_status``
  and ``online`` published on connect; a gateway outage drops its connection
  without a DISCONNECT, so the broker publishes the will.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import select
import socket
import threading
import time
import uuid
from collections import deque

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from parkdata.settings import MqttEndpoint
from simulators.park import Park
from simulators.wire import Message

log = logging.getLogger(__name__)


class PublishError(RuntimeError):
    """The broker refused a connection or a publication, or stopped acknowledging."""


def _client(endpoint: MqttEndpoint, client_id: str) -> mqtt.Client:
    protocol = mqtt.MQTTv5 if endpoint.mqtt5 else mqtt.MQTTv311
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol)
    if endpoint.username:
        client.username_pw_set(endpoint.username, endpoint.password)
    if endpoint.tls:
        client.tls_set()
    return client


class BulkPublisher:
    """Publishes messages as fast as the broker acknowledges them, over one connection."""

    def __init__(
        self, endpoint: MqttEndpoint, client_id: str | None = None, max_inflight: int = 1000
    ) -> None:
        if not 1 <= max_inflight <= 65_535:
            raise ValueError("max_inflight must be 1..65535")
        self.max_inflight = max_inflight
        self.client = _client(endpoint, client_id or f"parkenergy-sim-{uuid.uuid4().hex[:8]}")
        self.client.max_inflight_messages_set(max_inflight)
        self.client.max_queued_messages_set(0)
        self._window: deque[mqtt.MQTTMessageInfo] = deque()
        self.sent = 0
        try:
            self.client.connect(endpoint.host, endpoint.port, keepalive=60)
        except OSError as exc:
            raise PublishError(f"cannot connect to the broker at {endpoint.url}: {exc}") from exc
        deadline = time.monotonic() + 30
        while not self.client.is_connected():
            self.client.loop(0.1)
            if time.monotonic() > deadline:
                raise PublishError(f"no CONNACK from {endpoint.url}")

    def publish(self, message: Message) -> None:
        info = self.client.publish(message.topic, message.payload, qos=1, retain=message.retain)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise PublishError(f"publish refused: {mqtt.error_string(info.rc)}")
        self._window.append(info)
        self.sent += 1
        if self.sent % 32 == 0:
            self.client.loop(0)
        if len(self._window) >= self.max_inflight:
            self._settle(self.max_inflight - 1)

    def _settle(self, limit: int, timeout_s: float = 120.0) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            while self._window and self._window[0].is_published():
                self._window.popleft()
            if len(self._window) <= limit:
                return
            if time.monotonic() > deadline:
                raise PublishError(f"{len(self._window)} messages unacknowledged for {timeout_s:.0f} s")
            self.client.loop(0.01)

    def flush(self) -> None:
        """Wait until every message is acknowledged (PUBACK)."""
        self._settle(0)

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self.client.disconnect()
            self.client.loop(0.1)


class GatewayFleet:
    """One MQTT connection per enterprise gateway, with last will, for live mode.

    Every paho call runs on one network thread of the fleet (paho's external-loop
    API: ``select`` over the gateways' sockets, then ``loop_read``/``loop_write``/
    ``loop_misc``); other threads hand it commands. A gateway that is offline
    buffers its messages and sends them when it reconnects.
    """

    def __init__(self, endpoint: MqttEndpoint, park: Park, prefix: str, run_id: str | None = None) -> None:
        self.endpoint = endpoint
        self.prefix = prefix
        run = run_id or uuid.uuid4().hex[:6]
        self.clients: list[mqtt.Client] = []
        self.online: list[bool] = []
        self._started: list[bool] = []
        self._backlog: list[list[Message]] = []
        self._pending: deque[mqtt.MQTTMessageInfo] = deque()
        self._commands: queue.SimpleQueue[tuple[str, int, Message | None]] = queue.SimpleQueue()
        self._error: BaseException | None = None
        self._closing = threading.Event()
        for e in park.enterprises:
            client = _client(endpoint, f"gw-{e.code}-{run}")
            status = f"{prefix}/{e.code}/_status"
            client.will_set(status, b"offline", qos=1, retain=True)
            client.user_data_set(status)
            client.on_connect = _announce_online
            client.max_inflight_messages_set(1000)
            self.clients.append(client)
            self.online.append(False)
            self._started.append(False)
            self._backlog.append([])
        self._thread = threading.Thread(target=self._run, name="gateway-fleet", daemon=True)
        for i in range(len(self.clients)):
            self._connect(i)
        self._thread.start()

    # -- commands (any thread) -------------------------------------------------------------

    def publish(self, message: Message) -> None:
        """Send ``message`` from its gateway; a status message takes the gateway down or up."""
        if self._error is not None:
            raise PublishError(f"gateway fleet stopped: {self._error}") from self._error
        if message.status == "offline":
            self._commands.put(("drop", message.publisher, None))
        elif message.status == "online":
            self._commands.put(("connect", message.publisher, None))
        else:
            self._commands.put(("publish", message.publisher, message))

    def close(self, timeout_s: float = 60.0) -> None:
        """Send what is queued, wait for the acknowledgements, disconnect (no will)."""
        self._commands.put(("close", -1, None))
        self._thread.join(timeout_s)
        if self._error is not None:
            raise PublishError(f"gateway fleet stopped: {self._error}") from self._error

    # -- the network thread ----------------------------------------------------------------

    def _run(self) -> None:
        try:
            misc_at = 0.0
            closing_since: float | None = None
            while True:
                while True:
                    try:
                        command, enterprise, message = self._commands.get_nowait()
                    except queue.Empty:
                        break
                    if command == "close":
                        closing_since = time.monotonic()
                    elif command == "drop":
                        self._drop(enterprise)
                    elif command == "connect":
                        if not self.online[enterprise]:
                            self._connect(enterprise)
                    elif message is not None:
                        if self.online[enterprise]:
                            self._send(message)
                        else:
                            self._backlog[enterprise].append(message)  # the gateway buffers while offline
                self._pump()
                if time.monotonic() > misc_at:
                    for i, client in enumerate(self.clients):
                        if self.online[i]:
                            client.loop_misc()
                    misc_at = time.monotonic() + 1.0
                while self._pending and self._pending[0].is_published():
                    self._pending.popleft()
                if closing_since is not None and (not self._pending or time.monotonic() - closing_since > 30):
                    break
            for i, client in enumerate(self.clients):
                if self.online[i]:
                    client.disconnect()
                    client.loop_write()
                client._reset_sockets()  # paho has no public close for an external loop
        except BaseException as exc:  # surfaced to the caller by publish() and close()
            self._error = exc
            log.exception("gateway fleet failed")

    def _pump(self) -> None:
        sockets: dict[socket.socket, mqtt.Client] = {}
        for i, client in enumerate(self.clients):
            sock = client.socket()
            if self.online[i] and isinstance(sock, socket.socket) and sock.fileno() >= 0:
                sockets[sock] = client
        if not sockets:
            time.sleep(0.01)
            return
        writers = [s for s, c in sockets.items() if c.want_write()]
        readable, writable, _ = select.select(list(sockets), writers, [], 0.01)
        for sock in readable:
            sockets[sock].loop_read()
        for sock in writable:
            sockets[sock].loop_write()

    def _connect(self, enterprise: int) -> None:
        client = self.clients[enterprise]
        try:
            if self._started[enterprise]:
                client.reconnect()
            else:
                client.connect(self.endpoint.host, self.endpoint.port, keepalive=30)
                self._started[enterprise] = True
        except OSError as exc:
            raise PublishError(f"gateway {enterprise} cannot connect to {self.endpoint.url}: {exc}") from exc
        self.online[enterprise] = True
        backlog, self._backlog[enterprise] = self._backlog[enterprise], []
        for message in backlog:
            self._send(message)

    def _drop(self, enterprise: int) -> None:
        """Lose the connection as a gateway that loses power does: no DISCONNECT, so the will fires."""
        client = self.clients[enterprise]
        sock = client.socket()
        if isinstance(sock, socket.socket):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self.online[enterprise] = False

    def _send(self, message: Message) -> None:
        client = self.clients[message.publisher]
        info = client.publish(message.topic, message.payload, qos=1, retain=message.retain)
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN, mqtt.MQTT_ERR_CONN_LOST):
            raise PublishError(f"publish refused: {mqtt.error_string(info.rc)}")
        self._pending.append(info)


def _announce_online(
    client: mqtt.Client,
    userdata: object,
    flags: mqtt.ConnectFlags,
    reason: ReasonCode,
    properties: Properties | None,
) -> None:
    if not reason.is_failure:
        client.publish(str(userdata), b"online", qos=1, retain=True)
    else:
        log.warning("gateway connection refused: %s", reason)
