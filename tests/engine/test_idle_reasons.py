"""#13: a running campaign that places no calls says why (engine/idle.py), and the floor's payload carries it."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dialer.models import Contact, Strategy
from dialer.models.enums import PhoneType
from dialer.workplace.service import _idle_reasons
from tests.engine.engine_world import NOW, Harness, engine_world, scenario


def reasons(h: Harness, campaign_id: int) -> dict[str, dict[str, Any]]:
    stats = h.engine.stats()["campaigns"][str(campaign_id)]
    return {r["code"]: r["params"] for r in stats["idle_reasons"]}


async def test_outside_the_schedule_says_when_it_opens(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    world = await engine_world(sessionmaker, operators=2, contacts=3)
    await world.schedule(2, time(13, 10), time(18, 0))  # NOW is Wednesday 13:00 in Moscow
    await world.start()
    h = Harness(sessionmaker, scenario(human=0.5))
    async with h.running():
        await h.advance(60)
        got = reasons(h, world.campaign_id)
        assert list(got) == ["outside_schedule"]
        assert datetime.fromisoformat(got["outside_schedule"]["next_open_at"]) == NOW + timedelta(minutes=10)
        await h.advance(600)
        assert h.engine.placed > 0


async def test_no_contact_inside_its_window_says_when_the_first_opens(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    world = await engine_world(sessionmaker, operators=2)
    # 13:00 in Moscow is 19:00 in Vladivostok... and 21:00 in Kamchatka: outside 09:00–21:00 there
    for _ in range(3):
        await world.contact(phones=[("+74152000001", PhoneType.mobile, world.phone_field_id, ["Asia/Kamchatka"])])
    await world.start()
    h = Harness(sessionmaker, scenario(human=0.5))
    async with h.running():
        await h.advance(120)
        assert h.engine.placed == 0
        got = reasons(h, world.campaign_id)
        assert "no_contact_in_window" in got, got
        opens = datetime.fromisoformat(got["no_contact_in_window"]["next_window_at"])
        assert opens.astimezone(UTC).hour == 21  # 09:00 in Kamchatka (UTC+12)
        assert NOW < opens < NOW + timedelta(days=1)


async def test_waiting_for_retries_and_operators_missing(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    world = await engine_world(sessionmaker, operators=0)
    later = NOW + timedelta(hours=2)
    for _ in range(2):
        cid = await world.contact()
        async with sessionmaker() as session, session.begin():
            await session.execute(update(Contact).where(Contact.id == cid).values(next_call_at=later))
    await world.start()
    h = Harness(sessionmaker, scenario(human=0.5))
    async with h.running():
        await h.advance(120)
        got = reasons(h, world.campaign_id)
        assert datetime.fromisoformat(got["waiting_for_retry"]["next_retry_at"]) == later
        assert "no_operators" in got


async def test_no_operator_with_the_skill(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    world = await engine_world(sessionmaker, operators=2, contacts=3)
    async with sessionmaker() as session, session.begin():
        await session.execute(update(Strategy).where(Strategy.id == world.strategy_id).values(
            skill_id=world.skill_id))
    await world.start()
    h = Harness(sessionmaker, scenario(human=0.5))
    async with h.running():
        await h.advance(60)
        assert h.engine.placed == 0
        got = reasons(h, world.campaign_id)
        assert got["no_operator_with_skill"] == {"skill_ids": [world.skill_id]}


def test_the_floor_adds_what_only_the_web_sees() -> None:
    engine = {"idle_reasons": [{"code": "no_operators", "params": {}}]}
    got = _idle_reasons("running", "", engine, {}, True, 4.23, 3.0)
    assert [r.code for r in got] == ["no_operators", "trunk_down", "over_abandon_cap"]
    assert got[2].params == {"abandon_pct": 4.23, "cap_pct": 3.0}
    assert _idle_reasons("running", "", engine, {"dialing": 2}, True, 4.23, 3.0) == []  # it dials
    assert [r.code for r in _idle_reasons("auto_paused", "10 errors in a row", None, {}, False, 0, 3)] == \
        ["auto_stopped"]
    assert _idle_reasons("running", "", None, {}, True, 0, 3) == []  # no engine: the floor says that itself


def test_the_abandon_rate_comes_with_its_uncertainty() -> None:
    from dialer.workplace.service import wilson_upper_pct
    assert wilson_upper_pct(0, 0) == 0.0
    assert 15.0 < wilson_upper_pct(2, 40) < 17.5  # 5% of 40 answers: could be three times as much
    assert 3.0 < wilson_upper_pct(60, 2000) < 3.9  # 3% of 2,000: much tighter
    assert wilson_upper_pct(40, 40) == 100.0
