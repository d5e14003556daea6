"""apply_result against the real database: counters, the rules at work, DNC, callbacks, switching phones."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dialer.engine import selection
from dialer.engine.outcome import (
    CALLBACK_WINDOW,
    AttemptResult,
    ContactDecision,
    Reason,
    apply_result,
    apply_results,
)
from dialer.engine.selection import CampaignPlan, fill_hopper
from dialer.models import AuditEntry, Callback, Campaign, DncEntry, DncList, Operator, Strategy
from dialer.models.enums import (
    AttemptState,
    CallbackKind,
    CallbackStatus,
    ContactStatus,
    DayType,
    OutcomeCategory,
    PhoneType,
)
from tests.engine.selection_data import MSK, NOW, World, add_next_phone_column, create_indexes, make_world, number

Sessionmaker = async_sessionmaker[AsyncSession]


@pytest.fixture(autouse=True)
def fresh_census(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(selection, "ZONE_CENSUS_MAX_AGE_S", 0.0)


_MODE = {"batch": False}


@pytest.fixture(autouse=True, params=["one_by_one", "batch"])
def apply_mode(request: pytest.FixtureRequest) -> None:
    """Every test through :func:`apply_result` and through the journal's batched :func:`apply_results`."""
    _MODE["batch"] = request.param == "batch"


@pytest.fixture
async def world(sessionmaker: Sessionmaker) -> World:
    world = await make_world(sessionmaker, common_retry_interval_s=1800)
    async with sessionmaker() as session, session.begin():
        await create_indexes(session)
    return world


async def finish(world: World, contact_id: int | None, code: str | int, *, now: datetime = NOW,
                 plan: CampaignPlan | None = None, e164: str | None = None,
                 category: OutcomeCategory | None = None, machine: bool = False, callback_id: int | None = None,
                 **kw: Any) -> ContactDecision:
    """One attempt of the contact ends: the attempt row as the runner leaves it, then apply_result."""
    plan = plan or await world.plan()
    code_id = code if isinstance(code, int) else world.codes[code]
    if category is None:
        category = plan.codes[code_id].category if code_id in plan.codes else OutcomeCategory.answered
    phone_id = None
    if e164 is None and contact_id is not None:
        first = (await world.phones(contact_id))[0]
        e164, phone_id = first.e164, first.id
    elif contact_id is not None:
        phone_id = next((p.id for p in await world.phones(contact_id) if p.e164 == e164), None)
    assert e164 is not None
    attempt_id = await world.live_attempt(contact_id, e164, AttemptState.done, outcome=category,
                                          completion_code_id=code_id, answered_by="machine" if machine else "human",
                                          callback_id=callback_id, phone_id=phone_id)
    result = AttemptResult(attempt_id=attempt_id, campaign_id=world.campaign_id, contact_id=contact_id,
                           phone_id=phone_id, number=e164, category=category, completion_code_id=code_id,
                           answered_by_machine=machine, **kw)
    async with world.sessionmaker() as session, session.begin():
        if _MODE["batch"]:
            (decision,) = await apply_results(session, [(plan, result, now)])
            return decision
        return await apply_result(session, plan, result, now)


async def test_counters_status_and_timer(world: World) -> None:
    cid = await world.contact()
    decision = await finish(world, cid, "no_answer")
    assert decision == ContactDecision(False, NOW + timedelta(seconds=1800), None, Reason.common_interval)
    c = await world.get_contact(cid)
    assert (c.attempts_total, c.attempts_today, c.attempts_day) == (1, 1, date(2026, 3, 4))
    assert (c.status, c.last_outcome, c.last_attempt_at, c.next_call_at) == (
        ContactStatus.in_progress, OutcomeCategory.no_answer, NOW, NOW + timedelta(seconds=1800))
    await finish(world, cid, "busy", now=NOW + timedelta(hours=1))
    c = await world.get_contact(cid)
    assert (c.attempts_total, c.attempts_today, c.last_outcome) == (2, 2, OutcomeCategory.busy)
    # 21:30 UTC is 00:30 on 5 March in Moscow: a new day for the per-day counter
    await finish(world, cid, "busy", now=NOW.replace(hour=21, minute=30))
    c = await world.get_contact(cid)
    assert (c.attempts_total, c.attempts_today, c.attempts_day) == (3, 1, date(2026, 3, 5))
    # the engine's bookkeeping is not audited per call (the attempt row is the record)
    async with world.sessionmaker() as session:
        assert not await session.scalar(select(func.count()).select_from(AuditEntry)
                                         .where(AuditEntry.object_type == "contacts", AuditEntry.action == "updated",
                                                AuditEntry.object_id == str(cid)))


