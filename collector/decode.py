"""Bytes → raw items. Pure: no registry, no clock.

A payload is one reading ``{"ts", "value", "unit"?, "seq"?}``, a batch
``{"readings": [...]}``, or (on ``_status`` topics) ``online``/``offline``.
Types inside an item are checked later, item by item, so that one bad item
does not condemn its batch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import msgspec

from collector.reasons import Reason


class RawItem(msgspec.Struct):
    """One reading as sent; every field unchecked. ``UNSET`` when absent."""

    ts: Any = msgspec.UNSET
    value: Any = msgspec.UNSET
    unit: Any = msgspec.UNSET
    seq: Any = msgspec.UNSET
    meter: Any = msgspec.UNSET
    enterprise: Any = msgspec.UNSET


class Envelope(RawItem):
    readings: list[RawItem] | msgspec.UnsetType = msgspec.UNSET


class StatusPayload(msgspec.Struct):
    status: str
    ts: Any = msgspec.UNSET


_decoder = msgspec.json.Decoder(Envelope)


@dataclass(frozen=True, slots=True)
class DecodeFailure:
    reason: Reason
    detail: str


@dataclass(frozen=True, slots=True)
class Decoded:
    items: list[RawItem]
    batch: bool
    """True when the payload was ``{"readings": [...]}``."""
    enterprise: Any
    """The envelope's declared enterprise, if any (``UNSET`` otherwise)."""


def decode_readings(payload: bytes) -> Decoded | DecodeFailure:
    """Decode a reading or a batch of readings."""
    try:
        envelope = _decoder.decode(payload)
    except msgspec.MsgspecError:
        # Slow path, only for payloads the strict decoder refused: the standard
        # library also reads NaN, Infinity and 1e999, so that such values are
        # reported as value.not_finite instead of an undecodable payload.
        decoded = _decode_lenient(payload)
        if isinstance(decoded, DecodeFailure):
            return decoded
        envelope = decoded
    if envelope.readings is msgspec.UNSET:
        return Decoded([envelope], batch=False, enterprise=envelope.enterprise)
    if envelope.ts is not msgspec.UNSET or envelope.value is not msgspec.UNSET:
        return DecodeFailure(Reason.PAYLOAD_SCHEMA, "both 'readings' and a top-level reading")
    if not envelope.readings:
        return DecodeFailure(Reason.PAYLOAD_SCHEMA, "'readings' is empty")
    return Decoded(envelope.readings, batch=True, enterprise=envelope.enterprise)


def _decode_lenient(payload: bytes) -> Envelope | DecodeFailure:
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        return DecodeFailure(Reason.PAYLOAD_UNDECODABLE, f"not UTF-8: {exc.reason} at byte {exc.start}")
    try:
        obj = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        return DecodeFailure(Reason.PAYLOAD_UNDECODABLE, f"not JSON: {exc}")
    try:
        return msgspec.convert(obj, Envelope)
    except msgspec.ValidationError as exc:
        return DecodeFailure(Reason.PAYLOAD_SCHEMA, str(exc))


def decode_status(payload: bytes) -> str | DecodeFailure:
    """Decode a gateway status: plain ``online``/``offline`` or ``{"status": …}``."""
    try:
        text = payload.decode("utf-8").strip()
    except UnicodeDecodeError as exc:
        return DecodeFailure(Reason.PAYLOAD_UNDECODABLE, f"not UTF-8: {exc.reason}")
    if text.startswith("{"):
        try:
            text = msgspec.json.decode(text, type=StatusPayload).status
        except msgspec.MsgspecError as exc:
            return DecodeFailure(Reason.PAYLOAD_SCHEMA, f"bad status object: {exc}")
    if text not in ("online", "offline"):
        return DecodeFailure(Reason.PAYLOAD_SCHEMA, f"status must be online or offline, got {text[:40]!r}")
    return text


def item_payload(item: RawItem, gateway: bool) -> bytes:
    """One item re-encoded as a message of its own topic, for a per-item quarantine row.

    ``gateway``: the topic is a gateway batch, so the item is wrapped in ``readings``.

    Uses the standard library so that NaN and Infinity survive as written.
    """
    fields = {k: v for k, v in msgspec.structs.asdict(item).items() if v is not msgspec.UNSET}
    body: dict[str, Any] = {"readings": [fields]} if gateway else fields
    return json.dumps(body, ensure_ascii=False, allow_nan=True).encode("utf-8")
