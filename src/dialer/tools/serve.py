"""``dialer run``: the web API, and the engine beside it (the default installation).

Only this entry module and the demo import the web application; the engine core (:mod:`dialer.engine.runner`)
never does, so the engine also runs alone (:mod:`dialer.tools.engine`). ``dialer run`` starts it as a child process
it supervises (:func:`supervise_engine`): the web's load — two hundred supervisors polling, a long import — never
shares an event loop with the process that paces calls. In one process (``dialer run --engine-in-process``, the
demo, the tests) both share the event loop but not their database pools.

Signals: SIGTERM/SIGINT stop the web server and drain the engine (calls in progress finish, then the run is
closed); a second signal does not force anything — the engine's drain is bounded by ``EngineConfig.drain_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Callable, Collection, Iterator
from typing import Any

import uvicorn

from dialer.app import create_app
from dialer.config import Settings, get_settings
from dialer.core.clock import Clock, SystemClock
from dialer.crm.reader import CrmReader
from dialer.crm.worker import DeliveryWorker
from dialer.db import keep_embedded_running, make_engine, make_sessionmaker, resolve_url, runtime_url
from dialer.engine.runner import Engine, EngineConfig, install_signal_handlers
from dialer.migrate import prepare_database
from dialer.telephony.base import Telephony
from dialer.telephony.traffic import Distribution, Scenario
from dialer.tools.engine import build_engine, engine_config
from dialer.voip.runtime import close_media, configured_telephony, watch_trunks
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
                watch_embedded: bool | None = None, engine_process: bool = False) -> None:
    """Serve the API (uvicorn) and run the engine until a signal or ``stop``; what ``dialer run`` calls.

    ``watch_embedded`` (default: when the URL is the embedded server's, resolved here) starts the embedded PostgreSQL
    server again whenever it dies. ``engine_process`` (with ``with_engine=False``) runs the engine as a child process
    (``dialer engine``) supervised by this one: what ``dialer run`` does, so that the web's load and long imports
    never share an event loop with the process that paces calls."""
    settings = settings or get_settings()
    if watch_embedded is None:
        watch_embedded = not database_url and not settings.database_url
    url = database_url if database_url else await asyncio.to_thread(resolve_url, settings)
    if prepare:
        await prepare_database(url, settings)
    # migrations ran with ``url``; the API and the engine work as the application's role (db.runtime_url)
    owner_url, url = url, runtime_url(settings, url, embedded=watch_embedded)
    app = create_app(settings, database_url=url, prepare=False)
    server = _Server(uvicorn.Config(app, host=host or settings.host, port=port or settings.port,
                                    log_level=log_level, lifespan="on", proxy_headers=True,
                                    forwarded_allow_ips=settings.trusted_proxies))
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
                                  config=config or engine_config(settings), scenario=scenario,
                                  sim_operators=sim_operators, human_operators=human_operators,
                                  sim_wrap_up_s=sim_wrap_up_s)
            if on_engine is not None:
                on_engine(engine)
        # CRM writes and webhooks go out from here (an outage of a CRM never touches the engine), reads come in
        crm_maker = make_sessionmaker(db)
        delivery = DeliveryWorker(crm_maker)
        app.state.delivery_worker = delivery
        async with asyncio.TaskGroup() as tg:
            web = tg.create_task(server.serve(), name="web server")
            tg.create_task(delivery.run(stop), name="CRM and webhook delivery")
            tg.create_task(CrmReader(crm_maker, country=settings.default_country).run(stop), name="CRM reads")
            core = tg.create_task(engine.run(stop), name="engine") if engine is not None else None
            watcher = tg.create_task(watch_trunks(sip, maker, stop=stop), name="trunk watcher") if sip else None
            keeper = tg.create_task(keep_embedded_running(settings.data_dir), name="embedded database keeper") \
                if watch_embedded else None
            child = tg.create_task(supervise_engine(stop, database_url=owner_url, app_url=url),
                                   name="engine process") \
                if engine_process and engine is None else None
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
            if child is not None:
                await child  # it stops the engine process (drained) once ``stop`` is set
    finally:
        await close_media(sip)  # the engine closed the driver: its calls' deletes went out; rtpengine stops now
        await db.dispose()


#: How long a stopping engine process may drain before it is killed (its drain is bounded by ``drain_s``, 30 s).
ENGINE_STOP_S = 60.0


async def supervise_engine(stop: asyncio.Event, *, database_url: str | None = None, app_url: str | None = None,
                           restart_min_s: float = 2.0,
                           restart_max_s: float = 30.0) -> None:
    """Run ``dialer engine`` as a child process until ``stop`` is set, then stop it with SIGTERM (it drains) and wait.

    An engine process that ends by itself (a crash, a lost lease, another engine already running) is started again
    after a pause that doubles up to ``restart_max_s``; the next start recovers what it left in flight."""
    env = dict(os.environ)
    if database_url:
        env["DIALER_DATABASE_URL"] = database_url
    if app_url and app_url != database_url:
        env["DIALER_DATABASE_APP_URL"] = app_url
    pause = restart_min_s
    while not stop.is_set():
        proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "dialer.cli", "engine", env=env)
        log.info("engine process %s started", proc.pid)
        ended = asyncio.ensure_future(proc.wait())
        stopping = asyncio.ensure_future(stop.wait())
        started_at = asyncio.get_running_loop().time()
        await asyncio.wait({ended, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if stopping.done():
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(asyncio.shield(ended), ENGINE_STOP_S)
                except TimeoutError:
                    log.error("engine process %s did not stop within %.0f s: killed", proc.pid, ENGINE_STOP_S)
                    proc.kill()
            await ended
            return
        stopping.cancel()
        if asyncio.get_running_loop().time() - started_at > 5 * restart_max_s:
            pause = restart_min_s  # it had run for a while: this is a new failure, not a loop of them
        log.error("engine process %s ended (exit %s); starting it again in %.0f s", proc.pid, proc.returncode, pause)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), pause)
        pause = min(restart_max_s, pause * 2)