async def test_outcome_retries_count_their_own_attempts(world: World) -> None:
    await world.retry("busy", [15, 60], 3)
    await world.retry("no_answer", [240], 2)
    await world.retry("machine", [30], 2)
    cid = await world.contact()
    plan = await world.plan()
    assert (await finish(world, cid, "busy", plan=plan)).next_call_at == NOW + timedelta(minutes=15)
    assert (await finish(world, cid, "no_answer", plan=plan)).next_call_at == NOW + timedelta(minutes=240)
    assert (await finish(world, cid, "busy", plan=plan)).next_call_at == NOW + timedelta(minutes=60)
    # answering machines have their own setting and do not count as "no answer"
    machine = await finish(world, cid, "answering_machine", plan=plan, machine=True)
    assert (machine.reason, machine.next_call_at) == (Reason.outcome_retry, NOW + timedelta(minutes=30))
    assert (await finish(world, cid, "no_answer", plan=plan)).reason == Reason.outcome_exhausted
    c = await world.get_contact(cid)
    assert (c.status, c.next_call_at, c.attempts_total) == (ContactStatus.done, None, 5)


async def test_machine_without_its_own_setting_uses_its_category(world: World) -> None:
    await world.retry("no_answer", [10, 20], 3)
    cid = await world.contact()
    plan = await world.plan()
    assert (await finish(world, cid, "answering_machine", plan=plan, machine=True)).next_call_at == \
        NOW + timedelta(minutes=10)
    assert (await finish(world, cid, "no_answer", plan=plan)).next_call_at == NOW + timedelta(minutes=20)
    assert (await finish(world, cid, "answering_machine", plan=plan, machine=True)).final


async def test_result_rules_by_day_type(world: World) -> None:
    think = await world.code("Думает")
    await world.rule(think, DayType.workday, retry_interval_s=600)
    await world.rule(think, DayType.holiday, is_final=True)
    await world.holiday(date(2026, 3, 9))                  # a Monday off
    await world.holiday(date(2026, 3, 7), working=True)    # a working Saturday
    plan = await world.plan()
    cases = [(NOW, Reason.rule_retry), (datetime(2026, 3, 8, 9, tzinfo=NOW.tzinfo), Reason.rule_final),
             (datetime(2026, 3, 9, 9, tzinfo=NOW.tzinfo), Reason.rule_final),
             (datetime(2026, 3, 7, 9, tzinfo=NOW.tzinfo), Reason.rule_retry)]
    for when, reason in cases:
        cid = await world.contact()
        assert (await finish(world, cid, think, now=when, plan=plan)).reason == reason, when
    # a rule beats the outcome retries of the code's category
    await world.retry("answered", [1], 1)
    cid = await world.contact()
    assert (await finish(world, cid, think)).reason == Reason.rule_retry


async def test_final_codes_and_the_attempt_limit(world: World) -> None:
    await world.update(Strategy, world.strategy_id, max_attempts_per_contact=2)
    bought = await world.code("Купил", is_final=True)
    cid = await world.contact()
    assert (await finish(world, cid, "busy")).reason == Reason.common_interval
    assert (await finish(world, cid, "busy")).reason == Reason.max_attempts
    assert (await world.get_contact(cid)).status == ContactStatus.done
    other = await world.contact()
    decision = await finish(world, other, bought)
    assert decision == ContactDecision(True, None, None, Reason.final_code)
    c = await world.get_contact(other)
    assert (c.status, c.next_call_at, c.attempts_total) == (ContactStatus.done, None, 1)


