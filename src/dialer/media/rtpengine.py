"""rtpengine as the dialer's media relay: the process (:class:`RtpEngineProcess`), the SIP driver's anchor over the ng
protocol (:class:`RtpEngineAnchor`) and the recordings' spool.

**The process.** :class:`RtpEngineProcess` starts ``rtpengine`` as a child in userspace mode (``--table=-1``, no
kernel module; docs/sip.md, "Media plane (rtpengine)") listening for ng on 127.0.0.1, waits until it answers
``ping``, restarts it when it dies (with growing pauses, logged; the calls it relayed lose their media: the anchor
tells ``on_lost``, which ``dialer.voip.runtime`` wires to the driver's hang-up), and stops it with the product. The
child gets SIGKILL from the kernel when the product dies (``PR_SET_PDEATHSIG``), so a crashed product never leaves
it holding the ports.
:class:`ExternalRtpEngine` is the same interface for a rtpengine run by someone else (``DIALER_MEDIA_NG_URL``, e.g.
a production one with its kernel module): it only pings it.

**The anchor.** :class:`RtpEngineAnchor` implements :class:`dialer.telephony.sip.anchor.MediaAnchor`: one ng call per
driver call (ng ``call-id`` = the driver's call id, hex-encoded when it has characters a file name should not:
:func:`ng_call_id`), one ng tag per side (the customer's carrier leg and the dialer's
side: hold audio, then the operator's phone). Every offer/answer asks rtpengine to rewrite the origin and the
connection addresses (``replace``: ``origin``, ``session-connection``) and passes codecs through untouched.
``webrtc=True`` says that the party the returned SDP goes to is a browser: the SDP then offers
``UDP/TLS/RTP/SAVPF`` with ``ICE=force``, ``rtcp-mux`` offered (and required), no SDES, ``generate mid``; any other
party gets plain ``RTP/AVP``, ``ICE=remove`` and ``rtcp-mux`` demultiplexed (WebRTC ↔ RTP as measured with
rtpengine 10.5).

**Recording capture contract** (the recordings worker reads it; ``dialer.media.pcap``). ``start_recording`` turns
rtpengine's pcap recording on for the call (both sides; a call recorded once stays recorded to its end, and
``stop_recording`` pauses nothing already captured). When a recorded call is deleted (``delete delay`` 0, so
rtpengine closes the capture at once), its capture is moved atomically (``rename``) to
``<recordings_dir>/spool/<name>.pcap`` and then the sidecar ``<name>.json`` is written — under a temporary name
``.<name>.json.tmp``, renamed last, so a reader that sees ``<name>.json`` finds the pcap complete. ``<name>`` is
``<UTC start, YYYYmmddTHHMMSSZ>-<the call id with characters other than letters, digits, '.', '_' and '-' replaced by
'_'>``. The sidecar::

    {"call_id": "<the driver's CallId>",
     "started_at": "<ISO-8601 UTC: recording started>", "ended_at": "<ISO-8601 UTC: call deleted>",
     "customer": {"host": "...", "port": 5004, "relay_host": "...", "relay_port": 30000},
     "dialer": {"host": "...", "port": 20002, "relay_host": "...", "relay_port": 30010},
     "format": "rtpengine-pcap", "recovered": false}

The pcap (link type 101, raw IPv4/IPv6) holds **only packets as rtpengine received them**: each packet is captured
once, on its way in, with its source the sender's address and its destination rtpengine's own port for that side.
So a packet whose destination is ``customer.relay_host:relay_port`` was sent by the customer (the carrier leg), one
whose destination is ``dialer.relay_host:relay_port`` was sent by the dialer's side (the hold audio and then the
operator's phone — whoever is connected at the moment). That rule always holds; ``host``/``port`` are each party's own
media address as rtpengine learnt it last (the source of its packets; the dialer side's may have changed during the
call, e.g. from hold audio to the phone), ``null`` when unknown. ``recovered`` is true for a capture spooled after a
crash (of rtpengine or of the product): its ``ended_at`` is the capture's last write and a packet cut off by the crash
is trimmed (rtpengine writes its captures in 4 KB blocks, so a crash of rtpengine itself loses the last ~0.2 s).

Nothing is lost to a crash: rtpengine keeps a capture's metadata in ``<recording dir>/tmp/`` while the call lives and
moves it to ``metadata/`` when the call ends; the anchor also keeps a small state file per recorded call in
``<recording dir>/dialer-calls/``. At start (and after rtpengine restarted) :meth:`RtpEngineAnchor.recover` spools
every finished capture (``metadata/``) and every capture of a call rtpengine no longer knows (``tmp/``, after a
``query`` answered ``Unknown call-id``).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import hashlib
import json
import logging
import os
import re
import resource
import shutil
import signal
import socket
import struct
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from dialer.core.clock import Clock, SystemClock
from dialer.media.ng import NgClient, NgError, Value, parse_ng_url
from dialer.media.settings import MediaSettings
from dialer.telephony.base import Originate
from dialer.telephony.sip.anchor import CUSTOMER_TAG, DIALER_TAG
from dialer.telephony.sip.sdp import audio_media

__all__ = ["CUSTOMER", "DIALER", "ExternalRtpEngine", "MediaEngine", "RtpEngineAnchor", "RtpEngineError",
           "RtpEngineProcess", "default_interface", "driver_call_id", "ng_call_id", "safe_name", "spool_name"]

log = logging.getLogger(__name__)

#: The sidecar's names of the two sides.
CUSTOMER = "customer"
DIALER = "dialer"

_RECORDING_SUBDIRS = ("metadata", "pcaps", "tmp")
_STATE_DIR = "dialer-calls"
_UNKNOWN_CALL = "Unknown call-id"
_PCAP_HEADER = 24
_PCAP_RECORD = 16


class RtpEngineError(Exception):
    """rtpengine could not be started or reached; the message says why."""


# --- the process -------------------------------------------------------------------------------------------------


class MediaEngine(Protocol):
    """What the anchor needs of an rtpengine: its ng client, where it records, and a way to learn of restarts."""

    client: NgClient
    recording_dir: Path | None

    def on_restart(self, callback: Callable[[], Awaitable[None]]) -> None: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


def default_interface(public_host: str | None = None) -> str:
    """``public_host`` when it is an IP address, else the source address of the default route (no packet is sent),
    else 127.0.0.1."""
    if public_host:
        with contextlib.suppress(OSError):
            socket.inet_pton(socket.AF_INET6 if ":" in public_host else socket.AF_INET, public_host)
            return public_host
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("192.0.2.1", 9))  # TEST-NET-1: only the route is looked up
        address: str = probe.getsockname()[0]
        return address
    return "127.0.0.1"


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL when the product's process dies (Linux ``PR_SET_PDEATHSIG``), and no core
    files (rtpengine 10.5 may abort while it stops; a 70 MB core in the working directory helps nobody)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)
    with contextlib.suppress(OSError, ValueError):
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


class RtpEngineProcess:
    """rtpengine as a supervised child process (see the module docstring).

    ``recording_dir`` is its ``--recording-dir`` (rtpengine creates ``metadata/``, ``pcaps/``, ``tmp/`` in it).
    """

    def __init__(self, *, interface: str, ng_port: int, port_min: int, port_max: int, recording_dir: Path,
                 binary: str = "rtpengine", log_level: int = 5, threads: int = 0, clock: Clock | None = None,
                 start_timeout_s: float = 15.0, retransmit_s: float = 0.5, tries: int = 4) -> None:
        self.interface = interface
        self.ng_port = ng_port
        self.port_min = port_min
        self.port_max = port_max
        self.recording_dir: Path | None = recording_dir
        self.binary = binary
        self.log_level = log_level
        self.threads = threads
        self.clock: Clock = clock or SystemClock()
        self.start_timeout_s = start_timeout_s
        self.client = NgClient("127.0.0.1", ng_port, clock=self.clock, retransmit_s=retransmit_s, tries=tries)
        self.restarts = 0
        self._process: asyncio.subprocess.Process | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._stderr_task: asyncio.Task[None] | None = None
        self._stopping = False
        self._callbacks: list[Callable[[], Awaitable[None]]] = []
        self._stderr_tail: list[str] = []

    @classmethod
    def from_settings(cls, media: MediaSettings, recordings_dir: Path, *, public_host: str | None = None,
                      clock: Clock | None = None) -> RtpEngineProcess:
        return cls(interface=media.interface or default_interface(public_host), ng_port=media.ng_port,
                   port_min=media.port_min, port_max=media.port_max, recording_dir=recordings_dir / "rtpengine",
                   binary=media.rtpengine_binary, log_level=media.log_level, threads=media.threads, clock=clock,
                   retransmit_s=media.ng_retransmit_s, tries=media.ng_tries)

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None and self._process.returncode is None else None

    def on_restart(self, callback: Callable[[], Awaitable[None]]) -> None:
        """``await callback()`` after rtpengine was restarted (its calls are gone)."""
        self._callbacks.append(callback)

    def argv(self) -> list[str]:
        assert self.recording_dir is not None
        return [self.binary, "--config-file=none", "--table=-1", f"--interface={self.interface}",
                f"--listen-ng=127.0.0.1:{self.ng_port}", "--foreground", "--log-stderr",
                f"--log-level={self.log_level}", f"--port-min={self.port_min}", f"--port-max={self.port_max}",
                "--recording-method=pcap", f"--recording-dir={self.recording_dir}", "--delete-delay=0",
                *([f"--num-threads={self.threads}"] if self.threads else [])]

    async def start(self) -> None:
        """Start rtpengine and return once it answers ``ping``; raises :class:`RtpEngineError` when it does not."""
        self._stopping = False
        await self._spawn()
        self._supervisor = asyncio.create_task(self._supervise(), name="rtpengine-supervisor")

    async def _spawn(self) -> None:
        assert self.recording_dir is not None
        self.recording_dir.mkdir(parents=True, exist_ok=True)
        if shutil.which(self.binary) is None:
            raise RtpEngineError(f"{self.binary!r} not found: install the Debian package rtpengine-daemon "
                                 "(apt-get install --no-install-recommends rtpengine-daemon)")
        self._stderr_tail = []
        self._process = await asyncio.create_subprocess_exec(
            *self.argv(), stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            # its own session: a Ctrl+C meant for the dialer's process group must not kill it before the dialer
            # stops it (the kernel still kills it if the dialer dies: _die_with_parent)
            stderr=asyncio.subprocess.PIPE, start_new_session=True, preexec_fn=_die_with_parent)
        self._stderr_task = asyncio.create_task(self._drain(self._process), name="rtpengine-stderr")
        deadline = self.clock.now() + self.start_timeout_s
        probe = NgClient("127.0.0.1", self.ng_port, clock=self.clock, retransmit_s=0.1, tries=2)
        try:
            while True:
                if self._process.returncode is not None:
                    raise RtpEngineError(f"rtpengine exited with code {self._process.returncode} at start: "
                                         + " | ".join(self._stderr_tail[-5:]))
                try:
                    await probe.ping()
                    break
                except NgError:
                    if self.clock.now() >= deadline:
                        await self._kill()
                        raise RtpEngineError(f"rtpengine did not answer ping on 127.0.0.1:{self.ng_port} within "
                                             f"{self.start_timeout_s:g} s: " + " | ".join(self._stderr_tail[-5:]))
        finally:
            await probe.close()
        await self.client.open()
        log.info("rtpengine %s started (pid %s): media on %s ports %d-%d, ng 127.0.0.1:%d", self.binary,
                 self._process.pid, self.interface, self.port_min, self.port_max, self.ng_port)

    async def _drain(self, process: asyncio.subprocess.Process) -> None:
        assert process.stderr is not None
        async for raw in process.stderr:
            line = raw.decode("utf-8", "replace").rstrip()
            self._stderr_tail = [*self._stderr_tail[-19:], line]
            level = logging.WARNING if re.search(r"\b(ERR|CRIT|ALERT|EMERG|WARNING)\b", line) else logging.DEBUG
            log.log(level, "rtpengine: %s", line)

    async def _supervise(self) -> None:
        pause = 0.5
        while not self._stopping:
            process = self._process
            assert process is not None
            code = await process.wait()
            if self._stopping:
                return
            self.restarts += 1
            log.error("rtpengine (pid %s) died with code %s; restarting it (restart %d) — the calls it relayed are "
                      "lost: %s", process.pid, code, self.restarts, " | ".join(self._stderr_tail[-3:]))
            while not self._stopping:
                try:
                    await self._spawn()
                    pause = 0.5
                    break
                except (RtpEngineError, OSError) as err:
                    log.error("restarting rtpengine failed: %s; next try in %.1f s", err, pause)
                    await self.clock.sleep(pause)
                    pause = min(pause * 2, 30.0)
            for callback in list(self._callbacks):
                try:
                    await callback()
                except Exception:
                    log.exception("after the rtpengine restart")

    async def _kill(self) -> None:
        process = self._process
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 5.0)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()

    async def stop(self) -> None:
        """Stop rtpengine (SIGTERM, SIGKILL after 5 s) and its supervision."""
        self._stopping = True
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
            self._supervisor = None
        await self._kill()
        if self._stderr_task is not None:
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(self._stderr_task, 2.0)
        await self.client.close()
        log.info("rtpengine stopped")


class ExternalRtpEngine:
    """A rtpengine someone else runs (``DIALER_MEDIA_NG_URL``): nothing is started or restarted."""

    def __init__(self, url: str, *, recording_dir: Path | None = None, clock: Clock | None = None,
                 retransmit_s: float = 0.5, tries: int = 4) -> None:
        host, port = parse_ng_url(url)
        self.url = url
        self.recording_dir = recording_dir
        self.client = NgClient(host, port, clock=clock, retransmit_s=retransmit_s, tries=tries)

    def on_restart(self, callback: Callable[[], Awaitable[None]]) -> None:
        """An external rtpengine's restarts are not seen; its lost calls fail on their next command."""

    async def start(self) -> None:
        try:
            await self.client.ping()
        except NgError as err:
            await self.client.close()
            raise RtpEngineError(f"the rtpengine at {self.url} does not answer: {err.reason}") from err
        log.info("media plane: external rtpengine at %s%s", self.url,
                 f", recordings from {self.recording_dir}" if self.recording_dir else ", recording unavailable "
                 "(DIALER_MEDIA_RTPENGINE_RECORDING_DIR not set)")

    async def stop(self) -> None:
        await self.client.close()


