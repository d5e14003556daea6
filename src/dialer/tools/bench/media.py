"""``dialer bench media``: the media plane under load — recorded calls relayed by rtpengine beside direct media, and
what that costs the dialing engine on the same machine.

One run, one rtpengine started as the product starts it (:class:`~dialer.media.rtpengine.RtpEngineProcess`,
userspace, pcap recording into a temporary directory):

1. **direct media**: ``calls`` calls' RTP flows directly between two endpoints (50 packets/s each way per call,
   G.711 sized) for ``seconds`` while the engine runs the sample campaign in virtual time on simulated telephony (as
   ``dialer bench engine``): the generator's own cost and loss (``packet_loss_direct_pct``,
   ``engine_attempts_per_s_direct``);
2. **set-up**: ``calls`` calls set up through rtpengine exactly as the SIP driver's anchor does it (``offer``,
   ``start recording``, ``answer`` with :class:`~dialer.media.rtpengine.RtpEngineAnchor`, four at a time;
   ``setup_ms_p50``/``_p95``);
3. **engine alone and with the relayed load, ABBA**: ``2 × phases`` phases of ``seconds`` — without, with, with,
   without, … — the "with" ones sending the same RTP through rtpengine for every call (relayed and recorded) while
   the engine runs; ``engine_attempts_per_s_without``/``_relayed`` are the medians of each side, ``engine_drop_pct``
   the drop (``engine_cpu_ms_per_attempt_*``, this process's CPU per attempt, is steadier on a shared machine);
4. every call is deleted and its capture spooled (``recorded``: spooled pcaps with their sidecars).

The RTP generator is one separate process (the carrier and the phones are not the dialer's process): two UDP sockets
— the customers' side and the dialer's side of all calls — sending every stream's packet of a 20 ms tick in one
burst, counting arrivals per direction. ``packet_loss_pct``: relayed phases, both directions (a packet still in
flight at a phase's end counts as lost). ``cpu_s_per_call``: rtpengine's CPU seconds (user + system, psutil) per call
per ``seconds`` of relayed audio; ``cpu_s_per_call_minute`` per minute; ``rtpengine_cpu_pct`` of one core. The
generator's cost (``generator_cpu_pct``) is on this machine too, where a real carrier's and phones' would not be:
``engine_drop_direct_pct`` shows what it alone takes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import select
import socket
import statistics
import struct
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from dialer.core.clock import SystemClock, VirtualClock
from dialer.engine.runner import Engine, EngineConfig
from dialer.engine.virtual import advance
from dialer.media.rtpengine import RtpEngineAnchor, RtpEngineProcess
from dialer.media.settings import get_media_settings
from dialer.models.enums import DialMode
from dialer.telephony.sim import SimTelephony
from dialer.telephony.sip.anchor import CUSTOMER_TAG, DIALER_TAG
from dialer.telephony.sip.sdp import audio_media
from dialer.telephony.traffic import Uniform, builtin_scenario
from dialer.tools.bench.common import bench_database, free_port, peak_rss_mb, run_tag
from dialer.tools.sample import create_sample, drop_sample
from dialer.tools.simops import SimOperators

__all__ = ["bench_media"]

PACKETS_PER_S = 50
PAYLOAD = 160  # G.711, 20 ms
_SO_RCVBUFFORCE = 33  # Linux; not in the socket module's stubs


# --- the RTP generator (runs in its own process) -----------------------------------------------------------------


def _generator(plan: dict[str, Any]) -> dict[str, Any]:
    """Send ``PACKETS_PER_S`` packets a second for every stream of ``plan`` for ``plan['seconds']`` and count what
    arrives. ``plan``: the two local ports, and per call where each side sends."""
    sides = {}
    for name in ("dialer", "customer"):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:  # past net.core.rmem_max when allowed (root): a tick's burst of every stream must fit
            sock.setsockopt(socket.SOL_SOCKET, _SO_RCVBUFFORCE, 8 << 20)
        except OSError:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8 << 20)
        sock.bind(("127.0.0.1", plan[f"{name}_port"]))
        sock.setblocking(False)
        sides[name] = sock
    targets = {"dialer": [tuple(t) for t in plan["dialer_to"]], "customer": [tuple(t) for t in plan["customer_to"]]}
    received = {"dialer": 0, "customer": 0}
    sent = {"dialer": 0, "customer": 0}
    buffer = bytearray(2048)
    payload = bytes(PAYLOAD)
    cpu = time.process_time()
    start = time.monotonic() + 0.2
    ticks = int(plan["seconds"] * PACKETS_PER_S)
    by_fd = {sock.fileno(): name for name, sock in sides.items()}
    late = 0.0

    def drain() -> None:
        for name, sock in sides.items():
            while True:
                try:
                    sock.recv_into(buffer)
                except BlockingIOError:
                    break
                received[name] += 1

    for tick in range(ticks):
        due = start + tick / PACKETS_PER_S
        while True:
            wait = due - time.monotonic()
            if wait <= 0:
                late = max(late, -wait)
                break
            ready, _, _ = select.select(list(sides.values()), [], [], wait)
            for sock in ready:
                name = by_fd[sock.fileno()]
                while True:
                    try:
                        sock.recv_into(buffer)
                    except BlockingIOError:
                        break
                    received[name] += 1
        for name, sock in sides.items():
            for index, target in enumerate(targets[name]):
                if index % 64 == 63:
                    drain()
                header = struct.pack("!BBHII", 0x80, 8, tick & 0xFFFF, (tick * PAYLOAD) & 0xFFFFFFFF, index + 1)
                try:
                    sock.sendto(header + payload, target)
                    sent[name] += 1
                except BlockingIOError:
                    pass  # counted as lost: the generator could not keep up
    drain_until = time.monotonic() + 0.5
    while (wait := drain_until - time.monotonic()) > 0:
        ready, _, _ = select.select(list(sides.values()), [], [], wait)
        for sock in ready:
            name = by_fd[sock.fileno()]
            while True:
                try:
                    sock.recv_into(buffer)
                except BlockingIOError:
                    break
                received[name] += 1
    for sock in sides.values():
        sock.close()
    expected = ticks * len(targets["dialer"])
    return {"expected_each_way": expected, "sent": sent, "received": received,
            "cpu_s": time.process_time() - cpu, "max_late_ms": round(late * 1000, 1)}


def generator_main() -> None:
    """The generator process: its plan as JSON on stdin, its counts as JSON on stdout."""
    print(json.dumps(_generator(json.loads(sys.stdin.read()))))


async def _run_generator(plan: dict[str, Any]) -> dict[str, Any]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "from dialer.tools.bench.media import generator_main; generator_main()",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await process.communicate(json.dumps(plan).encode())
    if process.returncode != 0:
        raise RuntimeError(f"the RTP generator failed: {err.decode(errors='replace')[-2000:]}")
    result: dict[str, Any] = json.loads(out)
    return result


def _loss_pct(result: dict[str, Any]) -> float:
    expected = 2 * result["expected_each_way"]
    got = result["received"]["dialer"] + result["received"]["customer"]
    return round(100.0 * max(0, expected - got) / expected, 4) if expected else 0.0


# --- the engine's phases -----------------------------------------------------------------------------------------


async def _engine_phase(maker: Any, operator_ids: list[int], operators: int, seconds: float,
                        seed: int) -> tuple[float, float]:
    """Attempts the engine finishes per wall second on the sample for ``seconds`` (virtual time, simulated
    telephony; as ``dialer bench engine`` and ``dialer bench crm``), and this process's CPU milliseconds per attempt
    (steadier than the wall clock on a busy machine)."""
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
        cpu_ms = 1000.0 * (time.process_time() - cpu) / max(engine.finished, 1)
        return engine.finished / (time.perf_counter() - started), cpu_ms


async def _with_engine(load: Any, maker: Any, operator_ids: list[int], operators: int, seconds: float,
                       seed: int) -> tuple[Any, tuple[float, float]]:
    """``load`` (a coroutine) and an engine phase at the same time; the engine starts after 1 s of load and stops
    1 s before its end."""
    task = asyncio.create_task(load)
    await asyncio.sleep(1.0)
    rate = await _engine_phase(maker, operator_ids, operators, _phase_s(seconds), seed)
    return await task, rate


def _phase_s(seconds: float) -> float:
    """Every engine phase lasts as long (its start-up weighs the same in each)."""
    return max(1.0, seconds - 2.0)


# --- the benchmark -----------------------------------------------------------------------------------------------


def _sdp(port: int) -> bytes:
    return (f"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            f"m=audio {port} RTP/AVP 8 0\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n").encode()


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


async def bench_media(calls: int = 200, *, seconds: float = 30.0, phases: int = 2, operators: int = 100,
                      contacts: int = 40_000, database_url: str | None = None, seed: int = 1) -> dict[str, Any]:
    if calls < 1 or seconds < 3 or phases < 1:
        raise ValueError("--calls and phases must be at least 1, --seconds at least 3")
    with tempfile.TemporaryDirectory(prefix="dialer-bench-media-") as folder:
        recordings = Path(folder) / "recordings"
        # below Linux's ephemeral range (32768+): the generator's sockets (free_port) never land in rtpengine's range
        low = 23000 + (os.getpid() % 16) * 500
        engine_process = RtpEngineProcess(interface="127.0.0.1", ng_port=free_port(udp=True), port_min=low,
                                          port_max=low + max(499, 4 * calls + 20),
                                          recording_dir=recordings / "rtpengine", log_level=4,
                                          threads=get_media_settings().threads)
        anchor = RtpEngineAnchor(engine_process, recordings, clock=SystemClock())
        async with bench_database(pool_size=8, database_url=database_url) as db:
            maker = db.maker
            stamp = f" (bench {run_tag()})"
            sample = await create_sample(maker, name=f"Бенчмарк медиа{stamp}", contacts=contacts,
                                         operators=operators, suffix=stamp, mode=DialMode.predictive, seed=seed)
            await anchor.start()
            try:
                ids = sample.operator_ids
                await _engine_phase(maker, ids, operators, 2.0, seed + 100)  # warm-up, not counted

                # direct media: each side sends straight to the other's socket (the generator's own cost and loss)
                dialer_port, customer_port = free_port(udp=True), free_port(udp=True)
                direct_plan = {"seconds": seconds, "dialer_port": dialer_port, "customer_port": customer_port,
                               "dialer_to": [("127.0.0.1", customer_port)] * calls,
                               "customer_to": [("127.0.0.1", dialer_port)] * calls}
                direct, (during_direct, engine_cpu_direct) = await _with_engine(
                    _run_generator(direct_plan), maker, ids, operators, seconds, seed + 1)

                # relayed and recorded, set up as the SIP driver's anchor does it
                dialer_port, customer_port = free_port(udp=True), free_port(udp=True)
                setup_ms: list[float] = []
                dialer_to: list[tuple[str, int]] = []
                customer_to: list[tuple[str, int]] = []
                limit = asyncio.Semaphore(4)  # a few set-ups at a time, as calls are answered

                async def place(index: int) -> None:
                    call_id = f"bench-{index}"
                    async with limit:
                        started = time.perf_counter()
                        to_customer = await anchor.offer(call_id, _sdp(dialer_port), from_tag=DIALER_TAG,
                                                         to_tag=None)
                        await anchor.start_recording(call_id)
                        to_dialer = await anchor.answer(call_id, _sdp(customer_port), from_tag=DIALER_TAG,
                                                        to_tag=CUSTOMER_TAG)
                        setup_ms.append(1000.0 * (time.perf_counter() - started))
                    c, d = audio_media(to_customer), audio_media(to_dialer)
                    assert c is not None and d is not None
                    customer_to.append((c.host, c.port))
                    dialer_to.append((d.host, d.port))

                await asyncio.gather(*(place(i) for i in range(calls)))
                relayed_plan = {"seconds": seconds, "dialer_port": dialer_port, "customer_port": customer_port,
                                "dialer_to": dialer_to, "customer_to": customer_to}
                rtpengine = psutil.Process(engine_process.pid)
                # the engine alone and with the relayed load in ABBA order (without, with, with, without, …), so
                # a machine whose other load drifts does not favour one side; medians of each side
                without: list[float] = []
                with_relay: list[float] = []
                cpu_without: list[float] = []
                cpu_with: list[float] = []
                relayed_runs: list[dict[str, Any]] = []
                cpu_s = wall = 0.0
                for phase in range(2 * phases):
                    if phase % 4 in (1, 2):
                        cpu_before = rtpengine.cpu_times()
                        wall_before = time.perf_counter()
                        relayed, (rate, engine_cpu) = await _with_engine(
                            _run_generator(relayed_plan), maker, ids, operators, seconds, seed + 2 + phase)
                        cpu_after = rtpengine.cpu_times()
                        wall += time.perf_counter() - wall_before
                        cpu_s += (cpu_after.user - cpu_before.user) + (cpu_after.system - cpu_before.system)
                        relayed_runs.append(relayed)
                        with_relay.append(rate)
                        cpu_with.append(engine_cpu)
                    else:
                        rate, engine_cpu = await _engine_phase(maker, ids, operators, _phase_s(seconds),
                                                               seed + 2 + phase)
                        without.append(rate)
                        cpu_without.append(engine_cpu)
                rss_mb = rtpengine.memory_info().rss / 2**20
                delete_started = time.perf_counter()
                await asyncio.gather(*(anchor.delete(f"bench-{i}") for i in range(calls)))
                delete_s = time.perf_counter() - delete_started
                spooled = sorted((recordings / "spool").glob("*.json"))
                pcap_bytes = sum(p.with_suffix(".pcap").stat().st_size for p in spooled)
            finally:
                await anchor.stop()
                await drop_sample(maker, sample)
        baseline = statistics.median(without)
        during_relay = statistics.median(with_relay)
        relayed_s = seconds * len(relayed_runs)
        expected = sum(2 * r["expected_each_way"] for r in relayed_runs)
        arrived = sum(r["received"]["dialer"] + r["received"]["customer"] for r in relayed_runs)
        return {
            "calls": calls, "seconds": seconds, "recorded": len(spooled),
            "packet_loss_pct": round(100.0 * max(0, expected - arrived) / expected, 4) if expected else 0.0,
            "packet_loss_direct_pct": _loss_pct(direct),
            "packets_relayed": arrived,
            "cpu_s_per_call": round(cpu_s / calls / len(relayed_runs), 4),
            "cpu_s_per_call_minute": round(cpu_s / calls * 60.0 / wall, 4),
            "rtpengine_cpu_pct": round(100.0 * cpu_s / wall, 1), "rtpengine_rss_mb": round(rss_mb, 1),
            "setup_ms_p50": round(_percentile(setup_ms, 0.5), 2), "setup_ms_p95": round(_percentile(setup_ms, 0.95), 2),
            "delete_and_spool_s": round(delete_s, 2),
            "pcap_kb_per_call_s": round(pcap_bytes / 1024 / max(len(spooled), 1) / relayed_s, 1),
            "generator_cpu_pct": round(100.0 * sum(r["cpu_s"] for r in relayed_runs) / relayed_s, 1),
            "generator_max_late_ms": max(r["max_late_ms"] for r in relayed_runs),
            "engine_attempts_per_s_without": round(baseline, 1),
            "engine_attempts_per_s_direct": round(during_direct, 1),
            "engine_attempts_per_s_relayed": round(during_relay, 1),
            "engine_phases_without": [round(x, 1) for x in without],
            "engine_phases_relayed": [round(x, 1) for x in with_relay],
            "engine_drop_pct": round(100.0 * (baseline - during_relay) / baseline, 1) if baseline else 0.0,
            "engine_drop_direct_pct": round(100.0 * (baseline - during_direct) / baseline, 1) if baseline else 0.0,
            "engine_cpu_ms_per_attempt_without": round(statistics.median(cpu_without), 2),
            "engine_cpu_ms_per_attempt_relayed": round(statistics.median(cpu_with), 2),
            "engine_cpu_ms_per_attempt_direct": round(engine_cpu_direct, 2),
            "load_average": round(os.getloadavg()[0], 2), "cpus": os.cpu_count(), "peak_rss_mb": peak_rss_mb(),
            "rtpengine_mode": "userspace (--table=-1)", "rtpengine_threads": engine_process.threads or "default",
        }
