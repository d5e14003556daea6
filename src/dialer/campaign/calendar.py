"""Working days and holidays: which set of strategy result rules applies on a date (000 §10.1)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from typing import Protocol

from dialer.models.enums import DayType


class HolidayLike(Protocol):
    @property
    def day(self) -> date: ...

    @property
    def is_working_day(self) -> bool: ...


def calendar_of(holidays: Iterable[HolidayLike]) -> dict[date, bool]:
    """The holiday calendar as ``day → is_working_day``, the form :func:`day_type` takes."""
    return {h.day: h.is_working_day for h in holidays}


def day_type(day: date, holidays: Mapping[date, bool]) -> DayType:
    """Whether ``day`` is a working day or a holiday.

    ``holidays`` maps the days listed in the calendar to their ``is_working_day`` flag. A listed
    day is a holiday unless it is marked as a working day (a transferred working Saturday); an
    unlisted day is a holiday on Saturday and Sunday and a working day otherwise.
    """
    if day in holidays:
        return DayType.workday if holidays[day] else DayType.holiday
    return DayType.holiday if day.weekday() >= 5 else DayType.workday
