"""SIP trunks (carriers), operators' SIP devices and the devices' registrations (docs/sip.md).

Trunk and device passwords are kept in clear because SIP digest authentication needs them (the registrar computes
its own digests, towards the trunk we answer challenges); the API never returns them and the audit log records only
that they changed (``SECRET_COLUMNS`` in :mod:`dialer.audit.recorder`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, CheckConstraint, DateTime, Float, ForeignKey, Integer, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from dialer.models.base import Base, IdMixin, TimestampMixin


class SipTrunk(IdMixin, TimestampMixin, Base):
    """A carrier the dialer places calls through."""

    __tablename__ = "sip_trunks"
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    host: Mapped[str] = mapped_column(String(255))
    port: Mapped[int] = mapped_column(Integer, default=5060)
    transport: Mapped[str] = mapped_column(String(8), default="udp")
    username: Mapped[str | None] = mapped_column(String(200), nullable=True)
    password: Mapped[str | None] = mapped_column(String(200), nullable=True)
    realm: Mapped[str | None] = mapped_column(String(255), nullable=True)
    from_domain: Mapped[str | None] = mapped_column(String(255), nullable=True)
    #: Caller ID used when the campaign's caller-ID group gives none.
    caller_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    #: Prepended to every dialled number (a carrier's technical prefix).
    dial_prefix: Mapped[str] = mapped_column(String(32), default="")
    #: Send "79123456789" rather than "+79123456789" in the Request-URI.
    strip_plus: Mapped[bool] = mapped_column(Boolean, default=True)
    #: 0 = unlimited.
    max_concurrent: Mapped[int] = mapped_column(Integer, default=0)
    #: 0 = unlimited.
    calls_per_second: Mapped[float] = mapped_column(Float, default=0.0)
    #: How the customer is connected to the operator: "flow1" (RFC 3725 flow I) or "delayed_offer".
    connect_flow: Mapped[str] = mapped_column(String(16), default="flow1")
    #: OPTIONS keepalive towards the trunk, seconds; 0 disables (the trunk is then never marked down by pings).
    options_interval_s: Mapped[float] = mapped_column(Float, default=30.0)
    #: Register with the carrier (REGISTER with the trunk's credentials, refreshed before it expires); the trunk
    #: takes calls only while registered. For carriers that accept calls only from registered accounts.
    registration: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    #: Registration lifetime asked for, seconds (the carrier may grant a different one).
    registration_expires_s: Mapped[int] = mapped_column(Integer, default=300, server_default="300")
    #: Over TLS: check the carrier's certificate chain and name.
    tls_verify: Mapped[bool] = mapped_column(Boolean, default=True, server_default="true")
    #: How the host is resolved: "a" (address records, the configured port), "srv" (RFC 3263 SRV records of the
    #: transport) or "naptr" (NAPTR, then SRV, then address records).
    dns_lookup: Mapped[str] = mapped_column(String(8), default="a", server_default="a")
    #: Trunks are tried in this order (lower first).
    position: Mapped[int] = mapped_column(Integer, default=0)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)

    __table_args__ = (
        CheckConstraint("transport IN ('udp', 'tcp', 'tls')", name="transport"),
        CheckConstraint("dns_lookup IN ('a', 'srv', 'naptr')", name="dns_lookup"),
        CheckConstraint("connect_flow IN ('flow1', 'delayed_offer')", name="connect_flow"),
        CheckConstraint("port BETWEEN 1 AND 65535", name="port"),
        CheckConstraint("max_concurrent >= 0 AND calls_per_second >= 0", name="limits"),
        CheckConstraint("registration_expires_s BETWEEN 30 AND 86400", name="registration_expires"),
    )


class SipDevice(IdMixin, TimestampMixin, Base):
    """An operator's SIP phone (softphone or desk phone) that registers with the dialer."""

    __tablename__ = "sip_devices"
    login: Mapped[str] = mapped_column(String(64), unique=True)
    password: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    #: The operator whose calls ring on this device (one device per operator).
    operator_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("operators.id", ondelete="SET NULL"), nullable=True, unique=True
    )
    #: Ask the phone to answer by itself (Call-Info answer-after=0 / Alert-Info); the operator's own switch too.
    auto_answer: Mapped[bool] = mapped_column(Boolean, default=True)
    #: Digest algorithms offered to this phone in RFC 8760's order ("SHA-256,MD5", "SHA-256", "MD5"); null: the
    #: driver's default (MD5). Some phones give up on a challenge with an algorithm they lack (baresip 1.0: SHA-256).
    digest_algorithms: Mapped[str | None] = mapped_column(String(20), nullable=True)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)

    __table_args__ = (CheckConstraint("login ~ '^[A-Za-z0-9_.!~*()-]+$'", name="login_chars"),
                      CheckConstraint("digest_algorithms IN ('SHA-256,MD5', 'SHA-256', 'MD5')",
                                      name="digest_algorithms"))


class SipRegistration(Base):
    """The last known registration of a device, written by the engine that holds the registrar.

    Bookkeeping, not configuration: not audited. Rows of devices that unregistered stay with ``online`` false so the
    supervisor sees since when a phone is gone.
    """

    __tablename__ = "sip_registrations"
    login: Mapped[str] = mapped_column(String(64), primary_key=True)
    online: Mapped[bool] = mapped_column(Boolean, default=False)
    reachable: Mapped[bool] = mapped_column(Boolean, default=False)
    contact: Mapped[str] = mapped_column(Text, default="")
    source: Mapped[str] = mapped_column(String(80), default="")
    user_agent: Mapped[str] = mapped_column(Text, default="")
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    detail: Mapped[str] = mapped_column(Text, default="")


class SipTrunkState(Base):
    """Whether a trunk answers, as the engine last saw it (bookkeeping, not audited)."""

    __tablename__ = "sip_trunk_states"
    trunk_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("sip_trunks.id", ondelete="CASCADE"),
                                          primary_key=True)
    up: Mapped[bool] = mapped_column(Boolean, default=True)
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    detail: Mapped[str] = mapped_column(Text, default="")
