"""The quick-start demo: an example park through the real ingestion path, then a summary.

Starts (or uses) the database and broker, migrates, loads the example registry
shipped in ``parkenergy/examples``, runs a collector, publishes ``days`` of
example readings plus one message for each kind of bad input, waits until the
collector has committed everything, and prints what was stored and what went to
quarantine, read back from the ``api`` views.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from collector.service import Collector, CollectorConfig
from parkdata.carriers import MeterKind
from parkdata.db import connect
from parkdata.migrate import migrate
from parkdata.registry_file import MeterRow, read_meter_events_file, read_registry_file
from parkdata.registry_store import store_meter_events, store_registry
from parkdata.settings import MqttEndpoint, Settings
from parkenergy import services

CST = timedelta(hours=8)


@dataclass(frozen=True, slots=True)
class Publication:
    topic: str
    payload: bytes


def example_file(name: str) -> Path:
    return Path(str(resources.files("parkenergy.examples").joinpath(name)))


def _load_factor(ts: datetime) -> float:
    """Share of rated capacity in use: a day shift on weekdays over a night base (DOMAIN.md §6)."""
    local = ts + CST
    hour = local.hour + local.minute / 60
    day = 0.35 + 0.5 * max(0.0, math.sin(math.pi * (hour - 6) / 14)) if 6 <= hour <= 20 else 0.35
    return day * (0.6 if local.weekday() >= 5 else 1.0)


def example_readings(meters: list[MeterRow], start: datetime, end: datetime) -> Iterator[Publication]:
    """Readings of every meter from ``start`` to ``end``, one batch message per meter and day."""
    for meter in meters:
        interval = timedelta(seconds=meter.expected_interval_s or 900)
        capacity_per_h = meter.rated_capacity_per_h or 100.0
        multiplier = meter.multiplier or 1.0
        register = 1000.0
        ts = start
        day: list[dict[str, object]] = []
        while ts <= end:
            energy = capacity_per_h * _load_factor(ts) * interval.total_seconds() / 3600
            if meter.kind is MeterKind.REGISTER:
                register += energy / multiplier
                if meter.rollover:
                    register %= meter.rollover
                value = round(register, 3)
            elif meter.kind is MeterKind.INTERVAL:
                value = round(energy / multiplier, 3)
            else:
                value = round(capacity_per_h * _load_factor(ts), 3)
            day.append({"ts": ts.isoformat(), "value": value, "unit": meter.unit})
            ts += interval
            if len(day) >= 96 or ts > end:
                body = json.dumps({"readings": day}).encode()
                yield Publication(f"parkenergy/v1/{meter.enterprise_code}/{meter.meter_code}", body)
                day = []


def bad_examples(meter: MeterRow, now: datetime) -> list[tuple[Publication, str]]:
    """One message per common kind of bad input, with the reason the collector must give."""
    base = f"parkenergy/v1/{meter.enterprise_code}"
    ts = (now - timedelta(minutes=1)).isoformat()

    def pub(topic: str, body: str) -> Publication:
        return Publication(topic, body.encode())

    return [
        (pub(f"{base}/{meter.meter_code}", '{"ts": "' + ts + '", "value": 12'), "payload.undecodable"),
        (pub(f"{base}/NO-SUCH-METER", json.dumps({"ts": ts, "value": 1.0})), "registry.unknown_meter"),
        (
            pub(f"{base}/{meter.meter_code}", json.dumps({"ts": ts, "value": 1.0, "unit": "t"})),
            "unit.not_convertible",
        ),
        (
            pub(f"{base}/{meter.meter_code}", json.dumps({"ts": "2026-03-01T08:00:00", "value": 1.0})),
            "timestamp.naive",
        ),
        (pub(f"{base}/{meter.meter_code}", '{"ts": "' + ts + '", "value": NaN}'), "value.not_finite"),
        (
            pub(f"{base}/{meter.meter_code}", json.dumps({"ts": ts, "value": "unavailable"})),
            "value.not_numeric",
        ),
    ]


def publish_all(endpoint: MqttEndpoint, publications: list[Publication], progress: Progress) -> None:
    """Publish at QoS 1 with at most 1000 unacknowledged messages in flight."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"parkenergy-demo-pub-{time.time_ns()}")
    if endpoint.username:
        client.username_pw_set(endpoint.username, endpoint.password)
    if endpoint.tls:
        client.tls_set()
    client.max_inflight_messages_set(1000)
    client.connect(endpoint.host, endpoint.port)
    client.loop_start()
    task = progress.add_task("publishing", total=len(publications))
    try:
        pending: list[mqtt.MQTTMessageInfo] = []
        for p in publications:
            pending.append(client.publish(p.topic, p.payload, qos=1))
            if len(pending) >= 1000:
                for info in pending:
                    info.wait_for_publish(timeout=30)
                progress.advance(task, len(pending))
                pending = []
        for info in pending:
            info.wait_for_publish(timeout=30)
        progress.advance(task, len(pending))
    finally:
        client.disconnect()
        client.loop_stop()


