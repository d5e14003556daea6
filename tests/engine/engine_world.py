"""Engine test support: a runnable campaign with operators, and a harness running the real engine in virtual time.

The configuration builds on :mod:`tests.engine.selection_data` (the selection tests' world) and adds what the
engine needs: a completion code, operators with phones, a pool, a dial mode, a started campaign.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dialer.campaign import service as campaign_service
from dialer.campaign.status import Action
from dialer.core.clock import VirtualClock
from dialer.engine.runner import Engine, EngineConfig
from dialer.engine.virtual import advance, settle
from dialer.models import (
    Attempt,
    Campaign,
    EngineRun,
    Operator,
    OperatorPool,
    OperatorSkill,
    OperatorStateLog,
    Skill,
    Strategy,
    campaign_pools,
    pool_operators,
)
from dialer.models.enums import AttemptState, CampaignKind, CampaignStatus, DialMode, OutcomeCategory
from dialer.telephony.sim import SimTelephony
from dialer.telephony.traffic import Constant, Distribution, Exponential, Outcomes, Scenario, Uniform
from dialer.tools.simops import SimOperators
from tests.engine.selection_data import NOW, World, make_world

__all__ = ["NOW", "EngineWorld", "Harness", "engine_world", "scenario"]


def scenario(*, human: float = 0.3, machine: float = 0.1, busy: float = 0.1, failed: float = 0.0,
             rejected: float = 0.0, talk: Distribution | None = None, answer_after: Distribution | None = None,
             timeout: float = 26.0, seed: int = 1, operators: int = 3) -> Scenario:
    return Scenario(name="test", operators=operators, hours=8, seed=seed,
                    outcomes=Outcomes(human=human, machine=machine, busy=busy, failed=failed, rejected=rejected),
                    answer_after_s=answer_after or Uniform(3.0, 10.0), no_answer_timeout_s=timeout,
                    machine_detect_s=2.0, talk_time_s=talk or Exponential(60.0), wrap_up_s=Constant(5.0),
                    abandon_after_s=2.0, busy_after_s=Uniform(1.0, 3.0))


@dataclasses.dataclass
class EngineWorld(World):
    operator_ids: list[int] = dataclasses.field(default_factory=list)
    pool_id: int = 0
    skill_id: int = 0
    default_code_id: int = 0

    async def start(self) -> None:
        async with self.sessionmaker() as session, session.begin():
            await campaign_service.change_status(session, self.campaign_id, Action.start)

    async def act(self, action: Action, reason: str = "") -> None:
        async with self.sessionmaker() as session, session.begin():
            await campaign_service.change_status(session, self.campaign_id, action, reason)

    async def status(self) -> CampaignStatus:
        async with self.sessionmaker() as session:
            campaign = await session.get(Campaign, self.campaign_id)
            assert campaign is not None
            return campaign.status

    async def attempts(self) -> list[Attempt]:
        async with self.sessionmaker() as session:
            return list((await session.scalars(select(Attempt).where(Attempt.campaign_id == self.campaign_id)
                                               .order_by(Attempt.id))).all())

    async def periods(self, operator_id: int | None = None) -> list[OperatorStateLog]:
        stmt = select(OperatorStateLog).order_by(OperatorStateLog.id)
        if operator_id is not None:
            stmt = stmt.where(OperatorStateLog.operator_id == operator_id)
        async with self.sessionmaker() as session:
            return list((await session.scalars(stmt)).all())

    async def add_operator(self, name: str, *, skill_level: int | None = None, pool: bool = True) -> int:
        async with self.sessionmaker() as session, session.begin():
            op = Operator(name=name, extension=f"sip-{name}")
            session.add(op)
            await session.flush()
            if pool:
                await session.execute(pool_operators.insert().values(pool_id=self.pool_id, operator_id=op.id))
            if skill_level is not None:
                session.add(OperatorSkill(operator_id=op.id, skill_id=self.skill_id, level=skill_level))
            self.operator_ids.append(op.id)
            return op.id

    async def count(self, *where: Any) -> int:
        async with self.sessionmaker() as session:
            return int(await session.scalar(select(func.count()).select_from(Attempt).where(
                Attempt.campaign_id == self.campaign_id, *where)) or 0)


async def engine_world(maker: async_sessionmaker[AsyncSession], *, operators: int = 3,
                       mode: DialMode = DialMode.progressive, dial_params: dict[str, Any] | None = None,
                       kind: CampaignKind = CampaignKind.finite, contacts: int = 0, wrap_up_s: int = 60,
                       operator_wait_s: int = 2, **strategy: Any) -> EngineWorld:
    window = {k: strategy.pop(k) for k in ("call_window_start", "call_window_end") if k in strategy}
    base = await make_world(maker, **strategy)
    world = EngineWorld(**{f.name: getattr(base, f.name) for f in dataclasses.fields(World)})
    world.default_code_id = await world.code("Согласен", OutcomeCategory.answered)
    await world.code("Отказ", OutcomeCategory.answered)
    await world.code("Перезвонить", OutcomeCategory.answered)
    async with maker() as session, session.begin():
        pool = OperatorPool(name="Смена")
        skill = Skill(name="Продажи")
        session.add_all([pool, skill])
        await session.flush()
        world.pool_id, world.skill_id = pool.id, skill.id
        await session.execute(update(Strategy).where(Strategy.id == world.strategy_id).values(
            default_completion_code_id=world.default_code_id, wrap_up_s=wrap_up_s, operator_wait_s=operator_wait_s,
            **window))
        params = dict(dial_params or {})
        if mode is DialMode.predictive:
            params.setdefault("abandon_cap_pct", 3.0)
            params.setdefault("abandon_window_min", 60)
            params.setdefault("max_ratio", 3.0)
        if mode is DialMode.preview:
            params.setdefault("preview_seconds", 10)
        await session.execute(update(Campaign).where(Campaign.id == world.campaign_id).values(
            dial_mode=mode, dial_params=params, kind=kind))
        await session.execute(campaign_pools.insert().values(campaign_id=world.campaign_id, pool_id=pool.id))
    for i in range(operators):
        await world.add_operator(f"op{i + 1}")
    for _ in range(contacts):
        await world.contact()
    return world


class Harness:
    """The real engine on simulated telephony in virtual time; simulated operators unless told otherwise."""

    def __init__(self, maker: async_sessionmaker[AsyncSession], traffic: Scenario, *, epoch: datetime = NOW,
                 seed: int = 1, config: EngineConfig | None = None, sim_operators: bool = True,
                 human_operators: tuple[int, ...] = (), wrap_up: Distribution | None = None,
                 patience: Distribution | None = None, database_url: str | None = None) -> None:
        self.clock = VirtualClock(epoch=epoch)
        self.sim = SimTelephony(self.clock, traffic, seed=seed, patience_s=patience or Uniform(20.0, 40.0))
        self.engine = Engine(maker, self.sim, clock=self.clock, database_url=database_url,
                             config=config or EngineConfig(drain_s=0, seed=seed))
        self.operators = SimOperators(self.engine, self.sim, exclude=human_operators,
                                      wrap_up_s=wrap_up or Constant(5.0), seed=seed) if sim_operators else None
        self.events = self.engine.bus.subscribe(maxsize=1_000_000)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Harness]:
        async with self.engine.running():
            await self.advance(0)
            yield self
            await self.settle()

    async def advance(self, seconds: float) -> None:
        await advance(self.clock, self.engine, seconds)

    async def settle(self) -> None:
        await settle(self.clock, self.engine)

    def drain_events(self) -> list[Any]:
        out = []
        while (event := self.events.get_nowait()) is not None:
            out.append(event)
        return out


def live_states() -> tuple[AttemptState, ...]:
    return tuple(s for s in AttemptState if s is not AttemptState.done)


async def dead_run(maker: async_sessionmaker[AsyncSession]) -> int:
    """A run on another host whose heartbeat stopped a minute ago (what a crashed engine leaves); its id."""
    async with maker() as session, session.begin():
        dead = EngineRun(pid=1, host="elsewhere")
        session.add(dead)
        await session.flush()
        await session.execute(update(EngineRun).where(EngineRun.id == dead.id)
                              .values(heartbeat_at=func.now() - func.make_interval(0, 0, 0, 0, 0, 1)))
        return int(dead.id)
