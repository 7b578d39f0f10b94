"""Silent meters: a registered meter that stops reporting lowers its enterprise's coverage
(DOMAIN.md §4 completeness = received / expected; §8 gaps are not zeros), and its silence is
rewritten as a spread gap when it reports again."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest

from analytics.jobs import run_job
from parkdata.migrate import migrate
from tests.test_energy_store import SHANGHAI_MIDNIGHT, Conn, insert, load, meter, total, view

DAY = timedelta(days=1)
QUARTER = timedelta(minutes=15)
PER_DAY = 96  # 15-minute readings per day


@pytest.fixture
def conn(database_url: str) -> Iterator[Conn]:
    """A migrated database on an autocommit connection."""
    with psycopg.connect(database_url, autocommit=True) as c:
        migrate(c)
        yield c


def _month(conn: Conn) -> tuple[float, float, bool, int]:
    row = conn.execute(
        "SELECT energy_tce_gross, coverage, low_coverage, meters FROM api.energy_tce_month"
        " WHERE level = 'enterprise' AND bucket = %s",
        (SHANGHAI_MIDNIGHT,),
    ).fetchone()
    assert row is not None
    return float(row[0]), float(row[1]), bool(row[2]), int(row[3])


def test_a_meter_silent_mid_month_lowers_coverage_until_it_reports_again(conn: Conn, tmp_path: Path) -> None:
    ids = load(conn, tmp_path, meter("EL"), meter("EL2"), meter("EL3"))
    feb1 = SHANGHAI_MIDNIGHT
    insert(conn, ids["EL"], feb1, [1000.0 + 10 * i for i in range(19 * PER_DAY + 1)])  # to Feb 20 00:00
    insert(conn, ids["EL2"], feb1, [500.0 + 4 * i for i in range(9 * PER_DAY + 1)])  # silent from Feb 10
    insert(conn, ids["EL3"], feb1, [0.0 + 1 * i for i in range(2 * PER_DAY + 1)])  # retired on Feb 5
    retired = feb1 + 4 * DAY
    conn.execute("UPDATE registry.meter SET retired_at = %s WHERE meter_id = %s", (retired, ids["EL3"]))
    now = feb1 + 19 * DAY
    assert run_job(conn, "energy", now).status == "ok"

    silent = [r for r in view(conn, "15min", "EL2") if r[0] >= feb1 + 9 * DAY]
    assert silent[0][0] == feb1 + 9 * DAY and silent[-1][0] == now - timedelta(hours=1) - QUARTER
    assert all(r[1] == 0 and r[4] == 0 and r[5] == 1 and r[6] == 0 for r in silent)  # no energy, coverage 0
    assert view(conn, "15min", "EL3")[-1][0] == retired - QUARTER  # nothing after retirement
    assert total(conn, "month", "EL2") == pytest.approx(4 * 9 * PER_DAY)  # no energy invented

    # Readings in February (a reading counts in the bucket its interval ends in): EL 19 days,
    # EL2 9 days, EL3 2 days; expected also the silent quarters of EL2 (to 1 h before the run)
    # and of EL3 (to its retirement).
    received = (19 + 9 + 2) * PER_DAY
    expected = received + (10 * PER_DAY - 4) + 2 * PER_DAY
    energy, coverage, low, meters = _month(conn)
    assert coverage == pytest.approx(received / expected)
    assert low and meters == 3
    assert energy == pytest.approx((10 * 19 + 4 * 9 + 2) * PER_DAY * 0.1229e-3)  # GB/T 2589-2020 当量

    # A second run at the same time adds nothing; EL2 reporting again turns the silence into a spread gap.
    before = view(conn, "day", "EL2")
    assert run_job(conn, "energy", now).status == "ok"
    assert view(conn, "day", "EL2") == before and len(silent) == 10 * PER_DAY - 4
    insert(conn, ids["EL2"], now, [500.0 + 4 * 9 * PER_DAY + 3000.0 + 4 * i for i in range(PER_DAY + 1)])
    assert run_job(conn, "energy", now + 2 * DAY).status == "ok"
    gap = [r for r in view(conn, "15min", "EL2") if feb1 + 9 * DAY <= r[0] < now]
    assert len(gap) == 10 * PER_DAY and all(r[2] > 0 and r[4] == 0 for r in gap[:-1])  # estimated
    assert total(conn, "day", "EL2") == pytest.approx(4 * 10 * PER_DAY + 3000.0)
    assert total(conn, "month", "EL2", "estimated_quantity") == pytest.approx(3000.0)  # the gap step
