"""The internal event bus: in-process subscribers, and publication to other processes over PostgreSQL.

In-process
    :meth:`Bus.publish` is synchronous and never blocks: each subscriber has a bounded buffer, and a subscriber
    that falls behind loses its *oldest* events (counted in :attr:`Subscription.dropped`) rather than slowing the
    engine down. A panel that sees ``dropped`` grow should re-read the state it shows. Sinks
    (:meth:`Bus.add_sink`) are plain callables run inside ``publish``; the engine uses one to hand every event to
    its write-behind journal, which sends it with ``NOTIFY`` in the same transaction as the rows it describes.

Across processes
    Events travel as JSON (:mod:`dialer.engine.events`, ≤ 8000 bytes) on the channel :data:`CHANNEL`
    (``dialer_events``). :func:`notify` sends a batch in one statement inside a caller's transaction, so they are
    delivered exactly when that transaction commits; :class:`Publisher` forwards a bus to PostgreSQL on its own
    connection for processes without a journal; :func:`listen` is the receiving end for the web process (panels,
    live events): an async iterator that reconnects by itself and then yields :class:`ListenerReconnected`.

Operator and supervisor commands travel the other way on :data:`COMMAND_CHANNEL` (see ``engine.commands``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from dialer.db import asyncpg_dsn
from dialer.engine.events import Event, ListenerReconnected, decode, encode

__all__ = ["CHANNEL", "COMMAND_CHANNEL", "Bus", "Publisher", "Subscription", "listen", "listen_raw", "notify"]

log = logging.getLogger(__name__)

#: The NOTIFY channel events are published on.
CHANNEL = "dialer_events"
#: The NOTIFY channel the API wakes the engine up on when it queues a command (payload: the command id).
COMMAND_CHANNEL = "dialer_commands"

Sink = Callable[[Event], None]


class Subscription:
    """One subscriber's bounded buffer; iterate it (``async for event in sub``) or ``await sub.get()``.

    When the buffer is full the oldest event is dropped and :attr:`dropped` counts it: the publisher never waits.
    """

    def __init__(self, bus: Bus, maxsize: int, types: frozenset[type[Event]] | None) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self._bus = bus
        self.maxsize = maxsize
        self.types = types
        self.dropped = 0
        self._buffer: deque[Event] = deque()
        self._ready = asyncio.Event()
        self.closed = False

    def offer(self, event: Event) -> None:
        if self.closed or (self.types is not None and type(event) not in self.types):
            return
        if len(self._buffer) >= self.maxsize:
            self._buffer.popleft()
            self.dropped += 1
        self._buffer.append(event)
        self._ready.set()

    def pending(self) -> int:
        return len(self._buffer)

    def get_nowait(self) -> Event | None:
        if not self._buffer:
            return None
        event = self._buffer.popleft()
        if not self._buffer:
            self._ready.clear()
        return event

    async def get(self) -> Event:
        """The next event; raises :class:`StopAsyncIteration` once the subscription is closed and drained."""
        while not self._buffer:
            if self.closed:
                raise StopAsyncIteration
            await self._ready.wait()
        event = self._buffer.popleft()
        if not self._buffer:
            self._ready.clear()
        return event

    def close(self) -> None:
        """Stop receiving; what is buffered can still be read."""
        if not self.closed:
            self.closed = True
            self._bus._unsubscribe(self)
            self._ready.set()  # wake a reader so it sees the end

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Event:
        return await self.get()


class Bus:
    """The in-process event bus (one per engine)."""

    def __init__(self) -> None:
        self._subscribers: list[Subscription] = []
        self._sinks: list[Sink] = []
        self.published = 0

    def subscribe(self, *, maxsize: int = 1000, types: Iterable[type[Event]] | None = None) -> Subscription:
        """A new subscription, optionally only to some event types."""
        sub = Subscription(self, maxsize, frozenset(types) if types is not None else None)
        self._subscribers.append(sub)
        return sub

    def _unsubscribe(self, sub: Subscription) -> None:
        with contextlib.suppress(ValueError):
            self._subscribers.remove(sub)

    def add_sink(self, sink: Sink) -> None:
        """Call ``sink(event)`` for every event, inside :meth:`publish` (it must be quick and must not raise)."""
        self._sinks.append(sink)

    def publish(self, event: Event) -> None:
        """Deliver ``event`` to every subscriber and sink; never blocks, never raises for a subscriber's sake."""
        self.published += 1
        for sub in self._subscribers:
            sub.offer(event)
        for sink in self._sinks:
            try:
                sink(event)
            except Exception:  # a faulty sink must not stop the engine
                log.exception("event sink failed on %s", event.type)


