"""The call (attempt) state machine, written as a table (see dialer.core.fsm); the states are ``attempts.state``.

==========  ===========  ==========  =================================================================
from        event        to          when
==========  ===========  ==========  =================================================================
queued      dial         dialing     the call is placed (a preview waits in ``queued`` for the operator)
queued      fail         done        it could not be placed (trunk down) or the engine died before
dialing     ring         ringing     the far end rings
dialing     answer       answered    picked up without a ringing signal
dialing     unanswered   done        busy, no answer, rejected, failed
dialing     fail         done
ringing     answer       answered    picked up (a human waits for an operator; a machine is hung up)
ringing     unanswered   done
ringing     fail         done
answered    connect      connected   an operator took the call
answered    hang_up      done        nobody came in time and the customer hung up: abandoned; or a machine
answered    fail         done
connected   hang_up      wrap_up     the conversation ended; the operator finishes the card
connected   requeue      answered    the operator handed the customer over (a transfer) or his phone died: the
                                     customer waits again for the next operator (engine/transfers.py)
connected   fail         done
wrap_up     complete     done        the completion code is set (by the operator, or by the wrap-up timeout)
wrap_up     fail         done
==========  ===========  ==========  =================================================================

``done`` is final: every attempt reaches it exactly once, with one of the six outcome categories and a
completion code. ``fail`` is the engine's way out of any live state (errors, shutdown, crash recovery).
Illegal pairs raise :class:`IllegalCallTransition`.
"""

from __future__ import annotations

from enum import StrEnum

from dialer.core.fsm import Machine
from dialer.exceptions import IllegalTransition
from dialer.models.enums import AttemptState as S

__all__ = ["LIVE", "MACHINE", "TRANSITIONS", "CallEvent", "IllegalCallTransition", "S", "next_state"]


class CallEvent(StrEnum):
    dial = "dial"
    ring = "ring"
    answer = "answer"
    unanswered = "unanswered"
    connect = "connect"
    hang_up = "hang_up"
    complete = "complete"
    fail = "fail"
    requeue = "requeue"


E = CallEvent

TRANSITIONS: dict[tuple[S, CallEvent], S] = {
    (S.queued, E.dial): S.dialing,
    (S.queued, E.fail): S.done,
    (S.dialing, E.ring): S.ringing,
    (S.dialing, E.answer): S.answered,
    (S.dialing, E.unanswered): S.done,
    (S.dialing, E.fail): S.done,
    (S.ringing, E.answer): S.answered,
    (S.ringing, E.unanswered): S.done,
    (S.ringing, E.fail): S.done,
    (S.answered, E.connect): S.connected,
    (S.answered, E.hang_up): S.done,
    (S.answered, E.fail): S.done,
    (S.connected, E.hang_up): S.wrap_up,
    (S.connected, E.requeue): S.answered,
    (S.connected, E.fail): S.done,
    (S.wrap_up, E.complete): S.done,
    (S.wrap_up, E.fail): S.done,
}

#: States in which an attempt holds its contact and its number (the partial unique indexes).
LIVE = frozenset(s for s in S if s is not S.done)


class IllegalCallTransition(IllegalTransition):
    def __init__(self, state: S, event: CallEvent, allowed: list[CallEvent] | None = None) -> None:
        names = ", ".join(e.value for e in (allowed if allowed is not None else MACHINE.allowed(state))) or "none"
        super().__init__(f"a call that is {state.value} cannot take '{event.value}' (allowed: {names})")
        self.state = state
        self.event = event


MACHINE: Machine[S, CallEvent] = Machine("call", TRANSITIONS, error=IllegalCallTransition)


def next_state(state: S, event: CallEvent) -> S:
    """The state after ``event``; raises :class:`IllegalCallTransition`."""
    return MACHINE.next(state, event)
