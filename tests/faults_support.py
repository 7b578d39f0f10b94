"""Helpers for the fault tests: a known stream, a publisher that survives a broker
restart, the collector as a separate process, and exact checks of what was stored."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from parkdata.settings import MqttEndpoint
from tests.harness import wait_for

E1 = "91420700MA49ABCD1X"
E2 = "91420704MA4A0PQR2Y"
PREFIX = "parkenergy/v1"
TARGETS: tuple[tuple[str, str], ...] = ((E1, "EL01"), (E1, "GAS01"), (E1, "PV01"), (E2, "EL01"))
"""Register meters of the test registry that receive the good readings."""

CST = timezone(timedelta(hours=8))
BASE = datetime(2024, 1, 1, tzinfo=CST)
BASE_MS = int(BASE.timestamp() * 1000)
STEP_MS = 60_000

Good = tuple[str, str, int, float]
"""(enterprise, meter, ts in epoch ms, value)."""
Bad = tuple[str, str, bytes]
"""(topic, reason, payload) of a message quarantined whole."""


def topic(enterprise: str, meter: str) -> str:
    return f"{PREFIX}/{enterprise}/{meter}"


def _ts(ms: int, as_text: bool) -> int | str:
    if not as_text:
        return ms
    return datetime.fromtimestamp(ms / 1000, tz=CST).isoformat()


@dataclass(slots=True)
class Stream:
    """Messages in publishing order with exactly what each must become."""

    messages: list[tuple[str, bytes]] = field(default_factory=list)
    good: set[Good] = field(default_factory=set)
    bad: set[Bad] = field(default_factory=set)

    @property
    def first_good(self) -> tuple[str, bytes]:
        return self.messages[0]


def make_stream(
    batches: int,
    per_message: int = 100,
    *,
    bad_every: int = 50,
    spoof_every: int = 200,
    tag: int = 0,
) -> Stream:
    """``batches`` messages of ``per_message`` readings spread over TARGETS, plus bad messages.

    Timestamps are unique per meter (one minute apart), values strictly
    increasing per meter and exact in binary (multiples of 1/4). Every
    ``bad_every``-th message is followed by one with a naive timestamp
    (``timestamp.naive``); every ``spoof_every``-th by a reading for E2's
    COAL01 published on E1's prefix (``registry.meter_not_owned``).
    ``tag`` keeps bad payloads of different streams apart.
    """
    stream = Stream()
    counters = dict.fromkeys(TARGETS, 0)
    for i in range(batches):
        enterprise, meter = TARGETS[i % len(TARGETS)]
        start = counters[(enterprise, meter)]
        counters[(enterprise, meter)] = start + per_message
        readings = []
        for k in range(start, start + per_message):
            ms = BASE_MS + k * STEP_MS
            value = 1000.0 + k * 0.25
            readings.append({"ts": _ts(ms, as_text=i % 2 == 1), "value": value})
            stream.good.add((enterprise, meter, ms, value))
        stream.messages.append((topic(enterprise, meter), json.dumps({"readings": readings}).encode()))
        if bad_every and i % bad_every == bad_every - 1:
            naive = (BASE + timedelta(days=400, seconds=i + tag * 1_000_000)).replace(tzinfo=None)
            payload = json.dumps({"ts": naive.isoformat(), "value": 1.0, "seq": i}).encode()
            stream.messages.append((topic(E1, "EL01"), payload))
            stream.bad.add((topic(E1, "EL01"), "timestamp.naive", payload))
        if spoof_every and i % spoof_every == spoof_every - 1:
            payload = json.dumps({"ts": BASE_MS + i * STEP_MS, "value": 5.0, "seq": i + tag}).encode()
            stream.messages.append((topic(E1, "COAL01"), payload))
            stream.bad.add((topic(E1, "COAL01"), "registry.meter_not_owned", payload))
    return stream


# -- the database side ---------------------------------------------------------


class Db:
    """One autocommit connection for polling and for the final exact checks."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.conn = psycopg.connect(url, autocommit=True)

    def close(self) -> None:
        self.conn.close()

    def scalar(self, query: str, params: Sequence[object] = ()) -> Any:
        row = self.conn.execute(query, params).fetchone()
        assert row is not None
        return row[0]

    def readings(self) -> int:
        return int(self.scalar("SELECT count(*) FROM ingest.reading"))

    def quarantined(self) -> int:
        return int(self.scalar("SELECT count(*) FROM ingest.quarantine"))

    def stored(self) -> list[Good]:
        return [
            (str(e), str(m), int(str(ms)), float(str(v)))
            for e, m, ms, v in self.conn.execute(
                "SELECT enterprise_code, meter_code, (extract(epoch FROM ts) * 1000)::bigint, value"
                " FROM api.reading"
            )
        ]

    def quarantine(self) -> list[tuple[str, str, bytes, int]]:
        return [
            (str(t), str(r), bytes(p), int(str(i)))
            for t, r, p, i in self.conn.execute(
                "SELECT topic, reason, payload, item_index FROM ingest.quarantine"
            )
        ]

    def assert_exact(
        self, good: set[Good], bad: set[Bad], *, extra_bad: frozenset[Bad] = frozenset()
    ) -> None:
        """Stored readings are exactly ``good``; quarantine exactly ``bad | extra_bad``."""
        stored = self.stored()
        total, distinct = self.conn.execute(
            "SELECT count(*), count(DISTINCT (meter_id, ts)) FROM ingest.reading"
        ).fetchone() or (None, None)
        assert total == distinct == len(stored), f"duplicate keys: {total} rows, {distinct} distinct"
        got = set(stored)
        missing, unexpected = good - got, got - good
        assert not missing and not unexpected, (
            f"stored {len(got)} readings, published {len(good)} good: "
            f"{len(missing)} missing (e.g. {sorted(missing)[:3]}), "
            f"{len(unexpected)} unexpected (e.g. {sorted(unexpected)[:3]})"
        )
        assert self.scalar("SELECT count(*) FROM ingest.reading_conflict") == 0
        rows = self.quarantine()
        want = bad | extra_bad
        assert all(i == -1 for *_, i in rows), "only whole messages were expected in quarantine"
        got_q = {(t, r, p) for t, r, p, _ in rows}
        assert len(rows) == len(got_q), (
            f"quarantine holds duplicates: {len(rows)} rows, {len(got_q)} distinct"
        )
        assert got_q == want, (
            f"quarantine: {len(got_q)} rows, expected {len(want)}; "
            f"missing {sorted(want - got_q)[:3]}, unexpected {sorted(got_q - want)[:3]}"
        )

    def assert_stats(self, stored: int, quarantined: int, messages_at_least: int) -> dict[str, int]:
        """The counters in ``api.collector_stats`` (written in each batch's transaction) add up exactly.

        ``stored`` and ``quarantined`` count only new rows, so they are exact
        whatever was redelivered; ``messages`` counts redeliveries too.
        Returns the summed counters.
        """
        row = self.conn.execute(
            "SELECT coalesce(sum(messages), 0), coalesce(sum(stored), 0), coalesce(sum(duplicates), 0),"
            " coalesce(sum(conflicts), 0), coalesce(sum(quarantined), 0), coalesce(sum(db_retries), 0)"
            " FROM api.collector_stats"
        ).fetchone()
        assert row is not None
        names = ("messages", "stored", "duplicates", "conflicts", "quarantined", "db_retries")
        totals = {k: int(str(v)) for k, v in zip(names, row, strict=True)}
        assert (totals["stored"], totals["quarantined"], totals["conflicts"]) == (stored, quarantined, 0), (
            totals
        )
        assert totals["messages"] >= messages_at_least, totals
        return totals

    def wait_complete(self, stream_good: int, stream_bad: int, timeout_s: float, what: str = "") -> float:
        """Poll until the counts reach the expected totals; returns the seconds waited."""
        started = time.monotonic()
        wait_for(
            lambda: self.readings() >= stream_good and self.quarantined() >= stream_bad,
            timeout_s,
            lambda: (
                f"{what}: {self.readings()}/{stream_good} readings, "
                f"{self.quarantined()}/{stream_bad} quarantined"
            ),
            interval_s=0.1,
        )
        return time.monotonic() - started


