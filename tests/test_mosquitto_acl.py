"""deploy/mosquitto: the shipped configuration, ACL and a generated password file, on a real Mosquitto.

The broker runs deploy/mosquitto/mosquitto.conf with only its container paths
and listener rewritten; the password file is written by
``parkenergy broker passwords`` from the test registry; readings go through
the real collector into a real database.
"""

from __future__ import annotations

import csv
import getpass
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from typer.testing import CliRunner

from parkenergy.cli import app
from parkenergy.cli_dashboards import COLLECTOR_USER, SIMULATOR_USER, mosquitto_password_line
from parkenergy.embedded import find_mosquitto, free_port
from tests.golden import REGISTRY_CSV
from tests.harness import collector_config, prepare_database, running_collector, scalar, wait_for

DEPLOY = Path(__file__).parent.parent / "deploy" / "mosquitto"
E1 = "91420700MA49ABCD1X"
E2 = "91420704MA4A0PQR2Y"


@dataclass(frozen=True, slots=True)
class Broker:
    port: int
    passwords: dict[str, str]

    def url(self, user: str) -> str:
        return f"mqtt://{quote(user, safe='')}:{quote(self.passwords[user], safe='')}@127.0.0.1:{self.port}"


def test_password_line_matches_mosquitto_passwd_format() -> None:
    """$7$: PBKDF2-SHA512, 101 iterations; this vector was made by mosquitto_passwd 2.0.11."""
    salt = bytes.fromhex("0211367e66faf7604aac6515")
    assert mosquitto_password_line("alice", "secret", salt) == (
        "alice:$7$101$AhE2fmb692BKrGUV$pvIupRTVAreVXCjkDLjtqOW+gvnHvSOT0S4WR9UwaEAERElusj1CTtU6GZBRpEP55e"
        "ubD5ZF81Qp2NRuSzt6Mw=="
    )
    with pytest.raises(ValueError):
        mosquitto_password_line("a:b", "x")


def test_passwords_refuse_bad_input_and_unwritable_files_without_adding_anyone(tmp_path: Path) -> None:
    passwd, creds = tmp_path / "passwd", tmp_path / "credentials.csv"
    runner = CliRunner()
    bad = tmp_path / "registry.csv"
    bad.write_text("enterprise_code\nE1\n", encoding="utf-8")
    for registry, out, code, message in (
        (bad, passwd, 2, f"error: 1 problem in {bad}; no user was added"),
        (tmp_path, passwd, 2, "Invalid value for 'registry'"),  # a directory
        (REGISTRY_CSV, tmp_path, 1, f"error: cannot write {tmp_path}: Is a directory; no user was added"),
    ):
        args = ["broker", "passwords", str(registry), "--passwd", str(out), "--credentials", str(creds)]
        result = runner.invoke(app, args)
        assert result.exit_code == code, result.output
        assert message in " ".join(result.output.split()), result.output
        assert "Traceback" not in result.output
    assert not passwd.exists()
    assert not creds.exists() or creds.read_text(encoding="utf-8") == ""  # no password without its hash

    passwd.write_text("olduser:$7$101$abc$def", encoding="utf-8")  # last line without its newline
    args = ["broker", "passwords", str(REGISTRY_CSV), "--passwd", str(passwd), "--credentials", str(creds)]
    assert runner.invoke(app, args).exit_code == 0
    users = [line.split(":", 1)[0] for line in passwd.read_text(encoding="utf-8").splitlines()]
    assert users == ["olduser", COLLECTOR_USER, E1, E2]
    with creds.open(encoding="utf-8") as f:
        assert [row["user"] for row in csv.DictReader(f)] == [COLLECTOR_USER, E1, E2]


@pytest.fixture
def deployed_broker(tmp_path: Path) -> Iterator[Broker]:
    mosquitto = find_mosquitto()
    if mosquitto is None:
        pytest.skip("no mosquitto binary on PATH (apt-get install mosquitto)")
    passwd, creds = tmp_path / "passwd", tmp_path / "credentials.csv"
    args = ["broker", "passwords", str(REGISTRY_CSV), "--passwd", str(passwd), "--credentials", str(creds)]
    result = CliRunner().invoke(app, [*args, "--simulator"])
    assert result.exit_code == 0, result.output
    assert (creds.stat().st_mode & 0o777) == 0o600
    again = CliRunner().invoke(app, args)  # existing users keep their passwords
    assert again.exit_code == 0 and "0 users added" in " ".join(again.output.split())
    with creds.open(encoding="utf-8") as f:
        passwords = {row["user"]: row["password"] for row in csv.DictReader(f)}
    assert set(passwords) == {COLLECTOR_USER, SIMULATOR_USER, E1, E2}

    port = free_port()
    data = tmp_path / "data"
    data.mkdir()
    config = (DEPLOY / "mosquitto.conf").read_text("utf-8")
    for container, local in (
        ("listener 1883", f"listener {port} 127.0.0.1"),
        ("/mosquitto/config/passwd", str(passwd)),
        ("/mosquitto/config/acl", str(DEPLOY / "acl")),
        ("/mosquitto/data/", f"{data}/"),
        ("log_dest stdout", f"log_dest file {tmp_path / 'mosquitto.log'}"),
    ):
        assert container in config, container
        config = config.replace(container, local)
    if os.geteuid() == 0:
        config += f"user {getpass.getuser()}\n"
    (tmp_path / "mosquitto.conf").write_text(config, "utf-8")
    proc = subprocess.Popen(
        [mosquitto, "-c", str(tmp_path / "mosquitto.conf")], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        broker = Broker(port, passwords)
        wait_for(lambda: _connect_rc(broker, COLLECTOR_USER) == 0 or proc.poll() is not None, 15, "mosquitto")
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        yield broker
    finally:
        proc.terminate()
        proc.wait(15)
        if proc.stderr:
            proc.stderr.close()


def _client(broker: Broker, user: str | None, password: str | None = None) -> mqtt.Client:
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=f"t-{time.monotonic_ns()}", protocol=mqtt.MQTTv5
    )
    if user is not None:
        client.username_pw_set(user, password if password is not None else broker.passwords[user])
    return client


