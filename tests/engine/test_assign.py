"""Operator choice and eligibility, without a database."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from dialer.engine.assign import Assignment, Chooser, allocate, allocate_one, eligible
from dialer.engine.pacing import ProgressivePacer
from dialer.engine.repository import CampaignConfig, OperatorInfo
from dialer.engine.selection import Candidate
from dialer.engine.state import CampaignRuntime, Hopper, OperatorSlot
from dialer.models.enums import CampaignKind, CampaignStatus, DialMode, OperatorState
from tests.engine.selection_data import make_plan


def op(i: int, *, pools: set[int] | None = None, skills: dict[int, int] | None = None, idle: float = 0.0,
       calls: int = 0, state: OperatorState = OperatorState.ready) -> OperatorSlot:
    slot = OperatorSlot(info=OperatorInfo(i, f"op{i}", None, None, True, frozenset(pools or {1}), skills or {}),
                        state=state)
    slot.idle_since, slot.calls_handled = idle, calls
    return slot


def campaign(i: int, *, priority: int = 50, pools: set[int] | None = None, max_operators: int | None = None,
             status: CampaignStatus = CampaignStatus.running, min_operators: int | None = None) -> CampaignRuntime:
    cfg = CampaignConfig(i, f"c{i}", status, "", CampaignKind.finite, priority, DialMode.progressive, {},
                         Decimal(3), None, None, "Europe/Moscow", 1, frozenset(),
                         frozenset(pools if pools is not None else {1}), (), 30,
                         60, 2, None, None, max_operators, min_operators=min_operators)
    return CampaignRuntime(cfg=cfg, plan=make_plan(campaign_id=i), pacer=ProgressivePacer(), hopper=Hopper(60),
                           status=status)


def cand(**kw: Any) -> Candidate:
    values: dict[str, Any] = dict(contact_id=1, phone_id=1, number="+79160000001", list_id=1, selection_id=None,
                                  callback_id=None, operator_id=None, skill_id=None, min_skill_level=None,
                                  pool_id=None, priority=0)
    values.update(kw)
    return Candidate(**values)


def test_choosers() -> None:
    ops = [op(1, idle=5, calls=3), op(2, idle=1, calls=4), op(3, idle=9, calls=0)]
    assert Chooser(Assignment.longest_idle).choose(ops).id == 2  # type: ignore[union-attr]
    assert Chooser(Assignment.fewest_calls).choose(ops).id == 3  # type: ignore[union-attr]
    rr = Chooser(Assignment.round_robin)
    assert [rr.choose(ops).id for _ in range(4)] == [1, 2, 3, 1]  # type: ignore[union-attr]
    rnd = Chooser(Assignment.random, seed=3)
    assert {rnd.choose(ops).id for _ in range(50)} == {1, 2, 3}  # type: ignore[union-attr]
    assert Chooser().choose([]) is None


def test_eligibility() -> None:
    c = campaign(1, pools={1})
    assert eligible(op(1, pools={1}), c, cand())
    assert not eligible(op(2, pools={2}), c, cand())
    assert eligible(op(3, skills={7: 60}), c, cand(skill_id=7, min_skill_level=50))
    assert not eligible(op(4, skills={7: 40}), c, cand(skill_id=7, min_skill_level=50))
    assert eligible(op(5, skills={7: 1}), c, cand(skill_id=7))  # no minimum: any level of the skill
    assert not eligible(op(6), c, cand(skill_id=7))
    assert not eligible(op(7, pools={1}), c, cand(pool_id=2))
    assert eligible(op(8), c, cand(operator_id=8)) and not eligible(op(9), c, cand(operator_id=8))
    assert eligible(op(10, pools={5}), campaign(2, pools=set()), cand())  # no pools: anyone


def test_allocation_by_priority_and_size() -> None:
    high, low = campaign(1, priority=80, max_operators=2), campaign(2, priority=20)
    paused = campaign(3, priority=90, status=CampaignStatus.paused)
    ops = [op(i) for i in range(1, 6)]
    busy = op(6, state=OperatorState.in_call)
    busy.campaign_id = 2
    allocate([*ops, busy], [high, low, paused])
    assert high.members == {1, 2}  # the higher priority first, up to its size
    assert low.members == {3, 4, 5, 6}  # the rest, and the busy operator stays with his call's campaign
    assert not paused.members


def test_minimums_are_filled_first() -> None:
    high = campaign(1, priority=80)
    low = campaign(2, priority=20, min_operators=2)
    lowest = campaign(3, priority=10, min_operators=1, pools={2})
    ops = [op(i) for i in range(1, 6)]
    ops[4] = op(5, pools={1, 2})
    ops[2].campaign_id = 2  # already with the small campaign: he is the one who stays there
    allocate(ops, [high, low, lowest])
    assert low.members == {3, 1}  # its minimum, before the higher priority takes the rest
    assert lowest.members == {5}  # the only operator of its pool
    assert high.members == {2, 4}
    # without minimums everybody works for the highest priority
    plain = [op(i) for i in range(1, 6)]
    high2, low2 = campaign(1, priority=80), campaign(2, priority=20)
    allocate(plain, [high2, low2])
    assert high2.members == {1, 2, 3, 4, 5} and not low2.members


def test_a_freed_operator_goes_where_a_minimum_is_missing() -> None:
    high, low = campaign(1, priority=80), campaign(2, priority=20, min_operators=1)
    campaigns = {1: high, 2: low}
    busy = op(1, state=OperatorState.wrap_up)
    busy.campaign_id = 1
    allocate([busy], [high, low])
    assert high.members == {1} and not low.members
    busy.state = OperatorState.ready
    allocate_one(busy, campaigns)
    assert low.members == {1} and not high.members
    # the minimum keeps him when he is free again
    allocate_one(busy, campaigns)
    assert busy.campaign_id == 2


def _selection(i: int, *, skill: int | None = None, level: int | None = None, pool: int | None = None) -> Any:
    from dialer.engine.selection import SelectionPlan
    return SelectionPlan(i, f"s{i}", 0, (), (), skill, level, pool, None, None, None)


def with_skill(c: CampaignRuntime, skill: int) -> CampaignRuntime:
    """The campaign's only selection asks for ``skill``."""
    c.plan = make_plan(campaign_id=c.id, selections=(_selection(c.id, skill=skill),), has_selections=True)
    return c


