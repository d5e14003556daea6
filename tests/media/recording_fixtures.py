"""Synthetic two-party calls as rtpengine would capture them: a tone per party, G.711, 20 ms packets."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from dialer.core.clock import VirtualClock
from dialer.media.pcap import LINKTYPE_RAW, RATE, PcapWriter, rtp_bytes
from dialer.media.recordings import RecordingWorker
from dialer.models import Attempt
from dialer.models.enums import AttemptState
from dialer.recordings.service import runtime
from dialer.telephony.sip.rtp import encode_g711

CUSTOMER = ("203.0.113.10", 40000)
DIALER = ("198.51.100.5", 30000)
#: rtpengine's own ports facing each party
RELAY_C = ("192.0.2.1", 20000)
RELAY_O = ("192.0.2.1", 20002)
EPOCH = 1_796_000_000.0


def tone(freq: float, samples: int, start: int = 0, amplitude: float = 8000.0) -> np.ndarray:
    t = (np.arange(samples) + start) / RATE
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype("<i2")


def packets(freq: float, seconds: float, *, pt: int = 8, ssrc: int = 1, skip: range | None = None,
            seq0: int = 100, ts0: int = 1000, start_s: float = 0.0) -> list[tuple[float, bytes]]:
    """(arrival, RTP bytes) of a tone; ``skip``: packet numbers lost (a gap)."""
    out = []
    for n in range(int(seconds * 50)):
        if skip is not None and n in skip:
            continue
        pcm = tone(freq, 160, start=n * 160).tobytes()
        out.append((EPOCH + start_s + n * 0.02,
                    rtp_bytes(pt, seq0 + n, ts0 + n * 160, ssrc, encode_g711(pt, pcm))))
    return out


def write_call(folder: Path, name: str, *, call_id: str, customer_hz: float = 440.0, operator_hz: float = 1000.0,
               seconds: float = 2.0, linktype: int = LINKTYPE_RAW, customer_skip: range | None = None,
               operator_pt: int = 0, shuffle: bool = False, duplicate: bool = False,
               started_at: datetime | None = None) -> tuple[Path, Path]:
    """A capture and its sidecar in ``folder`` as rtpengine's side leaves them (dialer.media.rtpengine: raw IP, the
    packets as rtpengine received them, the sidecar written last)."""
    folder.mkdir(parents=True, exist_ok=True)
    customer = [(at, CUSTOMER, RELAY_C, data) for at, data in
                packets(customer_hz, seconds, pt=8, ssrc=0x1111, skip=customer_skip)]
    operator = [(at + 0.005, DIALER, RELAY_O, data) for at, data in
                packets(operator_hz, seconds, pt=operator_pt, ssrc=0x2222, seq0=65500, ts0=0xFFFFFF00)]
    records = sorted(customer + operator, key=lambda r: r[0])
    if duplicate:
        records += records[10:20]
    if shuffle:
        # every 7th packet arrives late, after its successor: arrival order differs from sequence order
        for i in range(5, len(records) - 1, 7):
            a, b = records[i], records[i + 1]
            records[i], records[i + 1] = b, (b[0] + 0.001, *a[1:])
    capture = folder / f"{name}.pcap"
    with capture.open("wb") as out:
        writer = PcapWriter(out, linktype)
        for at, src, dst, data in records:
            writer.udp(at, src, dst, data)
    start = started_at or datetime.fromtimestamp(EPOCH, UTC)
    sidecar = folder / f"{name}.json"
    temp = folder / f".{name}.json.tmp"
    temp.write_text(json.dumps({
        "call_id": call_id, "started_at": start.isoformat().replace("+00:00", "Z"),
        "ended_at": (start + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z"),
        "customer": {"host": CUSTOMER[0], "port": CUSTOMER[1], "relay_host": RELAY_C[0], "relay_port": RELAY_C[1]},
        "dialer": {"host": DIALER[0], "port": DIALER[1], "relay_host": RELAY_O[0], "relay_port": RELAY_O[1]},
        "format": "rtpengine-pcap", "recovered": False,
    }))
    temp.rename(sidecar)
    return capture, sidecar


def dominant_hz(channel: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(channel.astype(np.float64)))
    return float(np.fft.rfftfreq(len(channel), 1 / RATE)[int(np.argmax(spectrum))])


async def campaign_and_attempt(app: Any, admin: Any, call_id: str, *, retention_days: int | None = 30,
                               operator_id: int | None = None) -> tuple[int, int]:
    """A campaign keeping recordings ``retention_days`` and one finished attempt of it with ``call_id``."""
    from tests.campaign.conftest import make_setup

    setup = await make_setup(app, admin)
    r = await admin.post("/api/campaigns", json=setup.campaign(record_mode="all",
                                                               recording_retention_days=retention_days))
    assert r.status_code == 201, r.text
    campaign_id = int(r.json()["id"])
    async with app.state.sessionmaker() as session, session.begin():
        attempt = Attempt(campaign_id=campaign_id, number="+79161234567", call_id=call_id, state=AttemptState.done,
                          queued_at=datetime.fromtimestamp(EPOCH, UTC), operator_id=operator_id)
        session.add(attempt)
        await session.flush()
        return campaign_id, attempt.id


def worker_for(app: Any, *, clock: VirtualClock | None = None, child: bool = False) -> RecordingWorker:
    """A worker on the application's storage and keys; conversions in a thread unless ``child`` (call ``close``)."""
    rt = runtime(app)
    rs = rt.rs.model_copy(update={"media_recording_convert_in_child": child})
    return RecordingWorker(app.state.sessionmaker, app.state.settings, rs, clock=clock, storage=rt.storage)


def virtual_clock(at: datetime) -> VirtualClock:
    return VirtualClock(epoch=at)
