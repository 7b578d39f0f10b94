"""Registry and meter-event files read without a database: good files, and every bad line named."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta, timezone
from importlib import resources
from pathlib import Path

import openpyxl
import pytest

from parkdata.carriers import MeterKind, MeterPurpose
from parkdata.registry_file import (
    MeterEventType,
    Problem,
    RegistryFileError,
    read_meter_events_file,
    read_registry_file,
)


def example(name: str) -> Path:
    return Path(str(resources.files("parkenergy.examples").joinpath(name)))


HEADER = (
    "park_code,park_name,enterprise_code,enterprise_name,industry_code,"
    "meter_code,carrier,unit,kind,multiplier,rollover,expected_interval_s,rated_capacity,purpose,"
    "key_energy_unit,parent_meter_code"
)
STEEL = "ECQ,鄂城区,91420704MA4C7K2P5H,鄂州楚江特钢有限公司,3120"
PHARMA = "GDKFQ,葛店经开区,91420700MA4G2L4Q5Y,湖北葛店康瑞制药有限公司,2720"
GOOD_METER = f"{STEEL},EL-MAIN,electricity,kWh,register,12000,1000000,900,45000,,true,"

EVENTS_HEADER = (
    "enterprise_code,meter_code,event_type,effective_at,final_register,initial_register,new_multiplier,note"
)


def write(tmp_path: Path, *lines: str, name: str = "registry.csv", prefix: bytes = b"") -> Path:
    path = tmp_path / name
    path.write_bytes(prefix + "\n".join(lines).encode() + b"\n")
    return path


def problems_of(path: Path, reader: Callable[[Path], object] = read_registry_file) -> list[Problem]:
    with pytest.raises(RegistryFileError) as caught:
        reader(path)
    return caught.value.problems


# --- good files ---------------------------------------------------------------------------


def test_example_registry_reads() -> None:
    registry = read_registry_file(example("registry.csv"))
    assert {p.park_code: p.park_name for p in registry.parks} == {"ECQ": "鄂城区", "GDKFQ": "葛店经开区"}
    assert len(registry.enterprises) == 5
    assert all(len(e.enterprise_code) == 18 for e in registry.enterprises)
    purposes = {m.purpose for m in registry.meters}
    assert purposes == set(MeterPurpose)
    kinds = {m.kind for m in registry.meters}
    assert kinds == set(MeterKind)
    bf = next(m for m in registry.meters if m.meter_code == "EL-BF")
    assert (bf.parent_meter_code, bf.multiplier, bf.expected_interval_s, bf.line) == (
        "EL-MAIN",
        6000.0,
        900,
        3,
    )


def test_example_meter_events_read() -> None:
    (event,) = read_meter_events_file(example("meter_events.csv"))
    assert event.event_type is MeterEventType.REPLACEMENT
    assert event.effective_at == datetime(2024, 6, 12, 2, 30, tzinfo=UTC)
    assert (event.final_register, event.initial_register, event.new_multiplier) == (482137.6, 0.0, None)


def test_defaults_and_normalised_values(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "park_code,park_name,enterprise_code,enterprise_name,industry_code,meter_code,carrier,unit,kind",
        f"{STEEL},WA-MAIN,Water,m³,Register",
    )
    (meter,) = read_registry_file(path).meters
    assert (meter.carrier, meter.unit, meter.kind) == ("water", "m3", MeterKind.REGISTER)
    assert (meter.multiplier, meter.purpose, meter.rollover, meter.parent_meter_code) == (
        1.0,
        MeterPurpose.CONSUMPTION,
        None,
        None,
    )
    (enterprise,) = read_registry_file(path).enterprises
    assert enterprise.key_energy_unit is None  # not stated: the store keeps what it has


def test_header_whitespace_case_and_bom(tmp_path: Path) -> None:
    header = (
        " Park_Code , PARK_NAME,enterprise_code ,Enterprise_Name,industry_code,meter_code,carrier,unit,KIND "
    )
    path = write(tmp_path, header, f"{STEEL},EL-MAIN,electricity,kWh,register", prefix=b"\xef\xbb\xbf")
    registry = read_registry_file(path)
    assert registry.parks[0].park_code == "ECQ"
    assert registry.meters[0].kind is MeterKind.REGISTER


def test_chinese_booleans_and_one_flag_for_several_lines(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        HEADER,
        f"{STEEL},EL-MAIN,electricity,kWh,register,,,,,,是,",
        f"{STEEL},WA-MAIN,water,m3,register,,,,,,,",
        f"{PHARMA},EL-MAIN,electricity,kWh,register,,,,,,否,",
    )
    flags = {e.enterprise_code: e.key_energy_unit for e in read_registry_file(path).enterprises}
    assert flags == {"91420704MA4C7K2P5H": True, "91420700MA4G2L4Q5Y": False}


def test_blank_lines_and_quoted_multiline_keep_line_numbers(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        HEADER,
        "",
        'ECQ,鄂城区,91420704MA4C7K2P5H,"鄂州楚江特钢\n有限公司",3120,EL-MAIN,electricity,kWh,register,,,,,,,',
        f"{STEEL.replace('鄂州楚江特钢有限公司', 'x')},EL-X,electricity,kWh,registr,,,,,,,",
    )
    problems = problems_of(path)
    kind = next(p for p in problems if p.column == "kind")
    assert kind.line == 5  # the record on lines 3-4 is one record; the next starts on line 5


# --- one bad value per line, reported with its line and column ----------------------------


@pytest.mark.parametrize(
    ("meter", "column", "message"),
    [
        ("EL-2,elec,kWh,register,,,,,,,", "carrier", "'elec' is not one of"),
        ("EL-2,electricity,kwh,register,,,,,,,", "unit", "unknown unit 'kwh'"),
        ("EL-2,electricity,m3,register,,,,,,,", "unit", "carrier electricity does not allow"),
        ("EL-2,electricity,kWh,gauge,,,,,,,", "unit", "gauge meters need a rate unit"),
        ("EL-2,electricity,kW,register,,,,,,,", "unit", "meters need a quantity unit"),
        ("NG-2,natural_gas,m3/h,interval,,,,,,,", "unit", "meters need a quantity unit"),
        ("EL-2,electricity,kWh,counter,,,,,,,", "kind", "'counter' is not one of: register, interval, gauge"),
        ("EL-2,electricity,kWh,register,,,,,selling,,", "purpose", "'selling' is not one of"),
        ("EL-2,electricity,kWh,register,0,,,,,,", "multiplier", "must be greater than 0, got 0"),
        ("EL-2,electricity,kWh,register,abc,,,,,,", "multiplier", "'abc' is not a number"),
        ("EL-2,electricity,kWh,register,nan,,,,,,", "multiplier", "not a finite number"),
        ("EL-2,electricity,kWh,register,,-5,,,,,", "rollover", "must be greater than 0, got -5"),
        ("EL-2,electricity,kW,gauge,,1000,,,,,", "rollover", "register meters only"),
        ("EL-2,electricity,kWh,register,,,15.5,,,,", "expected_interval_s", "whole number, got 15.5"),
        ("EL-2,electricity,kWh,register,,,,-1,,,", "rated_capacity", "greater than 0"),
        ("EL-2,electricity,kWh,register,,,,,,maybe,", "key_energy_unit", "'maybe' is not true/false"),
        ("_EL,electricity,kWh,register,,,,,,,", "meter_code", "reserved for gateway topics"),
        ("EL/2,electricity,kWh,register,,,,,,,", "meter_code", "'EL/2' may contain only"),
        (",electricity,kWh,register,,,,,,,", "meter_code", "value is required"),
        ("EL-2,electricity,kWh,,,,,,,,", "kind", "value is required"),
    ],
)
def test_bad_meter_value_is_reported_on_its_line(
    tmp_path: Path, meter: str, column: str, message: str
) -> None:
    path = write(tmp_path, HEADER, GOOD_METER, f"{STEEL},{meter}")
    (problem,) = problems_of(path)
    assert (problem.file, problem.line, problem.column) == (str(path), 3, column)
    assert message in problem.message


@pytest.mark.parametrize(
    ("enterprise", "column", "message"),
    [
        ("ECQ,,91420704MA4C7K2P5H,鄂州楚江特钢有限公司,3120", "park_name", "value is required"),
        ("E Q,鄂城区,91420704MA4C7K2P5H,鄂州楚江特钢有限公司,3120", "park_code", "'E Q' may contain only"),
        ("ECQ,鄂城区,9142 0704,鄂州楚江特钢有限公司,3120", "enterprise_code", "may contain only"),
        ("ECQ,鄂城区,91420704MA4C7K2P5H,鄂州楚江特钢有限公司,31A0", "industry_code", "not a GB/T 4754 code"),
    ],
)
def test_bad_enterprise_value_is_reported_on_its_line(
    tmp_path: Path, enterprise: str, column: str, message: str
) -> None:
    path = write(tmp_path, HEADER, GOOD_METER, f"{enterprise},EL-2,electricity,kWh,register,,,,,,,")
    (problem,) = problems_of(path)
    assert (problem.line, problem.column) == (3, column)
    assert message in problem.message


def test_every_problem_of_a_file_is_listed(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        HEADER,
        GOOD_METER,
        f"{STEEL},EL-2,elec,kwh,register,0,,,,,,",  # three bad cells on one line
        f"{STEEL},EL-MAIN,electricity,kWh,register,,,,,,,",  # duplicate meter
        "ECQ,鄂城区,91420704MA4C7K2P5H,鄂州特钢,3120,WA-1,water,m3,register,,,,,,,",  # other name
        "GDKFQ,葛店,91420704MA4C7K2P5H,鄂州楚江特钢有限公司,3120,WA-2,water,m3,register,,,,,,,",  # other park
        "ECQ,鄂城,91420700MA4G2L4Q5Y,湖北葛店康瑞制药有限公司,2720,EL-1,electricity,kWh,register,,,,,,,",
        f"{STEEL},WA-3,water,m3,register,,,,,,false,",  # contradicts the flag of line 2
    )
    found = [(p.line, p.column) for p in problems_of(path)]
    assert found == [
        (3, "carrier"),
        (3, "unit"),
        (3, "multiplier"),
        (4, "meter_code"),
        (5, "enterprise_name"),
        (6, "park_code"),
        (7, "park_name"),
        (8, "key_energy_unit"),
    ]


def test_error_text_lists_file_line_column_and_value(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER, f"{STEEL},EL-2,electricity,kWh,register,-2,,,,,,")
    with pytest.raises(RegistryFileError) as caught:
        read_registry_file(path)
    assert f"{path}:2: multiplier: must be greater than 0, got -2" in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_parent_meters_in_the_file_are_checked(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        HEADER,
        GOOD_METER,
        f"{STEEL},WA-1,water,m3,register,,,,,,,EL-MAIN",  # other carrier
        f"{STEEL},EL-A,electricity,kWh,register,,,,,,,EL-B",  # A → B → A
        f"{STEEL},EL-B,electricity,kWh,register,,,,,,,EL-A",
        f"{STEEL},EL-C,electricity,kWh,register,,,,,,,EL-C",  # its own parent
        f"{STEEL},EL-D,electricity,kWh,register,,,,,,,EL-ELSEWHERE",  # maybe in the database: not here
    )
    problems = problems_of(path)
    assert [(p.line, p.column) for p in problems] == [
        (3, "parent_meter_code"),
        (4, "parent_meter_code"),
        (6, "parent_meter_code"),
    ]
    assert "parent EL-MAIN measures electricity, this meter water" in problems[0].message
    assert "EL-A → EL-B → EL-A" in problems[1].message
    assert "EL-C → EL-C" in problems[2].message


# --- header and file-level problems -------------------------------------------------------


def test_missing_and_unknown_columns(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "park_code,park_name,enterprise_code,industry_code,meter_code,carrier,unit,kind,multipler",
        "ECQ,鄂城区,91420704MA4C7K2P5H,3120,EL-MAIN,electricity,kWh,register,200",
    )
    problems = problems_of(path)
    assert [(p.line, p.column) for p in problems] == [(1, "multipler"), (1, None)]
    assert "unknown column 'multipler'" in problems[0].message
    assert "missing required column(s): enterprise_name" in problems[1].message


def test_unknown_column_alone_still_checks_the_rows(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER + ",colour", f"{STEEL},EL-2,electricity,kWh,register,-1,,,,,,,red")
    assert [(p.line, p.column) for p in problems_of(path)] == [(1, "colour"), (2, "multiplier")]


def test_value_beyond_the_header_is_reported(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER, GOOD_METER + ",surplus")
    (problem,) = problems_of(path)
    assert problem.line == 2 and "'surplus'" in problem.message


def test_gbk_csv_is_refused_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "gbk.csv"
    path.write_bytes(f"{HEADER}\n{GOOD_METER}\n".encode("gbk"))
    (problem,) = problems_of(path)
    assert problem.line == 2 and "not UTF-8" in problem.message


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("registry.csv", b"", "empty file"),
        ("registry.csv", HEADER.encode() + b"\n", "no meter lines"),
        ("registry.xls", b"x", "unsupported file type '.xls'"),
        ("registry.xlsx", b"not a zip", "not a readable XLSX workbook"),
    ],
)
def test_unusable_files(tmp_path: Path, name: str, content: bytes, message: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    (problem,) = problems_of(path)
    assert message in problem.message


def test_missing_file(tmp_path: Path) -> None:
    (problem,) = problems_of(tmp_path / "nowhere.csv")
    assert problem.line == 0 and "cannot read" in problem.message


# --- XLSX ---------------------------------------------------------------------------------


def write_xlsx(path: Path, rows: Sequence[Sequence[object]]) -> Path:
    book = openpyxl.Workbook()
    sheet = book.active
    for number, row in enumerate(rows, 1):
        for column, value in enumerate(row, 1):
            if value is not None:
                sheet.cell(row=number, column=column, value=value)
    book.create_sheet("ignored").append(["not", "read"])
    book.save(path)
    return path


def test_xlsx_first_sheet_with_typed_cells_and_row_numbers(tmp_path: Path) -> None:
    header = [" Park_Code", "park_name", "enterprise_code", "enterprise_name", "industry_code"]
    header += [
        "meter_code",
        "carrier",
        "unit",
        "kind",
        "multiplier",
        "key_energy_unit",
        "expected_interval_s",
    ]
    steel = ["ECQ", "鄂城区", "91420704MA4C7K2P5H", "鄂州楚江特钢有限公司", 3120]
    path = write_xlsx(
        tmp_path / "registry.xlsx",
        [
            header,
            [*steel, "EL-MAIN", "electricity", "kWh", "register", 12000, True, 900.0],
            [None] * 5,  # blank row 3
            [*steel, "EL-2", "electricity", "kWh", "register", "x", True, 900],
            [*steel, "EL-3", "electricity", "kWh", "register", 200, True, 900],
        ],
    )
    (problem,) = problems_of(path)
    assert (problem.line, problem.column) == (4, "multiplier")
    good = write_xlsx(
        tmp_path / "good.xlsx",
        [header, [*steel, "EL-MAIN", "electricity", "kWh", "register", 12000, True, 900.0]],
    )
    registry = read_registry_file(good)
    assert registry.enterprises[0].industry_code == "3120"
    assert registry.enterprises[0].key_energy_unit is True
    assert (registry.meters[0].multiplier, registry.meters[0].expected_interval_s) == (12000.0, 900)


def test_xlsx_meter_events_need_text_times_with_offset(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path / "events.xlsx",
        [
            EVENTS_HEADER.split(","),
            ["91420704MA4C7K2P5H", "EL-MAIN", "calibration", datetime(2024, 3, 1, 9, 0)],
            ["91420704MA4C7K2P5H", "EL-MAIN", "calibration", "2024-03-01T09:00:00+08:00"],
        ],
    )
    (problem,) = problems_of(path, read_meter_events_file)
    assert (problem.line, problem.column) == (2, "effective_at")
    assert "no UTC offset" in problem.message


# --- meter events -------------------------------------------------------------------------


def test_meter_events_good_file(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        EVENTS_HEADER,
        "91420704MA4C7K2P5H,EL-MAIN,multiplier_change,2024-03-01T00:00:00+08:00,,,24000,CT 1200/5",
        "91420704MA4C7K2P5H,EL-MAIN,calibration,2024-03-01T00:00:00Z,,,,",
        "91420704MA4C7K2P5H,WA-MAIN,replacement,2024-03-02 08:00+08:00,100.5,0,,",
    )
    change, calibration, replacement = read_meter_events_file(path)
    assert change.new_multiplier == 24000.0 and change.note == "CT 1200/5"
    assert change.effective_at.utcoffset() == timedelta(hours=8)
    assert calibration.effective_at.tzinfo is not None and calibration.note is None
    assert replacement.effective_at == datetime(2024, 3, 2, 8, 0, tzinfo=timezone(timedelta(hours=8)))


@pytest.mark.parametrize(
    ("event", "column", "message"),
    [
        ("EL-MAIN,replacement,2024-03-01T00:00:00,5,0,,", "effective_at", "has no UTC offset"),
        ("EL-MAIN,replacement,2024-03-01,5,0,,", "effective_at", "has no UTC offset"),
        ("EL-MAIN,replacement,yesterday,5,0,,", "effective_at", "'yesterday' is not an ISO 8601 time"),
        ("EL-MAIN,replacement,2024-03-01T00:00+08:00,5,,,", "initial_register", "a replacement event needs"),
        ("EL-MAIN,replacement,2024-03-01T00:00+08:00,,0,,", "final_register", "a replacement event needs"),
        ("EL-MAIN,replacement,2024-03-01T00:00+08:00,-5,0,,", "final_register", "must be 0 or more"),
        ("EL-MAIN,multiplier_change,2024-03-01T00:00+08:00,,,,", "new_multiplier", "needs new_multiplier"),
        ("EL-MAIN,multiplier_change,2024-03-01T00:00+08:00,,,0,", "new_multiplier", "greater than 0"),
        (
            "EL-MAIN,calibration,2024-03-01T00:00+08:00,,,2,",
            "new_multiplier",
            "multiplier_change events only",
        ),
        ("EL-MAIN,calibration,2024-03-01T00:00+08:00,1,,,", "final_register", "replacement events only"),
        ("EL-MAIN,swap,2024-03-01T00:00+08:00,,,,", "event_type", "'swap' is not one of"),
    ],
)
def test_bad_meter_event_is_reported_on_its_line(
    tmp_path: Path, event: str, column: str, message: str
) -> None:
    path = write(
        tmp_path,
        EVENTS_HEADER,
        "91420704MA4C7K2P5H,EL-MAIN,calibration,2024-01-01T00:00:00+08:00,,,,",
        f"91420704MA4C7K2P5H,{event}",
    )
    (problem,) = problems_of(path, read_meter_events_file)
    assert (problem.line, problem.column) == (3, column)
    assert message in problem.message


def test_same_event_twice_even_with_another_offset(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        EVENTS_HEADER,
        "91420704MA4C7K2P5H,EL-MAIN,calibration,2024-01-01T08:00:00+08:00,,,,",
        "91420704MA4C7K2P5H,EL-MAIN,calibration,2024-01-01T00:00:00Z,,,,",
    )
    (problem,) = problems_of(path, read_meter_events_file)
    assert problem.line == 3 and "same event as on line 2" in problem.message


def test_replacement_columns_are_required_in_the_header(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "enterprise_code,meter_code,event_type,effective_at",
        "91420704MA4C7K2P5H,EL-MAIN,replacement,2024-01-01T08:00:00+08:00",
    )
    assert [(p.line, p.column) for p in problems_of(path, read_meter_events_file)] == [
        (2, "final_register"),
        (2, "initial_register"),
    ]
