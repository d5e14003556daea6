"""API schemas of time zones and phone codes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, model_validator

from dialer.api.crud import ReadSchema, Schema


class TimeZoneCreate(Schema):
    name: str = Field(min_length=1, max_length=200)
    tz: str = Field(min_length=1, max_length=64, description="IANA zone, e.g. Asia/Yekaterinburg")
    description: str = ""


class TimeZoneUpdate(Schema):
    name: str | None = Field(None, min_length=1, max_length=200)
    tz: str | None = Field(None, min_length=1, max_length=64)
    description: str | None = None


class TimeZoneRead(ReadSchema):
    id: int
    name: str
    tz: str
    description: str
    utc_offset: str
    phone_codes: int


class PhoneCodeCreate(Schema):
    """Either ``prefix`` or both ``range_from`` and ``range_to`` (international digits, "+" optional)."""

    time_zone_id: int | None = None
    prefix: str | None = Field(None, max_length=20)
    range_from: str | None = Field(None, max_length=20)
    range_to: str | None = Field(None, max_length=20)
    tz: str | None = Field(None, max_length=64, description="Overrides the zone of time_zone_id")
    region: str | None = None
    carrier: str | None = None
    description: str = ""

    @model_validator(mode="after")
    def _one_kind(self) -> PhoneCodeCreate:
        has_range = self.range_from is not None or self.range_to is not None
        if self.prefix and has_range:
            raise ValueError("give either prefix or range_from/range_to, not both")
        if not self.prefix and (self.range_from is None or self.range_to is None):
            raise ValueError("give a prefix, or both range_from and range_to")
        if self.time_zone_id is None and not self.tz:
            raise ValueError("give time_zone_id or tz")
        return self


class PhoneCodeUpdate(Schema):
    time_zone_id: int | None = None
    prefix: str | None = Field(None, max_length=20)
    range_from: str | None = Field(None, max_length=20)
    range_to: str | None = Field(None, max_length=20)
    tz: str | None = Field(None, max_length=64)
    region: str | None = None
    carrier: str | None = None
    description: str | None = None


class PhoneCodeRead(ReadSchema):
    id: int
    time_zone_id: int | None
    prefix: str | None
    range_from: str
    range_to: str
    tz: str | None
    region: str | None
    carrier: str | None
    description: str
    source: str
    created_at: datetime


class PhoneLookupRead(ReadSchema):
    number: str
    timezones: list[str]
    tz_uncertain: bool
    region: str | None
    carrier: str | None
    source: str = Field(description="manual | registry | phonenumbers")


class NumberingJob(ReadSchema):
    id: int
    status: str
    filename: str
    rows_done: int
    #: Estimated from the share of the file read so far; exact once the job ended.
    rows_total: int = 0
    imported: int
    rejected: int
    message: str
    result: dict[str, Any] = {}


class BundledSnapshot(BaseModel):
    package: str
    version: str
    licence: str
    data_from: str = Field(description="The oldest entry of the snapshot (YYYY-MM-DD)")
    data_to: str = Field(description="The newest entry of the snapshot (YYYY-MM-DD)")


class PhoneCodeCounts(BaseModel):
    manual: int
    registry: int
    bundled: int = Field(description="Registry rows that came from the bundled snapshot")


class ZoneCoverage(BaseModel):
    """How well the phone codes place the contacts' numbers, and what to do about the uncertain ones."""

    phone_codes: PhoneCodeCounts
    numbers: int = Field(description="Numbers of all contacts")
    uncertain: int = Field(description="Numbers with several candidate zones (dialled only while all are open)")
    bundled: BundledSnapshot
    hint: str = Field(description="How to load the regulator's current registry (English)")
    message: str = Field(description="The situation and what to do, in the request's language")


class BundledLoad(BaseModel):
    ranges: int
    codes: int
    replaced: int
    settled: int = Field(description="Uncertain numbers of contacts the loaded codes placed")
    source: BundledSnapshot
    message: str = Field(description="What was done, in the request's language")
