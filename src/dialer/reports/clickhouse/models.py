"""The ClickHouse copy's tables in PostgreSQL: the outbox the triggers fill and the copy's status (migration
0017_clickhouse, 0020_clickhouse_load)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, CheckConstraint, DateTime, Integer, String, Text, false, func
from sqlalchemy.orm import Mapped, mapped_column

from dialer.models.base import Base


class ClickhouseOutbox(Base):
    """A finished attempt (``source`` 'a') or an operator's state period ('p') that changed and is not yet in
    ClickHouse; ``at`` is its ``queued_at`` / ``started_at`` (the ClickHouse sort key, so a deleted row's
    tombstone finds it). Written only by the triggers, in the changing transaction."""

    __tablename__ = "clickhouse_outbox"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(1))
    row_id: Mapped[int] = mapped_column(BigInteger)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (CheckConstraint("source IN ('a', 'p')", name="source"),)


class ClickhouseCopyStatus(Base):
    """One row: how the copy goes (rows copied, the last copy, the last error), whether the initial load is still
    under way (``load_until_id``: the newest outbox id it enqueued; cleared, and ``loaded_at`` set, once every row up
    to it is sent) and whether ClickHouse's tables still have to be emptied before copying (``needs_truncate``)."""

    __tablename__ = "clickhouse_copy_status"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    copied_rows: Mapped[int] = mapped_column(BigInteger, server_default="0")
    copied_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_error: Mapped[str] = mapped_column(Text, server_default="")
    last_error_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    load_until_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    loaded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    needs_truncate: Mapped[bool] = mapped_column(Boolean, server_default=false())

    __table_args__ = (CheckConstraint("id = 1", name="single"),)
