"""The engine's in-memory world: operators, live calls, running campaigns and their hoppers.

Only the runner's single actor task mutates these objects, so they need no locks; the database is told about
every change through the journal.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import deque
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from dialer.engine.pacing import Pacer
from dialer.engine.repository import CampaignConfig, OperatorInfo
from dialer.engine.selection import CampaignPlan, Candidate
from dialer.models.enums import AttemptState, CampaignStatus, DialMode, OperatorState
from dialer.telephony.base import CallId

__all__ = ["CampaignRuntime", "Completion", "Hopper", "LiveCall", "OperatorSlot", "TransferLeg"]


@dataclasses.dataclass(frozen=True, slots=True)
class Completion:
    """What the operator (or the wrap-up timeout) sets at the end of a call."""

    completion_code_id: int
    comment: str = ""
    callback_at: datetime | None = None
    callback_personal: bool = False
    never_call: bool = False


@dataclasses.dataclass(eq=False)
class OperatorSlot:
    info: OperatorInfo
    state: OperatorState = OperatorState.offline
    reason: str = ""
    #: Clock reading and UTC time when the current state began.
    since: float = 0.0
    since_utc: datetime | None = None
    #: The campaign the operator currently works for (allocation by priority, 000 §2.17).
    campaign_id: int | None = None
    #: The call he is reserved for, talking in, or wrapping up.
    call: LiveCall | None = None
    idle_since: float = 0.0
    talk_started: float = 0.0
    calls_handled: int = 0
    #: A state asked for while busy, applied when the wrap-up ends: (state, reason).
    pending: tuple[OperatorState, str] | None = None
    #: A completion set during the conversation, applied at hang-up.
    pending_completion: Completion | None = None
    wrap_timer: asyncio.Task[None] | None = None
    #: Offers he did not pick up: in a row (reset when he answers one) and in total since the engine started.
    missed_in_row: int = 0
    missed_total: int = 0
    #: His wrap-up is of a call he handed over (transferred, or rescued from his dead phone: engine/transfers.py):
    #: ending it does not finish the attempt, which goes on with someone else.
    handover: bool = False
    #: The call whose first operator consults him (attended transfer): he is reserved, rings, then talks to him.
    consulting: LiveCall | None = None

    @property
    def id(self) -> int:
        return self.info.id

    @property
    def endpoint(self) -> str:
        return self.info.endpoint

    def skill_level(self, skill_id: int) -> int:
        return int(self.info.skills.get(skill_id, 0))


@dataclasses.dataclass(eq=False)
class TransferLeg:
    """One transfer of a live call (a ``call_transfers`` row): its kind and target, and who handed the customer over."""

    id: int
    kind: str
    source: str
    from_operator_id: int | None
    to_operator_id: int | None = None
    to_pool_id: int | None = None
    to_skill_id: int | None = None
    min_skill_level: int = 1
    to_number: str | None = None
    comment: str = ""
    done: bool = False


@dataclasses.dataclass(eq=False)
class LiveCall:
    """One attempt the engine is working on, from its insertion until it is done."""

    attempt_id: int
    campaign: CampaignRuntime
    candidate: Candidate
    caller_id: str | None
    state: AttemptState
    queued_utc: datetime
    call_id: CallId | None = None
    #: Clock readings of the stages.
    placed_at: float | None = None
    answered_at: float | None = None
    connected_at: float | None = None
    ended_at: float | None = None
    answered_by: str | None = None
    #: The operator reserved for (progressive, preview, personal callback) or connected to the call.
    operator: OperatorSlot | None = None
    #: The operator was reserved before the call was answered: the call is covered (pacing counts it so).
    reserved: bool = False
    preview: bool = False
    #: A customer's call to the campaign (engine/inbound.py), not one the dialer placed.
    inbound: bool = False
    #: The call is being recorded (engine/media.py).
    recorded: bool = False
    #: The customer hears the recording-consent message: nobody is offered him until it ends (engine/media.py).
    consenting: bool = False
    #: Seconds the live customer waited in silence before the consent message (machine detection's decision time).
    silent_s: float = 0.0
    #: A live answer not connected within the threshold: abandoned for the statistics, whatever comes later.
    abandoned: bool = False
    hold_playing: bool = False
    hangup_by: str | None = None
    hung_up_utc: datetime | None = None
    hangup_side: str | None = None
    hangup_cause: str = ""
    sip_code: int | None = None
    #: The abandon-threshold timer (from the answer), then nothing.
    timer: asyncio.Task[None] | None = None
    #: The longest hold (from the answer), then, once connected, the longest conversation.
    limit_timer: asyncio.Task[None] | None = None
    #: The offer to the operator that has to pick up within the offer timeout.
    offer_timer: asyncio.Task[None] | None = None
    #: Operators who let the offer of this call ring out: it is not offered to them again.
    missed_by: set[int] = dataclasses.field(default_factory=set)
    #: The cause recorded when the engine itself cut the call ("max duration", "no operator").
    forced_cause: str = ""
    #: The customer talked to an operator and waits again (a transfer, or a rescue from a dead phone): no new
    #: abandon, served before new calls, message and callback when nobody takes him in time (engine/transfers.py).
    requeued: bool = False
    #: The transfer in progress or the last one (engine/transfers.py).
    transfer: TransferLeg | None = None
    #: The operator being consulted for an attended transfer.
    consult: OperatorSlot | None = None
    #: The external number the customer talks to after an external transfer.
    external: str | None = None
    #: The transferring operator's completion, kept for an external transfer (nobody else sets one).
    handover_completion: Completion | None = None
    finished: bool = False

    @property
    def number(self) -> str:
        return self.candidate.number

    @property
    def contact_id(self) -> int:
        return self.candidate.contact_id

    def waited_s(self, now: float) -> float | None:
        if self.answered_at is None or self.answered_by != "human":
            return None
        end = self.connected_at if self.connected_at is not None else (self.ended_at or now)
        return max(0.0, end - self.answered_at)


class Hopper:
    """Candidates in memory, best first, each with the clock reading it was read at (stale ones are dropped)."""

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._items: deque[tuple[float, Candidate]] = deque()
        self.contact_ids: set[int] = set()
        #: Candidates dropped because their calling window closed while they waited.
        self.closed = 0

    def __len__(self) -> int:
        return len(self._items)

    def extend(self, now: float, candidates: list[Candidate]) -> None:
        for c in candidates:
            if c.contact_id not in self.contact_ids:
                self._items.append((now, c))
                self.contact_ids.add(c.contact_id)

    def clear(self) -> None:
        self._items.clear()
        self.contact_ids.clear()

    def expire(self, now: float) -> int:
        """Drop candidates older than the TTL; returns how many."""
        dropped = 0
        while self._items and now - self._items[0][0] > self.ttl_s:
            _, c = self._items.popleft()
            self.contact_ids.discard(c.contact_id)
            dropped += 1
        return dropped

    def take(self, n: int, usable: Callable[[Candidate], Any], *, scan: int,
             now_utc: datetime | None = None) -> list[tuple[Candidate, Any]]:
        """Up to ``n`` candidates in order for which ``usable(c)`` returns something truthy (kept with them); the
        others stay in place. At most ``scan`` candidates are looked at. A candidate whose calling window has closed
        by ``now_utc`` (:attr:`Candidate.closes_at`) is dropped when it is looked at: it is never handed out."""
        taken: list[tuple[Candidate, Any]] = []
        kept: list[tuple[float, Candidate]] = []
        looked = 0
        while self._items and len(taken) < n and looked < scan:
            item = self._items.popleft()
            looked += 1
            closes = item[1].closes_at
            if now_utc is not None and closes is not None and closes <= now_utc:
                self.contact_ids.discard(item[1].contact_id)
                self.closed += 1
                continue
            found = usable(item[1])
            if found:
                taken.append((item[1], found))
                self.contact_ids.discard(item[1].contact_id)
            else:
                kept.append(item)
        self._items.extendleft(reversed(kept))
        return taken

    def __iter__(self) -> Iterator[Candidate]:
        return (c for _, c in self._items)


@dataclasses.dataclass(eq=False)
class CampaignRuntime:
    cfg: CampaignConfig
    plan: CampaignPlan
    pacer: Pacer
    hopper: Hopper
    status: CampaignStatus
    open: bool = True
    calls: dict[int, LiveCall] = dataclasses.field(default_factory=dict)
    #: Placement times of the calls still dialling without a reserved operator (what the pacer forecasts).
    dialling: dict[int, float] = dataclasses.field(default_factory=dict)
    #: Calls answered and not yet connected or ended (live customers waiting, machines being hung up).
    answered: dict[int, LiveCall] = dataclasses.field(default_factory=dict)
    #: Operators allocated to the campaign.
    members: set[int] = dataclasses.field(default_factory=set)
    caller_index: int = 0
    refilling: bool = False
    #: The refill in flight counts as engine work (the hopper ran nearly dry while it was a prefetch).
    refill_counted: bool = False
    #: Clock reading of the last refill that found nothing (refills then back off).
    refill_empty_at: float | None = None
    #: Times of the consecutive error results (safety auto-stop).
    errors: deque[float] = dataclasses.field(default_factory=deque)
    #: A status the engine set and the database does not show yet (auto-pause, finish).
    expected_status: CampaignStatus | None = None
    #: Wall-clock deadline for the database to show it (a refused change must not freeze the campaign).
    expected_until: float = 0.0
    finish_checking: bool = False
    last_finish_check: float = -1e18
    #: Contacts skipped in preview, not offered again before the time given.
    skipped: dict[int, float] = dataclasses.field(default_factory=dict)
    #: perf_counter() when an operator of the campaign became free and no decision has served him yet.
    free_since_perf: float | None = None
    placed: int = 0
    #: Why the hopper is empty, as the database last said (engine/idle.py), and when it was asked.
    idle_explained: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    idle_explained_at: float = -1e18
    idle_explaining: bool = False

    @property
    def id(self) -> int:
        return self.cfg.id

    @property
    def priority(self) -> int:
        return self.cfg.priority

    @property
    def mode(self) -> DialMode:
        return self.cfg.dial_mode

    @property
    def dialing(self) -> bool:
        """New calls may be placed (the runner also checks that it is not stopping)."""
        return self.status is CampaignStatus.running and self.open and self.expected_status is None

    def next_caller_id(self) -> str | None:
        """The campaign's caller IDs in turn (round robin)."""
        numbers = self.cfg.caller_ids
        if not numbers:
            return None
        number = numbers[self.caller_index % len(numbers)]
        self.caller_index += 1
        return number