def fill(c: CampaignRuntime, *candidates: Candidate) -> None:
    c.hopper.extend(0.0, list(candidates))
    c.refill_empty_at = None


def nothing_to_dial(c: CampaignRuntime) -> None:
    c.hopper.clear()
    c.refill_empty_at = 0.0


def test_an_operator_goes_where_her_skill_is_needed_and_moves_when_it_opens() -> None:
    """#13: she pressed Ready while the campaign needing her skill was closed; the one that was open needs a skill
    she lacks. She must not be counted there, and must be moved as soon as hers has something to dial."""
    mine = with_skill(campaign(1), 7)
    other = with_skill(campaign(2), 8)
    mine.open = False
    fill(other, cand(contact_id=1, skill_id=8))
    her = op(1, skills={7: 1})
    colleague = op(2, skills={8: 1})
    campaigns = {1: mine, 2: other}
    allocate([her, colleague], list(campaigns.values()))
    assert her.campaign_id is None and other.members == {2}  # never counted by a pacer whose calls she can't take
    mine.open = True
    fill(mine, cand(contact_id=2, skill_id=7))
    allocate([her, colleague], list(campaigns.values()))
    assert mine.members == {1} and other.members == {2}
    # the cheap path (an operator freed after a call) decides the same way
    her.campaign_id = 2
    other.members.add(1)
    mine.members.clear()
    allocate_one(her, campaigns)
    assert her.campaign_id == 1 and mine.members == {1} and other.members == {2}


