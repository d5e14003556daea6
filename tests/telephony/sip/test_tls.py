"""SIP over TLS (RFC 3261 §26) with real peers: a carrier reached over TLS whose certificate is checked, and an
operator's phone that registers and takes its calls over TLS. The peers are baresip 1.0 (Debian's SIPp is built
without TLS); the certificates are made by the test with openssl: a CA, and certificates it signs for 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from dialer.telephony.base import CallEventKind, Originate, Side
from dialer.telephony.sip import DeviceAccount, SipTelephony, TrunkConfig
from tests.telephony.contract import Recorder
from tests.telephony.sip.baresip import Baresip, baresip_available
from tests.telephony.sip.harness import answer_params, settings, trunk
from tests.telephony.sip.sipp import Sipp, free_port, sipp_available

pytestmark = pytest.mark.skipif(not (baresip_available() and sipp_available()),
                                reason="baresip (baresip-core) and SIPp (sip-tester) are needed")

LOGIN, PASSWORD = "op-tls", "tls-secret-1"


@dataclass(frozen=True)
class Pki:
    ca: Path
    cert: Path      # for 127.0.0.1, signed by ca
    key: Path
    bundle: Path    # cert + key in one PEM (baresip's sip_certificate)


def make_pki(directory: Path, name: str = "ca") -> Pki:
    """A CA and a certificate it signs for IP 127.0.0.1 / localhost (openssl, two-day validity)."""
    d = directory / name
    d.mkdir()

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", f"/CN=Test CA {name}")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "host.key", "-out", "host.csr", "-subj", "/CN=localhost")
    (d / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    run("x509", "-req", "-in", "host.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out",
        "host.pem", "-days", "2", "-extfile", "ext.cnf")
    (d / "bundle.pem").write_text((d / "host.pem").read_text() + (d / "host.key").read_text())
    return Pki(d / "ca.pem", d / "host.pem", d / "host.key", d / "bundle.pem")


async def until(check: Callable[[], bool], within: float = 15.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


async def accounts(login: str) -> DeviceAccount | None:
    return DeviceAccount(LOGIN, PASSWORD, operator_id=1) if login == LOGIN else None


@contextlib.asynccontextmanager
async def running(trunks: list[TrunkConfig], **overrides: object) -> AsyncIterator[tuple[SipTelephony, Recorder]]:
    driver = SipTelephony(settings(**overrides), trunks, accounts)
    await driver.start()
    rec = Recorder(driver)
    try:
        yield driver, rec
    finally:
        await driver.close()
        await rec.stop()


async def test_a_call_through_a_tls_trunk_whose_certificate_is_checked(tmp_path: Path) -> None:
    pki = await asyncio.to_thread(make_pki, tmp_path)
    port = free_port()
    carrier = await Baresip(tmp_path, registrar=None, login="79120000001", port=port, transport="tls",
                            certificate=pki.bundle).start()
    try:
        tls_trunk = trunk(carrier.tls_port, transport="tls", options_interval_s=1.0, options_timeout_s=2.0)
        async with running([tls_trunk], tls_ca_file=str(pki.ca)) as (driver, rec):
            await until(lambda: any(getattr(e, "up", False) for e in rec.events))  # its OPTIONS answered over TLS
            call = await driver.originate(Originate(number="+79120000001", answer_timeout_s=10.0))
            await until(lambda: CallEventKind.answered in rec.kinds(call))
            await driver.hangup(call)
            await until(lambda: rec.kinds(call)[-1] == CallEventKind.hung_up)
            assert rec.calls(call)[-1].side == Side.dialer
            await until(lambda: "BYE sip:" in carrier.output())
        out = carrier.output()
        assert "TLS 127.0.0.1:" in out and "INVITE sip:79120000001@127.0.0.1" in out and ";transport=tls" in out
        assert "Via: SIP/2.0/TLS" in out
    finally:
        await carrier.stop()


async def test_a_tls_trunk_with_a_certificate_nobody_vouches_for_is_down(tmp_path: Path) -> None:
    ours, theirs = await asyncio.gather(asyncio.to_thread(make_pki, tmp_path, "ours"),
                                        asyncio.to_thread(make_pki, tmp_path, "theirs"))
    port = free_port()
    carrier = await Baresip(tmp_path, registrar=None, login="79120000001", port=port, transport="tls",
                            certificate=theirs.bundle).start()
    try:
        checked = trunk(carrier.tls_port, transport="tls", options_interval_s=1.0, options_timeout_s=1.0)
        async with running([checked], tls_ca_file=str(ours.ca)) as (driver, rec):
            await until(lambda: any(getattr(e, "up", None) is False for e in rec.events))
            down = next(e for e in rec.events if getattr(e, "up", None) is False)
            assert "CERTIFICATE_VERIFY_FAILED" in getattr(down, "detail", "")
            with pytest.raises(Exception, match="down"):
                await driver.originate(Originate(number="+79120000001"))
        assert "INVITE sip:" not in carrier.output()
        # the same carrier with verification switched off for it (a self-signed carrier) takes the call
        unchecked = trunk(carrier.tls_port, transport="tls", options_interval_s=1.0, options_timeout_s=2.0,
                          tls_verify=False)
        async with running([unchecked], tls_ca_file=str(ours.ca)) as (driver, rec):
            await until(lambda: any(getattr(e, "up", False) for e in rec.events))
            call = await driver.originate(Originate(number="+79120000001", answer_timeout_s=10.0))
            await until(lambda: CallEventKind.answered in rec.kinds(call))
            await driver.hangup(call)
    finally:
        await carrier.stop()


async def test_a_phone_registers_and_answers_over_tls(tmp_path: Path) -> None:
    pki = await asyncio.to_thread(make_pki, tmp_path)
    carrier = await Sipp("carrier_answer", answer_params(answer_ms=50, talk_ms=1500), tmp_path).start()
    try:
        async with running([trunk(carrier.port)], tls_port=0, tls_cert_file=str(pki.cert),
                           tls_key_file=str(pki.key)) as (driver, rec):
            tls_address = driver.local_address("tls")
            assert tls_address[1] != driver.local_address()[1]
            phone = await Baresip(tmp_path, registrar=tls_address, login=LOGIN, password=PASSWORD,
                                  port=free_port(), transport="tls", certificate=pki.bundle,
                                  ca_file=pki.ca).start()
            try:
                await until(lambda: bool(driver.registrations()))
                [reg] = driver.registrations()
                assert reg.source.startswith("tls:127.0.0.1:") and "transport=tls" in reg.contact
                call = await driver.originate(Originate(number="+79120000001", answer_timeout_s=10.0))
                await until(lambda: CallEventKind.answered in rec.kinds(call))
                await driver.connect(call, LOGIN)
                await until(lambda: CallEventKind.connected in rec.kinds(call))
                await until(lambda: rec.kinds(call)[-1] == CallEventKind.hung_up)  # the customer hangs up
                assert rec.calls(call)[-1].side == Side.customer
                await until(lambda: "BYE sip:" in phone.output())
                assert "INVITE sip:" in phone.output() and "Via: SIP/2.0/TLS" in phone.output()
            finally:
                await phone.stop()
        assert await carrier.wait(10) == 0, carrier.errors()
    finally:
        await carrier.stop()
