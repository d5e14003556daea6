"""DNS resolution of trunks (RFC 3263, telephony/sip/resolve.py) against a small real DNS server the test starts on
loopback (dnspython builds its answers), and a call through a trunk found by SRV records that fails over from a
target that does not answer to the next one (a baresip carrier)."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import dns.flags
import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest

from dialer.telephony.base import CallEventKind, Originate
from dialer.telephony.sip import SipTelephony
from dialer.telephony.sip.resolve import ResolveError, Target, make_resolver, resolve, srv_order
from tests.telephony.contract import Recorder
from tests.telephony.sip.baresip import Baresip, baresip_available
from tests.telephony.sip.harness import accounts, settings, trunk
from tests.telephony.sip.sipp import free_port

Zone = dict[tuple[str, str], list[str]]


class DnsServer(asyncio.DatagramProtocol):
    """Answers queries from ``zone`` ((name, type) → rdata texts); NXDOMAIN for names it does not hold at all."""

    def __init__(self, zone: Zone) -> None:
        self.zone = zone
        self.queries: list[tuple[str, str]] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a datagram transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        query = dns.message.from_wire(data)
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        question = query.question[0]
        name = question.name.to_text(omit_final_dot=True).lower()
        rdtype = dns.rdatatype.to_text(question.rdtype)
        self.queries.append((name, rdtype))
        records = self.zone.get((name, rdtype))
        if records:
            response.answer.append(dns.rrset.from_text_list(question.name, 60, dns.rdataclass.IN, rdtype, records))
        elif not any(n == name for n, _ in self.zone):
            response.set_rcode(dns.rcode.NXDOMAIN)
        assert self.transport is not None
        self.transport.sendto(response.to_wire(), addr)


async def start_dns(zone: Zone) -> tuple[DnsServer, asyncio.DatagramTransport, str]:
    port = free_port()
    transport, server = await asyncio.get_running_loop().create_datagram_endpoint(
        lambda: DnsServer(zone), local_addr=("127.0.0.1", port))
    return server, transport, f"127.0.0.1:{port}"


@pytest.fixture
async def dns_zone() -> AsyncIterator[Callable[[Zone], object]]:
    """Start a DNS server for a zone: ``server, address = await start(zone)``; stopped at the end."""
    transports: list[asyncio.DatagramTransport] = []

    async def start(zone: Zone) -> tuple[DnsServer, str]:
        server, transport, address = await start_dns(zone)
        transports.append(transport)
        return server, address

    yield start
    for transport in transports:
        transport.close()


def test_srv_order_is_by_priority_then_weight() -> None:
    records = [(20, 0, 5070, "backup.example"), (10, 90, 5060, "a.example"), (10, 10, 5062, "b.example"),
               (10, 0, 5064, "."), (30, 5, 5080, "")]
    firsts = {srv_order(records, random.Random(seed))[0][1] for seed in range(200)}
    assert firsts == {"a.example", "b.example"}
    counts = sum(srv_order(records, random.Random(seed))[0][1] == "a.example" for seed in range(1000))
    assert 820 < counts < 970  # weight 90 of 100
    for seed in range(20):
        order = srv_order(records, random.Random(seed))
        assert order[-1] == (5070, "backup.example") and len(order) == 3  # "." and "" mean no service


async def test_srv_naptr_and_fallbacks(dns_zone: Callable[[Zone], object]) -> None:
    zone: Zone = {
        ("carrier.test", "NAPTR"): ['10 50 "s" "SIP+D2U" "" _sip._udp.sip.carrier.test.',
                                    '5 50 "s" "SIPS+D2T" "" _sips._tcp.carrier.test.'],
        ("_sip._udp.sip.carrier.test", "SRV"): ["10 0 5070 edge1.carrier.test.", "20 0 5080 edge2.carrier.test."],
        ("_sips._tcp.carrier.test", "SRV"): ["10 0 5061 tls.carrier.test."],
        ("edge1.carrier.test", "A"): ["192.0.2.11"],
        ("edge2.carrier.test", "A"): ["192.0.2.12", "192.0.2.13"],
        ("tls.carrier.test", "A"): ["192.0.2.20"],
        ("plain.test", "A"): ["192.0.2.30"],
    }
    server, address = await dns_zone(zone)  # type: ignore[misc]
    resolver = make_resolver([address])
    # NAPTR for the configured transport names the SRV name; SRV gives the targets in order
    targets = await resolve("carrier.test", 5060, "udp", "naptr", resolver=resolver)
    assert (targets[0].host, targets[0].port) == ("192.0.2.11", 5070)  # priority 10 first
    assert {(t.host, t.port) for t in targets[1:]} == {("192.0.2.12", 5080), ("192.0.2.13", 5080)}
    assert targets[0].via.startswith("SRV _sip._udp.sip.carrier.test")
    tls = await resolve("carrier.test", None, "tls", "naptr", resolver=resolver)
    assert tls == [Target("tls", "192.0.2.20", 5061, "SRV _sips._tcp.carrier.test → tls.carrier.test:5061")]
    # srv alone does not read NAPTR: _sip._udp.carrier.test has no records, so the host's address and port
    fallback = await resolve("plain.test", 5090, "udp", "srv", resolver=resolver)
    assert [(t.host, t.port) for t in fallback] == [("192.0.2.30", 5090)]
    assert ("_sip._udp.plain.test", "SRV") in server.queries
    # TCP without NAPTR records for it: SRV of _sip._tcp, then the address
    with pytest.raises(ResolveError):
        await resolve("nowhere.test", 5060, "tcp", "naptr", resolver=resolver)
    # an IP needs no lookup
    assert await resolve("192.0.2.1", 5060, "udp", "srv", resolver=resolver) == [Target("udp", "192.0.2.1", 5060)]


async def test_a_dns_server_that_does_not_answer_is_an_error() -> None:
    silent = await asyncio.get_running_loop().create_datagram_endpoint(asyncio.DatagramProtocol,
                                                                       local_addr=("127.0.0.1", free_port()))
    port = silent[0].get_extra_info("sockname")[1]
    try:
        with pytest.raises(ResolveError, match="DNS does not answer"):
            await resolve("carrier.test", 5060, "udp", "srv", resolver=make_resolver([f"127.0.0.1:{port}"], 0.5))
    finally:
        silent[0].close()


@pytest.mark.skipif(not baresip_available(), reason="baresip (baresip-core) is not installed")
async def test_a_trunk_found_by_srv_fails_over_to_the_target_that_answers(
        dns_zone: Callable[[Zone], object], tmp_path: Path) -> None:
    """The SRV records name a target that does not answer (priority 10) and a carrier that does (priority 20): the
    trunk's pings find the second and the call goes there. The carrier is baresip (SIPp would end its scenario at
    the first OPTIONS ping)."""
    carrier = await Baresip(tmp_path, registrar=None, login="79120000001", port=free_port()).start()
    dead = free_port()
    _, address = await dns_zone({  # type: ignore[misc]
        ("_sip._udp.carrier.test", "SRV"): [f"10 0 {dead} dead.carrier.test.",
                                           f"20 0 {carrier.port} live.carrier.test."],
        ("dead.carrier.test", "A"): ["127.0.0.1"], ("live.carrier.test", "A"): ["127.0.0.1"]})
    srv_trunk = trunk(5060, host="carrier.test", dns_lookup="srv", options_interval_s=1.0, options_timeout_s=0.5)
    driver = SipTelephony(settings(dns_servers=(address,)), [srv_trunk], accounts)
    await driver.start()
    rec = Recorder(driver)
    try:
        deadline = time.monotonic() + 15
        while not any(getattr(e, "up", False) for e in rec.events):
            assert time.monotonic() < deadline, rec.events
            await asyncio.sleep(0.05)
        up = next(e for e in rec.events if getattr(e, "up", False))
        assert "OPTIONS answered" in getattr(up, "detail", "")
        call = await driver.originate(Originate(number="+79120000001", answer_timeout_s=10.0))
        while CallEventKind.answered not in rec.kinds(call):
            assert time.monotonic() < deadline, rec.events
            await asyncio.sleep(0.05)
        await driver.hangup(call)
        assert f"INVITE sip:79120000001@carrier.test:{carrier.port} SIP/2.0" in carrier.output()
    finally:
        await driver.close()
        await rec.stop()
        await carrier.stop()
