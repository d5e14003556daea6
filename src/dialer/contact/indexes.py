"""Expression indexes that make filtering and sorting on any contact field fast.

One index per field, and only where queries use it (every index costs each imported row a B-tree
insertion, about 2 µs of PostgreSQL time per row and index):

=========================================  =========================================================
field type                                 index
=========================================  =========================================================
integer, decimal                           ``ix_contacts_f<id>_num`` on ``(((data->'<id>')::numeric))``:
                                           equality, ranges and sorting in numeric order
string, enum, date, datetime, boolean      ``ix_contacts_f<id>`` on ``((data->>'<id>'))``: equality,
                                           ``in``, ranges and sorting on the text (ISO dates sort as
                                           text; a boolean's "true"/"false" serves a rare value)
phone                                      none: numbers are found through ``contact_phones.e164``
=========================================  =========================================================

Queries must use exactly these expressions, with the key as a literal, for the planner to match
them (:func:`text_expr`, :func:`numeric_expr`, :func:`value_expr`).

They are built with ``CREATE INDEX CONCURRENTLY`` on a separate AUTOCOMMIT connection after the
transaction that created the field committed, so writes to ``contacts`` continue meanwhile;
deleting a field drops its indexes the same way, and so does a type change for the index the new
type does not want. A build that was interrupted leaves an INVALID index behind:
:func:`reconcile_field_indexes` (run at start-up) drops those, builds the missing ones and drops
the orphans and those the policy no longer wants. Alembic ignores indexes named like this
(migrations/env.py).
"""

from __future__ import annotations

import asyncio
import logging
import re
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Numeric, String, literal_column, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.elements import ColumnElement

from dialer.models.enums import FieldType

log = logging.getLogger(__name__)

NUMERIC_TYPES = frozenset({FieldType.integer, FieldType.decimal})
#: Fields without an index of their own.
UNINDEXED_TYPES = frozenset({FieldType.phone})
_NAME = re.compile(r"^ix_contacts_f(\d+)(_num)?$")


def text_expr(field_id: int) -> ColumnElement[str]:
    """``contacts.data->>'<id>'``: the field's value as text (what ``ix_contacts_f<id>`` indexes)."""
    return literal_column(f"(contacts.data ->> '{int(field_id)}')", String)


def numeric_expr(field_id: int) -> ColumnElement[float]:
    """``(contacts.data->'<id>')::numeric``: a number field's value (what ``..._num`` indexes)."""
    return literal_column(f"((contacts.data -> '{int(field_id)}')::numeric)", Numeric)


def value_expr(field_id: int, field_type: FieldType | str) -> ColumnElement[Any]:
    """The expression that filters and sorts a field by its own index: numeric for numbers, else text."""
    if FieldType(field_type) in NUMERIC_TYPES:
        return numeric_expr(field_id)
    return text_expr(field_id)


def wanted_indexes(field_id: int, field_type: FieldType | str) -> dict[str, str]:
    """Index name → its expression for one field (see the table above)."""
    fid, ftype = int(field_id), FieldType(field_type)
    if ftype in UNINDEXED_TYPES:
        return {}
    if ftype in NUMERIC_TYPES:
        return {f"ix_contacts_f{fid}_num": f"(((data -> '{fid}')::numeric))"}
    return {f"ix_contacts_f{fid}": f"((data ->> '{fid}'))"}


@dataclass
class IndexReport:
    created: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

async def _existing(conn: AsyncConnection, field_id: int | None = None) -> dict[str, bool]:
    """Field indexes on ``contacts`` → whether they are valid."""
    rows = (await conn.execute(text(
        "SELECT c.relname, i.indisvalid FROM pg_index i "
        "JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_class t ON t.oid = i.indrelid "
        "JOIN pg_namespace n ON n.oid = t.relnamespace "
        "WHERE t.relname = 'contacts' AND n.nspname = current_schema() AND c.relname LIKE 'ix\\_contacts\\_f%'"
    ))).all()
    found = {name: bool(valid) for name, valid in rows if _NAME.match(name)}
    if field_id is not None:
        found = {n: v for n, v in found.items() if int(_NAME.match(n)[1]) == field_id}  # type: ignore[index]
    return found

