"""``dialer bench sip``: the SIP driver against a SIPp carrier on loopback.

SIPp (Debian package ``sip-tester``) plays a carrier that answers every INVITE at once; the driver places
``calls`` calls at ``rate`` per second through :meth:`SipTelephony.originate`, holds each answered call for
``hold_s`` seconds and hangs it up. Set-up time is originate → 200 OK received (the ``answered`` event's
timestamp); CPU is this process's ``time.process_time`` per call (SIPp's own CPU is not counted).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from pathlib import Path
from typing import Any

from dialer.core.clock import SystemClock
from dialer.stats import percentile
from dialer.telephony.base import CallEvent, CallEventKind, CallId, Originate, TelephonyError
from dialer.telephony.sip.config import DeviceAccount, SipSettings, TrunkConfig
from dialer.telephony.sip.driver import SipTelephony
from dialer.tools.bench.common import free_port, work_dir

CARRIER = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="bench carrier">
  <recv request="INVITE" crlf="true"/>
  <send><![CDATA[
SIP/2.0 100 Trying
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

]]></send>
  <send retrans="500"><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:carrier@[local_ip]:[local_port];transport=[transport]>
Content-Type: application/sdp
Content-Length: [len]

v=0
o=carrier 1 1 IN IP4 [local_ip]
s=-
c=IN IP4 [local_ip]
t=0 0
m=audio 9 RTP/AVP 8
a=rtpmap:8 PCMA/8000

]]></send>
  <recv request="ACK"/>
  <recv request="BYE"/>
  <send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

]]></send>
</scenario>
"""


def _sipp_errors(workdir: Path) -> str:
    """SIPp's error log (empty when all went well)."""
    return "".join(p.read_text(errors="replace") for p in workdir.glob("*errors.log"))


async def _no_accounts(login: str) -> DeviceAccount | None:
    return None


async def bench_sip(calls: int, rate: float, hold_s: float = 1.0) -> dict[str, Any]:
    sipp = shutil.which("sipp")
    if sipp is None:
        raise SystemExit("SIPp is not installed: apt-get install sip-tester")
    async with work_dir("dialer-bench-sip-") as workdir:
        return await _run(sipp, workdir, calls, rate, hold_s)


async def _run(sipp: str, workdir: Path, calls: int, rate: float, hold_s: float) -> dict[str, Any]:
    scenario = workdir / "carrier.xml"
    await asyncio.to_thread(scenario.write_text, CARRIER)
    port = free_port(udp=True)
    proc = await asyncio.create_subprocess_exec(
        sipp, "-sf", str(scenario), "-i", "127.0.0.1", "-p", str(port), "-buff_size", "4194304", "-nostdin",
        "-aa", "-m", str(calls), "-mp", str(free_port(udp=True)), "-trace_err", cwd=workdir,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    await asyncio.sleep(0.5)  # SIPp binds its socket
    clock = SystemClock()
    settings = SipSettings(bind_host="127.0.0.1", bind_port=0, device_ping_s=0, tcp=False)
    trunk = TrunkConfig(id=1, name="sipp", host="127.0.0.1", port=port, options_interval_s=0)
    driver = SipTelephony(settings, [trunk], _no_accounts, clock=clock)
    await driver.start()
    loop = asyncio.get_running_loop()
    placed: dict[CallId, float] = {}
    setups: list[float] = []
    failed = completed = up = max_up = 0
    done = asyncio.Event()
    pending_hangups: set[asyncio.Task[None]] = set()

    def check_done() -> None:
        if completed + failed >= calls:
            done.set()

    async def hang_up(call: CallId) -> None:
        with contextlib.suppress(TelephonyError):
            await driver.hangup(call)

    def schedule_hangup(call: CallId) -> None:
        task = loop.create_task(hang_up(call))
        pending_hangups.add(task)
        task.add_done_callback(pending_hangups.discard)

    async def consume() -> None:
        nonlocal failed, completed, up, max_up
        async for event in driver.events():
            if not isinstance(event, CallEvent):
                continue
            if event.kind == CallEventKind.answered:
                setups.append((event.at - placed[event.call_id]) * 1000)
                up += 1
                max_up = max(max_up, up)
                loop.call_later(hold_s, schedule_hangup, event.call_id)
            elif event.kind == CallEventKind.hung_up:
                up -= 1
                completed += 1
                check_done()
            elif event.kind in (CallEventKind.busy, CallEventKind.no_answer, CallEventKind.rejected,
                                CallEventKind.failed):
                failed += 1
                check_done()

    consumer = loop.create_task(consume())
    cpu0, wall0 = time.process_time(), time.perf_counter()
    start = loop.time()
    for i in range(calls):
        delay = start + i / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        t0 = clock.now()
        try:
            call = await driver.originate(Originate(number=f"+7912{i:07d}", answer_timeout_s=30))
        except TelephonyError:
            failed += 1
            continue
        placed[call] = t0
    check_done()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(done.wait(), hold_s + 40)
    cpu = time.process_time() - cpu0
    wall = time.perf_counter() - wall0
    await driver.close()
    await consumer
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(proc.wait(), 5)
    if proc.returncode is None:
        proc.terminate()
        await proc.wait()
    sipp_errors = await asyncio.to_thread(_sipp_errors, workdir)
    return {"calls": calls, "completed": completed, "failed": calls - completed, "rate": rate, "hold_s": hold_s,
            "setup_p50_ms": round(percentile(setups, 0.50), 2), "setup_p99_ms": round(percentile(setups, 0.99), 2),
            "setup_max_ms": round(max(setups, default=0.0), 2), "max_concurrent": max_up,
            "cpu_s_per_call": round(cpu / max(1, calls), 6), "wall_s": round(wall, 2),
            "sipp_exit": proc.returncode, **({"sipp_errors": sipp_errors[-2000:]} if sipp_errors else {})}
