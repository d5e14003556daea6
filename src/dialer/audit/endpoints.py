"""Reading and exporting the audit log (it has no endpoint that changes it)."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, BeforeValidator, Field
from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dialer.api.crud import ListParams, Page, ReadSchema, apply_sort, list_params, paginate
from dialer.api.deps import Session, require
from dialer.audit import labels
from dialer.audit.recorder import log
from dialer.auth.permissions import P
from dialer.exceptions import ValidationFailed
from dialer.export import MEDIA_TYPES, ExportFormat, chunks
from dialer.models import AuditEntry
from dialer.models.enums import AuditAction
from dialer.uploads import attachment, download_name
from dialer.web import i18n

router = APIRouter(prefix="/api/audit", tags=["audit"])
EXPORT_LIMIT = 1_000_000
#: Rows fetched from the database per round trip while exporting.
EXPORT_BATCH = 2000
#: Excel refuses cells longer than this.


class AuditRead(ReadSchema):
    id: int
    at: datetime
    user_id: int | None
    user_login: str
    user_roles: str
    action: str
    event: str
    object_type: str
    object_id: str | None
    changes: dict[str, Any]
    client: str
    object_label: str = Field("", description="object_type as a person reads it, in the request's language")
    action_label: str = Field("", description="action in the request's language")
    event_label: str = Field("", description="event in the request's language (\"status: draft → running\" -> "
                                             "\"статус: черновик → работает\")")


class AuditFilter(BaseModel):
    user_id: int | None = None
    user_login: str | None = None
    action: str | None = None
    object_type: str | None = None
    object_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None


_SPACED_OFFSET = re.compile(r"^(.*\d) (\d{2}(?::?\d{2})?)$")


def _plus_offset(value: Any) -> Any:
    """An unencoded ``+03:00`` in a query string arrives as `` 03:00``: read it as the offset it was."""
    if isinstance(value, str) and (m := _SPACED_OFFSET.match(value.strip())) and "T" in m[1]:
        return f"{m[1]}+{m[2]}"
    return value


Moment = Annotated[datetime, BeforeValidator(_plus_offset)]


def as_utc(value: datetime | None) -> datetime | None:
    """A moment without an offset is UTC (the log's own time scale); with one, it is converted."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def audit_filter(
    user_id: int | None = Query(None), user_login: str | None = Query(None),
    action: str | None = Query(None, description="created | updated | deleted | custom"),
    object_type: str | None = Query(None, description="Table name, e.g. campaigns"),
    object_id: str | None = Query(None),
    since: Moment | None = Query(None, description="From this moment (inclusive); without an offset: UTC"),
    until: Moment | None = Query(None, description="Until this moment (exclusive); without an offset: UTC"),
) -> AuditFilter:
    since, until = as_utc(since), as_utc(until)
    if since and until and since >= until:
        raise ValidationFailed.field("until", "must be later than since")
    return AuditFilter(user_id=user_id, user_login=user_login, action=action, object_type=object_type,
                       object_id=object_id, since=since, until=until)


def _query(f: AuditFilter) -> Select[Any]:
    stmt = select(AuditEntry)
    if f.user_id is not None:
        stmt = stmt.where(AuditEntry.user_id == f.user_id)
    if f.user_login:
        stmt = stmt.where(AuditEntry.user_login == f.user_login)
    if f.action:
        stmt = stmt.where(AuditEntry.action == f.action)
    if f.object_type:
        stmt = stmt.where(AuditEntry.object_type == f.object_type)
    if f.object_id:
        stmt = stmt.where(AuditEntry.object_id == f.object_id)
    if f.since:
        stmt = stmt.where(AuditEntry.at >= f.since)
    if f.until:
        stmt = stmt.where(AuditEntry.at < f.until)
    return stmt


SORT = {"at": AuditEntry.at, "id": AuditEntry.id, "user_login": AuditEntry.user_login,
        "object_type": AuditEntry.object_type, "action": AuditEntry.action}


