"""Write a batch in one transaction: COPY into staging, insert with ``ON CONFLICT``.

The only collector module that speaks SQL. Idempotent: a redelivered message
stores nothing twice (readings keyed by meter and time, quarantine by message
digest), so the broker may redeliver whatever was not acknowledged.
"""

from __future__ import annotations

import hashlib
import struct
import weakref
from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import psycopg

from collector.validate import Message, Outcome


@dataclass(slots=True)
class QuarantineRow:
    received_at: datetime
    topic: str
    payload: bytes
    payload_is_utf8: bool
    reason: str
    detail: str
    item_index: int
    message_sha256: bytes


def message_digest(topic: str, payload: bytes) -> bytes:
    """sha256(topic ‖ 0x00 ‖ payload): the identity of a message for quarantine."""
    return hashlib.sha256(topic.encode() + b"\x00" + payload).digest()


def _is_utf8(payload: bytes) -> bool:
    try:
        payload.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


# One staging row in PostgreSQL's binary COPY format: 4 fields, each length-prefixed:
# ord int4, meter_id int4, ts int8 [µs since 2000-01-01 UTC], value float8.
# (PostgreSQL manual, COPY, "Binary Format".) Encoding here, as rows are classified,
# leaves the writer thread only bytes to send: psycopg's per-row write_row on the
# writer thread made it compete with the classifying loop for the GIL (measured,
# see docs/benchmarks.md).
_COPY_ROW = struct.Struct(">hiiiiiqid")
_PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)
_COPY_HEADER = b"PGCOPY\n\xff\r\n\0" + bytes(8)  # signature, flags, header extension length
_COPY_TRAILER = b"\xff\xff"


