"""Schema migrations on a real PostgreSQL."""

from __future__ import annotations

import dataclasses

import psycopg
import pytest

from parkdata import migrate as migrate_module
from parkdata.migrate import MigrationError, TimescaleMode, migrate, packaged_migrations, pending


def test_migrate_is_idempotent_and_recorded(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        assert [m.version for m in pending(conn)] == [m.version for m in packaged_migrations()]
        first = migrate(conn)
        second = migrate(conn)
        recorded = conn.execute(
            "SELECT version, checksum FROM parkenergy_meta.migration ORDER BY 1"
        ).fetchall()
        assert pending(conn) == []
    assert len(first.applied) == len(packaged_migrations()) and not first.timescaledb
    assert second.applied == () and second.already_applied == len(first.applied)
    assert recorded == [(m.version, m.checksum) for m in packaged_migrations()]


def test_a_changed_applied_migration_is_refused(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        migrate(conn)
        edited = [
            dataclasses.replace(m, sql_text=m.sql_text + "\n-- edited\n") if m.version == 1 else m
            for m in packaged_migrations()
        ]
        monkeypatch.setattr(migrate_module, "packaged_migrations", lambda: edited)
        with pytest.raises(MigrationError, match="0001_registry changed after it was applied"):
            migrate(conn)


def test_timescaledb_on_fails_clearly_without_the_extension(database_url: str) -> None:
    with (
        psycopg.connect(database_url, autocommit=True) as conn,
        pytest.raises(MigrationError, match="TimescaleDB requested"),
    ):
        migrate(conn, TimescaleMode.ON)


def test_plain_postgresql_gets_the_brin_index(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        report = migrate(conn, TimescaleMode.OFF)
        index = conn.execute("SELECT to_regclass('ingest.reading_ts_brin')").fetchone()
    assert not report.timescaledb
    assert index == ("ingest.reading_ts_brin",)


def test_roles_are_least_privilege(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        migrate(conn)

        def can(role: str, table: str, privilege: str) -> bool:
            row = conn.execute("SELECT has_table_privilege(%s, %s, %s)", (role, table, privilege)).fetchone()
            return bool(row and row[0])

        assert can("parkenergy_collector", "ingest.reading", "INSERT")
        assert not can("parkenergy_collector", "ingest.reading", "UPDATE")
        assert not can("parkenergy_collector", "ingest.reading", "DELETE")
        assert not can("parkenergy_collector", "registry.meter", "INSERT")
        assert can("parkenergy_grafana", "api.reading", "SELECT")
        assert not can("parkenergy_grafana", "ingest.reading", "SELECT")
        assert not can("parkenergy_grafana", "registry.meter", "SELECT")
        assert can("parkenergy_analytics", "ingest.reading", "SELECT")
        assert not can("parkenergy_analytics", "ingest.reading", "DELETE")
