"""The API's shapes of scheduled report delivery (``/api/reports/schedules``)."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field, ValidationInfo, field_validator

from dialer.api.crud import ReadSchema, Schema
from dialer.reports import delivery as d
from dialer.reports.period import DIRECTIONS

Report = Literal["outcomes", "slices", "operators", "states", "codes", "abandon", "progress", "shift", "calls"]
Format = Literal["pdf", "xlsx", "csv"]
PeriodName = Literal["yesterday", "today", "last_week", "last_month"]
Frequency = Literal["daily", "weekly", "monthly"]
Language = Literal["ru", "en"]


def _recipients(value: list[str]) -> list[str]:
    out: list[str] = []
    for i, address in enumerate(value):
        address = address.strip()
        if not d.valid_email(address):
            raise ValueError(f"item {i + 1} ('{address}') is not an e-mail address (name@example.ru)")
        if address.lower() not in (a.lower() for a in out):
            out.append(address)
    return out


def _zone(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone '{value}' (an IANA name such as Europe/Moscow)") from None
    return value


def _filters(value: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, item in value.items():
        if key not in d.FILTER_KEYS:
            raise ValueError(f"'{key}' is not a filter of the reports; allowed: {', '.join(d.FILTER_KEYS)}")
        if key in d.ID_FILTERS:
            items = item.split(",") if isinstance(item, str) else item
            if not isinstance(items, list):
                raise ValueError(f"{key}: a list of ids such as [3, 5]")
            ids = []
            for part in items:
                text = str(part).strip()
                if not text:
                    continue
                if isinstance(part, bool) or not text.isdigit() or int(text) >= 2**63:
                    raise ValueError(f"{key}: '{part}' is not an id")
                ids.append(int(text))
            if ids:
                out[key] = sorted(set(ids))
        elif key == "direction":
            if item not in (None, ""):
                if item not in DIRECTIONS:
                    raise ValueError(f"direction: one of {', '.join(DIRECTIONS)} (or empty for both)")
                out[key] = item
        elif item not in (None, ""):
            if not isinstance(item, str) or len(item) > 64:
                raise ValueError(f"{key}: a short text")
            out[key] = item
    return out


class ScheduleWrite(Schema):
    name: str = Field(min_length=1, max_length=200)
    report: Report = Field(description="Which report: " + ", ".join(d.REPORTS))
    view_id: int | None = Field(None, description="A saved view of the report whose filters it takes (yours)")
    filters: dict[str, Any] = Field(default_factory=dict, description="Filters over the view's: "
                                    + ", ".join(d.FILTER_KEYS) + " (ids as lists)")
    format: Format = "pdf"
    period: PeriodName = Field("yesterday", description="Relative to the run: yesterday, today (so far), last_week, "
                                                        "last_month")
    frequency: Frequency = "daily"
    at_time: time = Field(time(8, 0), description="Local time (HH:MM) in time_zone")
    weekday: int | None = Field(None, ge=0, le=6, validate_default=True, description="Weekly: 0 = Monday … 6 = Sunday")
    month_day: int | None = Field(None, ge=1, le=31, validate_default=True,
                                  description="Monthly: the day (the last day of shorter months)")
    time_zone: str | None = Field(None, description="IANA zone; default: the call centre's (DIALER_REPORTS_TIME_ZONE)")
    language: Language = "ru"
    recipients: list[str] = Field(min_length=1, max_length=50)
    subject: str | None = Field(None, max_length=300, description="Template; placeholders: "
                                + ", ".join("{" + p + "}" for p in d.PLACEHOLDERS) + ". Default: in the language")
    body: str | None = Field(None, max_length=10000, description="Template, as the subject")
    is_active: bool = True

    _recipients = field_validator("recipients")(_recipients)
    _zone = field_validator("time_zone")(_zone)
    _filters = field_validator("filters")(_filters)

    @field_validator("subject")
    @classmethod
    def _subject(cls, value: str | None) -> str | None:
        return None if value is None or not value.strip() else d.check_template(value, "subject")

    @field_validator("body")
    @classmethod
    def _body(cls, value: str | None) -> str | None:
        return None if value is None or not value.strip() else d.check_template(value, "body")

    @field_validator("at_time")
    @classmethod
    def _minutes(cls, value: time) -> time:
        return value.replace(second=0, microsecond=0, tzinfo=None)

    @field_validator("weekday")
    @classmethod
    def _weekday(cls, value: int | None, info: ValidationInfo) -> int | None:
        frequency = info.data.get("frequency")
        if frequency == "weekly" and value is None:
            raise ValueError("required for a weekly schedule (0 = Monday … 6 = Sunday)")
        return value if frequency == "weekly" else None

    @field_validator("month_day")
    @classmethod
    def _month_day(cls, value: int | None, info: ValidationInfo) -> int | None:
        frequency = info.data.get("frequency")
        if frequency == "monthly" and value is None:
            raise ValueError("required for a monthly schedule (1–31; the last day of shorter months)")
        return value if frequency == "monthly" else None


class ScheduleRead(ReadSchema):
    id: int
    name: str
    report: str
    view_id: int | None
    filters: dict[str, Any]
    format: str
    period: str
    frequency: str
    at_time: time
    weekday: int | None
    month_day: int | None
    time_zone: str
    language: str
    recipients: list[str]
    subject: str
    body: str
    is_active: bool
    next_run_at: datetime | None
    created_by: int | None
    created_at: datetime
    updated_at: datetime
    #: The latest run: its status and error, for the list.
    last_run: RunRead | None = None


class RunRead(ReadSchema):
    id: int
    schedule_id: int
    due_at: datetime
    manual: bool
    requested_by: int | None
    period_from: date
    period_to: date
    status: str = Field(description="pending, sending, retrying, sent or failed")
    attempts: int
    next_attempt_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    worker: str | None
    error: str | None
    message_id: str | None
    created_at: datetime


class Runs(BaseModel):
    items: list[RunRead]
    total: int


class ScheduleOptions(BaseModel):
    reports: list[str]
    formats: list[str]
    periods: list[str]
    frequencies: list[str]
    time_zone: str
    placeholders: list[str]
    default_subject: dict[str, str]
    default_body: dict[str, str]
    smtp_configured: bool
    retries_after_s: list[int]


ScheduleRead.model_rebuild()
