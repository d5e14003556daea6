"""The recordings worker end to end: spool → converted, encrypted file + row; crash safety; failures; retention."""

from __future__ import annotations

import asyncio
import io
import stat
import subprocess
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from dialer.app import create_app
from dialer.config import Settings
from dialer.db import APP_ROLE, with_user
from dialer.media.pcap import RATE
from dialer.media.recording_crypto import EncryptedFile
from dialer.media.recording_settings import get_recording_settings
from dialer.media.recordings import spool_dir
from dialer.models import AuditEntry, Recording
from dialer.recordings.service import runtime
from tests.media.recording_fixtures import (
    EPOCH,
    campaign_and_attempt,
    dominant_hz,
    virtual_clock,
    worker_for,
    write_call,
)

START = datetime.fromtimestamp(EPOCH, UTC)


@pytest.fixture(autouse=True)
def no_background_worker(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The tests drive the worker themselves: the API process's own worker stays off."""
    monkeypatch.setenv("DIALER_MEDIA_RECORDING_WORKER", "false")
    get_recording_settings.cache_clear()
    yield
    get_recording_settings.cache_clear()


class Crash(BaseException):
    """The process dying at a step: not an error the worker handles (those it keeps to the capture)."""


async def _rows(app: FastAPI) -> list[Recording]:
    async with app.state.sessionmaker() as session:
        return list((await session.scalars(select(Recording))).all())


def _decoded(app: FastAPI, rec: Recording, tmp: Path) -> np.ndarray:
    """The stored file decrypted, probed and decoded by ffmpeg back to 8 kHz stereo samples."""
    rt = runtime(app)
    with closing(rt.storage.open(rec.storage_key)) as stream:
        audio = EncryptedFile(stream, rt.keyring).read_all()
    ogg = tmp / "out.ogg"
    ogg.write_bytes(audio)
    probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_name,channels",
                            "-of", "csv=p=0", str(ogg)], capture_output=True, text=True, check=True)
    assert probe.stdout.strip() == "opus,2"
    pcm = subprocess.run(["ffmpeg", "-v", "error", "-i", str(ogg), "-f", "s16le", "-ac", "2", "-ar", str(RATE), "-"],
                         capture_output=True, check=True).stdout
    return np.frombuffer(pcm, dtype="<i2").reshape(-1, 2)


