"""``dialer bench media`` on a small load: every call relayed both ways and recorded, the figures it promises."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dialer.models import Campaign
from dialer.tools.bench.media import bench_media


@pytest.mark.slow
async def test_bench_media_relays_records_and_cleans_up(db_url: str,
                                                        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    result = await bench_media(5, seconds=3, phases=1, operators=5, contacts=300, database_url=db_url)
    assert set(result) >= {"calls", "recorded", "packet_loss_pct", "cpu_s_per_call", "engine_drop_pct",
                           "setup_ms_p50", "setup_ms_p95", "packet_loss_direct_pct"}
    assert result["calls"] == 5 and result["recorded"] == 5
    # 3 s at 50 packets/s, both ways, 5 calls: what arrived went through rtpengine (loss is measured, not asserted)
    assert 0 < result["packets_relayed"] <= 2 * 5 * 150
    assert result["cpu_s_per_call"] > 0 and 0 < result["setup_ms_p50"] <= result["setup_ms_p95"]
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Campaign)) == 0
