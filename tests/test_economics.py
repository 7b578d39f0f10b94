"""Economics imports: line-numbered validation, nothing half-imported, revisions kept, deflation."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import psycopg
import pytest
from openpyxl import Workbook
from typer.testing import CliRunner

from analytics.economics_file import (
    EconomicsFileError,
    read_baseline_file,
    read_deflators_file,
    read_output_file,
    read_value_added_file,
)
from analytics.economics_store import store_baseline, store_deflators, store_output, store_value_added
from parkdata.migrate import migrate
from parkdata.registry_file import read_registry_file
from parkdata.registry_store import store_registry
from parkenergy.cli import app

runner = CliRunner()

REGISTRY = """park_code,park_name,enterprise_code,enterprise_name,industry_code,meter_code,carrier,unit,kind
P,Park,A,Alpha,3120,M,electricity,kWh,register
P,Park,B,Beta,2710,M,electricity,kWh,register
"""


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def db(database_url: str, tmp_path: Path) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        migrate(conn)
    with psycopg.connect(database_url, autocommit=True) as conn:
        store_registry(conn, read_registry_file(_write(tmp_path, "registry.csv", REGISTRY)))
        yield conn


def _problems(exc: pytest.ExceptionInfo[EconomicsFileError]) -> list[tuple[int, str | None]]:
    return [(p.line, p.column) for p in exc.value.problems]


def test_value_added_problems_name_every_line(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "va.csv",
        "Enterprise_Code , PERIOD,value_added_10k_yuan,price_index_2022\n"
        "A,2025-01,100,\n"
        "A,2025-13,100,\n"  # line 3: no month 13
        "A,2025-02,-5,\n"  # line 4: negative
        "\n"
        "B,2025-01,abc,0\n"  # line 6: not a number, index 0
        "A,2025-01,100,\n",  # line 7: duplicate of line 2
    )
    with pytest.raises(EconomicsFileError) as exc:
        read_value_added_file(path)
    assert _problems(exc) == [
        (3, "period"),
        (4, "value_added_10k_yuan"),
        (6, "value_added_10k_yuan"),
        (6, "price_index_2022"),
        (7, "period"),
    ]
    assert "va.csv:7: period: A 2025-01 already given on line 2" in str(exc.value)


def test_header_problems(tmp_path: Path) -> None:
    with pytest.raises(EconomicsFileError) as exc:
        read_deflators_file(
            _write(tmp_path, "d.csv", "industry_code,year,index,price_index_2022\n31,2025,1,1\n")
        )
    assert _problems(exc) == [(1, "index")]
    with pytest.raises(EconomicsFileError, match="missing required column"):
        read_output_file(_write(tmp_path, "o.csv", "enterprise_code,period,product,quantity\n"))
    with pytest.raises(EconomicsFileError, match="unsupported file type"):
        read_output_file(_write(tmp_path, "o.txt", "x"))


def test_baseline_checks(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "b.csv",
        "enterprise_code,year,carrier,unit,consumption,feedstock,non_fossil,value_added_10k_yuan\n"
        "A,2022,electricity,kWh,1000,0,100,50\n"
        "A,2022,natural_gas,kWh,10,,,50\n"  # line 3: gas is not metered in energy
        "A,2022,coal,t,10,,,50\n"  # line 4: unknown carrier
        "A,2022,coke,t,10,8,5,50\n"  # line 5: parts exceed the total
        "A,2022,steam,t,10,,,60\n"  # line 6: value added disagrees with line 2
        "B,22,steam,t,10,,,60\n",  # line 7: not a year
    )
    with pytest.raises(EconomicsFileError) as exc:
        read_baseline_file(path)
    assert _problems(exc) == [
        (3, "unit"),
        (4, "carrier"),
        (5, "consumption"),
        (6, "value_added_10k_yuan"),
        (7, "year"),
    ]


def test_xlsx_files_read_like_csv(tmp_path: Path) -> None:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["enterprise_code", "period", "value_added_10k_yuan"])
    sheet.append(["A", "2025-01", 120.5])
    sheet.append(["B", date(2025, 2, 1), 80])
    sheet.append(["B", date(2025, 2, 15), 80])  # row 4: not the first of a month
    path = tmp_path / "va.xlsx"
    book.save(path)
    with pytest.raises(EconomicsFileError) as exc:
        read_value_added_file(path)
    assert _problems(exc) == [(4, "period")]
    sheet.delete_rows(4)
    book.save(path)
    rows = read_value_added_file(path)
    assert [(r.enterprise_code, r.period, r.value_added_10k_yuan, r.line) for r in rows] == [
        ("A", date(2025, 1, 1), 120.5, 2),
        ("B", date(2025, 2, 1), 80.0, 3),
    ]


def test_nothing_half_imported(
    db: psycopg.Connection[tuple[object, ...]], database_url: str, tmp_path: Path
) -> None:
    path = _write(
        tmp_path, "va.csv", "enterprise_code,period,value_added_10k_yuan\nA,2025-01,1\nZ,2025-01,2\n"
    )
    with pytest.raises(EconomicsFileError) as exc:
        store_value_added(db, read_value_added_file(path))
    assert _problems(exc) == [(3, "enterprise_code")]
    assert db.execute("SELECT count(*) FROM economics.value_added").fetchone() == (0,)

    env = {"DATABASE_URL": database_url}
    result = runner.invoke(app, ["import", "value-added", str(path)], env=env)
    assert result.exit_code == 2  # bad input, not a failure of the command
    assert "va.csv:3: enterprise_code: unknown enterprise 'Z'" in result.output
    assert "error: 1 problem; nothing was imported" in result.output
    assert db.execute("SELECT count(*) FROM economics.value_added").fetchone() == (0,)


def test_revisions_replace_and_keep_history(
    db: psycopg.Connection[tuple[object, ...]], tmp_path: Path
) -> None:
    first = _write(
        tmp_path, "va1.csv", "enterprise_code,period,value_added_10k_yuan\nA,2025-01,100\nA,2025-02,110\n"
    )
    summary = store_value_added(db, read_value_added_file(first), changed_by="alice")
    assert (summary.inserted, summary.revised, summary.unchanged) == (2, 0, 0)
    second = _write(
        tmp_path,
        "va2.csv",
        "enterprise_code,period,value_added_10k_yuan,price_index_2022\nA,2025-01,100,\nA,2025-02,115,1.02\n",
    )
    summary = store_value_added(db, read_value_added_file(second), changed_by="bob")
    assert (summary.inserted, summary.revised, summary.unchanged) == (0, 1, 1)
    assert db.execute(
        "SELECT value_added_10k_yuan, price_index_2022, revision, imported_by FROM economics.value_added"
        " WHERE period = '2025-02-01'"
    ).fetchone() == (115.0, 1.02, 2, "bob")
    history = db.execute(
        "SELECT dataset, key, previous, new, changed_by, source_file FROM economics.revision"
    ).fetchall()
    assert len(history) == 1
    dataset, key, previous, new, who, source = history[0]
    assert dataset == "value_added"
    assert key == {"enterprise_id": 1, "period": "2025-02-01"}
    assert previous == {"value_added_10k_yuan": 110.0, "price_index_2022": None}
    assert new == {"value_added_10k_yuan": 115.0, "price_index_2022": 1.02}
    assert (who, source) == ("bob", str(second))


def test_baseline_revision_removes_a_carrier(
    db: psycopg.Connection[tuple[object, ...]], tmp_path: Path
) -> None:
    header = "enterprise_code,year,carrier,unit,consumption,feedstock,non_fossil,value_added_10k_yuan\n"
    first = _write(tmp_path, "b1.csv", header + "A,2022,electricity,kWh,1000,,,50\nA,2022,steam,t,10,,,50\n")
    energy, va = store_baseline(db, read_baseline_file(first))
    assert (energy.inserted, va.inserted) == (2, 1)
    second = _write(tmp_path, "b2.csv", header + "A,2022,electricity,MWh,1,,,55\n")
    energy, va = store_baseline(db, read_baseline_file(second))
    assert (energy.revised, energy.removed, va.revised) == (1, 1, 1)
    assert db.execute("SELECT carrier, unit, consumption FROM api.baseline").fetchall() == [
        ("electricity", "MWh", 1.0)
    ]
    changes = db.execute(
        "SELECT dataset, new IS NULL FROM economics.revision ORDER BY revision_id"
    ).fetchall()
    assert sorted(changes) == [("baseline", False), ("baseline", True), ("baseline_value_added", False)]


def test_deflation_in_the_database(db: psycopg.Connection[tuple[object, ...]], tmp_path: Path) -> None:
    store_deflators(
        db,
        read_deflators_file(
            _write(tmp_path, "d.csv", "industry_code,year,price_index_2022\n31,2025,1.25\n3,2025,2\n")
        ),
    )
    store_value_added(
        db,
        read_value_added_file(
            _write(
                tmp_path,
                "va.csv",
                "enterprise_code,period,value_added_10k_yuan,price_index_2022\n"
                "A,2025-01,125,\nA,2025-02,125,1.0\nA,2022-05,80,\nB,2025-01,90,\n",
            )
        ),
    )
    rows = db.execute(
        "SELECT enterprise_code, period, price_index_2022, value_added_10k_yuan_2022, deflator_industry_code"
        " FROM api.value_added ORDER BY 1, 2"
    ).fetchall()
    assert rows == [
        ("A", date(2022, 5, 1), 1.0, 80.0, None),  # 2022 prices need no index
        ("A", date(2025, 1, 1), 1.25, 100.0, "31"),  # 3120 → 31
        ("A", date(2025, 2, 1), 1.0, 125.0, None),  # the enterprise's own index first
        ("B", date(2025, 1, 1), None, None, None),  # 2710 has no deflator: unknown, not guessed
    ]


def test_output_import(db: psycopg.Connection[tuple[object, ...]], tmp_path: Path) -> None:
    path = _write(
        tmp_path, "o.csv", "enterprise_code,period,product,quantity,unit\nA,2025-01,crude steel,1200,t\n"
    )
    assert str(store_output(db, read_output_file(path))) == "output: 1 inserted, 0 revised, 0 unchanged"
    assert db.execute("SELECT enterprise_code, product, quantity, unit FROM api.output").fetchall() == [
        ("A", "crude steel", 1200.0, "t")
    ]
