"""Recordings: the search, reading a stored file by byte range, signed links and the listening log.

"Журнал прослушивания" (003 §10.1): every download and every link created is an audit entry; a listen is one entry
per user, recording and :data:`LISTEN_LOG_WINDOW` (a player fetches a file in many range requests while it plays and
seeks — one listen is not logged a hundred times, and listening again later is a new entry). A listen through a
shared link is logged with the link's creator and the address it came from.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import DateTime, Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from dialer.audit.recorder import Actor
from dialer.audit.recorder import log as audit_log
from dialer.auth.permissions import P
from dialer.auth.service import effective_permissions
from dialer.config import Settings
from dialer.core.clock import Clock, SystemClock
from dialer.exceptions import DialerError, NotFound, PermissionDenied
from dialer.media import pcap
from dialer.media.recording_crypto import DecryptionError, EncryptedFile, Keyring, RecordingKeyError, load_keyring
from dialer.media.recording_settings import RecordingSettings, get_recording_settings
from dialer.media.recordings import RecordingStorage, failed_captures, make_storage, pending_captures
from dialer.models import Attempt, AuditEntry, Recording, User
from dialer.models.enums import AuditAction

#: One listen entry per user and recording within this window.
LISTEN_LOG_WINDOW = timedelta(minutes=30)
OBJECT = "recordings"


class RecordingUnreadable(DialerError):
    status = 500
    title = "Recording unreadable"
    type_slug = "recording-unreadable"


class RecordingKeyUnavailable(DialerError):
    status = 503
    title = "Recordings key unavailable"
    type_slug = "recording-key-unavailable"


class LinkExpired(DialerError):
    status = 410
    title = "Link expired"
    type_slug = "link-expired"


class RangeNotSatisfiable(Exception):
    def __init__(self, size: int) -> None:
        super().__init__(f"the range is outside the recording's {size} bytes")
        self.size = size


@dataclasses.dataclass
class Runtime:
    """What the API needs of the recordings' configuration, made once per application."""

    settings: Settings
    rs: RecordingSettings
    storage: RecordingStorage
    #: Where "now" comes from (link expiry, the listening log's window): tests move a virtual clock.
    clock: Clock = dataclasses.field(default_factory=SystemClock)
    _keyring: Keyring | None = None

    @property
    def keyring(self) -> Keyring:
        """The keys, loaded once. Never generated here (only the worker makes a key, when it stores the first
        recording): a request — least of all an unauthenticated one through a link — must not create the key
        file. :class:`RecordingKeyUnavailable` (503) while there is none, or when the key setting is unusable."""
        if self._keyring is None:
            try:
                self._keyring = load_keyring(self.rs.media_recording_key, self.rs.media_recording_old_keys,
                                             self.settings.data_dir, generate=False)
            except RecordingKeyError as err:
                raise RecordingKeyUnavailable(str(err)) from None
        return self._keyring

    @property
    def root(self) -> Any:
        return self.rs.recordings_dir(self.settings)


def runtime(app: Any) -> Runtime:
    found = getattr(app.state, "recording_runtime", None)
    if isinstance(found, Runtime):
        return found
    rs = getattr(app.state, "recording_settings", None) or get_recording_settings()
    made = Runtime(app.state.settings, rs, make_storage(app.state.settings, rs))
    app.state.recording_runtime = made
    return made


# --- reading the rows -----------------------------------------------------------------------------------------------


async def load(session: AsyncSession, recording_id: int) -> Recording:
    found = await session.get(Recording, recording_id)
    if found is None:
        raise NotFound(f"recording {recording_id} not found")
    return found


def as_read(rec: Recording) -> dict[str, Any]:
    data = {c.key: getattr(rec, c.key) for c in Recording.__table__.columns if c.key != "storage_key"}
    data["stream_url"] = f"/api/recordings/{rec.id}/stream"
    data["download_url"] = f"/api/recordings/{rec.id}/download"
    return data


#: The parts of one call in the order they were recorded (equal starts: the earlier end first).
PART_ORDER = (Recording.started_at, Recording.ended_at, Recording.id)

SORTABLE = {"id": Recording.id, "started_at": Recording.started_at, "duration_ms": Recording.duration_ms,
            "created_at": Recording.created_at, "expires_at": Recording.expires_at}


