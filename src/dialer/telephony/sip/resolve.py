"""Where a trunk's host name leads: RFC 3263 §4 with dnspython — NAPTR, SRV (RFC 2782), then address records.

A trunk's ``dns_lookup`` chooses how far to go:

``a``
    the host's address (``getaddrinfo``) and the configured port — what a carrier that gives "host:port" expects;
``srv``
    the SRV records of the configured transport (``_sip._udp``, ``_sip._tcp``, ``_sips._tcp`` for TLS), ordered by
    priority and, within a priority, by a weighted random draw (RFC 2782); each target's addresses in turn. Without
    SRV records: the host's address and the configured port (RFC 3263 §4.2);
``naptr``
    the NAPTR records first (``SIP+D2U``, ``SIP+D2T``, ``SIPS+D2T`` with flag ``s``): the one for the configured
    transport with the lowest order and preference names the SRV name to use; without one, as ``srv``.

The configured transport stays authoritative: a NAPTR record for another transport is not followed (the dialer's
TLS settings, or a carrier's UDP-only firewall rules, are part of the trunk's configuration). The result is every
target in order, so that the driver can fail over to the next one when a trunk stops answering (RFC 3263 §4.3).
An IP address as the host needs no lookup.
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
import socket
from collections.abc import Sequence
from dataclasses import dataclass

import dns.asyncresolver
import dns.exception
import dns.rdatatype
import dns.resolver

#: SRV service names per transport (RFC 3263 §4.1, RFC 5630 for TLS).
SRV_PREFIX = {"udp": "_sip._udp", "tcp": "_sip._tcp", "tls": "_sips._tcp"}
#: NAPTR services per transport (RFC 3263 §4.1).
NAPTR_SERVICE = {"udp": "SIP+D2U", "tcp": "SIP+D2T", "tls": "SIPS+D2T"}
DEFAULT_PORT = {"udp": 5060, "tcp": 5060, "tls": 5061}


class ResolveError(Exception):
    """The host leads nowhere (no records, or the DNS does not answer)."""


@dataclass(frozen=True, slots=True)
class Target:
    """One address to send a trunk's requests to, and how it was found (for the trunk's state detail)."""

    transport: str
    host: str
    port: int
    via: str = ""


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def make_resolver(servers: Sequence[str] = (), timeout_s: float = 3.0) -> dns.asyncresolver.Resolver:
    """A resolver asking ``servers`` (``"ip"`` or ``"ip:port"``), or the system's (``/etc/resolv.conf``) when none."""
    resolver = dns.asyncresolver.Resolver(configure=not servers)
    if servers:
        addresses, ports = [], set()
        for server in servers:
            host, _, port = server.rpartition(":") if server.count(":") == 1 else (server, "", "")
            addresses.append(host)
            ports.add(int(port) if port else 53)
        if len(ports) > 1:
            raise ValueError("all DNS servers must listen on one port")
        resolver.nameservers = addresses
        resolver.port = ports.pop()
    resolver.lifetime = timeout_s
    return resolver


def srv_order(records: Sequence[tuple[int, int, int, str]], rng: random.Random | None = None) -> list[tuple[int, str]]:
    """``(priority, weight, port, target)`` records in the order RFC 2782 tries them: lower priority first; within
    one priority a draw weighted by ``weight`` (zero-weight records get a small chance), repeated without
    replacement. A target of ``.`` means "no service here" and is dropped."""
    rng = rng or random.Random()
    out: list[tuple[int, str]] = []
    for priority in sorted({r[0] for r in records}):
        group = [r for r in records if r[0] == priority and r[3] not in (".", "")]
        while group:
            total = sum(r[1] for r in group)
            if total == 0:
                pick = group[rng.randrange(len(group))]
            else:
                point = rng.uniform(0, total)
                running = 0
                pick = group[-1]
                for r in group:
                    running += r[1]
                    if running >= point:
                        pick = r
                        break
            group.remove(pick)
            out.append((pick[2], pick[3]))
    return out


async def _addresses(host: str, port: int, resolver: dns.asyncresolver.Resolver | None) -> list[str]:
    if _is_ip(host):
        return [host]
    if resolver is not None:
        found: list[str] = []
        for rdtype in ("A", "AAAA"):
            try:
                answer = await resolver.resolve(host, rdtype)
            except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer, dns.resolver.NoNameservers):
                continue
            found += [r.to_text() for r in answer]
        if found:
            return found
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    except OSError as err:
        raise ResolveError(f"cannot resolve {host}: {err}") from err
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


async def _srv(name: str, transport: str, resolver: dns.asyncresolver.Resolver,
               rng: random.Random | None) -> list[Target]:
    try:
        answer = await resolver.resolve(name, "SRV")
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return []
    records = [(r.priority, r.weight, r.port, r.target.to_text(omit_final_dot=True)) for r in answer]
    targets: list[Target] = []
    for port, target in srv_order(records, rng):
        try:
            addresses = await _addresses(target, port, resolver)
        except ResolveError:
            continue
        targets += [Target(transport, ip, port, f"SRV {name} → {target}:{port}") for ip in addresses]
    return targets


async def _naptr(host: str, transport: str, resolver: dns.asyncresolver.Resolver) -> str | None:
    """The SRV name the NAPTR records give for ``transport``, or None."""
    try:
        answer = await resolver.resolve(host, "NAPTR")
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return None
    wanted = NAPTR_SERVICE[transport]
    usable = [r for r in answer if r.flags.decode().lower() == "s" and r.service.decode().upper() == wanted]
    if not usable:
        return None
    best = min(usable, key=lambda r: (r.order, r.preference))
    return str(best.replacement.to_text(omit_final_dot=True))


async def resolve(host: str, port: int | None, transport: str, lookup: str = "a", *,
                  resolver: dns.asyncresolver.Resolver | None = None,
                  rng: random.Random | None = None) -> list[Target]:
    """Every target of a trunk, in the order to try them (see the module docstring). Raises ResolveError."""
    transport = transport.lower()
    fallback_port = port or DEFAULT_PORT.get(transport, 5060)
    if _is_ip(host) or lookup == "a":
        return [Target(transport, ip, fallback_port, "") for ip in await _addresses(host, fallback_port, None)]
    resolver = resolver or make_resolver()
    try:
        name = f"{SRV_PREFIX[transport]}.{host}"
        if lookup == "naptr":
            name = await _naptr(host, transport, resolver) or name
        targets = await _srv(name, transport, resolver, rng)
        if targets:
            return targets
        addresses = await _addresses(host, fallback_port, resolver)
    except (dns.exception.Timeout, dns.resolver.NoNameservers) as err:
        raise ResolveError(f"DNS does not answer for {host}: {err}") from err
    return [Target(transport, ip, fallback_port, f"no SRV for {host}: its address") for ip in addresses]
