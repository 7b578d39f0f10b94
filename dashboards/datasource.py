"""The one Grafana datasource every panel and alert reads: PostgreSQL, schema ``api`` only.

Grafana connects as a login role that is a member of ``parkenergy_grafana``
(migration 0004: SELECT on the ``api`` views and nothing else).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final
from urllib.parse import parse_qs, unquote, urlsplit

from grafana_foundation_sdk.models import dashboard

DATASOURCE_UID: Final = "parkenergy-pg"
DATASOURCE_NAME: Final = "parkenergy"
DATASOURCE_TYPE: Final = "grafana-postgresql-datasource"
# Grafana's PostgreSQL "version" option: 1500 stands for 15 and later.
POSTGRES_VERSION: Final = 1500
# Lower bound of $__interval: readings arrive every 1-15 min.
MIN_INTERVAL: Final = "1m"

# Environment variables that Grafana's file provisioning interpolates.
ENV_HOST: Final = "GRAFANA_DB_HOST"
ENV_NAME: Final = "GRAFANA_DB_NAME"
ENV_USER: Final = "GRAFANA_DB_USER"
ENV_PASSWORD: Final = "GRAFANA_DB_PASSWORD"
ENV_SSLMODE: Final = "GRAFANA_DB_SSLMODE"


def datasource_ref() -> dashboard.DataSourceRef:
    """Reference to the datasource, for panels, variables and queries."""
    return dashboard.DataSourceRef(type_val=DATASOURCE_TYPE, uid=DATASOURCE_UID)


@dataclass(frozen=True, slots=True)
class DatabaseTarget:
    """Where Grafana finds the database, parsed from ``postgresql://user:pass@host:port/db?sslmode=…``."""

    host: str
    port: int
    database: str
    user: str
    password: str
    sslmode: str = "disable"

    @classmethod
    def parse(cls, url: str) -> DatabaseTarget:
        parts = urlsplit(url)
        if parts.scheme not in ("postgresql", "postgres") or not parts.hostname:
            raise ValueError(f"not a postgresql:// URL with a host: {url!r}")
        database = parts.path.lstrip("/")
        if not database or not parts.username:
            raise ValueError(f"the URL must name a database and a user: {url!r}")
        sslmode = parse_qs(parts.query).get("sslmode", ["disable"])[0]
        return cls(
            host=parts.hostname,
            port=parts.port or 5432,
            database=database,
            user=unquote(parts.username),
            password=unquote(parts.password or ""),
            sslmode=sslmode,
        )


def _json_data(database: str, sslmode: str, timescaledb: bool) -> dict[str, object]:
    return {
        "database": database,
        "sslmode": sslmode,
        "timescaledb": timescaledb,
        "postgresVersion": POSTGRES_VERSION,
        "timeInterval": MIN_INTERVAL,
        "maxOpenConns": 10,
        "maxIdleConns": 10,
        "connMaxLifetime": 14400,
    }


def provisioning_file(timescaledb: bool) -> dict[str, object]:
    """``provisioning/datasources/parkenergy.yaml``: connection details from ``${ENV}`` variables.

    Parameters
    ----------
    timescaledb : bool
        Grafana then writes ``$__timeGroup`` as ``time_bucket(...)``.
    """
    return {
        "apiVersion": 1,
        "datasources": [
            {
                "name": DATASOURCE_NAME,
                "uid": DATASOURCE_UID,
                "type": DATASOURCE_TYPE,
                "access": "proxy",
                "url": f"${{{ENV_HOST}}}",
                "user": f"${{{ENV_USER}}}",
                "isDefault": True,
                "editable": False,
                "jsonData": _json_data(f"${{{ENV_NAME}}}", f"${{{ENV_SSLMODE}}}", timescaledb),
                "secureJsonData": {"password": f"${{{ENV_PASSWORD}}}"},
            }
        ],
    }


def api_body(target: DatabaseTarget, timescaledb: bool) -> dict[str, object]:
    """Body of ``POST /api/datasources`` (and of the update by uid) for ``target``."""
    return {
        "name": DATASOURCE_NAME,
        "uid": DATASOURCE_UID,
        "type": DATASOURCE_TYPE,
        "access": "proxy",
        "url": f"{target.host}:{target.port}",
        "user": target.user,
        "isDefault": True,
        "jsonData": _json_data(target.database, target.sslmode, timescaledb),
        "secureJsonData": {"password": target.password},
    }
