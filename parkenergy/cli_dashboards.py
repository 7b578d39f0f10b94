"""``parkenergy dashboards build|push`` and ``parkenergy broker passwords``."""

from __future__ import annotations

import base64
import csv
import hashlib
import logging
import os
import secrets
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Final
from urllib.parse import urlsplit

import typer
from grafana_client.api import GrafanaApi

from dashboards import alerts, provisioning, publish
from dashboards.datasource import DatabaseTarget
from dashboards.messages import Lang
from parkdata.registry_file import RegistryFileError, read_registry_file
from parkdata.settings import Settings
from parkenergy.clikit import console, err_console, fail, fail_problems, settings_of

log = logging.getLogger(__name__)

dashboards_app = typer.Typer(
    help="Grafana dashboards, alert rules and provisioning generated from code.", no_args_is_help=True
)
broker_app = typer.Typer(
    help="The MQTT broker of a deployment: enterprise credentials.", no_args_is_help=True
)

DEFAULT_OUT: Final = Path("dashboards/provisioning")
COLLECTOR_USER: Final = "parkenergy.collector"  # "." cannot occur in an enterprise code
SIMULATOR_USER: Final = "parkenergy.simulator"
# Mosquitto 2.0 password hashes ($7$): PBKDF2-SHA512, 101 iterations, 12-byte salt
# (mosquitto_passwd's defaults, src/password_mosq.c).
PBKDF2_ITERATIONS: Final = 101
SALT_BYTES: Final = 12


class LangOption(StrEnum):
    zh = "zh"
    en = "en"


def register(app: typer.Typer) -> None:
    """Add the ``dashboards`` and ``broker`` command groups to ``app``."""
    app.add_typer(dashboards_app, name="dashboards")
    app.add_typer(broker_app, name="broker")


# -- dashboards ----------------------------------------------------------------


@dashboards_app.command("build")
def build(
    lang: Annotated[LangOption, typer.Option(help="Language of titles, labels and alerts.")] = LangOption.zh,
    out: Annotated[Path, typer.Option(help="Provisioning directory to write.")] = DEFAULT_OUT,
    timescaledb: Annotated[
        bool, typer.Option(help="Datasource jsonData.timescaledb: $__timeGroup becomes time_bucket().")
    ] = True,
    check: Annotated[
        bool, typer.Option("--check", help="Write nothing; exit 1 when the files on disk are stale.")
    ] = False,
) -> None:
    """Write Grafana file provisioning: datasource, dashboards, alert rules, contact points, policy."""
    options = provisioning.BuildOptions(lang=Lang(lang.value), timescaledb=timescaledb)
    if check:
        stale = provisioning.stale(out, options)
        for path in stale:
            err_console.print(f"stale: {out / path}")
        if stale:
            raise fail(f"{len(stale)} provisioning files are stale; run `parkenergy dashboards build`")
        console.print(f"{out}: current")
        return
    changed = provisioning.write(out, options)
    for path in changed:
        console.print(f"wrote {out / path}")
    console.print(f"{out}: {len(changed)} files changed")


def _channels(settings: Settings) -> dict[alerts.Channel, str]:
    """Contact-point addresses configured in the settings."""
    configured = {}
    for channel, name in alerts.CHANNEL_SETTING.items():
        value = getattr(settings, name)
        if value:
            configured[channel] = str(value)
    return configured


@dashboards_app.command("push")
def push(
    ctx: typer.Context,
    *,
    url: Annotated[str | None, typer.Option(help="Grafana base URL (env GRAFANA_URL).")] = None,
    token: Annotated[
        str | None, typer.Option(help="Service-account token with admin rights (env GRAFANA_TOKEN).")
    ] = None,
    lang: Annotated[LangOption, typer.Option(help="Language of titles, labels and alerts.")] = LangOption.zh,
    timescaledb: Annotated[bool, typer.Option(help="Datasource jsonData.timescaledb.")] = True,
    force: Annotated[
        bool, typer.Option("--force", help="Write every object even when it looks current.")
    ] = False,
) -> None:
    """Publish folder, datasource, dashboards, rule groups, contact points and policy to a Grafana."""
    settings = settings_of(ctx)
    base = url or settings.grafana_url
    credential = token or settings.grafana_token
    if not base:
        raise fail("no Grafana URL: pass --url or set GRAFANA_URL", 2)
    parts = urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise fail(f"Grafana URL {base!r} is not http(s)://host[:port][/path]", 2)
    try:
        database = DatabaseTarget.parse(settings.grafana_db_url) if settings.grafana_db_url else None
    except ValueError as exc:
        raise fail(f"GRAFANA_DB_URL: {exc}", 2) from exc
    if database is None:
        err_console.print("GRAFANA_DB_URL is not set: the datasource is left as it is")
    channels = _channels(settings)
    for channel in set(alerts.Channel) - set(channels):
        err_console.print(
            f"{alerts.CHANNEL_SETTING[channel].upper()} is not set: no {channel.value} contact point"
        )
    plan = publish.make_plan(Lang(lang.value), timescaledb, database, channels)
    api = GrafanaApi.from_url(base, credential=credential, timeout=30.0)
    try:
        report = publish.push(api, plan, force=force)
    except publish.PushError as exc:
        log.debug("push to %s failed", base, exc_info=True)
        for what in exc.report.written:
            console.print(f"wrote {what}")
        written = len(exc.report.written)
        partly = f"; {written} objects were written before (push again to complete)" if written else ""
        raise fail(f"Grafana at {base}: {exc}{partly}") from exc
    for what in report.written:
        console.print(f"wrote {what}")
    console.print(f"{len(report.written)} written, {len(report.unchanged)} already current")


