"""The SIP driver with baresip 1.0 (Debian 12) as the operator's phone: registration with the digest algorithms the
device is offered, and a customer connected to the phone that answers by itself."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from dialer.telephony.base import CallEventKind, EndpointEvent, Originate, Side
from dialer.telephony.sip import DeviceAccount, SipTelephony
from tests.telephony.contract import Recorder
from tests.telephony.sip.baresip import Baresip, baresip_available
from tests.telephony.sip.harness import answer_params, settings, trunk
from tests.telephony.sip.sipp import Sipp, free_port, sipp_available
from tests.telephony.sip.test_transfers import reinvites

pytestmark = pytest.mark.skipif(not (baresip_available() and sipp_available()),
                                reason="baresip (baresip-core) and SIPp (sip-tester) are needed")

LOGIN, PASSWORD = "op-bs", "bare-secret"


async def until(check: Callable[[], bool], within: float = 15.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def with_phone(tmp_path: Path, algorithms: tuple[str, ...] | None, trunks: list[object] | None = None,
                     **overrides: object) -> AsyncIterator[tuple[SipTelephony, Recorder, Baresip]]:
    account = DeviceAccount(LOGIN, PASSWORD, operator_id=1, digest_algorithms=algorithms)

    async def accounts(login: str) -> DeviceAccount | None:
        return account if login == LOGIN else None

    driver = SipTelephony(settings(**overrides), trunks or [], accounts)  # type: ignore[arg-type]
    await driver.start()
    rec = Recorder(driver)
    phone = await Baresip(tmp_path, registrar=driver.local_address(), login=LOGIN, password=PASSWORD,
                          port=free_port()).start()
    try:
        yield driver, rec, phone
    finally:
        await phone.stop()
        await driver.close()
        await rec.stop()


async def test_baresip_gives_up_when_sha256_is_offered(tmp_path: Path) -> None:
    """The defect: baresip 1.0 answers a 401 that offers SHA-256 (beside MD5) with nothing at all."""
    async with with_phone(tmp_path, ("SHA-256", "MD5")) as (driver, _, phone):
        await until(lambda: "Register: Function not implemented" in phone.output())
        assert driver.registrations() == []
        assert phone.sent(r"REGISTER sip:") == 1  # it never tried to answer the challenge


async def test_baresip_registers_when_its_device_offers_md5(tmp_path: Path) -> None:
    async with with_phone(tmp_path, ("MD5",)) as (driver, rec, phone):
        await until(lambda: [r.login for r in driver.registrations()] == [LOGIN])
        [reg] = driver.registrations()
        assert reg.user_agent.startswith("baresip") and reg.reachable
        assert "algorithm=SHA-256" not in phone.output()
        assert rec.endpoint_kinds(LOGIN) == ["registered"]


async def test_baresip_answers_a_customer_connected_to_it(tmp_path: Path) -> None:
    carrier = await Sipp("carrier_answer", answer_params(answer_ms=50, talk_ms=3000), tmp_path).start()
    try:
        async with with_phone(tmp_path, ("MD5",), [trunk(carrier.port)]) as (driver, rec, phone):
            await until(lambda: bool(driver.registrations()))
            call = await driver.originate(Originate(number="+79120000001", caller_id="+74950000000",
                                                    answer_timeout_s=10.0))
            await until(lambda: CallEventKind.answered in rec.kinds(call))
            await driver.connect(call, LOGIN)
            await until(lambda: CallEventKind.connected in rec.kinds(call))
            assert rec.endpoint_kinds(LOGIN)[-1] == "answered"
            # the carrier hangs up after its talk time; the phone gets our BYE
            await until(lambda: rec.kinds(call)[-1] == CallEventKind.hung_up)
            assert rec.calls(call)[-1].side == Side.customer
            await until(lambda: "BYE sip:" in phone.output() and "SIP/2.0 200 OK" in phone.output())
            assert await carrier.wait(10) == 0, carrier.errors()
    finally:
        await carrier.stop()


async def test_a_phone_that_dies_mid_call_is_reported_lost_and_the_customer_waits_again(tmp_path: Path) -> None:
    """The defect: a phone killed mid-call left the customer on dead air for 90 s with no BYE to the carrier. Now the
    in-dialog OPTIONS of the conversation goes unanswered: within ping + timeout the phone is reported unreachable,
    its leg ``hung_up`` with ``phone_lost``, and the customer is not hung up on but re-INVITEd onto the dialer's own
    media (hold audio), waiting to be offered to another operator."""
    carrier = await Sipp("carrier_transfer", {"busy_user": "0", "busy_ms": 0, "answer_ms": 50,
                                              "rtp_port": free_port(), "wait_ms": 60000},
                         tmp_path, extra=["-trace_msg"]).start()
    try:
        async with with_phone(tmp_path, ("MD5",), [trunk(carrier.port)], device_ping_s=1.0,
                              device_timeout_s=1.0, hold_audio_dir=str(tmp_path)) as (driver, rec, phone):
            await until(lambda: bool(driver.registrations()))
            call = await driver.originate(Originate(number="+79120000001", answer_timeout_s=10.0))
            await until(lambda: CallEventKind.answered in rec.kinds(call))
            await driver.play(call, "hold-music")
            await driver.connect(call, LOGIN)
            await until(lambda: CallEventKind.connected in rec.kinds(call))
            await driver.play(call, None)  # as the engine does once connected
            await asyncio.sleep(2.5)  # in-dialog OPTIONS answered meanwhile: the call goes on
            assert rec.kinds(call)[-1] == CallEventKind.connected
            assert phone.sent(r"SIP/2\.0 200 OK") >= 2
            await phone.kill()
            killed = time.monotonic()
            await until(lambda: any(isinstance(e, EndpointEvent) and e.phone_lost for e in rec.events), within=10)
            assert time.monotonic() - killed < 4.5  # ping interval + timeout, not minutes
            [lost] = [e for e in rec.events if isinstance(e, EndpointEvent) and e.kind.value == "hung_up"]
            assert lost.call_id == call and lost.endpoint == LOGIN and "stopped answering" in lost.detail
            assert not lost.offer_failed
            assert "unreachable" in rec.endpoint_kinds(LOGIN)
            [reg] = driver.registrations()
            assert not reg.reachable
            ours = f"m=audio {driver.settings.rtp_port_min}"
            await until(lambda: reinvites(carrier)[-1:] == [ours])  # back on our media, not a BYE
            assert rec.kinds(call)[-1] == CallEventKind.connected  # no hung_up: the customer is waiting
            await until(lambda: driver._calls[call].player is not None)  # the hold audio he heard before
            await driver.hangup(call)
            await until(lambda: rec.kinds(call)[-1] == CallEventKind.hung_up)
            assert rec.calls(call)[-1].side == Side.dialer
            assert await carrier.wait(10) == 0, carrier.errors()  # re-INVITEs answered, then our BYE
    finally:
        await carrier.stop()


async def test_an_offer_to_a_dead_phone_fails_fast_and_reports_it_unreachable(tmp_path: Path) -> None:
    carrier = await Sipp("carrier_answer", answer_params(answer_ms=50, talk_ms=60000), tmp_path).start()
    try:
        async with with_phone(tmp_path, ("MD5",), [trunk(carrier.port)], device_timeout_s=1.0,
                              operator_answer_timeout_s=20.0) as (driver, rec, phone):
            await until(lambda: bool(driver.registrations()))
            await phone.kill()
            call = await driver.originate(Originate(number="+79120000001", answer_timeout_s=10.0))
            await until(lambda: CallEventKind.answered in rec.kinds(call))
            offered = time.monotonic()
            await driver.connect(call, LOGIN)
            await until(lambda: "hung_up" in rec.endpoint_kinds(LOGIN), within=10)
            assert time.monotonic() - offered < 4  # not the 20 s ring time
            failed = [e for e in rec.events if getattr(e, "endpoint", None) == LOGIN][-1]
            assert failed.offer_failed and failed.call_id == call and "does not respond" in failed.detail
            assert rec.endpoint_kinds(LOGIN)[-2:] == ["unreachable", "hung_up"]
            assert rec.kinds(call)[-1] == CallEventKind.answered  # the customer waits for another operator
            await driver.hangup(call)
            assert await carrier.wait(10) == 0, carrier.errors()
    finally:
        await carrier.stop()
