"""Live events for the browser: ``GET /live/events`` streams the engine's events as Server-Sent Events.

One :class:`LiveHub` per web process holds the only database connection that listens (``LISTEN dialer_events`` via
:func:`dialer.engine.bus.listen_raw`) and fans every event out to the connected browsers; the connection is opened
when the first browser subscribes. Each browser has a bounded buffer: one that falls behind gets a ``Resync``
message instead of the events it missed.

Who sees what
    ``monitoring.read``: every event. ``operator_panel.use`` only: the events of one's own operator (``operator_id``
    equal to it, and the call events of attempts seen with it), the campaign events, and for the other operators'
    attempts only the counters (``AttemptFinished`` reduced to ``campaign_id``, ``category``, ``abandoned``).

Message shape (the SSE ``data:`` of unnamed messages; one JSON object each)
    * an engine event as :func:`dialer.engine.events.encode` writes it: ``{"type": "OperatorStateChanged",
      "at": "2026-01-05T09:00:01.5+00:00", "operator_id": 7, "state": "ready", ...}`` (see ``engine/events.py``
      for every type and its fields);
    * ``{"type": "Hello", "scope": "all" | "operator", "operator_id": 7 | null, "topics": [...]}`` first on
      every connection: once it arrives the stream is live; a client that sees a second ``Hello`` (it reconnected)
      re-reads the state it shows;
    * ``{"type": "ListenerReconnected", "at": ...}``: the server's own LISTEN connection was re-established and
      events may have been missed; ``{"type": "Resync"}``: this client fell behind and events were dropped. Both
      mean: re-read the state.
    Heartbeats are SSE comments (``: ping``) every :data:`HEARTBEAT_S` seconds. There are no event ids: a client
    re-fetches the state after a reconnection instead of replaying (``Last-Event-ID`` is not used). The stream is
    written by ``sse-starlette`` (:class:`EventSourceResponse`), which also ends it when the server shuts down.

Topics (``?topics=operators,calls``; none = all): ``operators`` (OperatorStateChanged, Preview*, CommandFailed),
``calls`` (Call*, AttemptFinished), ``campaigns`` (Campaign*), ``engine`` (EngineStarted/Stopped), ``telephony``
(DeviceStateChanged, TrunkStateChanged: monitoring only), or exact event type names. ``Hello``,
``ListenerReconnected`` and ``Resync`` are always sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections import deque
from collections.abc import AsyncIterator, Collection, Iterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
from fastapi import APIRouter, Depends, FastAPI, Query, Request
from sse_starlette import EventSourceResponse, ServerSentEvent
from sse_starlette.sse import AppStatus

from dialer.api.deps import Session
from dialer.auth.permissions import P
from dialer.auth.service import Principal
from dialer.db import asyncpg_dsn
from dialer.engine import events as ev
from dialer.engine.bus import CHANNEL, listen_raw
from dialer.exceptions import ValidationFailed
from dialer.web.access import RequireAny
from dialer.workplace import service as workplace

__all__ = ["HEARTBEAT_S", "TOPICS", "LiveHub", "OperatorView", "router", "server_exiting"]

log = logging.getLogger(__name__)

HEARTBEAT_S = 15.0
#: Messages a browser may have waiting before it is told to resync.
CLIENT_BUFFER = 2000

TOPICS: dict[str, frozenset[str]] = {
    "operators": frozenset({"OperatorStateChanged", "PreviewStarted", "PreviewEnded", "CommandFailed"}),
    "calls": frozenset({"CallPlaced", "CallRinging", "CallAnswered", "CallOnHold", "CallConnected", "CallEnded",
                        "AttemptFinished", "CallIncoming", "CallTransferred"}),
    "campaigns": frozenset({"CampaignStatusChanged", "CampaignAutoPaused", "CampaignFinished",
                            "CampaignScheduleChanged"}),
    "engine": frozenset({"EngineStarted", "EngineStopped"}),
    "telephony": frozenset({"DeviceStateChanged", "TrunkStateChanged"}),
}
ALWAYS = frozenset({"Hello", "ListenerReconnected", "Resync"})
_CAMPAIGN_EVENTS = TOPICS["campaigns"]
_PUBLIC_EVENTS = TOPICS["engine"] | {"ListenerReconnected"}


def topic_types(topics: Collection[str]) -> frozenset[str] | None:
    """Event types of the requested topics; ``None`` for all. Unknown names raise ``ValueError``."""
    wanted = [t.strip() for t in topics if t.strip()]
    if not wanted:
        return None
    types: set[str] = set()
    for name in wanted:
        if name in TOPICS:
            types |= TOPICS[name]
        elif name in ev.EVENT_TYPES:
            types.add(name)
        else:
            raise ValueError(name)
    return frozenset(types)


class OperatorView:
    """What one operator's panel may see of the event stream (see the module docstring); keeps a little state."""

    MAX_ATTEMPTS = 1000

    def __init__(self, operator_id: int) -> None:
        self.operator_id = operator_id
        self._attempts: deque[int] = deque(maxlen=self.MAX_ATTEMPTS)

    def view(self, event: dict[str, Any]) -> dict[str, Any] | None:
        kind = event.get("type")
        if kind in _PUBLIC_EVENTS or kind in _CAMPAIGN_EVENTS:
            return event
        attempt = event.get("attempt_id")
        if "operator_id" in event:
            mine = event["operator_id"] == self.operator_id
            if kind == "AttemptFinished":
                if isinstance(attempt, int) and attempt in self._attempts:
                    self._attempts.remove(attempt)
                    mine = True
                if not mine:
                    return {"type": kind, "at": event.get("at"), "campaign_id": event.get("campaign_id"),
                            "category": event.get("category"), "abandoned": event.get("abandoned")}
                return event
            if not mine:
                return None
            if isinstance(attempt, int) and attempt not in self._attempts:
                self._attempts.append(attempt)
            return event
        if attempt is not None and attempt in self._attempts:
            return event
        return None


