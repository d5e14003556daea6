"""A real call through a real rtpengine, recorded: its spooled capture becomes a recording whose left channel is the
customer's 440 Hz and right channel the operator side's 1000 Hz (issue #16: a tone's frequency found in the
recording)."""

from __future__ import annotations

import asyncio
import json
import struct
from collections.abc import Iterator
from contextlib import closing
from datetime import datetime, timedelta

import httpx
import numpy as np
import pytest
from fastapi import FastAPI

from dialer.media.pcap import RATE
from dialer.media.recording_crypto import EncryptedFile
from dialer.media.recording_settings import get_recording_settings
from dialer.media.rtpengine import RtpEngineAnchor
from dialer.models import Recording
from dialer.recordings.service import runtime
from dialer.telephony.sip.anchor import CUSTOMER_TAG, DIALER_TAG
from dialer.telephony.sip.rtp import encode_g711
from dialer.telephony.sip.sdp import audio_media
from tests.media.recording_fixtures import campaign_and_attempt, dominant_hz, tone, virtual_clock, worker_for
from tests.media.rtpengine_support import RtpEndpoint, running_rtpengine, sdp

PACKETS = 75  # 1.5 s each way


@pytest.fixture(autouse=True)
def no_background_worker(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("DIALER_MEDIA_RECORDING_WORKER", "false")
    get_recording_settings.cache_clear()
    yield
    get_recording_settings.cache_clear()


def _send_tone(endpoint: RtpEndpoint, to: tuple[str, int], seq: int, freq: float) -> None:
    assert endpoint.transport is not None
    payload = encode_g711(8, tone(freq, 160, start=seq * 160).tobytes())
    header = struct.pack("!BBHII", 0x80, 8, seq & 0xFFFF, (seq * 160) & 0xFFFFFFFF, endpoint.ssrc)
    endpoint.transport.sendto(header + payload, to)


async def test_a_call_recorded_by_rtpengine_becomes_a_two_tone_recording(app: FastAPI,
                                                                         admin: httpx.AsyncClient) -> None:
    call_id = "rtpengine-rec@dialer"
    _, attempt_id = await campaign_and_attempt(app, admin, call_id)
    worker = worker_for(app)
    async with running_rtpengine(worker.root / "rtpengine") as engine:
        anchor = RtpEngineAnchor(engine, worker.root)
        dialer, customer = await RtpEndpoint.open(0x22), await RtpEndpoint.open(0x11)
        try:
            to_customer = await anchor.offer(call_id, sdp(dialer.port), from_tag=DIALER_TAG, to_tag=None)
            await anchor.start_recording(call_id)
            to_dialer = await anchor.answer(call_id, sdp(customer.port), from_tag=DIALER_TAG, to_tag=CUSTOMER_TAG)
            customer_media, dialer_media = audio_media(to_customer), audio_media(to_dialer)
            assert customer_media is not None and dialer_media is not None
            for seq in range(PACKETS):
                # each party sends to the relay address its SDP named (the driver's 3PCC order)
                _send_tone(customer, (customer_media.host, customer_media.port), seq, 440)
                _send_tone(dialer, (dialer_media.host, dialer_media.port), seq, 1000)
                await asyncio.sleep(0.02)
            for _ in range(100):
                if len(dialer.received) >= PACKETS and len(customer.received) >= PACKETS:
                    break
                await asyncio.sleep(0.02)
            assert len(dialer.received) >= PACKETS * 0.9 and len(customer.received) >= PACKETS * 0.9
            await anchor.delete(call_id)
        finally:
            dialer.close()
            customer.close()
    sidecar = next((worker.root / "spool").glob("*.json"))
    worker.clock = virtual_clock(_ended(sidecar.read_text()) + timedelta(seconds=1))
    result = await worker.run_once()
    assert len(result.stored) == 1, result
    r = await admin.get(f"/api/attempts/{attempt_id}/recordings")
    [rec] = r.json()
    assert 1300 <= rec["duration_ms"] <= 1800
    rt = runtime(app)
    async with app.state.sessionmaker() as session:
        row = await session.get(Recording, rec["id"])
        assert row is not None
        with closing(rt.storage.open(row.storage_key)) as stream:
            ogg = EncryptedFile(stream, rt.keyring).read_all()
    process = await asyncio.create_subprocess_exec(
        "ffmpeg", "-v", "error", "-i", "pipe:0", "-f", "s16le", "-ac", "2", "-ar", str(RATE), "pipe:1",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    pcm, _ = await process.communicate(ogg)
    samples = np.frombuffer(pcm, dtype="<i2").reshape(-1, 2)[RATE // 4:RATE]
    assert dominant_hz(samples[:, 0]) == pytest.approx(440, abs=3)
    assert dominant_hz(samples[:, 1]) == pytest.approx(1000, abs=3)


def _ended(text: str) -> datetime:
    return datetime.fromisoformat(json.loads(text)["ended_at"].replace("Z", "+00:00"))
