"""SQL of the workplace and monitoring API: what the engine has recorded, read from another process if need be."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, func, literal_column, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from dialer.models import (
    Attempt,
    Campaign,
    CompletionCode,
    Contact,
    EngineRun,
    Operator,
    OperatorPool,
    OperatorSkill,
    OperatorStateLog,
    SipDevice,
    SipRegistration,
    SipTrunk,
    SipTrunkState,
    Skill,
    Strategy,
    campaign_lists,
    campaign_pools,
    completion_code_group_members,
    pool_operators,
)
from dialer.models.enums import AttemptState, CampaignStatus, ContactStatus
from dialer.models.transfer import CallTransfer


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
    # bounded by queued_at so that ix_attempts_operator_queued limits it to the last hours, not all his history
    calls = (select(func.count()).where(Attempt.operator_id == Operator.id,
                                        Attempt.queued_at >= since - timedelta(hours=12),
                                        Attempt.connected_at >= since)
             .scalar_subquery())
    current = aliased(Attempt)
    stmt = (select(Operator.id, Operator.name, OperatorStateLog.state, OperatorStateLog.reason,
                   OperatorStateLog.started_at, OperatorStateLog.campaign_id, OperatorStateLog.attempt_id,
                   calls.label("calls_today"), Campaign.name.label("campaign_name"), current.number,
                   current.contact_id)
            .outerjoin(OperatorStateLog, and_(OperatorStateLog.operator_id == Operator.id,
                                              OperatorStateLog.ended_at.is_(None)))
            .outerjoin(Campaign, Campaign.id == OperatorStateLog.campaign_id)
            .outerjoin(current, current.id == OperatorStateLog.attempt_id)
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


# --- the supervisor's floor (monitoring) --------------------------------------------------------------------


async def operators_today(session: AsyncSession, operator_ids: Sequence[int], since: datetime
                          ) -> dict[int, dict[str, Any]]:
    """Per operator since ``since``: talk seconds (a call in progress counts up to now) and finished calls per
    completion code. One grouped query over ``ix_attempts_operator_queued`` (operator_id = ANY, queued_at >=)."""
    out: dict[int, dict[str, Any]] = {oid: {"talk_s": 0.0, "codes": []} for oid in operator_ids}
    if not operator_ids:
        return out
    talk = func.coalesce(func.sum(func.extract("epoch", func.coalesce(Attempt.hung_up_at, func.now())
                                               - Attempt.connected_at)), 0)
    done = func.count().filter(Attempt.state == AttemptState.done)
    rows = await session.execute(
        select(Attempt.operator_id, Attempt.completion_code_id, CompletionCode.name, CompletionCode.category,
               Attempt.outcome, done, talk)
        .outerjoin(CompletionCode, CompletionCode.id == Attempt.completion_code_id)
        .where(Attempt.operator_id.in_(list(operator_ids)), Attempt.queued_at >= since)
        .group_by(Attempt.operator_id, Attempt.completion_code_id, CompletionCode.name, CompletionCode.category,
                  Attempt.outcome))
    codes: dict[int, dict[tuple[str, Any], dict[str, Any]]] = {oid: {} for oid in operator_ids}
    for row in rows.all():
        oid, code_id, name, category, outcome, n, seconds = tuple[Any, ...](row)
        item = out.setdefault(int(oid), {"talk_s": 0.0, "codes": []})
        item["talk_s"] += float(seconds or 0)
        cat = category if category is not None else outcome
        if not n or cat is None:
            continue
        cat_s = cat.value if hasattr(cat, "value") else str(cat)
        # an attempt finished without a code (no answer, busy ...) is counted under its category
        key = ("code", code_id) if code_id is not None else ("category", cat_s)
        entry = codes.setdefault(int(oid), {}).setdefault(
            key, {"id": code_id, "name": name or "", "category": cat_s, "count": 0})
        entry["count"] += int(n)
    for oid, by_code in codes.items():
        out[oid]["codes"] = sorted(by_code.values(), key=lambda c: (-c["count"], c["name"], c["category"]))
        out[oid]["talk_s"] = round(out[oid]["talk_s"], 1)
    return out


async def pools(session: AsyncSession) -> list[Any]:
    return list((await session.execute(select(OperatorPool.id, OperatorPool.name)
                                       .order_by(OperatorPool.name, OperatorPool.id))).all())


async def pool_members(session: AsyncSession) -> dict[int, list[int]]:
    """Operator id → the pools he is in."""
    out: dict[int, list[int]] = {}
    for pool_id, operator_id in (await session.execute(
            select(pool_operators.c.pool_id, pool_operators.c.operator_id)
            .order_by(pool_operators.c.pool_id))).all():
        out.setdefault(int(operator_id), []).append(int(pool_id))
    return out


async def campaign_pool_ids(session: AsyncSession, campaign_ids: Sequence[int]) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {cid: [] for cid in campaign_ids}
    if not campaign_ids:
        return out
    for cid, pid in (await session.execute(
            select(campaign_pools.c.campaign_id, campaign_pools.c.pool_id)
            .where(campaign_pools.c.campaign_id.in_(list(campaign_ids))).order_by(campaign_pools.c.pool_id))).all():
        out[int(cid)].append(int(pid))
    return out


async def operator_devices(session: AsyncSession) -> dict[int, Any]:
    """Operator id → his SIP device's login and registration (columns of ``sip_registrations`` or nulls)."""
    rows = await session.execute(
        select(SipDevice.operator_id, SipDevice.login, SipRegistration.online, SipRegistration.reachable,
               SipRegistration.changed_at, SipRegistration.detail)
        .outerjoin(SipRegistration, SipRegistration.login == SipDevice.login)
        .where(SipDevice.operator_id.is_not(None), SipDevice.is_active))
    return {int(r.operator_id): r for r in rows.all()}