class Client:
    """One connected browser: its filter and its bounded buffer of encoded messages."""

    def __init__(self, types: frozenset[str] | None, operator: OperatorView | None) -> None:
        self.types = types
        self.operator = operator
        self._buffer: deque[str] = deque()
        self._wake = asyncio.Event()
        self.overflowed = False
        self.closed = False

    def offer(self, event: dict[str, Any], text: str) -> None:
        kind = event.get("type")
        if self.types is not None and kind not in self.types and kind not in ALWAYS:
            return
        if self.operator is not None:
            seen = self.operator.view(event)
            if seen is None:
                return
            if seen is not event:
                text = _dump(seen)
        if len(self._buffer) >= CLIENT_BUFFER:
            self._buffer.clear()
            self.overflowed = True
        self._buffer.append(text)
        self._wake.set()

    def close(self) -> None:
        self.closed = True
        self._wake.set()

    async def wait(self) -> None:
        """Until something is waiting or the client is closed (use under ``asyncio.timeout``)."""
        if not self._buffer and not self.closed:
            await self._wake.wait()

    def take(self) -> list[str]:
        """What is waiting: the messages, or one ``Resync`` after an overflow."""
        self._wake.clear()
        out = list(self._buffer)
        self._buffer.clear()
        if self.overflowed:
            self.overflowed = False
            out = [_dump({"type": "Resync"})]
        return out


def _dump(data: dict[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str)


class LiveHub:
    """The web process's single LISTEN connection, fanned out to every connected browser."""

    def __init__(self, url: str, *, channel: str = CHANNEL, reconnect_s: float = 1.0) -> None:
        self.url = url
        self.channel = channel
        self.reconnect_s = reconnect_s
        self.clients: set[Client] = set()
        self.ready = asyncio.Event()
        self.closed = False
        self.received = 0
        self._task: asyncio.Task[None] | None = None
        self._probe = f'{{"type":"WebHubProbe","id":"{uuid.uuid4().hex}"}}'

    def subscribe(self, types: frozenset[str] | None = None, operator: OperatorView | None = None) -> Client:
        client = Client(types, operator)
        if self.closed:
            client.close()
            return client
        self.clients.add(client)
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="live hub")
        return client

    def unsubscribe(self, client: Client) -> None:
        self.clients.discard(client)
        client.close()

    def publish(self, event: dict[str, Any]) -> None:
        text = _dump(event)
        for client in list(self.clients):
            client.offer(event, text)

    async def close(self) -> None:
        """End every stream and the LISTEN connection (the application's shutdown); new subscribers get a closed
        stream."""
        self.closed = True
        for client in list(self.clients):
            self.unsubscribe(client)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        prober = asyncio.create_task(self._confirm_listening())
        try:
            async for payload in listen_raw(self.url, self.channel, reconnect_s=self.reconnect_s):
                if payload is None:
                    self.publish(json.loads(ev.encode(ev.ListenerReconnected(at=datetime.now(UTC)))))
                    continue
                if payload == self._probe:
                    self.ready.set()
                    continue
                event = ev.decode(payload)
                if event is None:
                    continue
                self.received += 1
                # the receiving side's form: exactly what engine.events.encode sent, so fields stay as documented
                data = json.loads(payload)
                if isinstance(data, dict):
                    self.publish(data)
        finally:
            prober.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await prober

    async def _confirm_listening(self) -> None:
        """NOTIFY a probe until it comes back: then the LISTEN is in place and ``ready`` is set."""
        while not self.ready.is_set():
            try:
                conn = await asyncpg.connect(asyncpg_dsn(self.url))
                try:
                    await conn.execute("SELECT pg_notify($1, $2)", self.channel, self._probe)
                finally:
                    await conn.close()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as err:
                log.debug("live hub probe failed: %s", err)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.25):
                    await self.ready.wait()


