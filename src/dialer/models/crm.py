"""CRM connectors, the records they brought in, outgoing webhooks and the delivery outbox (docs/crm.md).

Everything the dialer sends out — a result written to a CRM, a webhook — is first a row of ``integration_outbox``,
inserted in the same transaction as the change it reports, then delivered by :mod:`dialer.crm.worker` (retries,
backoff, order per record, dead letters). ``integration_requests`` keeps the last requests and answers for the
"Отладка взаимодействия" page (003 §10.6).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from dialer.models.base import Base, IdMixin, TimestampMixin

__all__ = ["CrmConnector", "CrmRecord", "IntegrationAllow", "IntegrationRequest", "OutboxItem",
           "WebhookSubscription"]


class CrmConnector(IdMixin, TimestampMixin, Base):
    """One CRM the dialer reads records from and writes results to (001 "отдельные классы под каждый CRM")."""

    __tablename__ = "crm_connectors"
    name: Mapped[str] = mapped_column(String(200), unique=True)
    #: The adapter (:data:`dialer.crm.registry.ADAPTERS`): fake, generic_http, leadvertex, bitrix24.
    kind: Mapped[str] = mapped_column(String(32))
    #: The adapter's settings (URLs, account, field map); secrets go to ``token``.
    settings: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    #: The CRM's access token (write-only through the API, masked in the audit log).
    token: Mapped[str] = mapped_column(String(500), default="")
    #: The contact list records are read into (None: results are written back only).
    list_id: Mapped[int | None] = mapped_column(ForeignKey("contact_lists.id", ondelete="SET NULL"), nullable=True)
    read_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    write_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    poll_interval_s: Mapped[int] = mapped_column(Integer, default=60)
    #: CRM status → what the dialer does: ``{"3": {"action": "call"}, "5": {"action": "final"}}``;
    #: actions: call, postpone (until the record's recall time), leave (as it is), final.
    status_map: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    #: Result → CRM status to set: ``{"code:12": "4", "final:success": "6", "exhausted": "7"}``.
    result_map: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    #: Maximum delivery tries before an outbox item becomes a dead letter.
    max_tries: Mapped[int] = mapped_column(Integer, default=12)
    #: Where the reads stopped (adapter-specific, e.g. the last change time seen).
    cursor: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    last_read_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_error: Mapped[str] = mapped_column(Text, default="")
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)

    __table_args__ = (
        CheckConstraint("kind IN ('fake', 'generic_http', 'leadvertex', 'bitrix24')", name="kind"),
        CheckConstraint("poll_interval_s BETWEEN 5 AND 86400", name="poll_interval"),
        CheckConstraint("max_tries BETWEEN 1 AND 100", name="max_tries"),
    )


class CrmRecord(IdMixin, Base):
    """A CRM record the dialer knows, and the contact it became."""

    __tablename__ = "crm_records"
    connector_id: Mapped[int] = mapped_column(ForeignKey("crm_connectors.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(200))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"), nullable=True,
                                                   index=True)
    crm_status: Mapped[str] = mapped_column(String(200), default="")
    phone: Mapped[str] = mapped_column(String(64), default="")
    #: The record's change time in the CRM as it said it (text: CRMs write it their own way).
    crm_updated: Mapped[str] = mapped_column(String(64), default="")
    seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (UniqueConstraint("connector_id", "external_id", name="uq_crm_records_connector_external"),)


class WebhookSubscription(IdMixin, TimestampMixin, Base):
    """Outgoing webhooks to one URL (003 §10.6): the events switched on, signed with the subscription's key."""

    __tablename__ = "webhook_subscriptions"
    name: Mapped[str] = mapped_column(String(200), unique=True)
    url: Mapped[str] = mapped_column(String(2000))
    client_id: Mapped[str] = mapped_column(String(200))
    #: The signing key (shown once when generated, masked in the audit log).
    secret: Mapped[str] = mapped_column(String(200))
    events: Mapped[list[str]] = mapped_column(ARRAY(String(64)), default=list)
    max_tries: Mapped[int] = mapped_column(Integer, default=12)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)

    __table_args__ = (CheckConstraint("max_tries BETWEEN 1 AND 100", name="max_tries"),)


class OutboxItem(Base):
    """One delivery: a result to write to a CRM or an event to POST to a webhook."""

    __tablename__ = "integration_outbox"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    connector_id: Mapped[int | None] = mapped_column(ForeignKey("crm_connectors.id", ondelete="CASCADE"),
                                                     nullable=True)
    subscription_id: Mapped[int | None] = mapped_column(
        ForeignKey("webhook_subscriptions.id", ondelete="CASCADE"), nullable=True)
    #: Items of one target with the same key are delivered strictly in id order (a CRM record, a call).
    record_key: Mapped[str] = mapped_column(String(200))
    event: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    #: pending → delivered, or dead after ``max_tries`` (an administrator may send it again: pending).
    status: Mapped[str] = mapped_column(String(16), default="pending")
    tries: Mapped[int] = mapped_column(Integer, default=0)
    next_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    #: A worker took it until then (another worker's crash frees it when this passes).
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    __table_args__ = (
        CheckConstraint("status IN ('pending', 'delivered', 'dead')", name="status"),
        CheckConstraint("(connector_id IS NULL) <> (subscription_id IS NULL)", name="one_target"),
        Index("ix_integration_outbox_open", "connector_id", "subscription_id", "record_key", "id",
              postgresql_where=text("status <> 'delivered'")),
    )


class IntegrationRequest(Base):
    """A request the dialer sent to a CRM or a webhook, and the answer (the debug page shows the last ones)."""

    __tablename__ = "integration_requests"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    target: Mapped[str] = mapped_column(String(250))
    method: Mapped[str] = mapped_column(String(10))
    url: Mapped[str] = mapped_column(Text)
    status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    duration_ms: Mapped[float] = mapped_column(Float)
    request: Mapped[str] = mapped_column(Text, default="")
    response: Mapped[str] = mapped_column(Text, default="")
    error: Mapped[str] = mapped_column(Text, default="")
    outbox_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), index=True)


class IntegrationAllow(IdMixin, TimestampMixin, Base):
    """An address range the integration API takes calls from; none at all: from anywhere (003 §10.6)."""

    __tablename__ = "integration_allow"
    cidr: Mapped[str] = mapped_column(String(64), unique=True)
    comment: Mapped[str] = mapped_column(Text, default="")
