"""docker-compose.yml against the Compose specification schema, offline, and its files and variables.

The schema is ``compose-spec.json`` as vendored (with its sha256) by the pinned
PyPI test dependency ``check-jsonschema==0.39.0``: the Compose Specification's
own JSON schema (draft 2020-12), no network needed. No Docker engine runs here:
what only ``docker compose up`` can confirm is listed in docs/deployment.md.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import check_jsonschema
import jsonschema
import psycopg
import pytest
import yaml
from psycopg.conninfo import conninfo_to_dict

from parkenergy.embedded import EmbeddedPostgres
from tests.harness import prepare_database

ROOT = Path(__file__).parent.parent
VENDOR = Path(check_jsonschema.__file__).parent / "builtin_schemas" / "vendor"
INTERPOLATION = re.compile(r"\$\{([A-Z0-9_]+)(:?[-?][^}]*)?\}")


def _schema() -> dict[str, Any]:
    raw = (VENDOR / "compose-spec.json").read_bytes()
    expected = (VENDOR / "sha256" / "compose-spec.sha256").read_text("utf-8").split()[0]
    assert hashlib.sha256(raw).hexdigest() == expected, "vendored compose-spec.json does not match its sha256"
    schema: dict[str, Any] = json.loads(raw)
    return schema


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text("utf-8"))
    return data


def test_compose_file_is_valid_against_the_compose_specification() -> None:
    schema = _schema()
    assert schema["title"] == "Compose Specification"
    validator = jsonschema.Draft202012Validator(schema)
    errors = [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(_compose())]
    assert errors == []
    # The schema has teeth: a misspelt key and a wrong type are refused.
    broken = copy.deepcopy(_compose())
    broken["services"]["db"]["healthchek"] = broken["services"]["db"].pop("healthcheck")
    assert not validator.is_valid(broken)
    broken = copy.deepcopy(_compose())
    broken["services"]["grafana"]["ports"] = "3000:3000"
    assert not validator.is_valid(broken)


def test_services_images_profiles_and_healthchecks() -> None:
    services = _compose()["services"]
    assert set(services) == {
        "db",
        "migrate",
        "db-roles",
        "mosquitto",
        "collector",
        "analytics",
        "grafana",
        "simulator",
    }
    images = {name: s["image"] for name, s in services.items()}
    assert images["db"].startswith("timescale/timescaledb:") and not images["db"].endswith(":latest")
    assert re.fullmatch(r"grafana/grafana:11\.6\.\d+", images["grafana"])
    assert re.fullmatch(r"eclipse-mosquitto:2\.0\.\d+", images["mosquitto"])
    for name in ("db", "mosquitto", "collector", "grafana"):
        assert "healthcheck" in services[name], name
    assert services["simulator"]["profiles"] == ["demo"]
    assert all("profiles" not in s for n, s in services.items() if n != "simulator")
    assert services["migrate"]["command"] == ["parkenergy", "db", "migrate", "--timescaledb", "on"]
    assert services["collector"]["command"] == ["parkenergy", "collect"]
    assert services["analytics"]["command"] == ["parkenergy", "analyze", "serve"]
    assert services["simulator"]["command"] == ["parkenergy", "simulate", "--live", "--load-registry"]
    for name in ("collector", "analytics", "simulator"):
        assert "DATABASE_URL" in services[name]["environment"], name


def test_every_mounted_file_exists_or_is_generated() -> None:
    generated = {"deploy/mosquitto/passwd"}  # `parkenergy broker passwords`, never committed
    ignored = (ROOT / "deploy" / "mosquitto" / ".gitignore").read_text("utf-8").split()
    assert "passwd" in ignored and "credentials.csv" in ignored
    for name, service in _compose()["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                path = source.removeprefix("./")
                assert path in generated or (ROOT / path).exists(), f"{name}: {source} is missing"


def test_variables_are_documented_and_reach_grafana() -> None:
    text = (ROOT / "docker-compose.yml").read_text("utf-8")
    used = {m.group(1) for m in INTERPOLATION.finditer(text)}
    example = {
        line.split("=", 1)[0]
        for line in (ROOT / ".env.example").read_text("utf-8").splitlines()
        if line and not line.startswith("#")
    }
    assert used <= example, f"not in .env.example: {used - example}"
    grafana_env = set(_compose()["services"]["grafana"]["environment"])
    provisioning = ROOT / "dashboards" / "provisioning"
    for path in [*provisioning.glob("datasources/*.yaml"), *provisioning.glob("alerting/*.yaml")]:
        wanted = set(re.findall(r"\$\{([A-Z0-9_]+)\}", path.read_text("utf-8")))
        assert wanted <= grafana_env, f"{path.name} needs {wanted - grafana_env}"


def test_mosquitto_config_raises_the_queue_limits() -> None:
    config = (ROOT / "deploy" / "mosquitto" / "mosquitto.conf").read_text("utf-8")
    settings = dict(
        line.split(maxsplit=1) for line in config.splitlines() if line and not line.startswith("#")
    )
    assert int(settings["max_queued_messages"]) >= 1_000_000
    assert settings["max_queued_bytes"] == "0"
    assert settings["allow_anonymous"] == "false"
    assert settings["persistence"] == "true"


def test_grafana_role_script(pg_server: EmbeddedPostgres, database_url: str) -> None:
    """deploy/postgres/roles.sh with psql: idempotent, and the role reads api views only."""
    psql = shutil.which("psql")
    if psql is None:
        pytest.skip("psql is needed (apt-get install postgresql-client)")
    prepare_database(database_url)
    params = conninfo_to_dict(database_url)
    user = f"grafana_{params['dbname']}"
    env = {
        **os.environ,
        "PGHOST": str(params["host"]),
        "PGPORT": str(params["port"]),
        "PGUSER": str(params["user"]),
        "PGDATABASE": str(params["dbname"]),
        "GRAFANA_DB_USER": user,
        "GRAFANA_DB_PASSWORD": "s3cret'pw",
    }
    try:
        for _ in range(2):
            done = subprocess.run(
                ["/bin/sh", str(ROOT / "deploy" / "postgres" / "roles.sh")],
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert done.returncode == 0, done.stderr
        with psycopg.connect(database_url, user=user, autocommit=True) as conn:
            assert conn.execute("SELECT count(*) FROM api.park").fetchone() == (2,)
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("SELECT count(*) FROM registry.park")
    finally:
        with psycopg.connect(pg_server.url, autocommit=True) as conn:
            conn.execute(psycopg.sql.SQL("DROP ROLE IF EXISTS {}").format(psycopg.sql.Identifier(user)))
