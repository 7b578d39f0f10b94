"""Helpers of the simulator tests: a backfill through the collector, expected readings,
quarantine and what the database holds."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TextIO

import psycopg

from collector.service import Collector
from parkdata.registry_file import read_meter_events_file
from parkdata.registry_store import store_meter_events
from parkdata.settings import MqttEndpoint
from parkenergy import pipeline
from simulators import DayOutput, RunStats, Simulation
from tests.harness import prepare_database, wait_for

Reading = tuple[str, str, int, float]  # enterprise code, meter code, epoch s, value


def publish_backfill(
    sim: Simulation,
    collector: Collector,
    mqtt_url: str,
    truth: TextIO,
    *,
    max_inflight: int,
    timeout_s: float,
) -> RunStats:
    """Publish ``sim``'s backfill (QoS 1) and wait until ``collector`` has committed every message."""
    stats = pipeline.publish_backfill(
        sim, MqttEndpoint.parse(mqtt_url), truth=truth, max_inflight=max_inflight
    )
    wait_for(
        lambda: collector.committed_messages >= stats.messages,
        timeout_s,
        lambda: f"{collector.committed_messages} of {stats.messages} messages committed",
    )
    return stats


def stored_readings(sim: Simulation, days: list[DayOutput]) -> set[Reading]:
    """The readings the collector must store: every gateway-batch reading except duplicates."""
    out: set[Reading] = set()
    park = sim.park
    for d in days:
        for meter, ts, value, dup in zip(
            d.meter.tolist(), d.ts.tolist(), d.value.tolist(), d.duplicate.tolist(), strict=True
        ):
            if not dup:
                m = park.meters[meter]
                out.add((park.enterprises[m.enterprise_index].code, m.code, ts, value))
    return out


def database_readings(url: str) -> set[Reading]:
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute("SELECT enterprise_code, meter_code, ts, value FROM api.reading").fetchall()
    return {(str(e), str(m), int(ts.timestamp()), float(v)) for e, m, ts, v in rows}


def quarantine_reasons(url: str) -> Counter[str]:
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute("SELECT reason, count(*) FROM api.quarantine GROUP BY reason").fetchall()
    return Counter({str(r): int(n) for r, n in rows})


def load_simulated_registry(url: str, directory: Path) -> None:
    """Migrate and load the simulator's registry and meter-event files, as `parkenergy registry load` does."""
    prepare_database(url, directory / "registry.csv")
    with psycopg.connect(url) as conn:
        store_meter_events(conn, read_meter_events_file(directory / "meter_events.csv"))
