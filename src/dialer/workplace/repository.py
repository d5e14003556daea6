"""SQL of the workplace and monitoring API: what the engine has recorded, read from another process if need be."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from dialer.models import (
    Attempt,
    Campaign,
    CompletionCode,
    EngineRun,
    Operator,
    OperatorStateLog,
    Strategy,
    completion_code_group_members,
)
from dialer.models.enums import AttemptState, CampaignStatus


async def operator_of_user(session: AsyncSession, user_id: int) -> Operator | None:
    return (await session.scalars(select(Operator).where(Operator.user_id == user_id))).one_or_none()


async def current_period(session: AsyncSession, operator_id: int) -> OperatorStateLog | None:
    return (await session.scalars(select(OperatorStateLog).where(
        OperatorStateLog.operator_id == operator_id, OperatorStateLog.ended_at.is_(None)))).one_or_none()


async def db_now(session: AsyncSession) -> datetime:
    return (await session.execute(select(func.now()))).scalar_one()


async def live_run(session: AsyncSession, dead_after_s: float) -> EngineRun | None:
    """The engine run that is alive (not stopped, heartbeat fresh), if any."""
    return (await session.scalars(
        select(EngineRun).where(EngineRun.stopped_at.is_(None),
                                EngineRun.heartbeat_at > func.now() - func.make_interval(0, 0, 0, 0, 0, 0,
                                                                                         dead_after_s))
        .order_by(EngineRun.id.desc()).limit(1))).one_or_none()


async def attempt(session: AsyncSession, attempt_id: int) -> Attempt | None:
    return await session.get(Attempt, attempt_id)


async def campaign_codes(session: AsyncSession, campaign_id: int) -> list[CompletionCode]:
    return list((await session.scalars(
        select(CompletionCode)
        .join(completion_code_group_members, completion_code_group_members.c.code_id == CompletionCode.id)
        .join(Campaign, Campaign.completion_code_group_id == completion_code_group_members.c.group_id)
        .where(Campaign.id == campaign_id).order_by(CompletionCode.id))).all())


async def code_in_campaign(session: AsyncSession, code_id: int, campaign_id: int) -> bool:
    return bool(await session.scalar(select(
        select(completion_code_group_members.c.code_id)
        .join(Campaign, Campaign.completion_code_group_id == completion_code_group_members.c.group_id)
        .where(Campaign.id == campaign_id, completion_code_group_members.c.code_id == code_id).exists())))


async def operators_live(session: AsyncSession, since: datetime) -> list[Any]:
    """Every active operator with his open period (none: offline) and his calls connected since ``since``."""
    calls = (select(func.count()).where(Attempt.operator_id == Operator.id, Attempt.connected_at >= since)
             .scalar_subquery())
    stmt = (select(Operator.id, Operator.name, OperatorStateLog.state, OperatorStateLog.reason,
                   OperatorStateLog.started_at, OperatorStateLog.campaign_id, OperatorStateLog.attempt_id,
                   calls.label("calls_today"))
            .outerjoin(OperatorStateLog, and_(OperatorStateLog.operator_id == Operator.id,
                                              OperatorStateLog.ended_at.is_(None)))
            .where(Operator.is_active).order_by(Operator.id))
    return list((await session.execute(stmt)).all())


async def monitored_campaigns(session: AsyncSession, since: datetime) -> list[Any]:
    """Campaigns that are active, or have attempts since ``since``, with their strategy's abandon threshold."""
    recent = select(Attempt.campaign_id).where(Attempt.queued_at >= since).distinct()
    stmt = (select(Campaign, Strategy.operator_wait_s).join(Strategy, Strategy.id == Campaign.strategy_id)
            .where(Campaign.status.in_([CampaignStatus.running, CampaignStatus.paused, CampaignStatus.auto_paused])
                   | Campaign.id.in_(recent))
            .order_by(Campaign.priority.desc(), Campaign.id))
    return list((await session.execute(stmt)).all())


async def calls_in_progress(session: AsyncSession, campaign_ids: Sequence[int]) -> dict[int, dict[str, int]]:
    out: dict[int, dict[str, int]] = {cid: {} for cid in campaign_ids}
    if not campaign_ids:
        return out
    rows = await session.execute(
        select(Attempt.campaign_id, Attempt.state, func.count())
        .where(Attempt.state != AttemptState.done, Attempt.campaign_id.in_(list(campaign_ids)))
        .group_by(Attempt.campaign_id, Attempt.state))
    for cid, state, n in rows.all():
        out[int(cid)][state.value if hasattr(state, "value") else str(state)] = int(n)
    return out


async def today(session: AsyncSession, campaign_id: int, since: datetime, wait_s: float) -> dict[str, Any]:
    """Attempts of the campaign since ``since``: per outcome, live answers and abandoned ones (> ``wait_s``)."""
    live = Attempt.answered_by == "human"
    late = and_(live, (Attempt.connected_at.is_(None))
                | (Attempt.connected_at > Attempt.answered_at + func.make_interval(0, 0, 0, 0, 0, 0, wait_s)))
    row = (await session.execute(
        select(func.count(), func.count().filter(live), func.count().filter(late))
        .where(Attempt.campaign_id == campaign_id, Attempt.queued_at >= since))).one()
    outcomes = dict((await session.execute(
        select(Attempt.outcome, func.count()).where(Attempt.campaign_id == campaign_id, Attempt.queued_at >= since,
                                                    Attempt.state == AttemptState.done)
        .group_by(Attempt.outcome))).all())
    return {"attempts": int(row[0]), "live": int(row[1]), "abandoned": int(row[2]),
            "outcomes": {(k.value if hasattr(k, "value") else str(k)): int(v) for k, v in outcomes.items() if k}}


async def attempt_detail(session: AsyncSession, attempt_id: int) -> Any:
    return (await session.execute(
        select(Attempt, Campaign.name, CompletionCode.name, Operator.name, Strategy.operator_wait_s)
        .outerjoin(Campaign, Campaign.id == Attempt.campaign_id)
        .outerjoin(Strategy, Strategy.id == Campaign.strategy_id)
        .outerjoin(CompletionCode, CompletionCode.id == Attempt.completion_code_id)
        .outerjoin(Operator, Operator.id == Attempt.operator_id)
        .where(Attempt.id == attempt_id))).one_or_none()


async def attempt_periods(session: AsyncSession, attempt_id: int) -> list[OperatorStateLog]:
    return list((await session.scalars(select(OperatorStateLog).where(OperatorStateLog.attempt_id == attempt_id)
                                       .order_by(OperatorStateLog.started_at, OperatorStateLog.id))).all())

