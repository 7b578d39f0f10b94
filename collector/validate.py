"""Messages → readings or rejections, against the registry. Pure: time comes in as ``now``.

Checks, in order (the first failure names the reason, see ``collector.reasons``):
topic shape → payload decoding → enterprise known → declared enterprise matches
the topic → meter known and owned by the topic's enterprise → timestamp →
value → unit. Readings keep the meter's registered unit; multipliers are
applied by analytics, not here, so raw registers stay as the meter showed them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import msgspec

from collector.decode import DecodeFailure, RawItem, decode_readings, decode_status, item_payload
from collector.reasons import Reason
from collector.registry_cache import MeterInfo, RegistryCache
from collector.topic import Topic, TopicError, TopicKind, parse_topic
from parkdata.carriers import MeterKind

EARLIEST_TS = datetime(2015, 1, 1, tzinfo=UTC) + timedelta(hours=-8)  # 2015-01-01 00:00 +08:00
MAX_ABS_VALUE = 1e15
"""No meter in a park reaches this, in any unit; beyond it a double loses whole units."""

Row = tuple[int, datetime, float]
"""(meter_id, ts, value in the meter's unit): a row of ``ingest.reading``."""


class Message(NamedTuple):
    """One MQTT message as received. A named tuple: built once per message on the
    network thread, where a frozen dataclass costs several times more."""

    topic: str
    payload: bytes
    received_at: datetime


@dataclass(frozen=True, slots=True)
class Rejection:
    reason: Reason
    detail: str
    payload: bytes
    """The whole message, or the failing item re-encoded as a message of its own."""
    item_index: int = -1
    """-1 when the whole message is rejected; else the item's position in the batch."""


@dataclass(slots=True)
class Outcome:
    rows: list[Row] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    status: tuple[int, str] | None = None
    """(enterprise_id, 'online'|'offline') for a gateway status message."""


@dataclass(frozen=True, slots=True)
class Limits:
    prefix: str = "parkenergy/v1"
    future_tolerance: timedelta = timedelta(minutes=5)
    earliest: datetime = EARLIEST_TS


class _ItemError(Exception):
    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def classify(message: Message, cache: RegistryCache, limits: Limits) -> Outcome:
    """Turn one MQTT message into rows to store and rejections to quarantine."""
    outcome = Outcome()

    def reject_all(reason: Reason, detail: str) -> Outcome:
        outcome.rows.clear()
        outcome.rejections = [Rejection(reason, detail, message.payload)]
        return outcome

    try:
        topic = parse_topic(message.topic, limits.prefix)
    except TopicError as exc:
        return reject_all(Reason.TOPIC_INVALID, str(exc))
    enterprise_id = cache.enterprises.get(topic.enterprise_code)
    if enterprise_id is None:
        return reject_all(
            Reason.ENTERPRISE_UNKNOWN, f"enterprise {topic.enterprise_code!r} is not registered"
        )

    if topic.kind is TopicKind.STATUS:
        status = decode_status(message.payload)
        if isinstance(status, DecodeFailure):
            return reject_all(status.reason, status.detail)
        outcome.status = (enterprise_id, status)
        return outcome

    decoded = decode_readings(message.payload)
    if isinstance(decoded, DecodeFailure):
        return reject_all(decoded.reason, decoded.detail)
    declared = decoded.enterprise
    if declared is not msgspec.UNSET and declared != topic.enterprise_code:
        return reject_all(
            Reason.ENTERPRISE_MISMATCH,
            f"payload says enterprise {str(declared)[:40]!r}, topic says {topic.enterprise_code!r}",
        )

    topic_meter: MeterInfo | None = None
    if topic.kind is TopicKind.METER:
        assert topic.meter_code is not None
        found = _meter(cache, topic.enterprise_code, topic.meter_code)
        if isinstance(found, _ItemError):
            return reject_all(found.reason, found.detail)
        topic_meter = found

    gateway = topic.kind is TopicKind.BATCH
    failures: list[tuple[int, _ItemError]] = []
    # Time bounds as epoch seconds: one float comparison per reading on the hot path.
    bounds = (limits.earliest.timestamp(), (message.received_at + limits.future_tolerance).timestamp())
    for index, item in enumerate(decoded.items):
        try:
            meter = topic_meter if topic_meter is not None else _item_meter(cache, topic, item)
            if topic_meter is not None and item.meter is not msgspec.UNSET and item.meter != meter.meter_code:
                raise _ItemError(
                    Reason.PAYLOAD_SCHEMA, f"item names meter {str(item.meter)[:40]!r} on a meter topic"
                )
            ts = _timestamp(item.ts, message.received_at, limits, bounds)
            value = _value(item, meter, cache)
        except _ItemError as failure:
            failures.append((index, failure))
            continue
        outcome.rows.append((meter.meter_id, ts, value))

    if failures:
        if not outcome.rows and len({err.reason for _, err in failures}) == 1:
            # Everything failed for one reason: keep the message whole, once.
            first_index, first = failures[0]
            where = f"item {first_index}: " if decoded.batch else ""
            more = f" (and {len(failures) - 1} more items)" if len(failures) > 1 else ""
            return reject_all(first.reason, f"{where}{first.detail}{more}")
        outcome.rejections = [
            Rejection(
                err.reason, f"item {index}: {err.detail}", item_payload(decoded.items[index], gateway), index
            )
            for index, err in failures
        ]
    return outcome


def _meter(cache: RegistryCache, enterprise_code: str, meter_code: str) -> MeterInfo | _ItemError:
    meter = cache.meters.get((enterprise_code, meter_code))
    if meter is None:
        owners = cache.owners.get(meter_code)
        if owners:
            return _ItemError(
                Reason.METER_NOT_OWNED,
                f"meter {meter_code!r} is not registered to {enterprise_code!r} "
                f"but to {', '.join(sorted(owners)[:3])}",
            )
        return _ItemError(
            Reason.METER_UNKNOWN, f"meter {meter_code!r} of {enterprise_code!r} is not registered"
        )
    if meter.retired:
        return _ItemError(Reason.METER_RETIRED, f"meter {meter_code!r} of {enterprise_code!r} is retired")
    return meter


def _item_meter(cache: RegistryCache, topic: Topic, item: RawItem) -> MeterInfo:
    code = item.meter
    if code is msgspec.UNSET or not isinstance(code, str) or not code:
        raise _ItemError(Reason.PAYLOAD_SCHEMA, "a gateway batch item needs a 'meter' code")
    found = _meter(cache, topic.enterprise_code, code)
    if isinstance(found, _ItemError):
        raise found
    return found


def _timestamp(raw: Any, received_at: datetime, limits: Limits, bounds: tuple[float, float]) -> datetime:
    if raw is msgspec.UNSET or raw is None:
        raise _ItemError(Reason.TS_MISSING, "no 'ts'")
    if isinstance(raw, str):
        try:
            ts = datetime.fromisoformat(raw)
        except ValueError:
            raise _ItemError(Reason.TS_UNPARSABLE, f"'ts' {raw[:40]!r} is not RFC 3339") from None
        if ts.tzinfo is None:
            raise _ItemError(Reason.TS_NAIVE, f"'ts' {raw[:40]!r} has no UTC offset")
    elif isinstance(raw, int | float) and not isinstance(raw, bool):
        try:
            ts = datetime.fromtimestamp(raw / 1000.0, tz=UTC)  # epoch milliseconds
        except (OverflowError, ValueError, OSError):
            raise _ItemError(Reason.TS_UNPARSABLE, f"'ts' {raw!r} is not epoch milliseconds") from None
    else:
        raise _ItemError(Reason.TS_UNPARSABLE, f"'ts' has type {type(raw).__name__}")
    if bounds[0] <= ts.timestamp() <= bounds[1]:
        return ts
    if ts > received_at + limits.future_tolerance:
        raise _ItemError(
            Reason.TS_FUTURE, f"'ts' {ts.isoformat()} is after receipt {received_at.isoformat()}"
        )
    if ts < limits.earliest:
        raise _ItemError(Reason.TS_TOO_OLD, f"'ts' {ts.isoformat()} is before {limits.earliest.isoformat()}")
    return ts


def _value(item: RawItem, meter: MeterInfo, cache: RegistryCache) -> float:
    raw = item.value
    if raw is msgspec.UNSET:
        raise _ItemError(Reason.VALUE_MISSING, "no 'value'")
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise _ItemError(Reason.VALUE_NOT_NUMERIC, f"'value' {str(raw)[:40]!r} is not a number")
    try:
        value = float(raw)
    except OverflowError:
        raise _ItemError(Reason.VALUE_OUT_OF_RANGE, "'value' does not fit a double") from None
    if not math.isfinite(value):
        raise _ItemError(Reason.VALUE_NOT_FINITE, f"'value' is {value}")
    unit = item.unit
    if unit is not msgspec.UNSET and unit is not None and unit != meter.unit:
        if not isinstance(unit, str):
            raise _ItemError(Reason.UNIT_UNKNOWN, f"'unit' has type {type(unit).__name__}")
        factor = cache.factor(unit, meter.unit)
        if isinstance(factor, str):
            reason = Reason.UNIT_UNKNOWN if factor.startswith("unknown unit") else Reason.UNIT_NOT_CONVERTIBLE
            raise _ItemError(reason, f"{factor} (meter {meter.meter_code!r} is in {meter.unit})")
        value *= factor
    if abs(value) > MAX_ABS_VALUE:
        raise _ItemError(
            Reason.VALUE_OUT_OF_RANGE, f"'value' {value:g} {meter.unit} is beyond {MAX_ABS_VALUE:g}"
        )
    if value < 0 and meter.kind is MeterKind.REGISTER:
        raise _ItemError(Reason.VALUE_NEGATIVE_REGISTER, f"register reads {value:g} {meter.unit}")
    if value < 0 and meter.kind is MeterKind.INTERVAL:
        raise _ItemError(Reason.VALUE_NEGATIVE_INTERVAL, f"interval consumption {value:g} {meter.unit}")
    return value
