"""Skills, operators (with skill levels and pool membership) and pools."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from dialer.api.crud import Resource, crud_router, member_ids, set_members
from dialer.audit.recorder import log
from dialer.auth.permissions import P
from dialer.exceptions import Conflict, ValidationFailed
from dialer.models import Operator, OperatorPool, OperatorSkill, SipDevice, Skill, pool_operators
from dialer.models.enums import AuditAction
from dialer.operator.schemas import (
    OperatorCreate,
    OperatorRead,
    OperatorUpdate,
    PoolCreate,
    PoolRead,
    PoolUpdate,
    SkillCreate,
    SkillRead,
    SkillUpdate,
)

skills = Resource(
    model=Skill, path="skills", tag="skills", read_schema=SkillRead, create_schema=SkillCreate,
    update_schema=SkillUpdate, read_perm=P.skills_read, write_perm=P.skills_write,
    search=("name", "description"), sort=("id", "name", "created_at"),
)


async def _existing(session: AsyncSession, model: Any, ids: list[int], field: str) -> None:
    if not ids:
        return
    found = set((await session.scalars(select(model.id).where(model.id.in_(ids)))).all())
    if missing := sorted(set(ids) - found):
        raise ValidationFailed.field(field, f"{model.__tablename__} {missing} do not exist")


async def _check_extension(session: AsyncSession, obj: Operator) -> None:
    """An operator's extension is where the engine sends his calls (when he has no SIP device of his own):
    it may not be another operator's extension or another operator's SIP login, or calls would reach the
    wrong person."""
    if not obj.extension:
        return
    other = (await session.execute(select(Operator.id, Operator.name).where(
        Operator.extension == obj.extension, Operator.id != obj.id).limit(1))).first()
    if other is None:
        other = (await session.execute(select(Operator.id, Operator.name).join(
            SipDevice, SipDevice.operator_id == Operator.id).where(
            SipDevice.login == obj.extension, Operator.id != obj.id).limit(1))).first()
    if other is not None:
        raise Conflict(f"extension: '{obj.extension}' is already the phone of operator '{other.name}' "
                       f"(id {other.id}); calls would reach the wrong person",
                       errors=[{"field": "extension", "reason": f"already the phone of operator {other.id}"}])


async def _operator_after_save(session: AsyncSession, obj: Operator, extra: dict[str, Any]) -> None:
    await _check_extension(session, obj)
    levels = extra.get("skills")
    if levels is not None:
        wanted = {s["skill_id"]: s["level"] for s in levels}
        if len(wanted) != len(levels):
            raise ValidationFailed.field("skills", "a skill is listed twice")
        await _existing(session, Skill, list(wanted), "skills")
        current = dict((await session.execute(
            select(OperatorSkill.skill_id, OperatorSkill.level).where(OperatorSkill.operator_id == obj.id))).all())
        if current != wanted:
            await session.execute(delete(OperatorSkill).where(OperatorSkill.operator_id == obj.id))
            session.add_all([OperatorSkill(operator_id=obj.id, skill_id=k, level=v) for k, v in wanted.items()])
            await session.flush()
            await log(session, AuditAction.updated, "operators", obj.id,
                      changes={"skills": {"old": current, "new": wanted}})
    pool_ids = extra.get("pool_ids")
    if pool_ids is not None:
        await _existing(session, OperatorPool, pool_ids, "pool_ids")
        await set_members(session, pool_operators, "operator_id", obj.id, "pool_id", pool_ids, otype="operators")


async def _operator_read_extra(session: AsyncSession, obj: Operator) -> dict[str, Any]:
    rows = (await session.execute(
        select(OperatorSkill.skill_id, OperatorSkill.level).where(OperatorSkill.operator_id == obj.id)
        .order_by(OperatorSkill.skill_id))).all()
    return {"skills": [{"skill_id": s, "level": lv} for s, lv in rows],
            "pool_ids": await member_ids(session, pool_operators, "operator_id", obj.id, "pool_id")}


operators = Resource(
    model=Operator, path="operators", tag="operators", read_schema=OperatorRead, create_schema=OperatorCreate,
    update_schema=OperatorUpdate, read_perm=P.operators_read, write_perm=P.operators_write,
    search=("name", "extension", "description"), sort=("id", "name", "extension", "created_at", "is_active"),
    filters=("is_active", "user_id"), extra_fields=("skills", "pool_ids"),
    after_save=_operator_after_save, read_extra=_operator_read_extra,
)


async def _pool_after_save(session: AsyncSession, obj: OperatorPool, extra: dict[str, Any]) -> None:
    ids = extra.get("operator_ids")
    if ids is not None:
        await _existing(session, Operator, ids, "operator_ids")
        await set_members(session, pool_operators, "pool_id", obj.id, "operator_id", ids, otype="operator_pools")


async def _pool_read_extra(session: AsyncSession, obj: OperatorPool) -> dict[str, Any]:
    return {"operator_ids": await member_ids(session, pool_operators, "pool_id", obj.id, "operator_id")}


pools = Resource(
    model=OperatorPool, path="pools", tag="pools", read_schema=PoolRead, create_schema=PoolCreate,
    update_schema=PoolUpdate, read_perm=P.pools_read, write_perm=P.pools_write,
    search=("name", "description"), sort=("id", "name"), extra_fields=("operator_ids",),
    after_save=_pool_after_save, read_extra=_pool_read_extra,
)

routers = [crud_router(skills), crud_router(operators), crud_router(pools)]
