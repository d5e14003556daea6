"""API schemas of skills, operators and pools."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field, field_validator

from dialer.api.crud import ReadSchema, Schema
from dialer.models.media import RecordOverride


class SkillCreate(Schema):
    name: str = Field(min_length=1, max_length=200)
    description: str = ""


class SkillUpdate(Schema):
    name: str | None = Field(None, min_length=1, max_length=200)
    description: str | None = None


class SkillRead(ReadSchema):
    id: int
    name: str
    description: str
    created_at: datetime


class SkillLevel(Schema):
    skill_id: int
    level: int = Field(ge=1, le=100)


class OperatorCreate(Schema):
    name: str = Field(min_length=1, max_length=300)
    user_id: int | None = None
    extension: str | None = Field(None, max_length=64)
    description: str = ""
    is_active: bool = True
    auto_answer: bool = True
    #: Recording of this operator's calls whatever the campaign says (issue #16 §1).
    record_override: RecordOverride = RecordOverride.inherit
    skills: list[SkillLevel] = []
    pool_ids: list[int] = []


class OperatorUpdate(Schema):
    name: str | None = Field(None, min_length=1, max_length=300)
    user_id: int | None = None
    extension: str | None = Field(None, max_length=64)
    description: str | None = None
    is_active: bool | None = None
    auto_answer: bool | None = None
    record_override: RecordOverride | None = None
    skills: list[SkillLevel] | None = None

    @field_validator("record_override")
    @classmethod
    def _record_override_given(cls, value: RecordOverride | None) -> RecordOverride:
        if value is None:
            raise ValueError("must not be null: inherit, always or never")
        return value
    pool_ids: list[int] | None = None


class OperatorRead(ReadSchema):
    id: int
    name: str
    user_id: int | None
    extension: str | None
    description: str
    is_active: bool
    auto_answer: bool
    record_override: RecordOverride
    skills: list[SkillLevel]
    pool_ids: list[int]
    created_at: datetime


class PoolCreate(Schema):
    name: str = Field(min_length=1, max_length=200)
    description: str = ""
    operator_ids: list[int] = []


class PoolUpdate(Schema):
    name: str | None = Field(None, min_length=1, max_length=200)
    description: str | None = None
    operator_ids: list[int] | None = None


class PoolRead(ReadSchema):
    id: int
    name: str
    description: str
    operator_ids: list[int]
