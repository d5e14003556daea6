"""Manual dial (001): an operator calls a number or a contact himself, outside the queue; virtual time."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dialer.contact import phonelookup
from dialer.engine import events as ev
from dialer.engine.commands import CommandKind
from dialer.models import Attempt, Contact, ContactList, PhoneCode
from dialer.models.enums import AttemptState, CampaignKind, DialMode, OperatorState, OutcomeCategory
from dialer.telephony.traffic import Constant, Scenario
from dialer.timezone.codes import prefix_range
from tests.engine.engine_world import EngineWorld, Harness, engine_world, scenario
from tests.engine.selection_data import NOW, number


def _traffic() -> Scenario:
    return scenario(human=1.0, machine=0.0, busy=0.0, answer_after=Constant(2.0), talk=Constant(20.0))


async def _moscow_mobiles(maker: async_sessionmaker[AsyncSession]) -> None:
    """The test numbers (+7916…) are Moscow's, as the numbering registry says; without it a mobile number has every
    Russian zone and its calling window is rarely open in all of them."""
    lo, hi = prefix_range("+7916")
    async with maker() as session, session.begin():
        session.add(PhoneCode(prefix="+7916", range_from=lo, range_to=hi, tz="Europe/Moscow", region="Москва",
                              source="manual"))
    phonelookup.invalidate()


async def _world(maker: async_sessionmaker[AsyncSession]) -> EngineWorld:
    world = await engine_world(maker, operators=1, mode=DialMode.progressive, wrap_up_s=120,
                               kind=CampaignKind.infinite)
    await world.start()
    await _moscow_mobiles(maker)
    return world


async def _attempt(maker: async_sessionmaker[AsyncSession], attempt_id: int) -> Attempt:
    async with maker() as session:
        found = await session.get(Attempt, attempt_id)
        assert found is not None
        return found


async def test_manual_dial_number_and_contact(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    world = await _world(sessionmaker)
    op_id = world.operator_ids[0]
    h = Harness(sessionmaker, _traffic(), human_operators=(op_id,))
    async with h.running():
        op = h.engine.operators[op_id]
        assert (await h.engine.submit(CommandKind.ready, op_id))["ok"]
        await h.advance(1)
        # a number that is no contact's, written as people write it
        result = await h.engine.submit(CommandKind.manual_dial, op_id, number="8 (916) 555-00-11",
                                       campaign_id=world.campaign_id)
        assert result["ok"], result
        assert result["number"] == "+79165550011" and result["contact_id"] is None
        attempt_id = result["attempt_id"]
        assert op.state is OperatorState.reserved and op.call is not None and op.call.attempt_id == attempt_id
        await h.advance(3)  # answered after 2 s, connected to him
        await h.settle()
        assert op.state is OperatorState.in_call
        a = await _attempt(sessionmaker, attempt_id)
        assert (a.state, a.operator_id, a.contact_id, a.number) == (AttemptState.connected, op_id, None,
                                                                     "+79165550011")
        await h.advance(20)  # the customer hangs up: wrap-up, then his code
        await h.settle()
        assert op.state is OperatorState.wrap_up
        # a callback on a number that is no contact's would be kept and never dialled: refused, naming why
        refused = await h.engine.submit(CommandKind.complete, op_id, completion_code_id=world.codes["Отказ"],
                                        callback_at=(NOW + timedelta(hours=2)).isoformat())
        assert not refused["ok"] and "belongs to no contact" in refused["error"]
        assert op.state is OperatorState.wrap_up
        assert (await h.engine.submit(CommandKind.complete, op_id, completion_code_id=world.codes["Отказ"],
                                      comment="manual"))["ok"]
        await h.settle()
        assert op.state is OperatorState.ready
        a = await _attempt(sessionmaker, attempt_id)
        assert (a.state, a.outcome, a.completion_code_id, a.comment) == (
            AttemptState.done, OutcomeCategory.answered, world.codes["Отказ"], "manual")

        # a contact of the campaign's list, dialled from a break: back to the break afterwards
        contact_id = await world.contact()
        phone = (await world.phones(contact_id))[0].e164
        assert (await h.engine.submit(CommandKind.pause, op_id, reason="lunch"))["ok"]
        result = await h.engine.submit(CommandKind.manual_dial, op_id, contact_id=contact_id,
                                       campaign_id=world.campaign_id)
        assert result["ok"], result
        assert (result["number"], result["contact_id"]) == (phone, contact_id)
        await h.advance(3)
        await h.settle()
        assert op.state is OperatorState.in_call
        await h.advance(20)
        await h.settle()
        assert (await h.engine.submit(CommandKind.complete, op_id, completion_code_id=world.codes["Согласен"]))["ok"]
        await h.settle()
        assert (op.state, op.reason) == (OperatorState.paused, "lunch")
        a = await _attempt(sessionmaker, result["attempt_id"])
        assert (a.contact_id, a.phone_id, a.outcome) == (contact_id, (await world.phones(contact_id))[0].id,
                                                         OutcomeCategory.answered)
        async with sessionmaker() as session:
            contact = await session.get(Contact, contact_id)
            assert contact is not None and contact.attempts_total == 1  # counted like any attempt
    events = h.drain_events()
    connected = [e for e in events if isinstance(e, ev.CallConnected)]
    assert [e.operator_id for e in connected] == [op_id, op_id]
    assert len([e for e in events if isinstance(e, ev.AttemptFinished)]) == 2


async def test_manual_dial_refusals(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    world = await _world(sessionmaker)
    op_id = world.operator_ids[0]
    async with sessionmaker() as session, session.begin():
        foreign = ContactList(name="Чужой список")  # not one of the campaign's lists
        session.add(foreign)
        await session.flush()
        foreign_id = foreign.id
    blocked, prefixed = number(), "+7999123"
    await world.dnc(blocked)
    await world.dnc(prefixed, prefix=True, global_list=False)
    stranger = await world.contact(list_id=foreign_id)
    h = Harness(sessionmaker, _traffic(), human_operators=(op_id,))
    async with h.running():
        def dial(**payload: Any) -> asyncio.Future[dict[str, Any]]:
            return h.engine.submit(CommandKind.manual_dial, op_id, **payload)

        # offline: not allowed
        result = await dial(number=number(), campaign_id=world.campaign_id)
        assert not result["ok"] and "ready or on a break" in result["error"]
        assert (await h.engine.submit(CommandKind.ready, op_id))["ok"]
        cases: list[tuple[dict[str, Any], str]] = [
            ({"number": blocked, "campaign_id": world.campaign_id}, "do-not-call"),
            ({"number": prefixed + "4567", "campaign_id": world.campaign_id}, "do-not-call"),
            ({"number": "12", "campaign_id": world.campaign_id}, "not a valid phone number"),
            ({"campaign_id": world.campaign_id}, "number or a contact"),
            ({"number": number(), "campaign_id": world.campaign_id + 1000}, "not running"),
            ({"number": number()}, "campaign_id"),
            ({"contact_id": stranger, "campaign_id": world.campaign_id}, "not in a contact list"),
        ]
        for payload, reason in cases:
            result = await dial(**payload)
            assert not result["ok"] and reason in result["error"], (payload, result)
        assert await world.count() == 0  # nothing was inserted for a refused dial
        # a number already being called (by another attempt) is refused; so is a second call while in one
        busy = number()
        await world.live_attempt(None, busy)
        result = await dial(number=busy, campaign_id=world.campaign_id)
        assert not result["ok"] and "being called" in result["error"], result
        result = await dial(number=number(), campaign_id=world.campaign_id)
        assert result["ok"], result
        result = await dial(number=number(), campaign_id=world.campaign_id)
        assert not result["ok"] and "reserved" in result["error"], result
    async with sessionmaker() as session:
        numbers = (await session.scalars(select(Attempt.number).where(Attempt.campaign_id == world.campaign_id,
                                                                      Attempt.operator_id == op_id))).all()
    assert blocked not in numbers


async def test_queue_goes_on_beside_a_manual_call_without_contact(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    world = await engine_world(sessionmaker, operators=2, mode=DialMode.progressive, wrap_up_s=120,
                               kind=CampaignKind.infinite)
    await world.start()
    await _moscow_mobiles(sessionmaker)
    op1, op2 = world.operator_ids
    h = Harness(sessionmaker, _traffic(), human_operators=(op1, op2))
    async with h.running():
        assert (await h.engine.submit(CommandKind.ready, op1))["ok"]
        result = await h.engine.submit(CommandKind.manual_dial, op1, number=number(), campaign_id=world.campaign_id)
        assert result["ok"] and result["contact_id"] is None
        await h.advance(3)
        # a contact arrives and op2 gets ready while op1 talks: the queue is refilled and dialled as usual
        contact_id = await world.contact()
        assert (await h.engine.submit(CommandKind.ready, op2))["ok"]
        await h.advance(10)
        await h.settle()
        assert h.engine.operators[op1].state is OperatorState.in_call
        assert h.engine.operators[op2].state is OperatorState.in_call
    rows = await world.attempts()
    assert {(a.contact_id, a.operator_id) for a in rows} == {(None, op1), (contact_id, op2)}


async def test_manual_dial_keeps_the_calling_window(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    from datetime import time

    # 10:00 UTC is 13:00 in Moscow and 20:00 in Vladivostok; the window is 09:00–15:00 local
    world = await engine_world(sessionmaker, operators=1, mode=DialMode.progressive, kind=CampaignKind.infinite,
                               call_window_start=time(9), call_window_end=time(15))
    await world.start()
    op_id = world.operator_ids[0]
    h = Harness(sessionmaker, _traffic(), human_operators=(op_id,))
    async with h.running():
        assert (await h.engine.submit(CommandKind.ready, op_id))["ok"]
        await h.advance(1)
        refused = await h.engine.submit(CommandKind.manual_dial, op_id, number="+7 (423) 222-33-44",
                                        campaign_id=world.campaign_id)
        assert not refused["ok"] and "outside its calling window" in refused["error"], refused
        assert "Vladivostok" in refused["error"]
        placed = await h.engine.submit(CommandKind.manual_dial, op_id, number="+7 (495) 222-33-44",
                                       campaign_id=world.campaign_id)
        assert placed["ok"], placed
        await h.advance(1)
        await h.settle()
    async with sessionmaker() as session:
        numbers = set((await session.scalars(select(Attempt.number))).all())
    assert "+74232223344" not in numbers and "+74952223344" in numbers
