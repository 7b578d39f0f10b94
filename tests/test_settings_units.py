"""Settings, MQTT URLs, units and carriers."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from parkdata.carriers import CARRIERS
from parkdata.migrate import migrate
from parkdata.settings import MqttEndpoint, SettingsError, load_settings
from parkdata.units import UnitError, conversion_factor


def test_mqtt_url_parsing() -> None:
    plain = MqttEndpoint.parse("mqtt://broker.local")
    assert (plain.host, plain.port, plain.tls, plain.username) == ("broker.local", 1883, False, None)
    tls = MqttEndpoint.parse("mqtts://collector:p%40ss@10.0.0.5:8884")
    assert (tls.host, tls.port, tls.tls, tls.username, tls.password) == (
        "10.0.0.5",
        8884,
        True,
        "collector",
        "p@ss",
    )
    assert MqttEndpoint.parse("mqtts://h").port == 8883
    assert "p@ss" not in tls.url
    for bad in ("http://h", "mqtt://", "mqtt://h:99999"):
        with pytest.raises(SettingsError):
            MqttEndpoint.parse(bad)


def test_environment_beats_toml_file_and_flags_beat_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "parkenergy.toml"
    config.write_text('mqtt_client_id = "from-file"\ncollector_batch_size = 100\nlog_level = "DEBUG"\n')
    monkeypatch.setenv("COLLECTOR_BATCH_SIZE", "200")
    monkeypatch.setenv("MQTT_URL", "mqtt://u:p@h:1999")
    settings = load_settings(config)
    assert settings.mqtt_client_id == "from-file"
    assert settings.collector_batch_size == 200
    assert settings.mqtt == MqttEndpoint("h", 1999, "u", "p", False)
    flagged = load_settings(config, log_level="WARNING")
    assert flagged.log_level == "WARNING"
    assert flagged.collector_batch_size == 200


def test_bad_settings_are_refused_naming_the_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLLECTOR_BATCH_SIZE", "0")
    with pytest.raises(SettingsError, match="collector_batch_size"):
        load_settings()
    monkeypatch.delenv("COLLECTOR_BATCH_SIZE")
    monkeypatch.setenv("DATABASE_URL", "mysql://x")
    with pytest.raises(SettingsError, match="database_url"):
        load_settings()
    monkeypatch.delenv("DATABASE_URL")
    typo = tmp_path / "typo.toml"
    typo.write_text("colector_batch_size = 5\n")
    with pytest.raises(SettingsError, match="colector_batch_size"):
        load_settings(typo)


@pytest.mark.parametrize(
    ("source", "target", "factor"),
    [
        ("Wh", "kWh", 1e-3),
        ("MWh", "kWh", 1e3),
        ("GJ", "kWh", 1e3 / 3.6),
        ("Nm³", "m3", 1.0),
        ("10^4 m3", "m3", 1e4),
        ("t", "kg", 1e3),
        ("kg", "t", 1e-3),
        ("MW", "kW", 1e3),
        ("t/h", "kg/h", 1e3),
    ],
)
def test_conversion_factors(source: str, target: str, factor: float) -> None:
    assert conversion_factor(source, target) == pytest.approx(factor, rel=1e-12)


def test_units_that_do_not_convert() -> None:
    with pytest.raises(UnitError, match="unknown unit"):
        conversion_factor("furlong", "kWh")
    with pytest.raises(UnitError, match="cannot convert"):
        conversion_factor("kWh", "m3")
    with pytest.raises(UnitError, match="cannot convert"):
        conversion_factor("kW", "kWh")  # power is not energy


def test_carrier_table_matches_the_code(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        migrate(conn)
        rows = conn.execute("SELECT carrier_code, name_zh, name_en FROM registry.carrier").fetchall()
    assert {r[0]: (r[1], r[2]) for r in rows} == {c.code: (c.name_zh, c.name_en) for c in CARRIERS.values()}
