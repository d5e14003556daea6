"""The hopper against the real database: who is dialable now, on which phone, in which order."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dialer.engine import selection
from dialer.engine.selection import (
    CALLBACK_PRIORITY,
    DEFAULT_PRIORITY,
    CampaignPlan,
    Candidate,
    dialable_count,
    fill_hopper,
)
from dialer.models import Callback, Campaign, ContactList, Operator, OperatorPool, Selection, Skill, Strategy
from dialer.models.enums import AttemptState, CallbackKind, CallbackStatus, ContactStatus, DayType, PhoneType
from tests.engine.selection_data import MSK, NOW, World, add_next_phone_column, create_indexes, make_world, number

Sessionmaker = async_sessionmaker[AsyncSession]


async def hopper(world: World, limit: int = 100, now: datetime = NOW, exclude: Sequence[int] = (),
                 plan: CampaignPlan | None = None) -> list[Candidate]:
    plan = plan or await world.plan()
    async with world.sessionmaker() as session, session.begin():
        return await fill_hopper(session, plan, now, limit, exclude)


async def ids(world: World, **kw: object) -> list[int]:
    return [c.contact_id for c in await hopper(world, **kw)]  # type: ignore[arg-type]


async def count(world: World, now: datetime = NOW) -> int:
    plan = await world.plan()
    async with world.sessionmaker() as session, session.begin():
        return await dialable_count(session, plan, now)


@pytest.fixture(autouse=True, params=["contacts_first", "phones_first"])
def route(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test twice: as the data comes (small lists: contact first) and with the contact-first
    scan capped at nothing, so every list falls back to the phone-first route."""
    monkeypatch.setattr(selection, "ZONE_CENSUS_MAX_AGE_S", 0.0)
    if request.param == "phones_first":
        monkeypatch.setattr(selection, "SCAN_CAP_MIN", 0)
        monkeypatch.setattr(selection, "SCAN_CAP_PER_ROW", 0)
    return str(request.param)


@pytest.fixture
async def world(sessionmaker: Sessionmaker) -> World:
    world = await make_world(sessionmaker)
    async with sessionmaker() as session, session.begin():
        await create_indexes(session)
    return world


async def test_default_order_timer_then_id_and_what_is_never_dialled(world: World) -> None:
    past = NOW - timedelta(minutes=5)
    older = NOW - timedelta(hours=2)
    a = await world.contact()
    b = await world.contact(next_call_at=past, status=ContactStatus.in_progress)
    c = await world.contact()
    d = await world.contact(next_call_at=older, status=ContactStatus.in_progress)
    await world.contact(next_call_at=NOW + timedelta(seconds=1), status=ContactStatus.in_progress)  # not due
    await world.contact(status=ContactStatus.done)
    await world.contact(phones=[])  # nothing to dial
    assert await ids(world) == [a, c, d, b]
    assert await ids(world, limit=3) == [a, c, d]
    assert await ids(world, exclude=[a, d]) == [c, b]
    assert await count(world) == 4
    candidates = await hopper(world, limit=1)
    phone = (await world.phones(a))[0]
    assert candidates == [Candidate(contact_id=a, phone_id=phone.id, number=phone.e164, list_id=world.list_id,
                                    selection_id=None, callback_id=None, operator_id=None, skill_id=None,
                                    min_skill_level=None, pool_id=None, priority=DEFAULT_PRIORITY,
                                    closes_at=datetime(2026, 3, 4, 18, 0, tzinfo=UTC))]  # 21:00 in Moscow
    assert await ids(world, limit=0) == []


