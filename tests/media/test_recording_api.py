"""The recordings API: permissions, HTTP Range playback, download, signed links and their expiry, the listening
log (003 §10.1), the spool's failures."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from dialer.media.recording_crypto import EncryptedFile
from dialer.media.recording_settings import get_recording_settings
from dialer.media.recordings import spool_dir
from dialer.models import AuditEntry, Operator
from dialer.recordings.service import runtime
from tests.conftest import client_for
from tests.media.recording_fixtures import EPOCH, campaign_and_attempt, virtual_clock, worker_for, write_call

START = datetime.fromtimestamp(EPOCH, UTC)


@pytest.fixture(autouse=True)
def no_background_worker(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("DIALER_MEDIA_RECORDING_WORKER", "false")
    get_recording_settings.cache_clear()
    yield
    get_recording_settings.cache_clear()


async def _stored(app: FastAPI, admin: httpx.AsyncClient) -> dict[str, Any]:
    async with app.state.sessionmaker() as session, session.begin():
        operator = Operator(name="Анна")
        session.add(operator)
        await session.flush()
        operator_id = operator.id
    _, attempt_id = await campaign_and_attempt(app, admin, "api@dialer", operator_id=operator_id)
    worker = worker_for(app, clock=virtual_clock(START + timedelta(seconds=5)))
    write_call(spool_dir(worker.root), "api", call_id="api@dialer", seconds=2.0)
    assert (await worker.run_once()).stored == ["api"]
    runtime(app).clock = virtual_clock(START + timedelta(hours=1))
    r = await admin.get(f"/api/attempts/{attempt_id}/recordings")
    assert r.status_code == 200, r.text
    [rec] = r.json()
    rec["operator_id"] = operator_id
    return dict(rec)


async def _audio(app: FastAPI, rec_id: int) -> bytes:
    from dialer.models import Recording

    async with app.state.sessionmaker() as session:
        row = await session.get(Recording, rec_id)
        assert row is not None
        with closing(runtime(app).storage.open(row.storage_key)) as stream:
            return EncryptedFile(stream, runtime(app).keyring).read_all()


async def _entries(app: FastAPI, rec_id: int, event: str) -> list[AuditEntry]:
    async with app.state.sessionmaker() as session:
        return list((await session.scalars(select(AuditEntry).where(
            AuditEntry.object_type == "recordings", AuditEntry.object_id == str(rec_id),
            AuditEntry.event == event).order_by(AuditEntry.at))).all())


async def test_playback_with_ranges_and_the_listening_log(app: FastAPI, admin: httpx.AsyncClient) -> None:
    rec = await _stored(app, admin)
    audio = await _audio(app, rec["id"])
    assert len(audio) == rec["audio_bytes"] and audio.startswith(b"OggS")
    async with await client_for(app, "sup", roles=("supervisor",)) as sup:
        whole = await sup.get(rec["stream_url"])
        assert whole.status_code == 200 and whole.content == audio
        assert whole.headers["content-type"] == "audio/ogg" and whole.headers["accept-ranges"] == "bytes"
        part = await sup.get(rec["stream_url"], headers={"Range": "bytes=100-199"})
        assert part.status_code == 206 and part.content == audio[100:200]
        assert part.headers["content-range"] == f"bytes 100-199/{len(audio)}"
        tail = await sup.get(rec["stream_url"], headers={"Range": "bytes=-10"})
        assert tail.status_code == 206 and tail.content == audio[-10:]
        beyond = await sup.get(rec["stream_url"], headers={"Range": f"bytes={len(audio)}-"})
        assert beyond.status_code == 416 and beyond.headers["content-range"] == f"bytes */{len(audio)}"
        # four requests of one listen: one entry; half an hour later, a new listen
        listens = await _entries(app, rec["id"], "listen")
        assert len(listens) == 1 and listens[0].user_login == "sup" and listens[0].changes["via"] == "player"
        runtime(app).clock = virtual_clock(START + timedelta(hours=2))
        assert (await sup.get(rec["stream_url"], headers={"Range": "bytes=0-"})).status_code == 206
        assert len(await _entries(app, rec["id"], "listen")) == 2
        dl = await sup.get(rec["download_url"])
        assert dl.status_code == 200 and dl.content == audio
        assert dl.headers["content-disposition"].startswith("attachment; filename=\"attempt-")
        [download] = await _entries(app, rec["id"], "download")
        assert download.user_login == "sup"


async def test_permissions(app: FastAPI, admin: httpx.AsyncClient, anon: httpx.AsyncClient) -> None:
    rec = await _stored(app, admin)
    assert (await anon.get(rec["stream_url"])).status_code == 401
    async with await client_for(app, "op", roles=("operator",)) as op:
        for url in ("/api/recordings", rec["stream_url"], rec["download_url"], f"/api/recordings/{rec['id']}"):
            assert (await op.get(url)).status_code == 403, url
    async with await client_for(app, "listener", grants={"recordings.listen": True}) as listener:
        assert (await listener.get(rec["stream_url"])).status_code == 200
        refused = await listener.get(rec["download_url"])
        assert refused.status_code == 403 and "recordings.download" in refused.json()["detail"]
        assert (await listener.post(f"/api/recordings/{rec['id']}/links", json={})).status_code == 403
    assert not await _entries(app, rec["id"], "download")


async def test_search(app: FastAPI, admin: httpx.AsyncClient) -> None:
    rec = await _stored(app, admin)
    for query in ({"operator_id": rec["operator_id"]}, {"number": "+79161234567"}, {"call_id": "api@dialer"},
                  {"campaign_id": rec["campaign_id"]}, {"started_from": START.isoformat()}):
        page = (await admin.get("/api/recordings", params=query)).json()
        assert [r["id"] for r in page["items"]] == [rec["id"]], query
    assert (await admin.get("/api/recordings", params={"number": "+70000000000"})).json()["total"] == 0
    assert (await admin.get("/api/recordings", params={"sort": "-duration_ms"})).status_code == 200
    bad = await admin.get("/api/recordings", params={"sort": "storage_key"})
    assert bad.status_code == 422
    assert (await admin.get("/api/recordings/999999")).status_code == 404
    # a file gone from storage (a restored database without its files) says so
    from dialer.models import Recording

    async with app.state.sessionmaker() as session:
        row = await session.get(Recording, rec["id"])
        assert row is not None
        runtime(app).storage.delete(row.storage_key)
    gone = await admin.get(rec["stream_url"])
    assert gone.status_code == 500 and "missing from the recordings storage" in gone.json()["detail"]


async def test_signed_link_works_without_a_session_until_it_expires(app: FastAPI, admin: httpx.AsyncClient,
                                                                    anon: httpx.AsyncClient) -> None:
    rec = await _stored(app, admin)
    audio = await _audio(app, rec["id"])
    too_long = await admin.post(f"/api/recordings/{rec['id']}/links", json={"ttl_s": 24 * 3600 + 1})
    assert too_long.status_code == 422 and too_long.json()["errors"][0]["field"] == "ttl_s"
    made = await admin.post(f"/api/recordings/{rec['id']}/links", json={"ttl_s": 600})
    assert made.status_code == 201, made.text
    link = made.json()
    assert datetime.fromisoformat(link["expires_at"]) == START + timedelta(hours=1, seconds=600)
    [created] = await _entries(app, rec["id"], "link")
    assert created.user_login == "admin"
    got = await anon.get(link["url"], headers={"Range": "bytes=0-49"})
    assert got.status_code == 206 and got.content == audio[:50]
    [listen] = await _entries(app, rec["id"], "listen")
    assert listen.changes["via"] == "link" and listen.user_roles == "link" and listen.user_id is not None
    forged = link["url"].replace("signature=", "signature=0")
    assert (await anon.get(forged)).status_code == 403
    other = link["url"].replace(f"/recordings/{rec['id']}/", f"/recordings/{rec['id'] + 1}/")
    assert (await anon.get(other)).status_code == 403
    runtime(app).clock = virtual_clock(START + timedelta(hours=1, seconds=601))
    expired = await anon.get(link["url"])
    assert expired.status_code == 410 and "expired" in expired.json()["detail"]


async def test_failed_captures_are_counted(app: FastAPI, admin: httpx.AsyncClient) -> None:
    worker = worker_for(app, clock=virtual_clock(START + timedelta(days=1)))
    spool = spool_dir(worker.root)
    write_call(spool, "broken", call_id="broken@dialer")
    (spool / "broken.pcap").write_bytes(b"\x00" * 10)
    write_call(spool, "waiting", call_id="waiting@dialer", started_at=START + timedelta(days=1))
    await worker.run_once()
    state = (await admin.get("/api/recordings/spool")).json()
    assert state["failed"] == 1 and state["pending"] == 1
    assert state["failed_items"][0]["name"] == "broken" and "pcap" in state["failed_items"][0]["reason"]