# -- the publisher ---------------------------------------------------------------


class ResilientPublisher:
    """QoS 1 publisher with a persistent session (MQTT 3.1.1, clean_session=False).

    paho reconnects by itself and resends its in-flight messages after a
    reconnect; on top of that, :meth:`drain` republishes every message whose
    PUBACK has not arrived once the connection is back. Duplicates are fine:
    the collector is idempotent.
    """

    def __init__(self, mqtt_url: str, client_id: str, max_inflight: int = 200) -> None:
        endpoint = MqttEndpoint.parse(mqtt_url)
        self._lock = threading.Lock()
        self._acked: set[int] = set()  # indexes into self._sent
        self._mid_index: dict[int, int] = {}
        self._early_acks: set[int] = set()  # PUBACKs that overtook the registration of their mid
        self._sent: list[tuple[str, bytes]] = []
        self.connects = 0
        self.republished = 0
        self._connected = threading.Event()
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=False,
            protocol=mqtt.MQTTv311,
        )
        client.max_inflight_messages_set(max_inflight)
        client.max_queued_messages_set(0)
        client.reconnect_delay_set(min_delay=1, max_delay=2)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        self.client = client
        client.connect_async(endpoint.host, endpoint.port, keepalive=10)
        client.loop_start()
        if not self._connected.wait(15):
            client.loop_stop()
            raise AssertionError(f"publisher could not connect to {mqtt_url}")

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if not reason.is_failure:
            self.connects += 1
            self._connected.set()

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        self._connected.clear()

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason: Any, props: Any) -> None:
        with self._lock:
            index = self._mid_index.pop(mid, None)
            if index is None:
                self._early_acks.add(mid)
            else:
                self._acked.add(index)

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def unacked(self) -> int:
        with self._lock:
            return len(self._sent) - len(self._acked)

    def _send(self, index: int) -> None:
        topic_, payload = self._sent[index]
        # Not under self._lock: paho calls on_publish holding its own mutex (lock order).
        info = self.client.publish(topic_, payload, qos=1)
        if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
            raise AssertionError(f"publish refused: {mqtt.error_string(info.rc)}")
        with self._lock:
            if info.mid in self._early_acks:
                self._early_acks.discard(info.mid)
                self._acked.add(index)
            else:
                self._mid_index[info.mid] = index

    def publish(self, topic_: str, payload: bytes) -> None:
        with self._lock:
            self._sent.append((topic_, payload))
            index = len(self._sent) - 1
        self._send(index)

    def publish_all(
        self,
        messages: Sequence[tuple[str, bytes]],
        rate_per_s: float | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        """Publish in order, at most ``rate_per_s`` messages a second, at most 2000 unacknowledged."""
        started = time.monotonic()
        for n, (topic_, payload) in enumerate(messages):
            if stop is not None and stop.is_set():
                return
            if rate_per_s:
                delay = started + n / rate_per_s - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            wait_for(lambda: self.unacked() < 2000, 60, "publisher backlog below 2000")
            self.publish(topic_, payload)

    def drain(self, timeout_s: float = 60.0, grace_s: float = 3.0) -> None:
        """Wait for every PUBACK; republish what is still unacknowledged ``grace_s`` after a reconnect."""
        deadline = time.monotonic() + timeout_s
        last_progress = time.monotonic()
        seen = -1
        while True:
            with self._lock:
                missing = [i for i in range(len(self._sent)) if i not in self._acked]
            if not missing:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(missing)} messages never acknowledged by the broker")
            if len(missing) != seen:
                seen, last_progress = len(missing), time.monotonic()
            elif self.connected and time.monotonic() - last_progress > grace_s:
                for i in missing:
                    self._send(i)
                self.republished += len(missing)
                last_progress = time.monotonic()
            time.sleep(0.05)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def __enter__(self) -> ResilientPublisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Background:
    """Run ``fn`` on a thread; :meth:`join` re-raises what it raised."""

    def __init__(self, fn: Callable[[], None], name: str) -> None:
        self._error: BaseException | None = None
        self.done = threading.Event()

        def run() -> None:
            try:
                fn()
            except BaseException as exc:  # re-raised in the test thread by join()
                self._error = exc
            finally:
                self.done.set()

        self._thread = threading.Thread(target=run, name=name, daemon=True)
        self._thread.start()

    def join(self, timeout_s: float) -> None:
        self._thread.join(timeout_s)
        assert not self._thread.is_alive(), f"{self._thread.name} did not finish in {timeout_s} s"
        if self._error is not None:
            raise self._error


