"""API schemas of fields, contact lists, contacts and import jobs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator
from pydantic import Field as F

from dialer.api.crud import ReadSchema, Schema
from dialer.models.enums import ContactStatus, FieldType, ImportStatus, OutcomeCategory, PhoneType

# --- fields ---------------------------------------------------------------------------------------


class FieldCreate(Schema):
    name: str = F(min_length=1, max_length=200)
    type: FieldType
    description: str = ""
    mask: str | None = F(None, description="Regular expression the whole value must match")
    is_client_id: bool = False
    options: list[str] = F([], description="Allowed values of an enum field (required for enum)")
    phone_type: PhoneType | None = F(None, description="Kind of phone a phone field holds (default mobile)")


class FieldUpdate(Schema):
    name: str | None = F(None, min_length=1, max_length=200)
    type: FieldType | None = None
    description: str | None = None
    mask: str | None = None
    is_client_id: bool | None = None
    options: list[str] | None = None
    phone_type: PhoneType | None = None


class FieldRead(ReadSchema):
    id: int
    name: str
    type: FieldType
    description: str
    mask: str | None
    is_client_id: bool
    options: list[str]
    phone_type: PhoneType | None
    created_at: datetime
    updated_at: datetime


# --- lists ----------------------------------------------------------------------------------------


class ListFieldIn(Schema):
    """A field of a list; the other keys of a read list field (name, type ...) are ignored, so a
    list's ``fields`` can be sent back as read."""

    model_config = ConfigDict(extra="ignore")
    field_id: int
    required: bool = False
    in_card: bool = F(True, description="Shown on the operator's client card (the list's card template)")


class ListFieldRead(BaseModel):
    field_id: int
    name: str
    type: FieldType
    phone_type: PhoneType | None
    required: bool
    in_card: bool
    position: int


_CRM_URL = ("Link to the client in the CRM on the operator's card; {field name} placeholders take the contact's "
            "values, e.g. https://crm.example.ru/clients/{client_id}")


def check_crm_url(value: str | None) -> str | None:
    """Only http(s) links: the card renders it as a link, so ``javascript:`` and the like are refused."""
    if value and not value.lower().startswith(("http://", "https://")):
        raise ValueError("must start with http:// or https://")
    return value


class ListCreate(Schema):
    name: str = F(min_length=1, max_length=200)
    description: str = ""
    crm_url: str = F("", max_length=2000, description=_CRM_URL)

    _crm = field_validator("crm_url")(check_crm_url)
    fields: list[ListFieldIn] = F([], description="The list's fields in display order")


class ListUpdate(Schema):
    name: str | None = F(None, min_length=1, max_length=200)
    description: str | None = None
    crm_url: str | None = F(None, max_length=2000, description=_CRM_URL)

    _crm = field_validator("crm_url")(check_crm_url)
    fields: list[ListFieldIn] | None = F(None, description="Replaces the fields; contact values are kept")


class ListRead(ReadSchema):
    id: int
    name: str
    description: str
    crm_url: str
    fields: list[ListFieldRead]
    contact_count: int
    created_at: datetime
    updated_at: datetime


class CopyFields(Schema):
    from_list_id: int


# --- contacts -------------------------------------------------------------------------------------


class PhoneIn(Schema):
    number: str = F(min_length=1, max_length=100)
    type: PhoneType = PhoneType.other


class ContactCreate(Schema):
    values: dict[str, Any] = F({}, description="{field name or id: value}")
    phones: list[PhoneIn] = F([], description="Phones besides those of the list's phone fields")
    tags: list[str] = []
    country: str | None = F(None, description="Country of numbers written without a code (default: settings)")


class ContactUpdate(Schema):
    values: dict[str, Any] | None = F(None, description="Changed values; null clears one")
    phones: list[PhoneIn] | None = F(None, description="Replaces the extra phones")
    tags: list[str] | None = None
    status: ContactStatus | None = None
    country: str | None = None


class PhoneRead(BaseModel):
    id: int
    number: str
    raw: str
    type: PhoneType
    field_id: int | None
    position: int
    region: str | None
    carrier: str | None
    timezones: list[str]
    tz_uncertain: bool


class ContactRead(BaseModel):
    id: int
    list_id: int
    values: dict[str, Any] = F(description="Values keyed by field name")
    data: dict[str, Any] = F(description="The same values keyed by field id")
    phones: list[PhoneRead]
    tags: list[str]
    status: ContactStatus
    attempts_total: int
    attempts_today: int
    last_outcome: OutcomeCategory | None
    last_attempt_at: datetime | None
    next_call_at: datetime | None
    import_job_id: int | None
    created_at: datetime
    updated_at: datetime


class ContactFilterIn(Schema):
    q: str | None = None
    status: list[ContactStatus] = []
    tag: list[str] = []
    phone: str | None = None
    fields: dict[str, Any] = F({}, description="{field name or id: exact value}")
    not_called: bool = False
    outcome: list[OutcomeCategory] = []
    in_dnc: bool = F(False, description="A phone of the contact is in the global blacklist (002 §5.5 "
                                        "\"убрать номера из базы по черному списку\") or in dnc_list_id")
    dnc_list_id: int | None = F(None, description="With in_dnc: this DNC list as well as the blacklist")


class BulkDelete(Schema):
    ids: list[int] | None = F(None, max_length=100_000)
    filter: ContactFilterIn | None = None


class Deleted(BaseModel):
    deleted: int


# --- imports --------------------------------------------------------------------------------------


class ImportJobRead(ReadSchema):
    id: int
    list_id: int | None
    kind: str
    filename: str
    status: ImportStatus
    options: dict[str, Any]
    tags: list[str]
    rows_total: int = F(description="Data rows of the file; an estimate while a CSV import runs")
    rows_done: int
    imported: int
    rejected: int
    duplicates: int
    dnc_filtered: int
    errors_url: str | None = None
    message: str
    created_at: datetime
    finished_at: datetime | None
    uncertain_numbers: int | None = F(None, description=(
        "Numbers of the imported contacts whose time zone stays uncertain (dialled only while the window is open "
        "in all their candidate zones); the message import.uncertain of the catalogues says it, "
        "GET /api/phone-codes/coverage says how to place them"))
    settled_by_place: int | None = F(None, description="Uncertain numbers settled by the contact's city or region")


class MappedField(BaseModel):
    field_id: int
    name: str
    type: FieldType


class ImportPreview(BaseModel):
    format: str
    encoding: str | None
    delimiter: str | None
    sheet: str | None
    headers: list[str]
    mapping: dict[str, MappedField | None]
    rows: list[list[str]]
    warnings: list[str]
