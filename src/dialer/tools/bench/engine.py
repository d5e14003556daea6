"""``dialer bench engine``: the real engine against the real database, on simulated telephony, as fast as it can.

A sample campaign (:mod:`dialer.tools.sample`) with ``contacts`` contacts and ``operators`` simulated operators
is created in the product database (its own names; deleted afterwards unless ``keep``), the engine runs it in
virtual time — the same code as in production, every stage, operator period and result written to PostgreSQL,
strategy rules applied — and time jumps ahead whenever the engine has caught up, so the speed measured is the
engine's and the database's, not the traffic's.

Reported: ``attempts`` (finished attempts, committed), ``attempts_per_s`` (per wall-clock second, the final write
included), ``p99_decision_ms`` (wall time from an operator becoming free to the calls placed for it: decision,
attempt rows committed, calls originated), ``peak_rss_mb``; and, to judge them: the simulated time covered, live
answers and abandon rate, setup time. Traffic: the built-in ``s100_p25`` model (25 % live answers, talk 150 s on
average) scaled to the operators; predictive dialling.
"""

from __future__ import annotations

import dataclasses
import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, text

from dialer.config import Settings
from dialer.core.clock import VirtualClock
from dialer.engine.runner import Engine, EngineConfig
from dialer.engine.virtual import advance
from dialer.models import Attempt
from dialer.models.enums import AttemptState, DialMode
from dialer.stats import percentile
from dialer.telephony.sim import SimTelephony
from dialer.telephony.traffic import Uniform, builtin_scenario
from dialer.tools.bench.common import bench_database, peak_rss_mb, run_tag
from dialer.tools.sample import create_sample, drop_sample
from dialer.tools.simops import SimOperators

__all__ = ["bench_engine"]


async def bench_engine(operators: int = 500, contacts: int = 1_000_000, *, seconds: float = 60.0,
                       max_attempts: int | None = None, database_url: str | None = None,
                       settings: Settings | None = None, seed: int = 1, keep: bool = False,
                       mode: DialMode = DialMode.predictive) -> dict[str, Any]:
    """Run the benchmark for about ``seconds`` of wall time (or until ``max_attempts``); returns the figures."""
    async with bench_database(pool_size=8, settings=settings, database_url=database_url) as db:
        maker = db.maker
        stamp = f" (bench {run_tag()})"
        sample = None
        try:
            started = time.perf_counter()
            sample = await create_sample(maker, name=f"Бенчмарк{stamp}", contacts=contacts, operators=operators,
                                         suffix=stamp, mode=mode, seed=seed)
            setup_s = time.perf_counter() - started

            clock = VirtualClock(epoch=datetime.now(UTC))
            traffic = dataclasses.replace(builtin_scenario("s100_p25"), operators=operators)
            sim = SimTelephony(clock, traffic, seed=seed)
            # The safety auto-stop is off: the simulated trunk fails 5 % of calls at random, and the first results
            # of the opening burst (one call per operator at once) are the fast ones — busy and failed — so "5 errors
            # in a row" happens at the start of a 500-operator campaign by the rule's letter and would end the
            # measurement.
            engine = Engine(maker, sim, clock=clock, database_url=None,
                            config=EngineConfig(drain_s=0, seed=seed, hopper_max=20_000, auto_stop_errors=0))
            SimOperators(engine, sim, operator_ids=sample.operator_ids, wrap_up_s=Uniform(10.0, 20.0), seed=seed)
            # only this campaign: others in the database are left alone
            async with engine.running():
                run_started = time.perf_counter()
                while time.perf_counter() - run_started < seconds:
                    await advance(clock, engine, 10.0)
                    if max_attempts is not None and engine.finished >= max_attempts:
                        break
                virtual_s = clock.now()
                await engine.journal.drained()
                wall_s = time.perf_counter() - run_started
                finished_in_memory = engine.finished
                decisions = list(engine.decision_ms)
                placed = engine.placed
            async with maker() as session:
                attempts = int(await session.scalar(select(func.count()).select_from(Attempt).where(
                    Attempt.campaign_id == sample.campaign_id, Attempt.state == AttemptState.done)) or 0)
                live, abandoned = (await session.execute(text(
                    "SELECT count(*) FILTER (WHERE answered_by = 'human'), "
                    "count(*) FILTER (WHERE answered_by = 'human' "
                    "AND (connected_at IS NULL OR connected_at > answered_at + interval '2 seconds')) "
                    "FROM attempts WHERE campaign_id = :c"), {"c": sample.campaign_id})).one()
            return {
                "operators": operators, "contacts": contacts, "mode": mode.value,
                "attempts": finished_in_memory, "attempts_per_s": round(finished_in_memory / wall_s, 1),
                "attempts_in_db": attempts,
                "p99_decision_ms": round(percentile(decisions, 0.99), 2),
                "median_decision_ms": round(sorted(decisions)[len(decisions) // 2], 2) if decisions else 0.0,
                "peak_rss_mb": peak_rss_mb(), "wall_s": round(wall_s, 2), "simulated_s": round(virtual_s, 1),
                "speedup": round(virtual_s / wall_s, 1), "placed": placed,
                "live_answers": int(live), "abandon_pct": round(100.0 * abandoned / live, 2) if live else 0.0,
                "journal_flushes": engine.journal.flushes, "setup_s": round(setup_s, 1),
            }
        finally:
            if sample is not None and not keep:
                await drop_sample(maker, sample)
