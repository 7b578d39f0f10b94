"""Days of readings → MQTT messages of the wire contract (DESIGN.md). Pure.

Normal readings travel in gateway batches on ``{prefix}/{enterprise}/_batch``:
``{"readings": [{"meter", "ts", "value", "unit"}, …]}``, ``ts`` in RFC 3339 with
``+08:00``. Backfill packs up to ``batch_readings`` readings of one enterprise
per message; live mode sends what each gateway read in the last 15 minutes, at
the end of that quarter hour. Late bursts and duplicates are separate batches
published at their due time; faulty input (:class:`simulators.generator.Special`)
goes on the topic the fault names. Gateway status (``_status``, retained) is
sent in live mode only: the collector stamps it with its receipt time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from simulators.generator import DayOutput, Special
from simulators.park import Park
from simulators.timebase import rfc3339_array

UPLOAD_PERIOD_S = 900
UPLOAD_LATENCY_S = 5


@dataclass(frozen=True, slots=True)
class Message:
    """One MQTT publication.

    Parameters
    ----------
    publisher : int
        Index of the enterprise whose gateway sends it.
    due_s : int
        When it is sent [epoch s, simulated time].
    readings : int
        Readings it carries.
    stored : int
        Readings the collector will store from it (0 for duplicates and faulty input).
    reason : str or None
        The quarantine reason the collector will give it, if any.
    status : str or None
        ``online``/``offline`` for a gateway status (sent by the gateway's connection).
    """

    topic: str
    payload: bytes
    due_s: int
    publisher: int
    readings: int = 0
    stored: int = 0
    reason: str | None = None
    status: str | None = None
    retain: bool = False


class Encoder:
    """Encodes days of readings for one park under one topic prefix."""

    def __init__(self, park: Park, prefix: str = "parkenergy/v1", batch_readings: int = 100) -> None:
        self.park = park
        self.prefix = prefix
        self.batch_readings = batch_readings
        self._head = [f'{{"meter":"{m.code}","ts":"' for m in park.meters]
        self._tail = [f',"unit":"{m.unit}"}}' for m in park.meters]
        self._enterprise_of = np.array([m.enterprise_index for m in park.meters], dtype=np.int64)
        self._topics = [f"{prefix}/{e.code}/_batch" for e in park.enterprises]

    # -- items and batches -----------------------------------------------------------------

    def _items(
        self, meter: NDArray[np.int64], ts: NDArray[np.int64], value: NDArray[np.float64]
    ) -> list[str]:
        unique, inverse = np.unique(ts, return_inverse=True)
        stamps = rfc3339_array(unique)
        head, tail = self._head, self._tail
        return [
            f'{head[m]}{stamps[t]}","value":{v!r}{tail[m]}'
            for m, t, v in zip(meter.tolist(), inverse.tolist(), value.tolist(), strict=True)
        ]

    def _batches(
        self,
        meter: NDArray[np.int64],
        ts: NDArray[np.int64],
        value: NDArray[np.float64],
        slot: NDArray[np.int64],
        *,
        stored: bool,
        due: int | None = None,
    ) -> list[Message]:
        """Messages of readings grouped by (enterprise, ``slot``), each split into batches.

        ``due`` None: a message is due at its slot's end (live) or its last reading (backfill).
        """
        if len(meter) == 0:
            return []
        enterprise = self._enterprise_of[meter]
        order = np.lexsort((meter, ts, slot, enterprise))
        meter, ts, value, enterprise, slot = (
            meter[order],
            ts[order],
            value[order],
            enterprise[order],
            slot[order],
        )
        items = self._items(meter, ts, value)
        key = enterprise * (1 << 40) + slot
        bounds = np.flatnonzero(np.diff(key)) + 1
        starts = np.concatenate([[0], bounds]).tolist()
        ends = np.concatenate([bounds, [len(key)]]).tolist()
        out: list[Message] = []
        size = self.batch_readings
        for a, b in zip(starts, ends, strict=True):
            e = int(enterprise[a])
            for c in range(a, b, size):
                d = min(b, c + size)
                payload = ('{"readings":[' + ",".join(items[c:d]) + "]}").encode("utf-8")
                when = due if due is not None else int(ts[d - 1])
                out.append(Message(self._topics[e], payload, when, e, d - c, (d - c) if stored else 0))
        return out

    # -- days ------------------------------------------------------------------------------

    def backfill(self, days: list[DayOutput]) -> list[Message]:
        """Messages of ``days`` for a backfill: per enterprise, batches over all the days."""
        return self._encode(days, live=False)

    def live(self, days: list[DayOutput]) -> list[Message]:
        """Messages of ``days`` as gateways send them live: every 15 minutes, and status changes."""
        return self._encode(days, live=True)

    def _encode(self, days: list[DayOutput], live: bool) -> list[Message]:
        if not days:
            return []
        meter = np.concatenate([d.meter for d in days])
        ts = np.concatenate([d.ts for d in days])
        value = np.concatenate([d.value for d in days])
        group = np.concatenate([d.group for d in days])
        day_of = np.concatenate([np.full(len(d.meter), i, dtype=np.int64) for i, d in enumerate(days)])
        normal = group == 0
        if live:
            slot = (ts[normal] // UPLOAD_PERIOD_S) + 1
            messages = self._batches(meter[normal], ts[normal], value[normal], slot, stored=True)
            messages = [
                _with_due(m, (int(m.due_s) // UPLOAD_PERIOD_S + 1) * UPLOAD_PERIOD_S + UPLOAD_LATENCY_S)
                for m in messages
            ]
        else:
            zeros = np.zeros(int(normal.sum()), dtype=np.int64)
            messages = self._batches(meter[normal], ts[normal], value[normal], zeros, stored=True)
        for i, d in enumerate(days):
            for g, due in sorted(d.group_due.items()):
                pick = (day_of == i) & (group == g)
                dup = bool(np.all(d.duplicate[group[day_of == i] == g]))
                zeros = np.zeros(int(pick.sum()), dtype=np.int64)
                messages += self._batches(meter[pick], ts[pick], value[pick], zeros, stored=not dup, due=due)
            messages += [self.special(s) for s in d.specials]
            if live:
                for change in d.statuses:
                    text = "online" if change.online else "offline"
                    topic = f"{self.prefix}/{self.park.enterprises[change.enterprise].code}/_status"
                    messages.append(
                        Message(
                            topic, text.encode(), change.at_s, change.enterprise, status=text, retain=True
                        )
                    )
        messages.sort(key=lambda m: m.due_s)
        return messages

    def special(self, s: Special) -> Message:
        topic = f"{self.prefix}/{s.topic_enterprise}/{s.topic_meter}"
        return Message(topic, s.payload, s.due_s, s.publisher, s.readings, 0, s.reason)


def _with_due(message: Message, due_s: int) -> Message:
    return Message(
        message.topic,
        message.payload,
        due_s,
        message.publisher,
        message.readings,
        message.stored,
        message.reason,
        message.status,
        message.retain,
    )