async def test_spooled_call_becomes_an_encrypted_playable_recording(app: FastAPI, admin: httpx.AsyncClient,
                                                                    tmp_path: Path) -> None:
    campaign_id, attempt_id = await campaign_and_attempt(app, admin, "call-1@dialer", retention_days=30)
    # converted in the niced child process, as dialer run does
    worker = worker_for(app, clock=virtual_clock(START + timedelta(seconds=5)), child=True)
    write_call(spool_dir(worker.root), "call-1", call_id="call-1@dialer", seconds=2.0)
    try:
        result = await worker.run_once()
    finally:
        worker.close()
    assert result.stored == ["call-1"] and not result.failed
    [rec] = await _rows(app)
    assert (rec.attempt_id, rec.campaign_id, rec.channels, rec.format) == (attempt_id, campaign_id, 2, "opus")
    assert abs(rec.duration_ms - 2005) <= 5
    assert rec.expires_at == START + timedelta(days=30)
    assert rec.key_id == runtime(app).keyring.current_id
    assert rec.storage_key.startswith(f"{START:%Y/%m/%d}/") and rec.storage_key.endswith(".ogg.enc")
    stored = worker.root / rec.storage_key
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600 and stored.stat().st_size == rec.size_bytes
    assert b"OggS" not in stored.read_bytes()  # encrypted at rest
    assert stat.S_IMODE((app.state.settings.data_dir / "recording.key").stat().st_mode) == 0o600
    assert not list(spool_dir(worker.root).glob("call-1.*"))
    samples = _decoded(app, rec, tmp_path)
    middle = samples[RATE // 2:RATE + RATE // 2]
    assert dominant_hz(middle[:, 0]) == pytest.approx(440, abs=3)
    assert dominant_hz(middle[:, 1]) == pytest.approx(1000, abs=3)
    async with app.state.sessionmaker() as session:
        entry = (await session.scalars(select(AuditEntry).where(AuditEntry.object_type == "recordings"))).one()
    assert (entry.action, entry.event, entry.user_login, entry.object_id) == ("created", "recording stored",
                                                                             "system", str(rec.id))


@pytest.mark.parametrize("stage", ["stored", "committed", "capture_deleted"])
async def test_a_crash_at_any_step_loses_nothing_and_duplicates_nothing(app: FastAPI, admin: httpx.AsyncClient,
                                                                         stage: str) -> None:
    await campaign_and_attempt(app, admin, "call-2@dialer")
    worker = worker_for(app, clock=virtual_clock(START + timedelta(seconds=5)))
    write_call(spool_dir(worker.root), "call-2", call_id="call-2@dialer", seconds=1.0)

    def crash(at: str) -> None:
        if at == stage:
            raise Crash(at)

    worker.step = crash
    with pytest.raises(Crash):
        await worker.run_once()
    assert len(await _rows(app)) == (0 if stage == "stored" else 1)
    assert (spool_dir(worker.root) / "call-2.json").exists()  # the sidecar goes last
    again = worker_for(app, clock=virtual_clock(START + timedelta(seconds=6)))
    result = await again.run_once()
    assert result.stored or result.finished
    [rec] = await _rows(app)
    assert not list(spool_dir(worker.root).glob("call-2.*"))
    files = [p for p in worker.root.rglob("*.enc")]
    assert files == [worker.root / rec.storage_key]  # no orphan from the interrupted run
    with closing(runtime(app).storage.open(rec.storage_key)) as stream:
        assert EncryptedFile(io.BytesIO(stream.read()), runtime(app).keyring).size == rec.audio_bytes
    # the same call spooled again (rtpengine retried): still one row
    write_call(spool_dir(worker.root), "call-2b", call_id="call-2@dialer", seconds=1.0)
    assert (await again.run_once()).finished == ["call-2b"]
    assert len(await _rows(app)) == 1


async def test_unconvertible_capture_goes_to_failed_with_its_reason(app: FastAPI) -> None:
    worker = worker_for(app, clock=virtual_clock(START + timedelta(days=1)))
    spool = spool_dir(worker.root)
    write_call(spool, "bad", call_id="bad@dialer")
    (spool / "bad.pcap").write_bytes(b"garbage, not a capture")
    spool.joinpath("nosidecar.json").write_text('{"call_id": 5}')
    result = await worker.run_once()
    assert sorted(result.failed) == ["bad", "nosidecar"]
    failed = spool / "failed"
    assert (failed / "bad.pcap").exists() and (failed / "bad.json").exists()
    assert "not a pcap file" in (failed / "bad.reason.txt").read_text()
    assert "call_id must be a non-empty string" in (failed / "nosidecar.reason.txt").read_text()
    assert await _rows(app) == []


async def test_a_call_without_its_attempt_waits_then_is_kept(app: FastAPI) -> None:
    folder = spool_dir(worker_for(app).root)
    write_call(folder, "early", call_id="unknown@dialer", seconds=1.0)
    ended = START + timedelta(seconds=1)
    soon = worker_for(app, clock=virtual_clock(ended + timedelta(seconds=10)))
    assert (await soon.run_once()).waiting == ["early"]
    later = worker_for(app, clock=virtual_clock(ended + timedelta(seconds=121)))
    assert (await later.run_once()).stored == ["early"]
    [rec] = await _rows(app)
    # no campaign to take the retention from: the installation's default, not forever
    days = worker_for(app).rs.media_recording_orphan_retention_days
    assert rec.attempt_id is None and rec.expires_at == START + timedelta(days=days)


async def test_retention_deletes_expired_files_and_rows_as_the_system(app: FastAPI, admin: httpx.AsyncClient) -> None:
    await campaign_and_attempt(app, admin, "old@dialer", retention_days=30)
    worker = worker_for(app, clock=virtual_clock(START + timedelta(seconds=5)))
    write_call(spool_dir(worker.root), "old", call_id="old@dialer", seconds=1.0)
    await worker.run_once()
    [rec] = await _rows(app)
    path = worker.root / rec.storage_key
    assert await worker_for(app, clock=virtual_clock(START + timedelta(days=29))).retention_pass() == 0
    assert path.exists()
    assert await worker_for(app, clock=virtual_clock(START + timedelta(days=30, seconds=1))).retention_pass() == 1
    assert not path.exists() and await _rows(app) == []
    async with app.state.sessionmaker() as session:
        deleted = (await session.scalars(select(AuditEntry).where(
            AuditEntry.object_type == "recordings", AuditEntry.action == "deleted"))).one()
        count = await session.scalar(select(func.count()).select_from(Recording))
    assert deleted.user_login == "system" and deleted.object_id == str(rec.id) and count == 0


async def test_the_api_process_runs_the_worker(db_url: str, settings: Settings, monkeypatch: pytest.MonkeyPatch,
                                               ) -> None:
    """``dialer run``'s API process converts the spool by itself (create_app's lifespan starts the worker)."""
    monkeypatch.setenv("DIALER_MEDIA_RECORDING_WORKER", "true")
    monkeypatch.setenv("DIALER_MEDIA_SPOOL_POLL_S", "0.2")
    monkeypatch.setenv("DIALER_MEDIA_RECORDING_CONVERT_IN_CHILD", "false")
    monkeypatch.setenv("DIALER_MEDIA_ATTEMPT_WAIT_S", "0")
    get_recording_settings.cache_clear()
    settings = settings.model_copy(update={"database_app_url": with_user(db_url, APP_ROLE)})
    application = create_app(settings, database_url=db_url, prepare=False)
    async with application.router.lifespan_context(application):
        write_call(settings.data_dir / "recordings" / "spool", "auto", call_id="auto@dialer", seconds=1.0)
        for _ in range(600):  # up to a minute on a busy machine
            if await _rows(application):
                break
            await asyncio.sleep(0.1)
        [rec] = await _rows(application)
        assert rec.call_id == "auto@dialer" and rec.attempt_id is None
