"""The operator and call state machines: every (state, event) pair of their tables, legal or not."""

from __future__ import annotations

import itertools

import pytest

from dialer.engine import call_fsm, operator_fsm
from dialer.exceptions import IllegalTransition
from dialer.models.enums import AttemptState, OperatorState

OPERATOR_PAIRS = list(itertools.product(OperatorState, operator_fsm.OperatorEvent))
CALL_PAIRS = list(itertools.product(AttemptState, call_fsm.CallEvent))


@pytest.mark.parametrize(("state", "event"), OPERATOR_PAIRS, ids=[f"{s.value}-{e.value}" for s, e in OPERATOR_PAIRS])
def test_operator_table(state: OperatorState, event: operator_fsm.OperatorEvent) -> None:
    expected = operator_fsm.TRANSITIONS.get((state, event))
    if expected is None:
        with pytest.raises(IllegalTransition) as err:
            operator_fsm.next_state(state, event)
        assert state.value.replace("_", "-") in err.value.detail and err.value.status == 409
    else:
        assert operator_fsm.next_state(state, event) is expected


@pytest.mark.parametrize(("state", "event"), CALL_PAIRS, ids=[f"{s.value}-{e.value}" for s, e in CALL_PAIRS])
def test_call_table(state: AttemptState, event: call_fsm.CallEvent) -> None:
    expected = call_fsm.TRANSITIONS.get((state, event))
    if expected is None:
        with pytest.raises(IllegalTransition):
            call_fsm.next_state(state, event)
    else:
        assert call_fsm.next_state(state, event) is expected


def test_operator_table_shape() -> None:
    # every state can be left, and every state but offline is reachable from offline
    states = set(OperatorState)
    assert {s for s, _ in operator_fsm.TRANSITIONS} == states
    reached = {OperatorState.offline}
    while True:
        more = {t for (s, _), t in operator_fsm.TRANSITIONS.items() if s in reached} - reached
        if not more:
            break
        reached |= more
    assert reached == states
    # a conversation always ends in wrap-up (a consultation called off, attended transfer: straight to ready), and
    # wrap-up only ends in ready
    assert {t for (s, e), t in operator_fsm.TRANSITIONS.items() if s is OperatorState.in_call} == \
        {OperatorState.wrap_up, OperatorState.ready}
    assert operator_fsm.TRANSITIONS[(OperatorState.in_call, operator_fsm.OperatorEvent.hang_up)] is \
        OperatorState.wrap_up
    assert {t for (s, _), t in operator_fsm.TRANSITIONS.items() if s is OperatorState.wrap_up} == \
        {OperatorState.ready}


def test_call_table_shape() -> None:
    # done is final, every other state reaches it, and "fail" leaves every live state
    assert not [k for k in call_fsm.TRANSITIONS if k[0] is AttemptState.done]
    for state in call_fsm.LIVE:
        assert call_fsm.TRANSITIONS[(state, call_fsm.CallEvent.fail)] is AttemptState.done
    # the happy path of the issue: queued → dialing → ringing → answered → connected → wrap_up → done
    path = [call_fsm.CallEvent.dial, call_fsm.CallEvent.ring, call_fsm.CallEvent.answer, call_fsm.CallEvent.connect,
            call_fsm.CallEvent.hang_up, call_fsm.CallEvent.complete]
    state = AttemptState.queued
    seen = [state]
    for event in path:
        state = call_fsm.next_state(state, event)
        seen.append(state)
    assert seen == list(AttemptState)
