"""The SIP stack's state tables: RFC 3261 §17 transactions, §12 dialogs and the driver's calls. Every legal pair
leads where the table says, every other pair raises, every state is reachable and the final states are final."""

from __future__ import annotations

import itertools
from enum import StrEnum
from typing import Any

import pytest

from dialer.core.fsm import IllegalTransition, Machine
from dialer.telephony.sip import dialog, driver, transaction
from dialer.telephony.sip.dialog import DialogEvent, DialogState
from dialer.telephony.sip.driver import CallInput, CallState
from dialer.telephony.sip.transaction import (
    InviteClientEvent,
    InviteClientState,
    InviteServerEvent,
    InviteServerState,
    NonInviteClientEvent,
    NonInviteClientState,
    NonInviteServerEvent,
    NonInviteServerState,
)

# name: (machine, its states, its events, initial state, final state)
TABLES: dict[str, tuple[Machine[Any, Any], type[StrEnum], type[StrEnum], StrEnum, StrEnum]] = {
    "invite client": (transaction.INVITE_CLIENT, InviteClientState, InviteClientEvent,
                      InviteClientState.calling, InviteClientState.terminated),
    "non-invite client": (transaction.NON_INVITE_CLIENT, NonInviteClientState, NonInviteClientEvent,
                          NonInviteClientState.trying, NonInviteClientState.terminated),
    "invite server": (transaction.INVITE_SERVER, InviteServerState, InviteServerEvent,
                      InviteServerState.proceeding, InviteServerState.terminated),
    "non-invite server": (transaction.NON_INVITE_SERVER, NonInviteServerState, NonInviteServerEvent,
                          NonInviteServerState.trying, NonInviteServerState.terminated),
    "dialog": (dialog.MACHINE, DialogState, DialogEvent, DialogState.early, DialogState.terminated),
    "call": (driver.CALL, CallState, CallInput, CallState.ringing, CallState.ended),
}

LEGAL = [pytest.param(name, s, e, t, id=f"{name}: {s}+{e}->{t}")
         for name, (machine, *_rest) in TABLES.items() for s, e, t in machine]
ILLEGAL = [pytest.param(name, s, e, id=f"{name}: {s}+{e}")
           for name, (machine, states, events, *_rest) in TABLES.items()
           for s, e in itertools.product(states, events) if not machine.can(s, e)]


@pytest.mark.parametrize(("name", "state", "event", "target"), LEGAL)
def test_every_legal_pair_leads_where_the_table_says(name: str, state: StrEnum, event: StrEnum,
                                                     target: StrEnum) -> None:
    machine = TABLES[name][0]
    assert machine.next(state, event) is target
    assert event in machine.allowed(state)


@pytest.mark.parametrize(("name", "state", "event"), ILLEGAL)
def test_every_other_pair_raises(name: str, state: StrEnum, event: StrEnum) -> None:
    machine = TABLES[name][0]
    with pytest.raises(IllegalTransition) as err:
        machine.next(state, event)
    assert err.value.state is state and err.value.event is event
    assert str(state) in str(err.value) and str(event) in str(err.value)


@pytest.mark.parametrize("name", list(TABLES))
def test_every_state_is_reachable_and_the_last_is_final(name: str) -> None:
    machine, states, _events, initial, final = TABLES[name]
    seen, todo = {initial}, [initial]
    while todo:
        here = todo.pop()
        for event in machine.allowed(here):
            there = machine.next(here, event)
            if there not in seen:
                seen.add(there)
                todo.append(there)
    assert seen == set(states)
    assert machine.states() == set(states)
    # nothing leaves the final state (a dialog's absorbs late answers to an abandoned INVITE, staying final)
    assert all(machine.next(final, e) is final for e in machine.allowed(final))
    if name != "dialog":
        assert machine.allowed(final) == []


def test_the_rfc_names_states_and_timers() -> None:
    assert [s.value for s in NonInviteClientState] == ["trying", "proceeding", "completed", "terminated"]
    assert {"calling", "proceeding", "completed", "terminated"} <= {s.value for s in InviteClientState}
    assert [s.value for s in InviteServerState] == ["proceeding", "completed", "confirmed", "terminated"]
    assert [s.value for s in NonInviteServerState] == ["trying", "proceeding", "completed", "terminated"]
    timers = {e.value for enum in (InviteClientEvent, NonInviteClientEvent, InviteServerEvent, NonInviteServerEvent)
              for e in enum if e.value.startswith("timer_")}
    assert {f"timer_{t}" for t in "abdefghijk"} <= timers


def test_timer_b_fires_in_calling_only() -> None:
    """RFC 3261 §17.1.1.2: once a provisional response came, the INVITE waits for its final response however long
    (the ring timeout of the call ends it, not the transaction)."""
    machine = transaction.INVITE_CLIENT
    assert machine.can(InviteClientState.calling, InviteClientEvent.timer_b)
    assert [s for s in InviteClientState if machine.can(s, InviteClientEvent.timer_b)] == [InviteClientState.calling]
    assert [s for s in InviteClientState if machine.can(s, InviteClientEvent.timer_a)] == [InviteClientState.calling]