def run_demo(settings: Settings, console: Console, *, days: int = 7, keep_running: bool = False) -> None:
    db = services.database(settings)
    with connect(db.url, autocommit=True) as conn:
        migrate(conn)
    registry = read_registry_file(example_file("registry.csv"))
    with connect(db.url) as conn:
        store_registry(conn, registry)
        store_meter_events(conn, read_meter_events_file(example_file("meter_events.csv")))
    console.print(
        f"database {'(embedded) ' if db.embedded else ''}ready; example park: "
        f"{len(registry.enterprises)} enterprises, {len(registry.meters)} meters"
    )

    now = datetime.now(UTC).replace(second=0, microsecond=0)
    end = now - timedelta(minutes=now.minute % 15)
    start = end - timedelta(days=days)
    good = list(example_readings(list(registry.meters), start, end))
    first = registry.meters[0]
    codes: dict[str, set[str]] = {}
    for m in registry.meters:
        codes.setdefault(m.enterprise_code, set()).add(m.meter_code)
    # Spoofing is visible to the collector when the meter code is foreign to the topic's enterprise.
    spoofed, other = next(
        (m, e)
        for m in registry.meters
        for e in codes
        if e != m.enterprise_code and m.meter_code not in codes[e]
    )
    spoof = Publication(
        f"parkenergy/v1/{other}/{spoofed.meter_code}",
        json.dumps({"ts": now.isoformat(), "value": 1.0}).encode(),
    )
    bad = [*bad_examples(first, now), (spoof, "registry.meter_not_owned")]
    publications = good + [p for p, _ in bad]

    with services.broker(settings) as endpoint:
        config = CollectorConfig.from_settings(settings, db.url, endpoint)
        collector = Collector(config)
        worker = threading.Thread(target=collector.run, name="collector", daemon=True)
        worker.start()
        if not collector.wait_connected(30):
            raise RuntimeError(f"the collector could not connect to {endpoint.url}")
        started = time.monotonic()
        with Progress(console=console, transient=True) as progress:
            publish_all(endpoint, publications, progress)
            task = progress.add_task("committing", total=len(publications))
            deadline = time.monotonic() + 600
            while collector.committed_messages < len(publications):
                if not worker.is_alive() or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"the collector committed only {collector.committed_messages}"
                        f" of {len(publications)} messages"
                    )
                progress.update(task, completed=collector.committed_messages)
                time.sleep(0.1)
        elapsed = time.monotonic() - started
        _summary(console, db.url, elapsed, collector)
        if keep_running:
            console.print(
                f"collector running: publish to {endpoint.url} under parkenergy/v1/{{enterprise}}/{{meter}}; "
                "Ctrl-C stops"
            )
            try:
                while worker.is_alive():
                    worker.join(0.5)
            except KeyboardInterrupt:
                pass
        collector.stop()
        worker.join(30)


def _summary(console: Console, url: str, elapsed_s: float, collector: Collector) -> None:
    totals = collector.totals
    console.print(
        f"\n[bold]ingested in {elapsed_s:.1f} s[/bold]: {totals.stored} readings stored, "
        f"{totals.duplicates} duplicates, {totals.conflicts} conflicts, {totals.quarantined} quarantined"
    )
    with connect(url, autocommit=True) as conn:
        stored = Table(
            "park",
            "enterprise",
            "carrier",
            "meters",
            "readings",
            "first (UTC+8)",
            "last (UTC+8)",
            title="readings stored (api.reading)",
        )
        for row in conn.execute(
            "SELECT r.park_code, e.enterprise_name, r.carrier, count(DISTINCT r.meter_code), count(*),"
            " to_char(min(r.ts) AT TIME ZONE 'Asia/Shanghai', 'MM-DD HH24:MI'),"
            " to_char(max(r.ts) AT TIME ZONE 'Asia/Shanghai', 'MM-DD HH24:MI')"
            " FROM api.reading r JOIN api.enterprise e USING (enterprise_code)"
            " GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
        ):
            stored.add_row(*(str(v) for v in row))
        console.print(stored)
        quarantine = Table("reason", "messages", "example detail", title="quarantine (api.quarantine)")
        for row in conn.execute(
            "SELECT reason, count(*), min(detail) FROM api.quarantine GROUP BY 1 ORDER BY 1"
        ):
            quarantine.add_row(*(str(v) for v in row))
        console.print(quarantine)
