"""Do-not-call lists, their entries, and the "may I call this number" check."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any, Literal

from fastapi import APIRouter, Depends, File, Form, Query, Request, Response, UploadFile
from fastapi.responses import StreamingResponse
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
    DncFileResult,
    DncListCreate,
    DncListRead,
    DncListUpdate,
    DncMatchRead,
)
from dialer.exceptions import Conflict, NotFound, ValidationFailed
from dialer.export import MEDIA_TYPES, chunks
from dialer.models import DncEntry, DncList
from dialer.models.enums import AuditAction
from dialer.tabular import NotATableError, TableError, open_table
from dialer.uploads import attachment, download_name, save_upload


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
    added = await _insert(session, list_id, list(numbers), is_prefix=body.is_prefix, comment=body.comment)
    await log(session, AuditAction.custom, "dnc_lists", list_id, event_label="bulk add",
              changes={"added": {"old": None, "new": added}, "rejected": {"old": None, "new": len(rejected)}})
    return {"added": added, "already_present": len(numbers) - added, "rejected": rejected}


async def _insert(session: AsyncSession, list_id: int, numbers: Sequence[str], *, is_prefix: bool,
                  comment: str) -> int:
    """Add the entries the list does not hold yet; returns how many were added."""
    added = 0
    numbers = list(numbers)
    for start in range(0, len(numbers), 5000):
        rows = [{"list_id": list_id, "number": n, "is_prefix": is_prefix, "comment": comment}
                for n in numbers[start:start + 5000]]
        result = await session.execute(
            pg_insert(DncEntry).values(rows)
            .on_conflict_do_nothing(constraint="uq_dnc_entries_list_number").returning(DncEntry.id))
        added += len(result.all())
    return added


@entries.post("/upload", response_model=DncFileResult,
              summary="Add the numbers of a file (CSV or XLSX); invalid rows are reported")
async def upload_entries(
    list_id: int, request: Request, session: Session,
    file: UploadFile = File(..., description="CSV (UTF-8, UTF-16 or Windows-1251; , ; or tab) or XLSX; a column "
                                             "of numbers, with or without a header row"),
    column: str | None = Form(None, description="The column of the numbers (default: the only column, one "
                                                "whose header says phone, or the one whose cells are numbers)"),
    is_prefix: bool = Form(False, description="The file holds prefixes (+7800) rather than numbers"),
    comment: str = Form("", max_length=500),
    _: Any = Depends(require(P.dnc_write)),
) -> Any:
    await load(session, DncList, list_id, "dnc list")
    settings = request.app.state.settings
    path = await save_upload(file, settings.import_dir / "uploads")
    name = file.filename or path.name
    region = _region(request)
    try:
        try:
            table = await asyncio.to_thread(open_table, path, filename=name)
        except (NotATableError, TableError) as err:
            raise ValidationFailed.field("file", str(err))
        try:
            index = await asyncio.to_thread(service.number_column, table, column or None, is_prefix=is_prefix,
                                            region=region)
            found = await asyncio.to_thread(service.read_numbers, table, index, is_prefix=is_prefix, region=region)
            warnings = list(table.warnings)
        finally:
            table.close()
    finally:
        await asyncio.to_thread(path.unlink, missing_ok=True)
    added = await _insert(session, list_id, list(found.numbers), is_prefix=is_prefix, comment=comment)
    await log(session, AuditAction.custom, "dnc_lists", list_id, event_label="file upload",
              changes={"file": {"old": None, "new": name}, "added": {"old": None, "new": added},
                       "rejected": {"old": None, "new": found.rejected}})
    return {"file": name, "column": found.column, "rows": found.rows, "added": added,
            "already_present": len(found.numbers) - added, "rejected": found.rejected, "problems": found.problems,
            "warnings": warnings}


EXPORT_HEADERS = ("number", "is_prefix", "comment", "created_at")


@entries.get("/export", summary="Download the list's numbers as CSV or XLSX",
             responses={200: {"content": {MEDIA_TYPES["csv"]: {}, MEDIA_TYPES["xlsx"]: {}}}})
async def export_entries(list_id: int, request: Request, session: Session,
                         format: Literal["csv", "xlsx"] = Query("csv", description="csv or xlsx"),
                         _: Any = Depends(require(P.dnc_read))) -> StreamingResponse:
    dnc = await load(session, DncList, list_id, "dnc list")
    title = dnc.name
    # The rows are streamed from a session of their own; end this one now rather than after the download.
    await session.commit()
    maker = request.app.state.sessionmaker
    as_text = format == "csv"

    async def parts() -> AsyncIterator[list[tuple[Any, ...]]]:
        async with maker() as reader:
            result = await reader.stream(
                select(DncEntry.number, DncEntry.is_prefix, DncEntry.comment, DncEntry.created_at)
                .where(DncEntry.list_id == list_id).order_by(DncEntry.number).execution_options(yield_per=5000))
            async for part in result.partitions(5000):
                yield [(n, ("да" if p else "нет") if as_text else p, c,
                        at.isoformat(timespec="seconds") if as_text else at.replace(tzinfo=None))
                       for n, p, c, at in part]

    name = download_name(title, format, fallback=f"dnc-{list_id}")
    return StreamingResponse(chunks(format, "dnc", EXPORT_HEADERS, parts()), media_type=MEDIA_TYPES[format],
                             headers=attachment(name, format))


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
