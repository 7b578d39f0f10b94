"""Classification of every golden payload, without broker or database."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from collector.reasons import Reason
from collector.validate import Limits, Message, classify
from tests.golden import Case, load_cases, registry_cache

GOOD, BAD = load_cases()
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
CACHE = registry_cache()
METER_CODE = {m.meter_id: m.meter_code for m in CACHE.meters.values()}


def _classify(case: Case):  # type: ignore[no-untyped-def]
    return classify(Message(case.topic, case.payload, NOW), CACHE, Limits())


@pytest.mark.parametrize("case", GOOD, ids=lambda c: c.id)
def test_good_payload_gives_its_readings(case: Case) -> None:
    outcome = _classify(case)
    got = sorted((METER_CODE[m], ts, v) for m, ts, v in outcome.rows)
    assert got == sorted(case.stored)
    assert [(r.item_index, r.reason.value) for r in outcome.rejections] == list(case.quarantined_items)
    if case.status:
        assert outcome.status == (CACHE.enterprises[case.enterprise], case.status)


@pytest.mark.parametrize("case", BAD, ids=lambda c: c.id)
def test_bad_payload_is_rejected_whole_with_its_reason(case: Case) -> None:
    outcome = _classify(case)
    assert outcome.rows == []
    assert [(r.reason.value, r.item_index) for r in outcome.rejections] == [(case.reason, -1)]
    assert outcome.rejections[0].payload == case.payload


def test_every_reason_code_has_a_golden_case() -> None:
    covered = {c.reason for c in BAD} | {r for c in GOOD for _, r in c.quarantined_items}
    untested_here = {Reason.METER_RETIRED, Reason.DB_REJECTED}  # need database state: integration tests
    assert {r.value for r in Reason} - untested_here <= covered


def test_retired_meter_is_rejected() -> None:
    meter = CACHE.meters[("91420700MA49ABCD1X", "EL01")]
    retired = dataclasses.replace(meter, retired=True)
    cache = type(CACHE).build(2, CACHE.enterprises, [retired])
    case = next(c for c in GOOD if c.file == "good/single_rfc3339.json")
    outcome = classify(Message(case.topic, case.payload, NOW), cache, Limits())
    assert [r.reason for r in outcome.rejections] == [Reason.METER_RETIRED]


def test_future_tolerance_edge() -> None:
    topic = "parkenergy/v1/91420700MA49ABCD1X/EL01"
    limits = Limits()
    at_edge = b'{"ts": "2026-11-27T12:05:00Z", "value": 1}'
    past_edge = b'{"ts": "2026-11-27T12:05:00.001Z", "value": 1}'
    assert len(classify(Message(topic, at_edge, NOW), CACHE, limits).rows) == 1
    rejected = classify(Message(topic, past_edge, NOW), CACHE, limits).rejections
    assert [r.reason for r in rejected] == [Reason.TS_FUTURE]


def test_item_rejection_payload_replays_alone() -> None:
    """A failing batch item is kept as a message of its own that decodes to just that item."""
    case = next(c for c in GOOD if c.file == "good/mixed_gateway_batch.json")
    (rejection,) = _classify(case).rejections
    again = classify(Message(case.topic, rejection.payload, NOW), CACHE, Limits())
    assert again.rows == []
    assert [r.reason for r in again.rejections] == [Reason.VALUE_NOT_NUMERIC]


def test_nan_survives_in_item_payload() -> None:
    topic = "parkenergy/v1/91420704MA4A0PQR2Y/_batch"
    payload = (
        b'{"readings": [{"meter": "EL01", "ts": "2026-03-01T08:00:00+08:00", "value": 1},'
        b' {"meter": "EL01", "ts": "2026-03-01T08:15:00+08:00", "value": NaN}]}'
    )
    outcome = classify(Message(topic, payload, NOW), CACHE, Limits())
    assert len(outcome.rows) == 1
    (rejection,) = outcome.rejections
    assert rejection.reason is Reason.VALUE_NOT_FINITE
    assert b"NaN" in rejection.payload
