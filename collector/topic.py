"""MQTT topics of the wire contract (DESIGN.md).

``{prefix}/{enterprise}/{meter}``  readings of one meter
``{prefix}/{enterprise}/_batch``   a gateway's batch, a ``meter`` per reading
``{prefix}/{enterprise}/_status``  retained ``online``/``offline`` (offline is the last will)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

_CODE = re.compile(r"^[0-9A-Za-z_.-]+$")


class TopicKind(StrEnum):
    METER = "meter"
    BATCH = "batch"
    STATUS = "status"


class TopicError(ValueError):
    """The topic is not one of the contract's shapes."""


@dataclass(frozen=True, slots=True)
class Topic:
    enterprise_code: str
    kind: TopicKind
    meter_code: str | None = None

    @classmethod
    def parse(cls, topic: str, prefix: str) -> Topic:
        """Parse ``topic`` under ``prefix``; raises :class:`TopicError` when it does not fit."""
        head, sep, rest = topic.partition(prefix + "/")
        if head or not sep:
            raise TopicError(f"topic is not under {prefix}/")
        parts = rest.split("/")
        if len(parts) != 2:
            raise TopicError(f"expected {prefix}/{{enterprise}}/{{meter}}, got {len(parts)} levels")
        enterprise, last = parts
        if not _CODE.match(enterprise):
            raise TopicError(f"bad enterprise code {enterprise!r}")
        if last == "_batch":
            return cls(enterprise, TopicKind.BATCH)
        if last == "_status":
            return cls(enterprise, TopicKind.STATUS)
        if last.startswith("_") or not _CODE.match(last):
            raise TopicError(f"bad meter code {last!r}")
        return cls(enterprise, TopicKind.METER, last)


@lru_cache(maxsize=1 << 16)
def parse_topic(topic: str, prefix: str) -> Topic:
    """:meth:`Topic.parse`, remembered: a park has a few thousand topics, each seen again and again."""
    return Topic.parse(topic, prefix)


def subscription(prefix: str, share_group: str | None) -> str:
    """The filter a collector subscribes to: everything under the prefix, shared when grouped."""
    base = f"{prefix}/#"
    return f"$share/{share_group}/{base}" if share_group else base
