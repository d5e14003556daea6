"""Concurrent callers of one expensive read share a single computation (the "single flight" pattern).

Two hundred supervisors polling the live floor at once asked the database the same dozen questions two hundred times
over; with :class:`SingleFlight` the requests that arrive while an answer is being computed wait for that answer
instead of starting their own. Nothing is cached beyond the computation itself: a request that arrives after it
finished starts a fresh one, so no answer is older than the requests it serves.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

__all__ = ["SingleFlight"]

T = TypeVar("T")


class SingleFlight(Generic[T]):
    """Run ``compute()`` once for every group of overlapping callers of :meth:`run`."""

    def __init__(self) -> None:
        self._flight: asyncio.Future[T] | None = None
        self.computed = 0
        self.shared = 0

    async def run(self, compute: Callable[[], Awaitable[T]]) -> T:
        flight = self._flight
        if flight is not None and not flight.done() and flight.get_loop() is asyncio.get_running_loop():
            self.shared += 1
            # shielded: one caller giving up (a closed connection) does not cancel the others' answer
            return await asyncio.shield(flight)
        flight = asyncio.ensure_future(compute())
        self._flight = flight
        self.computed += 1
        try:
            return await asyncio.shield(flight)
        finally:
            if flight.done() and self._flight is flight:
                self._flight = None
            elif not flight.done():
                flight.add_done_callback(lambda f: self._forget(f))

    def _forget(self, flight: asyncio.Future[T]) -> None:
        if self._flight is flight:
            self._flight = None
        if not flight.cancelled():
            flight.exception()  # retrieved: an unawaited failure is not reported as "never retrieved"