async def test_only_the_campaigns_lists(sessionmaker: Sessionmaker) -> None:
    world = await make_world(sessionmaker, lists=3)
    async with sessionmaker() as session, session.begin():
        await create_indexes(session)
    first = [await world.contact(list_id=world.list_ids[0]) for _ in range(3)]
    second = [await world.contact(list_id=world.list_ids[1], next_call_at=NOW - timedelta(minutes=m),
                                  status=ContactStatus.in_progress) for m in (1, 30)]
    third = [await world.contact(list_id=world.list_ids[2]) for _ in range(2)]
    # a list the campaign does not use
    stray = ContactList(name="Чужой")
    await world.add(stray)
    await world.contact(list_id=stray.id)
    # several lists are merged in the campaign's order: timers first, then ids across the lists
    assert await ids(world) == [*first, *third, second[1], second[0]]
    assert await ids(world, limit=4) == [*first, third[0]]
    assert await count(world) == 7


async def test_strategy_limits(sessionmaker: Sessionmaker) -> None:
    world = await make_world(sessionmaker, max_attempts_per_contact=3, max_attempts_per_day=2,
                             pause_between_attempts_s=600)
    today, yesterday = date(2026, 3, 4), date(2026, 3, 3)
    long_ago = NOW - timedelta(hours=1)
    ok = await world.contact(attempts_total=2, attempts_today=1, attempts_day=today, last_attempt_at=long_ago)
    await world.contact(attempts_total=3, last_attempt_at=long_ago)  # used up
    await world.contact(attempts_total=2, attempts_today=2, attempts_day=today, last_attempt_at=long_ago)  # today's
    stale = await world.contact(attempts_total=2, attempts_today=2, attempts_day=yesterday, last_attempt_at=long_ago)
    await world.contact(attempts_total=1, last_attempt_at=NOW - timedelta(seconds=599))  # pausing
    paused_out = await world.contact(attempts_total=1, last_attempt_at=NOW - timedelta(seconds=600))
    assert await ids(world) == [ok, stale, paused_out]
    # "today" is the campaign's date: at 21:30 UTC on 3 March it is already 4 March in Moscow
    late = NOW.replace(day=3, hour=21, minute=30)
    await world.update(Strategy, world.strategy_id, call_window_start=time(0), call_window_end=time(0))
    assert stale not in await ids(world, now=late)


async def test_live_attempts_and_exclusions(world: World) -> None:
    a, b, c = number(), number(), number()
    busy = await world.contact(phones=[a])
    shares_number = await world.contact(phones=[a])  # the same number in another contact: not twice at once
    ok = await world.contact(phones=[b])
    finished = await world.contact(phones=[c])
    await world.live_attempt(busy, a, AttemptState.ringing)
    await world.live_attempt(finished, c, AttemptState.done)
    assert await ids(world) == [ok, finished]
    # a live attempt on the contact blocks it whatever number it dials
    await world.live_attempt(ok, number(), AttemptState.queued)
    assert await ids(world) == [finished]
    assert shares_number not in await ids(world)


async def test_dnc_numbers_and_prefixes(world: World) -> None:
    exact = await world.contact(phones=["+79161000001"])
    prefixed = await world.contact(phones=["+74951234567"])
    campaign_dnc = await world.contact(phones=["+79161000002"])
    free = await world.contact(phones=["+79161000003"])
    longer = await world.contact(phones=["+791610000041"])
    await world.dnc("+79161000001")                      # global blacklist, exact
    await world.dnc("+7495", prefix=True)                # global blacklist, prefix
    await world.dnc("+79161000002", global_list=False)   # the campaign's own list
    await world.dnc("+7916100000", prefix=False)         # an exact entry is not a prefix
    assert await ids(world) == [free, longer]
    assert {exact, prefixed, campaign_dnc}.isdisjoint(await ids(world))
    # another campaign's list does not block this one
    await world.update(Campaign, world.campaign_id, dnc_list_id=None)
    assert await ids(world) == [campaign_dnc, free, longer]


