"""Time zones, phone codes (prefixes and ranges), number lookup and the numbering registry import."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from dialer.api.crud import Resource, crud_router, load
from dialer.api.deps import Session, require
from dialer.auth.permissions import P
from dialer.contact.importer import SPOOL_OPTION
from dialer.core.tasks import after_commit
from dialer.exceptions import ValidationFailed
from dialer.models import ImportJob, PhoneCode, TimeZone
from dialer.models.enums import ImportStatus
from dialer.phone.normalize import InvalidPhone, describe, to_e164
from dialer.phone.registry import RegistryRejected
from dialer.tabular import UploadLimits
from dialer.timezone import service
from dialer.timezone.codes import WIDTH, number_range, prefix_range
from dialer.timezone.schemas import (
    BundledLoad,
    NumberingJob,
    PhoneCodeCreate,
    PhoneCodeRead,
    PhoneCodeUpdate,
    PhoneLookupRead,
    TimeZoneCreate,
    TimeZoneRead,
    TimeZoneUpdate,
    ZoneCoverage,
)
from dialer.uploads import save_upload
from dialer.web import i18n


def _offset(tz: str) -> str:
    delta = datetime.now(UTC).astimezone(ZoneInfo(tz)).utcoffset()
    minutes = int(delta.total_seconds() // 60) if delta else 0
    sign = "+" if minutes >= 0 else "-"
    return f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


async def _zone_before_save(session: AsyncSession, data: dict[str, Any]) -> dict[str, Any]:
    if data.get("tz") is not None:
        service.check_zone(data["tz"])
    return data


async def _zone_before_update(session: AsyncSession, obj: TimeZone, data: dict[str, Any]) -> dict[str, Any]:
    return await _zone_before_save(session, data)


async def _zone_read_extra(session: AsyncSession, obj: TimeZone) -> dict[str, Any]:
    return {"utc_offset": _offset(obj.tz), "phone_codes": await service.count_codes(session, obj.id)}


zones = Resource(
    model=TimeZone, path="time-zones", tag="time zones", read_schema=TimeZoneRead, create_schema=TimeZoneCreate,
    update_schema=TimeZoneUpdate, read_perm=P.timezones_read, write_perm=P.timezones_write,
    search=("name", "tz", "description"), sort=("id", "name", "tz"),
    before_create=_zone_before_save, before_update=_zone_before_update, read_extra=_zone_read_extra,
)


def _digits_len(value: str) -> int:
    return len(value.lstrip("+").replace(" ", "").replace("-", ""))


def _code_columns(data: dict[str, Any], current: PhoneCode | None = None) -> dict[str, Any]:
    """Translate prefix / range text of the API into the stored keys; validate the zone."""
    out = {k: v for k, v in data.items() if k not in ("prefix", "range_from", "range_to")}
    try:
        if data.get("prefix"):
            out["prefix"] = "+" + data["prefix"].lstrip("+")
            out["range_from"], out["range_to"] = prefix_range(data["prefix"])
        elif data.get("range_from") is not None or data.get("range_to") is not None:
            if data.get("range_from") is None or data.get("range_to") is None:
                raise ValueError("range_from and range_to go together")
            out["prefix"] = None
            out["range_from"], out["range_to"] = number_range(data["range_from"], data["range_to"])
            out["description"] = out.get("description") or ""
            out["_digits"] = _digits_len(data["range_from"])
    except ValueError as err:
        field = str(err).split(":")[0] if ":" in str(err) else "range_from"
        raise ValidationFailed.field(field, str(err))
    if out.get("tz"):
        service.check_zone(out["tz"])
    out.pop("_digits", None)
    return out


async def _codes_changed(session: AsyncSession, *args: Any) -> None:
    """Contacts created from now on in this process see the change at once."""
    from dialer.contact.phonelookup import invalidate

    invalidate()


async def _code_before_create(session: AsyncSession, data: dict[str, Any]) -> dict[str, Any]:
    if data.get("time_zone_id") is not None:
        await load(session, TimeZone, data["time_zone_id"], "time zone")
    return {**_code_columns(data), "source": "manual"}


async def _code_before_update(session: AsyncSession, obj: PhoneCode, data: dict[str, Any]) -> dict[str, Any]:
    if data.get("time_zone_id") is not None:
        await load(session, TimeZone, data["time_zone_id"], "time zone")
    return _code_columns(data, obj)


def _key_text(key: int, lo_key: int, hi_key: int) -> str:
    text = str(key).rjust(WIDTH, "0")
    # Show as many digits as distinguish the range: strip the padding both ends share.
    lo, hi = str(lo_key).rjust(WIDTH, "0"), str(hi_key).rjust(WIDTH, "9")
    n = WIDTH
    while n > 1 and lo[n - 1] == "0" and hi[n - 1] == "9":
        n -= 1
    return "+" + text[:max(n, 1)]


async def _code_read_extra(session: AsyncSession, obj: PhoneCode) -> dict[str, Any]:
    return {"range_from": _key_text(obj.range_from, obj.range_from, obj.range_to),
            "range_to": _key_text(obj.range_to, obj.range_from, obj.range_to)}


phone_codes = Resource(
    model=PhoneCode, path="phone-codes", tag="time zones", read_schema=PhoneCodeRead,
    create_schema=PhoneCodeCreate, update_schema=PhoneCodeUpdate, read_perm=P.timezones_read,
    write_perm=P.timezones_write, search=("prefix", "region", "carrier", "description", "tz"),
    sort=("id", "range_from", "region", "carrier", "source", "created_at"), filters=("time_zone_id", "source"),
    before_create=_code_before_create, before_update=_code_before_update, read_extra=_code_read_extra,
    after_save=_codes_changed, before_delete=_codes_changed,
)

extra = APIRouter(prefix="/api/phone-codes", tags=["time zones"])


@extra.get("/lookup", response_model=PhoneLookupRead,
           summary="Time zone(s), region and carrier of a number: own codes, then the registry, then phonenumbers")
async def lookup(request: Request, session: Session, number: str = Query(..., min_length=1),
                 _: Any = Depends(require(P.timezones_read))) -> Any:
    try:
        e164 = to_e164(number, request.app.state.settings.default_country)
    except InvalidPhone as err:
        raise ValidationFailed.field("number", str(err))
    # The same answer a contact gets (contact.phonelookup): the codes field by field, then phonenumbers.
    found = await service.lookup(session, e164)
    info = None if found and found.tz and found.region and found.carrier else describe(e164)
    region = (found.region if found else None) or (info.region if info else None)
    carrier = (found.carrier if found else None) or (info.carrier if info else None)
    if found and found.tz:
        return PhoneLookupRead(number=e164, timezones=[found.tz], tz_uncertain=False, region=region,
                               carrier=carrier, source="manual" if found.manual else "registry")
    assert info is not None
    zones = list(info.timezones)
    return PhoneLookupRead(number=e164, timezones=zones, tz_uncertain=len(zones) > 1, region=region,
                           carrier=carrier, source="phonenumbers")


#: How often a registry import's job says how far it got.
PROGRESS_INTERVAL_S = 0.5


async def _run_numbering(request_app: Any, job_id: int, path: Path, filename: str, skip_invalid: bool,
                         limits: UploadLimits | None = None) -> None:
    maker = request_app.state.sessionmaker
    seen = {"rows": 0, "total": 0}

    def advance(done: int, size: int, rows: int) -> None:
        seen["rows"], seen["total"] = rows, (rows * size // done if done else 0)

    async def report() -> None:
        """The job's progress (rows read, rows expected) every half second while the file is read."""
        written = (0, 0)
        while True:
            await asyncio.sleep(PROGRESS_INTERVAL_S)
            now = (seen["rows"], max(seen["total"], seen["rows"]))
            if now != written:
                async with maker() as session, session.begin():
                    await session.execute(update(ImportJob).where(ImportJob.id == job_id)
                                          .values(rows_done=now[0], rows_total=now[1]))
                written = now

    try:
        async with maker() as session, session.begin():
            job = await session.get(ImportJob, job_id)
            assert job is not None
            job.status = ImportStatus.running
        reporter = asyncio.create_task(report())
        try:
            result = await service.import_numbering(maker, path, source_name=filename, skip_invalid=skip_invalid,
                                                    progress=advance, limits=limits)
        finally:
            reporter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reporter
        from dialer.contact.phonelookup import invalidate

        invalidate()
        async with maker() as session, session.begin():
            job = await session.get(ImportJob, job_id)
            assert job is not None
            job.status, job.imported, job.rejected = ImportStatus.finished, result["ranges"], result["rejected"]
            job.rows_done = job.rows_total = result["ranges"] + result["rejected"]
            job.options = {**job.options, "result": result}
            job.finished_at = datetime.now(UTC)
    except Exception as err:  # the job records any failure for the user to see
        async with maker() as session, session.begin():
            job = await session.get(ImportJob, job_id)
            if job is not None:
                job.status, job.message, job.finished_at = ImportStatus.failed, str(err), datetime.now(UTC)
                if isinstance(err, RegistryRejected):  # the whole list of bad rows, not only the message's five
                    job.rejected = err.rejected
                    job.options = {**job.options, "result": {
                        "ranges": 0, "rejected": err.rejected,
                        "errors": [{"line": e.line, "column": e.column, "reason": e.reason, "text": e.text}
                                   for e in err.errors]}}
    finally:
        with contextlib.suppress(OSError):
            await asyncio.to_thread(path.unlink)


