"""Fields, contact lists, contacts, imports and exports (000 §3–§5, 002 §5.5)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, Depends, File, Form, Query, Request, Response, UploadFile
from fastapi.responses import FileResponse, StreamingResponse
from sqlalchemy import select

from dialer.api.crud import ListParams, Page, Resource, crud_router, list_params, load
from dialer.api.deps import Session, require
from dialer.audit.recorder import actor_of
from dialer.auth.permissions import P
from dialer.config import Settings
from dialer.contact import exporter, importer, service
from dialer.contact.importer import ERROR_HEADERS
from dialer.contact.schemas import (
    BulkDelete,
    ContactCreate,
    ContactRead,
    ContactUpdate,
    CopyFields,
    Deleted,
    FieldCreate,
    FieldRead,
    FieldUpdate,
    ImportJobRead,
    ImportPreview,
    ListCreate,
    ListRead,
    ListUpdate,
)
from dialer.exceptions import NotFound, ValidationFailed
from dialer.export import BOM
from dialer.models import ContactList, Field, ImportJob
from dialer.uploads import attachment, download_name, save_upload
from dialer.web import i18n

fields = Resource(
    model=Field, path="fields", tag="fields", read_schema=FieldRead, create_schema=FieldCreate,
    update_schema=FieldUpdate, read_perm=P.fields_read, write_perm=P.fields_write,
    search=("name", "description"), sort=("id", "name", "type", "created_at"), filters=("type", "is_client_id"),
    before_create=service.field_before_create, after_save=service.field_after_save,
    before_update=service.field_before_update, before_delete=service.field_before_delete,
)

lists = Resource(
    model=ContactList, path="lists", tag="contact lists", read_schema=ListRead, create_schema=ListCreate,
    update_schema=ListUpdate, read_perm=P.lists_read, write_perm=P.lists_write,
    search=("name", "description"), sort=("id", "name", "created_at"), extra_fields=("fields",),
    after_save=service.list_after_save, read_extra=service.list_read_extra, before_delete=service.list_before_delete,
)

extra = APIRouter(prefix="/api/lists/{list_id}", tags=["contact lists"])
contacts = APIRouter(prefix="/api/lists/{list_id}/contacts", tags=["contacts"])
imports = APIRouter(tags=["imports"])


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _country(request: Request) -> str:
    return _settings(request).default_country


@extra.post("/copy-fields", response_model=ListRead, summary="Copy the fields of another list into this one")
async def copy_fields(list_id: int, body: CopyFields, session: Session,
                      _: Any = Depends(require(P.lists_write))) -> Any:
    return await service.list_read(session, await service.copy_fields(session, list_id, body.from_list_id))


# --- contacts -------------------------------------------------------------------------------------


@contacts.get("", response_model=Page[ContactRead], summary="List contacts")
async def list_contacts(list_id: int, request: Request, session: Session, params: ListParams = Depends(list_params),
                        _: Any = Depends(require(P.contacts_read))) -> Any:
    """Contacts of a list, paged. ``sort`` takes system columns (``id``, ``status``, ``created_at``,
    ``next_call_at`` ...) and fields by name or id (``-Сумма``, ``f.12``; numbers sort numerically).
    ``q`` searches the values and phone numbers. Filters: ``f.<field>=<value>`` (exact), ``status``,
    ``tag``, ``phone``, ``not_called=true``, ``outcome=no_answer,busy``, ``in_dnc=true`` (a phone in the
    blacklist, or also in ``dnc_list_id``)."""
    flt = service.filter_from_query(request.query_params.multi_items())
    return await service.list_contacts(session, list_id, params, flt, default_country=_country(request))


@contacts.post("", response_model=ContactRead, status_code=201, summary="Add a contact")
async def create_contact(list_id: int, body: ContactCreate, request: Request, session: Session,
                         _: Any = Depends(require(P.contacts_write))) -> Any:
    contact = await service.create_contact(session, list_id, body, default_country=_country(request))
    return await service.read_contact(session, contact)


@contacts.get("/export", summary="Export contacts to CSV or XLSX")
async def export_contacts(list_id: int, request: Request, session: Session,
                          format: Literal["csv", "xlsx"] = Query("csv", description="csv or xlsx"),
                          _: Any = Depends(require(P.contacts_export))) -> StreamingResponse:
    """The same filters as the list (plus ``not_called=true``, ``outcome=no_answer,...``); streamed."""
    flt = service.filter_from_query(request.query_params.multi_items())
    lst, specs, where, total = await service.prepare_export(session, list_id, flt, format,
                                                            default_country=_country(request))
    # The rows are streamed from a session of their own; end this one now rather than after the download.
    await session.commit()
    name = download_name(lst.name, format, fallback=f"list-{list_id}")
    maker = request.app.state.sessionmaker
    return StreamingResponse(
        exporter.export_chunks(format, maker, list_id, specs, where, i18n.api_language(request)),
        media_type=exporter.MEDIA_TYPES[format],
        headers={**attachment(name, format), "X-Total-Count": str(total)})


@contacts.post("/bulk-delete", response_model=Deleted, summary="Delete the given contacts or those matching a filter")
async def bulk_delete(list_id: int, body: BulkDelete, request: Request, session: Session,
                      _: Any = Depends(require(P.contacts_delete))) -> Any:
    flt = service.ContactFilter.of(body.filter) if body.filter is not None else None
    n = await service.bulk_delete(session, list_id, body.ids, flt, default_country=_country(request))
    return {"deleted": n}


@contacts.delete("", response_model=Deleted, summary="Delete every contact of the list")
async def delete_all(list_id: int, session: Session, confirm: bool = Query(False, description="Must be true"),
                     _: Any = Depends(require(P.contacts_delete))) -> Any:
    return {"deleted": await service.delete_all(session, list_id, confirm=confirm)}


@contacts.get("/{contact_id}", response_model=ContactRead, summary="Get a contact")
async def get_contact(list_id: int, contact_id: int, session: Session,
                      _: Any = Depends(require(P.contacts_read))) -> Any:
    return await service.read_contact(session, await service.load_contact(session, list_id, contact_id))


@contacts.patch("/{contact_id}", response_model=ContactRead, summary="Change a contact")
async def update_contact(list_id: int, contact_id: int, body: ContactUpdate, request: Request, session: Session,
                         _: Any = Depends(require(P.contacts_write))) -> Any:
    contact = await service.update_contact(session, list_id, contact_id, body, default_country=_country(request))
    return await service.read_contact(session, contact)


@contacts.delete("/{contact_id}", status_code=204, summary="Delete a contact")
async def delete_contact(list_id: int, contact_id: int, session: Session,
                         _: Any = Depends(require(P.contacts_delete))) -> Response:
    await service.delete_contact(session, list_id, contact_id)
    return Response(status_code=204)


# --- imports --------------------------------------------------------------------------------------


def _job_read(job: ImportJob) -> ImportJobRead:
    read = ImportJobRead.model_validate(job)
    if job.errors_path:
        read.errors_url = f"/api/imports/{job.id}/errors"
    zones = (job.options or {}).get("zones") or {}
    read.uncertain_numbers, read.settled_by_place = zones.get("uncertain"), zones.get("settled")
    return read


def _options(mapping: str | None, country: str | None, tags: list[str] | None, skip_dnc: bool,
             dnc_list_id: int | None, allow_duplicates: bool, sheet: str | None) -> importer.ImportOptions:
    parsed: dict[str, Any] | None = None
    if mapping and mapping.strip():
        try:
            parsed = json.loads(mapping)
        except json.JSONDecodeError as err:
            raise ValidationFailed.field("mapping", f"not JSON: {err.msg}")
        if not isinstance(parsed, dict) or not all(isinstance(v, str | int | None) for v in parsed.values()):
            raise ValidationFailed.field("mapping", 'expected {"column header": "field name or id", ...}')
    clean_tags = list(dict.fromkeys(t.strip() for tag in tags or [] for t in tag.split(",") if t.strip()))
    return importer.ImportOptions(mapping=parsed, country=importer.check_country(country) if country else None,
                                  tags=clean_tags, skip_dnc=skip_dnc, dnc_list_id=dnc_list_id,
                                  allow_duplicates=allow_duplicates, sheet=sheet or None)


@imports.post("/api/lists/{list_id}/imports", response_model=ImportJobRead, status_code=202,
              summary="Import contacts from a CSV or XLSX file")
async def start_import(
    list_id: int, request: Request, session: Session,
    file: UploadFile = File(..., description="CSV (UTF-8 or Windows-1251; , ; or tab) or XLSX"),
    mapping: str | None = Form(None, description='JSON {"column header": "field name or id" or null to ignore}'),
    country: str | None = Form(None, description="Country of numbers without a code (default: settings)"),
    tags: list[str] | None = Form(None, description="Tags of the batch (repeat or comma-separate)"),
    skip_dnc: bool = Form(False, description="Leave out numbers of the blacklist (and of dnc_list_id)"),
    dnc_list_id: int | None = Form(None, description="Also leave out numbers of this DNC list"),
    allow_duplicates: bool = Form(False, description="Import numbers already in the list anyway"),
    sheet: str | None = Form(None, description="XLSX sheet (default: the first)"),
    _: Any = Depends(require(P.contacts_import)),
) -> Any:
    """Checks the file and the mapping, then imports in the background: poll ``GET /api/imports/{id}``."""
    options = _options(mapping, country, tags, skip_dnc, dnc_list_id, allow_duplicates, sheet)
    settings = _settings(request)
    path = await save_upload(file, settings.import_dir / "uploads")
    try:
        job = await importer.start_import(session, request.app.state.sessionmaker, list_id, path,
                                          file.filename or path.name, options, settings=settings,
                                          actor=actor_of(session.sync_session))
    except BaseException:
        await asyncio.to_thread(path.unlink, missing_ok=True)
        raise
    return _job_read(job)


@imports.post("/api/lists/{list_id}/imports/preview", response_model=ImportPreview,
              summary="Read the start of a file for the import wizard")
async def preview_import(list_id: int, request: Request, session: Session, file: UploadFile = File(...),
                         sheet: str | None = Form(None), _: Any = Depends(require(P.contacts_import))) -> Any:
    path = await save_upload(file, _settings(request).import_dir / "uploads")
    try:
        return await importer.preview(session, list_id, path, file.filename or path.name, sheet=sheet,
                                      settings=_settings(request))
    finally:
        await asyncio.to_thread(path.unlink, missing_ok=True)


@imports.get("/api/lists/{list_id}/imports", response_model=Page[ImportJobRead], summary="Import jobs of a list")
async def list_imports(list_id: int, session: Session, params: ListParams = Depends(list_params),
                       _: Any = Depends(require(P.contacts_import))) -> Any:
    from sqlalchemy import func

    stmt = select(ImportJob).where(ImportJob.list_id == list_id)
    total = int(await session.scalar(select(func.count()).select_from(stmt.subquery())) or 0)
    jobs = (await session.scalars(stmt.order_by(ImportJob.id.desc()).limit(params.per_page)
                                  .offset((params.page - 1) * params.per_page))).all()
    return {"items": [_job_read(j) for j in jobs], "total": total, "page": params.page, "per_page": params.per_page}


@imports.get("/api/imports/{job_id}", response_model=ImportJobRead, summary="Progress and result of an import")
async def get_import(job_id: int, session: Session, _: Any = Depends(require(P.contacts_import))) -> Any:
    return _job_read(await load(session, ImportJob, job_id, "import job"))


@imports.get("/api/imports/{job_id}/errors", summary="The rejected rows of an import as CSV",
             response_class=FileResponse)
async def import_errors(job_id: int, request: Request, session: Session,
                        _: Any = Depends(require(P.contacts_import))) -> Any:
    job = await load(session, ImportJob, job_id, "import job")
    if not job.errors_path or not await asyncio.to_thread(Path(job.errors_path).is_file):
        raise NotFound(f"import job {job_id} has no error report")
    lang = i18n.api_language(request)
    return StreamingResponse(translated_report(Path(job.errors_path), lang), media_type="text/csv; charset=utf-8",
                             headers=attachment(f"import-{job_id}-errors.csv", "csv"))


async def translated_report(path: Path, lang: str) -> AsyncIterator[bytes]:
    """The stored error report (written in English) with its header and reasons in ``lang``: the same CSV
    (UTF-8 with BOM, ``;``), read and written in parts so memory does not grow with it."""
    import csv
    import io

    from dialer.api.problems import translate_reason

    header = [i18n.translate(lang, f"report.{name}") for name in ERROR_HEADERS]

    def read_part(reader: Iterator[list[str]], size: int = 5000) -> list[list[str]]:
        part: list[list[str]] = []
        for row in reader:
            if len(row) == len(ERROR_HEADERS):
                row[-1] = translate_reason(lang, row[-1])
            part.append(row)
            if len(part) >= size:
                break
        return part

    with await asyncio.to_thread(path.open, encoding="utf-8-sig", newline="") as stream:
        reader = csv.reader(stream, delimiter=";")
        await asyncio.to_thread(next, reader, None)  # the stored header
        buffer = io.StringIO()
        writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
        writer.writerow(header)
        yield BOM + buffer.getvalue().encode("utf-8")
        while part := await asyncio.to_thread(read_part, reader):
            buffer.seek(0)
            buffer.truncate()
            writer.writerows(part)
            yield buffer.getvalue().encode("utf-8")


routers = [crud_router(fields), crud_router(lists), extra, contacts, imports]
