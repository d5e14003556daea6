"""Defects the review of the recordings found (issue #16 §1): several captures of one call, errors kept to their
capture, a dead conversion child, shutdown during a conversion, the public link's checks and the key it must not
create, recordings without their attempt, the relay stopped when the SIP driver cannot be built."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update

from dialer.media.pcap import LINKTYPE_RAW, PcapWriter, rtp_bytes
from dialer.media.recording_settings import get_recording_settings
from dialer.media.recordings import spool_dir
from dialer.models import Recording, User, UserPermissionGrant
from dialer.recordings.service import runtime
from tests.conftest import client_for, make_user
from tests.media.recording_fixtures import (
    CUSTOMER,
    DIALER,
    EPOCH,
    RELAY_C,
    RELAY_O,
    campaign_and_attempt,
    virtual_clock,
    worker_for,
    write_call,
)

START = datetime.fromtimestamp(EPOCH, UTC)


@pytest.fixture(autouse=True)
def no_background_worker(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("DIALER_MEDIA_RECORDING_WORKER", "false")
    get_recording_settings.cache_clear()
    yield
    get_recording_settings.cache_clear()


async def _rows(app: FastAPI) -> list[Recording]:
    async with app.state.sessionmaker() as session:
        return list((await session.scalars(select(Recording).order_by(Recording.id))).all())


async def test_every_capture_of_a_call_is_kept_in_order(app: FastAPI, admin: httpx.AsyncClient) -> None:
    """Recording stopped and started again: the anchor spools the second capture as ``<name>-2`` (or as ``<name>``
    again once the first left the spool); each is a recording, listed in order; a capture spooled twice is one."""
    _, attempt_id = await campaign_and_attempt(app, admin, "parts@dialer")
    worker = worker_for(app, clock=virtual_clock(START + timedelta(seconds=30)))
    spool = spool_dir(worker.root)
    write_call(spool, "parts", call_id="parts@dialer", seconds=1.0, customer_hz=440.0)
    write_call(spool, "parts-2", call_id="parts@dialer", seconds=2.0, customer_hz=660.0)
    result = await worker.run_once()
    assert result.stored == ["parts", "parts-2"] and not result.finished
    # a third part spooled under the first one's name, which the spool no longer holds
    write_call(spool, "parts", call_id="parts@dialer", seconds=3.0, customer_hz=880.0)
    assert (await worker.run_once()).stored == ["parts"]
    # the same capture spooled again (a re-run after a crash, a retried spool): nothing new
    write_call(spool, "parts-9", call_id="parts@dialer", seconds=3.0, customer_hz=880.0)
    assert (await worker.run_once()).finished == ["parts-9"]
    rows = await _rows(app)
    assert len(rows) == 3 and len({r.storage_key for r in rows}) == 3
    listed = (await admin.get(f"/api/attempts/{attempt_id}/recordings")).json()
    assert [round(r["duration_ms"], -3) for r in listed] == [1000, 2000, 3000]
    for rec in listed:
        played = await admin.get(rec["stream_url"])
        assert played.status_code == 200 and played.content.startswith(b"OggS")
    found = (await admin.get("/api/recordings", params={"call_id": "parts@dialer"})).json()
    assert found["total"] == 3


def _empty_payloads(folder: Path, name: str) -> None:
    """G.711 packets of both parties with empty payloads, and their sidecar."""
    write_call(folder, name, call_id=f"{name}@dialer", seconds=0.2)
    with (folder / f"{name}.pcap").open("wb") as out:
        writer = PcapWriter(out, LINKTYPE_RAW)
        for n in range(10):
            writer.udp(EPOCH + n * 0.02, CUSTOMER, RELAY_C, rtp_bytes(8, n, n * 160, 1, b""))
            writer.udp(EPOCH + n * 0.02, DIALER, RELAY_O, rtp_bytes(0, n, n * 160, 2, b""))


async def test_one_bad_capture_does_not_stop_the_others(app: FastAPI) -> None:
    worker = worker_for(app, clock=virtual_clock(START + timedelta(days=1)))
    spool = spool_dir(worker.root)
    _empty_payloads(spool, "a-empty")
    write_call(spool, "b-broken-store", call_id="b@dialer", seconds=1.0)
    write_call(spool, "c-good", call_id="c@dialer", seconds=1.0)

    current = [""]

    def storage_fails_for_b(stage: str) -> None:
        # an unexpected error (not a refused capture) after b's conversion, as a failing disk or bucket gives
        if stage == "stored" and current[0] == "b-broken-store":
            raise OSError("the recordings storage answered 503")

    original_take = worker._take

    async def take(sidecar_path: Path, result: Any) -> None:
        current[0] = sidecar_path.stem
        await original_take(sidecar_path, result)

    worker._take = take  # type: ignore[method-assign]
    worker.step = storage_fails_for_b
    tries = worker.rs.media_recording_max_tries
    first = await worker.run_once()
    assert first.failed == ["a-empty"] and first.retrying == ["b-broken-store"] and first.stored == ["c-good"]
    reason = (spool / "failed" / "a-empty.reason.txt").read_text()
    assert "empty payloads" in reason
    for _ in range(tries - 2):
        assert (await worker.run_once()).retrying == ["b-broken-store"]
    last = await worker.run_once()
    assert last.failed == ["b-broken-store"] and not last.retrying
    reason = (spool / "failed" / "b-broken-store.reason.txt").read_text()
    assert f"failed {tries} times" in reason and "OSError: the recordings storage answered 503" in reason
    assert not list(spool.glob("*.json"))
    assert [r.call_id for r in await _rows(app)] == ["c@dialer"]


async def test_a_dead_conversion_child_is_replaced(app: FastAPI) -> None:
    worker = worker_for(app, clock=virtual_clock(START + timedelta(days=1)), child=True)
    spool = spool_dir(worker.root)
    try:
        write_call(spool, "first", call_id="first@dialer", seconds=1.0)
        assert (await worker.run_once()).stored == ["first"]
        assert worker._pool is not None
        pool = worker._pool
        for process in list(pool._processes.values()):
            process.kill()
            process.join(10)
        write_call(spool, "second", call_id="second@dialer", seconds=1.0)
        broken = await worker.run_once()
        assert broken.retrying == ["second"] and worker._pool is None
        assert (await worker.run_once()).stored == ["second"]
        assert worker._pool is not None and worker._pool is not pool
    finally:
        await asyncio.to_thread(worker.close)


async def test_shutdown_kills_a_running_conversion_and_keeps_the_capture(app: FastAPI) -> None:
    worker = worker_for(app, clock=virtual_clock(START + timedelta(days=1)), child=True)
    spool = spool_dir(worker.root)
    write_call(spool, "long", call_id="long@dialer", seconds=600.0)
    task = asyncio.create_task(worker.run_once())
    try:
        for _ in range(1200):  # the child is started and working on the capture (generous on a busy machine)
            if worker._pool is not None and worker._pool._processes and list(spool.glob(".work-*")):
                break
            await asyncio.sleep(0.05)
        processes = list(worker._pool._processes.values())  # type: ignore[union-attr]
        assert processes
        await asyncio.to_thread(worker.close)
        # killed, not waited for: a conversion of 10 minutes of audio does not end by itself that soon
        assert [p.exitcode for p in processes] == [-signal.SIGKILL]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert (spool / "long.pcap").exists() and (spool / "long.json").exists()
    assert await _rows(app) == []


async def test_a_recording_without_its_attempt_expires_and_is_found(app: FastAPI, admin: httpx.AsyncClient) -> None:
    worker = worker_for(app, clock=virtual_clock(START + timedelta(seconds=200)))
    write_call(spool_dir(worker.root), "orphan", call_id="orphan@dialer", seconds=1.0)
    assert (await worker.run_once()).stored == ["orphan"]
    [row] = await _rows(app)
    assert row.expires_at == START + timedelta(days=worker.rs.media_recording_orphan_retention_days)
    found = (await admin.get("/api/recordings", params={"without_attempt": "true"})).json()
    assert [r["call_id"] for r in found["items"]] == ["orphan@dialer"]
    assert (await admin.get("/api/recordings", params={"without_attempt": "false"})).json()["total"] == 0
    late = worker_for(app, clock=virtual_clock(row.expires_at + timedelta(seconds=1)))
    assert await late.retention_pass() == 1 and await _rows(app) == []


async def test_links_are_checked_safely_and_end_with_their_creator(app: FastAPI, admin: httpx.AsyncClient,
                                                                   anon: httpx.AsyncClient) -> None:
    _, attempt_id = await campaign_and_attempt(app, admin, "link@dialer")
    worker = worker_for(app, clock=virtual_clock(START + timedelta(seconds=5)))
    write_call(spool_dir(worker.root), "link", call_id="link@dialer", seconds=1.0)
    assert (await worker.run_once()).stored == ["link"]
    runtime(app).clock = virtual_clock(START + timedelta(hours=1))
    [rec] = (await admin.get(f"/api/attempts/{attempt_id}/recordings")).json()
    supervisor = await client_for(app, "sup", roles=("supervisor",))
    async with supervisor:
        made = await supervisor.post(f"/api/recordings/{rec['id']}/links", json={"ttl_s": 600})
    assert made.status_code == 201, made.text
    url = made.json()["url"]
    assert (await anon.get(url)).status_code == 200
    # a signature that is not ASCII: refused, not an error
    base, _, signature = url.partition("signature=")
    for forged in ("ж" * 64, "é" + signature[1:]):
        got = await anon.get(base + "signature=" + forged)
        assert got.status_code == 403, got.text
    async with app.state.sessionmaker() as session, session.begin():
        sup_id = await session.scalar(select(User.id).where(User.login == "sup"))
        session.add(UserPermissionGrant(user_id=sup_id, permission="recordings.download", granted=False))
    revoked = await anon.get(url)
    assert revoked.status_code == 403 and "may no longer download" in revoked.json()["detail"]
    async with app.state.sessionmaker() as session, session.begin():
        await session.execute(update(UserPermissionGrant).where(UserPermissionGrant.user_id == sup_id)
                              .values(granted=True))
    assert (await anon.get(url)).status_code == 200
    async with app.state.sessionmaker() as session, session.begin():
        await session.execute(update(User).where(User.id == sup_id).values(is_active=False))
    gone = await anon.get(url)
    assert gone.status_code == 403 and "no longer active" in gone.json()["detail"]


async def test_a_public_link_never_creates_the_key(app: FastAPI, anon: httpx.AsyncClient) -> None:
    key_file = app.state.settings.data_dir / "recording.key"
    assert not key_file.exists() and not runtime(app).rs.media_recording_key
    user_id = await make_user(app, "nobody-yet", roles=("supervisor",))
    got = await anon.get(f"/api/recordings/1/shared?expires={int(EPOCH) + 3600}&by={user_id}&signature={'0' * 64}")
    # without a key no link was ever signed: a wrong signature, and nothing about the installation's files
    assert got.status_code == 403 and "signature does not match" in got.json()["detail"]
    assert str(app.state.settings.data_dir) not in got.text
    assert not key_file.exists()


async def test_the_relay_stops_when_the_sip_driver_cannot_be_built(
        sessionmaker: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """voip.runtime starts rtpengine before it builds the SIP driver: a driver that fails must not leave it running."""
    from dialer.config import Settings
    from dialer.core.clock import SystemClock
    from dialer.media.rtpengine import RtpEngineAnchor, RtpEngineProcess
    from dialer.media.settings import get_media_settings
    from dialer.telephony.sip import driver as sip_driver
    from dialer.voip import runtime as voip_runtime
    from tests.media.rtpengine_support import free_udp_port, port_range

    low, high = port_range()
    for name, value in {"ENABLED": "true", "NG_PORT": str(free_udp_port()), "INTERFACE": "127.0.0.1",
                        "PORT_MIN": str(low), "PORT_MAX": str(high)}.items():
        monkeypatch.setenv(f"DIALER_MEDIA_{name}", value)
    get_media_settings.cache_clear()
    started: list[RtpEngineAnchor] = []
    real_anchor = voip_runtime.media_anchor

    async def remembered(*args: Any, **kw: Any) -> RtpEngineAnchor | None:
        anchor = await real_anchor(*args, **kw)
        assert anchor is not None
        started.append(anchor)
        return anchor

    def refuses(self: Any, *args: Any, **kw: Any) -> None:
        raise ValueError("a trunk the driver cannot use")

    monkeypatch.setattr(voip_runtime, "media_anchor", remembered)
    monkeypatch.setattr(sip_driver.SipTelephony, "__init__", refuses)
    try:
        with pytest.raises(ValueError, match="cannot use"):
            await voip_runtime.configured_telephony(Settings(telephony="sip", data_dir=tmp_path), sessionmaker,
                                                    SystemClock())
        [anchor] = started
        engine = anchor.engine
        assert isinstance(engine, RtpEngineProcess) and engine.pid is None  # stopped
    finally:
        get_media_settings.cache_clear()