# -- broker ----------------------------------------------------------------------


def mosquitto_password_line(user: str, password: str, salt: bytes | None = None) -> str:
    """One line of a Mosquitto 2.0 password file: ``user:$7$101$<salt>$<hash>``.

    Parameters
    ----------
    salt : bytes, optional
        12 random bytes when not given (tests pass a fixed one).
    """
    if ":" in user or "\n" in user:
        raise ValueError(f"user names cannot contain ':' or newlines: {user!r}")
    salt = salt if salt is not None else secrets.token_bytes(SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, PBKDF2_ITERATIONS)
    encoded = f"${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"
    return f"{user}:$7${PBKDF2_ITERATIONS}{encoded}"


def _append_users(passwd: Path, credentials: Path, new: list[tuple[str, str]]) -> None:
    """Append the plain-text credentials, then the hashes: both files are opened before either is written.

    Credentials come first so that a user can never be in ``passwd`` without its
    password recorded (existing users are never given a new one).
    """
    for path in (passwd, credentials):
        path.parent.mkdir(parents=True, exist_ok=True)
    fresh = not credentials.exists() or credentials.stat().st_size == 0
    needs_newline = passwd.is_file() and passwd.stat().st_size > 0 and not passwd.read_bytes().endswith(b"\n")
    fd = os.open(credentials, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with (
        os.fdopen(fd, "a", encoding="utf-8", newline="") as cred,
        passwd.open("a", encoding="utf-8") as hashes,
    ):
        writer = csv.writer(cred)
        if fresh:
            writer.writerow(["user", "password"])
        writer.writerows(new)
        cred.flush()
        if needs_newline and new:
            hashes.write("\n")  # a last line without its newline would swallow the first new user
        for user, password in new:
            hashes.write(mosquitto_password_line(user, password) + "\n")


def _users_in(passwd: Path) -> set[str]:
    if not passwd.is_file():
        return set()
    return {line.split(":", 1)[0] for line in passwd.read_text("utf-8").splitlines() if ":" in line}


@broker_app.command("passwords")
def passwords(
    registry: Annotated[
        Path,
        typer.Argument(
            help="Registry CSV or XLSX: one user per enterprise code.", exists=True, dir_okay=False
        ),
    ],
    passwd: Annotated[Path, typer.Option(help="Mosquitto password file to extend.")] = Path(
        "deploy/mosquitto/passwd"
    ),
    credentials: Annotated[
        Path, typer.Option(help="CSV to append the new plain-text credentials to (mode 0600).")
    ] = Path("deploy/mosquitto/credentials.csv"),
    simulator: Annotated[
        bool, typer.Option("--simulator", help="Also a user that may publish for every enterprise (demo).")
    ] = False,
) -> None:
    """Add Mosquitto users for the collector and every enterprise of the registry that has none.

    Enterprise users are named by their enterprise code; the ACL
    (deploy/mosquitto/acl) lets each publish only under parkenergy/v1/<code>/.
    Existing users keep their passwords.
    """
    try:
        rows = read_registry_file(registry)
    except RegistryFileError as exc:
        raise fail_problems(exc.problems, f" in {registry}; no user was added") from exc
    wanted = [COLLECTOR_USER, *([SIMULATOR_USER] if simulator else [])]
    wanted += sorted({row.enterprise_code for row in rows.enterprises})
    try:
        existing = _users_in(passwd)
        new = [(user, secrets.token_urlsafe(18)) for user in wanted if user not in existing]
        _append_users(passwd, credentials, new)
    except OSError as exc:
        raise fail(
            f"cannot write {exc.filename or passwd}: {exc.strerror or exc}; no user was added"
        ) from exc
    console.print(f"{len(new)} users added to {passwd} ({len(existing)} kept); credentials in {credentials}")
