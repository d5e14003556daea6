"""The SIP driver against real SIPp carriers and phones on loopback: what crossed the wire is asserted from
SIPp's exit status (a scenario fails on any unexpected or missing message, and on its regexp checks) and
from its ``-trace_counts`` counters."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import math
import secrets
import socket
import struct
import time
import wave
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import cast
from xml.sax.saxutils import escape

import pytest

from dialer.telephony.base import (
    CallEvent,
    CallEventKind,
    EndpointEvent,
    EndpointEventKind,
    EndpointUnavailable,
    Originate,
    Side,
    TelephonyError,
    TrunkEvent,
    TrunkUnavailable,
    UnknownCall,
)
from dialer.telephony.sip import SipTelephony, TrunkConfig
from dialer.telephony.sip.auth import parse_digest
from dialer.telephony.sip.holdaudio import ringback
from dialer.telephony.sip.message import Message, new_tag
from dialer.telephony.sip.rtp import PT_PCMA, encode, resample
from tests.telephony.contract import Recorder
from tests.telephony.sip.harness import (
    LOGIN,
    accounts,
    answer_params,
    phone_params,
    register_phone,
    reply_params,
    settings,
    trunk,
)
from tests.telephony.sip.sipp import Sipp, free_port, sipp_available, stop_all

pytestmark = pytest.mark.skipif(not sipp_available(), reason="SIPp (sip-tester) is not installed")

CALL = Originate(number="+79120000001", caller_id="+74950000000", answer_timeout_s=10.0)


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


async def until(check: Callable[[], bool], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


def forgot_everything(driver: SipTelephony) -> bool:
    """No call, no dialog, no busy endpoint left behind."""
    return driver.live_calls() == 0 and not driver._legs and not driver._by_endpoint


def last(rec: Recorder, call: str) -> CallEvent:
    return rec.calls(call)[-1]


def finished(rec: Recorder, call: str) -> Callable[[], bool]:
    return lambda: bool(rec.calls(call)) and last(rec, call).kind not in (
        CallEventKind.trying, CallEventKind.ringing)


# --- outcomes ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("code", "reason", "kind", "cause"), [
    (486, "Busy Here", CallEventKind.busy, "486 Busy Here"),
    (603, "Decline", CallEventKind.rejected, "603 Decline"),
    (480, "Temporarily Unavailable", CallEventKind.no_answer, "480 Temporarily Unavailable"),
    (408, "Request Timeout", CallEventKind.no_answer, "408 Request Timeout"),
    (503, "Service Unavailable", CallEventKind.failed, "503 Service Unavailable"),
    (404, "Not Found", CallEventKind.failed, "invalid number: 404 Not Found"),
])
async def test_final_responses_map_to_outcomes(tmp_path: Path, code: int, reason: str, kind: CallEventKind,
                                               cause: str) -> None:
    carrier = await Sipp("carrier_reply", reply_params(code, reason, answer_ms=100), tmp_path).start()
    async with running([trunk(carrier.port)]) as (driver, rec):
        call = await driver.originate(CALL)
        assert await carrier.wait(5) == 0, carrier.errors()  # it got our ACK of its final response
        await until(finished(rec, call))
        kinds = rec.kinds(call)
        assert kinds == [CallEventKind.trying, CallEventKind.ringing, kind]
        assert (last(rec, call).code, last(rec, call).cause) == (code, cause)
        assert forgot_everything(driver)


async def test_redirect_is_not_followed_but_reported(tmp_path: Path) -> None:
    params = reply_params(302, "Moved Temporarily", answer_ms=50,
                          extra_headers="Contact: <sip:elsewhere@192.0.2.77:5060>\n")
    carrier = await Sipp("carrier_reply", params, tmp_path).start()
    async with running([trunk(carrier.port)]) as (driver, rec):
        call = await driver.originate(CALL)
        assert await carrier.wait(5) == 0, carrier.errors()
        await until(finished(rec, call))
        event = last(rec, call)
        assert event.kind == CallEventKind.failed and event.code == 302
        assert "sip:elsewhere@192.0.2.77:5060" in event.cause
    assert carrier.total("INVITE", "Recv") == 1  # and nobody INVITEd the other address


async def test_answer_after_delay_then_dialer_hangs_up(tmp_path: Path) -> None:
    carrier = await Sipp("carrier_answer", answer_params(answer_ms=700), tmp_path).start()
    async with running([trunk(carrier.port)]) as (driver, rec):
        started = time.monotonic()
        call = await driver.originate(CALL)
        await until(lambda: CallEventKind.answered in rec.kinds(call))
        assert 0.6 < time.monotonic() - started < 2.0
        answered = last(rec, call)
        assert answered.code == 200 and answered.answered_by is not None
        await driver.hangup(call, "campaign stopped")
        assert await carrier.wait(5) == 0, carrier.errors()
        ended = last(rec, call)
        assert ended.kind == CallEventKind.hung_up and ended.side == Side.dialer and ended.cause == "campaign stopped"
    assert carrier.total("BYE", "Recv") == 1 and carrier.total("ACK", "Recv") == 1


async def test_customer_hangs_up_while_waiting(tmp_path: Path) -> None:
    carrier = await Sipp("carrier_answer", answer_params(answer_ms=100, wait_ms=500), tmp_path).start()
    async with running([trunk(carrier.port)]) as (driver, rec):
        call = await driver.originate(CALL)
        assert await carrier.wait(5) == 0, carrier.errors()  # its BYE was answered 200
        await until(lambda: last(rec, call).kind == CallEventKind.hung_up)
        assert last(rec, call).side == Side.customer
        assert carrier.total("BYE", "Sent") == 1 and carrier.total("200", "Recv") == 1


@pytest.mark.parametrize("on_cancel", [487, 200])
async def test_cancel_while_ringing_and_200_crossing_the_cancel(tmp_path: Path, on_cancel: int) -> None:
    carrier = await Sipp("carrier_ring", {"on_cancel": on_cancel}, tmp_path).start()
    async with running([trunk(carrier.port)]) as (driver, rec):
        call = await driver.originate(Originate(number="+79120000001", answer_timeout_s=0.5))
        # ring timeout → CANCEL; with 487: ACK; with a crossing 200: ACK and BYE — else the scenario fails
        assert await carrier.wait(5) == 0, carrier.errors()
        await until(lambda: forgot_everything(driver))
        if on_cancel == 487:
            assert rec.kinds(call) == [CallEventKind.trying, CallEventKind.ringing, CallEventKind.no_answer]
            assert last(rec, call).cause == "ring timeout (0.5 s)" and last(rec, call).code == 487
        else:
            # someone answered as we gave up, and was hung up on: answered, then hung up by the dialer — an
            # answered call nobody talked to (abandoned for the engine), not a ring timeout
            assert rec.kinds(call) == [CallEventKind.trying, CallEventKind.ringing, CallEventKind.answered,
                                       CallEventKind.hung_up]
            assert last(rec, call).side == Side.dialer
            assert last(rec, call).cause == "answered as the dialer cancelled (ring timeout (0.5 s)): hung up"
    assert carrier.total("CANCEL", "Recv") == 1
    if on_cancel == 200:
        assert carrier.total("BYE", "Recv") == 1


async def test_a_silent_trunk_at_the_ring_timeout_is_an_error_not_no_answer(tmp_path: Path) -> None:
    """The defect: a trunk that sends nothing at all (not even 100 Trying) was recorded as no_answer when the ring
    timeout came before timer B (always, with the usual 30 s). Nothing can be CANCELled (§9.1): it is a trunk error."""
    carrier = await Sipp("carrier_silent", {"silent_ms": 3000}, tmp_path).start()
    async with running([trunk(carrier.port)]) as (driver, rec):
        call = await driver.originate(Originate(number="+79120000001", answer_timeout_s=1.0))
        await until(finished(rec, call), within=4)
        assert last(rec, call).kind == CallEventKind.failed
        assert last(rec, call).cause == "no response from the trunk within the ring timeout (1 s)"
        assert await carrier.wait(6) == 0
    assert carrier.total("CANCEL", "Recv") == 0


@pytest.mark.slow
async def test_no_response_at_all_fails_after_timer_b(tmp_path: Path) -> None:
    carrier = await Sipp("carrier_silent", {"silent_ms": 4000}, tmp_path).start()
    async with running([trunk(carrier.port)], t1_s=0.05) as (driver, rec):
        started = time.monotonic()
        call = await driver.originate(CALL)
        await until(finished(rec, call), within=6)
        assert 3.0 < time.monotonic() - started < 4.5  # timer B = 64·T1
        assert last(rec, call).kind == CallEventKind.failed and last(rec, call).cause == "no response from the trunk"
        assert await carrier.wait(6) == 0
    assert carrier.total("INVITE", "Retrans") >= 5  # timer A doubled from 50 ms: 50, 100, 200, 400, 800, 1600


# --- authentication ---------------------------------------------------------------------------------------------
PROXY_AUTHORIZATION = ('Digest username="acct", realm="carrier.example", nonce="[^"]+", uri="sip:[^"]+", '
                       'response="[0-9a-f]{32}", algorithm=MD5, qop=auth, nc=00000001, cnonce="[0-9a-f]+"')


def sipp_auth_params(code: int) -> dict[str, object]:
    def check(var: str) -> str:
        if code == 401:  # SIPp recomputes the digest
            return f'<verifyauth assign_to="{var}" username="acct" password="pa55"/>'
        # SIPp cannot verify Proxy-Authorization: its shape is checked here, its hash by DigestUas below
        return (f'<ereg regexp="{escape(PROXY_AUTHORIZATION, {chr(34): "&quot;"})}" search_in="hdr" '
                f'header="Proxy-Authorization:" check_it="true" assign_to="{var}"/>')

    header = "WWW-Authenticate" if code == 401 else "Proxy-Authenticate"
    reason = "Unauthorized" if code == 401 else "Proxy Authentication Required"
    return {"code": code, "reason": reason, "challenge_header": header, "nonce": secrets.token_hex(4),
            "verify_invite": check("invite_ok"), "verify_bye": check("bye_ok")}


@pytest.mark.parametrize("code", [401, 407])
async def test_digest_challenge_on_invite_and_bye_checked_by_sipp(tmp_path: Path, code: int) -> None:
    carrier = await Sipp("carrier_auth", sipp_auth_params(code), tmp_path).start()
    async with running([trunk(carrier.port, username="acct", password="pa55")]) as (driver, rec):
        call = await driver.originate(CALL)
        await until(lambda: CallEventKind.answered in rec.kinds(call))
        await driver.hangup(call)
        assert await carrier.wait(5) == 0, carrier.errors()  # SIPp checked both answers
    assert carrier.total("INVITE", "Recv") == 2 and carrier.total("BYE", "Recv") == 2


async def test_wrong_realm_is_not_answered(tmp_path: Path) -> None:
    carrier = await Sipp("carrier_auth", sipp_auth_params(401), tmp_path).start()
    config = trunk(carrier.port, username="acct", password="pa55", realm="my-carrier.example")
    async with running([config]) as (driver, rec):
        call = await driver.originate(CALL)
        await until(finished(rec, call))
        assert last(rec, call).kind == CallEventKind.failed and last(rec, call).code == 401
    await carrier.stop()
    assert carrier.total("INVITE", "Recv") <= 1


class DigestUas(asyncio.DatagramProtocol):
    """A carrier that challenges INVITE and BYE with 401 or 407 and MD5 or SHA-256 (SIPp 3.6 verifies only
    MD5 ``Authorization``), and checks the answers with hashlib itself."""

    def __init__(self, user: str, password: str, code: int, algorithm: str) -> None:
        self.user, self.password, self.code, self.algorithm = user, password, code, algorithm
        self.transport: asyncio.DatagramTransport | None = None
        self.nonce = secrets.token_hex(8)
        self.accepted: list[str] = []
        self.seen: list[str] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def _check(self, msg: Message) -> bool:
        value = msg.get("Authorization" if self.code == 401 else "Proxy-Authorization")
        if value is None:
            return False
        auth = parse_digest(value)

        def h(text: str) -> str:
            return hashlib.new(self.algorithm.replace("-", "").lower(), text.encode()).hexdigest()

        ha1 = h(f"{self.user}:carrier:{self.password}")
        ha2 = h(f"{msg.method}:{auth['uri']}")
        expected = h(f"{ha1}:{self.nonce}:{auth['nc']}:{auth['cnonce']}:auth:{ha2}")
        return auth.get("algorithm") == self.algorithm and auth["response"] == expected

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        msg = Message.parse(data)
        assert self.transport is not None
        self.seen.append(msg.method or str(msg.status))
        if msg.method == "ACK":
            return
        if msg.method in ("INVITE", "BYE") and not self._check(msg):
            challenge = f'Digest realm="carrier", nonce="{self.nonce}", algorithm={self.algorithm}, qop="auth"'
            header = "WWW-Authenticate" if self.code == 401 else "Proxy-Authenticate"
            self.transport.sendto(msg.response(self.code, to_tag=new_tag(), headers=[(header, challenge)]).encode(),
                                  addr)
            return
        self.accepted.append(msg.method or "")
        headers = [("Contact", f"<sip:carrier@127.0.0.1:{self.transport.get_extra_info('sockname')[1]}>")]
        self.transport.sendto(msg.response(200, to_tag="uas1", headers=headers).encode(), addr)


@pytest.mark.parametrize(("code", "algorithm"), [(407, "MD5"), (401, "SHA-256"), (407, "SHA-256")])
async def test_digest_challenges_checked_in_python(code: int, algorithm: str) -> None:
    loop = asyncio.get_running_loop()
    port = free_port()
    transport, uas = await loop.create_datagram_endpoint(lambda: DigestUas("acct", "pa55", code, algorithm),
                                                         local_addr=("127.0.0.1", port))
    try:
        async with running([trunk(port, username="acct", password="pa55")]) as (driver, rec):
            call = await driver.originate(CALL)
            await until(lambda: CallEventKind.answered in rec.kinds(call))
            await driver.hangup(call)
            await until(lambda: "BYE" in uas.accepted)
        assert uas.accepted == ["INVITE", "BYE"]
        assert uas.seen.count("INVITE") == 2 and uas.seen.count("BYE") == 2
    finally:
        transport.close()


async def test_record_route_is_followed(tmp_path: Path) -> None:
    # the 200 names a Contact where nobody listens; the Record-Route (SIPp itself) must carry the BYE
    params = answer_params(answer_ms=50, record_route="Record-Route: <sip:127.0.0.1:[local_port];lr;ftag=rr1>\n",
                           contact_hostport="127.0.0.1:9",
                           bye_regexp=escape("^BYE sip:carrier@127.0.0.1:9;transport=UDP SIP/2.0.*"
                                             "Route: <sip:127.0.0.1:[0-9]+;lr;ftag=rr1>"))
    carrier = await Sipp("carrier_answer", params, tmp_path).start()
    async with running([trunk(carrier.port)]) as (driver, rec):
        call = await driver.originate(CALL)
        await until(lambda: CallEventKind.answered in rec.kinds(call))
        await driver.hangup(call)
        assert await carrier.wait(5) == 0, carrier.errors()
    assert carrier.total("BYE", "Recv") == 1


# --- trunks -----------------------------------------------------------------------------------------------------
async def test_trunk_down_when_options_go_unanswered(tmp_path: Path) -> None:
    carrier = await Sipp("carrier_silent", {"silent_ms": 60000}, tmp_path).start()  # -aa answers OPTIONS
    config = trunk(carrier.port, options_interval_s=0.2, options_timeout_s=0.5)
    async with running([config]) as (driver, rec):
        trunk_events = lambda: [e for e in rec.events if isinstance(e, TrunkEvent)]  # noqa: E731
        await until(lambda: bool(trunk_events()))
        assert trunk_events()[0].up and trunk_events()[0].trunk_id == 1
        await carrier.stop()
        await until(lambda: not trunk_events()[-1].up, within=3)
        assert "no answer to OPTIONS" in trunk_events()[-1].detail
        with pytest.raises(TrunkUnavailable, match="down"):
            await driver.originate(CALL)
        # it comes back
        await driver.set_trunks([trunk(free_port(), options_interval_s=0)])
        assert driver.trunk_states() == {1: True}


async def test_trunk_limits_and_pinning() -> None:
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))  # a carrier that swallows everything
    port = sink.getsockname()[1]
    try:
        limited = trunk(port, max_concurrent=2)
        paced = TrunkConfig(id=2, name="paced", host="127.0.0.1", port=port, calls_per_second=2,
                            options_interval_s=0)
        async with running([limited, paced]) as (driver, _rec):
            await driver.originate(CALL)
            await driver.originate(CALL)
            third = await driver.originate(CALL)  # trunk 1 is full: trunk 2 takes it
            assert driver._calls[third].trunk.config.id == 2
            await driver.originate(CALL)
            with pytest.raises(TrunkUnavailable, match=r"sipp: 2 calls, the limit; paced: over 2 calls/s"):
                await driver.originate(CALL)
            await asyncio.sleep(0.55)
            await driver.originate(Originate(number="+7912", variables={"trunk_id": "2"}))
            with pytest.raises(TrunkUnavailable, match="no trunk 9"):
                await driver.originate(Originate(number="+7912", variables={"trunk_id": "9"}))
            with pytest.raises(TrunkUnavailable, match="sipp: 2 calls"):
                await driver.originate(Originate(number="+7912", variables={"trunk_id": "1"}))
            assert driver.live_calls() == 5
    finally:
        sink.close()


async def test_tcp_trunk(tmp_path: Path) -> None:
    carrier = await Sipp("carrier_answer", answer_params(answer_ms=50), tmp_path, extra=["-t", "t1"]).start()
    async with running([trunk(carrier.port, transport="tcp")]) as (driver, rec):
        call = await driver.originate(CALL)
        await until(lambda: CallEventKind.answered in rec.kinds(call))
        await driver.hangup(call)
        assert await carrier.wait(5) == 0, carrier.errors()
    assert carrier.total("BYE", "Recv") == 1


# --- phones -----------------------------------------------------------------------------------------------------
async def test_register_with_digest_and_unregister(tmp_path: Path) -> None:
    async with running([]) as (driver, rec):
        await register_phone(driver, tmp_path, 5999, expires=120)
        [reg] = driver.registrations()
        assert (reg.login, reg.contact, reg.user_agent, reg.reachable) == (LOGIN, "sip:op-1@127.0.0.1:5999",
                                                                          "SIPp phone", True)
        assert reg.source.startswith("udp:127.0.0.1:")
        assert 115 < (reg.expires_at - reg.last_seen).total_seconds() <= 120
        await register_phone(driver, tmp_path, 5999, password="wrong", expect=403)
        await register_phone(driver, tmp_path, 5999, expires=0)
        assert driver.registrations() == []
        await until(lambda: rec.endpoint_kinds(LOGIN) == ["registered", "unregistered"])
        await register_phone(driver, tmp_path, 5999, login="nobody", password="x", expect=403)
        assert driver.registrations() == []


async def test_a_registration_refresh_is_reported_with_its_new_expiry(tmp_path: Path) -> None:
    """The defect: a refresh changed nothing the engine saw, so sip_registrations.expires_at kept the first expiry."""
    async with running([]) as (driver, rec):
        await register_phone(driver, tmp_path, 5999, expires=60)
        first = driver.registrations()[0].expires_at
        await asyncio.sleep(1.1)
        await register_phone(driver, tmp_path, 5999, expires=600)
        [reg] = driver.registrations()
        assert (reg.expires_at - first).total_seconds() > 500
        await until(lambda: rec.endpoint_kinds(LOGIN) == ["registered", "registered"])
        refresh = [e for e in rec.events if isinstance(e, EndpointEvent)][-1]
        assert refresh.detail.startswith("refreshed: ")


async def test_register_with_transport_parameter_in_the_digest_uri(tmp_path: Path) -> None:
    """A phone configured with ``;transport=udp`` (as docs/sip.md shows for baresip) sends
    ``uri="sip:host:port;transport=udp"`` in its digest: the quoted ``;`` belongs to the uri (it used to get 403)."""
    async with running([]) as (driver, _):
        await register_phone(driver, tmp_path, 5999, ruri_params=";transport=udp")
        assert [r.login for r in driver.registrations()] == [LOGIN]
        await register_phone(driver, tmp_path, 5999, ruri_params=";transport=udp", password="wrong", expect=403)


@pytest.mark.slow
async def test_phone_that_stops_answering_options_is_reported(tmp_path: Path) -> None:
    phone = await Sipp("phone_answer", phone_params(), tmp_path).start()
    async with running([], device_ping_s=0.2, device_timeout_s=0.4) as (driver, rec):
        await register_phone(driver, tmp_path, phone.port)
        first_seen = driver.registrations()[0].last_seen
        await until(lambda: driver.registrations()[0].last_seen > first_seen)  # its OPTIONS answered
        await phone.stop()
        await until(lambda: "unreachable" in rec.endpoint_kinds(LOGIN), within=2)
        assert driver.registrations()[0].reachable is False
        carrier = await Sipp("carrier_answer", answer_params(answer_ms=50), tmp_path).start()
        await driver.set_trunks([trunk(carrier.port)])
        call = await driver.originate(CALL)
        await until(lambda: CallEventKind.answered in rec.kinds(call))
        with pytest.raises(EndpointUnavailable, match="does not answer"):
            await driver.connect(call, LOGIN)
        await driver.hangup(call)
        await carrier.stop()


FLOWS = {
    # carrier re-INVITE/ACK and phone INVITE/ACK must carry the descriptions of RFC 3725 flow I ...
    "flow1": lambda c, p: ({"reinvite_regexp": f"m=audio {p} ", "ack_regexp": "Content-Length: 0"},
                           {"invite_regexp": escape("Call-Info: <[^>]+>;answer-after=0.*Content-Length: 0"),
                            "ack_regexp": f"m=audio {c} "}),
    # ... and of the delayed-offer variant
    "delayed_offer": lambda c, p: ({"reinvite_regexp": "Content-Length: 0", "ack_regexp": f"m=audio {p} "},
                                   {"invite_regexp": f"Alert-Info: .*m=audio {c} ", "ack_regexp": "Content-Length: 0"}),
}


@pytest.mark.parametrize("flow", list(FLOWS))
async def test_third_party_call_control_then_operator_hangs_up(tmp_path: Path, flow: str) -> None:
    carrier_rtp, phone_rtp = free_port(), free_port()
    carrier_checks, phone_checks = FLOWS[flow](carrier_rtp, phone_rtp)
    carrier = await Sipp("carrier_answer", answer_params(answer_ms=50, rtp_port=carrier_rtp, **carrier_checks),
                         tmp_path).start()
    phone = await Sipp("phone_answer", phone_params(rtp_port=phone_rtp, talk_ms=800, **phone_checks),
                       tmp_path).start()
    async with running([trunk(carrier.port, connect_flow=flow)]) as (driver, rec):
        await register_phone(driver, tmp_path, phone.port)
        call = await driver.originate(CALL)
        await until(lambda: CallEventKind.answered in rec.kinds(call))
        await driver.connect(call, LOGIN)
        with pytest.raises(UnknownCall, match="not waiting"):
            await driver.connect(call, LOGIN)
        await until(lambda: CallEventKind.connected in rec.kinds(call))
        assert last(rec, call).endpoint == LOGIN
        await until(lambda: last(rec, call).kind == CallEventKind.hung_up, within=3)
        assert last(rec, call).side == Side.operator
        assert rec.endpoint_kinds(LOGIN) == ["registered", "ringing", "answered", "hung_up"]
        assert await phone.wait(5) == 0, phone.errors()
        assert await carrier.wait(5) == 0, carrier.errors()  # it got the re-INVITE, the ACK and our BYE
        assert forgot_everything(driver)
    assert carrier.total("INVITE", "Recv") == 2 and carrier.total("BYE", "Recv") == 1


async def test_connect_fails_cleanly_when_the_phone_refuses(tmp_path: Path) -> None:
    carrier = await Sipp("carrier_answer", answer_params(answer_ms=50), tmp_path).start()
    phone = await Sipp("carrier_reply", reply_params(486, "Busy Here", answer_ms=50), tmp_path).start()
    async with running([trunk(carrier.port)]) as (driver, rec):
        await register_phone(driver, tmp_path, phone.port)
        call = await driver.originate(CALL)
        await until(lambda: CallEventKind.answered in rec.kinds(call))
        await driver.connect(call, LOGIN)
        await until(lambda: rec.endpoint_kinds(LOGIN)[-1] == "hung_up")
        hung = [e for e in rec.events if isinstance(e, EndpointEvent) and e.kind == EndpointEventKind.hung_up]
        assert hung[-1].detail == "486 Busy Here"
        assert rec.kinds(call)[-1] == CallEventKind.answered  # the customer still waits for an operator
        assert await phone.wait(5) == 0, phone.errors()
        await driver.hangup(call)
        assert await carrier.wait(5) == 0, carrier.errors()
        assert forgot_everything(driver)


async def test_a_failed_offer_is_reported_as_such_and_the_customer_hears_ringback_meanwhile(tmp_path: Path) -> None:
    """While the operator's phone rings the customer hears the ringback tone (never silence); a phone that refuses
    or does not answer in its ring time ends the offer with ``hung_up`` marked ``offer_failed`` for that call, and
    the hold audio he heard before comes back."""
    loop = asyncio.get_running_loop()
    rtp_port = free_port()
    transport, counter = await loop.create_datagram_endpoint(RtpCounter, local_addr=("127.0.0.1", rtp_port))
    carrier = await Sipp("carrier_answer", answer_params(answer_ms=50, rtp_port=rtp_port), tmp_path).start()
    deaf = await Sipp("carrier_ring", {"on_cancel": 487}, tmp_path).start()  # rings until CANCELled
    refuser = await Sipp("carrier_reply", reply_params(486, "Busy Here", answer_ms=600), tmp_path).start()
    try:
        async with running([trunk(carrier.port)], hold_audio_dir=str(tmp_path),
                           operator_answer_timeout_s=1.5) as (driver, rec):
            call = await driver.originate(CALL)
            await until(lambda: CallEventKind.answered in rec.kinds(call))
            await driver.play(call, "hold-music")  # the generated default
            await asyncio.sleep(0.3)
            for phone, detail in ((deaf, "the phone did not answer"), (refuser, "486 Busy Here")):
                await register_phone(driver, tmp_path, phone.port)
                before = len(counter.packets)
                await driver.connect(call, LOGIN)
                await driver.play(call, None)  # what the engine does after connect: the ringback goes on
                await until(lambda n=before: len(counter.packets) > n + 10)
                tone = ringback(PT_PCMA)
                chunks = {tone[i:i + 160] for i in range(0, len(tone), 160)}
                heard = [p[12:] in chunks for _, p in counter.packets[before:]]
                assert heard[-5:] == [True] * 5, "no ringback heard"
                await until(lambda: rec.endpoint_kinds(LOGIN)[-1] == "hung_up", within=5)
                failed = [e for e in rec.events if isinstance(e, EndpointEvent)][-1]
                assert (failed.detail, failed.call_id, failed.offer_failed) == (detail, call, True)
                assert rec.kinds(call)[-1] == CallEventKind.answered  # he waits again
                before = len(counter.packets)
                await until(lambda n=before: len(counter.packets) > n + 5)  # hold audio again
            await driver.hangup(call)
            assert await carrier.wait(5) == 0, carrier.errors()
            assert await deaf.wait(5) == 0, deaf.errors()  # CANCELled at its ring time: 487, ACK
            assert await refuser.wait(5) == 0, refuser.errors()
            assert forgot_everything(driver)
    finally:
        transport.close()
        await stop_all(carrier, deaf, refuser)


async def test_info_and_a_carrier_refer_are_refused_and_the_call_stays_up(tmp_path: Path) -> None:
    """The defect: REFER and INFO were answered 200 OK and dropped (a desk phone's blind transfer then hung up and
    lost the customer). Now: INFO 405 with an Allow not naming it, a REFER from the carrier's side 403 (transfers are
    taken from operators' phones: tests/telephony/sip/test_transfers.py), 501 for an unknown method; the call goes on
    until the customer's BYE."""
    carrier = await Sipp("carrier_refer", {"rtp_port": free_port()}, tmp_path).start()
    async with running([trunk(carrier.port)]) as (driver, rec):
        call = await driver.originate(CALL)
        await until(lambda: CallEventKind.answered in rec.kinds(call))
        assert await carrier.wait(10) == 0, carrier.errors()  # 405 with its Allow, 403 with its reason, 501
        await until(lambda: rec.kinds(call)[-1] == CallEventKind.hung_up)
        assert rec.calls(call)[-1].side == Side.customer  # the customer's BYE ended it, not the REFER
        assert forgot_everything(driver)


