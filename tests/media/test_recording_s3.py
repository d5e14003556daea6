"""Recordings in an S3-compatible bucket: s3rver (npm, an S3 HTTP server keeping objects on disk) as the bucket; the
worker stores there, the API plays by ranged GETs, retention deletes the object. s3rver does not check Signature V4
(its source says so), so the signing is checked against the example of the AWS documentation."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from dialer.media.recording_crypto import EncryptedFile
from dialer.media.recording_s3 import EMPTY_SHA256, S3Error, S3Storage, sign_v4
from dialer.media.recording_settings import get_recording_settings
from dialer.media.recordings import RecordingWorker, spool_dir
from dialer.models import Recording
from dialer.recordings.service import Runtime
from tests.media.recording_fixtures import EPOCH, campaign_and_attempt, virtual_clock, write_call

S3RVER = Path(__file__).parent / "s3rver" / "node_modules" / ".bin" / "s3rver"
START = datetime.fromtimestamp(EPOCH, UTC)
BUCKET = "recordings"


@pytest.fixture(autouse=True)
def no_background_worker(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("DIALER_MEDIA_RECORDING_WORKER", "false")
    get_recording_settings.cache_clear()
    yield
    get_recording_settings.cache_clear()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
async def bucket(tmp_path: Path) -> AsyncIterator[str]:
    if not S3RVER.exists():
        raise RuntimeError(f"{S3RVER} is missing: npm --prefix tests/media/s3rver ci (scripts/test.sh does it)")
    port = _free_port()
    process = await asyncio.create_subprocess_exec(
        str(S3RVER), "-d", str(tmp_path / "s3"), "-a", "127.0.0.1", "-p", str(port), "--silent",
        "--configure-bucket", BUCKET, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient() as client:
            for _ in range(300):  # node starts in well under a second; generous on a busy machine
                with contextlib.suppress(httpx.TransportError):
                    await client.get(url)
                    break
                await asyncio.sleep(0.1)
        yield url
    finally:
        process.terminate()
        await process.wait()


def _storage(url: str) -> S3Storage:
    return S3Storage(url, BUCKET, access_key="S3RVER", secret_key="S3RVER", prefix="calls")


def test_signature_v4_matches_the_aws_documentation() -> None:
    # "Signature Calculations for the Authorization Header", example "GET Object" (AWS S3 API reference)
    signed = sign_v4("GET", "https://examplebucket.s3.amazonaws.com/test.txt", {"Range": "bytes=0-9"}, EMPTY_SHA256,
                     access_key="AKIAIOSFODNN7EXAMPLE", secret_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                     region="us-east-1", now=datetime(2013, 5, 24, tzinfo=UTC))
    assert signed["authorization"] == (
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
        "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
        "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")


def test_bad_settings_and_refusals_are_clear() -> None:
    with pytest.raises(ValueError, match="http"):
        S3Storage("s3.example.com", BUCKET, access_key="a", secret_key="b")
    with pytest.raises(ValueError, match="DIALER_MEDIA_S3_BUCKET"):
        S3Storage("https://s3.example.com", "", access_key="a", secret_key="b")
    with pytest.raises(ValueError, match="plain relative name"):
        S3Storage("https://s3.example.com", BUCKET, access_key="a", secret_key="b").url("../x")


async def test_recordings_in_a_bucket(app: FastAPI, admin: httpx.AsyncClient, bucket: str) -> None:
    storage = _storage(bucket)
    rs = get_recording_settings().model_copy(update={"media_recording_storage": "s3",
                                                     "media_recording_convert_in_child": False})
    runtime = Runtime(app.state.settings, rs, storage, clock=virtual_clock(START + timedelta(hours=1)))
    app.state.recording_runtime = runtime
    _, attempt_id = await campaign_and_attempt(app, admin, "s3@dialer", retention_days=30)
    worker = RecordingWorker(app.state.sessionmaker, app.state.settings, rs, storage=storage,
                             clock=virtual_clock(START + timedelta(seconds=5)))
    write_call(spool_dir(worker.root), "s3", call_id="s3@dialer", seconds=2.0)
    assert (await worker.run_once()).stored == ["s3"]
    assert not (worker.root / "2026").exists()  # nothing kept on the local disk
    [rec] = (await admin.get(f"/api/attempts/{attempt_id}/recordings")).json()
    reader = await asyncio.to_thread(storage.open, await _key(app, rec))
    audio = await asyncio.to_thread(lambda: EncryptedFile(reader, runtime.keyring).read_all())
    assert audio.startswith(b"OggS") and len(audio) == rec["audio_bytes"]
    part = await admin.get(rec["stream_url"], headers={"Range": "bytes=1000-1999"})
    assert part.status_code == 206 and part.content == audio[1000:2000]
    assert (await admin.get(rec["stream_url"])).content == audio
    # retention deletes the object
    expired = RecordingWorker(app.state.sessionmaker, app.state.settings, rs, storage=storage,
                              clock=virtual_clock(START + timedelta(days=31)))
    assert await expired.retention_pass() == 1
    with pytest.raises(FileNotFoundError):
        await asyncio.to_thread(storage.open, await _key(app, rec))
    # a bucket that does not exist: its error code is in the message
    missing = S3Storage(bucket, "no-such-bucket", access_key="S3RVER", secret_key="S3RVER")
    source = spool_dir(worker.root).parent / "probe.bin"
    source.write_bytes(b"x")
    with pytest.raises(S3Error, match="404 NoSuchBucket"):
        await asyncio.to_thread(missing.put, "x/probe", source)
    missing.close()
    storage.close()


async def _key(app: FastAPI, rec: dict[str, object]) -> str:
    async with app.state.sessionmaker() as session:
        return str(await session.scalar(select(Recording.storage_key).where(Recording.id == rec["id"])))


async def test_playback_from_a_bucket_takes_few_requests(app: FastAPI, admin: httpx.AsyncClient, bucket: str) -> None:
    """The header and size are read once per answer and the object in 1 MiB ranges: a multi-chunk file played
    whole costs a HEAD and one GET (it cost a HEAD and two GETs per 64 KiB chunk), with the same bytes."""
    requests: list[str] = []
    client = httpx.Client(timeout=30.0, event_hooks={"request": [lambda r: requests.append(
        f"{r.method} {r.headers.get('range', '')}".strip())]})
    storage = S3Storage(bucket, BUCKET, access_key="S3RVER", secret_key="S3RVER", prefix="calls", client=client)
    rs = get_recording_settings().model_copy(update={"media_recording_storage": "s3",
                                                     "media_recording_convert_in_child": False})
    app.state.recording_runtime = Runtime(app.state.settings, rs, storage,
                                          clock=virtual_clock(START + timedelta(hours=1)))
    _, attempt_id = await campaign_and_attempt(app, admin, "long@dialer", retention_days=30)
    worker = RecordingWorker(app.state.sessionmaker, app.state.settings, rs, storage=storage,
                             clock=virtual_clock(START + timedelta(seconds=65)))
    write_call(spool_dir(worker.root), "long", call_id="long@dialer", seconds=60.0)
    assert (await worker.run_once()).stored == ["long"]
    [rec] = (await admin.get(f"/api/attempts/{attempt_id}/recordings")).json()
    assert rec["size_bytes"] > 2 * 65536  # several encrypted chunks
    reader = await asyncio.to_thread(storage.open, await _key(app, rec))
    audio = await asyncio.to_thread(lambda: EncryptedFile(reader, app.state.recording_runtime.keyring).read_all())
    requests.clear()
    whole = await admin.get(rec["stream_url"])
    assert whole.status_code == 200 and whole.content == audio
    assert [r.split()[0] for r in requests] == ["HEAD", "GET"], requests
    requests.clear()
    tail = await admin.get(rec["stream_url"], headers={"Range": f"bytes=70000-{len(audio) - 1}"})
    assert tail.status_code == 206 and tail.content == audio[70000:]
    # the header's GET reads ahead 1 MiB: the chunks asked for come from it
    assert [r.split()[0] for r in requests] == ["HEAD", "GET"], requests
    storage.close()
