"""The reports' figures against what the real engine wrote: a predictive campaign on simulated telephony in
virtual time (every category, abandoned calls included), counted again here attempt by attempt."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dialer.models import SuccessfulCode
from dialer.models.enums import DialMode
from dialer.reports import rollup, service
from dialer.reports.period import Period, ReportFilter
from tests.engine.engine_world import NOW, Harness, engine_world, scenario

MSK = ZoneInfo("Europe/Moscow")


def ms(delta: timedelta) -> int:
    return max(0, round(delta.total_seconds() * 1000))


async def test_reports_count_what_the_engine_wrote(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    world = await engine_world(sessionmaker, operators=4, mode=DialMode.predictive, contacts=120,
                               dial_params={"abandon_cap_pct": 20.0, "max_ratio": 4.0})
    async with sessionmaker() as session, session.begin():
        session.add(SuccessfulCode(code_id=world.default_code_id))
    await world.start()
    h = Harness(sessionmaker, scenario(human=0.45, machine=0.1, busy=0.15, failed=0.05, rejected=0.05, operators=4))
    async with h.running():
        await h.advance(3600)
    attempts = [a for a in await world.attempts() if a.state.value == "done"]
    categories = Counter(a.outcome.value for a in attempts if a.outcome)
    assert {"answered", "no_answer", "busy", "error"} <= set(categories), categories
    day = NOW.astimezone(MSK).date()
    now = NOW + timedelta(hours=2)
    f = ReportFilter(period=Period(day, day, MSK), now=now)
    async with sessionmaker() as session, session.begin():
        marks = await rollup.refresh(session, now + timedelta(hours=1))
    async with sessionmaker() as session:
        raw = await service.outcomes(session, f, None)
        rolled = await service.outcomes(session, f, marks)
        assert raw == rolled
        ops_raw = await service.operators(session, f, None)
        assert ops_raw == await service.operators(session, f, marks)
        states_raw = await service.states(session, f, None)
        assert states_raw == await service.states(session, f, marks)
    kpi = raw.kpi
    assert kpi.attempts == len(attempts)
    assert raw.categories.model_dump() == {**{c: categories.get(c, 0) for c in
                                              ("answered", "no_answer", "busy", "rejected", "abandoned", "error")},
                                           "total": len(attempts)}
    connected = [a for a in attempts if a.connected_at is not None]
    talk = sum(ms(a.hung_up_at - a.connected_at) for a in connected if a.hung_up_at)
    wrap = sum(ms(a.wrap_up_ended_at - a.hung_up_at) for a in connected if a.wrap_up_ended_at and a.hung_up_at)
    assert (kpi.handled, kpi.talk_ms, kpi.wrap_ms) == (len(connected), talk, wrap)
    answered = [a for a in attempts if a.outcome and a.outcome.value == "answered"]
    assert kpi.reached_contacts == len({a.contact_id for a in answered})
    assert kpi.successful == sum(1 for a in answered if a.completion_code_id == world.default_code_id)
    hours = Counter(a.queued_at.astimezone(MSK).hour for a in attempts)
    assert {r.hour: r.total for r in raw.by_hour if r.total} == dict(hours)
    # Per operator: the calls they handled, and their logged-in time is what their periods add up to.
    per_op = Counter(a.operator_id for a in connected)
    assert {r.operator_id: r.handled for r in ops_raw.rows if r.handled} == dict(per_op)
    periods = await world.periods()
    logged: dict[int, int] = defaultdict(int)
    for p in periods:
        if p.state.value != "offline":
            logged[p.operator_id] += ms(min(p.ended_at or now, f.end) - max(p.started_at, f.start))
    assert {r.operator_id: r.logged_in_ms for r in states_raw.rows} == {k: v for k, v in logged.items() if v}
    assert all(0 <= r.occupancy <= 100 for r in states_raw.rows)
    assert NOW.tzinfo is UTC
