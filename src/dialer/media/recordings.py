"""Recordings from rtpengine's spool to encrypted files and ``recordings`` rows; retention (docs/recordings.md).

**The spool contract** (the rtpengine side, ``dialer.media.rtpengine``): when a recorded call ends, its capture
appears atomically as ``<recordings_dir>/spool/<name>.pcap`` and a sidecar ``<name>.json`` is written *last* (temp
file + rename)::

    {"call_id": "<attempts.call_id>", "started_at": "…Z", "ended_at": "…Z",
     "customer": {"host": "…", "port": 40000, "relay_host": "…", "relay_port": 30000},
     "dialer": {"host": "…", "port": 20002, "relay_host": "…", "relay_port": 30010}, …}

(the exact meaning of the addresses: :mod:`dialer.media.rtpengine`'s docstring). A sidecar therefore means its
capture is complete. :class:`RecordingWorker` takes each one (one worker at a time per
database: a PostgreSQL advisory lock), converts the capture (:mod:`dialer.media.pcap`: stereo WAV → Ogg Opus or MP3
with ffmpeg), encrypts the compressed file (:mod:`dialer.media.recording_crypto`), stores it under
``<yyyy>/<mm>/<dd>/`` of the call's start, inserts the row and only then deletes the capture and, last, the sidecar.

A call may leave several captures (recording stopped and started again by an operator's ``record_override``, a
transfer; the anchor spools them as ``<name>``, ``<name>-2`` …): each becomes a recording of its own, listed in order.

Crash safety: the stored file's name is derived from the call id and the capture's SHA-256, so a re-run after a
crash before the row was committed overwrites the same file instead of leaving an orphan; the row is unique on that
``storage_key``, so a re-run after the commit finds it and only finishes deleting the spool files (before deleting
the capture the worker writes the key into the sidecar, which goes last). An unexpected error is kept to its
capture: retried at the next passes, then moved to ``spool/failed/`` (``media_recording_max_tries``). A capture
that cannot be converted is moved with its sidecar to ``spool/failed/`` beside a ``<name>.reason.txt``, logged,
and counted by ``GET /api/recordings/spool``.

Retention: :meth:`RecordingWorker.retention_pass` deletes the files and then the rows of recordings whose
``expires_at`` (the call's start + the campaign's ``recording_retention_days`` when it was stored) has passed; the
rows' deletion is in the audit log as the system's.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import logging
import multiprocessing
import os
import shutil
import tempfile
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dialer.audit import recorder as audit
from dialer.config import Settings
from dialer.core.clock import Clock, SystemClock
from dialer.media import pcap
from dialer.media.recording_crypto import Keyring, Readable, encrypt, load_keyring
from dialer.media.recording_settings import RecordingSettings
from dialer.models import Attempt, AuditAction, Campaign, Recording

log = logging.getLogger(__name__)

#: The advisory lock that lets one worker at a time take the spool (any value unique in the product).
SPOOL_LOCK = 0x5245_4331
FAILED = "failed"
#: The sidecar's field the worker adds before deleting a stored capture (see :meth:`RecordingWorker._clean`).
STORED_KEY = "dialer_stored_key"


class RecordingStorage(Protocol):
    """Where encrypted recordings are kept, by key (``2026/12/08/<name>.ogg.enc``). Methods block: call them in a
    thread. Implementations: :class:`LocalStorage` (a directory) and :class:`dialer.media.recording_s3.S3Storage`
    (an S3-compatible bucket); :func:`make_storage` picks one from the settings."""

    def put(self, key: str, src: Path) -> None:
        """Store ``src`` under ``key`` atomically, replacing what was there."""
        ...

    def open(self, key: str) -> Readable:
        """A seekable binary stream of the stored file; FileNotFoundError when there is none."""
        ...

    def delete(self, key: str) -> None:
        """Remove the file; nothing when it is already gone."""
        ...


class LocalStorage:
    """Recordings as files under a directory (the data directory's ``recordings`` by default)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise ValueError(f"storage key {key!r} leaves the recordings directory")
        return path

    def put(self, key: str, src: Path) -> None:
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=target.parent, prefix=".put-")
        try:
            with os.fdopen(fd, "wb") as out, src.open("rb") as data:
                shutil.copyfileobj(data, out)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(temp, 0o600)
            os.replace(temp, target)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
        _fsync_dir(target.parent)

    def open(self, key: str) -> Readable:
        return self.path(key).open("rb")

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)