# --- across processes -----------------------------------------------------------------------------------------

_NOTIFY = text("SELECT pg_notify(:channel, p) FROM unnest(CAST(:payloads AS text[])) WITH ORDINALITY AS t(p, n) "
               "ORDER BY n")


async def notify(db: AsyncSession | AsyncConnection, events: Sequence[Event], *, channel: str = CHANNEL) -> None:
    """NOTIFY ``events`` (in order) in the caller's transaction: listeners get them when it commits."""
    if events:
        await db.execute(_NOTIFY, {"channel": channel, "payloads": [encode(e) for e in events]})


class Publisher:
    """Forwards a bus to PostgreSQL on its own connection, in batches (for a process without a journal).

    Run :meth:`run` as a task; it ends when :meth:`close` is called, after sending what was already published.
    """

    def __init__(self, bus: Bus, url: str, *, channel: str = CHANNEL, maxsize: int = 10_000,
                 batch: int = 500) -> None:
        self.url = url
        self.channel = channel
        self.batch = batch
        self.sent = 0
        self._sub = bus.subscribe(maxsize=maxsize)

    @property
    def dropped(self) -> int:
        return self._sub.dropped

    def close(self) -> None:
        self._sub.close()

    async def run(self) -> None:
        conn: asyncpg.Connection | None = None
        try:
            while True:
                try:
                    first = await self._sub.get()
                except StopAsyncIteration:
                    return
                batch = [first]
                while len(batch) < self.batch and (nxt := self._sub.get_nowait()) is not None:
                    batch.append(nxt)
                payloads = [encode(e) for e in batch]
                for attempt in range(2):
                    try:
                        if conn is None or conn.is_closed():
                            conn = await asyncpg.connect(asyncpg_dsn(self.url))
                        await conn.execute("SELECT pg_notify($1, p) FROM unnest($2::text[]) WITH ORDINALITY "
                                           "AS t(p, n) ORDER BY n", self.channel, payloads)
                        self.sent += len(batch)
                        break
                    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                        conn = None
                        if attempt:
                            log.warning("could not publish %d events; they are lost", len(batch))
        finally:
            if conn is not None and not conn.is_closed():
                await conn.close()


async def listen_raw(url: str, channel: str, *, reconnect_s: float = 1.0) -> AsyncIterator[str | None]:
    """Payloads NOTIFYed on ``channel``, forever; ``None`` after each reconnection (something may be missed)."""
    queue: asyncio.Queue[str | None] = asyncio.Queue()
    lost = asyncio.Event()

    def on_notify(_conn: Any, _pid: int, _channel: str, payload: str) -> None:
        queue.put_nowait(payload)

    def on_lost(_conn: Any) -> None:
        lost.set()

    conn: asyncpg.Connection | None = None
    first = True
    try:
        while True:
            try:
                conn = await asyncpg.connect(asyncpg_dsn(url))
                conn.add_termination_listener(on_lost)
                await conn.add_listener(channel, on_notify)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as err:
                log.warning("cannot listen on %s (%s); retrying", channel, err)
                conn = None
                await asyncio.sleep(reconnect_s)
                continue
            if not first:
                yield None
            first = False
            lost.clear()
            while not lost.is_set() or not queue.empty():
                if queue.empty():
                    getter = asyncio.ensure_future(queue.get())
                    waiter = asyncio.ensure_future(lost.wait())
                    try:
                        await asyncio.wait({getter, waiter}, return_when=asyncio.FIRST_COMPLETED)
                    finally:
                        waiter.cancel()
                        if not getter.done():
                            getter.cancel()
                    if getter.done() and not getter.cancelled():
                        yield getter.result()
                    continue
                yield queue.get_nowait()
            with contextlib.suppress(Exception):
                await conn.close()
            conn = None
            await asyncio.sleep(reconnect_s)
    finally:
        if conn is not None and not conn.is_closed():
            with contextlib.suppress(Exception):
                await conn.close()


async def listen(url: str, *, channel: str = CHANNEL, reconnect_s: float = 1.0) -> AsyncIterator[Event]:
    """The engine's events as another process sees them: ``async for event in listen(url): ...``.

    Reconnects by itself; after a reconnection it yields :class:`ListenerReconnected` (events published while
    disconnected are lost, as with any NOTIFY listener). Unknown payloads are skipped.
    """
    async for payload in listen_raw(url, channel, reconnect_s=reconnect_s):
        if payload is None:
            yield ListenerReconnected(at=datetime.now(UTC))
            continue
        event = decode(payload)
        if event is not None:
            yield event