# --- hold audio -------------------------------------------------------------------------------------------------
class RtpCounter(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.packets: list[tuple[float, bytes]] = []

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.packets.append((time.monotonic(), data))


async def test_hold_music_is_sent_as_rtp(tmp_path: Path) -> None:
    samples = [int(12000 * math.sin(2 * math.pi * 440 * i / 16000)) for i in range(16000)]
    with wave.open(str(tmp_path / "hold.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(struct.pack(f"<{len(samples)}h", *samples))
    loop = asyncio.get_running_loop()
    rtp_port = free_port()
    transport, counter = await loop.create_datagram_endpoint(RtpCounter, local_addr=("127.0.0.1", rtp_port))
    carrier = await Sipp("carrier_answer", answer_params(answer_ms=50, rtp_port=rtp_port), tmp_path).start()
    try:
        async with running([trunk(carrier.port)], hold_audio_dir=str(tmp_path)) as (driver, rec):
            call = await driver.originate(CALL)
            await until(lambda: CallEventKind.answered in rec.kinds(call))
            with pytest.raises(TelephonyError, match="outside"):
                await driver.play(call, "../hold.wav")
            await driver.play(call, "hold")  # the name a campaign gives; .wav is added
            await asyncio.sleep(1.0)
            await driver.play(call, None)
            got = len(counter.packets)
            await asyncio.sleep(0.2)
            assert len(counter.packets) <= got + 1  # stopped
            assert 35 <= got <= 60  # 20 ms pacing for 1 s
            first, second = counter.packets[0][1], counter.packets[1][1]
            assert len(first) == 12 + 160 and first[0] == 0x80 and first[1] == 0x80 | PT_PCMA  # marker on first
            assert second[1] == PT_PCMA
            assert struct.unpack("!H", second[2:4])[0] == (struct.unpack("!H", first[2:4])[0] + 1) & 0xFFFF
            assert struct.unpack("!I", second[4:8])[0] - struct.unpack("!I", first[4:8])[0] == 160
            expected = encode(resample(samples, 16000), PT_PCMA)
            assert first[12:] == expected[:160] and second[12:] == expected[160:320]
            span = counter.packets[got - 1][0] - counter.packets[0][0]
            assert abs(span - (got - 1) * 0.02) < 0.25  # paced, not sent in a burst
            await driver.hangup(call)
            assert await carrier.wait(5) == 0, carrier.errors()
    finally:
        transport.close()


async def test_phone_registered_through_an_edge_proxy_is_reached_through_its_path(tmp_path: Path) -> None:
    # the Contact names a dead port; the Path (RFC 3327, as Kamailio's add_path_received writes it) is the way in
    carrier = await Sipp("carrier_answer", answer_params(answer_ms=50), tmp_path).start()
    phone_port = free_port()
    route = f"<sip:127.0.0.1:{phone_port};lr>"
    checks = phone_params(invite_regexp=escape(f"^INVITE sip:op-1@127.0.0.1:9 .*Route: {route}"))
    phone = await Sipp("phone_answer", checks, tmp_path, port=phone_port).start()
    async with running([trunk(carrier.port)]) as (driver, rec):
        await register_phone(driver, tmp_path, 9, path=route)
        call = await driver.originate(CALL)
        await until(lambda: CallEventKind.answered in rec.kinds(call))
        await driver.connect(call, LOGIN)
        await until(lambda: CallEventKind.connected in rec.kinds(call))
        await driver.hangup(call)
        assert await phone.wait(5) == 0, phone.errors()  # it got the INVITE (checked), the ACK and our BYE
        assert await carrier.wait(5) == 0, carrier.errors()


async def test_wrong_trunk_password_fails_without_looping() -> None:
    loop = asyncio.get_running_loop()
    port = free_port()
    transport, uas = await loop.create_datagram_endpoint(lambda: DigestUas("acct", "pa55", 407, "MD5"),
                                                         local_addr=("127.0.0.1", port))
    try:
        async with running([trunk(port, username="acct", password="wrong")]) as (driver, rec):
            call = await driver.originate(CALL)
            await until(finished(rec, call))
            assert last(rec, call).kind == CallEventKind.failed and last(rec, call).code == 407
            await asyncio.sleep(0.2)
        assert uas.seen.count("INVITE") == 2 and uas.accepted == []
    finally:
        transport.close()


async def test_registration_expires(tmp_path: Path) -> None:
    async with running([], min_expires_s=1) as (driver, rec):
        await register_phone(driver, tmp_path, 5999, expires=1)
        assert [r.login for r in driver.registrations()] == [LOGIN]
        await until(lambda: rec.endpoint_kinds(LOGIN) == ["registered", "unregistered"], within=3)
        assert driver.registrations() == []
        unregistered = [e for e in rec.events if isinstance(e, EndpointEvent)][-1]
        assert unregistered.detail == "registration expired"


async def test_phone_over_tcp(tmp_path: Path) -> None:
    carrier = await Sipp("carrier_answer", answer_params(answer_ms=50), tmp_path).start()
    phone = await Sipp("phone_answer", phone_params(invite_regexp="^INVITE .*Via: SIP/2.0/TCP "), tmp_path,
                       extra=["-t", "t1"]).start()
    async with running([trunk(carrier.port)]) as (driver, rec):
        await register_phone(driver, tmp_path, phone.port, tcp=True)
        assert driver.registrations()[0].source.startswith("tcp:127.0.0.1:")
        call = await driver.originate(CALL)
        await until(lambda: CallEventKind.answered in rec.kinds(call))
        await driver.connect(call, LOGIN)
        await until(lambda: CallEventKind.connected in rec.kinds(call))
        await driver.hangup(call)
        assert await phone.wait(5) == 0, phone.errors()
        assert await carrier.wait(5) == 0, carrier.errors()


async def test_an_operator_busy_with_a_call_is_unavailable(tmp_path: Path) -> None:
    carrier = await Sipp("carrier_answer", answer_params(answer_ms=50), tmp_path, calls=2).start()
    phone = await Sipp("phone_answer", phone_params(), tmp_path).start()
    async with running([trunk(carrier.port)]) as (driver, rec):
        await register_phone(driver, tmp_path, phone.port)
        first, second = await driver.originate(CALL), await driver.originate(CALL)
        await until(lambda: CallEventKind.answered in rec.kinds(first) and CallEventKind.answered in rec.kinds(second))
        await driver.connect(first, LOGIN)
        with pytest.raises(EndpointUnavailable, match="busy"):
            await driver.connect(second, LOGIN)
        await until(lambda: CallEventKind.connected in rec.kinds(first))
        await driver.hangup(first)
        await until(lambda: rec.endpoint_kinds(LOGIN)[-1] == "hung_up")
        phone2 = await Sipp("phone_answer", phone_params(), tmp_path).start()  # the SIPp phone took one call
        await register_phone(driver, tmp_path, phone2.port)
        await driver.connect(second, LOGIN)  # free again
        await until(lambda: CallEventKind.connected in rec.kinds(second))
        await driver.hangup(second)
        assert await carrier.wait(5) == 0, carrier.errors()
        assert await phone.wait(5) == 0 and await phone2.wait(5) == 0
        assert forgot_everything(driver)


# --- registration with the carrier ------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_trunk_registers_refreshes_and_unregisters_checked_by_sipp(tmp_path: Path, transport: str) -> None:
    registrar = await Sipp("carrier_registrar", {"nonce": secrets.token_hex(4), "granted": 2}, tmp_path,
                           extra=["-t", "t1"] if transport == "tcp" else []).start()
    config = trunk(registrar.port, username="acct", password="pa55", registration=True, registration_expires_s=60,
                   transport=transport)
    async with running([config]) as (driver, rec):
        # Down until the carrier accepted the registration, then up: calls may go through it.
        await until(lambda: driver.trunk_states() == {1: True})
        states = [(e.up, e.detail) for e in rec.events if isinstance(e, TrunkEvent)]
        assert states == [(False, "registering"), (True, "registered for 2 s")]
        # The carrier granted 2 s: the dialer registers again after 1 s (answering a new challenge); the trunk
        # is stopped half-way to the refresh after that.
        await asyncio.sleep(1.5)
        assert driver.trunk_states() == {1: True}
    # Stopping removed the registration (Expires: 0); SIPp checked every digest and exits cleanly.
    assert await registrar.wait(5) == 0, registrar.errors()
    assert registrar.total("REGISTER", "Recv") == 6


async def test_trunk_refused_registration_takes_no_calls(tmp_path: Path) -> None:
    registrar = await Sipp("carrier_reply_register", {"code": 403, "reason": "Forbidden"}, tmp_path).start()
    config = trunk(registrar.port, username="acct", password="wrong", registration=True, registration_retry_s=60)
    async with running([config]) as (driver, _rec):
        await until(lambda: registrar.total("REGISTER", "Recv") >= 1)

        for _ in range(100):
            try:
                await driver.originate(CALL)
            except TrunkUnavailable as err:
                if "REGISTER answered 403 Forbidden" in str(err):
                    break
            await asyncio.sleep(0.02)
        else:
            pytest.fail("the trunk never said the carrier refused the registration")
        assert driver.trunk_states() == {1: False}
    assert await registrar.wait(5) == 0, registrar.errors()