def search(*, attempt_id: int | None = None, campaign_id: int | None = None, operator_id: int | None = None,
           number: str | None = None, call_id: str | None = None, started_from: datetime | None = None,
           started_to: datetime | None = None, without_attempt: bool | None = None) -> Select[Any]:
    """``without_attempt``: only the recordings stored without their call attempt (true) or only those with one
    (false) — a call the worker could not match within ``media_attempt_wait_s`` is found this way, or by its
    ``call_id`` and time."""
    stmt = select(Recording)
    if operator_id is not None or number:
        stmt = stmt.join(Attempt, Attempt.id == Recording.attempt_id)
    if attempt_id is not None:
        stmt = stmt.where(Recording.attempt_id == attempt_id)
    if campaign_id is not None:
        stmt = stmt.where(Recording.campaign_id == campaign_id)
    if operator_id is not None:
        stmt = stmt.where(Attempt.operator_id == operator_id)
    if number:
        stmt = stmt.where(Attempt.number == number)
    if call_id:
        stmt = stmt.where(Recording.call_id == call_id)
    if without_attempt is not None:
        stmt = stmt.where(Recording.attempt_id.is_(None) if without_attempt else Recording.attempt_id.is_not(None))
    if started_from is not None:
        stmt = stmt.where(Recording.started_at >= started_from)
    if started_to is not None:
        stmt = stmt.where(Recording.started_at < started_to)
    return stmt


def spool_state(rt: Runtime) -> dict[str, Any]:
    failed = failed_captures(rt.root)
    return {"pending": pending_captures(rt.root), "failed": len(failed),
            "failed_items": [dataclasses.asdict(f) for f in failed[:100]]}


# --- byte ranges ----------------------------------------------------------------------------------------------------

