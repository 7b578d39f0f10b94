"""The MQTT edge: receive without acknowledging, acknowledge after commit.

The only collector module that imports paho. Its callbacks only convert and
enqueue; the service thread takes deliveries, and acknowledges them once the
transaction holding them has committed (paho ``manual_ack``). The broker sends
at most ``receive_maximum`` unacknowledged messages (MQTT 5 Receive Maximum),
which bounds the collector's memory whatever the backlog.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, NamedTuple

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from collector.validate import Message
from parkdata.settings import MqttEndpoint

log = logging.getLogger(__name__)

# take(): with fewer than SETTLE_BELOW deliveries queued, wait SETTLE_S once more.
SETTLE_BELOW: Final = 200
SETTLE_S: Final = 0.005


class Delivery(NamedTuple):
    """A message and what acknowledging it needs (a named tuple: built per message)."""

    message: Message
    mid: int
    qos: int
    generation: int
    """Connection the message came on; acknowledgements go only to that connection."""


@dataclass(frozen=True, slots=True)
class SourceOptions:
    client_id: str
    subscription: str
    receive_maximum: int = 20_000
    session_expiry_s: int = 7 * 24 * 3600
    keepalive_s: int = 30
    ca_file: Path | None = None


class MqttSource:
    """A persistent-session MQTT 5 subscriber whose messages wait for an explicit ack."""

    def __init__(self, endpoint: MqttEndpoint, options: SourceOptions) -> None:
        self._endpoint = endpoint
        self._options = options
        self._queue: deque[Delivery] = deque()  # appends and pops are thread-safe
        self._wakeup = threading.Event()
        self._waiting = False
        self._generation = 0
        self._connected = threading.Event()
        self._ack_lock = threading.Lock()
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=options.client_id,
            protocol=mqtt.MQTTv5 if endpoint.mqtt5 else mqtt.MQTTv311,
            clean_session=None if endpoint.mqtt5 else False,
            manual_ack=True,
        )
        if endpoint.username is not None:
            client.username_pw_set(endpoint.username, endpoint.password)
        if endpoint.tls:
            client.tls_set(ca_certs=str(options.ca_file) if options.ca_file else None)
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        self._client = client

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def start(self) -> None:
        """Connect in the background; paho reconnects by itself after a loss.

        MQTT 5: ``clean_start`` is false from the very first connection (Mosquitto
        persists only sessions whose first CONNECT had it false), the session
        outlives the connection, and Receive Maximum bounds what the broker sends
        unacknowledged. MQTT 3.1.1 (fallback brokers): ``clean_session`` false.
        """
        if self._endpoint.mqtt5:
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = self._options.session_expiry_s
            props.ReceiveMaximum = self._options.receive_maximum
            self._client.connect_async(
                self._endpoint.host,
                self._endpoint.port,
                keepalive=self._options.keepalive_s,
                clean_start=False,
                properties=props,
            )
        else:
            self._client.connect_async(
                self._endpoint.host, self._endpoint.port, keepalive=self._options.keepalive_s
            )
        self._client.loop_start()

    def wait_connected(self, timeout_s: float) -> bool:
        return self._connected.wait(timeout_s)

    def stop(self) -> None:
        """Disconnect without unsubscribing: the broker keeps the session and queues for us."""
        self._client.disconnect()
        self._client.loop_stop()
        self._connected.clear()

    def pending(self) -> int:
        return len(self._queue)

    def take(self, max_items: int, timeout_s: float) -> list[Delivery]:
        """Up to ``max_items`` deliveries, waiting at most ``timeout_s`` for the first.

        When only a few are queued, waits ``SETTLE_S`` once more so that a busy
        stream is drained in chunks rather than message by message (each wake-up
        of this thread costs the network thread time).
        """
        queue = self._queue
        if not queue and timeout_s > 0:
            self._wakeup.clear()
            self._waiting = True
            if not queue:
                self._wakeup.wait(timeout_s)
            self._waiting = False
        if 0 < len(queue) < SETTLE_BELOW:
            time.sleep(SETTLE_S)
        n = min(max_items, len(queue))
        return [queue.popleft() for _ in range(n)]

    def ack(self, deliveries: list[Delivery]) -> int:
        """Acknowledge committed deliveries; returns how many acks were sent.

        Deliveries from an earlier connection are not acknowledged: the broker
        has redelivered them on the current one (a packet id may be reused, so
        an old id could acknowledge a different, uncommitted message).
        """
        sent = 0
        with self._ack_lock:
            generation = self._generation
            client = self._client
            # paho wakes its network thread (a byte on a socket pair) for every
            # queued packet, and that thread then takes the GIL from ours once per
            # ack. Queue the batch's acks without waking it, then wake it once.
            # The socket pair is paho 2.x's private attribute: without it, acks
            # go out one wake-up each, as paho does by itself.
            wake = getattr(client, "_sockpairW", None)
            if wake is not None:
                client._sockpairW = None
            try:
                for d in deliveries:
                    if d.qos and d.generation == generation:
                        client.ack(d.mid, d.qos)
                        sent += 1
            finally:
                if wake is not None:
                    if client._sockpairW is None:
                        client._sockpairW = wake
                    if sent:
                        with contextlib.suppress(OSError):  # full: a wake-up is pending anyway
                            wake.send(b"0")
        return sent

    # paho callbacks: run on paho's network thread; convert and enqueue only.

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: mqtt.ConnectFlags, reason: ReasonCode, props: Any
    ) -> None:
        if reason.is_failure:
            log.error("MQTT connection refused: %s", reason)
            return
        with self._ack_lock:
            self._generation += 1
        log.info("MQTT connected to %s (session present: %s)", self._endpoint.url, flags.session_present)
        result, _ = client.subscribe(self._options.subscription, qos=1)
        if result != MQTTErrorCode.MQTT_ERR_SUCCESS:
            log.error("MQTT subscribe to %s failed: %s", self._options.subscription, result)

    def _on_subscribe(
        self, client: mqtt.Client, userdata: Any, mid: int, reasons: list[ReasonCode], props: Any
    ) -> None:
        # Connected means subscribed: a message published before the SUBACK would find no
        # subscription (unless the broker kept the session) and never reach the collector.
        refused = [r for r in reasons if r.is_failure]
        if refused:
            log.error("MQTT subscription to %s refused: %s", self._options.subscription, refused[0])
            return
        self._connected.set()

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: mqtt.DisconnectFlags, reason: ReasonCode, props: Any
    ) -> None:
        self._connected.clear()
        if reason.is_failure:
            log.warning("MQTT disconnected: %s; reconnecting", reason)
        else:
            log.info("MQTT disconnected")

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        self._queue.append(
            Delivery(
                Message(msg.topic, bytes(msg.payload), datetime.now(UTC)), msg.mid, msg.qos, self._generation
            )
        )
        if self._waiting:
            self._wakeup.set()