async def skill_names(session: AsyncSession) -> dict[int, str]:
    return {int(i): n for i, n in (await session.execute(select(Skill.id, Skill.name))).all()}


async def trunks(session: AsyncSession) -> list[Any]:
    return list((await session.execute(
        select(SipTrunk.id, SipTrunk.name, SipTrunk.is_active, SipTrunkState.up, SipTrunkState.detail,
               SipTrunkState.changed_at)
        .outerjoin(SipTrunkState, SipTrunkState.trunk_id == SipTrunk.id)
        .order_by(SipTrunk.position, SipTrunk.id))).all())


def dialable_stmt(campaign_ids: Sequence[int]) -> Select[Any]:
    due = func.coalesce(Contact.next_call_at, literal_column("'-infinity'::timestamptz")) <= func.now()
    return (select(campaign_lists.c.campaign_id, func.count(Contact.id))
            .join(Contact, Contact.list_id == campaign_lists.c.list_id)
            # literal 'done' (not a parameter): the partial index's predicate must be provable under a generic plan
            .where(campaign_lists.c.campaign_id.in_(list(campaign_ids)),
                   Contact.status != literal_column(f"'{ContactStatus.done.value}'"), due)
            .group_by(campaign_lists.c.campaign_id))


async def dialable_left(session: AsyncSession, campaign_ids: Sequence[int]) -> dict[int, int]:
    """Contacts of each campaign's lists not done and due now (``ix_contacts_due``: list_id,
    coalesce(next_call_at, '-infinity') WHERE status <> 'done')."""
    out = {cid: 0 for cid in campaign_ids}
    if not campaign_ids:
        return out
    for cid, n in (await session.execute(dialable_stmt(campaign_ids))).all():
        out[int(cid)] = int(n)
    return out


async def live_calls(session: AsyncSession) -> list[Any]:
    """Attempts not done (through the partial index ``ix_attempts_live``, hence the literal state)."""
    return list((await session.execute(
        select(Attempt.id, Attempt.campaign_id, Attempt.operator_id, Attempt.number, Attempt.direction,
               Attempt.state, Attempt.answered_by, Attempt.queued_at)
        .where(Attempt.state != literal_column(f"'{AttemptState.done.value}'")).order_by(Attempt.id))).all())


async def find_attempts(session: AsyncSession, *, numbers: Sequence[str] = (), operator_id: int | None = None,
                        campaign_id: int | None = None, result_pending: bool = False, limit: int = 50) -> list[Any]:
    """The latest attempts, newest first: of a number (``ix_attempts_number``: finished and live, with or without
    a contact), of an operator, or of a campaign; ``result_pending``: conversations a crash cut off whose result
    nobody has recorded yet (closed by recovery with the system code ``engine_restarted``)."""
    stmt = (select(Attempt, Campaign.name.label("campaign_name"), CompletionCode.name.label("code_name"),
                   Operator.name.label("operator_name"))
            .outerjoin(Campaign, Campaign.id == Attempt.campaign_id)
            .outerjoin(CompletionCode, CompletionCode.id == Attempt.completion_code_id)
            .outerjoin(Operator, Operator.id == Attempt.operator_id))
    if numbers:
        stmt = stmt.where(Attempt.number.in_(list(numbers)))
    if operator_id is not None:
        stmt = stmt.where(Attempt.operator_id == operator_id)
    if campaign_id is not None:
        stmt = stmt.where(Attempt.campaign_id == campaign_id)
    if result_pending:
        stmt = stmt.where(CompletionCode.system_key == RESULT_PENDING_CODE, Attempt.connected_at.is_not(None))
    return list((await session.execute(stmt.order_by(Attempt.id.desc()).limit(limit))).all())


#: The system code recovery closes cut-off calls with; on a conversation it means "result still to record".
RESULT_PENDING_CODE = "engine_restarted"