# --- the anchor --------------------------------------------------------------------------------------------------


_SAFE = re.compile(r"[A-Za-z0-9._-]{1,150}")


def ng_call_id(call_id: str) -> str:
    """The ng ``call-id`` of a driver's call: the call id itself when it is at most 150 letters, digits, '.', '_'
    and '-' (rtpengine names its capture files after it, escaping other characters its own way — '@' as ``%40``),
    else ``~`` and its UTF-8 in hex, or for a long one ``~~`` and a SHA-256 prefix (the anchor's state file then
    keeps the call id)."""
    if _SAFE.fullmatch(call_id):
        return call_id
    raw = call_id.encode()
    return "~" + raw.hex() if len(raw) <= 75 else "~~" + hashlib.sha256(raw).hexdigest()[:40]


def driver_call_id(ng_call: str) -> str | None:
    """The inverse of :func:`ng_call_id` (None for a hashed one)."""
    if ng_call.startswith("~~"):
        return None
    if ng_call.startswith("~"):
        try:
            return bytes.fromhex(ng_call[1:]).decode()
        except ValueError:
            return None
    return ng_call


def safe_name(call_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", call_id)[:120] or "call"


def spool_name(call_id: str, started_at: datetime) -> str:
    return f"{started_at.astimezone(UTC):%Y%m%dT%H%M%SZ}-{safe_name(call_id)}"


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass(slots=True)
class _Side:
    host: str | None = None
    port: int | None = None
    relay_host: str | None = None
    relay_port: int | None = None

    def as_json(self) -> dict[str, Any]:
        return {"host": self.host, "port": self.port, "relay_host": self.relay_host, "relay_port": self.relay_port}


@dataclass(slots=True)
class _Call:
    call_id: str
    recording: bool = False
    started_at: datetime | None = None
    sides: dict[str, _Side] = field(default_factory=lambda: {CUSTOMER: _Side(), DIALER: _Side()})


def _write_atomic(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    with open(temporary, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, path)


def _move_atomic(source: Path, target: Path) -> None:
    """``source`` to ``target`` by rename; across file systems copied to a temporary name beside ``target`` first."""
    try:
        os.replace(source, target)
    except OSError as err:
        if err.errno != 18:  # EXDEV
            raise
        temporary = target.with_name(f".{target.name}.tmp")
        shutil.copyfile(source, temporary)
        os.replace(temporary, target)
        source.unlink()


def _trim_pcap(path: Path) -> None:
    """Cut a record a crash left half-written off the end of a classic pcap."""
    with open(path, "r+b") as capture:
        data = capture.read()
        if len(data) < _PCAP_HEADER:
            return
        order = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
        position = _PCAP_HEADER
        while position + _PCAP_RECORD <= len(data):
            length = struct.unpack_from(order + "I", data, position + 8)[0]
            if position + _PCAP_RECORD + length > len(data):
                break
            position += _PCAP_RECORD + length
        if position < len(data):
            capture.truncate(position)


class RtpEngineAnchor:
    """The SIP driver's :class:`~dialer.telephony.sip.anchor.MediaAnchor` on rtpengine (see the module docstring).

    ``customer_tag`` / ``dialer_tag`` are the driver's tags of the two sides; ``relay_all`` anchors every call,
    otherwise only recorded ones (answering-machine detection listens on the dialer's own RTP, which the customer
    reaches in both modes, so it needs no relay).
    """

    def __init__(self, engine: MediaEngine, recordings_dir: Path, *, customer_tag: str = CUSTOMER_TAG,
                 dialer_tag: str = DIALER_TAG, relay_all: bool = False, clock: Clock | None = None,
                 finish_timeout_s: float = 5.0) -> None:
        self.engine = engine
        self.recordings_dir = recordings_dir
        self.spool_dir = recordings_dir / "spool"
        self.tags = {customer_tag: CUSTOMER, dialer_tag: DIALER}
        self.relay_all = relay_all
        self.clock: Clock = clock or SystemClock()
        self.finish_timeout_s = finish_timeout_s
        self.spooled = 0
        #: Told the ids of the calls a restart of rtpengine lost (``dialer.voip.runtime`` hangs them up).
        self.on_lost: Callable[[list[str]], Awaitable[None]] | None = None
        self._calls: dict[str, _Call] = {}
        engine.on_restart(self._after_restart)

    # -- MediaAnchor ----------------------------------------------------------------------------------------------

    def wants(self, request: Originate) -> bool:
        return self.relay_all or request.record

    async def offer(self, call_id: str, sdp: bytes, *, from_tag: str, to_tag: str | None,
                    webrtc: bool = False) -> bytes:
        message: dict[str, Value] = {"command": "offer", "call-id": ng_call_id(call_id), "from-tag": from_tag,
                                     "sdp": sdp, **self._flags(webrtc)}
        if to_tag is not None:
            message["to-tag"] = to_tag
        reply = await self.engine.client.request(message)
        out = self._sdp(reply)
        # the returned SDP is where the other side must send: that side's relay address
        other = to_tag if to_tag is not None else self._other_tag(from_tag)
        self._learn(call_id, from_tag, sdp, other, out)
        return out

    async def answer(self, call_id: str, sdp: bytes, *, from_tag: str, to_tag: str, webrtc: bool = False) -> bytes:
        reply = await self.engine.client.request({"command": "answer", "call-id": ng_call_id(call_id),
                                                  "from-tag": from_tag, "to-tag": to_tag, "sdp": sdp,
                                                  **self._flags(webrtc)})
        out = self._sdp(reply)
        # the answerer's own media address is in its SDP; the returned SDP is where the offerer must send
        self._learn(call_id, to_tag, sdp, from_tag, out)
        return out

    async def delete(self, call_id: str) -> None:
        call = self._calls.pop(call_id, None)
        try:
            reply = await self.engine.client.request({"command": "delete", "call-id": ng_call_id(call_id),
                                                      "delete delay": 0})
        except NgError as err:
            log.warning("rtpengine delete of %s: %s", call_id, err.reason)
            reply = {}
        if call is None or not call.recording:
            return
        self._learn_stats(call, reply)
        try:
            await self._finish(call)
        except Exception:
            # the capture stays where rtpengine left it; recover() spools it at the next start
            log.exception("spooling the recording of %s failed", call_id)

    async def start_recording(self, call_id: str) -> None:
        await self.engine.client.request({"command": "start recording", "call-id": ng_call_id(call_id)})
        call = self._calls.setdefault(call_id, _Call(call_id))
        if not call.recording:
            call.recording = True
            call.started_at = self.clock.utcnow()
        self._save_state(call)

    async def stop_recording(self, call_id: str) -> None:
        await self.engine.client.request({"command": "stop recording", "call-id": ng_call_id(call_id)})

    def relay_address(self, call_id: str, tag: str) -> tuple[str, int] | None:
        """Where the side ``tag`` of a live call sends its media (the relay's address facing it), once known."""
        call = self._calls.get(call_id)
        role = self.tags.get(tag)
        if call is None or role is None:
            return None
        side = call.sides[role]
        return (side.relay_host, side.relay_port) if side.relay_host and side.relay_port else None

    # -- lifecycle ------------------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the engine and spool what an earlier run left (:meth:`recover`)."""
        await self.engine.start()
        await self.recover()

    async def stop(self) -> None:
        await self.engine.stop()

    async def recover(self) -> int:
        """Spool every capture of a call that has ended (see the module docstring); returns how many."""
        base = self.engine.recording_dir
        if base is None:
            return 0
        spooled = 0
        for meta in sorted((base / "metadata").glob("rtpengine-meta-*.txt")):
            spooled += await asyncio.to_thread(self._recover_one, meta, None)
        for meta in sorted((base / "tmp").glob("rtpengine-meta-*.tmp")):
            ng_call = self._meta_call_id(meta)
            if ng_call is None or driver_call_id(ng_call) in self._calls:
                continue
            try:
                await self.engine.client.request({"command": "query", "call-id": ng_call})
                continue  # still alive in rtpengine
            except NgError as err:
                if _UNKNOWN_CALL.lower() not in err.reason.lower():
                    log.warning("cannot tell whether %s still lives: %s", ng_call, err.reason)
                    continue
            spooled += await asyncio.to_thread(self._recover_one, meta, ng_call)
        # state files of recorded calls that left no capture at all (nothing to spool)
        for state in (base / _STATE_DIR).glob("*.json") if (base / _STATE_DIR).is_dir() else ():
            with contextlib.suppress(OSError, ValueError):
                call_id = json.loads(state.read_text())["call_id"]
                if call_id not in self._calls and not any((base / "tmp").glob(
                        f"rtpengine-meta-{glob_escape(ng_call_id(call_id))}-*.tmp")):
                    state.unlink()
        if spooled:
            log.info("spooled %d recording(s) left by an earlier run of rtpengine", spooled)
        return spooled

    async def _after_restart(self) -> None:
        lost = list(self._calls)
        recorded = sum(1 for c in self._calls.values() if c.recording)
        self._calls.clear()
        if lost:
            log.error("rtpengine restarted: %d call(s) lost their media (%d recorded: spooling what was captured)",
                      len(lost), recorded)
        await self.recover()
        if lost and self.on_lost is not None:
            await self.on_lost(lost)

    # -- internals ------------------------------------------------------------------------------------------------

    @staticmethod
    def _flags(webrtc: bool) -> dict[str, Value]:
        common: dict[str, Value] = {"replace": ["origin", "session-connection"]}
        if webrtc:
            return {**common, "transport-protocol": "UDP/TLS/RTP/SAVPF", "ICE": "force",
                    "rtcp-mux": ["offer", "require"], "SDES": ["off"], "flags": ["generate mid"]}
        return {**common, "transport-protocol": "RTP/AVP", "ICE": "remove", "rtcp-mux": ["demux"]}

    @staticmethod
    def _sdp(reply: Mapping[str, Value]) -> bytes:
        sdp = reply.get("sdp")
        if isinstance(sdp, str):
            return sdp.encode()
        if isinstance(sdp, bytes):
            return sdp
        raise NgError("offer/answer", "the reply carries no SDP")

    def _other_tag(self, tag: str) -> str | None:
        for other in self.tags:
            if other != tag:
                return other
        return None

    def _learn(self, call_id: str, own_tag: str | None, own_sdp: bytes | None, relay_tag: str | None,
               relay_sdp: bytes) -> None:
        call = self._calls.setdefault(call_id, _Call(call_id))
        if own_tag in self.tags and own_sdp is not None and (media := audio_media(own_sdp)) is not None:
            side = call.sides[self.tags[own_tag]]
            side.host, side.port = media.host, media.port
        if relay_tag in self.tags and (media := audio_media(relay_sdp)) is not None:
            side = call.sides[self.tags[relay_tag]]
            side.relay_host, side.relay_port = media.host, media.port
        if call.recording:
            self._save_state(call)

    def _learn_stats(self, call: _Call, reply: Mapping[str, Value]) -> None:
        """The addresses rtpengine actually saw, from a ``delete``/``query`` reply's ``tags``."""
        tags = reply.get("tags")
        if not isinstance(tags, dict):
            return
        for tag, info in tags.items():
            role = self.tags.get(tag)
            if role is None or not isinstance(info, dict):
                continue
            for media in info.get("medias") or []:
                for stream in media.get("streams") or []:
                    if "RTP" not in (stream.get("flags") or []):
                        continue
                    side = call.sides[role]
                    endpoint = stream.get("endpoint") or {}
                    if endpoint.get("address") and endpoint.get("port"):
                        side.host, side.port = endpoint["address"], int(endpoint["port"])
                    if stream.get("local port"):
                        side.relay_port = int(stream["local port"])
                        side.relay_host = stream.get("local address") or side.relay_host
                    break
                break

    def _state_path(self, call_id: str) -> Path | None:
        base = self.engine.recording_dir
        return None if base is None else base / _STATE_DIR / f"{ng_call_id(call_id)}.json"

    def _save_state(self, call: _Call) -> None:
        path = self._state_path(call.call_id)
        if path is None or call.started_at is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_atomic(path, json.dumps(self._sidecar(call, None)).encode())

    @staticmethod
    def _sidecar(call: _Call, ended_at: datetime | None, *, recovered: bool = False) -> dict[str, Any]:
        assert call.started_at is not None
        return {"call_id": call.call_id, "started_at": _iso(call.started_at),
                "ended_at": _iso(ended_at) if ended_at else None,
                CUSTOMER: call.sides[CUSTOMER].as_json(), DIALER: call.sides[DIALER].as_json(),
                "format": "rtpengine-pcap", "recovered": recovered}

    async def _finish(self, call: _Call) -> None:
        """Wait for rtpengine to close the capture (its metadata file moves to ``metadata/``) and spool it."""
        base = self.engine.recording_dir
        if base is None:
            log.warning("recording of %s: the rtpengine's recording directory is unknown here", call.call_id)
            return
        pattern = f"rtpengine-meta-{glob_escape(ng_call_id(call.call_id))}-*.txt"
        deadline = self.clock.now() + self.finish_timeout_s
        while True:
            found = sorted((base / "metadata").glob(pattern))
            if found or self.clock.now() >= deadline:
                break
            await self.clock.sleep(0.02)
        if not found:
            log.warning("rtpengine did not close the capture of %s within %.0f s; it is spooled at the next start",
                        call.call_id, self.finish_timeout_s)
            return
        ended = self.clock.utcnow()
        for meta in found:
            await asyncio.to_thread(self._spool, meta, call, ended, False)

    def _spool(self, meta: Path, call: _Call, ended_at: datetime, recovered: bool) -> bool:
        base = self.engine.recording_dir
        assert base is not None and call.started_at is not None
        pcap = self._meta_pcap(meta, base)
        name = spool_name(call.call_id, call.started_at)
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        target = self.spool_dir / f"{name}.pcap"
        suffix = 1
        while target.exists() or target.with_suffix(".json").exists():
            suffix += 1
            target = self.spool_dir / f"{name}-{suffix}.pcap"
        if pcap is None or not pcap.exists() or pcap.stat().st_size < _PCAP_HEADER:
            log.warning("recording of %s: rtpengine's capture %s is missing or empty (nothing was written before "
                        "a crash)", call.call_id, pcap)
            meta.unlink(missing_ok=True)
            if pcap is not None:
                pcap.unlink(missing_ok=True)
            state = self._state_path(call.call_id)
            if state is not None:
                state.unlink(missing_ok=True)
            return False
        if recovered:
            _trim_pcap(pcap)
        _move_atomic(pcap, target)
        _write_atomic(target.with_suffix(".json"),
                      json.dumps(self._sidecar(call, ended_at, recovered=recovered), indent=1).encode())
        meta.unlink(missing_ok=True)
        state = self._state_path(call.call_id)
        if state is not None:
            state.unlink(missing_ok=True)
        self.spooled += 1
        log.info("recording of %s spooled as %s", call.call_id, target.name)
        return True

    @staticmethod
    def _meta_call_id(meta: Path) -> str | None:
        match = re.fullmatch(r"rtpengine-meta-(.+)-[0-9a-f]{16}\.(?:txt|tmp)", meta.name)
        return match.group(1) if match else None

    @staticmethod
    def _meta_pcap(meta: Path, base: Path) -> Path | None:
        """The capture a metadata file names on its first line (found in our view of ``pcaps/``); when a crash left
        the metadata file empty, the capture named like it (``rtpengine-meta-X.tmp`` belongs to ``X.pcap``)."""
        try:
            with open(meta, encoding="utf-8", errors="replace") as text:
                first = text.readline().strip()
        except OSError:
            first = ""
        if first:
            return base / "pcaps" / Path(first).name
        match = re.fullmatch(r"rtpengine-meta-(.+)\.(?:txt|tmp)", meta.name)
        return base / "pcaps" / f"{match.group(1)}.pcap" if match else None

    def _recover_one(self, meta: Path, ng_call: str | None) -> int:
        ng_call = ng_call or self._meta_call_id(meta)
        if ng_call is None:
            return 0
        base = self.engine.recording_dir
        assert base is not None
        call = _Call(driver_call_id(ng_call) or ng_call, recording=True)
        state = base / _STATE_DIR / f"{ng_call}.json"
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            saved = json.loads(state.read_text())
            call.started_at = datetime.fromisoformat(saved["started_at"].replace("Z", "+00:00"))
            for role in (CUSTOMER, DIALER):
                call.sides[role] = _Side(**saved[role])
            call.call_id = str(saved["call_id"])
        if call.started_at is None:
            call.started_at = self._meta_started(meta)
        pcap = self._meta_pcap(meta, base)
        ended = (datetime.fromtimestamp(pcap.stat().st_mtime, UTC) if pcap is not None and pcap.exists()
                 else self.clock.utcnow())
        return 1 if self._spool(meta, call, ended, True) else 0

    @staticmethod
    def _meta_started(meta: Path) -> datetime:
        with contextlib.suppress(OSError):
            match = re.search(r"Timestamp started ms: ([0-9.]+)", meta.read_text(errors="replace"))
            if match:
                return datetime.fromtimestamp(float(match.group(1)) / 1000, UTC)
        return datetime.fromtimestamp(meta.stat().st_mtime, UTC)


def glob_escape(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)
