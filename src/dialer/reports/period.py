"""The reports' common filter: a period in the call centre's time zone plus campaigns, lists, operators, pools and
completion-code groups.

A period is a range of local calendar days ``[first, last]``; it becomes the UTC range
``[first 00:00 local, (last + 1) 00:00 local)``, so a call at 23:59 local belongs to that day whatever the offset,
and a day of a daylight-saving change has its real length.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic_settings import BaseSettings, SettingsConfigDict

from dialer.exceptions import ValidationFailed

#: Longest period a report covers (a year and a day of leap).
MAX_DAYS = 366
DIRECTIONS = ("outbound", "inbound")


class ReportSettings(BaseSettings):
    """``DIALER_REPORTS_TIME_ZONE``: the call centre's own time zone, which days and hours of reports follow."""

    model_config = SettingsConfigDict(env_prefix="DIALER_REPORTS_", extra="ignore")
    time_zone: str = "Europe/Moscow"


class Preset(StrEnum):
    today = "today"
    yesterday = "yesterday"
    this_week = "this_week"
    last_week = "last_week"
    this_month = "this_month"
    last_month = "last_month"
    custom = "custom"


def zone(name: str, field: str = "tz") -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationFailed.field(field, f"unknown time zone {name!r} (an IANA name such as Europe/Moscow)")


def preset_days(preset: Preset, today: date) -> tuple[date, date]:
    """The first and last local day of a preset; weeks start on Monday."""
    if preset is Preset.today:
        return today, today
    if preset is Preset.yesterday:
        day = today - timedelta(days=1)
        return day, day
    monday = today - timedelta(days=today.weekday())
    if preset is Preset.this_week:
        return monday, today
    if preset is Preset.last_week:
        return monday - timedelta(days=7), monday - timedelta(days=1)
    first = today.replace(day=1)
    if preset is Preset.this_month:
        return first, today
    if preset is Preset.last_month:
        last = first - timedelta(days=1)
        return last.replace(day=1), last
    raise ValueError(preset)


@dataclasses.dataclass(frozen=True)
class Period:
    first: date
    last: date
    tz: ZoneInfo

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first, time(), self.tz).astimezone(UTC)

    @property
    def end(self) -> datetime:
        return datetime.combine(self.last + timedelta(days=1), time(), self.tz).astimezone(UTC)

    @property
    def days(self) -> list[date]:
        return [self.first + timedelta(days=i) for i in range((self.last - self.first).days + 1)]


def resolve_period(preset: Preset, date_from: date | None, date_to: date | None, tz: ZoneInfo,
                   now: datetime) -> Period:
    """The period asked for; custom needs both days (inclusive), at most a year apart."""
    if preset is Preset.custom:
        if date_from is None:
            raise ValidationFailed.field("date_from", "required for a custom period (YYYY-MM-DD)")
        if date_to is None:
            raise ValidationFailed.field("date_to", "required for a custom period (YYYY-MM-DD)")
        first, last = date_from, date_to
    else:
        first, last = preset_days(preset, now.astimezone(tz).date())
    if last < first:
        raise ValidationFailed.field("date_to", "must not be before date_from")
    if (last - first).days + 1 > MAX_DAYS:
        raise ValidationFailed.field("date_to", f"a report covers at most {MAX_DAYS} days")
    return Period(first, last, tz)


@dataclasses.dataclass(frozen=True)
class ReportFilter:
    """What every report is filtered by; ``operator_ids`` already includes the members of the chosen pools and
    ``code_ids`` the members of the chosen code groups (None: no restriction)."""

    period: Period
    now: datetime
    campaign_ids: tuple[int, ...] | None = None
    list_ids: tuple[int, ...] | None = None
    operator_ids: tuple[int, ...] | None = None
    code_ids: tuple[int, ...] | None = None
    #: 'outbound' or 'inbound' (None: both).
    direction: str | None = None

    @property
    def start(self) -> datetime:
        return self.period.start

    @property
    def end(self) -> datetime:
        return self.period.end

    def describe(self) -> dict[str, object]:
        return {"date_from": self.period.first.isoformat(), "date_to": self.period.last.isoformat(),
                "tz": self.period.tz.key, "campaign_ids": self.campaign_ids, "list_ids": self.list_ids,
                "operator_ids": self.operator_ids, "code_ids": self.code_ids, "direction": self.direction}
