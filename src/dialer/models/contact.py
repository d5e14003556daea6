"""Fields, contact lists, contacts and their phones, import jobs."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy import Enum as SAEnum
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from dialer.models.base import Base, IdMixin, TimestampMixin, enum_values
from dialer.models.enums import ContactStatus, FieldType, ImportStatus, OutcomeCategory, PhoneType


def _enum(e: type, name: str) -> SAEnum:
    return SAEnum(e, name=name, native_enum=False, length=32, values_callable=enum_values,
                  validate_strings=True)


class Field(IdMixin, TimestampMixin, Base):
    """A typed, user-defined contact attribute (000 §3).

    Values live in ``contacts.data`` under the key ``str(field.id)``, so renaming a field changes
    no data and adding one needs no DDL on ``contacts`` (only an index, built concurrently).
    """

    __tablename__ = "fields"
    name: Mapped[str] = mapped_column(String(200), unique=True)
    type: Mapped[FieldType] = mapped_column(_enum(FieldType, "field_type"))
    description: Mapped[str] = mapped_column(Text, default="")
    mask: Mapped[str | None] = mapped_column(Text, nullable=True)
    is_client_id: Mapped[bool] = mapped_column(Boolean, default=False)
    #: Options of an enum field.
    options: Mapped[list[str]] = mapped_column(JSONB, default=list)
    #: For a phone field: which kind of phone it holds (strategy rules switch between kinds).
    phone_type: Mapped[PhoneType | None] = mapped_column(_enum(PhoneType, "phone_type"), nullable=True)


class ContactList(IdMixin, TimestampMixin, Base):
    __tablename__ = "contact_lists"
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    #: Link to the client in the CRM shown on the operator's card; ``{field name}`` placeholders take the
    #: contact's values, e.g. ``https://crm.example.ru/clients/{client_id}``.
    crm_url: Mapped[str] = mapped_column(Text, default="")


class ListField(Base):
    __tablename__ = "list_fields"
    list_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("contact_lists.id", ondelete="CASCADE"), primary_key=True
    )
    field_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("fields.id", ondelete="RESTRICT"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    required: Mapped[bool] = mapped_column(Boolean, default=False)
    #: Shown on the operator's client card (the list's card template, 000 §3.7), in ``position`` order.
    in_card: Mapped[bool] = mapped_column(Boolean, default=True)


class ImportJob(IdMixin, Base):
    __tablename__ = "import_jobs"
    list_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("contact_lists.id", ondelete="SET NULL"), nullable=True, index=True
    )
    kind: Mapped[str] = mapped_column(String(32), default="contacts")  # contacts | numbering | dnc
    filename: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[ImportStatus] = mapped_column(_enum(ImportStatus, "import_status"), default=ImportStatus.queued)
    options: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    tags: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list)
    rows_total: Mapped[int] = mapped_column(BigInteger, default=0)
    rows_done: Mapped[int] = mapped_column(BigInteger, default=0)
    imported: Mapped[int] = mapped_column(BigInteger, default=0)
    rejected: Mapped[int] = mapped_column(BigInteger, default=0)
    duplicates: Mapped[int] = mapped_column(BigInteger, default=0)
    dnc_filtered: Mapped[int] = mapped_column(BigInteger, default=0)
    errors_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    message: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Contact(IdMixin, Base):
    """One client in a list: field values in ``data`` plus the system attributes selections use."""

    __tablename__ = "contacts"
    list_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("contact_lists.id", ondelete="CASCADE"))
    data: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default=text("'{}'::jsonb"))
    tags: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list, server_default=text("'{}'"))
    import_job_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("import_jobs.id", ondelete="SET NULL"), nullable=True
    )
    status: Mapped[ContactStatus] = mapped_column(
        _enum(ContactStatus, "contact_status"), default=ContactStatus.new, server_default="new"
    )
    attempts_total: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    attempts_today: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    attempts_day: Mapped[date | None] = mapped_column(Date, nullable=True)
    last_outcome: Mapped[OutcomeCategory | None] = mapped_column(
        _enum(OutcomeCategory, "outcome_category"), nullable=True
    )
    last_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    next_call_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    #: The phone a strategy rule switched to ("call another phone type next"); None: the strategy's order.
    next_phone_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("contact_phones.id", ondelete="SET NULL", use_alter=True), nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )

    # ix_contacts_due (list_id, coalesce(next_call_at, '-infinity'), id) WHERE status <> 'done' is an
    # expression index made by migration 0005 and left out here (autogenerate cannot compare expressions).
    __table_args__ = (
        Index("ix_contacts_list_id_id", "list_id", "id"),
        # Deleting a phone sets next_phone_id NULL through the FK: without this, every cascade scans contacts.
        Index("ix_contacts_next_phone", "next_phone_id", postgresql_where=text("next_phone_id IS NOT NULL")),
        Index("ix_contacts_list_next_call", "list_id", "status", "next_call_at"),
    )


class ContactPhone(IdMixin, Base):
    __tablename__ = "contact_phones"
    contact_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    #: Denormalised for duplicate search inside a list.
    list_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("contact_lists.id", ondelete="CASCADE"))
    field_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("fields.id", ondelete="SET NULL"), nullable=True
    )
    phone_type: Mapped[PhoneType] = mapped_column(
        _enum(PhoneType, "phone_type"), default=PhoneType.mobile, server_default="mobile"
    )
    position: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    raw: Mapped[str] = mapped_column(Text, default="", server_default="")
    e164: Mapped[str] = mapped_column(String(20))
    region: Mapped[str | None] = mapped_column(Text, nullable=True)
    carrier: Mapped[str | None] = mapped_column(Text, nullable=True)
    timezones: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list, server_default=text("'{}'"))
    tz_uncertain: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))

    __table_args__ = (
        Index("ix_contact_phones_e164", "e164"),
        Index("ix_contact_phones_list_e164", "list_id", "e164"),
        # The hopper keeps phones whose zones are all inside the set of zones open now: timezones <@ :open.
        Index("ix_contact_phones_timezones", "timezones", postgresql_using="gin"),
    )


class DncList(IdMixin, TimestampMixin, Base):
    """A do-not-call list (000 §6); exactly one has ``is_global`` set: the blacklist (002 §9)."""

    __tablename__ = "dnc_lists"
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    is_global: Mapped[bool] = mapped_column(Boolean, default=False)

    __table_args__ = (
        Index("uq_dnc_lists_one_global", "is_global", unique=True, postgresql_where=text("is_global")),
    )


class DncEntry(IdMixin, Base):
    __tablename__ = "dnc_entries"
    list_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("dnc_lists.id", ondelete="CASCADE"))
    #: E.164 number, or for a prefix entry the leading digits with "+" (e.g. "+7800").
    number: Mapped[str] = mapped_column(String(20))
    is_prefix: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    comment: Mapped[str] = mapped_column(Text, default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        UniqueConstraint("list_id", "number", "is_prefix", name="uq_dnc_entries_list_number"),
        Index("ix_dnc_entries_number", "number"),
    )


class TimeZone(IdMixin, TimestampMixin, Base):
    """A named time zone of the reference book (000 §13.1) with its phone codes."""

    __tablename__ = "time_zones"
    name: Mapped[str] = mapped_column(String(200), unique=True)
    tz: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text, default="")


class PhoneCode(IdMixin, Base):
    """A phone-number prefix or an E.164 range → time zone, region, carrier.

    A prefix is stored as the range it covers for numbers of its country's length, so one
    indexed range lookup answers both kinds; ``prefix`` keeps what the user typed.
    """

    __tablename__ = "phone_codes"
    time_zone_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("time_zones.id", ondelete="CASCADE"), nullable=True, index=True
    )
    prefix: Mapped[str | None] = mapped_column(String(20), nullable=True)
    range_from: Mapped[int] = mapped_column(BigInteger)
    range_to: Mapped[int] = mapped_column(BigInteger)
    tz: Mapped[str | None] = mapped_column(String(64), nullable=True)
    region: Mapped[str | None] = mapped_column(Text, nullable=True)
    carrier: Mapped[str | None] = mapped_column(Text, nullable=True)
    description: Mapped[str] = mapped_column(Text, default="", server_default="")
    source: Mapped[str] = mapped_column(String(16), default="manual", server_default="manual")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (Index("ix_phone_codes_range", "range_from", "range_to"),)
