"""The SQL of the campaign package: lookups, child rows, status updates, selection counts."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, ScalarSelect, Select, and_, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from dialer.campaign.selection import FieldInfo
from dialer.models import (
    Attempt,
    Base,
    Callback,
    Campaign,
    CampaignSchedule,
    Contact,
    ContactPhone,
    Field,
    Holiday,
    Operator,
    Selection,
    Strategy,
    StrategyOutcomeRetry,
    StrategyResultRule,
    campaign_lists,
    campaign_pools,
    completion_code_group_members,
    pool_operators,
)
from dialer.models.enums import AttemptState, CallbackKind, CampaignStatus, ContactStatus


async def names_where(session: AsyncSession, name: InstrumentedAttribute[str], *where: ColumnElement[bool],
                      limit: int = 5) -> list[str]:
    """Names of the rows matching ``where`` (to say what still uses an object)."""
    return list((await session.scalars(select(name).where(*where).order_by(name).limit(limit))).all())


async def fields_by_id(session: AsyncSession, ids: Iterable[int]) -> dict[int, FieldInfo]:
    wanted = set(ids)
    if not wanted:
        return {}
    rows = (await session.scalars(select(Field).where(Field.id.in_(wanted)))).all()
    return {f.id: FieldInfo(f.id, f.name, f.type, tuple(f.options or ())) for f in rows}


# --- strategies -----------------------------------------------------------------------------------


async def outcome_retries(session: AsyncSession, strategy_id: int) -> list[StrategyOutcomeRetry]:
    return list((await session.scalars(
        select(StrategyOutcomeRetry).where(StrategyOutcomeRetry.strategy_id == strategy_id)
        .order_by(StrategyOutcomeRetry.id))).all())


async def result_rules(session: AsyncSession, strategy_id: int) -> list[StrategyResultRule]:
    return list((await session.scalars(
        select(StrategyResultRule).where(StrategyResultRule.strategy_id == strategy_id)
        .order_by(StrategyResultRule.id))).all())


async def replace_rows(session: AsyncSession, current: Sequence[Base], new: Sequence[Base]) -> None:
    """Delete ``current`` and add ``new`` through the ORM (so both are audited).

    The deletes are flushed first: the unit of work would insert before deleting and trip the
    unique constraints of the child tables.
    """
    for row in current:
        await session.delete(row)
    await session.flush()
    session.add_all(new)
    await session.flush()


# --- campaigns ------------------------------------------------------------------------------------


async def lock_campaign(session: AsyncSession, campaign_id: int) -> Campaign | None:
    """The campaign, locked until the end of the transaction (status changes do not interleave)."""
    stmt = (select(Campaign).where(Campaign.id == campaign_id).with_for_update()
            .execution_options(populate_existing=True))
    return (await session.scalars(stmt)).one_or_none()


async def set_status(session: AsyncSession, campaign_id: int, status: CampaignStatus, reason: str) -> None:
    """Write the status with a plain UPDATE: the caller records the audit entry with its own label."""
    await session.execute(
        update(Campaign).where(Campaign.id == campaign_id)
        .values(status=status, status_reason=reason, status_changed_at=func.now())
        .execution_options(synchronize_session="fetch"))


async def schedule(session: AsyncSession, campaign_id: int) -> list[CampaignSchedule]:
    return list((await session.scalars(
        select(CampaignSchedule).where(CampaignSchedule.campaign_id == campaign_id)
        .order_by(CampaignSchedule.weekday, CampaignSchedule.start))).all())


async def group_size(session: AsyncSession, group_id: int) -> int:
    return int(await session.scalar(
        select(func.count()).select_from(completion_code_group_members)
        .where(completion_code_group_members.c.group_id == group_id)) or 0)


async def strategy(session: AsyncSession, strategy_id: int) -> Strategy | None:
    return await session.get(Strategy, strategy_id)


# --- selections -----------------------------------------------------------------------------------


def selections_of(campaign_id: int) -> Select[Any]:
    return select(Selection).where(Selection.campaign_id == campaign_id)


async def selection(session: AsyncSession, campaign_id: int, selection_id: int) -> Selection | None:
    return (await session.scalars(
        selections_of(campaign_id).where(Selection.id == selection_id))).one_or_none()


async def count_matching(session: AsyncSession, list_ids: Sequence[int],
                         clause: ColumnElement[bool]) -> tuple[int, int]:
    """(matching, total) over the contacts of ``list_ids`` that are not done."""
    if not list_ids:
        return 0, 0
    row = (await session.execute(
        select(func.count().filter(clause), func.count())
        .where(Contact.list_id.in_(list_ids), Contact.status != ContactStatus.done))).one()
    return int(row[0]), int(row[1])


# --- holidays -------------------------------------------------------------------------------------


async def holidays_on(session: AsyncSession, day: date) -> list[Holiday]:
    return list((await session.scalars(select(Holiday).where(Holiday.day == day))).all())


# --- callbacks ------------------------------------------------------------------------------------


async def contact_in_campaign(session: AsyncSession, contact_id: int, campaign_id: int) -> bool:
    stmt = select(exists().where(
        Contact.id == contact_id,
        Contact.list_id == campaign_lists.c.list_id,
        campaign_lists.c.campaign_id == campaign_id))
    return bool(await session.scalar(stmt))


async def first_phone(session: AsyncSession, contact_id: int) -> str | None:
    return await session.scalar(
        select(ContactPhone.e164).where(ContactPhone.contact_id == contact_id)
        .order_by(ContactPhone.position, ContactPhone.id).limit(1))


async def contact_has_number(session: AsyncSession, contact_id: int, number: str) -> bool:
    return bool(await session.scalar(select(exists().where(
        ContactPhone.contact_id == contact_id, ContactPhone.e164 == number))))


async def contacts_with_number(session: AsyncSession, campaign_id: int, number: str, limit: int = 2) -> list[int]:
    """Contacts of the campaign's lists that have ``number`` among their phones (up to ``limit``)."""
    return list((await session.scalars(
        select(ContactPhone.contact_id).distinct()
        .join(campaign_lists, campaign_lists.c.list_id == ContactPhone.list_id)
        .where(campaign_lists.c.campaign_id == campaign_id, ContactPhone.e164 == number)
        .order_by(ContactPhone.contact_id).limit(limit))).all())


