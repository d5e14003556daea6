"""End to end: a progressive campaign on simulated telephony in virtual time against the real database."""

from __future__ import annotations

import itertools
from collections import defaultdict

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dialer.engine import events as ev
from dialer.models import Contact
from dialer.models.enums import (
    AttemptState,
    CampaignStatus,
    ContactStatus,
    DialMode,
    OperatorState,
    OutcomeCategory,
    PhoneType,
)
from tests.engine.engine_world import Harness, engine_world, scenario
from tests.engine.selection_data import number

STAGES = ("queued_at", "dialed_at", "ringing_at", "answered_at", "connected_at", "hung_up_at", "wrap_up_ended_at")


async def test_progressive_campaign(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    world = await engine_world(sessionmaker, operators=3, mode=DialMode.progressive, max_attempts_per_contact=3)
    await world.retry("busy", [1], 3)
    await world.retry("no_answer", [1], 3)
    await world.retry("machine", [1], 3)
    await world.retry("rejected", [1], 3)
    await world.retry("error", [1], 3)
    ids = [await world.contact() for _ in range(40)]
    blocked = number()
    dnc_ids = [await world.contact(phones=[blocked])]
    await world.dnc(blocked)
    campaign_blocked = number()
    dnc_ids.append(await world.contact(phones=[campaign_blocked]))
    await world.dnc(campaign_blocked, global_list=False)
    night = [await world.contact(phones=[(number(), PhoneType.mobile, world.phone_field_id, ["America/New_York"])])
             for _ in range(3)]  # 05:00 there: outside the 09:00–21:00 window
    await world.start()
    h = Harness(sessionmaker, scenario(human=0.4, machine=0.1, busy=0.2, failed=0.05, rejected=0.05))
    async with h.running():
        await h.advance(2 * 3600)
    attempts = await world.attempts()
    assert len(attempts) >= 40
    by_contact = defaultdict(list)
    for a in attempts:
        # every attempt ends exactly once, in one category, with a code
        assert a.state is AttemptState.done and a.outcome is not None and a.completion_code_id is not None
        by_contact[a.contact_id].append(a)
        # stages in order
        stamps = [getattr(a, s) for s in STAGES if getattr(a, s) is not None]
        assert stamps == sorted(stamps), a.id
        if a.answered_by == "machine":
            assert a.outcome is OutcomeCategory.no_answer and a.completion_code_id == world.codes["answering_machine"]
        elif a.outcome is OutcomeCategory.busy:
            assert (a.completion_code_id, a.sip_code, a.hangup_cause) == (world.codes["busy"], 486, "486 Busy Here")
        elif a.outcome is OutcomeCategory.rejected:
            assert (a.completion_code_id, a.sip_code) == (world.codes["rejected"], 603)
        elif a.outcome is OutcomeCategory.error:
            assert (a.completion_code_id, a.sip_code) == (world.codes["error"], 503)
        elif a.connected_at is not None:
            assert a.outcome is OutcomeCategory.answered and a.operator_id in world.operator_ids
            assert a.completion_code_id in {world.codes[n] for n in ("Согласен", "Отказ", "Перезвонить")}
            assert a.wrap_up_ended_at is not None and a.hangup_side == "customer"
    # progressive: a live answer always has its operator, so nothing is abandoned
    assert not [a for a in attempts if a.outcome is OutcomeCategory.abandoned]
    assert all((a.connected_at - a.answered_at).total_seconds() < 2 for a in attempts if a.answered_by == "human")
    # never DNC numbers, never outside the calling window
    assert not set(by_contact) & set(dnc_ids + night)
    # never a contact twice at once; retries come after the previous attempt ended
    for rows in by_contact.values():
        for before, after in itertools.pairwise(rows):
            assert after.queued_at >= (before.wrap_up_ended_at or before.hung_up_at)
    assert any(len(rows) > 1 for rows in by_contact.values())
    # the contacts' counters follow their attempts
    async with sessionmaker() as session:
        contacts = {c.id: c for c in (await session.scalars(select(Contact).where(Contact.id.in_(ids)))).all()}
    for cid, rows in by_contact.items():
        assert contacts[cid].attempts_total == len(rows)
        assert contacts[cid].last_outcome is rows[-1].outcome
    # the strategy decided for each: finished, or the next call scheduled
    assert all(c.status is ContactStatus.done or (c.status is ContactStatus.in_progress and c.next_call_at)
               for cid, c in contacts.items() if cid in by_contact)
    assert sum(1 for c in contacts.values() if c.status is ContactStatus.done) >= 20
    # one row per period, contiguous, all closed after the engine stopped; calls carry their attempt
    for op_id in world.operator_ids:
        periods = await world.periods(op_id)
        assert periods and all(p.ended_at is not None for p in periods)
        for before, after in itertools.pairwise(periods):
            assert before.ended_at == after.started_at
            assert before.state != after.state or before.state is OperatorState.paused
        assert all(p.attempt_id for p in periods if p.state in (OperatorState.in_call, OperatorState.wrap_up))
        assert {p.state for p in periods} >= {OperatorState.ready, OperatorState.reserved, OperatorState.in_call,
                                               OperatorState.wrap_up}
    # the bus told the story: every attempt finished once
    finished = [e for e in h.drain_events() if isinstance(e, ev.AttemptFinished)]
    assert sorted(e.attempt_id for e in finished) == sorted(a.id for a in attempts)


async def test_finite_campaign_finishes(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    world = await engine_world(sessionmaker, operators=3, mode=DialMode.progressive, max_attempts_per_contact=1)
    for _ in range(20):
        await world.contact()
    await world.start()
    h = Harness(sessionmaker, scenario(human=0.5, machine=0.1, busy=0.2))
    async with h.running():
        await h.advance(1800)
        assert await world.status() is CampaignStatus.finished
        assert world.campaign_id not in h.engine.campaigns  # nothing left in flight: the runtime is gone
    assert len(await world.attempts()) == 20
    events = h.drain_events()
    assert any(isinstance(e, ev.CampaignFinished) for e in events)


async def test_infinite_campaign_waits_for_new_contacts(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    from dialer.models.enums import CampaignKind

    world = await engine_world(sessionmaker, operators=2, kind=CampaignKind.infinite, max_attempts_per_contact=1)
    for _ in range(5):
        await world.contact()
    await world.start()
    h = Harness(sessionmaker, scenario(human=0.5))
    async with h.running():
        await h.advance(900)
        assert len(await world.attempts()) == 5 and await world.status() is CampaignStatus.running
        late = await world.contact()
        await h.advance(120)
        await h.settle()
        assert late in {a.contact_id for a in await world.attempts()}
