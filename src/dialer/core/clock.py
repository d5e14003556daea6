"""Injectable time: the engine asks a :class:`Clock`, never ``time`` or ``asyncio.sleep`` directly.

Two implementations:

* :class:`SystemClock` — the wall clock, for ``dialer run`` and the real-time demo.
* :class:`VirtualClock` — time that moves only when told to, for tests and discrete-event simulation
  ("hours of calling in seconds"). It serves two kinds of code with one timeline:

  - plain simulation code schedules callbacks with :meth:`VirtualClock.call_at` and drives time with the
    synchronous :meth:`VirtualClock.advance` / :meth:`VirtualClock.advance_to` (the pacing benchmark does this:
    no event loop, no coroutine overhead per event);
  - asyncio tasks ``await clock.sleep(seconds)`` exactly as they would with the system clock, and a driver
    awaits :meth:`VirtualClock.run_for` / :meth:`VirtualClock.run_until`, which wakes the sleepers in time
    order and lets every woken task run until it blocks again before time moves on. The engine code is the
    same in both worlds; only the injected clock differs (Home Assistant's ``freezer.tick`` idea).

Timers due at the same instant fire in the order they were scheduled. Code that runs under a virtual clock must
take all its delays from the clock: ``asyncio.sleep``/``asyncio.wait_for`` and loop timers keep real time. A clock
schedules plain callbacks too (:meth:`Clock.call_later`, the SIP stack's protocol timers) and :func:`wait_for` bounds
an awaitable by the clock's time.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar, runtime_checkable

__all__ = ["Cancellable", "Clock", "SystemClock", "Timer", "VirtualClock", "wait_for"]

T = TypeVar("T")


class Cancellable(Protocol):
    """What :meth:`Clock.call_later` returns: ``cancel()`` drops the callback if it has not run yet."""

    def cancel(self) -> None: ...


@runtime_checkable
class Clock(Protocol):
    """Where the engine gets time from."""

    def now(self) -> float:
        """Monotonic seconds; only differences are meaningful."""
        ...

    def utcnow(self) -> datetime:
        """The current UTC date and time (timezone-aware), for records and calling windows."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Suspend the calling task for ``seconds`` of this clock's time."""
        ...

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> Cancellable:
        """Run ``callback(*args)`` after ``delay`` seconds of this clock's time (at once for a delay <= 0)."""
        ...


