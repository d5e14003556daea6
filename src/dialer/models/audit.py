"""The append-only audit log, partitioned by month (see the first migration for triggers)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Identity, Index, String, Text, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from dialer.models.base import Base


class AuditEntry(Base):
    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), primary_key=True, server_default=func.clock_timestamp()
    )
    user_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    user_login: Mapped[str] = mapped_column(String(200), default="", server_default="")
    #: Role codes of the user at that moment, comma separated.
    user_roles: Mapped[str] = mapped_column(Text, default="", server_default="")
    action: Mapped[str] = mapped_column(String(16))
    #: Human label of a custom action ("import", "status: running", ...).
    event: Mapped[str] = mapped_column(Text, default="", server_default="")
    object_type: Mapped[str] = mapped_column(String(64))
    object_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    #: {field: {"old": ..., "new": ...}}
    changes: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default=text("'{}'::jsonb"))
    client: Mapped[str] = mapped_column(String(100), default="", server_default="")

    __table_args__ = (
        Index("ix_audit_log_object", "object_type", "object_id"),
        Index("ix_audit_log_user", "user_id"),
        Index("ix_audit_log_at", "at"),
        {"postgresql_partition_by": "RANGE (at)"},
    )
