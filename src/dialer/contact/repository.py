"""Every SQL statement of the contact domain (queries, bulk deletes, COPY)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from sqlalchemy import Select, and_, delete, exists, func, insert, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement

from dialer.contact.indexes import text_expr, value_expr
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
from dialer.models.enums import FieldType, PhoneType

# --- fields ---------------------------------------------------------------------------------------


async def field_has_values(session: AsyncSession, field_id: int, field_type: FieldType | str) -> bool:
    """Whether any contact holds a value for the field (answered by the field's own index; a phone
    field has none, so that one reads ``contacts`` until the first value)."""
    stmt = select(Contact.id).where(value_expr(field_id, field_type).is_not(None)).limit(1)
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


async def selections_with_field(session: AsyncSession, field_id: int) -> list[tuple[str, Selection]]:
    """(campaign name, selection) of the selections whose conditions or sort name the field."""
    refs: list[Any] = [[{"field": field_id}], [{"field": str(field_id)}]]
    rows = (await session.execute(
        select(Campaign.name, Selection).join(Campaign, Campaign.id == Selection.campaign_id)
        .where(or_(*(Selection.conditions.contains(r) for r in refs), *(Selection.sort.contains(r) for r in refs)))
        .order_by(Campaign.name, Selection.name))).all()
    return [(c, s) for c, s in rows]


async def values_outside(session: AsyncSession, field_id: int, allowed: Sequence[str], *,
                         limit: int = 5) -> list[tuple[str, int]]:
    """Up to ``limit`` distinct text values of a field that are not in ``allowed``, with their contact counts."""
    expr = text_expr(field_id)
    stmt = (select(expr, func.count()).select_from(Contact).where(expr.is_not(None))
            .group_by(expr).order_by(func.count().desc(), expr).limit(limit))
    if allowed:
        stmt = stmt.where(expr.not_in(list(allowed)))
    return [(str(v), int(n)) for v, n in (await session.execute(stmt)).all()]


async def set_phone_type_of_field(session: AsyncSession, field_id: int, phone_type: PhoneType) -> None:
    """Give the contacts' phones taken from a phone field the field's (new) phone type."""
    await session.execute(update(ContactPhone).where(ContactPhone.field_id == field_id,
                                                     ContactPhone.phone_type != phone_type)
                          .values(phone_type=phone_type))


async def field_names(session: AsyncSession) -> list[tuple[int, str]]:
    return [(i, n) for i, n in (await session.execute(select(Field.id, Field.name))).all()]


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


async def replace_list_fields(session: AsyncSession, list_id: int,
                              items: Sequence[tuple[int, bool, bool]]) -> None:
    """Replace a list's fields with ``(field_id, required, in_card)`` in display order."""
    await session.execute(delete(ListField).where(ListField.list_id == list_id))
    if items:
        await session.execute(insert(ListField), [
            {"list_id": list_id, "field_id": fid, "position": pos, "required": req, "in_card": card}
            for pos, (fid, req, card) in enumerate(items)])


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


def phone_in_dnc(dnc_list_id: int | None = None) -> ColumnElement[bool]:
    """The contact has a phone the global blacklist (or ``dnc_list_id``) holds, as a number or by a prefix."""
    phone = aliased(ContactPhone)
    lists = DncList.is_global if dnc_list_id is None else or_(DncList.is_global, DncList.id == dnc_list_id)
    # Every prefix entry that could block a number is one of its leading parts ("+7", "+79", ...).
    prefixes = [func.left(phone.e164, n) for n in range(2, 17)]
    blocked = or_(and_(DncEntry.number == phone.e164, DncEntry.is_prefix.is_(False)),
                  and_(DncEntry.is_prefix.is_(True), DncEntry.number.in_(prefixes)))
    return exists(select(1).select_from(phone).join(DncEntry, blocked).join(DncList, DncList.id == DncEntry.list_id)
                  .where(phone.contact_id == Contact.id, lists))


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


