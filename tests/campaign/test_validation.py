"""Pure helpers: retry intervals, HH:MM times, phone numbers, time zones, schedules, dial parameters, day types."""

from __future__ import annotations

from datetime import date, time
from decimal import Decimal
from typing import Any

import pytest

from dialer.campaign.calendar import day_type
from dialer.campaign.validation import (
    check_schedule,
    check_time_zone,
    normalize_dial,
    parse_hhmm,
    parse_intervals,
    to_e164,
)
from dialer.exceptions import ValidationFailed
from dialer.models.enums import DayType, DialMode


@pytest.mark.parametrize(("given", "expected"), [
    ("15;60;1440", [15, 60, 1440]),
    (" 15 ; 60;1440;60 ", [15, 60, 1440, 60]),
    ("5", [5]),
    ([1, 2, 4, 6], [1, 2, 4, 6]),
])
def test_parse_intervals(given: Any, expected: list[int]) -> None:
    assert parse_intervals(given) == expected


@pytest.mark.parametrize(("given", "reason"), [
    ("", "at least one interval"),
    ("15;;60", "interval 2 is empty"),
    ("15;60;", "interval 3 is empty"),
    ("15;abc", "interval 2 ('abc') is not a whole number"),
    ("1.5", "not a whole number"),
    ("15;0", "interval 2 (0) must be a positive"),
    ("-5", "must be a positive"),
    ([15, True], "interval 2 (True) is not a whole number"),
    ([], "at least one interval"),
    ("600000", "longer than a year"),
])
def test_parse_intervals_refuses(given: Any, reason: str) -> None:
    with pytest.raises(ValueError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        parse_intervals(given)


def test_parse_hhmm() -> None:
    assert parse_hhmm("09:05") == time(9, 5)
    assert parse_hhmm(time(21, 0, 30)) == time(21, 0)
    for bad in ("9:05", "24:00", "12:60", "noon", 900):
        with pytest.raises(ValueError, match="is not a time HH:MM"):
            parse_hhmm(bad)


def test_to_e164() -> None:
    assert to_e164("8 (495) 123-45-67", "RU") == "+74951234567"
    assert to_e164("+7 916 123 45 67", "ru") == "+79161234567"
    assert to_e164("+44 20 7946 0958", "RU") == "+442079460958"
    with pytest.raises(ValueError, match="is not a valid phone number"):
        to_e164("123", "RU")
    with pytest.raises(ValueError, match="is not a phone number"):
        to_e164("звоните", "RU")


def test_time_zone() -> None:
    assert check_time_zone("Asia/Yekaterinburg") == "Asia/Yekaterinburg"
    for bad in ("Moscow", "Europe/Mordor", "../etc/passwd", ""):
        with pytest.raises(ValueError, match="is not an IANA time zone"):
            check_time_zone(bad)


def _period(weekday: int, start: str, end: str) -> dict[str, Any]:
    return {"weekday": weekday, "start": parse_hhmm(start), "end": parse_hhmm(end)}


def test_schedule_periods() -> None:
    check_schedule([_period(0, "09:00", "13:00"), _period(0, "13:00", "18:00"), _period(1, "10:00", "12:00")])
    with pytest.raises(ValidationFailed) as err:
        check_schedule([_period(0, "09:00", "13:00"), _period(1, "09:00", "10:00"), _period(0, "12:00", "15:00")])
    assert err.value.errors == [{"field": "schedule.2", "reason": "Mon 12:00–15:00 overlaps schedule.0 (09:00–13:00)"}]
    # overnight (Sunday into Monday), up to midnight, a whole day
    check_schedule([_period(6, "18:00", "09:00"), _period(0, "09:00", "00:00"), _period(2, "00:00", "00:00")])
    with pytest.raises(ValidationFailed) as err:
        check_schedule([_period(6, "18:00", "09:00"), _period(0, "08:00", "10:00")])
    assert err.value.errors == [{"field": "schedule.1",
                                 "reason": "Mon 08:00–10:00 overlaps schedule.0 (Sun 18:00–09:00)"}]
    with pytest.raises(ValidationFailed) as err:
        check_schedule([_period(2, "00:00", "00:00"), _period(1, "22:00", "01:00")])
    assert err.value.errors[0]["field"] == "schedule.1"


@pytest.mark.parametrize(("mode", "params", "cap", "expected", "expected_cap"), [
    (DialMode.progressive, {}, None, {}, Decimal("3.00")),
    (DialMode.preview, {}, None, {"preview_seconds": 10}, Decimal("3.00")),
    (DialMode.preview, {"preview_seconds": 300}, None, {"preview_seconds": 300}, Decimal("3.00")),
    (DialMode.fixed_lines, {"max_lines": 40}, None, {"max_lines": 40}, Decimal("3.00")),
    (DialMode.predictive, {}, None, {"abandon_cap_pct": 3.0, "abandon_window_min": 60, "max_ratio": 3.0},
     Decimal("3.00")),
    (DialMode.predictive, {"abandon_cap_pct": 2.5, "max_ratio": 2}, None,
     {"abandon_cap_pct": 2.5, "abandon_window_min": 60, "max_ratio": 2.0}, Decimal("2.50")),
    (DialMode.predictive, {}, Decimal("1.5"), {"abandon_cap_pct": 1.5, "abandon_window_min": 60, "max_ratio": 3.0},
     Decimal("1.50")),
])
def test_dial_params(mode: DialMode, params: dict[str, Any], cap: Decimal | None, expected: dict[str, Any],
                     expected_cap: Decimal) -> None:
    assert normalize_dial(mode, params, cap, Decimal("3.00")) == (expected, expected_cap)


@pytest.mark.parametrize(("mode", "params", "field"), [
    (DialMode.preview, {"preview_seconds": 0}, "dial_params.preview_seconds"),
    (DialMode.preview, {"preview_seconds": 301}, "dial_params.preview_seconds"),
    (DialMode.fixed_lines, {}, "dial_params.max_lines"),
    (DialMode.fixed_lines, {"max_lines": 0}, "dial_params.max_lines"),
    (DialMode.predictive, {"abandon_cap_pct": 101}, "dial_params.abandon_cap_pct"),
    (DialMode.predictive, {"max_ratio": 0.5}, "dial_params.max_ratio"),
    (DialMode.progressive, {"max_lines": 5}, "dial_params.max_lines"),
    (DialMode.progressive, {"mode": "predictive"}, "dial_params.mode"),
])
def test_dial_params_refused_name_the_parameter(mode: DialMode, params: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationFailed) as err:
        normalize_dial(mode, params, None, Decimal("3.00"))
    assert err.value.errors[0]["field"] == field


@pytest.mark.parametrize(("day", "holidays", "expected"), [
    (date(2026, 3, 10), {}, DayType.workday),  # Tuesday
    (date(2026, 3, 14), {}, DayType.holiday),  # Saturday
    (date(2026, 3, 15), {}, DayType.holiday),  # Sunday
    (date(2026, 3, 9), {date(2026, 3, 9): False}, DayType.holiday),  # a listed Monday
    (date(2026, 3, 14), {date(2026, 3, 14): True}, DayType.workday),  # a working Saturday
    (date(2026, 3, 10), {date(2026, 3, 9): False}, DayType.workday),  # another day listed
])
def test_day_type(day: date, holidays: dict[date, bool], expected: DayType) -> None:
    assert day_type(day, holidays) is expected
