"""Moving virtual time under a running engine (tests, the engine benchmark).

:meth:`~dialer.core.clock.VirtualClock.run_until` lets woken tasks run until they block, but a task waiting for
the database is "blocked" too, so time could run ahead of the engine. :func:`advance` therefore moves time one
timer at a time and, before each step, waits until the engine is :meth:`~dialer.engine.runner.Engine.quiescent`:
everything posted to it handled, database work of its decisions included. The journal's write-behind is not
waited for (it does not change what the engine decides); :func:`settle` waits for it too.
"""

from __future__ import annotations

from typing import Protocol

from dialer.core.clock import VirtualClock

__all__ = ["advance", "settle"]


class _Quiescent(Protocol):
    async def quiescent(self) -> None: ...

    def is_idle(self) -> bool: ...


async def _catch_up(clock: VirtualClock, engine: _Quiescent) -> None:
    while True:
        await engine.quiescent()
        await clock.run_until(clock.now())  # lets woken tasks run; fires timers due now
        if engine.is_idle():
            return


async def advance(clock: VirtualClock, engine: _Quiescent, seconds: float) -> None:
    """Let ``seconds`` of virtual time pass, the engine keeping up at every timer."""
    end = clock.now() + seconds
    while True:
        await _catch_up(clock, engine)
        deadline = clock.next_deadline()
        if deadline is None or deadline > end:
            break
        await clock.run_until(deadline)
    await clock.run_until(end)
    await _catch_up(clock, engine)


async def settle(clock: VirtualClock, engine: _Quiescent) -> None:
    """Wait until the engine is idle and its journal has written everything (without moving time)."""
    await _catch_up(clock, engine)
    journal = getattr(engine, "journal", None)
    if journal is not None:
        await journal.drained()
