"""API schemas of do-not-call lists and entries."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from dialer.api.crud import ReadSchema, Schema


class DncListCreate(Schema):
    name: str = Field(min_length=1, max_length=200)
    description: str = ""


class DncListUpdate(Schema):
    name: str | None = Field(None, min_length=1, max_length=200)
    description: str | None = None


class DncListRead(ReadSchema):
    id: int
    name: str
    description: str
    is_global: bool
    entries: int
    created_at: datetime


class DncEntryCreate(Schema):
    number: str = Field(min_length=1, max_length=40)
    is_prefix: bool = False
    comment: str = ""


class DncEntriesBulk(Schema):
    numbers: list[str] = Field(min_length=1, max_length=100_000)
    is_prefix: bool = False
    comment: str = ""


class DncBulkResult(ReadSchema):
    added: int
    already_present: int
    rejected: list[dict[str, str | int]]


class DncFileResult(ReadSchema):
    file: str
    #: The column the numbers were read from.
    column: str
    rows: int
    added: int
    already_present: int
    rejected: int
    #: The first problems (row of the file, its text, why), all of them counted in ``rejected``.
    problems: list[dict[str, str | int]]
    #: What was fixed up while reading the file (skipped title rows, other sheets ...).
    warnings: list[str]


class DncEntryRead(ReadSchema):
    id: int
    list_id: int
    number: str
    is_prefix: bool
    comment: str
    created_at: datetime


class DncMatchRead(ReadSchema):
    list_id: int
    list_name: str
    number: str
    is_prefix: bool


class DncCheck(ReadSchema):
    number: str
    blocked: bool
    matches: list[DncMatchRead]