async def test_never_call_goes_into_dnc(world: World) -> None:
    shared = number()
    cid = await world.contact(phones=[shared])
    twin = await world.contact(phones=[shared])  # another contact with the same number
    decision = await finish(world, cid, "answered", never_call=True)
    assert decision == ContactDecision(True, None, None, Reason.never_call, add_to_dnc=True)
    async with world.sessionmaker() as session:
        entries = (await session.execute(select(DncEntry.list_id, DncEntry.number, DncEntry.is_prefix))).all()
        global_id = (await session.scalars(select(DncList.id).where(DncList.is_global))).one()
        audited = await session.scalar(select(func.count()).select_from(AuditEntry)
                                       .where(AuditEntry.object_type == "dnc_entries"))
    assert entries == [(global_id, shared, False)]  # the campaign has no list of its own: the blacklist
    assert audited == 1
    assert (await world.get_contact(cid)).status == ContactStatus.done
    plan = await world.plan()
    async with world.sessionmaker() as session, session.begin():
        assert twin not in [c.contact_id for c in await fill_hopper(session, plan, NOW, 10)]
    # twice is fine (the entry is there already); a code that adds to DNC uses the campaign's own list
    await finish(world, twin, "answered", never_call=True)
    async with world.sessionmaker() as session, session.begin():
        own = DncList(name="Кампания")
        session.add(own)
        await session.flush()
        campaign = await session.get(Campaign, world.campaign_id)
        assert campaign is not None
        campaign.dnc_list_id = own.id
        own_id = own.id
    complaint = await world.code("Жалоба", adds_to_dnc=True)
    third = await world.contact()
    assert (await finish(world, third, complaint)).reason == Reason.dnc_code
    async with world.sessionmaker() as session:
        lists = (await session.scalars(select(DncEntry.list_id).order_by(DncEntry.id))).all()
    assert lists == [global_id, own_id]


async def test_postpone_makes_a_callback(world: World) -> None:
    async with world.sessionmaker() as session, session.begin():
        op = Operator(name="Анна")
        session.add(op)
        await session.flush()
        operator_id = op.id
    cid = await world.contact()
    e164 = (await world.phones(cid))[0].e164
    old = await world.callback(cid, e164, NOW + timedelta(days=1), NOW + timedelta(days=2))
    served = await world.callback(cid, e164, NOW - timedelta(minutes=5), NOW + timedelta(minutes=55))
    at = NOW + timedelta(hours=2)
    decision = await finish(world, cid, "answered", callback_at=at, callback_operator_id=operator_id,
                            callback_id=served, comment="Перезвонить после 15:00, спросить Ивана")
    assert decision == ContactDecision(False, at, None, Reason.postponed)
    async with world.sessionmaker() as session:
        rows = (await session.scalars(select(Callback).order_by(Callback.id))).all()
    assert [(r.id, r.status) for r in rows[:2]] == [(old, CallbackStatus.cancelled), (served, CallbackStatus.done)]
    new = rows[2]
    assert (new.kind, new.operator_id, new.number, new.window_start, new.window_end, new.status, new.contact_id) == (
        CallbackKind.personal, operator_id, e164, at, at + CALLBACK_WINDOW, CallbackStatus.pending, cid)
    assert new.comment == "Перезвонить после 15:00, спросить Ивана"  # what the operator wrote when booking it
    c = await world.get_contact(cid)
    assert (c.status, c.next_call_at) == (ContactStatus.in_progress, at)
    # the hopper offers it at that time, to that operator
    plan = await world.plan()
    async with world.sessionmaker() as session, session.begin():
        assert await fill_hopper(session, plan, NOW + timedelta(minutes=30), 10) == []
        got = await fill_hopper(session, plan, at + timedelta(minutes=1), 10)
    assert [(g.contact_id, g.callback_id, g.operator_id) for g in got] == [(cid, new.id, operator_id)]
    # a common postpone; then a final code cancels what is pending
    await finish(world, cid, "answered", callback_at=at + timedelta(hours=1), callback_id=new.id)
    async with world.sessionmaker() as session:
        latest = (await session.scalars(select(Callback).order_by(Callback.id.desc()).limit(1))).one()
    assert (latest.kind, latest.operator_id, latest.status) == (CallbackKind.common, None, CallbackStatus.pending)
    bought = await world.code("Купил", is_final=True)
    await finish(world, cid, bought)
    async with world.sessionmaker() as session:
        pending = await session.scalar(select(func.count()).select_from(Callback)
                                       .where(Callback.status == CallbackStatus.pending))
    assert pending == 0


