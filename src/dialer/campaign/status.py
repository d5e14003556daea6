"""The campaign status machine, written as a table (see dialer.core.fsm).

=============  =============  =============  ===============================================
from           action         to             who / why
=============  =============  =============  ===============================================
draft          start          running        user: first start
running        pause          paused         user
running        stop           stopped        user
running        auto_pause     auto_paused    engine: safety auto-stop (5 errors in 30 s, 001)
running        finish         finished       engine: a finite campaign exhausted its lists
paused         resume         running        user
paused         stop           stopped        user
auto_paused    acknowledge    running        user: acknowledges the auto-stop, with a comment
auto_paused    stop           stopped        user
stopped        start          running        user: restart
finished       start          running        user: restart, e.g. new contacts arrived
=============  =============  =============  ===============================================

Every other (status, action) pair is illegal and raises :class:`~dialer.exceptions.IllegalTransition`.
There is no way back to ``draft``: a campaign that has dialled keeps its history; it can be edited
in any status. ``paused`` and ``auto_paused`` are separate so that an auto-stop needs an explicit
acknowledgement (a plain resume is refused) and reports can tell them apart.
"""

from __future__ import annotations

from enum import StrEnum

from dialer.core.fsm import Machine
from dialer.exceptions import IllegalTransition
from dialer.models.enums import CampaignStatus as S


class Action(StrEnum):
    start = "start"
    pause = "pause"
    resume = "resume"
    stop = "stop"
    acknowledge = "acknowledge"
    auto_pause = "auto_pause"
    finish = "finish"


#: Actions offered to users through the API; the others are the engine's.
USER_ACTIONS: tuple[Action, ...] = (Action.start, Action.pause, Action.resume, Action.stop, Action.acknowledge)

TRANSITIONS: dict[tuple[S, Action], S] = {
    (S.draft, Action.start): S.running,
    (S.running, Action.pause): S.paused,
    (S.running, Action.stop): S.stopped,
    (S.running, Action.auto_pause): S.auto_paused,
    (S.running, Action.finish): S.finished,
    (S.paused, Action.resume): S.running,
    (S.paused, Action.stop): S.stopped,
    (S.auto_paused, Action.acknowledge): S.running,
    (S.auto_paused, Action.stop): S.stopped,
    (S.stopped, Action.start): S.running,
    (S.finished, Action.start): S.running,
}

_PARTICIPLE = {
    Action.start: "started",
    Action.pause: "paused",
    Action.resume: "resumed",
    Action.stop: "stopped",
    Action.acknowledge: "acknowledged",
    Action.auto_pause: "auto-paused",
    Action.finish: "finished",
}


MACHINE: Machine[S, Action] = Machine("campaign", TRANSITIONS)


def allowed_actions(status: S, *, user_only: bool = True) -> list[Action]:
    """The actions allowed from ``status``, in the order of :data:`USER_ACTIONS` (then the engine's)."""
    actions = USER_ACTIONS if user_only else tuple(Action)
    return [a for a in actions if MACHINE.can(status, a)]


def next_status(status: S, action: Action, *, name: str) -> S:
    """The status after ``action``; raises :class:`IllegalTransition` naming the campaign and the way out."""
    if MACHINE.can(status, action):
        return MACHINE.next(status, action)
    allowed = ", ".join(allowed_actions(status)) or "none"
    raise IllegalTransition(
        f"campaign '{name}' is {status.value.replace('_', '-')}; it cannot be {_PARTICIPLE[action]} "
        f"(allowed: {allowed})"
    )
