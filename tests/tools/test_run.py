"""``dialer run``: the web API with the engine in a child process it supervises (the load finding: web requests and
the pacing of calls shared one event loop), and ``dialer run --no-engine``, the API alone."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dialer.models import EngineRun

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _start(db_url: str, tmp_path: Path, *args: str) -> tuple[asyncio.subprocess.Process, int, Path]:
    port = _free_port()
    env = {**os.environ, "DIALER_DATABASE_URL": db_url, "DIALER_DATA_DIR": str(tmp_path)}
    log = tmp_path / "run.log"
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "dialer.cli", "run", *args, "--host", "127.0.0.1", "--port", str(port),
            env=env, stdout=out, stderr=out)
    return proc, port, log


async def _healthy(proc: asyncio.subprocess.Process, port: int, log: Path) -> None:
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        while True:
            try:
                if (await client.get("/api/health")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if proc.returncode is not None or time.monotonic() > deadline:
                raise AssertionError(f"dialer run did not become healthy:\n{_read(log)}")
            await asyncio.sleep(0.2)


def _read(log: Path) -> str:
    return log.read_text()


async def test_the_engine_runs_in_a_process_of_its_own(db_url: str, sessionmaker: async_sessionmaker[AsyncSession],
                                                       tmp_path: Path) -> None:
    proc, port, log = await _start(db_url, tmp_path)
    try:
        await _healthy(proc, port, log)
        deadline = time.monotonic() + 60
        while True:  # the child engine registers its run
            async with sessionmaker() as session:
                runs = (await session.execute(select(EngineRun.pid, EngineRun.stopped_at))).all()
            if runs:
                break
            assert time.monotonic() < deadline, log.read_text()
            await asyncio.sleep(0.2)
        assert len(runs) == 1 and runs[0].pid != proc.pid and runs[0].stopped_at is None
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 90) == 0, log.read_text()
        async with sessionmaker() as session:  # the engine was drained and its run closed, not left for recovery
            assert (await session.execute(select(EngineRun.stopped_at))).scalar_one() is not None
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_the_api_runs_without_an_engine(db_url: str, sessionmaker: async_sessionmaker[AsyncSession],
                                              tmp_path: Path) -> None:
    proc, port, log = await _start(db_url, tmp_path, "--no-engine")
    try:
        await _healthy(proc, port, log)
        await asyncio.sleep(2)  # time enough for an engine to have registered, were one started
        async with sessionmaker() as session:
            assert await session.scalar(select(func.count()).select_from(EngineRun)) == 0
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0, log.read_text()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


@pytest.mark.parametrize(("trusted", "seen"), [("127.0.0.1", "203.0.113.7"), ("192.0.2.1", "127.0.0.1")])
async def test_forwarded_addresses_only_from_trusted_proxies(
        db_url: str, sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path, trusted: str, seen: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Login throttling, rate limits and the audit log see the client's address: behind a trusted reverse proxy the
    one it forwards; from anyone else the connection's own (a client cannot choose its address)."""
    from dialer.models import LoginFailure

    monkeypatch.setenv("DIALER_TRUSTED_PROXIES", trusted)
    proc, port, log = await _start(db_url, tmp_path, "--no-engine")
    login = f"nobody-{trusted}"
    try:
        await _healthy(proc, port, log)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            r = await client.post("/api/auth/login", json={"login": login, "password": "wrong-password-1"},
                                  headers={"X-Forwarded-For": "203.0.113.7"})
            assert r.status_code == 401, r.text
        async with sessionmaker() as session:
            clients = (await session.scalars(select(LoginFailure.client).where(LoginFailure.login == login))).all()
        assert list(clients) == [seen]
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 30)