class SystemClock:
    """Real time: ``time.monotonic``, ``datetime.now(UTC)`` and ``asyncio.sleep``."""

    def now(self) -> float:
        return time.monotonic()

    def utcnow(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> asyncio.TimerHandle:
        """The running event loop's ``call_later`` (to be called from inside the loop)."""
        return asyncio.get_running_loop().call_later(max(0.0, delay), callback, *args)


class Timer:
    """A scheduled callback of a :class:`VirtualClock`; :meth:`cancel` it to drop it."""

    __slots__ = ("args", "callback", "cancelled", "when")

    def __init__(self, when: float, callback: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.when = when
        self.callback = callback
        self.args = args
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True

    def __repr__(self) -> str:
        state = " cancelled" if self.cancelled else ""
        return f"<Timer at {self.when:.3f}{state} {getattr(self.callback, '__qualname__', self.callback)!r}>"


async def wait_for(clock: Clock, awaitable: Awaitable[T], seconds: float | None) -> T:
    """``asyncio.wait_for`` on ``clock``'s time: the result of ``awaitable``, or :class:`TimeoutError` (the awaitable
    cancelled) when ``seconds`` of the clock pass first (None: no limit). Wrap the awaitable in ``asyncio.shield``
    to keep it running past the timeout."""
    task = asyncio.ensure_future(awaitable)
    if seconds is None or task.done():
        return await task
    expired = False

    def expire() -> None:
        nonlocal expired
        if not task.done():
            expired = True
            task.cancel()

    timer = clock.call_later(seconds, expire)
    try:
        return await task
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if expired and (current is None or not current.cancelling()):
            raise TimeoutError from None
        raise
    finally:
        timer.cancel()


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():  # the sleeping task may have been cancelled meanwhile
        future.set_result(None)


class VirtualClock:
    """Simulated time for tests and discrete-event simulation; see the module docstring.

    ``start`` is the initial monotonic reading, ``epoch`` the UTC time that corresponds to it.
    """

    #: How many times :meth:`run_until` yields to the event loop, at most, waiting for woken tasks to block again.
    max_settle_rounds = 10_000

    def __init__(self, start: float = 0.0, *, epoch: datetime | None = None) -> None:
        self._start = start
        self._now = start
        self._epoch = epoch if epoch is not None else datetime(2025, 1, 1, tzinfo=UTC)
        if self._epoch.tzinfo is None:
            raise ValueError("epoch must be timezone-aware")
        self._heap: list[tuple[float, int, Timer]] = []
        self._seq = itertools.count()

    # --- the Clock protocol -------------------------------------------------------------------------------
    def now(self) -> float:
        return self._now

    def utcnow(self) -> datetime:
        return self._epoch + timedelta(seconds=self._now - self._start)

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)  # still a scheduling point, as with the system clock
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        timer = self.call_at(self._now + seconds, _wake, future)
        try:
            await future
        finally:
            timer.cancel()  # no-op once fired; keeps cancelled sleepers from waking anything

    # --- scheduling ---------------------------------------------------------------------------------------
    def call_at(self, when: float, callback: Callable[..., Any], *args: Any) -> Timer:
        """Run ``callback(*args)`` when the clock reaches ``when`` (at once on the next advance if in the past)."""
        timer = Timer(max(when, self._now), callback, args)
        heapq.heappush(self._heap, (timer.when, next(self._seq), timer))
        return timer

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> Timer:
        return self.call_at(self._now + delay, callback, *args)

    def next_deadline(self) -> float | None:
        """When the earliest pending timer is due, or None when nothing is scheduled."""
        heap = self._heap
        while heap and heap[0][2].cancelled:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    # --- moving time from plain code ----------------------------------------------------------------------
    def advance(self, seconds: float) -> int:
        """Move time forward by ``seconds``, firing due timers in time order; returns how many fired.

        Callbacks may schedule further timers; those due within the interval fire too. Asyncio sleepers are
        only marked ready here: use :meth:`run_for` when tasks must run between timers.
        """
        if seconds < 0:
            raise ValueError("time cannot go backwards")
        return self.advance_to(self._now + seconds)

    def advance_to(self, deadline: float) -> int:
        """Like :meth:`advance`, to an absolute reading of :meth:`now`."""
        heap = self._heap
        pop = heapq.heappop
        fired = 0
        while heap and heap[0][0] <= deadline:
            when, _, timer = pop(heap)
            if timer.cancelled:
                continue
            self._now = when
            timer.callback(*timer.args)
            fired += 1
        if deadline > self._now:
            self._now = deadline
        return fired

    # --- moving time under asyncio ------------------------------------------------------------------------
    async def run_for(self, seconds: float) -> None:
        """Advance by ``seconds`` letting woken tasks run at each timer's instant (see :meth:`run_until`)."""
        if seconds < 0:
            raise ValueError("time cannot go backwards")
        await self.run_until(self._now + seconds)

    async def run_until(self, deadline: float) -> None:
        """Advance to ``deadline``: fire timers one by one in time order and, after each, let the tasks it woke
        run until they block again, so a task that wakes at t=5 and sleeps 1 s more is woken at t=6 even
        within a single call."""
        await self._settle()
        heap = self._heap
        while heap and heap[0][0] <= deadline:
            when, _, timer = heapq.heappop(heap)
            if timer.cancelled:
                continue
            self._now = when
            timer.callback(*timer.args)
            await self._settle()
        if deadline > self._now:
            self._now = deadline

    async def _settle(self) -> None:
        """Yield to the event loop until no callback is ready to run (every task is blocked again).

        Reads the loop's ready queue (``_ready`` in CPython's ``BaseEventLoop``); a loop without one gets a fixed
        number of rounds, which is enough for the usual wake-up chains of a few tasks.
        """
        loop = asyncio.get_running_loop()
        ready = getattr(loop, "_ready", None)
        if ready is None:
            for _ in range(64):
                await asyncio.sleep(0)
            return
        for _ in range(self.max_settle_rounds):
            await asyncio.sleep(0)
            if not ready:
                return
        raise RuntimeError("tasks keep the event loop busy: under a VirtualClock, wait with clock.sleep()")
