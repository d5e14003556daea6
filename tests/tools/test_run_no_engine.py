"""``dialer run --no-engine``: the web API alone, the engine in a process of its own (as `dialer engine --help`
and docs/architecture.md promise)."""

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


async def test_the_api_runs_without_an_engine(db_url: str, sessionmaker: async_sessionmaker[AsyncSession],
                                              tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "DIALER_DATABASE_URL": db_url, "DIALER_DATA_DIR": str(tmp_path)}
    log = tmp_path / "run.log"
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "dialer.cli", "run", "--no-engine", "--host", "127.0.0.1", "--port", str(port),
            env=env, stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + 60
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            while True:
                try:
                    if (await client.get("/api/health")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert proc.returncode is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                await asyncio.sleep(0.2)
        async with sessionmaker() as session:
            assert await session.scalar(select(func.count()).select_from(EngineRun)) == 0
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0, log.read_text()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
