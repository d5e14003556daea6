"""What the reports keep beside the engine's tables: the "successful" mark of completion codes and the rollups.

The rollups are per UTC hour and are written only by :mod:`dialer.reports.rollup` (never by the engine's journal):
an hour is *sealed* once no attempt queued in it can still change, and a report reads sealed hours from here and
the rest from the raw tables, so its answer is the same as a GROUP BY over the raw tables.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, DateTime, ForeignKey, Index, String, Text, UniqueConstraint, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from dialer.models.base import Base, IdMixin


class SuccessfulCode(Base):
    """A completion code whose calls count as converted (conversion = answered calls with such a code / answered)."""

    __tablename__ = "report_successful_codes"
    code_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("completion_codes.id", ondelete="CASCADE"), primary_key=True)


class AttemptHour(Base):
    """Finished attempts of one UTC hour (by ``queued_at``) per campaign, list, operator, code and outcome.

    0 stands for "none" in the id columns (an attempt without an operator, a deleted contact's list).
    """

    __tablename__ = "report_attempt_hours"
    hour: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    campaign_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    list_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    operator_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    code_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    outcome: Mapped[str] = mapped_column(String(32), primary_key=True)
    #: 'outbound' or 'inbound' (the attempts' direction).
    direction: Mapped[str] = mapped_column(String(16), primary_key=True, server_default="outbound")
    attempts: Mapped[int] = mapped_column(BigInteger)
    #: Calls connected to an operator, and their talk (connect → hang-up) and wrap-up (hang-up → code) time.
    handled: Mapped[int] = mapped_column(BigInteger)
    talk_ms: Mapped[int] = mapped_column(BigInteger)
    wrap_ms: Mapped[int] = mapped_column(BigInteger)


class OutcomeHour(Base):
    """:class:`AttemptHour` without the operator: what the reports that do not look at operators read (a year of a
    100-seat centre is a few hundred thousand rows here, millions there)."""

    __tablename__ = "report_outcome_hours"
    hour: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    campaign_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    list_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    code_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    outcome: Mapped[str] = mapped_column(String(32), primary_key=True)
    #: 'outbound' or 'inbound' (the attempts' direction).
    direction: Mapped[str] = mapped_column(String(16), primary_key=True, server_default="outbound")
    attempts: Mapped[int] = mapped_column(BigInteger)
    handled: Mapped[int] = mapped_column(BigInteger)
    talk_ms: Mapped[int] = mapped_column(BigInteger)
    wrap_ms: Mapped[int] = mapped_column(BigInteger)


class StateHour(Base):
    """Operators' time in each state (and pause reason) within one UTC hour, with the first and last moment seen."""

    __tablename__ = "report_state_hours"
    hour: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    operator_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    state: Mapped[str] = mapped_column(String(32), primary_key=True)
    reason: Mapped[str] = mapped_column(Text, primary_key=True)
    ms: Mapped[int] = mapped_column(BigInteger)
    first_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class OperatorDay(Base):
    """Attempts per local day of the centre's zone (``day``: its midnight) per operator, campaign, code and outcome:
    what the operators' reports read for whole days (a year of 100 operators is a few hundred thousand rows)."""

    __tablename__ = "report_operator_days"
    day: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    operator_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    code_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    outcome: Mapped[str] = mapped_column(String(32), primary_key=True)
    #: 'outbound' or 'inbound' (the attempts' direction).
    direction: Mapped[str] = mapped_column(String(16), primary_key=True, server_default="outbound")
    attempts: Mapped[int] = mapped_column(BigInteger)
    handled: Mapped[int] = mapped_column(BigInteger)
    talk_ms: Mapped[int] = mapped_column(BigInteger)
    wrap_ms: Mapped[int] = mapped_column(BigInteger)


class StateDay(Base):
    """:class:`StateHour` per local day of the centre's zone."""

    __tablename__ = "report_state_days"
    day: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    operator_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    state: Mapped[str] = mapped_column(String(32), primary_key=True)
    reason: Mapped[str] = mapped_column(Text, primary_key=True)
    ms: Mapped[int] = mapped_column(BigInteger)
    first_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class RollupMark(Base):
    """How far each rollup is sealed: hours before ``sealed_until`` are in the rollup table, later ones are not."""

    __tablename__ = "report_rollup_marks"
    #: "attempts", "states", or "days:<zone>" for the day rollups of that zone.
    name: Mapped[str] = mapped_column(String(80), primary_key=True)
    sealed_until: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=text("'1970-01-01 00:00:00+00'"))


class ReportView(IdMixin, Base):
    """A user's saved view of a report: its filter (and the call list's sort), under a name; one per report may be
    the user's default, which the page opens with."""

    __tablename__ = "report_views"
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"))
    report: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(200))
    query: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        UniqueConstraint("user_id", "report", "name", name="uq_report_views_user_report_name"),
        Index("uq_report_views_default", "user_id", "report", unique=True, postgresql_where=text("is_default")),
    )
