"""Every SQL statement of the contact domain (queries, bulk deletes, COPY)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from sqlalchemy import Select, delete, exists, func, insert, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from dialer.contact.indexes import text_expr
from dialer.models import (
    Campaign,
    Contact,
    ContactList,
    ContactPhone,
    DncEntry,
    DncList,
    Field,
    ImportJob,
    ListField,
    Selection,
    Strategy,
    campaign_lists,
)

# --- fields ---------------------------------------------------------------------------------------


async def field_has_values(session: AsyncSession, field_id: int) -> bool:
    """Whether any contact holds a value for the field (answered by the field's own index)."""
    stmt = select(Contact.id).where(text_expr(field_id).is_not(None)).limit(1)
    return (await session.scalar(stmt)) is not None


async def lists_using_field(session: AsyncSession, field_id: int) -> list[str]:
    return list((await session.scalars(
        select(ContactList.name).join(ListField, ListField.list_id == ContactList.id)
        .where(ListField.field_id == field_id).order_by(ContactList.name))).all())


async def strategies_using_field(session: AsyncSession, field_id: int) -> list[str]:
    return list((await session.scalars(
        select(Strategy.name).where(Strategy.phone_field_id == field_id).order_by(Strategy.name))).all())


async def selections_using_field(session: AsyncSession, field_id: int) -> list[str]:
    """"campaign / selection" of selections whose conditions or sort name the field."""
    refs: list[Any] = [[{"field": field_id}], [{"field": str(field_id)}]]
    rows = (await session.execute(
        select(Campaign.name, Selection.name).join(Campaign, Campaign.id == Selection.campaign_id)
        .where(or_(*(Selection.conditions.contains(r) for r in refs), *(Selection.sort.contains(r) for r in refs)))
        .order_by(Campaign.name, Selection.name))).all()
    return [f"{c} / {s}" for c, s in rows]


# --- lists ----------------------------------------------------------------------------------------


async def list_fields(session: AsyncSession, list_id: int) -> list[tuple[ListField, Field]]:
    rows = (await session.execute(
        select(ListField, Field).join(Field, Field.id == ListField.field_id)
        .where(ListField.list_id == list_id).order_by(ListField.position, ListField.field_id))).all()
    return [(lf, f) for lf, f in rows]


async def fields_by_ids(session: AsyncSession, ids: Sequence[int]) -> dict[int, Field]:
    if not ids:
        return {}
    return {f.id: f for f in (await session.scalars(select(Field).where(Field.id.in_(ids)))).all()}


async def fields_by_name(session: AsyncSession) -> dict[str, Field]:
    return {f.name: f for f in (await session.scalars(select(Field))).all()}


async def replace_list_fields(session: AsyncSession, list_id: int, items: Sequence[tuple[int, bool]]) -> None:
    await session.execute(delete(ListField).where(ListField.list_id == list_id))
    if items:
        await session.execute(insert(ListField), [
            {"list_id": list_id, "field_id": fid, "position": pos, "required": req}
            for pos, (fid, req) in enumerate(items)])


async def contact_count(session: AsyncSession, list_id: int) -> int:
    return int(await session.scalar(select(func.count()).select_from(Contact).where(Contact.list_id == list_id)) or 0)


async def campaigns_using_list(session: AsyncSession, list_id: int) -> list[str]:
    return list((await session.scalars(
        select(Campaign.name).join(campaign_lists, campaign_lists.c.campaign_id == Campaign.id)
        .where(campaign_lists.c.list_id == list_id).order_by(Campaign.name))).all())


async def list_by_name(session: AsyncSession, name: str) -> ContactList | None:
    return (await session.scalars(select(ContactList).where(ContactList.name == name))).one_or_none()


# --- contacts -------------------------------------------------------------------------------------


def contacts_of(list_id: int, where: Sequence[ColumnElement[bool]]) -> Select[Contact]:
    return select(Contact).where(Contact.list_id == list_id, *where)


def has_phone(e164s: Sequence[str]) -> ColumnElement[bool]:
    return exists().where(ContactPhone.contact_id == Contact.id, ContactPhone.e164.in_(e164s))


def phone_contains(digits: str) -> ColumnElement[bool]:
    return exists().where(ContactPhone.contact_id == Contact.id, ContactPhone.e164.like(f"%{digits}%"))


async def phones_of(session: AsyncSession, contact_ids: Sequence[int]) -> dict[int, list[ContactPhone]]:
    found: dict[int, list[ContactPhone]] = {cid: [] for cid in contact_ids}
    if contact_ids:
        rows = (await session.scalars(select(ContactPhone).where(ContactPhone.contact_id.in_(contact_ids))
                                      .order_by(ContactPhone.contact_id, ContactPhone.position,
                                                ContactPhone.id))).all()
        for phone in rows:
            found[phone.contact_id].append(phone)
    return found


async def count(session: AsyncSession, stmt: Select[Any]) -> int:
    return int(await session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0)


async def delete_contacts(session: AsyncSession, list_id: int, where: Sequence[ColumnElement[bool]],
                          *, sample: int) -> tuple[int, list[int]]:
    """Delete matching contacts of a list (their phones cascade); returns the count and some ids."""
    deleted = delete(Contact).where(Contact.list_id == list_id, *where).returning(Contact.id).cte("deleted")
    first = select(deleted.c.id).order_by(deleted.c.id).limit(sample).subquery()
    stmt = select(select(func.count()).select_from(deleted).scalar_subquery(),
                  select(func.array_agg(first.c.id)).scalar_subquery())
    n, ids = (await session.execute(stmt)).one()
    return int(n or 0), sorted(ids or [])


# --- import ---------------------------------------------------------------------------------------


async def known_phones(session: AsyncSession, list_id: int, *, chunk: int = 50_000) -> AsyncIterator[list[str]]:
    """The E.164 numbers already in a list, streamed in chunks (a server-side cursor)."""
    result = await session.stream(
        select(ContactPhone.e164).where(ContactPhone.list_id == list_id).execution_options(yield_per=chunk))
    async for part in result.partitions(chunk):
        yield [row[0] for row in part]


async def dnc_entries(session: AsyncSession, list_id: int | None) -> list[tuple[str, bool]]:
    """Entries (number, is_prefix) of the global blacklist and of ``list_id``."""
    lists = DncList.is_global if list_id is None else or_(DncList.is_global, DncList.id == list_id)
    return [(n, bool(p)) for n, p in (await session.execute(
        select(DncEntry.number, DncEntry.is_prefix).join(DncList, DncList.id == DncEntry.list_id).where(lists)
    )).all()]


async def dnc_list_exists(session: AsyncSession, dnc_list_id: int) -> bool:
    return (await session.get(DncList, dnc_list_id)) is not None


async def reserve_contact_ids(session: AsyncSession, n: int) -> list[int]:
    """``n`` fresh contact ids from the table's sequence (also starts the transaction for COPY)."""
    # The sequence is looked up once per call, not once per id (a catalog lookup costs more than nextval).
    return list((await session.scalars(
        text("WITH s AS MATERIALIZED (SELECT pg_get_serial_sequence('contacts', 'id')::regclass AS seq) "
             "SELECT nextval(s.seq) FROM s, generate_series(1, :n)"), {"n": n})).all())


async def relax_commit(session: AsyncSession) -> None:
    """This transaction's commit does not wait for its WAL to reach the disk."""
    await session.execute(text("SET LOCAL synchronous_commit = off"))


CONTACT_COLUMNS = ("id", "list_id", "data", "tags", "import_job_id")
PHONE_COLUMNS = ("contact_id", "list_id", "field_id", "phone_type", "position", "raw", "e164", "region", "carrier",
                 "timezones", "tz_uncertain")


async def copy_rows(session: AsyncSession, contacts: Sequence[tuple[Any, ...]],
                    phones: Sequence[tuple[Any, ...]]) -> None:
    """COPY (binary) contacts, then their phones, inside the session's current transaction.

    The transaction must already be open on the driver connection (run a statement first, e.g.
    :func:`reserve_contact_ids`): asyncpg's COPY would otherwise run outside of it.
    """
    conn = await session.connection()
    raw = await conn.get_raw_connection()
    driver: Any = raw.driver_connection
    if contacts:
        await driver.copy_records_to_table("contacts", records=contacts, columns=CONTACT_COLUMNS)
    if phones:
        await driver.copy_records_to_table("contact_phones", records=phones, columns=PHONE_COLUMNS)


async def update_job(session: AsyncSession, job_id: int, **values: Any) -> None:
    await session.execute(update(ImportJob).where(ImportJob.id == job_id).values(**values))


async def add_to_job(session: AsyncSession, job_id: int, delta: Any) -> None:
    """Add a batch's counts to the job (increments, so batches may commit in any order)."""
    done = ImportJob.rows_done + delta.rows_done
    await session.execute(update(ImportJob).where(ImportJob.id == job_id).values(
        rows_done=done, rows_total=func.greatest(ImportJob.rows_total, done),
        imported=ImportJob.imported + delta.imported, rejected=ImportJob.rejected + delta.rejected,
        duplicates=ImportJob.duplicates + delta.duplicates, dnc_filtered=ImportJob.dnc_filtered + delta.dnc_filtered))


async def finish_job(session: AsyncSession, job_id: int, **values: Any) -> tuple[int, ...]:
    """End a job (``rows_total`` becomes exact); returns rows_done, rows_total, imported, rejected,
    duplicates, dnc_filtered."""
    row = (await session.execute(
        update(ImportJob).where(ImportJob.id == job_id)
        .values(finished_at=func.now(), rows_total=ImportJob.rows_done, **values)
        .returning(ImportJob.rows_done, ImportJob.rows_done, ImportJob.imported, ImportJob.rejected,
                   ImportJob.duplicates, ImportJob.dnc_filtered))).one()
    return tuple(row)


async def fail_unfinished_jobs(session: AsyncSession, message: str) -> int:
    result = await session.execute(
        update(ImportJob).where(ImportJob.status.in_(["queued", "running"]))
        .values(status="failed", message=message, finished_at=func.now()).returning(ImportJob.id))
    return len(result.all())

