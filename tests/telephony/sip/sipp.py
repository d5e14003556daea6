"""SIPp as a real peer in tests: scenarios rendered from templates, one process per role, unique ports."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import itertools
import os
import shutil
import socket
from pathlib import Path

SCENARIOS = Path(__file__).parent / "scenarios"
SIPP = shutil.which("sipp")
_serial = itertools.count()


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    """A port free for UDP (and TCP) on 127.0.0.1 now."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, kind) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port % 2 == 1 or port > 60000:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp, contextlib.suppress(OSError):
            tcp.bind(("127.0.0.1", port))
            return port
    raise RuntimeError("no free port")


def render(template: str, params: dict[str, object], directory: Path) -> Path:
    text = (SCENARIOS / f"{template}.xml").read_text()
    for key, value in params.items():
        text = text.replace("{{" + key + "}}", str(value))
    if "{{" in text:
        missing = text[text.index("{{"):text.index("}}", text.index("{{")) + 2]
        raise ValueError(f"scenario {template} needs {missing}")
    path = directory / f"{template}.xml"
    path.write_text(text)
    return path


def _udp_bound(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def _tcp_listening(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex((host, port)) == 0


class Sipp:
    """One SIPp process. ``remote`` makes it a UAC towards that host:port; without it, it waits as a UAS."""

    def __init__(self, template: str, params: dict[str, object], workdir: Path, *, port: int | None = None,
                 remote: str | None = None, calls: int = 1, extra: list[str] | None = None,
                 timeout_s: float = 60, local_ip: str = "127.0.0.1") -> None:
        self.port = port or free_port()
        self.local_ip = local_ip
        self.workdir = workdir / f"sipp-{template}-{next(_serial)}"
        self.workdir.mkdir(parents=True)
        scenario = render(template, params, self.workdir)
        self.args = [*([remote] if remote else []), "-sf", str(scenario), "-i", local_ip, "-p", str(self.port),
                     "-m", str(calls), "-nostdin", "-buff_size", "4194304", "-aa", "-trace_counts", "-trace_err",
                     "-mp", str(free_port()), "-timeout", f"{timeout_s:g}s", "-timeout_error",
                     *(extra or [])]
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> Sipp:
        assert SIPP is not None, "SIPp is not installed (apt-get install sip-tester)"
        stderr = await asyncio.to_thread(open, self.workdir / "stderr.txt", "wb")
        try:
            self.proc = await asyncio.create_subprocess_exec(
                SIPP, *self.args, cwd=self.workdir, stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL, stderr=stderr)
        finally:
            stderr.close()
        tcp = "-t" in self.args
        for _ in range(200):
            if ((_tcp_listening(self.port, self.local_ip) if tcp else _udp_bound(self.port, self.local_ip))
                    or self.proc.returncode is not None):
                break
            await asyncio.sleep(0.01)
        if self.proc.returncode is not None:
            raise RuntimeError(f"SIPp exited at start ({self.proc.returncode}): {self.errors()}")
        return self

    async def wait(self, within: float = 30) -> int:
        """SIPp's exit status: 0 when every call of its scenario went as written."""
        assert self.proc is not None
        return await asyncio.wait_for(self.proc.wait(), within)

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 3)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()

    def counts(self) -> dict[str, dict[str, int]]:
        """The ``-trace_counts`` CSV: message name (``INVITE``, ``200``, ...) and index → its counters."""
        files = sorted(self.workdir.glob("*_counts.csv"))
        if not files:
            return {}
        with open(files[-1], newline="") as fh:
            rows = list(csv.reader(fh, delimiter=";"))
        header, *values = rows
        if not values:
            return {}
        last = values[-1]
        out: dict[str, dict[str, int]] = {}
        for name, value in zip(header, last, strict=False):
            if not value.strip().isdigit():
                continue
            parts = name.split("_")
            if len(parts) >= 3:  # e.g. 1_INVITE_Recv, 4_200_Sent
                out.setdefault(f"{parts[0]}_{parts[1]}", {})[parts[2]] = int(value)
        return out

    def total(self, message: str, what: str) -> int:
        """A counter summed over the scenario's steps for one message, e.g. ``total("BYE", "Recv")``."""
        return sum(c.get(what, 0) for key, c in self.counts().items() if key.split("_", 1)[1] == message)

    def errors(self) -> str:
        text = ""
        for path in self.workdir.glob("*errors.log"):
            text += path.read_text(errors="replace")
        stderr = self.workdir / "stderr.txt"
        if stderr.exists():
            text += stderr.read_text(errors="replace")
        return text[-3000:]


async def stop_all(*procs: Sipp) -> None:
    for proc in procs:
        await proc.stop()


def sipp_available() -> bool:
    return SIPP is not None and os.access(SIPP, os.X_OK)
