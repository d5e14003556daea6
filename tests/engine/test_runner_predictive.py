"""Predictive dialling on the real engine: a simulated hour holds the abandon cap."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dialer.models.enums import AttemptState, CampaignKind, DialMode
from dialer.telephony.traffic import Exponential
from tests.engine.engine_world import Harness, engine_world, scenario


async def test_predictive_hour_respects_the_cap(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    world = await engine_world(sessionmaker, operators=10, mode=DialMode.predictive, kind=CampaignKind.infinite,
                               max_attempts_per_contact=1)
    for _ in range(1500):
        await world.contact()
    await world.start()
    h = Harness(sessionmaker, scenario(human=0.25, machine=0.1, busy=0.1, failed=0.05, talk=Exponential(90.0),
                                        operators=10))
    async with h.running():
        await h.advance(3600)
    attempts = await world.attempts()
    live = [a for a in attempts if a.answered_by == "human"]
    abandoned = [a for a in live if a.connected_at is None
                 or (a.connected_at - a.answered_at).total_seconds() > 2.0]
    print(len(attempts), len(live), len(abandoned), h.engine.placed)
    assert all(a.state is AttemptState.done for a in attempts)
    assert len(live) > 100
    assert len(abandoned) / len(live) <= 0.03
