"""Counters for Prometheus. One registry per collector, so that several can run in one process."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


@dataclass(slots=True)
class CollectorMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    messages: Counter = field(init=False)
    readings: Counter = field(init=False)
    stored: Counter = field(init=False)
    duplicates: Counter = field(init=False)
    conflicts: Counter = field(init=False)
    quarantined: Counter = field(init=False)
    db_retries: Counter = field(init=False)
    batches: Counter = field(init=False)
    commit_seconds: Histogram = field(init=False)
    lag_seconds: Gauge = field(init=False)
    queued: Gauge = field(init=False)
    mqtt_connected: Gauge = field(init=False)
    db_up: Gauge = field(init=False)

    def __post_init__(self) -> None:
        r = self.registry
        p = "parkenergy_collector_"
        self.messages = Counter(p + "messages", "MQTT messages received", registry=r)
        self.readings = Counter(p + "readings", "Readings received (valid or not)", registry=r)
        self.stored = Counter(p + "readings_stored", "Readings newly stored", registry=r)
        self.duplicates = Counter(p + "readings_duplicate", "Identical redeliveries (no-op)", registry=r)
        self.conflicts = Counter(p + "readings_conflict", "Different value for a stored key", registry=r)
        self.quarantined = Counter(
            p + "quarantined", "Messages or items put in quarantine", ["reason"], registry=r
        )
        self.db_retries = Counter(
            p + "db_retries", "Batch writes retried after a transient error", registry=r
        )
        self.batches = Counter(p + "batches_committed", "Transactions committed", registry=r)
        self.commit_seconds = Histogram(
            p + "commit_seconds",
            "Time to write and commit one batch",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
        self.lag_seconds = Gauge(
            p + "lag_seconds", "Receipt to commit, oldest message of last batch", registry=r
        )
        self.queued = Gauge(p + "queued_messages", "Received, not yet committed", registry=r)
        self.mqtt_connected = Gauge(p + "mqtt_connected", "1 when connected to the broker", registry=r)
        self.db_up = Gauge(p + "db_up", "1 when the last database operation succeeded", registry=r)
