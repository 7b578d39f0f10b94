"""Replay quarantine after a registry fix: what now validates is stored, the rest stays.

Rows are never deleted. A replayed row gets ``replayed_at`` and
``replay_result``: ``stored`` when every reading in it now validates
(duplicates of readings already stored count as stored), otherwise the reason
it still fails. Rows already ``stored`` are not replayed again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import psycopg

from collector.registry_cache import RegistryCache
from collector.validate import Limits, Message, classify
from collector.writer import Batch, WriteResult, write_batch

log = logging.getLogger(__name__)

_PAGE = """
SELECT quarantine_id, topic, payload, received_at
FROM ingest.quarantine
WHERE replay_result IS DISTINCT FROM 'stored' AND quarantine_id > %s
  AND (%s::text IS NULL OR reason = %s::text)
ORDER BY quarantine_id
LIMIT %s
"""

_MARK = "UPDATE ingest.quarantine SET replayed_at = now(), replay_result = %s WHERE quarantine_id = %s"


@dataclass(frozen=True, slots=True)
class ReplaySummary:
    examined: int = 0
    now_stored: int = 0
    """Quarantine rows whose readings are now all stored."""
    still_failing: int = 0
    readings: WriteResult = field(default_factory=WriteResult)


def count_replayable(conn: psycopg.Connection[tuple[object, ...]], reason: str | None = None) -> int:
    row = conn.execute(
        "SELECT count(*) FROM ingest.quarantine WHERE replay_result IS DISTINCT FROM 'stored'"
        " AND (%s::text IS NULL OR reason = %s::text)",
        (reason, reason),
    ).fetchone()
    return int(str(row[0])) if row else 0


def replay_quarantine(
    conn: psycopg.Connection[tuple[object, ...]],
    cache: RegistryCache,
    limits: Limits,
    *,
    reason: str | None = None,
    dry_run: bool = False,
    page_size: int = 1000,
    progress: Callable[[int], None] | None = None,
) -> ReplaySummary:
    """Re-validate quarantined messages against ``cache``; store what passes (unless ``dry_run``).

    Each page is one transaction. Timestamps are checked against the time the
    message was first received, not the time of the replay.
    """
    last_id = 0
    examined = now_stored = still_failing = 0
    total = WriteResult()
    while True:
        page = conn.execute(_PAGE, (last_id, reason, reason, page_size)).fetchall()
        if not page:
            break
        batch = Batch()
        marks: list[tuple[str, int]] = []
        for qid, topic, payload, received_at in page:
            assert isinstance(payload, bytes) and isinstance(received_at, datetime)
            message = Message(str(topic), payload, received_at)
            outcome = classify(message, cache, limits)
            quarantine_id = int(str(qid))
            if outcome.rejections:
                still_failing += 1
                marks.append((outcome.rejections[0].reason.value, quarantine_id))
            else:
                now_stored += 1
                batch.add(message, outcome)
                marks.append(("stored", quarantine_id))
            last_id = quarantine_id
        examined += len(page)
        if not dry_run:
            with conn.transaction():
                total = total + write_batch(conn, batch)
                conn.cursor().executemany(_MARK, marks)
        if progress is not None:
            progress(len(page))
    log.info("replayed %d quarantine rows: %d stored, %d still failing", examined, now_stored, still_failing)
    return ReplaySummary(examined, now_stored, still_failing, total)
