"""#12: while no trunk takes calls the engine neither reserves operators nor creates attempts in a loop; it tries
again, one call at a time, at a doubling interval, and dials normally as soon as a trunk takes calls."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dialer.engine import events as ev
from dialer.models.enums import AttemptState
from tests.engine.engine_world import Harness, engine_world, scenario


async def test_trunks_down_place_nothing_and_flip_nobody(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    world = await engine_world(sessionmaker, operators=3, contacts=30)
    await world.start()
    h = Harness(sessionmaker, scenario(human=0.5))
    h.sim.max_concurrent = 0  # every originate: TrunkUnavailable
    async with h.running():
        await h.advance(300)
        events = h.drain_events()
        reserved = [e for e in events if isinstance(e, ev.OperatorStateChanged) and e.state == "reserved"]
        # tries at about 0, 5, 15, 35, 65, 95, … s: one call each, so a handful of reservations in 5 minutes
        # (before: all three operators every 5 s, ~180)
        assert 1 <= len(reserved) <= 15, len(reserved)
        assert h.engine.placed == 0
        assert await world.count() == 0  # no attempt left behind: none was placed
        codes = {r["code"] for r in h.engine.stats()["campaigns"][str(world.campaign_id)]["idle_reasons"]}
        assert "trunk_down" in codes
        h.sim.max_concurrent = None  # the trunk is back
        await h.advance(60)
        assert h.engine.placed > 0
        assert await world.count(AttemptState.done == AttemptState.done) > 0
