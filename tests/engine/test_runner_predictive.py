"""Predictive dialling on the real engine: a simulated hour holds the abandon cap."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dialer.campaign.status import Action
from dialer.engine.pacing import PredictivePacer
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


async def test_restart_keeps_the_abandon_rate(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    world = await engine_world(sessionmaker, operators=6, mode=DialMode.predictive, kind=CampaignKind.infinite,
                               max_attempts_per_contact=1, contacts=600)
    await world.start()
    traffic = scenario(human=0.3, machine=0.1, busy=0.1, talk=Exponential(60.0), operators=6)
    first = Harness(sessionmaker, traffic)
    async with first.running():
        await first.advance(1800)
        await world.act(Action.pause)
        first.engine.wake()
        await first.advance(1800)  # every call in flight ends: the database holds everything the pacer saw
        old = first.engine.campaigns[world.campaign_id].pacer
        assert isinstance(old, PredictivePacer)
        restart_utc, restart_now = first.clock.utcnow(), first.clock.now()
        old_slack = old._slack(restart_now)
    assert old.live_answers > 30 and old.abandons > 0
    await world.act(Action.resume)
    second = Harness(sessionmaker, traffic, epoch=restart_utc)
    async with second.running():
        new = second.engine.campaigns[world.campaign_id].pacer
        assert isinstance(new, PredictivePacer)
        assert (new.live_answers, new.abandons) == (old.live_answers, old.abandons)
        # the rolling window (an hour) holds the same answers, so the budget left is the same
        assert new._slack(second.clock.now()) == pytest.approx(old_slack)
        assert new.live_learnt >= new.warmup_live  # the estimates start from the recorded calls, no warm-up
