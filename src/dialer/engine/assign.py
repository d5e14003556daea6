"""Which operator takes a call, and which campaign each operator works for.

Eligibility (:func:`eligible`): an operator may take a campaign's call when he belongs to one of the campaign's
pools (a campaign without pools takes any operator), to the selection's pool if it names one, and has the call's
skill at or above its minimum level (a skill without a minimum needs level 1). A personal callback may only go to
its operator.

Choice among eligible free operators (:class:`Assignment`): ``longest_idle`` (default: the one free for the
longest time), ``fewest_calls`` (the fewest calls handled since the engine started), ``random`` (seeded),
``round_robin`` (operator ids in turn).

Allocation (:func:`allocate`, 000 §2.17, §10.1): first every dialling campaign gets its minimum (``min_operators``
of the strategy), highest priority first, from the free or pausing operators of its pools (those already with it
first); then an operator in the pools of several dialling campaigns works for the one with the highest priority;
among equal priorities he stays where he is, else joins the one with the fewest operators for its size
(``max_operators`` of the strategy caps a campaign). Only operators who are free or on a break move; one in a call
stays with his campaign until he is free again. A campaign below its minimum keeps the operators it has and takes
the next one who becomes free (:func:`allocate_one`).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from enum import StrEnum

from dialer.engine.selection import Candidate
from dialer.engine.state import CampaignRuntime, OperatorSlot
from dialer.models.enums import OperatorState

__all__ = ["Assignment", "Chooser", "allocate", "allocate_one", "eligible", "in_pools", "move"]


class Assignment(StrEnum):
    longest_idle = "longest_idle"
    fewest_calls = "fewest_calls"
    random = "random"
    round_robin = "round_robin"


def in_pools(op: OperatorSlot, campaign: CampaignRuntime) -> bool:
    pools = campaign.cfg.pool_ids
    return not pools or not pools.isdisjoint(op.info.pools)


def eligible(op: OperatorSlot, campaign: CampaignRuntime, candidate: Candidate | None) -> bool:
    """May ``op`` take ``candidate``'s call of ``campaign`` (ignoring his current state)?"""
    if not op.info.is_active or not in_pools(op, campaign):
        return False
    if candidate is None:
        return True
    if candidate.operator_id is not None and candidate.operator_id != op.id:
        return False
    if candidate.pool_id is not None and candidate.pool_id not in op.info.pools:
        return False
    if candidate.skill_id is not None:
        return op.skill_level(candidate.skill_id) >= (candidate.min_skill_level or 1)
    return True


class Chooser:
    """Picks one operator among the eligible free ones, by the configured :class:`Assignment`."""

    def __init__(self, how: Assignment = Assignment.longest_idle, *, seed: int | None = None) -> None:
        self.how = Assignment(how)
        self._rng = random.Random(seed)
        self._last_id = 0

    def choose(self, ops: Sequence[OperatorSlot]) -> OperatorSlot | None:
        if not ops:
            return None
        if self.how is Assignment.longest_idle:
            return min(ops, key=lambda o: (o.idle_since, o.id))
        if self.how is Assignment.fewest_calls:
            return min(ops, key=lambda o: (o.calls_handled, o.idle_since, o.id))
        if self.how is Assignment.random:
            return ops[self._rng.randrange(len(ops))]
        after = [o for o in ops if o.id > self._last_id]
        chosen = min(after or ops, key=lambda o: o.id)
        self._last_id = chosen.id
        return chosen


_MOVABLE = (OperatorState.ready, OperatorState.paused)


def _choose(op: OperatorSlot, dialling: Sequence[CampaignRuntime]) -> CampaignRuntime | None:
    options = [c for c in dialling if in_pools(op, c)] if op.info.is_active else []
    for priority in sorted({c.priority for c in options}, reverse=True):
        level = [c for c in options if c.priority == priority
                 and (c.cfg.max_operators is None or len(c.members - {op.id}) < c.cfg.max_operators)]
        if not level:
            continue
        current = next((c for c in level if c.id == op.campaign_id), None)
        return current or min(level, key=lambda c: (len(c.members) / (c.cfg.max_operators or 1), c.id))
    return None


def move(op: OperatorSlot, campaign: CampaignRuntime | None, campaigns: Mapping[int, CampaignRuntime]) -> None:
    """Make ``op`` work for ``campaign`` (None: for none), keeping the campaigns' ``members`` in step."""
    old = campaigns.get(op.campaign_id) if op.campaign_id is not None else None
    if old is not None and old is not campaign:
        old.members.discard(op.id)
    op.campaign_id = campaign.id if campaign is not None else None
    if campaign is not None:
        campaign.members.add(op.id)


def _short(c: CampaignRuntime, op: OperatorSlot) -> bool:
    """``c`` has fewer operators than its minimum without ``op``."""
    low = c.cfg.min_operators
    return bool(low) and len(c.members - {op.id}) < (low or 0)


def allocate_one(op: OperatorSlot, campaigns: Mapping[int, CampaignRuntime]) -> None:
    """Re-allocate one operator who just became free or went on a break (cheap: one operator)."""
    if op.state is OperatorState.offline:
        move(op, None, campaigns)
        return
    if op.state not in _MOVABLE:
        return
    dialling = [c for c in campaigns.values() if c.dialing]
    if op.info.is_active:
        short = [c for c in dialling if in_pools(op, c) and _short(c, op)]
        if short:  # a campaign below its minimum keeps him, else the most important one below it gets him
            current = next((c for c in short if c.id == op.campaign_id), None)
            move(op, current or min(short, key=lambda c: (-c.priority, c.id)), campaigns)
            return
    chosen = _choose(op, dialling)
    if chosen is None:
        current = campaigns.get(op.campaign_id) if op.campaign_id is not None else None
        move(op, current if current is not None and in_pools(op, current) else None, campaigns)
    else:
        move(op, chosen, campaigns)


def allocate(operators: Iterable[OperatorSlot], campaigns: Sequence[CampaignRuntime]) -> None:
    """Give each free or pausing operator the campaign he works for; rebuild the campaigns' ``members``."""
    dialling = [c for c in campaigns if c.dialing]
    by_id = {c.id: c for c in campaigns}
    for c in campaigns:
        c.members.clear()
    movable: list[OperatorSlot] = []
    for op in operators:
        if op.state is OperatorState.offline:
            op.campaign_id = None
        elif op.state in _MOVABLE:
            movable.append(op)
        elif op.campaign_id in by_id:
            by_id[op.campaign_id].members.add(op.id)  # busy: stays with the campaign of his call
    # the minimums first, the most important campaign first; operators already with a campaign stay with it
    placed: set[int] = set()
    for c in sorted(dialling, key=lambda x: (-x.priority, x.id)):
        need = (c.cfg.min_operators or 0) - len(c.members)
        if need <= 0:
            continue
        fit = sorted((op for op in movable if op.id not in placed and op.info.is_active and in_pools(op, c)),
                     key=lambda o: (o.campaign_id != c.id, o.id))
        for op in fit[:need]:
            op.campaign_id = c.id
            c.members.add(op.id)
            placed.add(op.id)
    for op in movable:
        if op.id in placed:
            continue
        chosen = _choose(op, dialling)
        if chosen is None:
            # no dialling campaign wants him: stay counted where he was (a paused campaign keeps its team)
            current = by_id.get(op.campaign_id) if op.campaign_id is not None else None
            if current is not None and in_pools(op, current):
                current.members.add(op.id)
            else:
                op.campaign_id = None
            continue
        op.campaign_id = chosen.id
        chosen.members.add(op.id)
