"""Simulation time: epoch seconds and day numbers in China Standard Time (UTC+8, no DST).

Every simulated series starts at the epoch, 2022-01-01 00:00 +08:00 (the policy's
base year, DOMAIN.md §1), so a reading depends only on the seed and its time,
never on where a run starts.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import numpy as np
from numpy.typing import NDArray

CST = timezone(timedelta(hours=8))
EPOCH_DATE = date(2022, 1, 1)
EPOCH = datetime(2022, 1, 1, tzinfo=CST)
EPOCH_S = int(EPOCH.timestamp())
DAY_S = 86_400
_CST_S = 8 * 3600


def day_start_s(day: int) -> int:
    """Epoch seconds of local midnight starting day number ``day``."""
    return EPOCH_S + day * DAY_S


def day_of(moment: datetime) -> int:
    """Day number (since the epoch, local days) containing ``moment``."""
    return (int(moment.timestamp()) - EPOCH_S) // DAY_S


def to_datetime(epoch_s: float) -> datetime:
    """A timezone-aware datetime in UTC+8."""
    return datetime.fromtimestamp(epoch_s, tz=CST)


def rfc3339(epoch_s: float) -> str:
    """``2024-03-01T08:15:00+08:00`` (seconds precision)."""
    return to_datetime(int(epoch_s)).isoformat()


def rfc3339_array(epoch_s: NDArray[np.int64]) -> list[str]:
    """RFC 3339 strings in UTC+8 for many epoch seconds at once."""
    local = (epoch_s + _CST_S).astype("datetime64[s]")
    return [f"{text}+08:00" for text in np.datetime_as_string(local, unit="s").tolist()]


def parse_moment(text: str, *, now: datetime | None = None) -> datetime:
    """``NOW``, a date (local midnight) or an ISO 8601 time (UTC+8 assumed when naive)."""
    if text.strip().upper() == "NOW":
        return now if now is not None else datetime.now(UTC).astimezone(CST)
    moment = datetime.fromisoformat(text.strip())
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=CST)
    return moment.astimezone(CST)