async def test_calling_window_in_each_of_the_phones_zones(sessionmaker: Sessionmaker) -> None:
    world = await make_world(sessionmaker)
    async with sessionmaker() as session, session.begin():
        await create_indexes(session)
    pf = world.phone_field_id
    moscow = await world.contact(phones=[(number(), PhoneType.mobile, pf, [MSK])])
    vladivostok = await world.contact(phones=[(number(), PhoneType.mobile, pf, ["Asia/Vladivostok"])])
    uncertain = await world.contact(phones=[(number(), PhoneType.mobile, pf, [MSK, "Asia/Vladivostok"])])
    unknown = await world.contact(phones=[(number(), PhoneType.mobile, pf, [])])
    # 10:00 UTC: Moscow 13:00, Vladivostok 20:00 — all open
    assert await ids(world) == [moscow, vladivostok, uncertain, unknown]
    # 11:30 UTC: Vladivostok 21:30 is closed, so is a number that may be there
    assert await ids(world, now=NOW.replace(hour=11, minute=30)) == [moscow, unknown]
    # 05:30 UTC: Moscow 08:30 closed, Vladivostok 15:30 open; no zone → the campaign's (Moscow): closed
    early = NOW.replace(hour=5, minute=30)
    assert await ids(world, now=early) == [vladivostok]
    assert await count(world, early) == 1
    # a campaign in Vladivostok's zone dials the phone without a zone by Vladivostok's clock
    await world.update(Campaign, world.campaign_id, time_zone="Asia/Vladivostok")
    assert await ids(world, now=early) == [vladivostok, unknown]
    # at 19:00 UTC every zone of these phones is closed: nothing, without scanning (no phone can pass)
    assert await ids(world, now=NOW.replace(hour=19)) == []


async def test_which_phone(sessionmaker: Sessionmaker) -> None:
    world = await make_world(sessionmaker)
    pf, home_f = world.phone_field_id, world.home_field_id
    home_first = await world.contact(phones=[(number(), PhoneType.home, home_f, [MSK]),
                                             (number(), PhoneType.mobile, pf, [MSK])])
    blocked_mobile = await world.contact(phones=[(n1 := number(), PhoneType.mobile, pf, [MSK]),
                                                 (number(), PhoneType.other, None, [MSK]),
                                                 (number(), PhoneType.home, home_f, [MSK])])
    await world.dnc(n1)
    only_work = await world.contact(phones=[(number(), PhoneType.work, None, [MSK])])
    phones = {cid: await world.phones(cid) for cid in (home_first, blocked_mobile, only_work)}
    # the phone field's phone first; a contact whose only dialable phones are of other types is not dialled
    chosen = {c.contact_id: c.phone_id for c in await hopper(world)}
    assert chosen == {home_first: phones[home_first][1].id}
    # with a rule switching to home phones, those are the fallback, by position
    code = await world.code("Перезвонить")
    await world.rule(code, DayType.workday, retry_interval_s=60, attempts_on_previous_number=2,
                     switch_to_phone_type=PhoneType.home)
    chosen = {c.contact_id: c.phone_id for c in await hopper(world)}
    assert chosen == {home_first: phones[home_first][1].id, blocked_mobile: phones[blocked_mobile][2].id}
    # several dialable phones of one contact still make one candidate; limit counts contacts
    more = [await world.contact(phones=[(number(), PhoneType.mobile, pf, [MSK]),
                                        (number(), PhoneType.home, home_f, [MSK])]) for _ in range(6)]
    got = await ids(world, limit=5)
    assert got == [home_first, blocked_mobile, *more[:3]]
    assert len(await ids(world)) == 8
    # the switch target remembered on the contact comes first (once contacts.next_phone_id exists)
    async with world.sessionmaker() as session, session.begin():
        await add_next_phone_column(session)
        await session.execute(text("UPDATE contacts SET next_phone_id = :p WHERE id = :c"),
                              {"p": phones[home_first][0].id, "c": home_first})
    plan = await world.plan()
    assert plan.next_phone_column
    chosen = {c.contact_id: c.phone_id for c in await hopper(world, plan=plan)}
    assert chosen[home_first] == phones[home_first][0].id
    # ... unless it is not dialable now
    await world.dnc(phones[home_first][0].e164)
    chosen = {c.contact_id: c.phone_id for c in await hopper(world, plan=plan)}
    assert chosen[home_first] == phones[home_first][1].id


