"""Reading and exporting the audit log (it has no endpoint that changes it)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from dialer.api.crud import ListParams, Page, ReadSchema, apply_sort, list_params, paginate
from dialer.api.deps import Session, require
from dialer.auth.permissions import P
from dialer.exceptions import ValidationFailed
from dialer.models import AuditEntry

router = APIRouter(prefix="/api/audit", tags=["audit"])
EXPORT_LIMIT = 1_000_000


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


class AuditFilter(BaseModel):
    user_id: int | None = None
    user_login: str | None = None
    action: str | None = None
    object_type: str | None = None
    object_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def audit_filter(
    user_id: int | None = Query(None), user_login: str | None = Query(None),
    action: str | None = Query(None, description="created | updated | deleted | custom"),
    object_type: str | None = Query(None, description="Table name, e.g. campaigns"),
    object_id: str | None = Query(None),
    since: datetime | None = Query(None, description="From this moment (inclusive)"),
    until: datetime | None = Query(None, description="Until this moment (exclusive)"),
) -> AuditFilter:
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
async def list_audit(session: Session, params: ListParams = Depends(list_params),
                     f: AuditFilter = Depends(audit_filter), _: Any = Depends(require(P.audit_read))) -> Any:
    stmt = apply_sort(_query(f), params.sort or "-at", SORT, [AuditEntry.id.desc()])
    items, total = await paginate(session, stmt, params)
    return {"items": items, "total": total, "page": params.page, "per_page": params.per_page}


COLUMNS = ["id", "at", "user_login", "user_roles", "action", "event", "object_type", "object_id", "changes",
           "client"]


def _cells(e: AuditEntry) -> list[Any]:
    return [e.id, e.at.isoformat(), e.user_login, e.user_roles, e.action, e.event, e.object_type, e.object_id or "",
            json.dumps(e.changes, ensure_ascii=False), e.client]


async def _entries(session: AsyncSession, f: AuditFilter) -> AsyncIterator[AuditEntry]:
    stmt = _query(f).order_by(AuditEntry.at, AuditEntry.id).limit(EXPORT_LIMIT)
    result = await session.stream_scalars(stmt.execution_options(yield_per=2000))
    async for entry in result:
        yield entry


def _xlsx(rows: list[list[Any]]) -> Iterator[bytes]:
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    ws = wb.create_sheet("audit")
    ws.append(COLUMNS)
    for row in rows:
        ws.append(row)
    buf = io.BytesIO()
    wb.save(buf)
    yield buf.getvalue()


@router.get("/export", summary="Export the filtered audit log as CSV or XLSX",
            responses={200: {"content": {"text/csv": {}, "application/vnd.openxmlformats-officedocument."
                                                          "spreadsheetml.sheet": {}}}})
async def export_audit(session: Session, format: str = Query("csv", pattern="^(csv|xlsx)$"),
                       f: AuditFilter = Depends(audit_filter),
                       _: Any = Depends(require(P.audit_export))) -> StreamingResponse:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    if format == "xlsx":
        rows = [_cells(e) async for e in _entries(session, f)]
        return StreamingResponse(
            _xlsx(rows), media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            headers={"Content-Disposition": f'attachment; filename="audit-{stamp}.xlsx"'})
    entries = [_cells(e) async for e in _entries(session, f)]

    def lines() -> Iterator[str]:
        buf = io.StringIO()
        writer = csv.writer(buf, delimiter=";")
        buf.write("\ufeff")
        writer.writerow(COLUMNS)
        for row in entries:
            writer.writerow(row)
            if buf.tell() > 65536:
                yield buf.getvalue()
                buf.seek(0)
                buf.truncate()
        yield buf.getvalue()

    return StreamingResponse(lines(), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="audit-{stamp}.csv"'})
