"""Intensity detectors: peers (robust z-score) and the target path; pure rules and the store on a small park.

The park (hand-built, like tests/test_accounting_park.py): six enterprises of class 3120 and
one of 2710, one electricity meter each, monthly energy rows for January-December 2025 written
straight into analytics.energy_month, value added 1000 × 10⁴ yuan a month at 2022 prices
(own index 1.0), and a 2022 baseline of 1 200 000 kWh and 12 000 × 10⁴ yuan each, so that
every enterprise's 2022 intensity is 147.48 / 12 000 = 0.01229 tce/10⁴ yuan.

Monthly kWh = 100 000 × factor; the rolling-12-month intensity is 0.01229 × factor:
  E1 1.00  at the 2022 level: above the path (at_risk), warning
  E2 1.10  10 % above 2022: off_track beyond the 5 % margin, critical
  E3 0.90  below the path (0.9^(3/5) = 0.9387 in Dec 2025): on track
  E4 1.04  4 % above 2022: off_track within the margin, warning
  E5 0.95  above the path, below 2022: at_risk, warning
  E6 5.00  five times its peers: peer outlier (high) and critical
  F1 1.00  industry 2710 alone: no peer group
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
import pytest
from typer.testing import CliRunner

from analytics.detect.intensity import (
    ABOVE_PATH,
    MAD_SCALE,
    PEER_OUTLIER,
    EnterpriseIntensity,
    above_path_findings,
    month_start,
    peer_outlier_findings,
    peer_scores,
    robust_scale,
)
from analytics.detect.intensity_store import detect_intensity, last_complete_month
from analytics.findings import Severity
from parkenergy.cli import app
from tests.harness import prepare_database

SHANGHAI = ZoneInfo("Asia/Shanghai")
runner = CliRunner()


def _row(
    code: str,
    intensity: float | None,
    month: date = date(2025, 12, 1),
    industry: str = "3120",
    *,
    base: float | None = 1.0,
    path: float | None = 0.95,
    status: str | None = None,
    low: bool = False,
) -> EnterpriseIntensity:
    if status is None and intensity is not None and base is not None and path is not None:
        status = "on_track" if intensity <= path else "at_risk" if intensity <= base else "off_track"
    return EnterpriseIntensity(
        enterprise_code=code,
        industry_code=industry,
        month=month,
        period_type="rolling12",
        variant="excl_feedstock_nonfossil",
        intensity=intensity,
        base_2022=base,
        path_value=path,
        status=status,
        coverage=0.5 if low else 1.0,
        low_coverage=low,
    )


# ---- pure: robust scale and peer scores -------------------------------------------------------


def test_robust_scale_uses_mad_then_mean_absolute_deviation() -> None:
    s = robust_scale([1.0, 2.0, 3.0, 4.0, 100.0])
    assert s.median == 3.0 and s.method == "mad"
    assert math.isclose(s.scale, MAD_SCALE * 1.0)
    assert s.z(3.0) == 0.0
    # MAD 0 (more than half equal): the mean absolute deviation × 1.2533 (Iglewicz-Hoaglin).
    s = robust_scale([1.0, 1.0, 1.0, 1.0, 6.0])
    assert s.method == "mean_absolute_deviation"
    assert math.isclose(s.scale, 1.253314 * 1.0)
    # No spread at all: no score.
    assert robust_scale([2.0, 2.0, 2.0]).z(5.0) is None
    with pytest.raises(ValueError):
        robust_scale([])


# Logs of the peers: -0.2, -0.1, 0, 0.1, 0.2; with a subject s >= 0.2 the six logs have
# median 0.05 and MAD 0.15, so |z| = 3.5 at s = 0.05 + 3.5 × 1.4826 × 0.15 = 0.828365.
PEER_LOGS = (-0.2, -0.1, 0.0, 0.1, 0.2)
EDGE_LOG = 0.05 + 3.5 * MAD_SCALE * 0.15


def _peers(subject_log: float, industry: str = "3120") -> list[EnterpriseIntensity]:
    rows = [_row(f"P{i}", math.exp(v), industry=industry) for i, v in enumerate(PEER_LOGS)]
    return [*rows, _row("X", math.exp(subject_log), industry=industry)]


def test_peer_outlier_true_positive_true_negative_and_edge() -> None:
    # Above the edge: a high outlier, warning, with the band and the peers in the evidence.
    found = peer_outlier_findings(_peers(EDGE_LOG + 0.001))
    assert [f.subject for f in found] == ["enterprise:X"]
    f = found[0]
    assert f.kind == PEER_OUTLIER and f.severity is Severity.WARNING and f.ongoing
    assert f.score is not None and 3.5 < f.score < 3.52
    assert f.expected_high is not None and math.isclose(f.expected_high, math.exp(EDGE_LOG))
    assert f.expected_low is not None and math.isclose(
        f.expected_low, math.exp(0.05 - 3.5 * MAD_SCALE * 0.15)
    )
    assert f.evidence["peers"] == 5 and f.evidence["peer_group"] == "industry"
    assert math.isclose(f.evidence["peer_median"], math.exp(0.05))
    assert math.isclose(f.evidence["peer_min"], math.exp(-0.2))
    assert math.isclose(f.evidence["peer_max"], math.exp(0.2))
    assert f.started_at == datetime(2025, 12, 1, tzinfo=SHANGHAI)
    assert f.unit == "tce/10^4 yuan" and f.evidence["variant"] == "excl_feedstock_nonfossil"
    # Just inside the edge, and an ordinary value: nothing.
    assert peer_outlier_findings(_peers(EDGE_LOG - 0.001)) == []
    assert peer_outlier_findings(_peers(0.3)) == []


def test_low_outlier_is_info() -> None:
    rows = [_row(f"P{i}", math.exp(-v), industry="3120") for i, v in enumerate(PEER_LOGS)]
    found = peer_outlier_findings([*rows, _row("X", math.exp(-EDGE_LOG - 0.01))])
    assert [(f.subject, f.severity, f.evidence["direction"]) for f in found] == [
        ("enterprise:X", Severity.INFO, "low")
    ]


def test_peer_groups_fall_back_to_the_division_and_need_four_peers() -> None:
    # Two enterprises in 3120, four more in other classes of division 31: the division.
    rows = [_row("X", math.exp(2.0), industry="3120"), _row("P0", 1.0, industry="3120")]
    rows += [_row(f"Q{i}", math.exp(v), industry="3130") for i, v in enumerate(PEER_LOGS[1:])]
    scores = {s.row.enterprise_code: s for s in peer_scores(rows)}
    assert scores["X"].group == "division" and scores["X"].group_code == "31" and scores["X"].peers == 5
    # Only three peers: no group, no score, no finding.
    assert peer_scores(rows[:4]) == []
    assert peer_outlier_findings(rows[:4]) == []
    # A low-coverage figure is neither scored nor a peer.
    low = [*rows[:-2], _row("Q9", 1.0, industry="3130", low=True)]
    assert "Q9" not in {s.row.enterprise_code for s in peer_scores(low)}
    assert peer_scores(low) == []


def test_peer_episodes_keep_their_start_and_end() -> None:
    months = [date(2025, m, 1) for m in (8, 9, 10, 11, 12)]
    high = EDGE_LOG + 0.5
    subject = {8: 0.0, 9: high, 10: high, 11: high, 12: 0.0}
    rows = []
    for m in months:
        rows += [_row(f"P{i}", math.exp(v), month=m) for i, v in enumerate(PEER_LOGS)]
        # October's figure has low coverage: it neither breaks nor extends the episode.
        rows.append(_row("X", math.exp(subject[m.month]), month=m, low=m.month == 10))
    found = peer_outlier_findings(rows)
    assert len(found) == 1
    f = found[0]
    assert f.started_at == month_start(date(2025, 9, 1))
    assert f.ended_at == month_start(date(2025, 12, 1))  # the end of November
    assert f.evidence["period"] == "2025-11"
    # Still high in December: ongoing, same start.
    rows = [r for r in rows if not (r.enterprise_code == "X" and r.month.month == 12)]
    rows.append(_row("X", math.exp(high), month=date(2025, 12, 1)))
    (f,) = peer_outlier_findings(rows)
    assert f.started_at == month_start(date(2025, 9, 1)) and f.ongoing
    assert f.evidence["months"] == 4


# ---- pure: above the path ---------------------------------------------------------------------


def test_above_path_severity_and_edges() -> None:
    base, path = 0.8, 0.76
    rows = [
        _row("ON", path, base=base, path=path),  # at the path: on track
        _row("RISK", path * 1.001, base=base, path=path),  # just above the path
        _row("OFF", base * 1.04, base=base, path=path),  # off track within the margin
        _row("EDGE", base * 1.0499, base=base, path=path),
        _row("CRIT", base * 1.0501, base=base, path=path),  # beyond 5 % above 2022
        _row("LOW", base * 2, base=base, path=path, low=True),  # low coverage: not assessed
        _row("NOBASE", 2.0, base=None, path=None),
    ]
    found = {f.subject.removeprefix("enterprise:"): f for f in above_path_findings(rows)}
    assert set(found) == {"RISK", "OFF", "EDGE", "CRIT"}
    assert found["RISK"].severity is Severity.WARNING and found["RISK"].evidence["status"] == "at_risk"
    assert found["OFF"].severity is Severity.WARNING and found["OFF"].evidence["status"] == "off_track"
    assert found["EDGE"].severity is Severity.WARNING
    assert found["CRIT"].severity is Severity.CRITICAL
    f = found["RISK"]
    assert f.kind == ABOVE_PATH and f.expected_high == path and f.observed == path * 1.001
    assert f.score is not None and math.isclose(f.score, 0.001)
    assert math.isclose(found["OFF"].evidence["change_vs_2022"], 0.04)


def test_above_path_episode_ends_when_back_on_the_path() -> None:
    statuses = {9: 0.5, 10: 0.9, 11: 0.9, 12: 0.5}  # on, above, above, on
    rows = [_row("A", v, month=date(2025, m, 1), base=1.0, path=0.8) for m, v in statuses.items()]
    (f,) = above_path_findings(rows)
    assert f.started_at == month_start(date(2025, 10, 1))
    assert f.ended_at == month_start(date(2025, 12, 1))
    # Two runs give the same findings.
    assert above_path_findings(rows) == above_path_findings(list(reversed(rows)))


def test_last_complete_month_is_local() -> None:
    # 2025-12-31 16:00 UTC is 2026-01-01 00:00 in Shanghai: December has ended.
    assert last_complete_month(datetime(2025, 12, 31, 16, 0, tzinfo=ZoneInfo("UTC"))) == date(2025, 12, 1)
    assert last_complete_month(datetime(2025, 12, 31, 15, 59, tzinfo=ZoneInfo("UTC"))) == date(2025, 11, 1)


# ---- the store on a small park ----------------------------------------------------------------

FACTORS = {"E1": 1.00, "E2": 1.10, "E3": 0.90, "E4": 1.04, "E5": 0.95, "E6": 5.00, "F1": 1.00}
INDUSTRY = {code: "2710" if code == "F1" else "3120" for code in FACTORS}
REGISTRY = (
    "park_code,park_name,enterprise_code,enterprise_name,industry_code,meter_code,carrier,unit,kind,purpose\n"
    + (
        "".join(
            f"P1,Park one,{c},Enterprise {c},{INDUSTRY[c]},EL,electricity,kWh,register,consumption\n"
            for c in FACTORS
        )
    )
)
MONTHS = [date(2025, m, 1) for m in range(1, 13)]
VALUE_ADDED_CSV = "enterprise_code,period,value_added_10k_yuan,price_index_2022\n" + "".join(
    f"{c},{m:%Y-%m},1000,1.0\n" for c in FACTORS for m in MONTHS
)
BASELINE_CSV = "enterprise_code,year,carrier,unit,consumption,value_added_10k_yuan\n" + "".join(
    f"{c},2022,electricity,kWh,1200000,12000\n" for c in FACTORS
)
BASE = 1_200_000 * 0.1229 / 1000 / 12_000


@pytest.fixture
def park(database_url: str, tmp_path: Path) -> Iterator[str]:
    registry = tmp_path / "registry.csv"
    registry.write_text(REGISTRY, encoding="utf-8")
    prepare_database(database_url, registry)
    with psycopg.connect(database_url) as conn:
        ids = dict(
            conn.execute(
                "SELECT e.enterprise_code, m.meter_id FROM registry.meter m JOIN registry.enterprise e"
                " USING (enterprise_id)"
            ).fetchall()
        )
        rows = [
            (ids[c], datetime(m.year, m.month, 1, tzinfo=SHANGHAI), 100_000.0 * f)
            for c, f in FACTORS.items()
            for m in MONTHS
        ]
        with conn.transaction(), conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO analytics.energy_month (meter_id, bucket, quantity, estimated_quantity,"
                " flagged_quantity, expected_readings, readings, coverage)"
                " VALUES (%s, %s, %s, 0, 0, 2976, 2976, 1)",
                rows,
            )
    env = {"DATABASE_URL": database_url}
    for name, text in (("value-added", VALUE_ADDED_CSV), ("baseline", BASELINE_CSV)):
        path = tmp_path / f"{name}.csv"
        path.write_text(text, encoding="utf-8")
        result = runner.invoke(app, ["import", name, str(path), "--by", "tester"], env=env)
        assert result.exit_code == 0, result.output
    yield database_url


def test_store_finds_peers_and_path_on_a_small_park(park: str) -> None:
    now = datetime(2026, 1, 5, 9, 0, tzinfo=SHANGHAI)
    with psycopg.connect(park) as conn:
        detection = detect_intensity(conn, now)
        again = detect_intensity(conn, now)
    assert detection == again
    assert detection.kinds == (PEER_OUTLIER, ABOVE_PATH)
    peers = [f for f in detection.findings if f.kind == PEER_OUTLIER]
    assert [(f.subject, f.severity) for f in peers] == [("enterprise:E6", Severity.WARNING)]
    f = peers[0]
    assert f.observed is not None and math.isclose(f.observed, 5 * BASE)
    assert f.evidence["peers"] == 5 and f.evidence["peer_group_code"] == "3120"
    assert f.evidence["period"] == "2025-12" and f.evidence["period_type"] == "rolling12"
    # November's rolling 12 months already has 11 of 12 months (coverage 0.917 >= 0.9).
    assert f.started_at == datetime(2025, 11, 1, tzinfo=SHANGHAI) and f.ongoing
    assert f.enterprise_id is not None and f.park_id is not None
    path = {f.subject.removeprefix("enterprise:"): f for f in detection.findings if f.kind == ABOVE_PATH}
    assert {k: v.severity for k, v in path.items()} == {
        "E1": Severity.WARNING,
        "E2": Severity.CRITICAL,
        "E4": Severity.WARNING,
        "E5": Severity.WARNING,
        "E6": Severity.CRITICAL,
        "F1": Severity.WARNING,
    }
    e1 = path["E1"]
    assert e1.observed is not None and math.isclose(e1.observed, BASE)
    assert e1.expected_high is not None and math.isclose(e1.expected_high, BASE * 0.9 ** (3 / 5))
    assert e1.evidence["status"] == "at_risk" and e1.started_at == datetime(2025, 11, 1, tzinfo=SHANGHAI)


def test_store_reads_only_months_that_ended(park: str) -> None:
    with psycopg.connect(park) as conn:
        # Before the end of November: the latest rolling 12 months (to October) has 10 of 12
        # months, low coverage, so nothing is assessed.
        early = detect_intensity(conn, datetime(2025, 11, 30, 23, 0, tzinfo=SHANGHAI))
        # Before the end of December: only November is assessed; the episodes start there.
        november = detect_intensity(conn, datetime(2025, 12, 31, 23, 0, tzinfo=SHANGHAI))
    assert early.findings == ()
    assert {f.evidence["period"] for f in november.findings} == {"2025-11"}
    assert {f.started_at for f in november.findings} == {datetime(2025, 11, 1, tzinfo=SHANGHAI)}
    with psycopg.connect(park) as conn, pytest.raises(ValueError):
        detect_intensity(conn, datetime(2026, 1, 5))  # naive: refused