async def test_selections_priority_once_and_limits(world: World) -> None:
    city, amount = str(world.city_field_id), str(world.amount_field_id)
    rich_moscow = await world.contact(data={city: "Москва", amount: 9000})
    poor_moscow = await world.contact(data={city: "Москва", amount: 10})
    rich_kazan = await world.contact(data={city: "Казань", amount: 5000})
    tired_moscow = await world.contact(data={city: "Москва", amount: 7000}, attempts_total=3)
    nobody = await world.contact(data={city: "Омск", amount: 1})
    async with world.sessionmaker() as session, session.begin():
        skill, pool = Skill(name="Продажи"), OperatorPool(name="Старшие")
        session.add_all([skill, pool])
        await session.flush()
        skill_id, pool_id = skill.id, pool.id
    moscow = await world.selection("Москва", 90, conditions=[{"field": city, "op": "eq", "value": "Москва"}],
                                   sort=[{"field": amount, "dir": "desc"}], max_attempts_total=3,
                                   skill_id=skill_id, min_skill_level=40, pool_id=pool_id)
    rich = await world.selection("Крупные", 50, conditions=[{"field": amount, "op": "ge", "value": 1000}])
    got = await hopper(world)
    # Moscow first by amount desc; tired_moscow is Moscow's (its limit stops it) and not taken by "rich"
    assert [c.contact_id for c in got] == [rich_moscow, poor_moscow, rich_kazan]
    assert [(c.selection_id, c.priority) for c in got] == [(moscow, 90), (moscow, 90), (rich, 50)]
    assert (got[0].skill_id, got[0].min_skill_level, got[0].pool_id) == (skill_id, 40, pool_id)
    assert (got[2].skill_id, got[2].min_skill_level, got[2].pool_id) == (None, None, None)
    assert tired_moscow not in [c.contact_id for c in got] and nobody not in [c.contact_id for c in got]
    assert await count(world) == 3
    # the limit is filled across selections in priority order
    assert await ids(world, limit=1) == [rich_moscow]
    # an inactive selection takes nobody and claims nobody
    await world.update(Selection, moscow, is_active=False)
    assert await ids(world) == [rich_moscow, rich_kazan, tired_moscow]
    # all selections inactive: nothing but callbacks
    await world.update(Selection, rich, is_active=False)
    assert await ids(world) == []
    assert await count(world) == 0


async def test_broken_selection_is_skipped_and_reported(world: World) -> None:
    a = await world.contact()
    await world.selection("Сломанная", 90, conditions=[{"field": "999999", "op": "eq", "value": "x"}])
    await world.selection("Все", 10)
    plan = await world.plan()
    assert len(plan.selections) == 1 and "Сломанная" in plan.problems[0]
    assert await ids(world, plan=plan) == [a]


async def test_strategy_skill_is_the_default(sessionmaker: Sessionmaker) -> None:
    world = await make_world(sessionmaker)
    async with sessionmaker() as session, session.begin():
        skill = Skill(name="Общий")
        session.add(skill)
        await session.flush()
        strategy = await session.get(Strategy, world.strategy_id)
        assert strategy is not None
        strategy.skill_id = skill.id
    await world.contact()
    got = await hopper(world)
    assert got[0].skill_id == skill.id


