"""API schemas of SIP trunks and devices. Passwords are write-only: reads say only whether one is set."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, field_validator

from dialer.api.crud import ReadSchema, Schema

_HOST = re.compile(r"^[A-Za-z0-9.\-:\[\]]+$")
_LOGIN = r"^[A-Za-z0-9_.!~*()-]+$"
_NUMBER = r"^\+?[0-9]{1,20}$"

Transport = Literal["udp", "tcp", "tls"]
ConnectFlow = Literal["flow1", "delayed_offer"]
DnsLookup = Literal["a", "srv", "naptr"]
DigestAlgorithm = Literal["SHA-256", "MD5"]
#: RFC 8760: challenges go out in order of preference, the strongest first.
_DIGEST_ORDER: tuple[DigestAlgorithm, ...] = ("SHA-256", "MD5")
_ALGORITHMS_HELP = ("Digest algorithms the registrar offers this phone (sent in RFC 8760's order, SHA-256 first); "
                    "null: the driver's default, MD5 alone (phones that read only the first challenge, or give up "
                    "on SHA-256 like baresip 1.0, all register with it)")


def _digest_order(value: list[DigestAlgorithm] | None) -> list[DigestAlgorithm] | None:
    if value is None:
        return None
    if len(set(value)) != len(value):
        raise ValueError("names an algorithm twice")
    return [a for a in _DIGEST_ORDER if a in value]


def _check_host(value: str | None) -> str | None:
    if value is not None and not _HOST.match(value):
        raise ValueError("must be a host name or an IP address, without scheme, port or spaces")
    return value


class TrunkCreate(Schema):
    name: str = Field(min_length=1, max_length=200)
    description: str = ""
    host: str = Field(min_length=1, max_length=255, description="The carrier's SIP host name or IP address")
    port: int = Field(5060, ge=1, le=65535)
    transport: Transport = "udp"
    username: str | None = Field(None, max_length=200, description="Digest user name, when the carrier asks")
    password: str | None = Field(None, max_length=200, description="Write-only; never returned")
    realm: str | None = Field(None, max_length=255, description="Expected realm; empty accepts the carrier's own")
    from_domain: str | None = Field(None, max_length=255, description="Domain in From; the host by default")
    caller_id: str | None = Field(None, pattern=_NUMBER, description="Caller ID when the campaign gives none")
    dial_prefix: str = Field("", pattern=r"^[0-9#*]{0,32}$", description="Prepended to every dialled number")
    strip_plus: bool = Field(True, description="Send 79123456789 rather than +79123456789")
    max_concurrent: int = Field(0, ge=0, description="Calls at once through this trunk; 0 = unlimited")
    calls_per_second: float = Field(0, ge=0, le=10000, description="New calls per second; 0 = unlimited")
    connect_flow: ConnectFlow = Field("flow1", description="RFC 3725 flow I, or the delayed-offer variant")
    options_interval_s: float = Field(30, ge=0, le=3600, description="OPTIONS keepalive; 0 disables")
    registration: bool = Field(False, description="Register with the carrier (needs username and password); the "
                                              "trunk takes calls only while registered")
    registration_expires_s: int = Field(300, ge=30, le=86400, description="Registration lifetime asked for, seconds")
    tls_verify: bool = Field(True, description="Over TLS: check the carrier's certificate and name")
    dns_lookup: DnsLookup = Field("a", description="a: address records and the port; srv: RFC 3263 SRV records of "
                                              "the transport; naptr: NAPTR, then SRV, then address records")
    position: int = Field(0, description="Trunks are tried in this order")
    is_active: bool = True

    _host = field_validator("host", "from_domain")(_check_host)


class TrunkUpdate(Schema):
    name: str | None = Field(None, min_length=1, max_length=200)
    description: str | None = None
    host: str | None = Field(None, min_length=1, max_length=255)
    port: int | None = Field(None, ge=1, le=65535)
    transport: Transport | None = None
    username: str | None = Field(None, max_length=200)
    password: str | None = Field(None, max_length=200, description="Write-only; null removes it")
    realm: str | None = Field(None, max_length=255)
    from_domain: str | None = Field(None, max_length=255)
    caller_id: str | None = Field(None, pattern=_NUMBER)
    dial_prefix: str | None = Field(None, pattern=r"^[0-9#*]{0,32}$")
    strip_plus: bool | None = None
    max_concurrent: int | None = Field(None, ge=0)
    calls_per_second: float | None = Field(None, ge=0, le=10000)
    connect_flow: ConnectFlow | None = None
    options_interval_s: float | None = Field(None, ge=0, le=3600)
    registration: bool | None = None
    registration_expires_s: int | None = Field(None, ge=30, le=86400)
    tls_verify: bool | None = None
    dns_lookup: DnsLookup | None = None
    position: int | None = None
    is_active: bool | None = None

    _host = field_validator("host", "from_domain")(_check_host)


class TrunkState(BaseModel):
    up: bool
    changed_at: datetime
    detail: str


class TrunkRead(ReadSchema):
    id: int
    name: str
    description: str
    host: str
    port: int
    transport: str
    username: str | None
    has_password: bool
    realm: str | None
    from_domain: str | None
    caller_id: str | None
    dial_prefix: str
    strip_plus: bool
    max_concurrent: int
    calls_per_second: float
    connect_flow: str
    options_interval_s: float
    registration: bool
    registration_expires_s: int
    tls_verify: bool
    dns_lookup: str
    position: int
    is_active: bool
    #: What the engine last saw; null before it has used the trunk.
    state: TrunkState | None
    created_at: datetime
    updated_at: datetime


class DeviceCreate(Schema):
    login: str = Field(min_length=1, max_length=64, pattern=_LOGIN, description="SIP user name of the phone")
    password: str = Field(min_length=8, max_length=200, description="Digest password (write-only)")
    description: str = ""
    operator_id: int | None = Field(None, description="The operator whose calls ring on this phone")
    auto_answer: bool = Field(True, description="Ask the phone to answer by itself (Call-Info / Alert-Info)")
    digest_algorithms: list[DigestAlgorithm] | None = Field(None, min_length=1, max_length=2,
                                                            description=_ALGORITHMS_HELP)
    is_active: bool = True

    _algorithms = field_validator("digest_algorithms")(_digest_order)


class DeviceUpdate(Schema):
    login: str | None = Field(None, min_length=1, max_length=64, pattern=_LOGIN)
    password: str | None = Field(None, min_length=8, max_length=200)
    description: str | None = None
    operator_id: int | None = None
    auto_answer: bool | None = None
    digest_algorithms: list[DigestAlgorithm] | None = Field(None, min_length=1, max_length=2,
                                                            description=_ALGORITHMS_HELP + "; null sets the default")
    is_active: bool | None = None

    _algorithms = field_validator("digest_algorithms")(_digest_order)


class Registration(BaseModel):
    online: bool
    reachable: bool
    contact: str
    source: str
    user_agent: str
    expires_at: datetime | None
    changed_at: datetime
    detail: str


class DeviceRead(ReadSchema):
    id: int
    login: str
    description: str
    operator_id: int | None
    auto_answer: bool
    #: null: the driver's default.
    digest_algorithms: list[str] | None
    is_active: bool
    #: The phone's registration as the engine last saw it; null if it never registered.
    registration: Registration | None
    created_at: datetime
    updated_at: datetime
