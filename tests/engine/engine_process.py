"""A real engine process for the crash test: ``python -m tests.engine.engine_process DATABASE_URL``.

The real runner against the test database, on simulated telephony in real time with a fast traffic model (calls
last about a second), simulated operators, the NOTIFY command listener; SIGTERM drains it, SIGKILL kills it.
"""

from __future__ import annotations

import asyncio
import logging
import sys

from dialer.core.clock import SystemClock
from dialer.db import make_engine, make_sessionmaker
from dialer.engine.runner import Engine, EngineConfig, install_signal_handlers
from dialer.telephony.sim import SimTelephony
from dialer.telephony.traffic import Outcomes, Scenario, Uniform
from dialer.tools.simops import SimOperators

FAST = Scenario(name="fast", operators=6, hours=1, seed=7,
                outcomes=Outcomes(human=0.5, machine=0.1, busy=0.15, failed=0.0, rejected=0.05),
                answer_after_s=Uniform(0.2, 0.8), no_answer_timeout_s=2.0, machine_detect_s=0.2,
                talk_time_s=Uniform(0.5, 2.0), wrap_up_s=Uniform(0.2, 0.5), abandon_after_s=2.0,
                busy_after_s=Uniform(0.1, 0.4))


async def main(url: str, seed: int) -> None:
    db = make_engine(url, pool_size=4)
    clock = SystemClock()
    sim = SimTelephony(clock, FAST, seed=seed, ring_after_s=0.05, connect_after_s=0.05, machine_message_s=0.5,
                       patience_s=Uniform(2.0, 4.0))
    engine = Engine(make_sessionmaker(db), sim, clock=clock, database_url=url,
                    config=EngineConfig(tick_s=0.2, control_poll_s=0.2, heartbeat_s=0.5, dead_after_s=5.0,
                                        drain_s=5.0, seed=seed))
    SimOperators(engine, sim, wrap_up_s=Uniform(0.1, 0.3), seed=seed)
    stop = asyncio.Event()
    install_signal_handlers(stop)
    try:
        await engine.run(stop)
    finally:
        await db.dispose()


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 1))
