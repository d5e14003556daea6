"""Test data for the selection and outcome tests: a campaign with its strategy, lists, contacts and phones.

Rows are inserted through the ORM directly (the engine depends only on the data model), each
helper in its own short transaction like the engine's units of work.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence
from datetime import UTC, date, datetime, time
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dialer.engine.selection import INDEXES, CampaignPlan, load_plan
from dialer.models import (
    Attempt,
    Callback,
    Campaign,
    CampaignSchedule,
    CompletionCode,
    CompletionCodeGroup,
    Contact,
    ContactList,
    ContactPhone,
    DncEntry,
    DncList,
    Field,
    Holiday,
    Selection,
    Strategy,
    StrategyOutcomeRetry,
    StrategyResultRule,
    campaign_lists,
    completion_code_group_members,
)
from dialer.models.enums import AttemptState, CampaignKind, DayType, FieldType, OutcomeCategory, PhoneType

#: Wednesday 4 March 2026, 10:00 UTC: 13:00 in Moscow, 20:00 in Vladivostok, 11:00 in Kaliningrad.
NOW = datetime(2026, 3, 4, 10, 0, tzinfo=UTC)
MSK = "Europe/Moscow"
_numbers = itertools.count(1)


def number() -> str:
    """A fresh Russian mobile number."""
    return f"+7916{next(_numbers):07d}"


@dataclasses.dataclass
class World:
    """Ids of one campaign's configuration."""

    sessionmaker: async_sessionmaker[AsyncSession]
    campaign_id: int
    strategy_id: int
    list_ids: list[int]
    phone_field_id: int
    home_field_id: int
    city_field_id: int
    amount_field_id: int
    group_id: int
    codes: dict[str, int]  # system_key or name → id

    @property
    def list_id(self) -> int:
        return self.list_ids[0]

    async def plan(self) -> CampaignPlan:
        async with self.sessionmaker() as session:
            return await load_plan(session, self.campaign_id)

    async def add(self, *rows: Any) -> None:
        async with self.sessionmaker() as session, session.begin():
            session.add_all(rows)

    async def contact(self, *, list_id: int | None = None, phones: Sequence[str | tuple[Any, ...]] | None = None,
                      data: dict[str, Any] | None = None, **system: Any) -> int:
        """A contact with phones: a number (mobile of the phone field, Moscow) or a tuple
        ``(e164, phone_type, field_id, zones)``; by default one fresh mobile number."""
        lid = list_id if list_id is not None else self.list_id
        async with self.sessionmaker() as session, session.begin():
            contact = Contact(list_id=lid, data=data or {}, **system)
            session.add(contact)
            await session.flush()
            for position, phone in enumerate(phones if phones is not None else [number()]):
                e164, ptype, field_id, zones = (phone, PhoneType.mobile, self.phone_field_id, [MSK]) \
                    if isinstance(phone, str) else phone
                session.add(ContactPhone(contact_id=contact.id, list_id=lid, field_id=field_id, phone_type=ptype,
                                         position=position, raw=e164, e164=e164, timezones=list(zones),
                                         tz_uncertain=len(zones) > 1))
            return contact.id

    async def phones(self, contact_id: int) -> list[ContactPhone]:
        async with self.sessionmaker() as session:
            return list((await session.scalars(select(ContactPhone).where(ContactPhone.contact_id == contact_id)
                                               .order_by(ContactPhone.position))).all())

    async def get_contact(self, contact_id: int) -> Contact:
        async with self.sessionmaker() as session:
            found = await session.get(Contact, contact_id)
            assert found is not None
            return found

    async def update(self, model: type[Any], row_id: int, **values: Any) -> None:
        async with self.sessionmaker() as session, session.begin():
            obj = await session.get(model, row_id)
            for key, value in values.items():
                setattr(obj, key, value)

    async def selection(self, name: str, priority: int = 50, **kw: Any) -> int:
        async with self.sessionmaker() as session, session.begin():
            sel = Selection(campaign_id=self.campaign_id, name=name, priority=priority, **kw)
            session.add(sel)
            await session.flush()
            return sel.id

    async def dnc(self, entry: str, *, prefix: bool = False, global_list: bool = True) -> None:
        async with self.sessionmaker() as session, session.begin():
            if global_list:
                list_id = (await session.scalars(select(DncList.id).where(DncList.is_global))).one()
            else:
                campaign = await session.get(Campaign, self.campaign_id)
                assert campaign is not None
                if campaign.dnc_list_id is None:
                    own = DncList(name=f"DNC {self.campaign_id}")
                    session.add(own)
                    await session.flush()
                    campaign.dnc_list_id = own.id
                list_id = campaign.dnc_list_id
            session.add(DncEntry(list_id=list_id, number=entry, is_prefix=prefix))

    async def live_attempt(self, contact_id: int | None, e164: str, state: AttemptState = AttemptState.dialing,
                           **kw: Any) -> int:
        async with self.sessionmaker() as session, session.begin():
            attempt = Attempt(campaign_id=self.campaign_id, contact_id=contact_id, number=e164, state=state,
                              queued_at=NOW, **kw)
            session.add(attempt)
            await session.flush()
            return attempt.id

    async def callback(self, contact_id: int | None, e164: str, start: datetime, end: datetime, **kw: Any) -> int:
        async with self.sessionmaker() as session, session.begin():
            cb = Callback(campaign_id=self.campaign_id, contact_id=contact_id, number=e164, window_start=start,
                          window_end=end, **kw)
            session.add(cb)
            await session.flush()
            return cb.id

    async def code(self, name: str, category: OutcomeCategory = OutcomeCategory.answered, **kw: Any) -> int:
        async with self.sessionmaker() as session, session.begin():
            code = CompletionCode(name=name, category=category, **kw)
            session.add(code)
            await session.flush()
            await session.execute(completion_code_group_members.insert().values(group_id=self.group_id,
                                                                                code_id=code.id))
            self.codes[name] = code.id
            return code.id

    async def retry(self, outcome: str, intervals_min: list[int], max_attempts: int) -> None:
        await self.add(StrategyOutcomeRetry(strategy_id=self.strategy_id, outcome=outcome,
                                            intervals_min=intervals_min, max_attempts=max_attempts))

    async def rule(self, code_id: int, day: DayType = DayType.workday, **kw: Any) -> None:
        await self.add(StrategyResultRule(strategy_id=self.strategy_id, completion_code_id=code_id, day_type=day,
                                          **kw))

    async def holiday(self, day: date, *, working: bool = False) -> None:
        await self.add(Holiday(day=day, name="", is_working_day=working))

    async def schedule(self, weekday: int, start: time, end: time) -> None:
        await self.add(CampaignSchedule(campaign_id=self.campaign_id, weekday=weekday, start=start, end=end))


