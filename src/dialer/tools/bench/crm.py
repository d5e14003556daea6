"""``dialer bench crm``: results delivered end to end to a CRM, and what the integration costs the engine.

One process, one sample campaign (:mod:`dialer.tools.sample`), the real engine in virtual time on simulated
telephony (as ``dialer bench engine``):

1. **Engine without and with the integration, side by side.** The engine runs the campaign for ``phase_s`` seconds
   of wall time with no connector and no subscription, then with a LeadVertex connector holding a CRM record for
   every contact and a webhook subscription to every event — so every journal unit and every result also inserts
   its outbox rows — and again with, and again without (after an uncounted warm-up; in ABBA order, so a warming
   cache or a growing table does not favour one side; ``phases`` of each); ``engine_attempts_per_s_without`` / ``_with``
   are the medians of the attempts finished per wall second of each side's phases, ``engine_overhead_pct`` the
   drop. The phases are noisy on a shared machine (each one is listed); ``engine_cpu_ms_per_attempt_*`` — this
   process's CPU per attempt, database server excluded — is steadier.
2. **Delivery.** The CRM writes the "with" phases committed (``results``) are delivered by the real worker to a
   LeadVertex emulator on loopback that answers after ``latency_ms`` and injects faults (5xx, 429 with
   Retry-After, connection resets after the write was applied, timeouts); LeadVertex has no idempotency key, so
   every write is a read then an update (two round trips). ``delivered`` counts the outbox items confirmed,
   ``lost`` results whose write never reached the CRM, ``duplicated`` writes applied more than once,
   ``results_per_s`` results confirmed per wall second of delivery (``results_per_cpu_s`` per second of this
   process's CPU — the emulator runs in it too — which says more on a busy machine: see ``load_average``). The
   webhook items are not delivered here (no receiver): they count in ``webhook_items``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import statistics
import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, text

from dialer.config import Settings
from dialer.core.clock import SystemClock, VirtualClock
from dialer.crm.emulator import Faults, LeadVertexEmulator
from dialer.crm.outbox import CONFIG_TTL_S, WEBHOOK_EVENTS
from dialer.crm.worker import DeliveryWorker
from dialer.engine.runner import Engine, EngineConfig
from dialer.engine.virtual import advance
from dialer.models import CrmConnector, OutboxItem, WebhookSubscription
from dialer.models.enums import DialMode
from dialer.telephony.sim import SimTelephony
from dialer.telephony.traffic import Uniform, builtin_scenario
from dialer.tools.bench.common import bench_database, peak_rss_mb, run_tag
from dialer.tools.sample import create_sample, drop_sample
from dialer.tools.simops import SimOperators

__all__ = ["bench_crm"]


async def _engine_phase(maker: Any, operator_ids: list[int], operators: int, seconds: float,
                        seed: int) -> tuple[float, float]:
    """Attempts finished per wall second while the engine runs the sample for ``seconds``, and this process's CPU
    milliseconds per attempt (less sensitive to a busy machine than the wall clock)."""
    clock = VirtualClock(epoch=datetime.now(UTC))
    traffic = dataclasses.replace(builtin_scenario("s100_p25"), operators=operators)
    sim = SimTelephony(clock, traffic, seed=seed)
    engine = Engine(maker, sim, clock=clock, database_url=None,
                    config=EngineConfig(drain_s=0, seed=seed, hopper_max=20_000, auto_stop_errors=0))
    SimOperators(engine, sim, operator_ids=operator_ids, wrap_up_s=Uniform(10.0, 20.0), seed=seed)
    async with engine.running():
        started = time.perf_counter()
        cpu = time.process_time()
        while time.perf_counter() - started < seconds:
            await advance(clock, engine, 10.0)
        await engine.journal.drained()
        wall = time.perf_counter() - started
        cpu = time.process_time() - cpu
        return engine.finished / wall, 1000.0 * cpu / max(engine.finished, 1)


async def bench_crm(operators: int = 100, contacts: int = 20_000, *, phase_s: float = 6.0, phases: int = 4,
                    latency_ms: float = 50.0,
                    concurrency: int = 64, database_url: str | None = None, settings: Settings | None = None,
                    seed: int = 1) -> dict[str, Any]:
    async with bench_database(pool_size=8, settings=settings, database_url=database_url) as db:
        maker = db.maker
        stamp = f" (bench {run_tag()})"
        sample = None
        lv = LeadVertexEmulator(faults=Faults(latency_s=latency_ms / 1000, error_rate=0.03, throttle_rate=0.02,
                                              retry_after_s=1.0, reset_after_commit_rate=0.03, timeout_rate=0.002,
                                              timeout_s=5.0, seed=seed))
        await lv.server.start()
        connector_id = subscription_id = None
        try:
            sample = await create_sample(maker, name=f"Бенчмарк CRM{stamp}", contacts=contacts, operators=operators,
                                         suffix=stamp, mode=DialMode.predictive, seed=seed)
            async with maker() as session, session.begin():
                connector = CrmConnector(name=f"LeadVertex{stamp}", kind="leadvertex", token=lv.token,
                                         settings={"base_url": lv.base_url}, status_map={}, cursor={},
                                         result_map={"category:answered": "3", "exhausted": "4"}, last_error="",
                                         read_enabled=False, write_enabled=False, poll_interval_s=60, max_tries=50,
                                         is_active=True)
                hook = WebhookSubscription(name=f"Webhook{stamp}", url="http://127.0.0.1:9/none", client_id="bench",
                                           secret="bench", events=list(WEBHOOK_EVENTS), max_tries=1, is_active=False)
                session.add_all([connector, hook])
                await session.flush()
                connector_id, subscription_id = connector.id, hook.id
                await session.execute(text(
                    "INSERT INTO crm_records (connector_id, external_id, contact_id, crm_status, phone, crm_updated,"
                    " seen_at) SELECT :c, id::text, id, '1', '', '', now() FROM contacts WHERE list_id = :l"),
                    {"c": connector_id, "l": sample.list_id})
                ids = list((await session.scalars(text("SELECT id FROM contacts WHERE list_id = :l"),
                                                  {"l": sample.list_id})).all())
            for contact_id in ids:
                lv.add_order(contact_id, phone="+79000000000")

            async def switch(on: bool) -> None:
                async with maker() as session, session.begin():
                    await session.execute(text("UPDATE crm_connectors SET write_enabled = :on WHERE id = :c"),
                                          {"on": on, "c": connector_id})
                    await session.execute(text("UPDATE webhook_subscriptions SET is_active = :on WHERE id = :s"),
                                          {"on": on, "s": subscription_id})

            without: list[float] = []
            with_: list[float] = []
            cpu_without: list[float] = []
            cpu_with: list[float] = []
            # a warm-up phase first (the hopper fills, the first burst of calls): not counted
            await _engine_phase(maker, sample.operator_ids, operators, phase_s / 2, seed + 100)
            for phase in range(phases * 2):
                on = phase % 4 in (1, 2)  # without, with, with, without, …: a steady drift cancels out (ABBA)
                await switch(on)
                await asyncio.sleep(CONFIG_TTL_S)  # the journal sees the switch (outbox.switched_on)
                rate, cpu_ms = await _engine_phase(maker, sample.operator_ids, operators, phase_s, seed + phase)
                (with_ if on else without).append(rate)
                (cpu_with if on else cpu_without).append(cpu_ms)
            await switch(False)

            async with maker() as session:
                results = int(await session.scalar(select(func.count()).select_from(OutboxItem).where(
                    OutboxItem.connector_id == connector_id)) or 0)
                webhook_items = int(await session.scalar(select(func.count()).select_from(OutboxItem).where(
                    OutboxItem.subscription_id == subscription_id)) or 0)
                await session.execute(text("DELETE FROM integration_outbox WHERE subscription_id = :s"),
                                      {"s": subscription_id})
                await session.commit()
            async with maker() as session, session.begin():
                await session.execute(text("UPDATE crm_connectors SET write_enabled = true WHERE id = :c"),
                                      {"c": connector_id})
            worker = DeliveryWorker(maker, clock=SystemClock(), concurrency=concurrency, batch=500, timeout_s=2.0,
                                    base_backoff_s=0.2, max_backoff_s=2.0, lease_s=60.0)
            started = time.perf_counter()
            cpu_started = time.process_time()
            try:
                while True:
                    if not await worker.deliver_due():
                        async with maker() as session:
                            left = int(await session.scalar(select(func.count()).select_from(OutboxItem).where(
                                OutboxItem.connector_id == connector_id, OutboxItem.status == "pending")) or 0)
                        if not left:
                            break
                        await SystemClock().sleep(0.1)
                deliver_s = time.perf_counter() - started
                deliver_cpu_s = time.process_time() - cpu_started
            finally:
                await worker.aclose()
            async with maker() as session:
                delivered = int(await session.scalar(select(func.count()).select_from(OutboxItem).where(
                    OutboxItem.connector_id == connector_id, OutboxItem.status == "delivered")) or 0)
                dead = int(await session.scalar(select(func.count()).select_from(OutboxItem).where(
                    OutboxItem.connector_id == connector_id, OutboxItem.status == "dead")) or 0)
            markers = lv.markers()
            w_without = statistics.median(without)
            w_with = statistics.median(with_)
            return {
                "results": results, "delivered": delivered, "dead": dead,
                "lost": results - len(markers), "duplicated": sum(n - 1 for n in markers.values() if n > 1),
                "results_per_s": round(delivered / deliver_s, 1) if deliver_s else 0.0,
                "delivery_s": round(deliver_s, 2), "delivery_cpu_s": round(deliver_cpu_s, 2),
                "results_per_cpu_s": round(delivered / deliver_cpu_s, 1) if deliver_cpu_s else 0.0,
                "load_average": round(os.getloadavg()[0], 2), "cpus": os.cpu_count(),
                "latency_ms": latency_ms, "concurrency": concurrency,
                "crm_requests": lv.server.requests, "faults": dict(lv.server.faults.counts),
                "webhook_items": webhook_items,
                "engine_attempts_per_s_without": round(w_without, 1), "engine_attempts_per_s_with": round(w_with, 1),
                "engine_overhead_pct": round(100.0 * (w_without - w_with) / w_without, 1) if w_without else 0.0,
                "engine_cpu_ms_per_attempt_without": round(statistics.median(cpu_without), 2),
                "engine_cpu_ms_per_attempt_with": round(statistics.median(cpu_with), 2),
                "engine_phases_without": [round(x, 1) for x in without],
                "engine_phases_with": [round(x, 1) for x in with_],
                "operators": operators, "contacts": contacts, "phase_s": phase_s, "peak_rss_mb": peak_rss_mb(),
            }
        finally:
            await lv.server.stop()
            async with maker() as session, session.begin():
                if connector_id is not None:
                    await session.execute(text("DELETE FROM crm_connectors WHERE id = :c"), {"c": connector_id})
                if subscription_id is not None:
                    await session.execute(text("DELETE FROM webhook_subscriptions WHERE id = :s"),
                                          {"s": subscription_id})
            if sample is not None:
                await drop_sample(maker, sample)
