"""baresip (Debian 12's 1.0, package ``baresip-core``) as a real operator's phone in tests: run headless from a
generated configuration directory, registered with the driver, auto-answering the calls it gets."""

from __future__ import annotations

import asyncio
import re
import shutil
from pathlib import Path

from dialer.telephony.sip.holdaudio import write_chime

BARESIP = shutil.which("baresip")
MODULES = Path("/usr/lib/baresip/modules")


def baresip_available() -> bool:
    return BARESIP is not None and MODULES.is_dir()


class Baresip:
    """One baresip process with its own configuration directory (no terminal: the ``stdio`` module is left out;
    ``-s`` prints the SIP trace, which the tests read)."""

    def __init__(self, workdir: Path, *, registrar: tuple[str, int] | None, login: str, password: str = "",
                 port: int, expires_s: int = 60, transport: str = "udp", certificate: Path | None = None,
                 ca_file: Path | None = None) -> None:
        """A phone registering ``login`` with ``registrar`` over ``transport``; without a registrar, a carrier that
        answers every INVITE it gets (an account that never registers). Over TLS baresip listens on ``port`` with
        ``certificate`` (its chain and key in one PEM) and checks its peers against ``ca_file``."""
        self.dir = workdir / f"baresip-{login}-{port}"
        self.dir.mkdir(parents=True)
        voice = self.dir / "voice.wav"
        write_chime(voice)
        self.port = port
        #: baresip 1.0 listens for TLS one port above ``sip_listen`` (UDP and TCP on the port itself).
        self.tls_port = port + 1
        tls = (f"sip_certificate {certificate}\n" if certificate else "") + (
            f"sip_cafile {ca_file}\n" if ca_file else "")
        (self.dir / "config").write_text(
            "poll_method epoll\n"
            f"sip_listen 127.0.0.1:{port}\n"
            f"sip_transports {transport}\n"
            f"{tls}"
            f"module_path {MODULES}\n"
            "module g711.so\n"
            "module aufile.so\n"          # the operator's voice: a WAV file (ausine wants 48 kHz, G.711 is 8 kHz)
            f"audio_source aufile,{voice}\n"   # no audio player: nothing is played back (no sound card)
            "module_app account.so\n"
            "module_app menu.so\n"        # answermode=auto is carried out by the menu
            "rtp_ports 30000-30999\n")
        if registrar is None:
            account = f"<sip:{login}@127.0.0.1;transport={transport}>;regint=0;answermode=auto\n"
        else:
            host, reg_port = registrar
            account = (f"<sip:{login}@{host}:{reg_port};transport={transport}>;auth_pass={password};"
                       f"answermode=auto;regint={expires_s}\n")
        (self.dir / "accounts").write_text(account)
        self.log = self.dir / "output.txt"
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> Baresip:
        assert BARESIP is not None, "baresip is not installed (apt-get install baresip-core)"
        out = await asyncio.to_thread(open, self.log, "wb")
        try:
            self.proc = await asyncio.create_subprocess_exec(
                BARESIP, "-f", str(self.dir), "-s", stdin=asyncio.subprocess.DEVNULL, stdout=out,
                stderr=asyncio.subprocess.STDOUT)
        finally:
            out.close()
        return self

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def sent(self, pattern: str) -> int:
        """How many requests or responses baresip printed in its trace whose first line matches ``pattern``."""
        return len(re.findall(r"^" + pattern, self.output(), flags=re.MULTILINE))

    async def kill(self) -> None:
        """Die like a phone pulled from the network: no unregistration, no BYE."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 5)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