def _connect_rc(broker: Broker, user: str | None, password: str | None = None) -> int:
    """CONNACK reason code value (0: accepted), or -1 when the port does not answer."""
    client = _client(broker, user, password)
    codes: list[int] = []
    client.on_connect = lambda c, u, f, rc, p: codes.append(rc.value)
    try:
        client.connect("127.0.0.1", broker.port)
    except OSError:
        return -1
    client.loop_start()
    try:
        deadline = time.monotonic() + 5
        while not codes and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        client.disconnect()
        client.loop_stop()
    return codes[0] if codes else -1


def _publish(broker: Broker, user: str, topic: str, payload: str) -> int:
    """Publish at QoS 1 as ``user``; returns the PUBACK reason code (MQTT 5)."""
    client = _client(broker, user)
    codes: list[int] = []

    def on_publish(c: mqtt.Client, u: object, mid: int, rc: ReasonCode, p: Properties) -> None:
        codes.append(rc.value)

    client.on_publish = on_publish
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    try:
        client.publish(topic, payload, qos=1).wait_for_publish(5)
        wait_for(lambda: bool(codes), 5, "PUBACK")
    finally:
        client.disconnect()
        client.loop_stop()
    return codes[0]


def _reading(value: float) -> str:
    return f'{{"ts": "{datetime.now(UTC).isoformat()}", "value": {value}}}'


def test_anonymous_and_wrong_passwords_are_refused(deployed_broker: Broker) -> None:
    assert _connect_rc(deployed_broker, COLLECTOR_USER) == 0
    assert _connect_rc(deployed_broker, E1) == 0
    assert _connect_rc(deployed_broker, None) == 135  # Not authorized
    # Mosquitto 2.0 answers a wrong password or an unknown user with 135 as well.
    assert _connect_rc(deployed_broker, E1, "wrong") == 135
    assert _connect_rc(deployed_broker, "unknown-enterprise", "x") == 135


def test_enterprise_publishes_only_under_its_own_prefix(deployed_broker: Broker, database_url: str) -> None:
    prepare_database(database_url)
    count = "SELECT count(*) FROM api.reading WHERE enterprise_code = %s AND meter_code = 'EL01'"
    config = collector_config(database_url, deployed_broker.url(COLLECTOR_USER))
    config = replace(config, share_group="collectors")  # read through $share/<group>/ as in production
    with running_collector(config):
        # Its own prefix: stored.
        assert _publish(deployed_broker, E1, f"parkenergy/v1/{E1}/EL01", _reading(1.0)) == 0
        wait_for(lambda: scalar(database_url, count, (E1,)) == 1, what="E1's own reading")
        # Another enterprise's prefix: refused by the broker (MQTT 5 PUBACK 0x87), never delivered.
        assert _publish(deployed_broker, E1, f"parkenergy/v1/{E2}/EL01", _reading(2.0)) == 135
        # A later message of E2 itself arrives: everything before it was delivered or dropped.
        assert _publish(deployed_broker, E2, f"parkenergy/v1/{E2}/EL01", _reading(3.0)) == 0
        wait_for(lambda: scalar(database_url, count, (E2,)) == 1, what="E2's own reading")
        # The demo simulator may publish for any enterprise.
        assert _publish(deployed_broker, SIMULATOR_USER, f"parkenergy/v1/{E2}/COAL01", _reading(4.0)) == 0
        wait_for(
            lambda: scalar(database_url, "SELECT count(*) FROM api.reading WHERE meter_code = 'COAL01'") == 1,
            what="the simulator's reading",
        )
    values = scalar(database_url, "SELECT array_agg(value ORDER BY value) FROM api.reading")
    assert values == [1.0, 3.0, 4.0]
    assert scalar(database_url, "SELECT count(*) FROM api.quarantine") == 0


def test_an_enterprise_cannot_read_other_enterprises(deployed_broker: Broker) -> None:
    received: list[str] = []
    spy = _client(deployed_broker, E1)
    spy.on_message = lambda c, u, m: received.append(m.topic)
    granted: list[list[int]] = []
    spy.on_subscribe = lambda c, u, mid, codes, p: granted.append([rc.value for rc in codes])
    spy.connect("127.0.0.1", deployed_broker.port)
    spy.loop_start()
    try:
        spy.subscribe("parkenergy/v1/#", qos=1)
        wait_for(lambda: bool(granted), 5, "SUBACK")
        assert _publish(deployed_broker, E2, f"parkenergy/v1/{E2}/EL01", _reading(5.0)) == 0
        time.sleep(0.5)
    finally:
        spy.disconnect()
        spy.loop_stop()
    assert received == []