async def callback(session: AsyncSession, callback_id: int) -> Callback | None:
    return await session.get(Callback, callback_id)


def operator_of_user(user_id: int) -> ScalarSelect[int]:
    """SQL: the id of the active operator the user works as (NULL if none)."""
    return select(Operator.id).where(Operator.user_id == user_id, Operator.is_active.is_(True)).scalar_subquery()


async def active_operator_of_user(session: AsyncSession, user_id: int) -> int | None:
    return await session.scalar(select(operator_of_user(user_id)))


OperatorRef = int | ScalarSelect[int]


def works_for(operator_id: OperatorRef, campaign_id: ColumnElement[int] | InstrumentedAttribute[int] | int
              ) -> ColumnElement[bool]:
    """SQL: the operator works for the campaign — it has no pools, or one of them is his (as the engine assigns
    calls: ``engine/assign.py: in_pools``)."""
    has_pools = exists().where(campaign_pools.c.campaign_id == campaign_id)
    his = exists().where(campaign_pools.c.campaign_id == campaign_id,
                         pool_operators.c.pool_id == campaign_pools.c.pool_id,
                         pool_operators.c.operator_id == operator_id)
    return or_(~has_pools, his)


def callbacks_of_operator(operator_id: OperatorRef) -> ColumnElement[bool]:
    """SQL: the callbacks an operator may see — his personal ones, and the shared ones of his campaigns."""
    return or_(and_(Callback.kind == CallbackKind.personal, Callback.operator_id == operator_id),
               and_(Callback.kind != CallbackKind.personal, works_for(operator_id, Callback.campaign_id)))


async def operator_works_for(session: AsyncSession, operator_id: int, campaign_id: int) -> bool:
    """The campaign exists and the operator works for it."""
    return bool(await session.scalar(select(and_(exists().where(Campaign.id == campaign_id),
                                                 works_for(operator_id, campaign_id)))))


async def attempt_counts(session: AsyncSession, campaign_id: int) -> tuple[int, int]:
    """(calls in progress, all calls) of a campaign."""
    row = (await session.execute(select(
        func.count().filter(Attempt.state != AttemptState.done), func.count()).where(
        Attempt.campaign_id == campaign_id))).one()
    return int(row[0]), int(row[1])