@extra.post("/import-numbering", response_model=NumberingJob, status_code=202,
            summary="Load the national numbering registry (ABC/DEF CSV); runs as a job")
async def import_numbering(request: Request, session: Session, file: UploadFile = File(...),
                           skip_invalid: bool = Form(False, description=(
                               "Load the good rows of a file that has bad ones (they are reported). By default "
                               "a file with any bad row is refused and changes nothing.")),
                           principal: Any = Depends(require(P.timezones_write))) -> Any:
    settings = request.app.state.settings
    spooled = await save_upload(file, settings.import_dir / "uploads")
    job = ImportJob(kind="numbering", filename=file.filename or "registry.csv", created_by=principal.user_id,
                    options={"skip_invalid": skip_invalid})
    session.add(job)
    await session.flush()
    job_id, filename = job.id, job.filename
    # The spooled file is named by its job, and the job names it: the start-up clean-up of another process
    # (contact.importer.remove_stale_uploads) leaves it alone while the job is queued or running.
    path = spooled.with_name(f"numbering-{job_id}{spooled.suffix}")
    await asyncio.to_thread(spooled.rename, path)
    job.options = {**job.options, SPOOL_OPTION: path.name}
    limits = UploadLimits.of(settings)
    after_commit(session, f"numbering import {job_id}",
                 lambda: _run_numbering(request.app, job_id, path, filename, skip_invalid, limits))
    await session.commit()
    return _job(job)