async def test_callbacks_first_with_affinity(world: World) -> None:
    async with world.sessionmaker() as session, session.begin():
        op = Operator(name="Анна")
        session.add(op)
        await session.flush()
        operator_id = op.id
    regular = await world.contact()
    later = NOW + timedelta(hours=1)
    # a callback overrides the timer and the attempt limits, not the calling window, DNC or a finished contact
    personal_phone, common_phone = number(), number()
    personal = await world.contact(phones=[number(), personal_phone], next_call_at=later,
                                   status=ContactStatus.in_progress)
    common = await world.contact(phones=[common_phone])
    until = NOW + timedelta(hours=12)
    cb_personal = await world.callback(personal, personal_phone, NOW - timedelta(minutes=1), until,
                                       kind=CallbackKind.personal, operator_id=operator_id)
    cb_common = await world.callback(common, common_phone, NOW - timedelta(minutes=10), until,
                                     kind=CallbackKind.common, operator_id=operator_id)
    await world.callback(common, common_phone, NOW - timedelta(minutes=5), later)  # same contact: once
    not_yet = await world.contact(next_call_at=later, status=ContactStatus.in_progress)
    await world.callback(not_yet, (await world.phones(not_yet))[0].e164, later, later + timedelta(hours=1))
    over = await world.contact(next_call_at=later, status=ContactStatus.in_progress)
    await world.callback(over, (await world.phones(over))[0].e164, NOW - timedelta(hours=1), NOW)
    done = await world.contact(status=ContactStatus.done)
    await world.callback(done, (await world.phones(done))[0].e164, NOW - timedelta(hours=1), later)
    blocked = await world.contact(next_call_at=later, status=ContactStatus.in_progress)
    await world.callback(blocked, blocked_number := (await world.phones(blocked))[0].e164,
                         NOW - timedelta(hours=1), later)
    await world.dnc(blocked_number)
    foreign = await world.contact(next_call_at=later, status=ContactStatus.in_progress)
    await world.callback(foreign, number(), NOW - timedelta(hours=1), later)  # not one of its phones
    cancelled = await world.contact(next_call_at=later, status=ContactStatus.in_progress)
    await world.callback(cancelled, (await world.phones(cancelled))[0].e164, NOW - timedelta(hours=1), later,
                         status=CallbackStatus.cancelled)
    got = await hopper(world)
    assert [c.contact_id for c in got] == [common, personal, regular]
    assert [(c.callback_id, c.operator_id, c.priority) for c in got[:2]] == [
        (cb_common, None, CALLBACK_PRIORITY), (cb_personal, operator_id, CALLBACK_PRIORITY)]
    assert got[1].number == personal_phone
    # at 19:00 UTC (22:00 in Moscow) the calling window is closed: callbacks wait too (the law's hours hold),
    # and a callback taken into the hopper carries the moment the window closes, not only its own end
    night = NOW.replace(hour=19)
    assert await hopper(world, now=night) == []
    assert await count(world, night) == 0
    assert await count(world) == 3
    assert got[0].closes_at is not None and got[0].closes_at <= until
    assert await ids(world, exclude=[common]) == [personal, regular]
    # a live attempt on the callback's contact holds it back
    await world.live_attempt(personal, number())
    assert await ids(world) == [common, regular]


async def test_closed_campaign_gives_nothing(world: World) -> None:
    await world.contact()
    await world.schedule(2, time(9), time(12))  # Wednesday until noon; it is 13:00 in Moscow
    assert await ids(world) == []
    assert await count(world) == 0
    await world.schedule(2, time(12), time(18))
    assert len(await ids(world)) == 1
    await world.holiday(date(2026, 3, 4))
    assert await ids(world) == []


async def test_selection_conditions_on_system_attributes(world: World) -> None:
    fresh = await world.contact()
    retried = await world.contact(status=ContactStatus.in_progress, attempts_total=1,
                                  last_outcome="busy", next_call_at=NOW - timedelta(minutes=1))
    await world.selection("Занятые", 80, conditions=[{"field": "last_outcome", "op": "in", "value": ["busy"]}])
    await world.selection("Новые", 20, conditions=[{"field": "status", "op": "eq", "value": "new"}])
    got = await hopper(world)
    assert [c.contact_id for c in got] == [retried, fresh]


async def test_plan_snapshot_is_independent_of_callback_rows(world: World) -> None:
    # callbacks, DNC and contacts are read live; the plan only holds configuration
    plan = await world.plan()
    contact = await world.contact()
    cb = await world.callback(contact, (await world.phones(contact))[0].e164, NOW - timedelta(minutes=1),
                              NOW + timedelta(minutes=1))
    got = await hopper(world, plan=plan)
    assert got[0].callback_id == cb
    await world.update(Callback, cb, status=CallbackStatus.done)
    got = await hopper(world, plan=plan)
    assert got[0].callback_id is None


