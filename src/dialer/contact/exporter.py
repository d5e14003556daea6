"""Exporting the contacts of a list to CSV or XLSX (002 §5.5 "Скачать неотвеченные / непрозвоненные").

Rows are read with a server-side cursor and written as they come (:mod:`dialer.export`), so an
export of millions of contacts needs little memory. CSV is what Russian Excel opens by
double-click: UTF-8 with a BOM, ``;`` between cells, a decimal comma. XLSX has typed cells: dates
as dates, local date-times as date-times, integers as numbers, phones as text.

Columns: the list's fields in order (by name, so the file imports back into a list with the same
fields), then the system attributes and what is known about the first phone.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import String, cast, func, select, true
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.sql.elements import ColumnElement

from dialer.contact.values import FieldSpec
from dialer.export import MEDIA_TYPES, ExportFormat, chunks
from dialer.fieldvalues import format_date, loads_json
from dialer.models import Contact, ContactPhone
from dialer.models.enums import FieldType
from dialer.web import i18n

__all__ = ["MEDIA_TYPES", "ExportFormat", "export_chunks", "headers"]

CHUNK_ROWS = 2000
SYSTEM_HEADERS = ("id", "extra_phones", "region", "timezone", "carrier", "status", "attempts_total", "last_outcome",
                  "last_attempt_at", "next_call_at", "tags", "created_at")


def headers(specs: Sequence[FieldSpec], lang: str = "en") -> list[str]:
    """The field names, then the system columns labelled in ``lang`` ("Статус", "Попыток", …; in English their
    codes, which integrations read)."""
    return [*(s.name for s in specs), *(i18n.translate(lang, f"export.contact.{h}") for h in SYSTEM_HEADERS)]


def _statement(list_id: int, where: Sequence[ColumnElement[bool]]) -> Any:
    first = (select(ContactPhone.region, ContactPhone.carrier, ContactPhone.timezones)
             .where(ContactPhone.contact_id == Contact.id)
             .order_by(ContactPhone.position, ContactPhone.id).limit(1).lateral("first_phone"))
    extra = (select(func.string_agg(ContactPhone.e164, ", "))
             .where(ContactPhone.contact_id == Contact.id, ContactPhone.field_id.is_(None)).scalar_subquery())
    return (select(Contact.id, cast(Contact.data, String), extra, first.c.region, first.c.timezones, first.c.carrier,
                   Contact.status, Contact.attempts_total, Contact.last_outcome, Contact.last_attempt_at,
                   Contact.next_call_at, Contact.tags, Contact.created_at)
            .outerjoin(first, true())
            .where(Contact.list_id == list_id, *where).order_by(Contact.id))


def _moment(value: datetime | None) -> str:
    return value.isoformat(timespec="seconds") if value is not None else ""


def _system(row: Sequence[Any], lang: str = "en") -> list[Any]:
    (cid, _data, extra, region, zones, carrier, status, attempts, outcome, last_at, next_at, tags, created) = row
    # English keeps the codes integrations read ("in_progress", "no_answer"); Russian shows the words
    catalogue = i18n.catalogue(lang) if lang != "en" else {}
    status_text = catalogue.get(f"admin.enum.contact_status.{status}", str(status))
    outcome_text = catalogue.get(f"outcome.{outcome}", str(outcome)) if outcome else ""
    return [cid, extra or "", region or "", ", ".join(zones or []), carrier or "", status_text,
            attempts, outcome_text, _moment(last_at), _moment(next_at), ", ".join(tags or []),
            _moment(created)]


def _csv_text(spec: FieldSpec, value: Any) -> str:
    """A cell as Excel in a Russian locale reads it: decimal comma ("12345,67"), dates "25.12.2026"
    (:func:`dialer.fieldvalues.format_date`); the file imports back unchanged."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f").replace(".", ",")
    if spec.type == FieldType.date and isinstance(value, str):
        try:
            return format_date(value)
        except ValueError:
            return value
    return str(value)


def _xlsx_value(spec: FieldSpec, value: Any) -> Any:
    if value is None:
        return None
    if spec.type == FieldType.date and isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            return value
    if spec.type == FieldType.datetime and isinstance(value, str):
        # Excel has no time zones: a local time becomes a date-time cell, one with an offset stays text
        # (its offset would be lost).
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return value
        return moment if moment.tzinfo is None else value
    if isinstance(value, Decimal) and value == value.to_integral_value() and spec.type == FieldType.integer:
        return int(value)
    return value


async def _rows(maker: async_sessionmaker[AsyncSession], list_id: int,
                where: Sequence[ColumnElement[bool]]) -> AsyncIterator[Sequence[Sequence[Any]]]:
    async with maker() as session:
        result = await session.stream(_statement(list_id, where).execution_options(yield_per=CHUNK_ROWS))
        async for part in result.partitions(CHUNK_ROWS):
            yield part


async def _parts(maker: async_sessionmaker[AsyncSession], list_id: int, specs: Sequence[FieldSpec],
                 where: Sequence[ColumnElement[bool]], value: Callable[[FieldSpec, Any], Any], lang: str = "en"
                 ) -> AsyncIterator[list[list[Any]]]:
    async for part in _rows(maker, list_id, where):
        rows = []
        for row in part:
            data = loads_json(row[1]) if row[1] else {}
            rows.append([*(value(s, data.get(s.key)) for s in specs), *_system(row, lang)])
        yield rows


def export_chunks(fmt: ExportFormat, maker: async_sessionmaker[AsyncSession], list_id: int,
                  specs: Sequence[FieldSpec], where: Sequence[ColumnElement[bool]],
                  lang: str = "en") -> AsyncIterator[bytes]:
    """The file: CSV with texts as Excel reads them, XLSX with typed cells (:mod:`dialer.export`); the system
    columns' names, statuses and outcomes in ``lang``."""
    value = _csv_text if fmt == "csv" else _xlsx_value
    return chunks(fmt, "contacts", headers(specs, lang), _parts(maker, list_id, specs, where, value, lang))