def make_storage(settings: Settings, rs: RecordingSettings) -> RecordingStorage:
    """The storage ``DIALER_MEDIA_RECORDING_STORAGE`` names: ``local`` (the recordings directory) or ``s3``."""
    if rs.media_recording_storage == "s3":
        from dialer.media.recording_s3 import S3Storage

        return S3Storage(rs.media_s3_endpoint, rs.media_s3_bucket, access_key=rs.media_s3_access_key,
                         secret_key=rs.media_s3_secret_key, region=rs.media_s3_region, prefix=rs.media_s3_prefix)
    return LocalStorage(rs.recordings_dir(settings))


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclasses.dataclass(frozen=True)
class Sidecar:
    call_id: str
    started_at: datetime
    ended_at: datetime
    #: Each party's own media address (None when rtpengine never learnt it) and rtpengine's address facing it.
    customer: pcap.Endpoint | None
    dialer: pcap.Endpoint | None
    customer_relay: pcap.Endpoint | None = None
    dialer_relay: pcap.Endpoint | None = None
    #: Set by the worker just before it deletes the stored capture: the storage key it was stored under (the key
    #: derives from the capture's content, which is gone once a crash stops the cleanup between the two files).
    stored_key: str | None = None


def _when(value: Any, field: str) -> datetime:
    if not isinstance(value, str):
        raise pcap.ConversionError(f"sidecar: {field} must be an ISO-8601 time")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise pcap.ConversionError(f"sidecar: {field} {value!r} is not an ISO-8601 time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _address(host: Any, port: Any, field: str) -> pcap.Endpoint | None:
    if host is None:
        return None
    if not isinstance(host, str) or not host:
        raise pcap.ConversionError(f"sidecar: {field} host must be an address or null")
    port = port or 0
    if not isinstance(port, int) or not 0 <= port <= 65535:
        raise pcap.ConversionError(f"sidecar: {field} port must be a port number")
    return host, port


def _party(value: Any, field: str) -> tuple[pcap.Endpoint | None, pcap.Endpoint | None]:
    if not isinstance(value, dict):
        raise pcap.ConversionError(f'sidecar: {field} must be {{"host": ..., "port": ..., "relay_host": ..., '
                                   '"relay_port": ...}')
    return (_address(value.get("host"), value.get("port"), field),
            _address(value.get("relay_host"), value.get("relay_port"), f"{field} relay"))


def read_sidecar(path: Path) -> Sidecar:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise pcap.ConversionError(f"sidecar {path.name} is not readable JSON: {err}") from None
    if not isinstance(data, dict):
        raise pcap.ConversionError("sidecar: a JSON object is expected")
    call_id = data.get("call_id")
    if not isinstance(call_id, str) or not call_id.strip() or len(call_id) > 200:
        raise pcap.ConversionError("sidecar: call_id must be a non-empty string of at most 200 characters")
    customer, customer_relay = _party(data.get("customer"), "customer")
    dialer, dialer_relay = _party(data.get("dialer"), "dialer")
    if (customer is None and customer_relay is None) or (dialer is None and dialer_relay is None):
        raise pcap.ConversionError("sidecar: each party needs its address or rtpengine's address facing it")
    stored_key = data.get(STORED_KEY)
    return Sidecar(call_id, _when(data.get("started_at"), "started_at"), _when(data.get("ended_at"), "ended_at"),
                   customer, dialer, customer_relay, dialer_relay,
                   stored_key if isinstance(stored_key, str) and stored_key else None)


def storage_key(call_id: str, started_at: datetime, fmt: str, capture_sha256: str) -> str:
    """The stored file's name: the call's UTC date and a digest of its call id and of the capture's content — the
    same on every re-run for one capture, different for each capture (part) of a call. Unique in ``recordings``."""
    day = started_at.astimezone(UTC)
    name = hashlib.sha256(f"{call_id}\n{capture_sha256}".encode()).hexdigest()[:32]
    return f"{day:%Y/%m/%d}/{name}{pcap.FORMATS[fmt][1]}.enc"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as data:
        for block in iter(lambda: data.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def spool_order(sidecar: Path) -> tuple[str, int, str]:
    """The anchor spools a call's later captures as ``<name>-2``, ``<name>-3`` …: taken in that order (a plain sort
    would put ``<name>-10`` before ``<name>-2``, and ``<name>-2.json`` before ``<name>.json``)."""
    stem = sidecar.stem
    base, dash, number = stem.rpartition("-")
    if dash and number.isdigit():
        return base, int(number), stem
    return stem, 1, stem


#: Errors of the database connection: the pass stops (retried next round) without counting against the capture.
_TRANSIENT = (OperationalError, InterfaceError)


@dataclasses.dataclass(frozen=True)
class Converted:
    """What a conversion made: the encrypted file (in the work directory) and the row's figures."""

    encrypted: Path
    duration_ms: int
    audio_bytes: int
    size_bytes: int
    sha256: str


def convert_and_encrypt(capture: Path, sidecar: Sidecar, workdir: Path, keyring: Keyring,
                        rs: RecordingSettings) -> Converted:
    """Blocking: capture → WAV → compressed → encrypted, all inside ``workdir``."""
    audio = pcap.convert_pcap(capture, sidecar.customer, sidecar.dialer, max_s=rs.media_recording_max_s,
                              customer_relay=sidecar.customer_relay, dialer_relay=sidecar.dialer_relay)
    wav = workdir / "call.wav"
    pcap.write_wav(wav, audio)
    compressed = workdir / f"call{pcap.FORMATS[rs.media_recording_format][1]}"
    pcap.encode(wav, compressed, rs.media_recording_format, rs.media_recording_bitrate_kbps)
    wav.unlink()
    data = compressed.read_bytes()
    encrypted = workdir / "call.enc"
    with compressed.open("rb") as src, encrypted.open("wb") as out:
        size = encrypt(src, len(data), out, keyring.current)
    return Converted(encrypted, round(audio.duration_s * 1000), len(data), size, hashlib.sha256(data).hexdigest())


@dataclasses.dataclass
class PassResult:
    stored: list[str] = dataclasses.field(default_factory=list)
    failed: list[str] = dataclasses.field(default_factory=list)
    #: Sidecars left for a later pass (the call's attempt is not written yet).
    waiting: list[str] = dataclasses.field(default_factory=list)
    #: Already stored by an earlier run that stopped before cleaning up the spool.
    finished: list[str] = dataclasses.field(default_factory=list)
    #: Failed with an unexpected error, tried again at the next pass (up to ``media_recording_max_tries``).
    retrying: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class FailedCapture:
    name: str
    reason: str
    failed_at: datetime


def spool_dir(root: Path) -> Path:
    return root / "spool"


def failed_captures(root: Path) -> list[FailedCapture]:
    """Captures moved to ``spool/failed/``, newest first, with the reason each was refused."""
    folder = spool_dir(root) / FAILED
    found: list[FailedCapture] = []
    if not folder.is_dir():
        return found
    for reason in folder.glob("*.reason.txt"):
        try:
            found.append(FailedCapture(reason.name.removesuffix(".reason.txt"),
                                       reason.read_text(encoding="utf-8").strip(),
                                       datetime.fromtimestamp(reason.stat().st_mtime, UTC)))
        except OSError:
            continue
    return sorted(found, key=lambda f: f.failed_at, reverse=True)


def pending_captures(root: Path) -> int:
    folder = spool_dir(root)
    return sum(1 for _ in folder.glob("*.json")) if folder.is_dir() else 0


class RecordingWorker:
    """Takes rtpengine's spooled captures into storage and enforces retention (see the module's docstring).

    ``step`` is a hook for the crash-safety tests: called with the name of each stage (``"stored"``: the file is
    in storage; ``"committed"``: the row is; ``"capture_deleted"``) — raising there stops the pass as a crash would.
    """

    def __init__(self, maker: async_sessionmaker[AsyncSession], settings: Settings, rs: RecordingSettings, *,
                 clock: Clock | None = None, storage: RecordingStorage | None = None,
                 keyring: Keyring | None = None) -> None:
        self.maker = maker
        self.settings = settings
        self.rs = rs
        self.root = rs.recordings_dir(settings)
        self.clock = clock or SystemClock()
        self.storage: RecordingStorage = storage or make_storage(settings, rs)
        self._keyring = keyring
        self._pool: ProcessPoolExecutor | None = None
        #: Unexpected failures so far per spooled capture (by name), see :meth:`_take_guarded`.
        self._tries: dict[str, int] = {}
        self.step: Any = None

    @property
    def keyring(self) -> Keyring:
        if self._keyring is None:
            self._keyring = load_keyring(self.rs.media_recording_key, self.rs.media_recording_old_keys,
                                         self.settings.data_dir)
        return self._keyring

    def close(self) -> None:
        """End the conversion child process, if one was started, at once: a conversion under way is killed (its
        capture stays in the spool, converted again at the next start), so a shutdown never waits for ffmpeg."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        # the executor's own processes (a private attribute, but the only handle on them: shutdown() cannot stop a
        # running task); ffmpeg, the child's child, dies of its closed pipes or its timeout
        processes = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            if process.is_alive():
                process.kill()
        for process in processes:
            process.join(timeout=10)

    async def _convert(self, capture: Path, sidecar: Sidecar, workdir: Path, keyring: Keyring) -> Converted:
        if not self.rs.media_recording_convert_in_child:
            return await asyncio.to_thread(convert_and_encrypt, capture, sidecar, workdir, keyring, self.rs)
        if self._pool is None:
            # spawned, not forked: the API process has threads and an event loop a fork would copy half of
            self._pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_lower_priority, initargs=(self.rs.media_recording_nice,))
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._pool, convert_and_encrypt, capture, sidecar, workdir, keyring,
                                              self.rs)
        except BrokenProcessPool:
            # the child died (killed, out of memory): a new one is started for the next capture
            await asyncio.to_thread(self.close)
            raise

    def _at(self, stage: str) -> None:
        if self.step is not None:
            self.step(stage)

    async def run(self) -> None:
        """Forever: a pass over the spool every ``media_spool_poll_s``, retention daily at ``media_retention_hour``
        (UTC). Errors are logged and retried next round."""
        next_retention = _next_hour(self.clock.utcnow(), self.rs.media_retention_hour)
        try:
            while True:
                try:
                    await self.run_once()
                except Exception:
                    log.exception("recordings: a pass over the spool failed")
                if self.clock.utcnow() >= next_retention:
                    try:
                        await self.retention_pass()
                        next_retention = _next_hour(self.clock.utcnow(), self.rs.media_retention_hour)
                    except Exception:
                        log.exception("recordings: the retention job failed")
                await self.clock.sleep(self.rs.media_spool_poll_s)
        finally:
            await asyncio.to_thread(self.close)

    async def run_once(self) -> PassResult:
        """One pass over the spool (nothing when another worker holds the spool)."""
        result = PassResult()
        spool = spool_dir(self.root)
        if not spool.is_dir():
            return result
        sidecars = sorted(spool.glob("*.json"), key=spool_order)
        if not sidecars:
            return result
        async with self.maker() as lock_session:
            if not await lock_session.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": SPOOL_LOCK}):
                return result
            try:
                for sidecar in sidecars:
                    await self._take_guarded(sidecar, result)
            finally:
                await lock_session.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": SPOOL_LOCK})
                await lock_session.commit()
        return result

    async def _take_guarded(self, sidecar_path: Path, result: PassResult) -> None:
        """:meth:`_take`, with an unexpected error kept to this capture: logged, retried at the next passes, and
        after ``media_recording_max_tries`` moved to ``spool/failed/`` with the error — one bad capture never stops
        the others. A lost database connection stops the pass instead (nothing is wrong with the capture)."""
        name = sidecar_path.stem
        try:
            await self._take(sidecar_path, result)
        except _TRANSIENT:
            raise
        except Exception as err:
            tries = self._tries.get(name, 0) + 1
            reason = f"{type(err).__name__}: {err}".rstrip(": ")
            if tries < self.rs.media_recording_max_tries:
                self._tries[name] = tries
                log.exception("recordings: capture %s failed (try %d of %d); retried at the next pass", name, tries,
                              self.rs.media_recording_max_tries)
                result.retrying.append(name)
                return
            self._tries.pop(name, None)
            log.exception("recordings: capture %s failed %d times", name, tries)
            await asyncio.to_thread(self._fail, name, f"failed {tries} times, last: {reason}")
            result.failed.append(name)
        else:
            self._tries.pop(name, None)

    async def _take(self, sidecar_path: Path, result: PassResult) -> None:
        name = sidecar_path.stem
        capture = sidecar_path.with_suffix(".pcap")
        try:
            sidecar = read_sidecar(sidecar_path)
        except pcap.ConversionError as err:
            await asyncio.to_thread(self._fail, name, str(err))
            result.failed.append(name)
            return
        if not capture.exists():
            if sidecar.stored_key is not None:
                async with self.maker() as session:
                    stored = await session.scalar(select(Recording.id).where(
                        Recording.storage_key == sidecar.stored_key))
                if stored is not None:  # stored; an earlier run stopped between deleting the capture and the sidecar
                    await asyncio.to_thread(self._clean, capture, sidecar_path)
                    result.finished.append(name)
                    return
            await asyncio.to_thread(self._fail, name, f"the capture {capture.name} is missing beside its sidecar")
            result.failed.append(name)
            return
        key = storage_key(sidecar.call_id, sidecar.started_at, self.rs.media_recording_format,
                          await asyncio.to_thread(file_sha256, capture))
        async with self.maker() as session:
            stored = await session.scalar(select(Recording.id).where(Recording.storage_key == key))
            attempt = (await session.execute(
                select(Attempt.id, Attempt.campaign_id).where(Attempt.call_id == sidecar.call_id)
                .order_by(Attempt.id.desc()).limit(1))).first()
            retention = None if attempt is None else await session.scalar(
                select(Campaign.recording_retention_days).where(Campaign.id == attempt.campaign_id))
        if stored is not None:
            await asyncio.to_thread(self._clean, capture, sidecar_path, key)
            result.finished.append(name)
            return
        if attempt is None and self.clock.utcnow() - sidecar.ended_at < timedelta(seconds=self.rs.media_attempt_wait_s):
            result.waiting.append(name)
            return
        keyring = self.keyring
        with tempfile.TemporaryDirectory(dir=spool_dir(self.root), prefix=".work-") as work:
            try:
                converted = await self._convert(capture, sidecar, Path(work), keyring)
            except pcap.ConversionError as err:
                await asyncio.to_thread(self._fail, name, str(err))
                result.failed.append(name)
                return
            await asyncio.to_thread(self.storage.put, key, converted.encrypted)
        self._at("stored")
        if attempt is None:
            # no campaign to take the retention from: the installation's default for such recordings
            retention = self.rs.media_recording_orphan_retention_days or None
        expires = None if retention is None else sidecar.started_at + timedelta(days=retention)
        async with self.maker() as session, session.begin():
            row_id = await session.scalar(insert(Recording).values(
                call_id=sidecar.call_id, attempt_id=attempt.id if attempt else None,
                campaign_id=attempt.campaign_id if attempt else None, started_at=sidecar.started_at,
                ended_at=sidecar.ended_at, duration_ms=converted.duration_ms, size_bytes=converted.size_bytes,
                audio_bytes=converted.audio_bytes, channels=2, format=self.rs.media_recording_format,
                storage_key=key, key_id=keyring.current_id, sha256=converted.sha256,
                expires_at=expires).on_conflict_do_nothing(index_elements=["storage_key"]).returning(Recording.id))
            if row_id is not None:
                # the ORM hook does not see a Core insert (needed for ON CONFLICT): audited here, as the system
                await audit.log(session, AuditAction.created, "recordings", row_id, event_label="recording stored",
                                changes={k: {"old": None, "new": v} for k, v in {
                                    "call_id": sidecar.call_id, "attempt_id": attempt.id if attempt else None,
                                    "storage_key": key, "key_id": keyring.current_id,
                                    "duration_ms": converted.duration_ms,
                                    "expires_at": expires.isoformat() if expires else None}.items()})
        self._at("committed")
        await asyncio.to_thread(self._clean, capture, sidecar_path, key, step=self._at)
        result.stored.append(name)
        log.info("recordings: stored call %s (%d ms, %d bytes) as %s", sidecar.call_id, converted.duration_ms,
                 converted.size_bytes, key)

    @staticmethod
    def _clean(capture: Path, sidecar: Path, key: str | None = None, step: Any = None) -> None:
        """The capture first, the sidecar last. The sidecar first gets the storage key (written atomically): a
        sidecar without its capture but with a stored key means "stored, not yet cleaned"."""
        if key is not None and capture.exists():
            data = json.loads(sidecar.read_text(encoding="utf-8"))
            data[STORED_KEY] = key
            temporary = sidecar.with_name(f".{sidecar.name}.tmp")
            with temporary.open("w", encoding="utf-8") as out:
                out.write(json.dumps(data))
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, sidecar)
        capture.unlink(missing_ok=True)
        if step is not None:
            step("capture_deleted")
        sidecar.unlink(missing_ok=True)

    def _fail(self, name: str, reason: str) -> None:
        spool = spool_dir(self.root)
        folder = spool / FAILED
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{name}.reason.txt").write_text(reason + "\n", encoding="utf-8")
        for suffix in (".pcap", ".json"):
            source = spool / f"{name}{suffix}"
            if source.exists():
                os.replace(source, folder / source.name)
        log.error("recordings: capture %s moved to spool/failed: %s", name, reason)

    async def retention_pass(self, *, batch: int = 500) -> int:
        """Delete recordings whose ``expires_at`` has passed: each file first, then its row (audited as the
        system); a crash between leaves a row whose file is gone, deleted by the next pass. Returns the count."""
        now = self.clock.utcnow()
        removed = 0
        while True:
            async with self.maker() as session, session.begin():
                rows = list((await session.scalars(
                    select(Recording).where(Recording.expires_at <= now).order_by(Recording.expires_at)
                    .limit(batch).with_for_update(skip_locked=True))).all())
                if not rows:
                    return removed
                for row in rows:
                    await asyncio.to_thread(self.storage.delete, row.storage_key)
                    await session.delete(row)
                removed += len(rows)
            if len(rows) < batch:
                return removed


def _lower_priority(nice: int) -> None:
    os.nice(nice)


def _next_hour(now: datetime, hour: int) -> datetime:
    at = now.replace(hour=hour, minute=0, second=0, microsecond=0)
    return at if at > now else at + timedelta(days=1)


async def run_in_app(app: Any) -> None:
    """The worker of the API process (``dialer run``): started by ``create_app``'s lifespan, cancelled with it. A
    configuration it cannot work with (a bad key or directory setting) is logged and leaves the API running."""
    from dialer.media.recording_settings import get_recording_settings

    try:
        rs = getattr(app.state, "recording_settings", None) or get_recording_settings()
        if not rs.media_recording_worker:
            return
        worker = RecordingWorker(app.state.sessionmaker, app.state.settings, rs)
    except Exception:
        log.exception("recordings: the worker cannot start; recorded calls stay in the spool")
        return
    await worker.run()