async def test_contact_first_scan_falls_back_to_phones(sessionmaker: Sessionmaker, route: str,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    # the contact-first scan gives up after 3 contacts; the dialable ones come later in the order
    monkeypatch.setattr(selection, "SCAN_CAP_MIN", 3)
    monkeypatch.setattr(selection, "SCAN_CAP_PER_ROW", 0)
    world = await make_world(sessionmaker, lists=2)
    pf = world.phone_field_id
    closed = [await world.contact(list_id=world.list_ids[0]) for _ in range(5)]
    east = [await world.contact(list_id=world.list_ids[0],
                                phones=[(number(), PhoneType.mobile, pf, ["Asia/Vladivostok"])]) for _ in range(2)]
    other = await world.contact(list_id=world.list_ids[1],
                                phones=[(number(), PhoneType.mobile, pf, ["Asia/Vladivostok"])])
    early = NOW.replace(hour=5, minute=30)  # 08:30 in Moscow, 15:30 in Vladivostok
    assert await ids(world, now=early) == [*east, other]
    assert await ids(world, now=early, limit=2) == east
    assert await ids(world) == [*closed, *east, other]
    assert await count(world, early) == 3


async def test_zone_census(sessionmaker: Sessionmaker, route: str) -> None:
    world = await make_world(sessionmaker)
    await world.contact(phones=[(number(), PhoneType.mobile, world.phone_field_id, [MSK, "Asia/Omsk"])])
    async with sessionmaker() as session:
        assert await selection.zones_in_use(session) == {MSK, "Asia/Omsk"}  # without the GIN index: a scan
    async with sessionmaker() as session, session.begin():
        await create_indexes(session)
    await world.contact(phones=[(number(), PhoneType.mobile, world.phone_field_id, ["Asia/Tokyo", "Not/AZone"])])
    async with sessionmaker() as session:
        assert await selection.zones_in_use(session, max_age_s=3600) == {MSK, "Asia/Omsk"}  # cached
        assert await selection.zones_in_use(session) == {MSK, "Asia/Omsk", "Asia/Tokyo"}
    # zones only grow: a zone whose phones are gone stays (it only widens the array)
    async with sessionmaker() as session, session.begin():
        await session.execute(text("DELETE FROM contact_phones"))
    async with sessionmaker() as session:
        assert await selection.zones_in_use(session) == {MSK, "Asia/Omsk", "Asia/Tokyo"}
    selection.forget_zones()
    async with sessionmaker() as session:
        assert await selection.zones_in_use(session) == frozenset()


async def test_count_with_a_cap(world: World) -> None:
    for _ in range(5):
        await world.contact()
    plan = await world.plan()
    async with world.sessionmaker() as session, session.begin():
        assert await dialable_count(session, plan, NOW, cap=3) == 3
        assert await dialable_count(session, plan, NOW, cap=10) == 5


async def test_a_number_once_per_fill(world: World) -> None:
    shared = number()
    first = await world.contact(phones=[shared])
    second = await world.contact(phones=[shared])
    third = await world.contact()
    assert await ids(world) == [first, third]  # the second waits: its number is already in this fill
    assert await ids(world, exclude=[first]) == [second, third]
    cb_contact = await world.contact(phones=[shared], next_call_at=NOW + timedelta(hours=1),
                                     status=ContactStatus.in_progress)
    await world.callback(cb_contact, shared, NOW - timedelta(minutes=1), NOW + timedelta(hours=1))
    assert await ids(world) == [cb_contact, third]


async def test_plan_of_a_missing_campaign(sessionmaker: Sessionmaker) -> None:
    async with sessionmaker() as session:
        with pytest.raises(LookupError):
            await selection.load_plan(session, 424242)
