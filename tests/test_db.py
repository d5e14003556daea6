"""The embedded PostgreSQL server the product owns is started again when it dies (the outage finding: killing it
was never survived)."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import asyncpg
import pytest

from dialer.db import asyncpg_dsn, keep_embedded_running, restart_embedded_if_down, start_embedded_server

pytestmark = pytest.mark.slow


def _postmaster_pid(data_dir: Path) -> int:
    return int((data_dir / "pgdata" / "postmaster.pid").read_text().split()[0])


async def _select_one(url: str) -> int:
    conn = await asyncpg.connect(asyncpg_dsn(url), timeout=10)
    try:
        return int(await conn.fetchval("SELECT 1"))
    finally:
        await conn.close()


async def test_a_killed_embedded_server_is_started_again(tmp_path: Path) -> None:
    url = await asyncio.to_thread(start_embedded_server, tmp_path)
    try:
        assert await _select_one(url) == 1
        assert not await asyncio.to_thread(restart_embedded_if_down, tmp_path)  # running: nothing to do
        first = _postmaster_pid(tmp_path)
        os.kill(first, signal.SIGKILL)
        with pytest.raises((OSError, asyncpg.PostgresError)):
            for _ in range(50):  # the kill takes effect at once; the socket may linger a moment
                await _select_one(url)
                await asyncio.sleep(0.1)
        keeper = asyncio.create_task(keep_embedded_running(tmp_path, every_s=0.2))
        try:
            for _ in range(300):
                try:
                    if await _select_one(url) == 1:
                        break
                except (OSError, asyncpg.PostgresError):
                    await asyncio.sleep(0.2)
            else:
                raise AssertionError("the embedded server was not started again")
        finally:
            keeper.cancel()
        assert _postmaster_pid(tmp_path) != first
    finally:
        pid = _postmaster_pid(tmp_path)
        os.kill(pid, signal.SIGTERM)
