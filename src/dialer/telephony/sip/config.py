"""Configuration of the SIP driver: trunks (carriers), operators' devices and the driver's own settings.

The database tables and the REST API map their rows onto these dataclasses; passwords are kept out of
``repr`` so that they never reach a log line.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: Digest algorithms the driver knows, in RFC 8760's order of preference (the strongest first).
DIGEST_ALGORITHMS: tuple[str, ...] = ("SHA-256", "MD5")


def digest_order(algorithms: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """``algorithms`` without repeats in RFC 8760's order (SHA-256 before MD5); unknown names raise ValueError."""
    wanted = {a.upper() for a in algorithms}
    unknown = wanted - set(DIGEST_ALGORITHMS)
    if unknown:
        raise ValueError(f"unknown digest algorithm(s): {', '.join(sorted(unknown))} (known: SHA-256, MD5)")
    if not wanted:
        raise ValueError("at least one digest algorithm is needed")
    return tuple(a for a in DIGEST_ALGORITHMS if a in wanted)


@dataclass(frozen=True, slots=True)
class TrunkConfig:
    id: int
    name: str
    host: str
    port: int = 5060
    transport: str = "udp"            # "udp" | "tcp" | "tls"
    username: str | None = None
    password: str | None = field(default=None, repr=False)  # never logged, never in repr
    realm: str | None = None          # None: accept the realm the trunk challenges with
    from_domain: str | None = None    # domain in From; default host
    caller_id: str | None = None      # default caller ID when the engine gives none
    dial_prefix: str = ""             # prepended to the dialled number
    strip_plus: bool = True           # "+79123456789" -> "79123456789" in the Request-URI
    max_concurrent: int = 0           # 0 = unlimited
    calls_per_second: float = 0       # 0 = unlimited
    connect_flow: str = "flow1"       # "flow1" (RFC 3725 flow I) | "delayed_offer"
    options_interval_s: float = 30.0  # keepalive ping; 0 disables
    #: A ping not answered within this many seconds marks the trunk down.
    options_timeout_s: float = 5.0
    #: Register with the carrier (with ``username``/``password``); the trunk takes calls only while registered.
    registration: bool = False
    registration_expires_s: int = 300
    #: After a failed registration, try again this many seconds later.
    registration_retry_s: float = 30.0
    #: Header of the 200 OK in which a carrier reports its answering-machine verdict ("machine" in the value
    #: means a machine); the driver does no audio analysis of its own.
    machine_header: str = "X-Answered-By"
    #: Over TLS: check the carrier's certificate chain (``SipSettings.tls_ca_file`` or the system's) and name.
    tls_verify: bool = True
    #: "a": address records and ``port``; "srv": RFC 3263 SRV records of the transport (``_sip._udp``,
    #: ``_sip._tcp``, ``_sips._tcp``); "naptr": NAPTR records first, then SRV, then address records.
    dns_lookup: str = "a"


@dataclass(frozen=True, slots=True)
class DeviceAccount:
    login: str                        # SIP user of the operator's phone; this is the engine's "endpoint"
    password: str = field(repr=False)
    operator_id: int | None = None
    auto_answer: bool = True
    #: Digest algorithms the registrar offers this phone, in RFC 8760's order; None: ``SipSettings.digest_algorithms``.
    digest_algorithms: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class SipSettings:
    bind_host: str = "0.0.0.0"
    bind_port: int = 5060
    public_host: str | None = None    # advertised in Via/Contact/SDP (NAT); default: the bound address
    realm: str = "dialer"             # registrar realm
    rtp_port_min: int = 20000
    rtp_port_max: int = 20999
    device_ping_s: float = 5.0        # OPTIONS to registered phones
    device_timeout_s: float = 3.0     # a phone that does not answer a ping within this is reported unreachable
    hold_audio_dir: str | None = None  # where hold WAV files named by campaigns live
    #: Written into ``hold_audio_dir`` at start when missing (a generated chime): the engine's default hold audio.
    default_hold_audio: str | None = "hold-music"
    #: Written there too when missing (a generated stand-in): the engine's default message to inbound callers nobody
    #: can take (``EngineConfig.inbound_message``).
    default_message: str | None = "callback-message"
    #: RFC 3261 timer T1 (round-trip estimate) and T2 (cap of non-INVITE retransmission interval), seconds.
    t1_s: float = 0.5
    t2_s: float = 4.0
    #: Listen on TCP as well as UDP (same port).
    tcp: bool = True
    #: SIP over TLS (RFC 3261 §26): the listener's port (None: no listener; 0: any free port), its certificate chain
    #: and key (PEM). Trunks with ``transport="tls"`` need no listener: the dialer opens the connection.
    tls_port: int | None = None
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    #: Authorities that sign carriers' certificates (PEM); None: the system's.
    tls_ca_file: str | None = None
    #: DNS servers for trunks' SRV/NAPTR lookups ("ip" or "ip:port"); empty: the system's (/etc/resolv.conf).
    dns_servers: tuple[str, ...] = ()
    #: A call up longer than this is torn down (legs the far end forgot about).
    max_call_s: float = 4 * 3600.0
    #: Registration lifetime bounds the registrar grants.
    min_expires_s: int = 30
    max_expires_s: int = 3600
    #: How long the phone of an operator may ring before a connect attempt is abandoned.
    operator_answer_timeout_s: float = 20.0
    #: An inbound call from a trunk that nobody answers (``answer``) or refuses within this is refused (480).
    inbound_answer_s: float = 30.0
    user_agent: str = "dialer"
    #: Digest algorithms offered to phones without a setting of their own (one WWW-Authenticate per algorithm, in
    #: RFC 8760's order: the most preferred first). MD5 alone by default: many phones (and SIPp) answer only the first
    #: challenge and fail when it is SHA-256, and some (baresip 1.0) give up when SHA-256 is offered at all; devices
    #: that implement RFC 8760 get ``("SHA-256", "MD5")`` or ``("SHA-256",)`` as their own setting.
    digest_algorithms: tuple[str, ...] = ("MD5",)
