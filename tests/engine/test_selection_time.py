"""Pure time rules of the hopper: calling windows per zone, the campaign schedule and holidays."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest

from dialer.engine.selection import SchedulePeriod, campaign_open, open_zones, window_open
from tests.engine.selection_data import NOW, make_plan


@pytest.mark.parametrize(("start", "end", "local", "expected"), [
    (time(9), time(21), time(9), True),          # the start is inside
    (time(9), time(21), time(8, 59), False),
    (time(9), time(21), time(20, 59), True),
    (time(9), time(21), time(21), False),        # the end is outside
    (time(22), time(6), time(23), True),         # over midnight
    (time(22), time(6), time(5, 59), True),
    (time(22), time(6), time(6), False),
    (time(22), time(6), time(12), False),
    (time(0), time(0), time(3), True),           # start == end: all day
])
def test_window_open(start: time, end: time, local: time, expected: bool) -> None:
    assert window_open(start, end, local) is expected


def test_open_zones_judge_each_zone_in_its_local_time() -> None:
    # 10:00 UTC: Kaliningrad 12:00, Moscow 13:00, Yekaterinburg 15:00, Vladivostok 20:00, Kamchatka 22:00
    opened = open_zones(time(9), time(21), NOW)
    assert {"Europe/Kaliningrad", "Europe/Moscow", "Asia/Yekaterinburg", "Asia/Vladivostok"} <= opened
    assert "Asia/Kamchatka" not in opened
    assert "America/New_York" not in opened  # 05:00
    # a second later, the same minute: the same (cached) answer; at 11:00 UTC Vladivostok (21:00) closes
    assert open_zones(time(9), time(21), NOW.replace(second=59)) is opened
    assert "Asia/Vladivostok" not in open_zones(time(9), time(21), NOW.replace(hour=11))
    # among given names only; names that are not zones are never open
    assert open_zones(time(9), time(21), NOW, ["Mars/Olympus", "Europe/Moscow", "Asia/Kamchatka"]) == {"Europe/Moscow"}
    # a zone with a half-hour offset: India is UTC+5:30 → 15:30
    assert "Asia/Kolkata" in opened
    assert "Asia/Kolkata" not in open_zones(time(9), time(15, 30), NOW)
    assert "Asia/Kolkata" in open_zones(time(9), time(15, 31), NOW)


def test_open_zones_follow_daylight_saving() -> None:
    # Berlin is UTC+1 in winter, UTC+2 in summer: 07:30 UTC is 08:30 or 09:30 local
    assert "Europe/Berlin" not in open_zones(time(9), time(21), datetime(2026, 1, 15, 7, 30, tzinfo=UTC))
    assert "Europe/Berlin" in open_zones(time(9), time(21), datetime(2026, 7, 15, 7, 30, tzinfo=UTC))


WED, SAT = 2, 5


@pytest.mark.parametrize(("plan_kw", "now", "expected"), [
    ({}, NOW, True),  # no schedule: open all day
    ({"schedule": (SchedulePeriod(WED, time(9), time(13)),)}, NOW, False),  # 13:00 Moscow: the end is outside
    ({"schedule": (SchedulePeriod(WED, time(9), time(13)), SchedulePeriod(WED, time(13), time(18)))}, NOW, True),
    ({"schedule": (SchedulePeriod(WED + 1, time(0), time(23, 59)),)}, NOW, False),  # another weekday
    # the schedule is in the campaign's zone: 13:00 in Moscow is 20:00 in Vladivostok
    ({"schedule": (SchedulePeriod(WED, time(19), time(21)),), "time_zone": "Asia/Vladivostok"}, NOW, True),
    ({"start_at": datetime(2026, 3, 4, 10, 0, 1, tzinfo=UTC)}, NOW, False),  # not started yet
    ({"start_at": NOW}, NOW, True),
    ({"holidays": {date(2026, 3, 4): False}}, NOW, False),  # a holiday closes even without a schedule
    ({"holidays": {date(2026, 3, 4): False}, "schedule": (SchedulePeriod(WED, time(9), time(18)),)}, NOW, False),
    ({"holidays": {date(2026, 3, 4): True}}, NOW, True),  # a listed working day
    # a Saturday: the schedule decides (weekends are not holidays for the schedule)
    ({"schedule": (SchedulePeriod(SAT, time(10), time(16)),)}, datetime(2026, 3, 7, 9, 0, tzinfo=UTC), True),
    ({"schedule": (SchedulePeriod(WED, time(10), time(16)),)}, datetime(2026, 3, 7, 9, 0, tzinfo=UTC), False),
    # a transferred working Saturday follows Saturday's periods
    ({"schedule": (SchedulePeriod(WED, time(10), time(16)),), "holidays": {date(2026, 3, 7): True}},
     datetime(2026, 3, 7, 9, 0, tzinfo=UTC), False),
    # the holiday is the campaign's local date: 22:00 UTC on 3 March is already 4 March in Moscow
    ({"holidays": {date(2026, 3, 4): False}}, datetime(2026, 3, 3, 22, 0, tzinfo=UTC), False),
    ({"holidays": {date(2026, 3, 4): False}}, datetime(2026, 3, 3, 20, 59, tzinfo=UTC), True),
    # a period ending at midnight, a whole day, periods over midnight (Sunday's into Monday)
    ({"schedule": (SchedulePeriod(WED, time(9), time(0)),)}, datetime(2026, 3, 4, 20, 59, tzinfo=UTC), True),
    ({"schedule": (SchedulePeriod(WED, time(9), time(0)),)}, datetime(2026, 3, 4, 21, 0, tzinfo=UTC), False),
    ({"schedule": (SchedulePeriod(WED, time(0), time(0)),)}, NOW, True),
    ({"schedule": (SchedulePeriod(WED + 1, time(0), time(0)),)}, NOW, False),
    ({"schedule": (SchedulePeriod(WED - 1, time(20), time(6)),)}, datetime(2026, 3, 3, 22, 0, tzinfo=UTC), True),
    ({"schedule": (SchedulePeriod(WED - 1, time(20), time(6)),)}, datetime(2026, 3, 4, 3, 0, tzinfo=UTC), False),
    ({"schedule": (SchedulePeriod(6, time(22), time(6)),)}, datetime(2026, 3, 1, 23, 0, tzinfo=UTC), True),
    ({"schedule": (SchedulePeriod(6, time(22), time(6)),)}, datetime(2026, 3, 1, 18, 0, tzinfo=UTC), False),
])
def test_campaign_open(plan_kw: dict[str, object], now: datetime, expected: bool) -> None:
    assert campaign_open(make_plan(**plan_kw), now) is expected


def test_plan_dates_and_lists() -> None:
    plan = make_plan(holidays={date(2026, 3, 4): False}, dnc_list_id=7, global_dnc_list_id=1)
    assert plan.local_date(datetime(2026, 3, 3, 21, 30, tzinfo=UTC)) == date(2026, 3, 4)
    assert plan.day_type(NOW).value == "holiday"
    assert make_plan().day_type(NOW).value == "workday"
    assert make_plan().day_type(datetime(2026, 3, 7, 9, tzinfo=UTC)).value == "holiday"  # Saturday
    assert plan.dnc_list_ids == (7, 1)
    assert make_plan(dnc_list_id=None).dnc_list_ids == (1,)
