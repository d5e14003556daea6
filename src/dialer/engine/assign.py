"""Which operator takes a call, and which campaign each operator works for.

Eligibility (:func:`eligible`): an operator may take a campaign's call when he belongs to one of the campaign's
pools (a campaign without pools takes any operator), to the selection's pool if it names one, and has the call's
skill at or above its minimum level (a skill without a minimum needs level 1). A personal callback may only go to
its operator.

Choice among eligible free operators (:class:`Assignment`): ``longest_idle`` (default: the one free for the
longest time), ``fewest_calls`` (the fewest calls handled since the engine started), ``random`` (seeded),
``round_robin`` (operator ids in turn).

Allocation (:func:`allocate`, 000 §2.17, §10.1; 001 "операторы распределяются между кампаниями по приоритету"):
an operator works for a dialling campaign he can serve *now* — one of its pools, and a skill (and pool) that the
calls it has to place ask for (:class:`Demand`: read from its hopper, or from its selections while the hopper has
not been filled yet; a campaign whose last refill found nothing to dial has no demand). First every such campaign
gets its minimum (``min_operators`` of the strategy), highest priority first, from the free or pausing operators
who can serve it (those already with it first); then each operator goes to the highest priority among the
campaigns he can serve; among equal priorities he stays where he is unless another has fewer operators for its
size even with him (``max_operators`` of the strategy weighs and caps a campaign) — so a campaign that opens, or
whose hopper fills, takes operators from its equals without operators swinging back and forth. Before priorities
share out the rest, a campaign with work that nobody works for gets one free operator who can serve it (the one
with the fewest other options, from a campaign that keeps somebody): a campaign needing a rare skill is not
starved by a more important one that others can serve. Only operators who
are free or on a break move; one in a call stays with his campaign until he is free again. When no dialling
campaign has work he can do, he stays with the campaign he was in (if he may still work for it), else with one of
his pools he could serve. The runner re-allocates every tick, so idle operators follow the picture as it changes.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from enum import StrEnum

from dialer.engine.selection import Candidate
from dialer.engine.state import CampaignRuntime, OperatorSlot
from dialer.models.enums import OperatorState

__all__ = ["Assignment", "Chooser", "Demand", "allocate", "allocate_one", "eligible", "in_pools", "move"]


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

#: What one kind of call asks of its operator: (personal operator, pool, skill, minimum level).
Need = tuple[int | None, int | None, int | None, int | None]


class Demand:
    """Which operators the calls a campaign has to place now can go to (see the module's docstring)."""

    __slots__ = ("has_work", "needs")

    def __init__(self, needs: frozenset[Need], has_work: bool) -> None:
        self.needs = needs
        self.has_work = has_work

    @classmethod
    def of(cls, c: CampaignRuntime) -> Demand:
        if len(c.hopper):
            return cls(frozenset((x.operator_id, x.pool_id, x.skill_id, x.min_skill_level) for x in c.hopper), True)
        plan_needs = cls.planned(c)
        waiting = any(call.operator is None and call.answered_by == "human" for call in c.answered.values())
        # an empty hopper that was never filled (or is being filled) is not known to be empty
        return cls(plan_needs, waiting or c.refill_empty_at is None)

    @staticmethod
    def planned(c: CampaignRuntime) -> frozenset[Need]:
        """The needs of the campaign's selections (the strategy's skill without selections)."""
        plan = c.plan
        if not plan.selections:
            return frozenset({(None, None, plan.skill_id, None)})
        return frozenset((None, sel.pool_id, sel.skill_id if sel.skill_id is not None else plan.skill_id,
                          sel.min_skill_level) for sel in plan.selections)

    def served_by(self, op: OperatorSlot) -> bool:
        return any(_meets(op, need) for need in self.needs)


def _meets(op: OperatorSlot, need: Need) -> bool:
    operator_id, pool_id, skill_id, level = need
    if operator_id is not None and operator_id != op.id:
        return False
    if pool_id is not None and pool_id not in op.info.pools:
        return False
    return skill_id is None or op.skill_level(skill_id) >= (level or 1)


def _could_serve(op: OperatorSlot, c: CampaignRuntime) -> bool:
    """``op`` has what the campaign's selections ask for (whatever it has to dial right now)."""
    return any(_meets(op, need) for need in Demand.planned(c))


def _weight(c: CampaignRuntime) -> int:
    return c.cfg.max_operators or 1


def _room(c: CampaignRuntime, op: OperatorSlot) -> bool:
    return c.cfg.max_operators is None or len(c.members - {op.id}) < c.cfg.max_operators


class _Picture:
    """The dialling campaigns and their demand, each read from its hopper at most once per allocation and only
    when asked (one freed operator asks only about the campaigns of his pools)."""

    def __init__(self, campaigns: Iterable[CampaignRuntime]) -> None:
        self.dialling = [c for c in campaigns if c.dialing]
        self._demand: dict[int, Demand] = {}

    def demand(self, c: CampaignRuntime) -> Demand:
        found = self._demand.get(c.id)
        if found is None:
            found = self._demand[c.id] = Demand.of(c)
        return found

    def useful(self, op: OperatorSlot) -> list[CampaignRuntime]:
        """The dialling campaigns that have work ``op`` can do now."""
        if not op.info.is_active:
            return []
        return [c for c in self.dialling if in_pools(op, c) and self.demand(c).has_work
                and self.demand(c).served_by(op)]

    def level(self, op: OperatorSlot) -> list[CampaignRuntime]:
        """The useful campaigns of the highest priority that have room for ``op``."""
        options = self.useful(op)
        for priority in sorted({c.priority for c in options}, reverse=True):
            level = [c for c in options if c.priority == priority and _room(c, op)]
            if level:
                return level
        return []

    def choose(self, op: OperatorSlot) -> CampaignRuntime | None:
        """Where ``op`` should work, given the campaigns' members as they are now."""
        level = self.level(op)
        if not level:
            return None
        current = next((c for c in level if c.id == op.campaign_id), None)
        best = min(level, key=lambda c: ((len(c.members - {op.id}) + 1) / _weight(c), -c.priority, c.id))
        if current is None:
            return best
        mine = (len(current.members - {op.id}) + 1) / _weight(current)
        theirs = (len(best.members - {op.id}) + 1) / _weight(best)
        return best if theirs < mine else current

    def fallback(self, op: OperatorSlot, by_id: Mapping[int, CampaignRuntime]) -> CampaignRuntime | None:
        """No work for ``op`` anywhere now: the campaign he was in, if he may still work for it, else the most
        important dialling campaign he could serve when it has work."""
        if not op.info.is_active:
            return None
        current = by_id.get(op.campaign_id) if op.campaign_id is not None else None
        # a paused campaign keeps its team; a dialling one only those who could take its calls (the pacer counts
        # its operators: one who cannot take them must not make it dial for him)
        if current is not None and in_pools(op, current) and (
                not current.dialing or (_could_serve(op, current) and _room(current, op))):
            return current
        fit = [c for c in self.dialling if in_pools(op, c) and _room(c, op) and _could_serve(op, c)]
        return min(fit, key=lambda c: (-c.priority, c.id)) if fit else None

    def short(self, op: OperatorSlot) -> list[CampaignRuntime]:
        """Useful campaigns that are below their minimum without ``op``."""
        return [c for c in self.useful(op) if _short(c, op)]

    def starving(self, op: OperatorSlot) -> list[CampaignRuntime]:
        """Useful campaigns that nobody but ``op`` works for: a campaign with work gets at least one operator who
        can serve it before the priorities share out the rest (#13: a campaign needing a skill only one operator
        has must not wait with 0 operators while she works for a more important one that others can serve)."""
        return [c for c in self.useful(op) if not (c.members - {op.id})]


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


def allocate_one(op: OperatorSlot, campaigns: Mapping[int, CampaignRuntime],
                 operators: Mapping[int, OperatorSlot] | None = None) -> None:
    """Re-allocate one operator who just became free or went on a break (cheap: one operator); with ``operators``
    (all of them, by id) a campaign only he serves keeps him as :func:`allocate` decides."""
    if op.state is OperatorState.offline:
        move(op, None, campaigns)
        return
    if op.state not in _MOVABLE:
        return
    picture = _Picture(campaigns.values())
    short = picture.short(op)
    if short:  # a campaign below its minimum keeps him, else the most important one below it gets him
        current = next((c for c in short if c.id == op.campaign_id), None)
        move(op, current or min(short, key=lambda c: (-c.priority, c.id)), campaigns)
        return
    chosen = picture.choose(op) or picture.fallback(op, campaigns)
    if operators is not None:
        # a campaign that needs what he has and that nobody else works for keeps him (or gets him), when the one
        # he would go to keeps operators who could not serve it anyway
        starving = sorted(picture.starving(op), key=lambda c: (c.id != op.campaign_id, -c.priority, c.id))
        rescue = next((c for c in starving if c is not chosen and _specialised(c, op, chosen, picture, operators)),
                      None)
        if rescue is not None:
            chosen = rescue
    move(op, chosen, campaigns)


def _specialised(c: CampaignRuntime, op: OperatorSlot, other: CampaignRuntime | None, picture: _Picture,
                 operators: Mapping[int, OperatorSlot]) -> bool:
    """``op`` is needed by ``c`` rather than by ``other``: ``other`` has, besides him, operators who could not
    serve ``c`` (so he brings ``c`` what it needs, and they keep ``other`` going). Interchangeable operators are
    shared by priority alone."""
    if other is None:
        return True
    if not c.dialing:
        return False
    demand = picture.demand(c)
    return any(not (in_pools(m, c) and demand.served_by(m))
               for i in other.members - {op.id} if (m := operators.get(i)) is not None)


def allocate(operators: Iterable[OperatorSlot], campaigns: Sequence[CampaignRuntime]) -> None:
    """Give each free or pausing operator the campaign he works for; rebuild the campaigns' ``members``."""
    picture = _Picture(campaigns)
    by_id = {c.id: c for c in campaigns}
    for c in campaigns:
        c.members.clear()
    movable: list[OperatorSlot] = []
    operators_seen = list(operators)
    for op in operators_seen:
        if op.state is OperatorState.offline:
            op.campaign_id = None
        elif op.state in _MOVABLE:
            movable.append(op)
        elif op.campaign_id in by_id:
            by_id[op.campaign_id].members.add(op.id)  # busy: stays with the campaign of his call
    # the minimums first, the most important campaign first; operators already with a campaign stay with it
    placed: set[int] = set()
    useful = {op.id: {c.id for c in picture.useful(op)} for op in movable}
    for c in sorted(picture.dialling, key=lambda x: (-x.priority, x.id)):
        need = (c.cfg.min_operators or 0) - len(c.members)
        if need <= 0:
            continue
        fit = sorted((op for op in movable if op.id not in placed and c.id in useful[op.id]),
                     key=lambda o: (o.campaign_id != c.id, o.id))
        for op in fit[:need]:
            op.campaign_id = c.id
            c.members.add(op.id)
            placed.add(op.id)
    rest = [op for op in movable if op.id not in placed]
    # those whose campaign is still among their best stay first (the counts the others are weighed against),
    # then the others join the least staffed of their best, then the stayers may even out among equals
    later: list[OperatorSlot] = []
    for op in rest:
        if any(c.id == op.campaign_id for c in picture.level(op)):
            by_id[op.campaign_id].members.add(op.id)  # type: ignore[index]
        else:
            later.append(op)
    for op in later:
        chosen = picture.choose(op) or picture.fallback(op, by_id)
        move(op, chosen, by_id)
    moved = {op.id for op in later}
    for op in rest:
        if op.id in moved or op.state is not OperatorState.ready:
            continue
        chosen = picture.choose(op)
        if chosen is not None:
            move(op, chosen, by_id)
    # no campaign with work waits with nobody while a free operator who can serve it works where others, who could
    # not serve it, keep things going: the one with the fewest other options comes
    everyone = {op.id: op for op in operators_seen}
    for c in sorted(picture.dialling, key=lambda x: (-x.priority, x.id)):
        if c.members or not picture.demand(c).has_work:
            continue
        fit = [op for op in rest if op.state is OperatorState.ready and c.id in useful[op.id] and _room(c, op)
               and _specialised(c, op, by_id.get(op.campaign_id) if op.campaign_id is not None else None, picture,
                                everyone)]
        if fit:
            move(min(fit, key=lambda o: (len(useful[o.id]), -len(by_id[o.campaign_id].members)
                                         if o.campaign_id in by_id else 0, o.id)), c, by_id)
    # and those left without a campaign take a place that opened meanwhile
    for op in rest:
        if op.campaign_id is None:
            chosen = picture.choose(op)
            if chosen is not None:
                move(op, chosen, by_id)
