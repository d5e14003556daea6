"""``dialer bench realtime``: how fast an engine event reaches the browsers' live streams.

The demo's engine runs for real — API and engine in one process (:func:`dialer.tools.serve.serve`), simulated
telephony in real time with the demo's traffic, ``operators`` simulated operators working a sample campaign — while
live clients hold ``GET /live/events`` open over real HTTP from a process of their own (as browsers would):
``supervisors`` clients with ``monitoring.read`` (every event) and one operator-panel client per simulated operator
(its own events and the campaign counters), each logged in with a token of its own user. Every event carries the
engine's time of publication (``at``); a client notes the wall clock when the event's ``data:`` line arrives; only
events published after every client is connected count. The path measured is the product's: the engine's
write-behind journal commits the change and NOTIFYs in the same transaction, the web process's one LISTEN
connection (:class:`dialer.web.live.LiveHub`) fans it out, uvicorn writes it to each socket.

Reported: ``events`` (distinct engine events seen by the supervisors' streams), ``deliveries`` (event arrivals at
all clients), ``p50_ms`` / ``p99_ms`` / ``max_ms`` of the delay over all deliveries, ``clients``, ``operators``,
``seconds``, ``resyncs`` (clients told they fell behind; should be 0). The sample's data and users are deleted
afterwards.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import json
import math
import multiprocessing
import random
import time
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import delete, insert, select, update

from dialer.auth.service import digest, hash_password, new_api_token
from dialer.config import Settings
from dialer.core.clock import SystemClock
from dialer.engine.runner import EngineConfig
from dialer.models import ApiToken, Operator, Role, User, user_roles
from dialer.models.enums import DialMode
from dialer.stats import percentile
from dialer.telephony.sim import SimTelephony
from dialer.telephony.traffic import Uniform
from dialer.tools.bench.common import bench_database, free_port, run_tag
from dialer.tools.demo import DEMO_SCENARIO
from dialer.tools.sample import Sample, create_sample, drop_sample
from dialer.tools.serve import serve

__all__ = ["bench_realtime"]

#: Events that are the stream's own bookkeeping, not engine events.
_OWN = frozenset({"Hello", "Resync", "ListenerReconnected"})


@dataclasses.dataclass
class _Tally:
    delays_ms: list[float] = dataclasses.field(default_factory=list)
    seen: set[tuple[str, str, str]] = dataclasses.field(default_factory=set)
    resyncs: int = 0
    connected: int = 0
    #: Clients that must have said Hello before the measurement starts.
    target: int = 1
    #: Wall-clock start of the measurement: events published before it (the start-up burst) are not counted.
    since: float = math.inf


async def _users(maker: Any, sample: Sample, supervisors: int, tag: str) -> tuple[list[int], list[str], list[str]]:
    """A supervisor user per monitoring client and a user for each simulated operator, each with an API token."""
    pw = hash_password(f"bench-{tag}-{random.random()}")  # one hash for all: nobody logs in with it
    user_ids: list[int] = []
    sup_tokens: list[str] = []
    op_tokens: list[str] = []
    async with maker() as session, session.begin():
        roles = dict((await session.execute(select(Role.code, Role.id))).all())

        async def user(login: str, role: str) -> tuple[int, str]:
            uid = int((await session.execute(insert(User).values(login=login, full_name=login, password_hash=pw)
                                             .returning(User.id))).scalar_one())
            await session.execute(insert(user_roles).values(user_id=uid, role_id=roles[role]))
            token = new_api_token()
            session.add(ApiToken(user_id=uid, name="bench", token_hash=digest(token), prefix=token[:10]))
            user_ids.append(uid)
            return uid, token

        for i in range(supervisors):
            sup_tokens.append((await user(f"bench-{tag}-sup{i}", "supervisor"))[1])
        for op_id in sample.operator_ids:
            uid, token = await user(f"bench-{tag}-op{op_id}", "operator")
            await session.execute(update(Operator).where(Operator.id == op_id).values(user_id=uid))
            op_tokens.append(token)
    return user_ids, sup_tokens, op_tokens


async def _client(base: str, token: str, tally: _Tally, *, supervisor: bool, ready: asyncio.Event) -> None:
    headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
    async with httpx.AsyncClient(base_url=base, timeout=httpx.Timeout(10.0, read=None)) as http, \
            http.stream("GET", "/live/events", headers=headers) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            received = time.time()
            if not line.startswith("data:"):
                continue
            event = json.loads(line[5:])
            kind = event.get("type")
            if kind == "Hello":
                tally.connected += 1
                if tally.connected >= tally.target:
                    ready.set()
                continue
            if kind == "Resync":
                tally.resyncs += 1
            if kind in _OWN or not event.get("at"):
                continue
            at = datetime.fromisoformat(event["at"]).timestamp()
            if at < tally.since:
                continue
            tally.delays_ms.append((received - at) * 1000.0)
            if supervisor:
                tally.seen.add((kind, event["at"], str(event.get("attempt_id") or event.get("operator_id"))))


async def _clients(base: str, sup_tokens: list[str], op_tokens: list[str], seconds: float) -> dict[str, Any]:
    """All live clients, in a process of their own (as browsers are): connect, measure ``seconds``, tally."""
    tally = _Tally(target=len(sup_tokens) + len(op_tokens))
    ready = asyncio.Event()
    tasks = [asyncio.create_task(_client(base, t, tally, supervisor=True, ready=ready)) for t in sup_tokens]
    tasks += [asyncio.create_task(_client(base, t, tally, supervisor=False, ready=ready)) for t in op_tokens]
    try:
        waiting = asyncio.create_task(ready.wait())
        await asyncio.wait([waiting, *tasks], timeout=60, return_when=asyncio.FIRST_COMPLETED)
        if not ready.is_set():
            failed = [t for t in tasks if t.done() and t.exception() is not None]
            raise RuntimeError(f"live clients did not connect: {failed[0].exception() if failed else 'timeout'}")
        tally.since = time.time()
        started = time.perf_counter()
        await asyncio.sleep(seconds)
        elapsed = time.perf_counter() - started
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return {"delays_ms": tally.delays_ms, "events": len(tally.seen), "resyncs": tally.resyncs,
            "clients": len(tasks), "seconds": elapsed}


def _clients_process(base: str, sup_tokens: list[str], op_tokens: list[str], seconds: float) -> dict[str, Any]:
    return asyncio.run(_clients(base, sup_tokens, op_tokens, seconds))


async def bench_realtime(operators: int = 100, *, seconds: float = 30.0, supervisors: int = 10,
                         contacts: int | None = None, database_url: str | None = None,
                         settings: Settings | None = None, seed: int = 1) -> dict[str, Any]:
    """Run the demo engine with ``operators`` simulated operators and live clients for ``seconds``."""
    async with bench_database(pool_size=4, settings=settings, database_url=database_url) as db:
        maker = db.maker
        tag = run_tag()
        sample: Sample | None = None
        user_ids: list[int] = []
        try:
            sample = await create_sample(maker, name=f"Бенчмарк realtime ({tag})",
                                         contacts=contacts or operators * 200, operators=operators,
                                         suffix=f" (bench {tag})", mode=DialMode.predictive, wrap_up_s=60, seed=seed)
            user_ids, sup_tokens, op_tokens = await _users(maker, sample, supervisors, tag)
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            clock = SystemClock()
            sim = SimTelephony(clock, dataclasses.replace(DEMO_SCENARIO, operators=operators), seed=seed)
            stop_server = asyncio.Event()
            server = asyncio.create_task(serve(
                db.settings, host="127.0.0.1", port=port, database_url=db.url, telephony=sim, clock=clock,
                config=EngineConfig(seed=seed), sim_operators=sample.operator_ids, sim_wrap_up_s=Uniform(8.0, 20.0),
                prepare=False, stop=stop_server, log_level="warning"))
            async with httpx.AsyncClient(base_url=base) as probe:
                for _ in range(200):
                    with contextlib.suppress(httpx.HTTPError):
                        if (await probe.get("/api/health")).status_code == 200:
                            break
                    if server.done():
                        await server  # raises what stopped it
                    await asyncio.sleep(0.05)
            ctx = multiprocessing.get_context("spawn")
            with concurrent.futures.ProcessPoolExecutor(1, mp_context=ctx) as pool:
                measured = await asyncio.wrap_future(pool.submit(_clients_process, base, sup_tokens, op_tokens,
                                                                 seconds))
            stop_server.set()
            await server
            ordered = sorted(measured["delays_ms"])
            return {"events": measured["events"], "deliveries": len(ordered),
                    "p50_ms": round(percentile(ordered, 0.50), 2), "p99_ms": round(percentile(ordered, 0.99), 2),
                    "max_ms": round(ordered[-1], 2) if ordered else 0.0, "clients": measured["clients"],
                    "operators": operators, "seconds": round(measured["seconds"], 1), "resyncs": measured["resyncs"],
                    "measured_at": datetime.now(UTC).isoformat(timespec="seconds")}
        finally:
            if sample is not None:
                await drop_sample(maker, sample)
            if user_ids:
                async with maker() as session, session.begin():
                    await session.execute(delete(User).where(User.id.in_(user_ids)))