async def make_world(sessionmaker: async_sessionmaker[AsyncSession], *, lists: int = 1,
                     time_zone: str = MSK, **strategy: Any) -> World:
    """A campaign over ``lists`` new lists; the strategy dials the mobile phone field 09:00–21:00."""
    async with sessionmaker() as session, session.begin():
        phone = Field(name="Телефон", type=FieldType.phone, phone_type=PhoneType.mobile, options=[])
        home = Field(name="Домашний", type=FieldType.phone, phone_type=PhoneType.home, options=[])
        city = Field(name="Город", type=FieldType.string, options=[])
        amount = Field(name="Сумма", type=FieldType.decimal, options=[])
        session.add_all([phone, home, city, amount])
        contact_lists = [ContactList(name=f"Список {i + 1}") for i in range(lists)]
        session.add_all(contact_lists)
        group = CompletionCodeGroup(name="Коды")
        session.add(group)
        await session.flush()
        codes = {c.system_key or c.name: c.id for c in (await session.scalars(select(CompletionCode))).all()}
        await session.execute(completion_code_group_members.insert(),
                              [{"group_id": group.id, "code_id": cid} for cid in codes.values()])
        strat = Strategy(name="Обычная", phone_field_id=phone.id, call_window_start=time(9), call_window_end=time(21),
                         **strategy)
        session.add(strat)
        await session.flush()
        campaign = Campaign(name="Весна", strategy_id=strat.id, completion_code_group_id=group.id,
                            time_zone=time_zone, dial_params={})
        session.add(campaign)
        await session.flush()
        await session.execute(campaign_lists.insert(), [{"campaign_id": campaign.id, "list_id": cl.id}
                                                         for cl in contact_lists])
        return World(sessionmaker, campaign.id, strat.id, [cl.id for cl in contact_lists], phone.id, home.id,
                     city.id, amount.id, group.id, codes)


async def create_indexes(session: AsyncSession) -> None:
    """The hopper's indexes (proposed for a migration), created here until they are migrated."""
    for name, ddl in INDEXES.items():
        await session.execute(text(ddl.replace(f"INDEX {name}", f"INDEX IF NOT EXISTS {name}")))


async def add_next_phone_column(session: AsyncSession) -> None:
    """The proposed ``contacts.next_phone_id`` column, as its migration would add it."""
    await session.execute(text(
        "ALTER TABLE contacts ADD COLUMN IF NOT EXISTS next_phone_id BIGINT "
        "REFERENCES contact_phones (id) ON DELETE SET NULL"))


def make_plan(**overrides: Any) -> CampaignPlan:
    """A plan built in memory (for the pure functions): Moscow, 09:00–21:00, no schedule, no rules."""
    values: dict[str, Any] = dict(
        campaign_id=1, name="Весна", kind=CampaignKind.finite, time_zone=MSK, start_at=None, list_ids=(1,),
        schedule=(), holidays={}, dnc_list_id=None, global_dnc_list_id=1, strategy_id=1, phone_field_id=1,
        skill_id=None, call_window_start=time(9), call_window_end=time(21), max_attempts_per_contact=None,
        max_attempts_per_day=None, pause_between_attempts_s=0, common_retry_interval_s=3600, outcome_retries={},
        result_rules={}, codes={}, selections=(), has_selections=False, fields={}, problems=(),
        next_phone_column=False, loaded_at=NOW)
    values.update(overrides)
    return CampaignPlan(**values)
