"""Data the panel tests share: an operator's day with a conversation a crash cut off (waiting for its result),
callbacks (his, another's, overdue, tomorrow's) and finished calls, written straight to the test's database."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dialer.models import Attempt, Callback, CompletionCode
from dialer.models.enums import AttemptState, CallbackKind, CallbackStatus, OutcomeCategory
from tests.engine.engine_world import EngineWorld, engine_world


@dataclasses.dataclass
class OperatorDay:
    world: EngineWorld
    me: int
    other: int
    contact: int
    number: str
    pending_id: int
    booked_comment: str
    callbacks: dict[str, int]


async def _attempt(maker: async_sessionmaker[AsyncSession], world: EngineWorld, **kw: object) -> int:
    async with maker() as session, session.begin():
        a = Attempt(campaign_id=world.campaign_id, state=AttemptState.done, **kw)
        session.add(a)
        await session.flush()
        return int(a.id)


async def operator_day(maker: async_sessionmaker[AsyncSession], *, now: datetime | None = None) -> OperatorDay:
    now = now or datetime.now(UTC)
    world = await engine_world(maker, operators=2)
    me, other = world.operator_ids
    contact = await world.contact()
    number = (await world.phones(contact))[0].e164
    async with maker() as session:
        restarted = (await session.scalars(select(CompletionCode.id).where(
            CompletionCode.system_key == "engine_restarted"))).one()
    talk = timedelta(seconds=95)
    start = now - timedelta(minutes=30)
    # a conversation the engine's restart cut off: closed with the placeholder code, its result to be recorded
    connected = start + timedelta(seconds=5)
    pending_id = await _attempt(maker, world, contact_id=contact, number=number, operator_id=me, queued_at=start,
                                connected_at=connected, hung_up_at=connected + talk,
                                outcome=OutcomeCategory.error, completion_code_id=restarted,
                                hangup_cause="engine restarted")
    # a finished conversation of mine that booked a callback, with my comment
    booked = "Просил перезвонить после обеда, долг 12 345,67"
    booked_at = now - timedelta(minutes=20)
    await _attempt(maker, world, contact_id=contact, number=number, operator_id=me, queued_at=booked_at,
                   connected_at=booked_at + timedelta(seconds=3), hung_up_at=booked_at + timedelta(seconds=63),
                   outcome=OutcomeCategory.answered, completion_code_id=world.codes["Перезвонить"], comment=booked)
    other_contact = await world.contact()
    other_number = (await world.phones(other_contact))[0].e164
    await _attempt(maker, world, contact_id=other_contact, number=other_number, operator_id=other, queued_at=booked_at,
                   connected_at=booked_at + timedelta(seconds=3), hung_up_at=booked_at + timedelta(seconds=30),
                   outcome=OutcomeCategory.answered, completion_code_id=world.codes["Перезвонить"],
                   comment="чужой комментарий")
    callbacks: dict[str, int] = {}
    async with maker() as session, session.begin():
        def add(key: str, **kw: object) -> None:
            cb = Callback(campaign_id=world.campaign_id, status=CallbackStatus.pending,
                          comment=f"Перенос звонка оператором (попытка {key})", **kw)
            session.add(cb)
            callbacks[key] = 0
            session.info.setdefault("cbs", {})[key] = cb
        soon = now + timedelta(minutes=10)
        # booked by my call (a shared one): the comment is mine
        add("mine_shared", contact_id=contact, number=number, kind=CallbackKind.common,
            window_start=soon, window_end=soon + timedelta(minutes=30))
        # personal for me, overdue
        add("mine_overdue", contact_id=contact, number=number, kind=CallbackKind.personal, operator_id=me,
            window_start=now - timedelta(hours=3), window_end=now - timedelta(hours=2))
        # the other operator's
        add("others", contact_id=other_contact, number=other_number, kind=CallbackKind.personal, operator_id=other,
            window_start=soon, window_end=soon + timedelta(minutes=30))
        # mine, but in two days
        add("later", contact_id=contact, number=number, kind=CallbackKind.personal, operator_id=me,
            window_start=now + timedelta(days=2), window_end=now + timedelta(days=2, hours=1))
        await session.flush()
        for key, cb in session.info["cbs"].items():
            callbacks[key] = int(cb.id)
    return OperatorDay(world, me, other, contact, number, pending_id, booked, callbacks)