#: The foreign keys whose per-row checks an import replaces by one check per batch:
#: (table, column, referenced table). See :func:`import_checks_replaceable`.
IMPORT_FOREIGN_KEYS = frozenset({
    ("contacts", "list_id", "contact_lists"),
    ("contacts", "import_job_id", "import_jobs"),
    ("contact_phones", "contact_id", "contacts"),
    ("contact_phones", "list_id", "contact_lists"),
    ("contact_phones", "field_id", "fields"),
})

# Everything that runs on INSERT into the import's tables and would stop running (or start) with
# session_replication_role = replica: triggers enabled in origin or replica mode, and rules.
_INSERT_HOOKS_SQL = text("""
SELECT t.tgrelid::regclass::text, p.proname::text, c.confrelid::regclass::text,
       (SELECT array_agg(a.attname::text ORDER BY a.attnum) FROM pg_attribute a
         WHERE a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)),
       NOT EXISTS (SELECT FROM pg_attrdef d WHERE d.adrelid = c.conrelid AND d.adnum = ANY (c.conkey))
  FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid LEFT JOIN pg_constraint c ON c.oid = t.tgconstraint
 WHERE t.tgrelid IN ('contacts'::regclass, 'contact_phones'::regclass)
   AND t.tgtype & 4 <> 0 AND t.tgenabled IN ('O', 'R')
UNION ALL
SELECT r.ev_class::regclass::text, r.rulename::text, NULL, NULL, false
  FROM pg_rewrite r
 WHERE r.ev_class IN ('contacts'::regclass, 'contact_phones'::regclass) AND r.rulename <> '_RETURN'
""")

_MAY_SET_REPLICATION_ROLE_SQL = text(
    "SELECT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) OR "
    "(current_setting('server_version_num')::int >= 150000 "
    " AND has_parameter_privilege('session_replication_role', 'SET'))"
)


async def import_checks_replaceable(session: AsyncSession) -> bool:
    """Whether an import may switch off the per-row triggers of ``contacts`` and ``contact_phones``.

    True when this role may set ``session_replication_role`` and the only things that fire on
    INSERT into those tables are foreign-key checks that :func:`start_import_batch` does once per
    batch instead (:data:`IMPORT_FOREIGN_KEYS`), or that have nothing to check because the import
    leaves their columns NULL (not written, no default). Any other trigger or rule (an audit
    trigger, a deferred unique check, a foreign key on a column the import fills) makes this
    False, and imports keep the row triggers.
    """
    if not await session.scalar(_MAY_SET_REPLICATION_ROLE_SQL):
        return False
    written = {("contacts", c) for c in CONTACT_COLUMNS} | {("contact_phones", c) for c in PHONE_COLUMNS}
    for table, function, referenced, columns, no_default in (await session.execute(_INSERT_HOOKS_SQL)).all():
        if function != "RI_FKey_check_ins" or not columns:
            return False
        if len(columns) == 1 and (table, columns[0], referenced) in IMPORT_FOREIGN_KEYS:
            continue
        if no_default and not any((table, c) in written for c in columns):
            continue  # always NULL on import: the row check would pass without looking
        return False
    return True


_START_BATCH = """
WITH s AS MATERIALIZED (SELECT pg_get_serial_sequence('contacts', 'id')::regclass AS contacts,
                               pg_get_serial_sequence('contact_phones', 'id')::regclass AS phones){checks}
SELECT set_config('synchronous_commit', 'off', true),
       (SELECT array_agg(nextval(s.contacts)) FROM s, generate_series(1, :contacts)),
       (SELECT array_agg(nextval(s.phones)) FROM s, generate_series(1, :phones)),
       {check}"""