def _job(job: ImportJob) -> NumberingJob:
    return NumberingJob(id=job.id, status=job.status.value, filename=job.filename, rows_done=job.rows_done,
                        rows_total=job.rows_total,
                        imported=job.imported, rejected=job.rejected, message=job.message,
                        result=job.options.get("result", {}))


@extra.get("/import-numbering/{job_id}", response_model=NumberingJob, summary="Progress of a registry import")
async def numbering_job(job_id: int, session: Session, _: Any = Depends(require(P.timezones_read))) -> Any:
    job = await load(session, ImportJob, job_id, "import job")
    if job.kind != "numbering":
        raise ValidationFailed.field("job_id", f"import job {job_id} is not a numbering registry import")
    return _job(job)


def _coverage_message(lang: str, cov: dict[str, Any]) -> str:
    t = i18n.translator(lang)
    snap = cov["bundled"]
    parts = [t("zones.coverage.numbers", uncertain=cov["uncertain"], numbers=cov["numbers"])]
    if cov["phone_codes"]["registry"] == 0:
        parts.append(t("zones.coverage.empty", package=snap["package"], data_from=snap["data_from"],
                       data_to=snap["data_to"]))
    elif cov["phone_codes"]["bundled"]:
        parts.append(t("zones.coverage.bundled", package=snap["package"], version=snap["version"],
                       licence=snap["licence"], data_from=snap["data_from"], data_to=snap["data_to"]))
    parts.append(t("zones.coverage.hint"))
    return " ".join(parts)


@extra.get("/coverage", response_model=ZoneCoverage,
           summary="How many contacts' numbers are uncertain, and how to place them (phone codes by source)")
async def coverage(request: Request, session: Session, _: Any = Depends(require(P.timezones_read))) -> Any:
    cov = await service.coverage(session)
    return {**cov, "message": _coverage_message(i18n.api_language(request), cov)}


@extra.post("/load-bundled", response_model=BundledLoad,
            summary="Load the bundled Rossvyaz snapshot (ru-phone-parser) as the numbering registry, no download")
async def load_bundled(request: Request, _: Any = Depends(require(P.timezones_write))) -> Any:
    from dialer.contact.phonelookup import invalidate

    result = await service.load_bundled(request.app.state.sessionmaker)
    assert result is not None
    invalidate()
    snap = result["source"]
    message = i18n.translate(i18n.api_language(request), "zones.bundled.loaded", ranges=result["ranges"],
                             settled=result["settled"], package=snap["package"], version=snap["version"],
                             data_from=snap["data_from"], data_to=snap["data_to"])
    return {**result, "message": message}


routers = [crud_router(zones), extra, crud_router(phone_codes)]
