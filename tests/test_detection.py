"""The detectors end to end on the shared simulated park (read-only).

The ``simulated_park`` fixture ran the detector jobs once a day over its last
:data:`~tests.simulated_park.DETECTOR_DAYS` days (simulator → broker → collector → energy →
detectors → alert state). Here the alerts are scored against the simulator's ground truth with
the benchmark's matching (:mod:`benchmarks.detector_scoring`): the faults of that window are
found, and the alerts are explained by a fault. The full-size figures (90 days, 16
enterprises, faults × 10, hourly replay) are in docs/benchmarks.md.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import psycopg
import pytest

from analytics.detection import GROUPS
from benchmarks.detector_scoring import Alert, Context, Score, parse_truth, score, split_scored
from tests.simulated_park import DETECTOR_DAYS, SimulatedPark

# Fault kinds whose every record in the window must be found: what the detectors see in stored
# readings and quarantine, whatever the order of arrival.
MUST_FIND = (
    "gateway.offline",
    "meter.gap",
    "register.transient_zero",
    "register.unavailable",
    "payload.malformed",
    "unit.wrong",
    "topic.foreign",
    "register.spike",
    "clock.skew",
)
# delivery.late judges the order of arrival; the fixture's backfill packs up to 100 readings of
# a gateway in one message, an order no live gateway sends (docs/benchmarks.md), so its
# precision is measured by the benchmark, not here.
ARRIVAL_ORDER_KINDS = ("delivery.late",)


def _alerts(conn: psycopg.Connection[Any]) -> list[Alert]:
    rows = conn.execute(
        "SELECT alert_id, kind, subject, started_at, opened_at, ended_at, last_seen_at, resolved_at, state"
        " FROM api.alert ORDER BY alert_id"
    ).fetchall()
    return [Alert(int(r[0]), str(r[1]), str(r[2]), r[3], r[4], r[5], r[6], r[7], str(r[8])) for r in rows]


@pytest.fixture(scope="module")
def scored(simulated_park: SimulatedPark) -> Score:
    end = simulated_park.run_at
    start = end - timedelta(days=DETECTOR_DAYS)
    with psycopg.connect(simulated_park.database_url) as conn:
        alerts = _alerts(conn)
        intervals = conn.execute(
            "SELECT e.enterprise_code, m.meter_code, m.expected_interval_s"
            " FROM registry.meter m JOIN registry.enterprise e USING (enterprise_id)"
        ).fetchall()
    truth = parse_truth(simulated_park.truth_path.read_text(encoding="utf-8").splitlines())
    in_window, edge = split_scored([t for t in truth if start <= t.start < end], start, end)
    ctx = Context({(e, m): float(s) for e, m, s in intervals}, end, len(intervals) * DETECTOR_DAYS)
    explain = edge + [t for t in truth if t.start < start]
    return score(in_window, alerts, ctx, explain_only=explain)


def test_every_detector_job_ran_every_day(simulated_park: SimulatedPark) -> None:
    with psycopg.connect(simulated_park.database_url) as conn:
        runs = dict(
            conn.execute(
                "SELECT job, count(*) FILTER (WHERE status = 'ok') FROM analytics.job_run"
                " WHERE job = ANY(%s) GROUP BY job",
                (list(GROUPS),),
            ).fetchall()
        )
        failed = conn.execute(
            "SELECT job, summary FROM analytics.job_run WHERE job = ANY(%s) AND status <> 'ok'",
            (list(GROUPS),),
        ).fetchall()
    assert failed == []
    assert runs == dict.fromkeys(GROUPS, DETECTOR_DAYS + 1)


def test_the_injected_faults_are_found(scored: Score) -> None:
    faults = {f.kind: f for f in scored.faults}
    found = [k for k in MUST_FIND if k in faults and faults[k].truth]
    assert len(found) >= 5, f"too few fault kinds in the window to judge: {sorted(faults)}"
    for kind in found:
        f = faults[kind]
        assert f.detected == f.truth, f"{kind}: missed {[t.label() for t in f.missed]}"


def test_every_alert_is_explained_by_a_fault(scored: Score) -> None:
    judged = [a for a in scored.alert_kinds if a.kind not in ARRIVAL_ORDER_KINDS]
    assert judged
    for a in judged:
        assert a.false == (), f"{a.kind}: unexplained {[x.label() for x in a.false]}"
    for s in scored.silent:  # rollovers, replacements, duplicates raise nothing
        raised = [(t.label(), a.label()) for t, a in s.alerts if a.kind not in ARRIVAL_ORDER_KINDS]
        assert raised == [], f"{s.kind}: {raised}"


def test_alert_records_have_their_history(simulated_park: SimulatedPark) -> None:
    with psycopg.connect(simulated_park.database_url) as conn:
        counts = conn.execute(
            """SELECT count(*),
                      count(*) FILTER (WHERE NOT EXISTS (SELECT FROM api.alert_event e
                          WHERE e.alert_id = a.alert_id AND e.event = 'opened')),
                      count(*) FILTER (WHERE a.state = 'resolved' AND NOT EXISTS (
                          SELECT FROM api.alert_event e
                          WHERE e.alert_id = a.alert_id AND e.event = 'resolved')),
                      count(*) FILTER (WHERE a.enterprise_code IS NULL AND a.kind NOT LIKE 'quarantine.%%')
               FROM api.alert a"""
        ).fetchone()
        duplicates = conn.execute(
            "SELECT kind, subject FROM api.alert WHERE state <> 'resolved' GROUP BY 1, 2 HAVING count(*) > 1"
        ).fetchall()
    assert counts is not None
    total, without_opening, resolved_without_event, without_enterprise = counts
    assert total > 0
    assert (without_opening, resolved_without_event, without_enterprise) == (0, 0, 0)
    assert duplicates == []
