"""``dialer bench realtime`` measures real deliveries over real HTTP and cleans up after itself."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dialer.config import Settings
from dialer.models import Campaign, Operator, User
from dialer.tools.bench.realtime import bench_realtime


@pytest.mark.slow
async def test_bench_realtime_measures_deliveries_and_leaves_nothing(
        db_url: str, sessionmaker: async_sessionmaker[AsyncSession], tmp_path) -> None:  # type: ignore[no-untyped-def]
    async with sessionmaker() as s:
        users_before = await s.scalar(select(func.count()).select_from(User))
    # 12 s: the demo's customers answer 4-15 s after a call is placed, so calls placed at the start end inside it
    result = await bench_realtime(8, seconds=12, supervisors=2, contacts=400, database_url=db_url,
                                  settings=Settings(data_dir=tmp_path))
    assert set(result) >= {"events", "deliveries", "p50_ms", "p99_ms", "max_ms", "clients", "resyncs"}
    assert result["clients"] == 10 and result["resyncs"] == 0
    # something happened in 12 s of real time with 8 operators, and every client-side delay is a real one
    assert result["events"] > 0 and result["deliveries"] >= result["events"]
    assert 0 <= result["p50_ms"] <= result["p99_ms"] <= result["max_ms"] < 5000
    async with sessionmaker() as s:
        assert await s.scalar(select(func.count()).select_from(User)) == users_before
        assert await s.scalar(select(func.count()).select_from(Campaign)) == 0
        assert await s.scalar(select(func.count()).select_from(Operator)) == 0
