"""Local time of the park: Asia/Shanghai, UTC+8 without daylight saving. Pure.

Calendar days, reporting grids and the times shown in evidence are local (DESIGN.md wire
contract).
"""

from __future__ import annotations

from datetime import datetime
from typing import Final
from zoneinfo import ZoneInfo

__all__ = ["LOCAL", "LOCAL_OFFSET_S", "local_iso", "local_midnight"]

LOCAL: Final = ZoneInfo("Asia/Shanghai")
LOCAL_OFFSET_S: Final = 8 * 3600
"""Offset of local time from UTC [s], for arithmetic on epoch seconds (no DST in China)."""


def local_midnight(t: datetime) -> datetime:
    """Start of the local day of ``t`` (timezone-aware), in local time."""
    return datetime.combine(t.astimezone(LOCAL).date(), datetime.min.time(), LOCAL)


def local_iso(t: datetime) -> str:
    """A time in evidence: ISO 8601 in local time (``+08:00``)."""
    return t.astimezone(LOCAL).isoformat()
