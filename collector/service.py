"""The collector loop: take deliveries, classify, write a batch, commit, acknowledge.

Delivery contract (DESIGN.md): a message is acknowledged only after the
transaction holding it (as readings or in quarantine) committed. While the
database is down nothing is acknowledged; the loop retries with capped,
jittered backoff and the broker holds the backlog. A permanent database error
isolates the offending message into quarantine so one bad row never stalls
the stream.
"""

from __future__ import annotations

import logging
import queue
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import psycopg

from collector.backoff import Backoff
from collector.metrics import CollectorMetrics
from collector.mqtt import Delivery, MqttSource, SourceOptions
from collector.reasons import Reason
from collector.registry_cache import RegistryCache, current_revision, load_registry_cache
from collector.topic import subscription
from collector.validate import Limits, Outcome, Rejection, classify
from collector.writer import Batch, BatchStats, WriteResult, write_batch
from parkdata.db import connect, is_transient
from parkdata.settings import MqttEndpoint, Settings

log = logging.getLogger(__name__)

_T = TypeVar("_T")
_SWITCH_INTERVAL_S = 0.001


@dataclass(frozen=True, slots=True)
class CollectorConfig:
    database_url: str
    mqtt: MqttEndpoint
    client_id: str
    share_group: str | None = None
    topic_prefix: str = "parkenergy/v1"
    batch_size: int = 5000
    batch_latency_s: float = 0.1
    max_inflight: int = 20_000
    session_expiry_s: int = 7 * 24 * 3600
    keepalive_s: int = 30
    registry_refresh_s: float = 10.0
    retry_initial_s: float = 0.5
    retry_max_s: float = 30.0
    future_tolerance_s: int = 300

    @classmethod
    def from_settings(cls, settings: Settings, database_url: str, mqtt: MqttEndpoint) -> CollectorConfig:
        return cls(
            database_url=database_url,
            mqtt=mqtt,
            client_id=settings.mqtt_client_id,
            share_group=settings.mqtt_share_group,
            topic_prefix=settings.mqtt_topic_prefix,
            batch_size=settings.collector_batch_size,
            batch_latency_s=settings.collector_batch_latency_s,
            max_inflight=settings.collector_max_inflight,
            session_expiry_s=settings.mqtt_session_expiry_s,
            keepalive_s=settings.mqtt_keepalive_s,
            registry_refresh_s=settings.collector_registry_refresh_s,
            retry_initial_s=settings.collector_retry_initial_s,
            retry_max_s=settings.collector_retry_max_s,
            future_tolerance_s=settings.collector_future_tolerance_s,
        )


class QuarantineWriteError(RuntimeError):
    """Even the quarantine row of a refused message cannot be written: an outage, not bad data."""


class StopRequested(Exception):
    """Raised inside the retry loop when the collector must stop before it could commit."""


@dataclass(slots=True)
class _Pending:
    deliveries: list[Delivery] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    batch: Batch = field(default_factory=Batch)
    first_received: float | None = None

    def add(self, delivery: Delivery, outcome: Outcome) -> None:
        if self.first_received is None:
            self.first_received = time.monotonic()
        self.deliveries.append(delivery)
        self.outcomes.append(outcome)
        self.batch.add(delivery.message, outcome)

    @property
    def size(self) -> int:
        return self.batch.row_count + len(self.batch.quarantine) + len(self.batch.statuses)