#: Advisory lock key serialising index builds on ``contacts`` across processes ("ixcf").
_LOCK_KEY = 0x69786366
_local_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = weakref.WeakKeyDictionary()


@asynccontextmanager
async def _one_build_at_a_time(conn: AsyncConnection) -> AsyncIterator[None]:
    """Concurrent index builds on one table deadlock each other (each waits for the other's
    transaction), so they take turns: an in-process lock, then a database advisory lock for other
    processes. The advisory lock is polled with ``pg_try_advisory_lock``: a session blocked in
    ``pg_advisory_lock`` holds a snapshot the running build would wait for — another deadlock."""
    loop = asyncio.get_running_loop()
    lock = _local_locks.setdefault(loop, asyncio.Lock())
    async with lock:
        while True:
            if await conn.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": _LOCK_KEY}):
                break
            await asyncio.sleep(0.2)
        try:
            yield
        finally:
            await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _LOCK_KEY})


async def _create(conn: AsyncConnection, name: str, expr: str, report: IndexReport) -> None:
    try:
        async with _one_build_at_a_time(conn):
            await conn.execute(text(f'CREATE INDEX CONCURRENTLY IF NOT EXISTS "{name}" ON contacts ({expr})'))
        report.created.append(name)
    except Exception as err:  # a value that does not cast, a cancelled build: retried at the next start
        log.warning("building index %s failed: %s", name, err)
        report.failed[name] = str(err).splitlines()[0]
        await _drop(conn, name, report, record=False)


async def _drop(conn: AsyncConnection, name: str, report: IndexReport, *, record: bool = True) -> None:
    async with _one_build_at_a_time(conn):
        await conn.execute(text(f'DROP INDEX CONCURRENTLY IF EXISTS "{name}"'))
    if record:
        report.dropped.append(name)

async def ensure_field_indexes(engine: AsyncEngine, field_id: int, field_type: FieldType | str) -> IndexReport:
    """Make one field's indexes match its type: build the missing one, drop those it no longer needs."""
    report = IndexReport()
    wanted = wanted_indexes(field_id, field_type)
    async with engine.connect() as raw:
        conn = await raw.execution_options(isolation_level="AUTOCOMMIT")
        existing = await _existing(conn, field_id)
        for name, valid in existing.items():
            if name not in wanted or not valid:
                await _drop(conn, name, report)
        for name, expr in wanted.items():
            if not existing.get(name):
                await _create(conn, name, expr, report)
    return report

async def drop_field_indexes(engine: AsyncEngine, field_id: int) -> IndexReport:
    report = IndexReport()
    async with engine.connect() as raw:
        conn = await raw.execution_options(isolation_level="AUTOCOMMIT")
        for name in await _existing(conn, field_id):
            await _drop(conn, name, report)
    return report

async def reconcile_field_indexes(engine: AsyncEngine) -> IndexReport:
    """Build the missing field indexes, rebuild invalid ones, and drop those of deleted fields and
    those the policy does not want (a text index on a number or phone field from before)."""
    report = IndexReport()
    async with engine.connect() as raw:
        conn = await raw.execution_options(isolation_level="AUTOCOMMIT")
        fields = (await conn.execute(text("SELECT id, type FROM fields"))).all()
        wanted: dict[str, str] = {}
        for fid, ftype in fields:
            wanted.update(wanted_indexes(fid, ftype))
        existing = await _existing(conn)
        for name, valid in existing.items():
            if name not in wanted or not valid:
                await _drop(conn, name, report)
        for name, expr in wanted.items():
            if not existing.get(name):
                await _create(conn, name, expr, report)
    if report.created or report.dropped or report.failed:
        log.info("field indexes reconciled: created %s, dropped %s, failed %s",
                 report.created, report.dropped, report.failed)
    return report