def hub_of(app: FastAPI) -> LiveHub:
    hub: LiveHub | None = getattr(app.state, "live_hub", None)
    if hub is None:
        hub = app.state.live_hub = LiveHub(app.state.database_url)
    return hub


@contextlib.contextmanager
def server_exiting() -> Iterator[None]:
    """Around the web server's shutdown (``tools/serve.py``): uvicorn waits for every running response, and a live
    event stream never ends by itself. sse-starlette ends its streams once it sees the server exiting; it finds
    that out by itself only under uvicorn's own signal handlers, which ``dialer run`` replaces, so it is told
    here. Its flag is process-wide: it is lowered again once the shutdown is over, so that a later server in the
    same process (tests, benchmarks) keeps its streams."""
    AppStatus.should_exit = True
    try:
        yield
    finally:
        AppStatus.should_exit = False


# --- the endpoint ---------------------------------------------------------------------------------------------

router = APIRouter(prefix="/live", tags=["monitoring"])
_live_access = Depends(RequireAny(P.monitoring_read, P.panel_use))

_SSE_DOC = {
    200: {"description": "A stream of Server-Sent Events; each `data:` is one JSON object (see the description)",
          "content": {"text/event-stream": {"schema": {"type": "string"}}}},
}


@router.get("/events", response_class=EventSourceResponse, responses=_SSE_DOC,  # type: ignore[arg-type]
            summary="Live engine events for the browser panels (Server-Sent Events)",
            description=__doc__.split("\n\n", 1)[1] if __doc__ else "")
async def events(request: Request, session: Session,
                 topics: str = Query("", description="Comma-separated topics or event types; empty = all"),
                 principal: Principal = _live_access) -> EventSourceResponse:
    try:
        types = topic_types(topics.split(","))
    except ValueError as err:
        raise ValidationFailed.field("topics", f"unknown topic or event type '{err}'; topics: "
                                     f"{', '.join(TOPICS)}")
    operator: OperatorView | None = None
    if P.monitoring_read not in principal.permissions:
        operator = OperatorView((await workplace.operator_of(session, principal.user_id)).id)
    # give the pooled connection back now: the stream may stay open for hours
    await session.commit()
    hello = {"type": "Hello", "scope": "operator" if operator else "all",
             "operator_id": operator.operator_id if operator else None, "topics": sorted(types) if types else []}
    return EventSourceResponse(_stream(hub_of(request.app), types, operator, hello), sep=_SEP,
                               ping=HEARTBEAT_S, ping_message_factory=_ping,
                               headers={"Cache-Control": "no-cache"})


_SEP = "\n"


def _ping() -> ServerSentEvent:
    return ServerSentEvent(comment="ping", sep=_SEP)


async def _stream(hub: LiveHub, types: frozenset[str] | None, operator: OperatorView | None,
                  hello: dict[str, Any]) -> AsyncIterator[bytes]:
    # subscribed when the response starts streaming (a HEAD request never does); ends when the client goes away
    # (cancelled), when the hub closes, or when the server shuts down (sse-starlette cancels it)
    client = hub.subscribe(types, operator)
    try:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5):
                await hub.ready.wait()
        yield ServerSentEvent(_dump(hello), retry=2000, sep=_SEP).encode()
        while not client.closed:
            await client.wait()
            messages = client.take()
            if messages:  # what piled up goes out in one write
                yield b"".join(ServerSentEvent(m, sep=_SEP).encode() for m in messages)
    finally:
        hub.unsubscribe(client)