def warm_up(pub: ResilientPublisher, message: tuple[str, bytes], db: Db, timeout_s: float = 30.0) -> None:
    """Publish ``message`` (a good one) until a reading is stored: the subscription is in place.

    Republishing is harmless: the same readings again are no-ops.
    """
    deadline = time.monotonic() + timeout_s
    while db.readings() == 0:
        if time.monotonic() > deadline:
            raise AssertionError("the collector stored nothing: not subscribed?")
        pub.publish(*message)
        again = time.monotonic() + 0.5
        while db.readings() == 0 and time.monotonic() < again:
            time.sleep(0.02)


# -- the collector as a process ---------------------------------------------------


def collector_command() -> list[str]:
    script = Path(sys.executable).with_name("parkenergy")
    if script.exists():
        return [str(script), "collect"]
    return [sys.executable, "-c", "from parkenergy.cli import main; main()", "collect"]


class CollectorProcess:
    """``parkenergy collect`` in a subprocess, configured through the environment."""

    def __init__(self, database_url: str, mqtt_url: str, client_id: str, workdir: Path, **env: str) -> None:
        self.workdir = workdir
        self.log_path = workdir / f"collector-{client_id}.log"
        self.env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("DATABASE_", "MQTT_", "COLLECTOR_", "PARKENERGY_", "LOG_"))
        }
        self.env.update(
            DATABASE_URL=database_url,
            MQTT_URL=mqtt_url,
            MQTT_CLIENT_ID=client_id,
            COLLECTOR_HTTP_PORT="0",
            COLLECTOR_RETRY_INITIAL_S="0.1",
            COLLECTOR_RETRY_MAX_S="1",
            COLLECTOR_BATCH_LATENCY_S="0.05",
            LOG_LEVEL="WARNING",
            PARKENERGY_HOME=str(workdir / "home"),
            **env,
        )
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> CollectorProcess:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.starts += 1
        with self.log_path.open("ab") as log:
            log.write(f"--- start {self.starts} at {datetime.now(UTC).isoformat()}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                collector_command(),
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
            )
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """kill -9."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self, timeout_s: float = 10.0) -> tuple[int | None, float]:
        """SIGTERM; returns (exit code or None if still running after timeout_s, seconds to exit)."""
        assert self.proc is not None
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            code: int | None = self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            code = None
        return code, time.monotonic() - started

    def ensure_dead(self) -> None:
        if self.alive():
            assert self.proc is not None
            self.proc.kill()
            self.proc.wait(10)

    def log(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-6000:]
        except OSError:
            return ""


class CollectorThread:
    """A :class:`Collector` on a thread that records a crash without keeping the exception.

    ``harness.running_collector`` re-raises the collector's exception; after a
    runaway retry that exception chains ~1000 psycopg errors and pytest spends
    minutes formatting it. Here only its type and first line are kept.
    """

    def __init__(self, collector: Any) -> None:
        self.collector = collector
        self.crash: str | None = None

        def run() -> None:
            try:
                collector.run()
            except BaseException as exc:  # reported by the test, not re-raised
                self.crash = f"{type(exc).__name__}: {str(exc)[:200]}"

        self._thread = threading.Thread(target=run, name="collector", daemon=True)

    def start(self, timeout_s: float = 30.0) -> CollectorThread:
        self._thread.start()
        assert self.collector.wait_connected(timeout_s), "collector did not connect to the broker"
        return self

    def alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout_s: float = 60.0) -> None:
        self.collector.stop()
        self._thread.join(timeout_s)
        assert not self._thread.is_alive(), "collector did not stop"
