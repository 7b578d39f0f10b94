"""Every golden payload through a real Mosquitto, the collector and a real PostgreSQL."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from pathlib import Path

import psycopg

from parkdata.settings import MqttEndpoint
from parkenergy.embedded import EmbeddedBroker
from tests.golden import load_cases
from tests.harness import Publisher, collector_config, prepare_database, running_collector, wait_for

GOOD, BAD = load_cases()


def _stored(url: str) -> set[tuple[str, str, datetime, float]]:
    with psycopg.connect(url) as conn:
        return {
            (str(e), str(m), ts, float(v))  # type: ignore[arg-type]
            for e, m, ts, v in conn.execute("SELECT enterprise_code, meter_code, ts, value FROM api.reading")
        }


def test_golden_payloads_are_stored_or_quarantined_with_their_reason(
    database_url: str, mqtt_url: str
) -> None:
    prepare_database(database_url)
    cases = GOOD + BAD
    with running_collector(collector_config(database_url, mqtt_url)) as collector, Publisher(mqtt_url) as pub:
        pub.publish_all((c.topic, c.payload) for c in cases)
        wait_for(lambda: collector.committed_messages >= len(cases), what="all messages committed")

    expected_rows = {(c.enterprise, m, ts, v) for c in GOOD for m, ts, v in c.stored}
    assert _stored(database_url) == expected_rows

    with psycopg.connect(database_url) as conn:
        quarantined = conn.execute(
            "SELECT topic, reason, item_index, payload FROM ingest.quarantine ORDER BY quarantine_id"
        ).fetchall()
        statuses = dict(conn.execute("SELECT enterprise_code, status FROM api.gateway_status").fetchall())
        stats = conn.execute("SELECT messages, stored, quarantined FROM api.collector_stats").fetchone()
    expected_quarantine = sorted(
        [(c.topic, c.reason, -1, c.payload) for c in BAD]
        + [(c.topic, r, i, None) for c in GOOD for i, r in c.quarantined_items],
        key=lambda t: (t[0], str(t[1]), t[2]),
    )
    got = sorted(
        [(t, r, i, bytes(p) if i == -1 else None) for t, r, i, p in quarantined],  # type: ignore[arg-type]
        key=lambda t: (t[0], str(t[1]), t[2]),
    )
    assert got == expected_quarantine
    assert statuses == {c.enterprise: c.status for c in GOOD if c.status}
    assert stats == (len(cases), len(expected_rows), len(expected_quarantine))


def test_redelivery_is_a_no_op_and_a_different_value_is_a_conflict(database_url: str, mqtt_url: str) -> None:
    prepare_database(database_url)
    topic = "parkenergy/v1/91420700MA49ABCD1X/EL01"
    first = b'{"ts": "2026-03-01T08:15:00+08:00", "value": 100.0}'
    again = b'{"ts": "2026-03-01T08:15:00+08:00", "value": 100.0}'
    other = b'{"ts": "2026-03-01T08:15:00+08:00", "value": 101.0}'
    bad = b'{"ts": "2026-03-01T08:15:00", "value": 1}'
    with running_collector(collector_config(database_url, mqtt_url)) as collector, Publisher(mqtt_url) as pub:
        pub.publish_all(
            [(topic, first), (topic, again), (topic, other), (topic, other), (topic, bad), (topic, bad)]
        )
        wait_for(lambda: collector.committed_messages >= 6, what="6 messages committed")
        totals = collector.totals
    assert (totals.stored, totals.duplicates, totals.conflicts) == (1, 1, 2)
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT value FROM api.reading").fetchall() == [(100.0,)]
        assert conn.execute(
            "SELECT stored_value, conflicting_value FROM api.reading_conflict"
        ).fetchall() == [(100.0, 101.0)]
        # the same bad message twice is one quarantine row: redelivery never doubles
        assert conn.execute("SELECT count(*) FROM ingest.quarantine").fetchone() == (1,)


def test_collector_stores_through_the_pure_python_fallback_broker(database_url: str, tmp_path: Path) -> None:
    """Without a mosquitto binary the embedded broker is amqtt, which speaks MQTT 3.1.1 only."""
    prepare_database(database_url)
    cases = [c for c in GOOD if c.stored] + BAD[:3]
    with EmbeddedBroker(tmp_path / "amqtt", prefer_mosquitto=False) as fallback:
        assert fallback.kind == "amqtt"
        config = collector_config(database_url, fallback.url)
        config = replace(config, mqtt=MqttEndpoint.parse(fallback.url, mqtt5=False))
        with running_collector(config) as collector, Publisher(fallback.url) as pub:
            pub.publish_all((c.topic, c.payload) for c in cases)
            wait_for(lambda: collector.committed_messages >= len(cases), what="all messages committed")
    expected_rows = {(c.enterprise, m, ts, v) for c in cases for m, ts, v in c.stored}
    assert _stored(database_url) == expected_rows
    with psycopg.connect(database_url) as conn:
        reasons = sorted(r for (r,) in conn.execute("SELECT reason FROM ingest.quarantine"))
    assert reasons == sorted(
        [str(c.reason) for c in BAD[:3]] + [r for c in cases for _, r in c.quarantined_items]
    )
