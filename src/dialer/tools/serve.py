"""``dialer run``: the web API and the engine in one process (the default installation).

Only this entry module and the demo import the web application; the engine core (:mod:`dialer.engine.runner`)
never does, so the engine also runs alone (:mod:`dialer.tools.engine`). Both share one event loop here but not their
database pools: a burst of web requests cannot starve the engine's writes.

Signals: SIGTERM/SIGINT stop the web server and drain the engine (calls in progress finish, then the run is
closed); a second signal does not force anything — the engine's drain is bounded by ``EngineConfig.drain_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Collection, Iterator
from typing import Any

import uvicorn

from dialer.app import create_app
from dialer.config import Settings, get_settings
from dialer.core.clock import Clock, SystemClock
from dialer.db import keep_embedded_running, make_engine, make_sessionmaker, resolve_url
from dialer.engine.runner import Engine, EngineConfig, install_signal_handlers
from dialer.migrate import prepare_database
from dialer.telephony.base import Telephony
from dialer.telephony.traffic import Distribution, Scenario
from dialer.tools.engine import build_engine
from dialer.voip.runtime import configured_telephony, watch_trunks
from dialer.web.live import server_exiting

__all__ = ["serve"]

log = logging.getLogger(__name__)


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the process-wide handlers stop web server and engine together."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def shutdown(self, sockets: Any = None) -> None:
        # uvicorn waits for every running response, and a live event stream never ends by itself: end them
        with server_exiting():
            await super().shutdown(sockets)


async def serve(settings: Settings | None = None, *, host: str | None = None, port: int | None = None,
                database_url: str | None = None, with_engine: bool = True, telephony: Telephony | None = None,
                clock: Clock | None = None, config: EngineConfig | None = None, scenario: Scenario | None = None,
                sim_operators: bool | Collection[int] = False, human_operators: Collection[int] = (),
                sim_wrap_up_s: Distribution | None = None, prepare: bool = True, stop: asyncio.Event | None = None,
                on_engine: Callable[[Engine], Any] | None = None, log_level: str = "info",
                watch_embedded: bool | None = None) -> None:
    """Serve the API (uvicorn) and run the engine until a signal or ``stop``; what ``dialer run`` calls.

    ``watch_embedded`` (default: when the URL is the embedded server's, resolved here) starts the embedded PostgreSQL
    server again whenever it dies."""
    settings = settings or get_settings()
    if watch_embedded is None:
        watch_embedded = not database_url and not settings.database_url
    url = database_url if database_url else await asyncio.to_thread(resolve_url, settings)
    if prepare:
        await prepare_database(url, settings)
    app = create_app(settings, database_url=url, prepare=False)
    server = _Server(uvicorn.Config(app, host=host or settings.host, port=port or settings.port,
                                    log_level=log_level, lifespan="on"))
    stop = stop or asyncio.Event()
    install_signal_handlers(stop)
    db = make_engine(url)
    try:
        engine = None
        sip = None
        if with_engine:
            maker = make_sessionmaker(db)
            clock = clock or SystemClock()
            if telephony is None:
                sip = await configured_telephony(settings, maker, clock)
                telephony = sip
            engine = build_engine(maker, database_url=url, telephony=telephony, clock=clock,
                                  config=config, scenario=scenario, sim_operators=sim_operators,
                                  human_operators=human_operators, sim_wrap_up_s=sim_wrap_up_s)
            if on_engine is not None:
                on_engine(engine)
        async with asyncio.TaskGroup() as tg:
            web = tg.create_task(server.serve(), name="web server")
            core = tg.create_task(engine.run(stop), name="engine") if engine is not None else None
            watcher = tg.create_task(watch_trunks(sip, maker, stop=stop), name="trunk watcher") if sip else None
            keeper = tg.create_task(keep_embedded_running(settings.data_dir), name="embedded database keeper") \
                if watch_embedded else None
            waiter = asyncio.ensure_future(stop.wait())
            watched: set[asyncio.Future[Any]] = {waiter, web}
            if core is not None:
                watched.add(core)
            await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
            stop.set()  # whichever ended first, the other follows
            server.should_exit = True
            waiter.cancel()
            for task in (watcher, keeper):
                if task is not None:
                    task.cancel()
    finally:
        await db.dispose()
