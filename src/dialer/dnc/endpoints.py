"""Do-not-call lists, their entries, and the "may I call this number" check."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from dialer.api.crud import (
    ListParams,
    Page,
    Resource,
    apply_search,
    apply_sort,
    crud_router,
    list_params,
    load,
    paginate,
)
from dialer.api.deps import Session, require
from dialer.audit.recorder import log
from dialer.auth.permissions import P
from dialer.dnc import service
from dialer.dnc.schemas import (
    DncBulkResult,
    DncCheck,
    DncEntriesBulk,
    DncEntryCreate,
    DncEntryRead,
    DncListCreate,
    DncListRead,
    DncListUpdate,
    DncMatchRead,
)
from dialer.exceptions import Conflict, NotFound, ValidationFailed
from dialer.models import DncEntry, DncList
from dialer.models.enums import AuditAction


async def _before_delete(session: AsyncSession, obj: DncList) -> None:
    if obj.is_global:
        raise Conflict("the global blacklist cannot be deleted")


async def _read_extra(session: AsyncSession, obj: DncList) -> dict[str, Any]:
    count = await session.scalar(select(func.count()).select_from(DncEntry).where(DncEntry.list_id == obj.id))
    return {"entries": int(count or 0)}


lists = Resource(
    model=DncList, path="dnc-lists", tag="dnc", read_schema=DncListRead, create_schema=DncListCreate,
    update_schema=DncListUpdate, read_perm=P.dnc_read, write_perm=P.dnc_write,
    search=("name", "description"), sort=("id", "name", "created_at"), filters=("is_global",),
    before_delete=_before_delete, read_extra=_read_extra,
)

entries = APIRouter(prefix="/api/dnc-lists/{list_id}/entries", tags=["dnc"])


def _region(request: Request) -> str:
    return str(request.app.state.settings.default_country)


@entries.get("", response_model=Page[DncEntryRead], summary="Entries of a do-not-call list")
async def list_entries(list_id: int, session: Session, params: ListParams = Depends(list_params),
                       _: Any = Depends(require(P.dnc_read))) -> Any:
    await load(session, DncList, list_id, "dnc list")
    stmt = apply_search(select(DncEntry).where(DncEntry.list_id == list_id), params.q,
                        [DncEntry.number, DncEntry.comment])
    stmt = apply_sort(stmt, params.sort, {"number": DncEntry.number, "created_at": DncEntry.created_at,
                                          "id": DncEntry.id}, [DncEntry.id])
    items, total = await paginate(session, stmt, params)
    return {"items": items, "total": total, "page": params.page, "per_page": params.per_page}


@entries.post("", response_model=DncEntryRead, status_code=201, summary="Add a number or a prefix")
async def add_entry(list_id: int, body: DncEntryCreate, request: Request, session: Session,
                    _: Any = Depends(require(P.dnc_write))) -> Any:
    await load(session, DncList, list_id, "dnc list")
    number = service.normalize_entry(body.number, is_prefix=body.is_prefix, default_region=_region(request))
    entry = DncEntry(list_id=list_id, number=number, is_prefix=body.is_prefix, comment=body.comment)
    session.add(entry)
    await session.flush()
    await session.refresh(entry)
    return entry


@entries.post("/bulk", response_model=DncBulkResult, summary="Add many numbers; invalid ones are reported")
async def add_entries(list_id: int, body: DncEntriesBulk, request: Request, session: Session,
                      _: Any = Depends(require(P.dnc_write))) -> Any:
    await load(session, DncList, list_id, "dnc list")
    rejected: list[dict[str, str | int]] = []
    numbers: dict[str, None] = {}
    for index, raw in enumerate(body.numbers):
        try:
            numbers[service.normalize_entry(raw, is_prefix=body.is_prefix, default_region=_region(request),
                                            field=f"numbers.{index}")] = None
        except ValidationFailed as err:
            rejected.append({"index": index, "number": raw, "reason": err.errors[0]["reason"]})
    added = 0
    rows = [{"list_id": list_id, "number": n, "is_prefix": body.is_prefix, "comment": body.comment}
            for n in numbers]
    for start in range(0, len(rows), 5000):
        result = await session.execute(
            pg_insert(DncEntry).values(rows[start:start + 5000])
            .on_conflict_do_nothing(constraint="uq_dnc_entries_list_number").returning(DncEntry.id))
        added += len(result.all())
    await log(session, AuditAction.custom, "dnc_lists", list_id, event_label="bulk add",
              changes={"added": {"old": None, "new": added}, "rejected": {"old": None, "new": len(rejected)}})
    return {"added": added, "already_present": len(rows) - added, "rejected": rejected}


@entries.delete("/{entry_id}", status_code=204, summary="Remove a number or prefix from the list")
async def delete_entry(list_id: int, entry_id: int, session: Session,
                       _: Any = Depends(require(P.dnc_write))) -> Response:
    entry = await session.get(DncEntry, entry_id)
    if entry is None or entry.list_id != list_id:
        raise NotFound(f"dnc entry {entry_id} does not exist in list {list_id}")
    await session.delete(entry)
    return Response(status_code=204)


check_router = APIRouter(prefix="/api/dnc", tags=["dnc"])


@check_router.get("/check", response_model=DncCheck,
                  summary="Is a number blocked by the blacklist or the given do-not-call lists?")
async def check(request: Request, session: Session, number: str = Query(..., min_length=1),
                list_id: list[int] = Query(default=[]), _: Any = Depends(require(P.dnc_read))) -> Any:
    e164 = service.normalize_entry(number, is_prefix=False, default_region=_region(request))
    found = await service.matches(session, e164, list_id)
    return DncCheck(number=e164, blocked=bool(found),
                    matches=[DncMatchRead.model_validate(m, from_attributes=True) for m in found])


routers = [crud_router(lists), entries, check_router]
