"""``dialer engine``: the engine on its own, in a process of its own (no web framework here).

:func:`run_engine` opens the database (embedded unless configured; migrated), builds the telephony driver and runs
an :class:`~dialer.engine.runner.Engine` until SIGTERM or SIGINT, then drains gracefully. ``dialer run`` runs the
same engine beside the API (:mod:`dialer.tools.serve`).

Telephony: the SIP driver when trunks are configured (``DIALER_TELEPHONY``, see :mod:`dialer.voip.runtime`), with
trunk changes made through the API applied while it runs; otherwise simulated telephony (:func:`simulated`), with
simulated operators when asked for.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dialer.config import Settings, get_settings
from dialer.core.clock import Clock, SystemClock
from dialer.db import keep_embedded_running, make_engine, make_sessionmaker, resolve_url, runtime_url
from dialer.engine.runner import Engine, EngineConfig, install_signal_handlers
from dialer.telephony.base import Telephony
from dialer.telephony.sim import SimTelephony
from dialer.telephony.traffic import Distribution, Scenario, builtin_scenario
from dialer.tools.simops import SimOperators
from dialer.voip.runtime import close_media, configured_telephony, watch_trunks

__all__ = ["build_engine", "run_engine", "simulated"]

log = logging.getLogger(__name__)


def simulated(clock: Clock, scenario: Scenario | None = None, *, seed: int | None = None) -> SimTelephony:
    """Simulated telephony (when no trunk is configured): the built-in 25 %-live traffic."""
    return SimTelephony(clock, scenario or builtin_scenario("s20_p25"), seed=seed)


def engine_config(settings: Settings, **overrides: Any) -> EngineConfig:
    """The engine's configuration from the settings (``DIALER_INBOUND_*``), the rest its defaults."""
    return EngineConfig(**{
        "inbound_queue_s": settings.inbound_queue_s, "inbound_message": settings.inbound_message,
        "inbound_message_s": settings.inbound_message_s, "inbound_callback_after_s": settings.inbound_callback_after_s,
        **overrides})


def build_engine(maker: async_sessionmaker[AsyncSession], *, database_url: str | None,
                 telephony: Telephony | None = None, clock: Clock | None = None, config: EngineConfig | None = None,
                 scenario: Scenario | None = None, sim_operators: bool | Collection[int] = False,
                 human_operators: Collection[int] = (), sim_wrap_up_s: Distribution | None = None) -> Engine:
    """An engine with its driver; ``sim_operators`` True (all) or ids adds simulated operators on the simulator."""
    clock = clock or SystemClock()
    if telephony is None:
        log.warning("no telephony driver configured: the engine runs on simulated telephony")
        telephony = simulated(clock, scenario)
    engine = Engine(maker, telephony, clock=clock, config=config, database_url=database_url)
    if isinstance(telephony, SimTelephony):
        # on the simulator every operator needs a simulated phone; some are simulated people too
        ids: set[int] | None = set()
        if sim_operators:
            ids = None if isinstance(sim_operators, bool) else set(sim_operators)
        SimOperators(engine, telephony, operator_ids=ids, exclude=human_operators, seed=1, wrap_up_s=sim_wrap_up_s)
    return engine


async def run_engine(settings: Settings | None = None, *, database_url: str | None = None,
                     telephony: Telephony | None = None, clock: Clock | None = None,
                     config: EngineConfig | None = None, scenario: Scenario | None = None,
                     sim_operators: bool | Collection[int] = False, stop: asyncio.Event | None = None,
                     prepare: bool = True) -> None:
    """Run the engine alone until a signal (or ``stop``); what ``dialer engine`` calls."""
    from dialer.migrate import prepare_database  # the start-up maintenance; imports no route

    settings = settings or get_settings()
    url = database_url if database_url else await asyncio.to_thread(resolve_url, settings)
    if prepare:
        await prepare_database(url, settings)
    url = runtime_url(settings, url, embedded=not database_url and not settings.database_url)
    db = make_engine(url)
    sip = None
    try:
        maker = make_sessionmaker(db)
        clock = clock or SystemClock()
        sip = await configured_telephony(settings, maker, clock) if telephony is None else None
        engine = build_engine(maker, database_url=url, telephony=sip or telephony, clock=clock,
                              config=config or engine_config(settings), scenario=scenario, sim_operators=sim_operators)
        stop = stop or asyncio.Event()
        install_signal_handlers(stop)
        async with asyncio.TaskGroup() as tg:
            if sip is not None:
                watcher = tg.create_task(watch_trunks(sip, maker, stop=stop), name="trunk watcher")
            keeper = tg.create_task(keep_embedded_running(settings.data_dir), name="embedded database keeper") \
                if not database_url and not settings.database_url else None
            await engine.run(stop)
            stop.set()
            if sip is not None:
                watcher.cancel()
            if keeper is not None:
                keeper.cancel()
    finally:
        await close_media(sip)  # the engine closed the driver: its calls' deletes went out; rtpengine stops now
        await db.dispose()