class Collector:
    """One collector process: an MQTT source, a database connection, the loop between."""

    def __init__(self, config: CollectorConfig, metrics: CollectorMetrics | None = None) -> None:
        self.config = config
        self.metrics = metrics or CollectorMetrics()
        self.started_at = datetime.now(UTC)
        self.stop_event = threading.Event()
        self.totals = WriteResult()
        self.committed_messages = 0
        """Messages whose transaction committed (and that were acknowledged)."""
        self._limits = Limits(
            prefix=config.topic_prefix, future_tolerance=timedelta(seconds=config.future_tolerance_s)
        )
        self._source = MqttSource(
            config.mqtt,
            SourceOptions(
                client_id=config.client_id,
                subscription=subscription(config.topic_prefix, config.share_group),
                receive_maximum=config.max_inflight,
                session_expiry_s=config.session_expiry_s,
                keepalive_s=config.keepalive_s,
            ),
        )
        self._conn: psycopg.Connection[tuple[object, ...]] | None = None
        self._cache = RegistryCache()
        self._revision_checked = 0.0
        self._db_ok = False
        self._last_commit: datetime | None = None
        self._retries_since_commit = 0
        self._batch_received: float | None = None
        self._batches: queue.Queue[_Pending | None] = queue.Queue(maxsize=2)
        self._writer_error: BaseException | None = None

    # -- lifecycle -------------------------------------------------------

    def health(self) -> dict[str, object]:
        connected = self._source.connected
        return {
            "ok": connected and self._db_ok,
            "mqtt_connected": connected,
            "database_ok": self._db_ok,
            "queued_messages": self._source.pending(),
            "last_commit": self._last_commit.isoformat() if self._last_commit else None,
            "registry_revision": self._cache.revision,
            "collector_id": self.config.client_id,
        }

    def wait_connected(self, timeout_s: float) -> bool:
        """Wait until the MQTT session is up; False on timeout."""
        return self._source.wait_connected(timeout_s)

    def stop(self) -> None:
        """Ask the loop to flush, commit, acknowledge and return."""
        self.stop_event.set()

    def run(self) -> WriteResult:
        """Run until :meth:`stop`; returns the totals written."""
        log.info(
            "collector %s starting: broker %s, subscription %s",
            self.config.client_id,
            self.config.mqtt.url,
            subscription(self.config.topic_prefix, self.config.share_group),
        )
        backoff = Backoff(self.config.retry_initial_s, self.config.retry_max_s)
        try:
            self._with_retry(self._refresh_registry, backoff)
        except StopRequested:
            return self.totals
        # The writer and paho's network thread block in C at every round trip and
        # must win the GIL back from the classifying loop each time; with the
        # default 5 ms switch interval a batch waited ~50 ms for it (measured).
        # Process-wide, so restored when the collector stops.
        switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(min(switch_interval, _SWITCH_INTERVAL_S))
        writer = threading.Thread(
            target=self._writer_main, args=(backoff,), name="collector-writer", daemon=True
        )
        writer.start()
        self._source.start()
        try:
            self._loop(writer)
        finally:
            self._handoff(None, writer)
            writer.join()
            self._source.stop()
            sys.setswitchinterval(switch_interval)
            self.metrics.mqtt_connected.set(0)
            if self._conn is not None:
                self._conn.close()
        if self._writer_error is not None:
            raise self._writer_error
        log.info(
            "collector %s stopped: %d stored, %d duplicates, %d conflicts, %d quarantined",
            self.config.client_id,
            self.totals.stored,
            self.totals.duplicates,
            self.totals.conflicts,
            self.totals.quarantined,
        )
        return self.totals

    # -- the loop --------------------------------------------------------

    def _loop(self, writer: threading.Thread) -> None:
        """Receive and classify; hand each due batch to the writer thread.

        Classifying the next batch overlaps with the database working on the
        previous one. At most two batches wait beyond the one being built.
        """
        cfg = self.config
        pending = _Pending()
        source = self._source
        metrics = self.metrics
        while writer.is_alive():
            stopping = self.stop_event.is_set()
            if pending.first_received is not None:
                wait = max(0.0, pending.first_received + cfg.batch_latency_s - time.monotonic())
            else:
                wait = 0.0 if stopping else 0.25
            deliveries = source.take(500, wait)
            metrics.mqtt_connected.set(1 if source.connected else 0)
            for d in deliveries:
                pending.add(d, self._classify(d))
                if pending.size >= cfg.batch_size:  # bounds a transaction, and memory
                    if not self._handoff(pending, writer):
                        return
                    pending = _Pending()
            due = pending.first_received is not None and (
                stopping or time.monotonic() >= pending.first_received + cfg.batch_latency_s
            )
            if due:
                if not self._handoff(pending, writer):
                    return
                pending = _Pending()
            metrics.queued.set(source.pending() + len(pending.deliveries))
            if stopping and not deliveries and pending.first_received is None:
                return

    def _handoff(self, pending: _Pending | None, writer: threading.Thread) -> bool:
        """Queue a batch (``None``: the end) for the writer; False if the writer has ended."""
        while writer.is_alive():
            try:
                self._batches.put(pending, timeout=0.1)
            except queue.Full:
                continue
            return True
        return False

    def _writer_main(self, backoff: Backoff) -> None:
        """The writer thread: commit and acknowledge batches in order; refresh the registry."""
        cfg = self.config
        try:
            while True:
                try:
                    pending = self._batches.get(timeout=cfg.registry_refresh_s)
                except queue.Empty:
                    pending = _Pending()
                if pending is None:
                    return
                if pending.deliveries:
                    self._commit(pending, backoff)
                if time.monotonic() - self._revision_checked > cfg.registry_refresh_s:
                    self._with_retry(self._refresh_registry, backoff)
        except StopRequested:
            log.warning(
                "stopping with %d batches uncommitted; the broker will redeliver them",
                self._batches.qsize() + 1,
            )
        except BaseException as exc:
            self._writer_error = exc
            log.exception("collector writer failed")
        finally:
            self.stop_event.set()

    def _classify(self, delivery: Delivery) -> Outcome:
        try:
            return classify(delivery.message, self._cache, self._limits)
        except Exception as exc:  # a bug must not lose the message: keep it in quarantine
            log.exception("classifier failed on a message from %s", delivery.message.topic)
            return Outcome(
                rejections=[
                    Rejection(Reason.PAYLOAD_SCHEMA, f"collector error: {exc!r}", delivery.message.payload)
                ]
            )

    def _commit(self, pending: _Pending, backoff: Backoff) -> None:
        started = time.monotonic()
        self._batch_received = pending.first_received
        result = self._with_retry(
            self._write_isolating, backoff, pending.deliveries, pending.outcomes, pending.batch
        )
        self._source.ack(pending.deliveries)
        self._last_commit = datetime.now(UTC)
        self.totals = self.totals + result
        self.committed_messages += len(pending.deliveries)
        m = self.metrics
        m.commit_seconds.observe(time.monotonic() - started)
        m.batches.inc()
        if pending.first_received is not None:
            m.lag_seconds.set(time.monotonic() - pending.first_received)
        m.messages.inc(len(pending.deliveries))
        m.readings.inc(pending.batch.readings)
        m.stored.inc(result.stored)
        m.duplicates.inc(result.duplicates)
        m.conflicts.inc(result.conflicts)
        for outcome in pending.outcomes:
            for rejection in outcome.rejections:
                m.quarantined.labels(rejection.reason.value).inc()

    # -- database --------------------------------------------------------

    def _connection(self) -> psycopg.Connection[tuple[object, ...]]:
        if self._conn is None or self._conn.closed:
            self._conn = connect(
                self.config.database_url,
                autocommit=True,
                application_name=f"collector {self.config.client_id}",
            )
        return self._conn

    def _with_retry(self, work: Callable[..., _T], backoff: Backoff, *args: Any) -> _T:
        """Run ``work(conn, *args)`` until it succeeds; transient errors wait and retry.

        Always makes one attempt; raises :class:`StopRequested` when asked to
        stop after an attempt failed (the database is unreachable).
        """
        while True:
            try:
                result = work(self._connection(), *args)
            except (psycopg.Error, OSError, QuarantineWriteError) as exc:
                if not isinstance(exc, QuarantineWriteError) and not is_transient(exc):
                    raise
                self._db_ok = False
                self.metrics.db_up.set(0)
                self.metrics.db_retries.inc()
                self._retries_since_commit += 1
                if self._conn is not None:
                    self._conn.close()
                delay = backoff.next_delay_s()
                log.warning("database unavailable (%s); retry %d in %.1f s", exc, backoff.attempts, delay)
                if self.stop_event.is_set() or self.stop_event.wait(delay):
                    raise StopRequested from exc
                continue
            backoff.reset()
            self._db_ok = True
            self.metrics.db_up.set(1)
            return result

    def _refresh_registry(self, conn: psycopg.Connection[tuple[object, ...]]) -> None:
        self._revision_checked = time.monotonic()
        if current_revision(conn) != self._cache.revision:
            self._cache = load_registry_cache(conn)
            log.info(
                "registry revision %d: %d enterprises, %d meters",
                self._cache.revision,
                len(self._cache.enterprises),
                len(self._cache.meters),
            )

    def _write_isolating(
        self,
        conn: psycopg.Connection[tuple[object, ...]],
        deliveries: list[Delivery],
        outcomes: list[Outcome],
        batch: Batch | None = None,
    ) -> WriteResult:
        """Write all; on a permanent error, bisect down to the message the database refuses.

        ``batch`` is ``outcomes`` already assembled (the common case); sub-batches
        are assembled here. Refused messages are replaced in ``outcomes`` by a
        ``db.rejected`` rejection.
        """
        if batch is None:
            batch = Batch()
            for d, o in zip(deliveries, outcomes, strict=True):
                batch.add(d.message, o)
        received = self._batch_received
        stats = BatchStats(
            collector_id=self.config.client_id,
            started_at=self.started_at,
            readings=batch.readings,
            db_retries=self._retries_since_commit,
            lag_s=time.monotonic() - received if received is not None else None,
        )
        try:
            result = write_batch(conn, batch, stats)
            self._retries_since_commit = 0
            return result
        except psycopg.Error as exc:
            if is_transient(exc):
                raise
            if len(deliveries) == 1:
                if any(r.reason is Reason.DB_REJECTED for r in outcomes[0].rejections):
                    raise QuarantineWriteError(f"cannot write to quarantine either: {exc}") from exc
                log.error("database refused a message from %s: %s", deliveries[0].message.topic, exc)
                refused = Outcome(
                    rejections=[
                        Rejection(
                            Reason.DB_REJECTED,
                            f"{type(exc).__name__}: {exc}"[:500],
                            deliveries[0].message.payload,
                        )
                    ]
                )
                outcomes[0] = refused
                return self._write_isolating(conn, deliveries, outcomes)
            log.warning(
                "permanent database error in a batch of %d messages; isolating: %s", len(deliveries), exc
            )
            half = len(deliveries) // 2
            left_o, right_o = outcomes[:half], outcomes[half:]
            result = self._write_isolating(conn, deliveries[:half], left_o) + self._write_isolating(
                conn, deliveries[half:], right_o
            )
            outcomes[:] = left_o + right_o
            return result