async def attempt_for_result(session: AsyncSession, attempt_id: int) -> tuple[Attempt, str | None] | None:
    """The attempt (locked) and its code's system key."""
    row = (await session.execute(
        select(Attempt, CompletionCode.system_key).outerjoin(CompletionCode,
                                                             CompletionCode.id == Attempt.completion_code_id)
        .where(Attempt.id == attempt_id).with_for_update(of=Attempt))).one_or_none()
    return None if row is None else (row[0], row[1])


# --- transfers (engine/transfers.py) -----------------------------------------------------------------------------


async def transfers_of(session: AsyncSession, attempt_ids: Sequence[int]) -> list[Any]:
    """The ``call_transfers`` rows of the attempts, in order, with the names of whom they name."""
    if not attempt_ids:
        return []
    source, target = aliased(Operator), aliased(Operator)
    return list((await session.execute(
        select(CallTransfer, source.name.label("from_name"), target.name.label("to_name"),
               OperatorPool.name.label("pool_name"), Skill.name.label("skill_name"))
        .outerjoin(source, source.id == CallTransfer.from_operator_id)
        .outerjoin(target, target.id == CallTransfer.to_operator_id)
        .outerjoin(OperatorPool, OperatorPool.id == CallTransfer.to_pool_id)
        .outerjoin(Skill, Skill.id == CallTransfer.to_skill_id)
        .where(CallTransfer.attempt_id.in_(list(attempt_ids)))
        .order_by(CallTransfer.attempt_id, CallTransfer.id))).all())


async def transfer_counts(session: AsyncSession, attempt_ids: Sequence[int]) -> dict[int, int]:
    if not attempt_ids:
        return {}
    rows = await session.execute(select(CallTransfer.attempt_id, func.count()).where(
        CallTransfer.attempt_id.in_(list(attempt_ids))).group_by(CallTransfer.attempt_id))
    return {int(a): int(n) for a, n in rows.all()}


async def transfer_targets(session: AsyncSession) -> tuple[list[Any], list[Any], list[Any]]:
    """Operators logged in (an open period that is not offline) with their state and phone, pools and skills with
    how many of their operators are ready."""
    ops = list((await session.execute(
        select(Operator.id, Operator.name, OperatorStateLog.state, OperatorStateLog.reason,
               Campaign.name.label("campaign_name"), SipRegistration.online, SipRegistration.reachable,
               SipDevice.id.label("device_id"))
        .join(OperatorStateLog, and_(OperatorStateLog.operator_id == Operator.id, OperatorStateLog.ended_at.is_(None)))
        .outerjoin(Campaign, Campaign.id == OperatorStateLog.campaign_id)
        .outerjoin(SipDevice, and_(SipDevice.operator_id == Operator.id, SipDevice.is_active))
        .outerjoin(SipRegistration, SipRegistration.login == SipDevice.login)
        .where(Operator.is_active, OperatorStateLog.state != literal_column("'offline'"))
        .order_by(Operator.name, Operator.id))).all())
    ready = (select(func.count()).select_from(OperatorStateLog)
             .where(OperatorStateLog.ended_at.is_(None), OperatorStateLog.state == literal_column("'ready'")))
    pools = list((await session.execute(
        select(OperatorPool.id, OperatorPool.name, func.count(pool_operators.c.operator_id).label("members"),
               ready.where(OperatorStateLog.operator_id.in_(
                   select(pool_operators.c.operator_id).where(pool_operators.c.pool_id == OperatorPool.id)))
               .scalar_subquery().label("ready"))
        .outerjoin(pool_operators, pool_operators.c.pool_id == OperatorPool.id)
        .group_by(OperatorPool.id).order_by(OperatorPool.name))).all())
    skills = list((await session.execute(
        select(Skill.id, Skill.name, func.count(OperatorSkill.operator_id).label("members"),
               ready.where(OperatorStateLog.operator_id.in_(
                   select(OperatorSkill.operator_id).where(OperatorSkill.skill_id == Skill.id)))
               .scalar_subquery().label("ready"))
        .outerjoin(OperatorSkill, OperatorSkill.skill_id == Skill.id)
        .group_by(Skill.id).order_by(Skill.name))).all())
    return ops, pools, skills


async def live_transfers(session: AsyncSession, attempt_ids: Sequence[int]) -> dict[int, Any]:
    """The last transfer of each live attempt (kind, result)."""
    if not attempt_ids:
        return {}
    rows = await session.execute(
        select(CallTransfer.attempt_id, CallTransfer.kind, CallTransfer.result)
        .where(CallTransfer.attempt_id.in_(list(attempt_ids)), CallTransfer.result != literal_column("'refused'"))
        .order_by(CallTransfer.id))
    return {int(r.attempt_id): r for r in rows.all()}  # the last one of each attempt wins


async def pool_exists(session: AsyncSession, pool_id: int) -> bool:
    return await session.get(OperatorPool, pool_id) is not None


async def skill_exists(session: AsyncSession, skill_id: int) -> bool:
    return await session.get(Skill, skill_id) is not None