def test_operators_follow_the_work_not_an_empty_campaign_of_higher_priority() -> None:
    high, low = campaign(1, priority=80), campaign(2, priority=20)
    nothing_to_dial(high)
    fill(low, cand(contact_id=1))
    ops = [op(1), op(2)]
    allocate(ops, [high, low])
    assert low.members == {1, 2} and not high.members
    fill(high, cand(contact_id=2))  # its window opened in some zone: contacts again
    allocate(ops, [high, low])
    assert high.members == {1, 2} and not low.members


def test_equal_priorities_share_operators_without_swinging() -> None:
    a, b = campaign(1), campaign(2)
    fill(a, cand(contact_id=1))
    nothing_to_dial(b)
    ops = [op(i) for i in range(1, 8)]
    allocate(ops, [a, b])
    assert len(a.members) == 7 and not b.members
    fill(b, cand(contact_id=2))  # b opens: it gets its share of the idle operators
    allocate(ops, [a, b])
    assert sorted([len(a.members), len(b.members)]) == [3, 4]
    before = {o.id: o.campaign_id for o in ops}
    for _ in range(5):  # stable: nobody moves back and forth
        allocate(ops, [a, b])
        assert {o.id: o.campaign_id for o in ops} == before
    # operators in calls are not moved, and count for their campaign
    for o in ops:
        if o.campaign_id == 1:
            o.state = OperatorState.in_call
    allocate(ops, [a, b])
    assert {o.id: o.campaign_id for o in ops} == before


def test_a_personal_callback_draws_only_its_operator() -> None:
    a, b = campaign(1, priority=80), campaign(2, priority=20)
    fill(a, cand(contact_id=1, operator_id=2))
    fill(b, cand(contact_id=2))
    ops = [op(1), op(2)]
    allocate(ops, [a, b])
    assert a.members == {2} and b.members == {1}


def test_weights_follow_max_operators() -> None:
    big, small = campaign(1, max_operators=6), campaign(2, max_operators=2)
    fill(big, cand(contact_id=1))
    fill(small, cand(contact_id=2))
    ops = [op(i) for i in range(1, 9)]
    allocate(ops, [big, small])
    assert len(big.members) == 6 and len(small.members) == 2


def test_a_full_campaign_keeps_no_operator_it_has_no_room_for() -> None:
    """A capped campaign's extra operators, with nowhere else to go, are not kept in it (the pacer would dial for
    them): found by `dialer bench allocation`."""
    capped = campaign(1, priority=80, max_operators=2)
    sales = with_skill(campaign(2), 7)
    fill(capped, cand(contact_id=1))
    fill(sales, cand(contact_id=2, skill_id=7))
    ops = [op(i) for i in range(1, 5)]
    for o in ops:
        o.campaign_id = 1
    allocate(ops, [capped, sales])
    assert len(capped.members) == 2 and not sales.members
    assert sum(1 for o in ops if o.campaign_id is None) == 2


def test_a_campaign_only_one_operator_can_serve_gets_her() -> None:
    """The operator with the rare skill works where only she can, while the others fill the important campaign."""
    collection = campaign(1, priority=80)
    sales = with_skill(campaign(2), 7)
    fill(collection, cand(contact_id=1))
    fill(sales, cand(contact_id=2, skill_id=7))
    ops = [op(1), op(2), op(3), op(4, skills={7: 1})]
    for o in ops:
        o.campaign_id = 1
    campaigns = {1: collection, 2: sales}
    allocate(ops, list(campaigns.values()))
    assert sales.members == {4} and collection.members == {1, 2, 3}
    for _ in range(3):  # and it holds, tick after tick and call after call
        allocate(ops, list(campaigns.values()))
        allocate_one(ops[3], campaigns, {o.id: o for o in ops})
        allocate_one(ops[0], campaigns, {o.id: o for o in ops})
        assert sales.members == {4} and collection.members == {1, 2, 3}
    # alone, she works for the more important campaign: nobody is taken from a campaign that would be left empty
    solo = op(5, skills={7: 1})
    c1, c2 = campaign(1, priority=80), with_skill(campaign(2), 7)
    fill(c1, cand(contact_id=1))
    fill(c2, cand(contact_id=2, skill_id=7))
    allocate([solo], [c1, c2])
    assert c1.members == {5} and not c2.members