async def test_switch_to_another_phone(sessionmaker: Sessionmaker) -> None:
    world = await make_world(sessionmaker, common_retry_interval_s=1800)
    async with sessionmaker() as session, session.begin():
        await create_indexes(session)
        await add_next_phone_column(session)
    no_answer = world.codes["no_answer"]
    await world.rule(no_answer, DayType.workday, retry_interval_s=0, attempts_on_previous_number=2,
                     switch_to_phone_type=PhoneType.home)
    mobile, home = number(), number()
    cid = await world.contact(phones=[(mobile, PhoneType.mobile, world.phone_field_id, [MSK]),
                                      (number(), PhoneType.work, None, [MSK]),
                                      (home, PhoneType.home, world.home_field_id, [MSK])])
    plan = await world.plan()

    async def dialled() -> str:
        async with world.sessionmaker() as session, session.begin():
            got = await fill_hopper(session, plan, NOW, 1)
        assert [g.contact_id for g in got] == [cid]
        return got[0].number

    assert await dialled() == mobile
    assert (await finish(world, cid, no_answer, plan=plan, e164=mobile)).reason == Reason.rule_retry
    assert await dialled() == mobile
    decision = await finish(world, cid, no_answer, plan=plan, e164=mobile)
    assert (decision.reason, decision.switch_to_phone_type) == (Reason.rule_switch, PhoneType.home)
    assert await dialled() == home
    # on the home number the count starts again; it has no other home phone to switch to
    assert (await finish(world, cid, no_answer, plan=plan, e164=home)).reason == Reason.rule_retry
    assert (await finish(world, cid, no_answer, plan=plan, e164=home)).reason == Reason.switch_unavailable
    assert await dialled() == home
    async with world.sessionmaker() as session:
        stored = await session.scalar(text("SELECT next_phone_id FROM contacts WHERE id = :c"), {"c": cid})
    assert stored == next(p.id for p in await world.phones(cid) if p.e164 == home)


async def test_switch_without_the_column_is_reported_only(world: World) -> None:
    no_answer = world.codes["no_answer"]
    await world.rule(no_answer, DayType.workday, retry_interval_s=60, attempts_on_previous_number=1,
                     switch_to_phone_type=PhoneType.home)
    cid = await world.contact(phones=[number(), (number(), PhoneType.home, world.home_field_id, [MSK])])
    decision = await finish(world, cid, no_answer)
    assert (decision.reason, decision.switch_to_phone_type) == (Reason.rule_switch, PhoneType.home)
    assert (await world.get_contact(cid)).next_call_at == NOW + timedelta(seconds=60)


async def test_attempt_without_contact_and_codes_made_later(world: World) -> None:
    plan = await world.plan()
    late = await world.code("Новый код", is_final=True)
    decision = await finish(world, None, late, plan=plan, e164=number(), never_call=False)
    assert decision == ContactDecision(True, None, None, Reason.final_code)
    e164 = number()
    decision = await finish(world, None, "answered", plan=plan, e164=e164, never_call=True)
    assert decision.add_to_dnc
    async with world.sessionmaker() as session:
        assert (await session.scalars(select(DncEntry.number))).all() == [e164]
    unknown = AttemptResult(attempt_id=1, campaign_id=world.campaign_id, contact_id=None, phone_id=None,
                            number=number(), category=OutcomeCategory.error, completion_code_id=999_999)
    async with world.sessionmaker() as session, session.begin():
        with pytest.raises(LookupError):
            await apply_result(session, plan, unknown, NOW)


async def test_a_batch_with_many_contacts_and_one_twice(world: World) -> None:
    plan = await world.plan()
    a, b = await world.contact(), await world.contact()
    items = []
    for cid, code in ((a, "busy"), (b, "no_answer"), (a, "no_answer")):
        phone = (await world.phones(cid))[0]
        code_id = world.codes[code]
        category = plan.codes[code_id].category
        attempt_id = await world.live_attempt(cid, phone.e164, AttemptState.done, outcome=category,
                                              completion_code_id=code_id, phone_id=phone.id)
        items.append((plan, AttemptResult(attempt_id=attempt_id, campaign_id=world.campaign_id, contact_id=cid,
                                          phone_id=phone.id, number=phone.e164, category=category,
                                          completion_code_id=code_id), NOW))
    async with world.sessionmaker() as session, session.begin():
        decisions = await apply_results(session, items)
    assert len(decisions) == 3 and not any(d.final for d in decisions)
    ca, cb = await world.get_contact(a), await world.get_contact(b)
    # contact a twice in one batch: counted twice, the later attempt's outcome last (as one by one)
    assert (ca.attempts_total, ca.attempts_today, ca.last_outcome) == (2, 2, OutcomeCategory.no_answer)
    assert (cb.attempts_total, cb.last_outcome, cb.status) == (1, OutcomeCategory.no_answer,
                                                               ContactStatus.in_progress)
