"""Registry and meter-event loads against a real PostgreSQL: upserts, all or nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import psycopg
import pytest

from parkdata.migrate import migrate
from parkdata.registry_file import RegistryFile, read_meter_events_file, read_registry_file
from parkdata.registry_store import (
    RegistryLoadError,
    UpsertCounts,
    list_meters,
    store_meter_events,
    store_registry,
)
from simulators.files import EVENT_COLUMNS, write_table

STEEL = "91420704MA4C7K2P5H"
HEADER = [
    "park_code",
    "park_name",
    "enterprise_code",
    "enterprise_name",
    "industry_code",
    "meter_code",
    "carrier",
    "unit",
    "kind",
    "multiplier",
    "parent_meter_code",
    "key_energy_unit",
]


def example(name: str) -> Path:
    return Path(str(resources.files("parkenergy.examples").joinpath(name)))


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(database_url, autocommit=True) as admin:
        migrate(admin)
    with psycopg.connect(database_url) as connection:
        yield connection


def meter_line(
    meter_code: str,
    *,
    carrier: str = "electricity",
    unit: str = "kWh",
    kind: str = "register",
    multiplier: str = "200",
    parent: str = "",
    enterprise_name: str = "鄂州楚江特钢有限公司",
    key_energy_unit: str = "",
) -> list[str]:
    return [
        "ECQ",
        "鄂城区",
        STEEL,
        enterprise_name,
        "3120",
        meter_code,
        carrier,
        unit,
        kind,
        multiplier,
        parent,
        key_energy_unit,
    ]


def registry(tmp_path: Path, *rows: list[str], name: str = "registry.csv") -> RegistryFile:
    return read_registry_file(write_table(tmp_path / name, HEADER, list(rows)))


def events(tmp_path: Path, *rows: list[str], name: str = "events.csv") -> Path:
    return write_table(tmp_path / name, EVENT_COLUMNS, list(rows))


def count(conn: psycopg.Connection[Any], table: str) -> int:
    row = conn.execute(f"SELECT count(*) FROM registry.{table}").fetchone()
    assert row is not None
    return int(row[0])


def scalar(conn: psycopg.Connection[Any], query: str, params: tuple[object, ...] = ()) -> Any:
    row = conn.execute(query, params).fetchone()
    conn.commit()
    assert row is not None
    return row[0]


def revision(conn: psycopg.Connection[Any]) -> int:
    return int(scalar(conn, "SELECT revision FROM registry.revision"))


# --- the example park ---------------------------------------------------------------------


def test_example_files_load_cleanly(conn: psycopg.Connection[Any]) -> None:
    summary = store_registry(conn, read_registry_file(example("registry.csv")))
    assert summary.parks == UpsertCounts(2, 0, 0)
    assert summary.enterprises == UpsertCounts(5, 0, 0)
    assert summary.meters == UpsertCounts(23, 0, 0)
    loaded = store_meter_events(conn, read_meter_events_file(example("meter_events.csv")))
    assert loaded.events == UpsertCounts(1, 0, 0) and loaded.multipliers_set == 0

    meters = list_meters(conn)
    assert len(meters) == 23
    bf = next(m for m in meters if m.enterprise_code == STEEL and m.meter_code == "EL-BF")
    assert (bf.park_code, bf.parent_meter_code, bf.multiplier, bf.key_energy_unit) == (
        "ECQ",
        "EL-MAIN",
        6000.0,
        True,
    )
    assert {m.park_code for m in list_meters(conn, park_code="GDKFQ")} == {"GDKFQ"}
    assert len(list_meters(conn, enterprise_code=STEEL)) == 6
    assert list_meters(conn, park_code="GDKFQ", enterprise_code=STEEL) == []
    assert bf.as_dict()["meter_code"] == "EL-BF"


def test_loading_twice_changes_nothing(conn: psycopg.Connection[Any]) -> None:
    reg = read_registry_file(example("registry.csv"))
    store_registry(conn, reg)
    store_meter_events(conn, read_meter_events_file(example("meter_events.csv")))
    before = revision(conn)
    summary = store_registry(conn, reg)
    assert summary.parks == UpsertCounts(0, 0, 2)
    assert summary.enterprises == UpsertCounts(0, 0, 5)
    assert summary.meters == UpsertCounts(0, 0, 23)
    again = store_meter_events(conn, read_meter_events_file(example("meter_events.csv")))
    assert again.events == UpsertCounts(0, 0, 1)
    assert revision(conn) == before  # collectors are not told to reload for nothing
    assert str(summary) == (
        "parks: 0 inserted, 0 updated, 2 unchanged; enterprises: 0 inserted, 0 updated, 5 unchanged; "
        "meters: 0 inserted, 0 updated, 23 unchanged"
    )


# --- updates ------------------------------------------------------------------------------


def test_changed_name_is_an_update_and_absent_meters_stay(
    conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    store_registry(
        conn, registry(tmp_path, meter_line("EL-MAIN"), meter_line("WA-MAIN", carrier="water", unit="m3"))
    )
    before = revision(conn)
    renamed = registry(
        tmp_path, meter_line("EL-MAIN", enterprise_name="鄂州楚江特钢股份有限公司"), name="b.csv"
    )
    summary = store_registry(conn, renamed)
    assert summary.enterprises == UpsertCounts(0, 1, 0)
    assert summary.meters == UpsertCounts(0, 0, 1)
    assert scalar(conn, "SELECT enterprise_name FROM registry.enterprise") == "鄂州楚江特钢股份有限公司"
    assert count(conn, "meter") == 2  # WA-MAIN, absent from the second file, is still there
    assert revision(conn) > before


def test_meter_values_and_parent_updates(conn: psycopg.Connection[Any], tmp_path: Path) -> None:
    store_registry(conn, registry(tmp_path, meter_line("EL-MAIN"), meter_line("EL-BF")))
    summary = store_registry(
        conn,
        registry(
            tmp_path,
            meter_line("EL-MAIN", multiplier="400"),
            meter_line("EL-BF", parent="EL-MAIN"),
            name="b.csv",
        ),
    )
    assert summary.meters == UpsertCounts(0, 2, 0)
    meters = {m.meter_code: m for m in list_meters(conn)}
    assert meters["EL-MAIN"].multiplier == 400.0
    assert meters["EL-BF"].parent_meter_code == "EL-MAIN"
    summary = store_registry(conn, registry(tmp_path, meter_line("EL-BF"), name="c.csv"))
    assert summary.meters == UpsertCounts(0, 1, 0)
    assert {m.meter_code: m.parent_meter_code for m in list_meters(conn)} == {"EL-BF": None, "EL-MAIN": None}


def test_parent_already_stored(conn: psycopg.Connection[Any], tmp_path: Path) -> None:
    store_registry(conn, registry(tmp_path, meter_line("EL-MAIN")))
    store_registry(conn, registry(tmp_path, meter_line("EL-BF", parent="EL-MAIN"), name="b.csv"))
    assert {m.meter_code: m.parent_meter_code for m in list_meters(conn)} == {
        "EL-BF": "EL-MAIN",
        "EL-MAIN": None,
    }


def test_unstated_key_energy_unit_keeps_the_stored_flag(
    conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    store_registry(conn, registry(tmp_path, meter_line("EL-MAIN", key_energy_unit="是")))
    summary = store_registry(conn, registry(tmp_path, meter_line("EL-MAIN"), name="b.csv"))
    assert summary.enterprises == UpsertCounts(0, 0, 1)
    assert scalar(conn, "SELECT key_energy_unit FROM registry.enterprise") is True
    store_registry(conn, registry(tmp_path, meter_line("EL-MAIN", key_energy_unit="否"), name="c.csv"))
    assert scalar(conn, "SELECT key_energy_unit FROM registry.enterprise") is False


# --- all or nothing -----------------------------------------------------------------------


def test_nothing_is_written_when_one_row_is_bad(conn: psycopg.Connection[Any], tmp_path: Path) -> None:
    bad = registry(
        tmp_path, meter_line("EL-MAIN"), meter_line("EL-BF", parent="EL-NOWHERE"), meter_line("EL-2")
    )
    with pytest.raises(RegistryLoadError) as caught:
        store_registry(conn, bad)
    (problem,) = caught.value.problems
    assert (problem.file, problem.line, problem.column) == (
        str(tmp_path / "registry.csv"),
        3,
        "parent_meter_code",
    )
    assert "'EL-NOWHERE'" in problem.message
    assert (count(conn, "park"), count(conn, "enterprise"), count(conn, "meter")) == (0, 0, 0)
    assert revision(conn) == 0


def test_a_bad_row_leaves_the_stored_registry_as_it_was(
    conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    store_registry(conn, registry(tmp_path, meter_line("EL-MAIN")))
    bad = registry(
        tmp_path,
        meter_line("EL-MAIN", enterprise_name="改名", multiplier="400"),
        meter_line("EL-BF", enterprise_name="改名", parent="EL-NOWHERE"),
        name="b.csv",
    )
    with pytest.raises(RegistryLoadError):
        store_registry(conn, bad)
    assert scalar(conn, "SELECT enterprise_name FROM registry.enterprise") == "鄂州楚江特钢有限公司"
    assert [(m.meter_code, m.multiplier) for m in list_meters(conn)] == [("EL-MAIN", 200.0)]


def test_parent_of_another_carrier_in_the_database(conn: psycopg.Connection[Any], tmp_path: Path) -> None:
    store_registry(conn, registry(tmp_path, meter_line("EL-MAIN")))
    with pytest.raises(RegistryLoadError) as caught:
        store_registry(
            conn,
            registry(
                tmp_path, meter_line("WA-1", carrier="water", unit="m3", parent="EL-MAIN"), name="b.csv"
            ),
        )
    (problem,) = caught.value.problems
    assert "stored parent EL-MAIN measures electricity, this meter water" in problem.message


def test_parent_cycle_through_the_database(conn: psycopg.Connection[Any], tmp_path: Path) -> None:
    store_registry(conn, registry(tmp_path, meter_line("EL-MAIN"), meter_line("EL-BF", parent="EL-MAIN")))
    with pytest.raises(RegistryLoadError) as caught:
        store_registry(conn, registry(tmp_path, meter_line("EL-MAIN", parent="EL-BF"), name="b.csv"))
    (problem,) = caught.value.problems
    assert (problem.line, problem.column) == (2, "parent_meter_code")
    assert "own ancestor" in problem.message
    assert {m.meter_code: m.parent_meter_code for m in list_meters(conn)} == {
        "EL-BF": "EL-MAIN",
        "EL-MAIN": None,
    }


def add_reading(conn: psycopg.Connection[Any], meter_code: str) -> None:
    conn.execute(
        "INSERT INTO ingest.reading (meter_id, ts, value)"
        " SELECT meter_id, now(), 1 FROM registry.meter WHERE meter_code = %s",
        (meter_code,),
    )
    conn.commit()


def test_meter_with_readings_keeps_carrier_unit_kind_and_multiplier(
    conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    store_registry(conn, registry(tmp_path, meter_line("EL-MAIN"), meter_line("EL-2")))
    add_reading(conn, "EL-MAIN")
    changed = registry(
        tmp_path,
        meter_line("EL-MAIN", unit="MWh", multiplier="400"),
        meter_line("EL-2", unit="MWh", multiplier="400"),  # no readings: may change
        name="b.csv",
    )
    with pytest.raises(RegistryLoadError) as caught:
        store_registry(conn, changed)
    assert [(p.line, p.column) for p in caught.value.problems] == [(2, "unit"), (2, "multiplier")]
    assert "'kWh' cannot become 'MWh'" in caught.value.problems[0].message
    assert "load a multiplier_change event" in caught.value.problems[1].message


# --- meter events -------------------------------------------------------------------------


def test_events_for_unknown_meters_write_nothing(conn: psycopg.Connection[Any], tmp_path: Path) -> None:
    store_registry(conn, registry(tmp_path, meter_line("EL-MAIN")))
    path = events(
        tmp_path,
        [STEEL, "EL-MAIN", "calibration", "2024-01-01T00:00:00+08:00", "", "", "", ""],
        [STEEL, "EL-NOWHERE", "calibration", "2024-01-01T00:00:00+08:00", "", "", "", ""],
        ["91420700MA4G2L4Q5Y", "EL-MAIN", "calibration", "2024-01-01T00:00:00+08:00", "", "", "", ""],
    )
    with pytest.raises(RegistryLoadError) as caught:
        store_meter_events(conn, read_meter_events_file(path))
    assert [(p.line, p.column) for p in caught.value.problems] == [(3, "meter_code"), (4, "meter_code")]
    assert count(conn, "meter_event") == 0


def test_event_upsert_updates_a_changed_note(conn: psycopg.Connection[Any], tmp_path: Path) -> None:
    store_registry(conn, registry(tmp_path, meter_line("EL-MAIN")))
    row = [STEEL, "EL-MAIN", "replacement", "2024-01-01T00:00:00+08:00", "100", "0", "", "old"]
    store_meter_events(conn, read_meter_events_file(events(tmp_path, row)))
    loaded = store_meter_events(
        conn, read_meter_events_file(events(tmp_path, [*row[:-1], "new"], name="b.csv"))
    )
    assert loaded.events == UpsertCounts(0, 1, 0)
    assert scalar(conn, "SELECT note FROM registry.meter_event") == "new"


def test_multiplier_follows_the_latest_change_in_effect(
    conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    store_registry(conn, registry(tmp_path, meter_line("EL-MAIN")))
    future = (datetime.now(UTC) + timedelta(days=30)).isoformat()

    def change(at: str, multiplier: str, name: str) -> int:
        path = events(
            tmp_path, [STEEL, "EL-MAIN", "multiplier_change", at, "", "", multiplier, ""], name=name
        )
        return store_meter_events(conn, read_meter_events_file(path)).multipliers_set

    def current() -> float:
        return float(scalar(conn, "SELECT multiplier FROM registry.meter"))

    assert change("2024-06-01T00:00:00+08:00", "400", "a.csv") == 1
    assert current() == 400.0
    assert change("2024-01-01T00:00:00+08:00", "300", "b.csv") == 0  # older: history only
    assert current() == 400.0
    assert change(future, "800", "c.csv") == 0  # not yet in effect
    assert current() == 400.0

    # The registry file must now agree with the events.
    with pytest.raises(RegistryLoadError):
        store_registry(conn, registry(tmp_path, meter_line("EL-MAIN", multiplier="200"), name="d.csv"))
    assert store_registry(
        conn, registry(tmp_path, meter_line("EL-MAIN", multiplier="400"), name="e.csv")
    ).meters == (UpsertCounts(0, 0, 1))


# --- scale --------------------------------------------------------------------------------


def test_seven_hundred_enterprises_with_ten_meters_each(
    conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    rows = [
        [
            f"P{e % 5}",
            f"园区{e % 5}",
            f"E{e:05d}",
            f"企业{e}",
            "3120",
            f"EL-{m}",
            "electricity",
            "kWh",
            "register",
            "200",
            "EL-0" if m else "",
            "",
        ]
        for e in range(700)
        for m in range(10)
    ]
    big = read_registry_file(write_table(tmp_path / "big.csv", HEADER, rows))
    summary = store_registry(conn, big)
    assert (summary.parks.inserted, summary.enterprises.inserted, summary.meters.inserted) == (5, 700, 7000)
    assert store_registry(conn, big).meters == UpsertCounts(0, 0, 7000)
    assert scalar(conn, "SELECT count(*) FROM registry.meter WHERE parent_meter_id IS NOT NULL") == 6300
