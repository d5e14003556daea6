"""A day of calls written the way the engine writes them, with the edges of the local day (Moscow, UTC+3)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dialer.models import Attempt, Operator, OperatorPool, OperatorStateLog, SuccessfulCode, pool_operators
from dialer.models.enums import AttemptState, OperatorState, OutcomeCategory
from tests.engine.selection_data import World, make_world


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


@dataclasses.dataclass
class Day:
    world: World
    op1: int
    op2: int
    pool: int
    agreed: int
    refused: int
    contacts: list[int]


async def attempt(session: AsyncSession, world: World, contact_id: int | None, queued: datetime,
                  outcome: OutcomeCategory | None, *, operator_id: int | None = None, code_id: int | None = None,
                  talk_s: int = 0, wrap_s: int = 0, state: AttemptState = AttemptState.done,
                  number: str | None = None, caller_id: str | None = None) -> int:
    answered = queued + timedelta(seconds=8) if outcome in (OutcomeCategory.answered, OutcomeCategory.abandoned) \
        else None
    connected = answered + timedelta(seconds=1) if answered and operator_id else None
    hung_up = (connected + timedelta(seconds=talk_s)) if connected else queued + timedelta(seconds=20)
    row = Attempt(
        campaign_id=world.campaign_id, contact_id=contact_id, number=number or f"+7916{queued.timestamp():.0f}"[:12],
        caller_id=caller_id, state=state, outcome=outcome, operator_id=operator_id, completion_code_id=code_id,
        queued_at=queued, dialed_at=queued + timedelta(seconds=1), ringing_at=queued + timedelta(seconds=2),
        answered_at=answered, connected_at=connected, hung_up_at=hung_up if state is AttemptState.done else None,
        wrap_up_ended_at=hung_up + timedelta(seconds=wrap_s) if connected and state is AttemptState.done else None)
    session.add(row)
    await session.flush()
    return row.id


async def period(session: AsyncSession, operator_id: int, state: OperatorState, start: datetime,
                 end: datetime | None, reason: str = "") -> None:
    session.add(OperatorStateLog(operator_id=operator_id, state=state, reason=reason, started_at=start,
                                 ended_at=end))


async def make_day(maker: async_sessionmaker[AsyncSession]) -> Day:
    world = await make_world(maker)
    agreed = await world.code("Согласен", OutcomeCategory.answered)
    refused = await world.code("Отказ", OutcomeCategory.answered)
    contacts = [await world.contact() for _ in range(9)]
    async with maker() as session, session.begin():
        op1, op2 = Operator(name="Анна"), Operator(name="Борис")
        pool = OperatorPool(name="Утро")
        session.add_all([op1, op2, pool])
        await session.flush()
        await session.execute(insert(pool_operators).values(pool_id=pool.id, operator_id=op1.id))
        session.add(SuccessfulCode(code_id=agreed))
        codes = world.codes
        a = OutcomeCategory
        # 23:59 local on the 4th (20:59 UTC): the 4th, though the conversation runs past midnight.
        await attempt(session, world, contacts[0], utc(2026, 3, 4, 20, 59), a.answered, operator_id=op1.id,
                      code_id=agreed, talk_s=60, wrap_s=10, caller_id="+74950000001")
        # 00:00:30 local on the 5th: not the 4th.
        await attempt(session, world, contacts[1], utc(2026, 3, 4, 21, 0, 30), a.no_answer,
                      code_id=codes["no_answer"])
        # 00:00 local on the 4th (21:00 UTC the day before): the 4th.
        await attempt(session, world, contacts[2], utc(2026, 3, 3, 21, 0), a.no_answer, code_id=codes["no_answer"])
        await attempt(session, world, contacts[3], utc(2026, 3, 4, 7, 0), a.busy, code_id=codes["busy"])
        await attempt(session, world, contacts[4], utc(2026, 3, 4, 9, 0), a.abandoned, code_id=codes["abandoned"])
        await attempt(session, world, contacts[5], utc(2026, 3, 4, 9, 30), a.answered, operator_id=op2.id,
                      code_id=refused, talk_s=30, wrap_s=5, caller_id="+74950000002")
        await attempt(session, world, contacts[6], utc(2026, 3, 4, 10, 0), a.error, code_id=codes["error"])
        await attempt(session, world, contacts[7], utc(2026, 3, 4, 11, 0), a.rejected, code_id=codes["rejected"])
        # A call still in progress is not a finished attempt.
        await attempt(session, world, contacts[8], utc(2026, 3, 4, 12, 0), None, state=AttemptState.dialing)
        # Three weeks before: 1 abandoned of 10 live answers, inside the rolling 30 days.
        for i in range(10):
            await attempt(session, world, None, utc(2026, 2, 12, 8, i),
                          a.abandoned if i == 0 else a.answered, operator_id=None if i == 0 else op2.id,
                          code_id=codes["abandoned"] if i == 0 else refused, talk_s=10)
        s = OperatorState
        await period(session, op1.id, s.ready, utc(2026, 3, 4, 5, 0), utc(2026, 3, 4, 6, 0))
        await period(session, op1.id, s.paused, utc(2026, 3, 4, 6, 0), utc(2026, 3, 4, 6, 30), "Обед")
        await period(session, op1.id, s.in_call, utc(2026, 3, 4, 6, 30), utc(2026, 3, 4, 6, 40))
        await period(session, op1.id, s.wrap_up, utc(2026, 3, 4, 6, 40), utc(2026, 3, 4, 6, 45))
        await period(session, op1.id, s.ready, utc(2026, 3, 4, 6, 45), utc(2026, 3, 4, 7, 0))
        await period(session, op1.id, s.offline, utc(2026, 3, 4, 7, 0), utc(2026, 3, 4, 20, 30))
        # 23:30 → 00:30 local: half on the 4th, half on the 5th.
        await period(session, op1.id, s.ready, utc(2026, 3, 4, 20, 30), utc(2026, 3, 4, 21, 30))
        await period(session, op2.id, s.ready, utc(2026, 3, 4, 9, 0), utc(2026, 3, 4, 9, 30))
        await period(session, op2.id, s.in_call, utc(2026, 3, 4, 9, 30), utc(2026, 3, 4, 9, 45))
        await period(session, op2.id, s.ringing, utc(2026, 3, 4, 9, 45), utc(2026, 3, 4, 9, 46))
    return Day(world, op1.id, op2.id, pool.id, agreed, refused, contacts)


async def ids(maker: async_sessionmaker[AsyncSession], model: Any) -> list[int]:
    async with maker() as session:
        return list((await session.scalars(select(model.id))).all())
