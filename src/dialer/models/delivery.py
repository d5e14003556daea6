"""Scheduled delivery of reports by e-mail (issue #14 §2): a schedule says which report, in which format, for which
period and when; every delivery is a run row that the worker (``reports/delivery.py``) claims, sends and records."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    Time,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from dialer.models.base import Base, IdMixin, TimestampMixin


class ReportSchedule(IdMixin, TimestampMixin, Base):
    """A report sent by e-mail at a set time: daily at ``at_time``, weekly on ``weekday`` (0 = Monday) or monthly on
    ``month_day`` (the last day of a shorter month), in ``time_zone``; ``next_run_at`` is the next due moment (UTC)."""

    __tablename__ = "report_schedules"
    name: Mapped[str] = mapped_column(String(200))
    report: Mapped[str] = mapped_column(String(32))
    #: A saved view whose filters the report takes (its period is the schedule's); null: ``filters`` only.
    view_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("report_views.id", ondelete="SET NULL"),
                                                nullable=True)
    #: The reports' filter parameters (campaign_ids, list_ids, operator_ids, pool_ids, code_group_ids, dimension,
    #: outcome), over the view's.
    filters: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    format: Mapped[str] = mapped_column(String(8))
    period: Mapped[str] = mapped_column(String(16))
    frequency: Mapped[str] = mapped_column(String(8))
    at_time: Mapped[time] = mapped_column(Time)
    weekday: Mapped[int | None] = mapped_column(SmallInteger, nullable=True)
    month_day: Mapped[int | None] = mapped_column(SmallInteger, nullable=True)
    time_zone: Mapped[str] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(2), default="ru")
    recipients: Mapped[list[str]] = mapped_column(ARRAY(String(254)))
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    next_run_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_by: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="SET NULL"),
                                                   nullable=True)

    __table_args__ = (
        CheckConstraint("format IN ('pdf', 'xlsx', 'csv')", name="format"),
        CheckConstraint("period IN ('today', 'yesterday', 'last_week', 'last_month')", name="period"),
        CheckConstraint("frequency IN ('daily', 'weekly', 'monthly')", name="frequency"),
        CheckConstraint("(frequency = 'weekly') = (weekday IS NOT NULL) "
                        "AND (weekday IS NULL OR weekday BETWEEN 0 AND 6)", name="weekday"),
        CheckConstraint("(frequency = 'monthly') = (month_day IS NOT NULL) "
                        "AND (month_day IS NULL OR month_day BETWEEN 1 AND 31)", name="month_day"),
        Index("ix_report_schedules_due", "next_run_at", postgresql_where=text("is_active")),
    )


class ReportRun(IdMixin, Base):
    """One delivery of a schedule: ``pending`` → ``sending`` (claimed by a worker) → ``sent``, or back to
    ``retrying`` after a failure (``next_attempt_at``: 1, 5, 15 min later), ``failed`` after the last attempt.
    The period is fixed when the run is made, so a retry sends the same days."""

    __tablename__ = "report_runs"
    schedule_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("report_schedules.id", ondelete="CASCADE"))
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    #: Made by "send now" rather than by the schedule.
    manual: Mapped[bool] = mapped_column(Boolean, default=False)
    requested_by: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="SET NULL"),
                                                     nullable=True)
    period_from: Mapped[date] = mapped_column(Date)
    period_to: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    #: Which process holds a ``sending`` run (host:pid), for the history.
    worker: Mapped[str | None] = mapped_column(String(100), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: The Message-ID of the last message handed to the SMTP server.
    message_id: Mapped[str | None] = mapped_column(String(300), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        CheckConstraint("status IN ('pending', 'sending', 'retrying', 'sent', 'failed')", name="status"),
        # a schedule's due moment makes one run, however many workers see it due
        Index("uq_report_runs_due", "schedule_id", "due_at", unique=True, postgresql_where=text("NOT manual")),
        Index("ix_report_runs_schedule", "schedule_id", "id"),
        Index("ix_report_runs_open", "next_attempt_at",
              postgresql_where=text("status IN ('pending', 'sending', 'retrying')")),
    )
