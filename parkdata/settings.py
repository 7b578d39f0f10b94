"""Typed settings, loaded once at the entry point.

Sources, highest priority first: explicit overrides (command-line flags),
environment variables, an optional TOML file (``--config`` or
``PARKENERGY_CONFIG``), defaults. Durations end in ``_s``.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import platformdirs
from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict


class SettingsError(ValueError):
    """A setting is missing, malformed or out of range."""


@dataclass(frozen=True, slots=True)
class MqttEndpoint:
    """Where the broker is, parsed from ``mqtt://user:pass@host:port`` or ``mqtts://…``."""

    host: str
    port: int
    username: str | None = None
    password: str | None = None
    tls: bool = False
    mqtt5: bool = True
    """False for a broker that speaks only MQTT 3.1.1 (no Receive Maximum, no session expiry)."""

    @classmethod
    def parse(cls, url: str, *, mqtt5: bool = True) -> MqttEndpoint:
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts"):
            raise SettingsError(f"MQTT_URL must start with mqtt:// or mqtts://, got {url!r}")
        if not parts.hostname:
            raise SettingsError(f"MQTT_URL has no host: {url!r}")
        tls = parts.scheme == "mqtts"
        try:
            port = parts.port or (8883 if tls else 1883)
        except ValueError as exc:
            raise SettingsError(f"MQTT_URL has a bad port: {url!r}") from exc
        return cls(
            host=parts.hostname,
            port=port,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            tls=tls,
            mqtt5=mqtt5,
        )

    @property
    def url(self) -> str:
        """The URL without the password, for logs."""
        user = f"{self.username}@" if self.username else ""
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{self.host}:{self.port}"


def default_home() -> Path:
    """Where embedded servers keep their data unless ``PARKENERGY_HOME`` says otherwise."""
    return Path(platformdirs.user_data_dir("parkenergy"))


class Settings(BaseSettings):
    """Every setting of parkenergy. Field names are the environment variable names."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="forbid", frozen=True)

    database_url: str | None = Field(
        default=None,
        description="PostgreSQL URL; unset: an embedded server under PARKENERGY_HOME",
    )
    mqtt_url: str | None = Field(
        default=None, description="mqtt://user:pass@host:port or mqtts://…; unset: embedded broker"
    )
    mqtt_ca_file: Path | None = Field(default=None, description="CA bundle for mqtts://")
    mqtt_protocol: str = Field(default="5", pattern=r"^(5|3\.1\.1)$", description="MQTT protocol version")
    mqtt_client_id: str = Field(default="parkenergy-collector", min_length=1, max_length=128)
    mqtt_share_group: str | None = Field(
        default=None, description="MQTT 5 shared-subscription group; collectors in one group split the stream"
    )
    mqtt_topic_prefix: str = "parkenergy/v1"
    mqtt_session_expiry_s: int = Field(default=7 * 24 * 3600, ge=0, le=0xFFFFFFFF)
    mqtt_keepalive_s: int = Field(default=30, ge=5, le=3600)
    parkenergy_home: Path = Field(default_factory=default_home)

    collector_batch_size: int = Field(default=5000, ge=1, le=200_000, description="readings per commit")
    collector_batch_latency_s: float = Field(default=0.1, gt=0, le=60)
    collector_max_inflight: int = Field(
        default=20_000, ge=1, le=65_535, description="unacknowledged messages the broker may send"
    )
    collector_http_host: str = "127.0.0.1"
    collector_http_port: int = Field(default=9108, ge=0, le=65_535)
    collector_registry_refresh_s: float = Field(default=10.0, gt=0)
    collector_retry_initial_s: float = Field(default=0.5, gt=0)
    collector_retry_max_s: float = Field(default=30.0, gt=0)
    collector_future_tolerance_s: int = Field(default=300, ge=0)

    # Grafana (parkenergy dashboards push) and alert contact points; docs/configuration.md.
    grafana_url: str | None = Field(default=None, description="Grafana base URL for `dashboards push`")
    grafana_token: str | None = Field(default=None, description="Grafana service-account token")
    grafana_db_url: str | None = Field(
        default=None, description="postgresql:// URL Grafana's datasource uses (a parkenergy_grafana member)"
    )
    alert_email_addresses: str | None = Field(default=None, description="e-mail recipients, ';'-separated")
    alert_webhook_url: str | None = Field(default=None, description="webhook contact point URL")
    alert_dingding_url: str | None = Field(default=None, description="DingTalk robot URL with access_token")
    alert_wecom_url: str | None = Field(default=None, description="WeCom group robot URL with key")

    log_level: str = Field(default="INFO", pattern="(?i)^(DEBUG|INFO|WARNING|ERROR|CRITICAL)$")
    log_format: str = Field(default="text", pattern="^(text|json)$")

    @field_validator("mqtt_url")
    @classmethod
    def _check_mqtt_url(cls, value: str | None) -> str | None:
        if value is not None:
            MqttEndpoint.parse(value)
        return value

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("postgresql://", "postgres://")):
            raise ValueError("DATABASE_URL must start with postgresql://")
        return value

    @property
    def mqtt(self) -> MqttEndpoint | None:
        if not self.mqtt_url:
            return None
        return MqttEndpoint.parse(self.mqtt_url, mqtt5=self.mqtt_protocol == "5")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The TOML file arrives as init kwargs, so the environment wins over it.
        return (env_settings, init_settings)


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Load settings once: overrides > environment > TOML file > defaults."""
    path = config_file or (Path(p) if (p := os.environ.get("PARKENERGY_CONFIG")) else None)
    from_file: dict[str, Any] = {}
    if path is not None:
        try:
            from_file = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise SettingsError(f"cannot read settings file {path}: {exc}") from exc
    try:
        base = Settings(**from_file)
        given = {k: v for k, v in overrides.items() if v is not None}
        return Settings.model_validate({**base.model_dump(), **given}) if given else base
    except ValidationError as exc:
        raise SettingsError(_one_line(exc)) from exc
    except ValueError as exc:
        raise SettingsError(str(exc)) from exc


def _one_line(exc: ValidationError) -> str:
    """Every error of a validation on one line, each naming its setting (and variable) and value."""
    parts = []
    for error in exc.errors(include_url=False):
        name = ".".join(str(p) for p in error["loc"])
        secret = any(word in name for word in ("url", "token", "password"))  # may hold credentials
        value = f", got {error['input']!r}" if error["type"] != "missing" and not secret else ""
        parts.append(f"{name} ({name.upper()}): {error['msg']}{value}")
    return "; ".join(parts)
