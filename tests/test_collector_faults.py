"""Fault tests with real servers: every test ends with exact counts.

Each test publishes a known stream (unique (meter, ts) readings in 100-reading
messages over four register meters of two enterprises, plus naive-timestamp
messages and spoofed meters), injects one fault mid-stream, and asserts at the
end that the stored readings are exactly the published good ones (the full
set of (enterprise, meter, ts, value)), that no key is stored twice, and that
the quarantine holds exactly the published bad messages with their reasons.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from collector.service import Collector
from parkenergy.embedded import EmbeddedBroker, EmbeddedPostgres
from tests.faults_support import (
    BASE_MS,
    E1,
    STEP_MS,
    Background,
    CollectorProcess,
    CollectorThread,
    Db,
    ResilientPublisher,
    make_stream,
    topic,
    wait_for,
    warm_up,
)
from tests.harness import collector_config, prepare_database, running_collector

pytestmark = pytest.mark.fault


def _report(name: str, **facts: object) -> None:
    """Shown with ``pytest -rP``: what the fault actually interrupted."""
    print(f"{name}: " + ", ".join(f"{k}={v}" for k, v in facts.items()))


@pytest.mark.timeout(150)
def test_kill_9_of_the_collector_mid_stream_loses_and_doubles_nothing(
    database_url: str, mqtt_url: str, tmp_path: Path
) -> None:
    prepare_database(database_url)
    stream = make_stream(1000, tag=1)  # 100 000 readings, 25 bad messages
    total = len(stream.good)
    assert total == 100_000
    db = Db(database_url)
    proc = CollectorProcess(database_url, mqtt_url, "fault-kill9", tmp_path)
    try:
        proc.start()
        with ResilientPublisher(mqtt_url, "publisher-kill9") as pub:
            warm_up(pub, stream.first_good, db)
            publishing = Background(
                lambda: pub.publish_all(stream.messages[1:], rate_per_s=400), "publisher-kill9"
            )
            wait_for(lambda: db.readings() >= total // 3, 60, lambda: f"a third stored\n{proc.log()}")
            proc.kill()
            at_kill = db.readings()
            assert at_kill < total, "the stream was already stored when the collector was killed"
            publishing_at_kill = not publishing.done.is_set()
            time.sleep(0.5)  # the broker queues for the dead collector's persistent session
            proc.start()  # same client id: the session and its unacknowledged messages come back
            publishing.join(60)
            pub.drain(60)
            waited = db.wait_complete(total, len(stream.bad), 90, f"after restart\n{proc.log()}")
        code, stop_s = proc.terminate(15)
        assert code == 0, f"collector exit code {code} after SIGTERM\n{proc.log()}"
        db.assert_exact(stream.good, stream.bad)
        stats = db.assert_stats(total, len(stream.bad), len(stream.messages))
        _report(
            "kill -9",
            stored_at_kill=at_kill,
            still_publishing_at_kill=publishing_at_kill,
            completed_after_restart_s=round(waited, 1),
            stop_s=round(stop_s, 2),
            stats=stats,
        )
    finally:
        proc.ensure_dead()
        db.close()


@pytest.mark.timeout(120)
def test_postgres_down_for_10_s_mid_stream_is_retried_and_loses_nothing(
    pg_private: EmbeddedPostgres, mqtt_url: str
) -> None:
    url = pg_private.create_database("faults")
    prepare_database(url)
    stream = make_stream(600, tag=2)  # 60 000 readings
    total = len(stream.good)
    port = pg_private.port
    db = Db(url)
    try:
        config = collector_config(url, mqtt_url, "fault-pg")
        with running_collector(config) as collector, ResilientPublisher(mqtt_url, "publisher-pg") as pub:
            warm_up(pub, stream.first_good, db)
            publishing = Background(
                lambda: pub.publish_all(stream.messages[1:], rate_per_s=150), "publisher-pg"
            )
            wait_for(lambda: db.readings() >= total // 3, 60, "a third stored")
            at_stop = db.readings()
            db.close()
            pg_private.stop()
            down_at = time.monotonic()
            committed_at_stop = collector.committed_messages
            wait_for(lambda: collector.health()["database_ok"] is False, 10, "collector noticing the outage")
            retries = collector.metrics.registry.get_sample_value
            wait_for(
                lambda: (retries("parkenergy_collector_db_retries_total") or 0) >= 2,
                10,
                "collector retrying",
            )
            # The outage must hit mid-stream: readings were still to be stored when it began
            # (whether they still waited in the publisher, the broker or the collector).
            assert at_stop < total, "everything was stored before the outage"
            time.sleep(max(0.0, 10.0 - (time.monotonic() - down_at)))  # the outage itself
            retries_in_outage = retries("parkenergy_collector_db_retries_total")
            assert collector.committed_messages == committed_at_stop, "committed while the database was down?"
            pg_private.start()
            assert pg_private.port == port, "PostgreSQL came back on another port"
            db = Db(url)
            publishing.join(60)
            pub.drain(60)
            waited = db.wait_complete(total, len(stream.bad), 60, "after the outage")
            wait_for(lambda: collector.health()["database_ok"] is True, 10, "collector healthy again")
            retries_total = retries("parkenergy_collector_db_retries_total")
        assert retries_total is not None and retries_total > 0
        db_retries = db.scalar("SELECT db_retries FROM api.collector_stats WHERE collector_id = 'fault-pg'")
        assert db_retries > 0, "the retries were not recorded in api.collector_stats"
        db.assert_exact(stream.good, stream.bad)
        stats = db.assert_stats(total, len(stream.bad), len(stream.messages))
        _report(
            "postgres down",
            stored_at_stop=at_stop,
            retries_during_outage=retries_in_outage,
            committed_messages_during_outage=committed_at_stop,
            collector_stats_db_retries=db_retries,
            completed_after_restart_s=round(waited, 1),
            stats=stats,
        )
    finally:
        db.close()


@pytest.mark.timeout(120)
def test_mosquitto_restart_mid_stream_loses_nothing(
    database_url: str, broker: EmbeddedBroker, mqtt_url: str
) -> None:
    prepare_database(database_url)
    stream = make_stream(600, tag=3)
    total = len(stream.good)
    db = Db(database_url)
    try:
        config = collector_config(database_url, mqtt_url, "fault-broker")
        with (
            running_collector(config) as collector,
            ResilientPublisher(mqtt_url, "publisher-broker") as pub,
        ):
            warm_up(pub, stream.first_good, db)
            publishing = Background(
                lambda: pub.publish_all(stream.messages[1:], rate_per_s=200), "publisher-broker"
            )
            wait_for(lambda: db.readings() >= total // 3, 60, "a third stored")
            at_restart = db.readings()
            port = broker.port
            broker.restart()
            assert broker.port == port
            assert at_restart < total, "everything was stored before the restart"
            publishing.join(60)
            pub.drain(60)
            waited = db.wait_complete(total, len(stream.bad), 60, "after the broker restart")
            assert pub.connects >= 2, "the publisher never reconnected"
            assert collector.health()["mqtt_connected"]
        db.assert_exact(stream.good, stream.bad)
        stats = db.assert_stats(total, len(stream.bad), len(stream.messages))
        _report(
            "mosquitto restart",
            stored_at_restart=at_restart,
            publisher_republished=pub.republished,
            completed_after_restart_s=round(waited, 1),
            stats=stats,
        )
    finally:
        db.close()


@pytest.mark.timeout(90)
def test_two_collectors_in_one_share_group_split_the_stream_exactly(database_url: str, mqtt_url: str) -> None:
    prepare_database(database_url)
    stream = make_stream(400, tag=4)
    db = Db(database_url)
    try:
        config_a = collector_config(database_url, mqtt_url, "fault-share-a", share_group="faults")
        config_b = collector_config(database_url, mqtt_url, "fault-share-b", share_group="faults")
        with (
            running_collector(config_a) as a,
            running_collector(config_b) as b,
            ResilientPublisher(mqtt_url, "publisher-share") as pub,
        ):
            warm_up(pub, stream.first_good, db)
            pub.publish_all(stream.messages[1:])
            pub.drain(60)
            db.wait_complete(len(stream.good), len(stream.bad), 60, "shared stream")
            committed = (a.committed_messages, b.committed_messages)
        db.assert_exact(stream.good, stream.bad)
        stats: dict[str, int] = dict(
            db.conn.execute(
                "SELECT collector_id, stored FROM api.collector_stats ORDER BY collector_id"
            ).fetchall()
        )
        assert set(stats) == {"fault-share-a", "fault-share-b"}
        assert all(stored > 0 for stored in stats.values()), f"one collector got nothing: {stats}"
        assert sum(stats.values()) == len(stream.good)
        db.assert_stats(len(stream.good), len(stream.bad), len(stream.messages))
        _report("shared subscription", stored_per_collector=stats, committed_messages=committed)
    finally:
        db.close()


@pytest.mark.timeout(90)
def test_a_row_the_database_refuses_is_quarantined_alone_and_the_stream_goes_on(
    database_url: str, mqtt_url: str
) -> None:
    prepare_database(database_url)
    stream = make_stream(400, tag=6)
    refused_topic = topic(E1, "PWR01")
    refused = json.dumps({"ts": BASE_MS + 5 * STEP_MS, "value": 666}).encode()
    middle = len(stream.messages) // 2
    messages = [*stream.messages[:middle], (refused_topic, refused), *stream.messages[middle:]]
    db = Db(database_url)
    try:
        db.conn.execute("ALTER TABLE ingest.reading ADD CONSTRAINT no_666 CHECK (value <> 666)")
        config = collector_config(database_url, mqtt_url, "fault-refused")
        with running_collector(config) as collector, ResilientPublisher(mqtt_url, "publisher-refused") as pub:
            warm_up(pub, messages[0], db)
            pub.publish_all(messages[1:])
            pub.drain(60)
            published_at = time.monotonic()
            db.wait_complete(len(stream.good), len(stream.bad) + 1, 30, "stream around a refused row")
            wait_for(lambda: collector.committed_messages >= len(messages), 10, "every message committed")
            settled_s = time.monotonic() - published_at
        db.assert_exact(
            stream.good, stream.bad, extra_bad=frozenset({(refused_topic, "db.rejected", refused)})
        )
        detail = db.scalar("SELECT detail FROM ingest.quarantine WHERE reason = 'db.rejected'")
        assert "no_666" in detail
        db.assert_stats(len(stream.good), len(stream.bad) + 1, len(messages))
        assert settled_s < 20, f"the stream stalled: {settled_s:.1f} s after the last PUBACK"
        _report("db.rejected", settled_after_publish_s=round(settled_s, 2), detail=detail[:80])
    finally:
        db.close()


@pytest.mark.timeout(120)
def test_sigterm_while_messages_flow_exits_0_and_a_restart_completes_exactly(
    database_url: str, mqtt_url: str, tmp_path: Path
) -> None:
    prepare_database(database_url)
    stream = make_stream(400, tag=7)
    total = len(stream.good)
    db = Db(database_url)
    proc = CollectorProcess(database_url, mqtt_url, "fault-sigterm", tmp_path)
    try:
        proc.start()
        with ResilientPublisher(mqtt_url, "publisher-sigterm") as pub:
            warm_up(pub, stream.first_good, db)
            publishing = Background(
                lambda: pub.publish_all(stream.messages[1:], rate_per_s=150), "publisher-sigterm"
            )
            wait_for(lambda: db.readings() >= total // 3, 60, lambda: f"a third stored\n{proc.log()}")
            before_stop = db.readings()
            assert before_stop < total, "everything was stored before SIGTERM: nothing was flowing"
            code, seconds = proc.terminate(10)
            at_stop = db.readings()
            assert code == 0, f"exit code {code} {seconds:.1f} s after SIGTERM\n{proc.log()}"
            assert seconds < 5, f"took {seconds:.1f} s to stop"
            proc.start()
            publishing.join(60)
            pub.drain(60)
            db.wait_complete(total, len(stream.bad), 60, f"after restart\n{proc.log()}")
        code2, seconds2 = proc.terminate(10)
        assert code2 == 0, f"exit code {code2} after the second SIGTERM\n{proc.log()}"
        assert "Traceback" not in proc.log(), proc.log()
        db.assert_exact(stream.good, stream.bad)
        stats = db.assert_stats(total, len(stream.bad), len(stream.messages))
        _report(
            "sigterm",
            stop_s=round(seconds, 2),
            stored_at_stop=at_stop,
            second_stop_s=round(seconds2, 2),
            stats=stats,
        )
    finally:
        proc.ensure_dead()
        db.close()


@pytest.mark.timeout(60)
def test_a_read_only_database_is_an_outage_not_a_bad_message(database_url: str, mqtt_url: str) -> None:
    prepare_database(database_url)
    stream = make_stream(40, tag=8)
    name = database_url.rsplit("/", 1)[1]
    db = Db(database_url)  # opened before the switch: this session stays read-write
    runner = CollectorThread(Collector(collector_config(database_url, mqtt_url, "fault-readonly")))
    try:
        runner.start()
        with ResilientPublisher(mqtt_url, "publisher-readonly") as pub:
            warm_up(pub, stream.first_good, db)
            # A failover to a standby, as the collector sees it: its connection drops and the
            # next one lands on a server that refuses writes.
            db.conn.execute(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
            db.conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = 'collector fault-readonly'"
            )
            pub.publish_all(stream.messages[1:])
            pub.drain(30)
            retries = runner.collector.metrics.registry.get_sample_value
            wait_for(
                lambda: (
                    runner.crash is not None or (retries("parkenergy_collector_db_retries_total") or 0) >= 5
                ),
                20,
                "the collector retrying against the read-only database",
            )
            assert runner.crash is None, f"the collector crashed: {runner.crash}"
            assert db.quarantined() == 0, db.conn.execute(
                "SELECT reason, count(*) FROM ingest.quarantine GROUP BY 1"
            ).fetchall()
            db.conn.execute(f'ALTER DATABASE "{name}" RESET default_transaction_read_only')
            db.wait_complete(len(stream.good), len(stream.bad), 30, "after the database is writable again")
            assert runner.crash is None, f"the collector crashed: {runner.crash}"
        runner.stop()
        db.assert_exact(stream.good, stream.bad)
    finally:
        if runner.alive():
            runner.stop()
        db.close()
