"""The Chinese calendar of one year, day by day: working days, public holidays, Spring Festival.

Public holidays and the weekend days worked in exchange (调休) come from the
``holidays`` package (国务院办公厅 annual notices on public holiday arrangements).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache

import holidays
import numpy as np
from numpy.typing import NDArray

from simulators.timebase import EPOCH_DATE


@dataclass(frozen=True, slots=True)
class YearCalendar:
    """Day-by-day facts of one calendar year; arrays have one element per day.

    Attributes
    ----------
    day0 : int
        Day number of 1 January since the simulation epoch (2022-01-01).
    spring_festival : int
        Index (0-based, within the year) of the first day of the Spring Festival.
    """

    year: int
    day0: int
    days: int
    month: NDArray[np.int64]  # 1..12
    day_of_year: NDArray[np.int64]  # 1..366
    weekday: NDArray[np.int64]  # Monday 0 .. Sunday 6
    working: NDArray[np.bool_]  # official working day (调休 included)
    holiday: NDArray[np.bool_]  # public holiday
    spring_festival: int


@lru_cache(maxsize=32)
def year_calendar(year: int) -> YearCalendar:
    """The calendar of ``year`` (cached)."""
    first = date(year, 1, 1)
    days = (date(year + 1, 1, 1) - first).days
    cn = holidays.country_holidays("CN", years=year)
    dates = [first + timedelta(days=i) for i in range(days)]
    festival = min(
        d for d, name in cn.items() if "Spring Festival" in name and "Eve" not in name and d.year == year
    )
    return YearCalendar(
        year=year,
        day0=(first - EPOCH_DATE).days,
        days=days,
        month=np.array([d.month for d in dates], dtype=np.int64),
        day_of_year=np.arange(1, days + 1, dtype=np.int64),
        weekday=np.array([d.weekday() for d in dates], dtype=np.int64),
        working=np.array([cn.is_working_day(d) for d in dates], dtype=np.bool_),
        holiday=np.array([d in cn for d in dates], dtype=np.bool_),
        spring_festival=(festival - first).days,
    )