_START_BATCH_SQL = _START_BATCH.format(checks="", check="true")
_START_BATCH_CHECKED_SQL = _START_BATCH.format(
    checks=""",
     l AS (SELECT id FROM contact_lists WHERE id = :list_id FOR KEY SHARE),
     j AS (SELECT id FROM import_jobs WHERE id = :job_id FOR KEY SHARE),
     f AS (SELECT id FROM fields WHERE id = ANY (CAST(:field_ids AS bigint[])) FOR KEY SHARE)""",
    check="""set_config('session_replication_role', 'replica', true) IS NOT NULL
       AND (SELECT count(*) FROM l) = 1 AND (SELECT count(*) FROM j) = 1
       AND (SELECT count(*) FROM f) = cardinality(CAST(:field_ids AS bigint[]))""")


async def start_import_batch(conn: AsyncConnection, contacts: int, phones: int, *, list_id: int, job_id: int,
                             phone_fields: Sequence[int] | None) -> tuple[list[int], list[int], bool]:
    """Set up a batch's transaction in one round trip; returns fresh ids for ``contacts`` contacts and
    ``phones`` phones, and whether the rows the batch refers to exist (always True without
    ``phone_fields``).

    The commit will not wait for the WAL to reach the disk: a batch lost to a crash is lost
    together with its progress update. With ``phone_fields`` (distinct ids of the phone fields the
    batch's phones name) the transaction also skips the row triggers of ``contacts`` and
    ``contact_phones`` — allowed only after :func:`import_checks_replaceable` — and does their
    foreign-key checks at once: a row's check locks the referenced row ``FOR KEY SHARE`` so that it
    cannot go away before the transaction ends, and the list, the job and the phone fields are
    locked the same way here; the contacts the phones refer to are the batch's own.
    """
    params: dict[str, Any] = {"contacts": contacts, "phones": phones}
    if phone_fields is None:
        row = (await conn.execute(text(_START_BATCH_SQL), params)).one()
    else:
        params |= {"list_id": list_id, "job_id": job_id, "field_ids": list(phone_fields)}
        row = (await conn.execute(text(_START_BATCH_CHECKED_SQL), params)).one()
    return list(row[1] or []), list(row[2] or []), bool(row[3])


CONTACT_COLUMNS = ("id", "list_id", "data", "tags", "import_job_id")
PHONE_COLUMNS = ("id", "contact_id", "list_id", "field_id", "phone_type", "position", "raw", "e164", "region",
                 "carrier", "timezones", "tz_uncertain")


async def copy_text(conn: AsyncConnection, table: str, columns: Sequence[str], rows: bytes) -> None:
    """COPY rows in text format (:mod:`.copytext`) inside the connection's current transaction.

    The transaction must already be open on the driver connection (run a statement first, e.g.
    :func:`start_import_batch`): asyncpg's COPY would otherwise run outside of it.
    """
    if not rows:
        return
    raw = await conn.get_raw_connection()
    driver: Any = raw.driver_connection
    # A memoryview, because asyncpg takes bytes for a file name.
    await driver.copy_to_table(table, source=memoryview(rows), columns=columns, format="text")


async def update_job(session: AsyncSession, job_id: int, **values: Any) -> None:
    await session.execute(update(ImportJob).where(ImportJob.id == job_id).values(**values))


async def add_to_job(session: AsyncSession | AsyncConnection, job_id: int, delta: Any) -> None:
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


async def spools_in_use(session: AsyncSession, option: str) -> set[str]:
    """The spooled uploads (``options[option]``) of import jobs still queued or running."""
    rows = await session.scalars(
        select(ImportJob.options[option].astext).where(ImportJob.status.in_(["queued", "running"]),
                                                       ImportJob.options.has_key(option)))
    return {name for name in rows if name}


async def fail_unfinished_jobs(session: AsyncSession, message: str) -> int:
    result = await session.execute(
        update(ImportJob).where(ImportJob.status.in_(["queued", "running"]))
        .values(status="failed", message=message, finished_at=func.now()).returning(ImportJob.id))
    return len(result.all())