@dataclass(slots=True)
class Batch:
    """Classified messages waiting for one commit."""

    row_count: int = 0
    """Readings to store: encoded in ``copy_data``, not kept as tuples."""
    quarantine: list[QuarantineRow] = field(default_factory=list)
    statuses: list[tuple[int, str, datetime]] = field(default_factory=list)
    messages: int = 0
    copy_data: bytearray = field(default_factory=bytearray)
    """The readings as binary COPY rows with their ``ord``, encoded as they are added."""
    _offsets: list[int] = field(default_factory=list)
    _topics: list[str] = field(default_factory=list)

    def add(self, message: Message, outcome: Outcome) -> None:
        self.messages += 1
        if outcome.rows:
            base, pack, epoch, us = self.row_count, _COPY_ROW.pack, _PG_EPOCH, _ONE_US
            self._offsets.append(base)
            self._topics.append(message.topic)
            self.copy_data += b"".join(
                [
                    pack(4, 4, base + i, 4, meter_id, 8, (ts - epoch) // us, 8, value)
                    for i, (meter_id, ts, value) in enumerate(outcome.rows)
                ]
            )
            self.row_count += len(outcome.rows)
        if outcome.status is not None:
            self.statuses.append((*outcome.status, message.received_at))
        if outcome.rejections:
            digest = message_digest(message.topic, message.payload)
            for r in outcome.rejections:
                self.quarantine.append(
                    QuarantineRow(
                        message.received_at,
                        message.topic,
                        r.payload,
                        _is_utf8(r.payload),
                        r.reason.value,
                        r.detail.replace("\x00", "\\0"),
                        r.item_index,
                        digest,
                    )
                )

    @property
    def readings(self) -> int:
        """Readings received: stored or not, plus the batch items quarantined one by one."""
        return self.row_count + sum(q.item_index >= 0 for q in self.quarantine)

    def topic_of_row(self, index: int) -> str:
        return self._topics[bisect_right(self._offsets, index) - 1]


@dataclass(frozen=True, slots=True)
class WriteResult:
    stored: int = 0
    duplicates: int = 0
    conflicts: int = 0
    quarantined: int = 0

    def __add__(self, other: WriteResult) -> WriteResult:
        return WriteResult(
            self.stored + other.stored,
            self.duplicates + other.duplicates,
            self.conflicts + other.conflicts,
            self.quarantined + other.quarantined,
        )


@dataclass(frozen=True, slots=True)
class BatchStats:
    """Counters added to ``ingest.collector_stats`` in the batch's transaction."""

    collector_id: str
    started_at: datetime
    readings: int
    db_retries: int
    lag_s: float | None


_STAGING = """
CREATE TEMP TABLE IF NOT EXISTS staging_reading (
    ord integer NOT NULL, meter_id integer NOT NULL, ts timestamptz NOT NULL, value float8 NOT NULL
) ON COMMIT DELETE ROWS
"""

_staged: weakref.WeakSet[psycopg.Connection[tuple[object, ...]]] = weakref.WeakSet()
"""Connections whose session has the staging table (created by a committed transaction)."""

_INSERT = """
INSERT INTO ingest.reading (meter_id, ts, value)
SELECT meter_id, ts, value FROM pg_temp.staging_reading ORDER BY ord
ON CONFLICT (meter_id, ts) DO NOTHING
"""

# Rows that were not inserted and differ from what is stored (the first value
# received stays; DESIGN.md: never a silent overwrite).
_CONFLICTS = """
SELECT s.ord, s.meter_id, s.ts, s.value
FROM pg_temp.staging_reading s
JOIN ingest.reading r USING (meter_id, ts)
WHERE r.value <> s.value
"""

_INSERT_CONFLICT = """
INSERT INTO ingest.reading_conflict (meter_id, ts, value, topic)
VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING
"""

_INSERT_QUARANTINE = """
INSERT INTO ingest.quarantine (received_at, topic, payload, payload_is_utf8, reason, detail,
                               item_index, message_sha256, collector_id)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (message_sha256, item_index) DO NOTHING
"""

_UPSERT_STATUS = """
INSERT INTO ingest.gateway_status AS g (enterprise_id, status, changed_at) VALUES (%s, %s, %s)
ON CONFLICT (enterprise_id) DO UPDATE SET status = excluded.status, changed_at = excluded.changed_at
WHERE g.status <> excluded.status
"""

_INSERT_STATUS_EVENT = (
    "INSERT INTO ingest.gateway_event (enterprise_id, status, received_at) VALUES (%s, %s, %s)"
)

_UPSERT_STATS = """
INSERT INTO ingest.collector_stats AS c (collector_id, started_at, updated_at, messages, readings, stored,
    duplicates, conflicts, quarantined, db_retries, last_lag_s)
VALUES (%s, %s, now(), %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (collector_id) DO UPDATE SET
    started_at = excluded.started_at, updated_at = excluded.updated_at,
    messages = c.messages + excluded.messages, readings = c.readings + excluded.readings,
    stored = c.stored + excluded.stored, duplicates = c.duplicates + excluded.duplicates,
    conflicts = c.conflicts + excluded.conflicts, quarantined = c.quarantined + excluded.quarantined,
    db_retries = c.db_retries + excluded.db_retries,
    last_lag_s = coalesce(excluded.last_lag_s, c.last_lag_s)
"""


def write_batch(
    conn: psycopg.Connection[tuple[object, ...]], batch: Batch, stats: BatchStats | None = None
) -> WriteResult:
    """Store a batch atomically and return what happened to its rows.

    Raises psycopg errors unchanged; the caller classifies them (``parkdata.db``).
    """
    with conn.transaction(), conn.cursor() as cur:
        result = _write_rows(cur, batch, staged=conn in _staged)
        quarantined = _write_quarantine(cur, batch.quarantine, stats.collector_id if stats else "replay")
        for enterprise_id, status, received_at in batch.statuses:
            cur.execute(_UPSERT_STATUS, (enterprise_id, status, received_at))
            if cur.rowcount:
                cur.execute(_INSERT_STATUS_EVENT, (enterprise_id, status, received_at))
        result = WriteResult(result.stored, result.duplicates, result.conflicts, quarantined)
        if stats is not None:
            cur.execute(
                _UPSERT_STATS,
                (
                    stats.collector_id,
                    stats.started_at,
                    batch.messages,
                    stats.readings,
                    result.stored,
                    result.duplicates,
                    result.conflicts,
                    result.quarantined,
                    stats.db_retries,
                    stats.lag_s,
                ),
            )
    if batch.row_count and conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
        _staged.add(conn)  # committed, not a savepoint: the temp table stays for the session
    return result


def _write_rows(cur: psycopg.Cursor[tuple[object, ...]], batch: Batch, staged: bool) -> WriteResult:
    count = batch.row_count
    if not count:
        return WriteResult()
    if not staged:
        cur.execute(_STAGING)
    with cur.copy(
        "COPY pg_temp.staging_reading (ord, meter_id, ts, value) FROM STDIN (FORMAT BINARY)"
    ) as copy:
        copy.write(_COPY_HEADER)
        copy.write(batch.copy_data)
        copy.write(_COPY_TRAILER)
    cur.execute(_INSERT)
    stored = cur.rowcount
    if stored == count:
        return WriteResult(stored=stored)
    conflicts = cur.execute(_CONFLICTS).fetchall()
    new_conflicts = 0
    if conflicts:
        cur.executemany(
            _INSERT_CONFLICT,
            [(meter_id, ts, value, batch.topic_of_row(int(str(o)))) for o, meter_id, ts, value in conflicts],
        )
        new_conflicts = len(conflicts)
    return WriteResult(stored=stored, duplicates=count - stored - new_conflicts, conflicts=new_conflicts)


def _write_quarantine(
    cur: psycopg.Cursor[tuple[object, ...]], rows: list[QuarantineRow], collector_id: str
) -> int:
    if not rows:
        return 0
    cur.executemany(
        _INSERT_QUARANTINE,
        [
            (
                q.received_at,
                q.topic,
                q.payload,
                q.payload_is_utf8,
                q.reason,
                q.detail,
                q.item_index,
                q.message_sha256,
                collector_id,
            )
            for q in rows
        ],
    )
    return max(cur.rowcount, 0)
