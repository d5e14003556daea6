"""What is re-checked when a candidate is taken from the hopper: the calling window and DNC at placement."""

from __future__ import annotations

from datetime import UTC, datetime, time

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dialer.engine import repository as repo
from dialer.engine.runner import EngineConfig
from dialer.engine.selection import window_closes_at
from dialer.models import Attempt
from dialer.models.enums import DialMode
from dialer.telephony.traffic import Constant
from tests.engine.engine_world import NOW, Harness, engine_world, scenario
from tests.engine.selection_data import MSK, number

#: The hopper keeps its candidates for an hour: only the checks at placement can stop a stale one.
LONG_HOPPER = EngineConfig(drain_s=0, seed=1, hopper_ttl_s=3600)


def test_window_closes_at() -> None:
    # 13:00 in Moscow, 20:00 in Vladivostok: the earliest end of 09:00–21:00 among the zones
    assert window_closes_at(time(9), time(21), NOW, [MSK]) == datetime(2026, 3, 4, 18, 0, tzinfo=UTC)
    assert window_closes_at(time(9), time(21), NOW, [MSK, "Asia/Vladivostok"]) == datetime(2026, 3, 4, 11, 0,
                                                                                            tzinfo=UTC)
    # overnight window 22:00–02:00, 01:00 local: closes at 02:00 that day; at 23:00: the next day's 02:00
    night = datetime(2026, 3, 3, 22, 0, tzinfo=UTC)  # 01:00 on the 4th in Moscow
    assert window_closes_at(time(22), time(2), night, [MSK]) == datetime(2026, 3, 3, 23, 0, tzinfo=UTC)
    late = datetime(2026, 3, 3, 20, 0, tzinfo=UTC)  # 23:00 in Moscow
    assert window_closes_at(time(22), time(2), late, [MSK]) == datetime(2026, 3, 3, 23, 0, tzinfo=UTC)
    assert window_closes_at(time(0), time(0), NOW, [MSK]) is None  # all day
    assert window_closes_at(time(14), time(21), NOW, [MSK]) == NOW  # not open now: closed at once
    assert window_closes_at(time(9), time(21), NOW, ["Not/AZone"]) == NOW


async def test_number_added_to_dnc_while_in_the_hopper_is_not_dialled(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    world = await engine_world(sessionmaker, operators=1, mode=DialMode.progressive, max_attempts_per_contact=1)
    numbers = [number(), number(), number(), "+74951234567", number()]
    for n in numbers:
        await world.contact(phones=[n])
    await world.start()
    h = Harness(sessionmaker, scenario(human=1.0, machine=0.0, busy=0.0, talk=Constant(120.0)), config=LONG_HOPPER)
    async with h.running():
        await h.advance(5)
        # the first is being called, the others wait in the hopper for the only operator
        assert [c.number for c in h.engine.campaigns[world.campaign_id].hopper] == numbers[1:]
        await world.dnc(numbers[1])  # the exact number, on the global blacklist
        await world.dnc("+7495", prefix=True, global_list=False)  # a prefix, on a list the campaign gets now
        await h.advance(3600)
    dialled = [a.number for a in await world.attempts()]
    assert dialled == [numbers[0], numbers[2], numbers[4]]
    assert h.engine.skipped_candidates >= 2


async def test_insert_refuses_dnc_numbers_in_the_same_statement(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    world = await engine_world(sessionmaker, operators=0)
    free, exact, prefixed = number(), number(), "+74951234567"
    ids = {n: await world.contact(phones=[n]) for n in (free, exact, prefixed)}
    await world.dnc(exact)
    await world.dnc("+7495", prefix=True, global_list=False)
    rows = [{"campaign_id": world.campaign_id, "contact_id": ids[n], "number": n, "state": "dialing",
             "queued_at": NOW, "dialed_at": NOW, "hangup_cause": "", "comment": ""} for n in (free, exact, prefixed)]
    async with sessionmaker() as session, session.begin():
        inserted = await repo.insert_attempts(session, rows)
    assert set(inserted) == {ids[free]}
    async with sessionmaker() as session:
        assert (await session.scalars(select(Attempt.number))).all() == [free]


async def test_window_closing_while_in_the_hopper_is_not_dialled(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    # 13:00 in Moscow at the start; the window closes at 13:01
    world = await engine_world(sessionmaker, operators=1, mode=DialMode.progressive, max_attempts_per_contact=1,
                               call_window_start=time(9), call_window_end=time(13, 1))
    for _ in range(3):
        await world.contact()
    await world.start()
    h = Harness(sessionmaker, scenario(human=1.0, machine=0.0, busy=0.0, talk=Constant(300.0)), config=LONG_HOPPER)
    async with h.running():
        await h.advance(5)
        campaign = h.engine.campaigns[world.campaign_id]
        assert len(campaign.hopper) == 2
        assert all(c.closes_at == datetime(2026, 3, 4, 10, 1, tzinfo=UTC) for c in campaign.hopper)
        await h.advance(1800)  # the operator is free again long after 13:01
        assert len(campaign.hopper) == 0 and campaign.hopper.closed == 2
    attempts = await world.attempts()
    assert len(attempts) == 1
    assert all(a.queued_at < datetime(2026, 3, 4, 10, 1, tzinfo=UTC) for a in attempts)