_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$")


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The first range of a ``Range: bytes=…`` header as ``(first, last)`` inclusive; None for no (or an
    unparsable, or a multi-range beyond its first) header — the whole file is then sent, as RFC 9110 allows.
    :class:`RangeNotSatisfiable` when it starts beyond the end."""
    if not header:
        return None
    match = _RANGE.match(header.split(",")[0]) if header.strip().lower().startswith("bytes") else None
    if match is None or (not match[1] and not match[2]):
        return None
    if not match[1]:  # the last N bytes
        suffix = int(match[2])
        if suffix == 0 or size == 0:
            raise RangeNotSatisfiable(size)
        return max(0, size - suffix), size - 1
    first = int(match[1])
    last = min(int(match[2]), size - 1) if match[2] else size - 1
    if first >= size or last < first:
        raise RangeNotSatisfiable(size)
    return first, last


def _open(rt: Runtime, rec: Recording) -> EncryptedFile:
    stream = rt.storage.open(rec.storage_key)
    try:
        return EncryptedFile(stream, rt.keyring)
    except BaseException:
        stream.close()
        raise


async def open_audio(rt: Runtime, rec: Recording) -> EncryptedFile:
    """The stored file opened for one answer (its size and header read once, its key checked before the answer
    starts); :class:`RecordingUnreadable` when the file is gone or its key is not configured. The caller hands it
    to :func:`chunks`, which closes it (or closes ``.stream`` itself)."""
    keyring = rt.keyring  # 503 before any storage request when there is no key
    try:
        return await asyncio.to_thread(lambda: EncryptedFile(rt.storage.open(rec.storage_key), keyring))
    except FileNotFoundError:
        raise RecordingUnreadable(f"the file of recording {rec.id} is missing from the recordings storage") from None
    except DecryptionError as err:
        raise RecordingUnreadable(f"recording {rec.id}: {err}") from None


async def chunks(audio: EncryptedFile, first: int, last: int) -> AsyncIterator[bytes]:
    """The decrypted bytes ``first`` … ``last`` of an :func:`open_audio` file, one encrypted chunk at a time in a
    thread; the file is closed at the end (or when the client went away). The header and size are read once per
    answer, and an S3 object is read in large ranges (``dialer.media.recording_s3``), not per chunk."""

    def piece(position: int) -> tuple[bytes, int]:
        chunk = audio.header.chunk
        end = min(last, (position // chunk + 1) * chunk - 1)
        return b"".join(audio.read_range(position, end)), end + 1

    try:
        position = first
        while position <= last:
            data, position = await asyncio.to_thread(piece, position)
            yield data
    finally:
        audio.stream.close()


def media_type(rec: Recording) -> str:
    return pcap.FORMATS.get(rec.format, ([], "", "application/octet-stream"))[2]


def file_name(rec: Recording) -> str:
    suffix = pcap.FORMATS.get(rec.format, ([], ".bin", ""))[1]
    who = f"attempt-{rec.attempt_id}" if rec.attempt_id else f"recording-{rec.id}"
    return f"{who}-{rec.started_at.astimezone(UTC):%Y%m%d-%H%M%S}{suffix}"


# --- the listening log ----------------------------------------------------------------------------------------------


async def log_listen(session: AsyncSession, rec: Recording, user_id: int | None, *, via: str, now: datetime,
                     extra: dict[str, Any] | None = None) -> bool:
    """Write "listen" unless this user already has one for this recording within :data:`LISTEN_LOG_WINDOW` (by
    the entry's own ``listened_at``: the time of the runtime's clock)."""
    recent = await session.scalar(
        select(AuditEntry.id).where(
            AuditEntry.object_type == OBJECT, AuditEntry.object_id == str(rec.id), AuditEntry.event == "listen",
            AuditEntry.changes["listened_at"].astext.cast(DateTime(timezone=True)) > now - LISTEN_LOG_WINDOW,
            AuditEntry.user_id.is_(None) if user_id is None else AuditEntry.user_id == user_id,
            AuditEntry.changes["via"].astext == via)
        .limit(1))
    if recent is not None:
        return False
    await audit_log(session, AuditAction.custom, OBJECT, rec.id, event_label="listen",
                    changes={"via": via, "call_id": rec.call_id, "attempt_id": rec.attempt_id,
                             "listened_at": now.isoformat(), **(extra or {})})
    return True


async def log_download(session: AsyncSession, rec: Recording) -> None:
    await audit_log(session, AuditAction.custom, OBJECT, rec.id, event_label="download",
                    changes={"call_id": rec.call_id, "attempt_id": rec.attempt_id, "sha256": rec.sha256})


# --- signed links ---------------------------------------------------------------------------------------------------


def _signature(secret: bytes, recording_id: int, expires: int, by: int) -> str:
    return hmac.new(secret, f"{recording_id}.{expires}.{by}".encode(), hashlib.sha256).hexdigest()


async def create_link(session: AsyncSession, rt: Runtime, rec: Recording, user_id: int, ttl_s: int,
                      now: datetime) -> dict[str, Any]:
    expires = int((now + timedelta(seconds=ttl_s)).timestamp())
    signature = _signature(rt.keyring.link_secret(), rec.id, expires, user_id)
    await audit_log(session, AuditAction.custom, OBJECT, rec.id, event_label="link",
                    changes={"call_id": rec.call_id, "attempt_id": rec.attempt_id,
                             "expires_at": datetime.fromtimestamp(expires, UTC).isoformat()})
    return {"url": f"/api/recordings/{rec.id}/shared?expires={expires}&by={user_id}&signature={signature}",
            "expires_at": datetime.fromtimestamp(expires, UTC)}


async def check_link(session: AsyncSession, rt: Runtime, recording_id: int, expires: int, by: int, signature: str,
                     now: datetime) -> None:
    """A link's signature (made with the current key: a rotated key ends the links made before), its expiry, and
    its creator: still active and still holding ``recordings.download`` (a deactivated user's links stop working).
    403 for any mismatch (compared as bytes: any text a client sends is a wrong signature, never an error), 410
    when expired. Without a key no link was ever signed: 403 as for any other wrong signature (the key is never
    generated here, and an anonymous caller learns nothing of the installation's files)."""
    try:
        secret = rt.keyring.link_secret()
    except RecordingKeyUnavailable:
        raise PermissionDenied("the link's signature does not match: ask for a new link") from None
    expected = _signature(secret, recording_id, expires, by).encode()
    if not hmac.compare_digest(expected, signature.strip().lower().encode("utf-8", "replace")):
        raise PermissionDenied("the link's signature does not match: ask for a new link")
    if expires <= now.timestamp():
        raise LinkExpired(f"the link expired at {datetime.fromtimestamp(expires, UTC).isoformat()}; "
                          "ask for a new one")
    creator = await session.get(User, by)
    if creator is None or not creator.is_active:
        raise PermissionDenied("the user who made the link is no longer active: ask for a new link")
    if P.recordings_download not in await effective_permissions(session, by):
        raise PermissionDenied("the user who made the link may no longer download recordings: ask for a new link")


def link_actor(by: int, client: str) -> Actor:
    return Actor(by, f"link:{by}", ("link",), client)
