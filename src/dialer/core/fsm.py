"""State machines written as transition tables, shared by every machine of the product.

A :class:`Machine` wraps one ``{(state, event): next_state}`` table: :meth:`Machine.next` is the only way a state
changes, an illegal pair raises, and :meth:`Machine.allowed` names the ways out of a state (for error messages and
for the tests that walk the table with ``pytest.mark.parametrize``). The tables themselves stay plain dicts beside
the docstring that draws them, so a reader sees the machine in one place:

* calls (attempts): :mod:`dialer.engine.call_fsm`; operators: :mod:`dialer.engine.operator_fsm`;
* campaign status: :mod:`dialer.campaign.status`;
* SIP client and server transactions and dialogs (RFC 3261 §17, §12): :mod:`dialer.telephony.sip.transaction`,
  :mod:`dialer.telephony.sip.dialog`; the SIP driver's calls: :mod:`dialer.telephony.sip.driver`.

This module depends on nothing else in the product (see :mod:`dialer.core`).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator, Mapping
from typing import Generic, TypeVar

__all__ = ["IllegalTransition", "Machine"]

S = TypeVar("S", bound=Hashable)
E = TypeVar("E", bound=Hashable)


class IllegalTransition(Exception):
    """An event the machine's current state does not allow; the default error of :meth:`Machine.next`."""

    def __init__(self, message: str, *, state: object = None, event: object = None) -> None:
        super().__init__(message)
        self.state = state
        self.event = event


def _name(value: object) -> str:
    return str(getattr(value, "value", value))


class Machine(Generic[S, E]):
    """One transition table and its rules.

    ``error(state, event, allowed)`` builds the exception an illegal pair raises; machines whose refusals reach a
    user (an operator's or a campaign's) pass their own, with a message in the user's terms.
    """

    __slots__ = ("_error", "_exits", "name", "table")

    def __init__(self, name: str, table: Mapping[tuple[S, E], S], *,
                 error: Callable[[S, E, list[E]], Exception] | None = None) -> None:
        self.name = name
        self.table: Mapping[tuple[S, E], S] = table
        self._error = error
        exits: dict[S, list[E]] = {}
        for state, event in table:
            exits.setdefault(state, []).append(event)
        self._exits = exits

    def next(self, state: S, event: E) -> S:
        """The state after ``event`` in ``state``; raises the machine's error for a pair not in the table."""
        try:
            return self.table[(state, event)]
        except KeyError:
            raise self.refusal(state, event) from None

    def can(self, state: S, event: E) -> bool:
        return (state, event) in self.table

    def allowed(self, state: S) -> list[E]:
        """The events ``state`` takes, in table order."""
        return list(self._exits.get(state, ()))

    def refusal(self, state: S, event: E) -> Exception:
        """The exception for an illegal ``(state, event)`` (raised by :meth:`next`)."""
        allowed = self.allowed(state)
        if self._error is not None:
            return self._error(state, event, allowed)
        names = ", ".join(_name(e) for e in allowed) or "none"
        return IllegalTransition(f"{self.name} in state {_name(state)} cannot take {_name(event)} (allowed: {names})",
                                 state=state, event=event)

    def states(self) -> set[S]:
        """Every state the table names, as a source or a target."""
        return set(self._exits) | set(self.table.values())

    def __iter__(self) -> Iterator[tuple[S, E, S]]:
        for (state, event), target in self.table.items():
            yield state, event, target

    def __repr__(self) -> str:
        return f"<Machine {self.name}: {len(self.table)} transitions>"