@router.get("", response_model=Page[AuditRead], summary="The audit log, newest first, with filters")
async def list_audit(request: Request, session: Session, params: ListParams = Depends(list_params),
                     f: AuditFilter = Depends(audit_filter), _: Any = Depends(require(P.audit_read))) -> Any:
    stmt = apply_sort(_query(f), params.sort or "-at", SORT, [AuditEntry.id.desc()])
    items, total = await paginate(session, stmt, params)
    lang = i18n.api_language(request)
    read = [AuditRead.model_validate(e).model_copy(update={
        "object_label": labels.table_label(lang, e.object_type), "action_label": labels.action_label(lang, e.action),
        "event_label": labels.event_label(lang, e.event)}) for e in items]
    return {"items": read, "total": total, "page": params.page, "per_page": params.per_page}


COLUMNS = ["id", "at", "user_login", "user_roles", "action", "event", "object_type", "object_id", "changes",
           "client"]


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _text(value: str) -> str:
    """Text that a spreadsheet would run as a formula (``=HYPERLINK(...)`` in a login) is quoted."""
    return "'" + value if value.startswith(_FORMULA_START) else value


def _cells(e: AuditEntry) -> list[Any]:
    return [e.id, e.at.astimezone(UTC).isoformat(), _text(e.user_login), _text(e.user_roles), e.action,
            _text(e.event), _text(e.object_type), _text(e.object_id or ""),
            json.dumps(e.changes, ensure_ascii=False), _text(e.client)]


def _xlsx_cells(e: AuditEntry) -> list[Any]:
    # An XLSX cell holds text as text (dialer.export), so nothing needs quoting; ``at`` is a real date in
    # Excel (which has no time zones): UTC.
    return [e.id, e.at.astimezone(UTC).replace(tzinfo=None), e.user_login, e.user_roles, e.action, e.event,
            e.object_type, e.object_id or "", json.dumps(e.changes, ensure_ascii=False), e.client]


async def _batches(maker: async_sessionmaker[AsyncSession], f: AuditFilter) -> AsyncIterator[list[AuditEntry]]:
    """The filtered entries, oldest first, read with a server-side cursor in its own session.

    The export's response is streamed after the request's own session has been closed, so the rows
    are read here, batch by batch, while the body is being sent: memory does not grow with the log.
    """
    stmt = _query(f).order_by(AuditEntry.at, AuditEntry.id).limit(EXPORT_LIMIT)
    async with maker() as session, session.begin():
        result = await session.stream_scalars(stmt.execution_options(yield_per=EXPORT_BATCH))
        async for batch in result.partitions(EXPORT_BATCH):
            yield list(batch)


async def _rows(maker: async_sessionmaker[AsyncSession], f: AuditFilter,
                cells: Callable[[AuditEntry], list[Any]]) -> AsyncIterator[list[list[Any]]]:
    async for batch in _batches(maker, f):
        yield [cells(e) for e in batch]


@router.get("/export", summary="Export the filtered audit log as CSV or XLSX",
            responses={200: {"content": {MEDIA_TYPES["csv"]: {}, MEDIA_TYPES["xlsx"]: {}}}})
async def export_audit(request: Request, session: Session, format: str = Query("csv", pattern="^(csv|xlsx)$"),
                       f: AuditFilter = Depends(audit_filter),
                       _: Any = Depends(require(P.audit_export))) -> StreamingResponse:
    # Who took a copy of the log, and of which part, is itself recorded.
    await log(session, AuditAction.custom, "audit_log", None, event_label=f"export {format}",
              changes={"filter": {"old": None, "new": f.model_dump(exclude_none=True, mode="json")}})
    maker = request.app.state.sessionmaker
    fmt: ExportFormat = "xlsx" if format == "xlsx" else "csv"
    rows = _rows(maker, f, _xlsx_cells if fmt == "xlsx" else _cells)
    return StreamingResponse(chunks(fmt, "audit", COLUMNS, rows), media_type=MEDIA_TYPES[fmt],
                             headers=attachment(download_name("audit", fmt, fallback="audit"), fmt))
