"""Finite campaigns finish when nothing dialable is left, even with contacts that can never be dialled."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dialer.engine import events as ev
from dialer.engine.selection import work_left
from dialer.models import Contact, Selection
from dialer.models.enums import CampaignStatus, ContactStatus, DialMode, PhoneType
from tests.engine.engine_world import NOW, Harness, engine_world, scenario
from tests.engine.selection_data import World, make_world, number


async def left(world: World) -> bool:
    plan = await world.plan()
    async with world.sessionmaker() as session:
        return await work_left(session, plan, NOW)


async def test_what_counts_as_left(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    world = await make_world(sessionmaker, max_attempts_per_contact=2)
    assert not await left(world)
    await world.contact(phones=[])  # nothing to dial
    blocked, prefixed = number(), "+74951112233"
    await world.contact(phones=[blocked, prefixed])  # every number in DNC
    await world.dnc(blocked)
    await world.dnc("+7495", prefix=True, global_list=False)
    await world.contact(attempts_total=2)  # out of attempts
    await world.contact(status=ContactStatus.done)
    # only a phone the strategy does not dial
    await world.contact(phones=[(number(), PhoneType.home, world.home_field_id, ["Europe/Moscow"])])
    assert not await left(world)
    # a retry later, or a window that opens later, is left
    later = await world.contact(next_call_at=NOW + timedelta(days=1), status=ContactStatus.in_progress)
    assert await left(world)
    await world.update(Contact, later, status=ContactStatus.done)
    assert not await left(world)
    # a pending callback whose window has not ended is left, unless its number is in DNC
    target = await world.contact(status=ContactStatus.in_progress, attempts_total=2)
    phone = (await world.phones(target))[0].e164
    await world.callback(target, phone, NOW + timedelta(hours=1), NOW + timedelta(hours=2))
    assert await left(world)
    await world.dnc(phone)
    assert not await left(world)


async def test_selections_decide_what_is_left(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    world = await make_world(sessionmaker)
    city = str(world.city_field_id)
    await world.contact(data={city: "Омск"})
    moscow = await world.selection("Москва", 90, conditions=[{"field": world.city_field_id, "op": "eq",
                                                             "value": "Москва"}], max_attempts_total=1)
    assert not await left(world)  # no selection takes the contact from Omsk
    await world.contact(data={city: "Москва"}, attempts_total=1)
    assert not await left(world)  # the selection's own limit is reached
    await world.contact(data={city: "Москва"})
    assert await left(world)
    await world.update(Selection, moscow, is_active=False)
    assert not await left(world)  # only inactive selections: nothing but callbacks is dialled


async def test_finite_campaign_with_undialable_contacts_finishes(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    world = await engine_world(sessionmaker, operators=2, mode=DialMode.progressive, max_attempts_per_contact=1,
                               contacts=5)
    await world.contact(phones=[])
    blocked = number()
    await world.contact(phones=[blocked])
    await world.dnc(blocked)
    await world.start()
    h = Harness(sessionmaker, scenario(human=0.5, machine=0.1, busy=0.2))
    async with h.running():
        await h.advance(1800)
        assert await world.status() is CampaignStatus.finished
    assert len(await world.attempts()) == 5
    assert any(isinstance(e, ev.CampaignFinished) for e in h.drain_events())
