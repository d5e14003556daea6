"""HTTP endpoints of call recordings: search, one recording, playback (Range), download, links, the spool."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response, StreamingResponse

from dialer.api.crud import SORTABLE, ListParams, Page, apply_sort, list_params, paginate
from dialer.api.deps import Session, client_of, public, require
from dialer.auth.permissions import P
from dialer.auth.service import Principal
from dialer.exceptions import PermissionDenied
from dialer.media.recording_crypto import EncryptedFile
from dialer.models import Recording
from dialer.recordings import service
from dialer.recordings.schemas import LinkCreate, LinkRead, RecordingRead, SpoolState

router = APIRouter(prefix="/api/recordings", tags=["recordings"])
SORTABLE["/api/recordings"] = tuple(sorted(service.SORTABLE))  # the OpenAPI schema declares the sort columns
attempt_router = APIRouter(prefix="/api/attempts", tags=["recordings"])
_listen = Depends(require(P.recordings_listen))
_download = Depends(require(P.recordings_download))

_AUDIO = {"content": {"audio/ogg": {}, "audio/mpeg": {}},
          "description": "The audio (206 with Content-Range for a Range request)"}
_RANGE_DOC = ("Send `Range: bytes=first-last` (or `first-`, `-suffix`) for part of the file: 206 with `Content-Range`; "
              "a range beyond the end gets 416. The file is decrypted as it is sent.")


@router.get("", response_model=Page[RecordingRead], summary="Search recordings")
async def list_recordings(
    session: Session, params: ListParams = Depends(list_params),
    attempt_id: int | None = Query(None), campaign_id: int | None = Query(None),
    operator_id: int | None = Query(None, description="The operator of the call"),
    number: str | None = Query(None, description="The customer's number as dialled (E.164)"),
    call_id: str | None = Query(None),
    started_from: datetime | None = Query(None, description="Calls started at or after (ISO-8601)"),
    started_to: datetime | None = Query(None, description="Calls started before (ISO-8601)"),
    without_attempt: bool | None = Query(None, description="true: only recordings stored without their call "
                                                           "attempt (not found in time); false: only with one"),
    _: Any = _listen,
) -> Any:
    stmt = service.search(attempt_id=attempt_id, campaign_id=campaign_id, operator_id=operator_id, number=number,
                          call_id=call_id, started_from=started_from, started_to=started_to,
                          without_attempt=without_attempt)
    stmt = apply_sort(stmt, params.sort, service.SORTABLE, (Recording.started_at.desc(), Recording.id.desc()))
    rows, total = await paginate(session, stmt, params)
    return {"items": [service.as_read(r) for r in rows], "total": total, "page": params.page,
            "per_page": params.per_page}


@router.get("/spool", response_model=SpoolState, summary="Captures waiting and captures that failed to convert")
async def spool(request: Request, _: Any = _listen) -> Any:
    """Failed captures are kept in `spool/failed/` of the recordings directory with a `.reason.txt` each."""
    return service.spool_state(service.runtime(request.app))


@router.get("/{recording_id}", response_model=RecordingRead, summary="One recording")
async def get_recording(recording_id: int, session: Session, _: Any = _listen) -> Any:
    return service.as_read(await service.load(session, recording_id))


@attempt_router.get("/{attempt_id}/recordings", response_model=list[RecordingRead],
                    summary="Recordings of a call attempt, in order")
async def attempt_recordings(attempt_id: int, session: Session, _: Any = _listen) -> Any:
    """A call has several recordings (parts) when its recording stopped and started again (an operator's
    record_override, a transfer): in the order they were recorded."""
    rows = (await session.scalars(service.search(attempt_id=attempt_id).order_by(*service.PART_ORDER))).all()
    return [service.as_read(r) for r in rows]


async def _send(request: Request, audio: EncryptedFile, rec: Recording, *, attachment: bool) -> Response:
    size = audio.size
    try:
        wanted = service.parse_range(request.headers.get("range"), size)
    except service.RangeNotSatisfiable:
        audio.stream.close()
        return Response(status_code=416, headers={"Content-Range": f"bytes */{size}", "Accept-Ranges": "bytes"})
    first, last = wanted if wanted is not None else (0, size - 1)
    disposition = "attachment" if attachment else "inline"
    headers = {"Accept-Ranges": "bytes", "Content-Length": str(max(0, last - first + 1)),
               "ETag": f'"{rec.sha256}"', "Cache-Control": "private, max-age=0",
               "Content-Disposition": f'{disposition}; filename="{service.file_name(rec)}"'}
    if wanted is not None:
        headers["Content-Range"] = f"bytes {first}-{last}/{size}"
    body = service.chunks(audio, first, last) if size else service.chunks(audio, 0, 0)
    return StreamingResponse(body, status_code=206 if wanted is not None else 200,
                             media_type=service.media_type(rec), headers=headers)


@router.get("/{recording_id}/stream", response_class=StreamingResponse, responses={200: _AUDIO, 206: _AUDIO},
            summary="Play a recording (HTTP Range; the listen is logged)",
            description=f"For the player. {_RANGE_DOC} One listen entry per user and recording in 30 minutes goes "
                        "to the audit log.")
async def stream_recording(recording_id: int, request: Request, session: Session,
                           principal: Principal = _listen) -> Response:
    rec = await service.load(session, recording_id)
    rt = service.runtime(request.app)
    audio = await service.open_audio(rt, rec)
    await service.log_listen(session, rec, principal.user_id, via="player", now=rt.clock.utcnow())
    return await _send(request, audio, rec, attachment=False)


@router.get("/{recording_id}/download", response_class=StreamingResponse, responses={200: _AUDIO, 206: _AUDIO},
            summary="Download a recording (logged)")
async def download_recording(recording_id: int, request: Request, session: Session,
                             _: Any = _download) -> Response:
    rec = await service.load(session, recording_id)
    audio = await service.open_audio(service.runtime(request.app), rec)
    await service.log_download(session, rec)
    return await _send(request, audio, rec, attachment=True)


@router.post("/{recording_id}/links", response_model=LinkRead, status_code=201,
             summary="A time-limited link to a recording for an integration (logged)")
async def create_link(recording_id: int, request: Request, session: Session, body: LinkCreate | None = None,
                      principal: Principal = _download) -> Any:
    """The link plays the recording without a session or token until it expires (at most 24 hours; 003 §10.6
    p.6); it is signed with a key derived from the recordings' key. Creating it is in the audit log, and so is
    every listen through it."""
    rec = await service.load(session, recording_id)
    rt = service.runtime(request.app)
    if principal.user_id is None:
        raise PermissionDenied("links are made by users")
    return await service.create_link(session, rt, rec, principal.user_id, (body or LinkCreate()).ttl_s,
                                     rt.clock.utcnow())


_PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}


@router.get("/{recording_id}/shared", response_class=StreamingResponse,
            responses={200: _AUDIO, 206: _AUDIO,
                       403: {"description": "A wrong signature, or the link's creator may no longer download",
                             "content": _PROBLEM},
                       410: {"description": "The link expired", "content": _PROBLEM}},
            summary="Play a recording through a time-limited link (no session needed)")
@public
async def shared_recording(recording_id: int, request: Request, session: Session, expires: int = Query(...),
                           by: int = Query(..., description="The user who made the link"),
                           signature: str = Query(..., max_length=128)) -> Response:
    """The address `POST /api/recordings/{id}/links` returned. 403 for a wrong signature or when the link's creator
    is deactivated or no longer holds `recordings.download`, 410 once expired.
    Range requests work as on `/stream`; the listen is logged with the link's creator and the client's address."""
    rt = service.runtime(request.app)
    await service.check_link(session, rt, recording_id, expires, by, signature, rt.clock.utcnow())
    rec = await service.load(session, recording_id)
    audio = await service.open_audio(rt, rec)
    session.info["actor"] = service.link_actor(by, client_of(request))
    await service.log_listen(session, rec, by, via="link", now=rt.clock.utcnow(), extra={"link_expires": expires})
    return await _send(request, audio, rec, attachment=False)


routers = [router, attempt_router]
