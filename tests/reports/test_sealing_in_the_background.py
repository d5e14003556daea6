"""The API process seals the reports' rollups as hours pass (app._seal_reports), so no user's request pays for it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from fastapi import FastAPI

from dialer.app import _seal_reports
from dialer.reports.rollup import is_due, sealed


async def test_the_server_seals_what_is_due(app: FastAPI) -> None:
    maker = app.state.sessionmaker
    async with maker() as session:
        assert is_due(await sealed(session), datetime.now(UTC))  # a new database: nothing sealed yet
    task = asyncio.create_task(_seal_reports(maker, every_s=0.05))
    try:
        for _ in range(400):  # up to 20 s on a busy machine
            await asyncio.sleep(0.05)
            async with maker() as session:
                if not is_due(await sealed(session), datetime.now(UTC)):
                    break
        async with maker() as session:
            assert not is_due(await sealed(session), datetime.now(UTC))
    finally:
        task.cancel()
