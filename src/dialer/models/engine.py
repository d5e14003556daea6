"""What the dialing engine records: attempts with the time of each stage, operator states, engine runs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, DateTime, ForeignKey, Index, Integer, String, Text, func, text
from sqlalchemy import Enum as SAEnum
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from dialer.models.base import Base, IdMixin, enum_values
from dialer.models.enums import AttemptState, OperatorState, OutcomeCategory


def _enum(e: type, name: str) -> SAEnum:
    return SAEnum(e, name=name, native_enum=False, length=32, values_callable=enum_values, validate_strings=True)


class EngineRun(IdMixin, Base):
    """One start of the engine; a run without a recent heartbeat is dead and its calls are recovered."""

    __tablename__ = "engine_runs"
    pid: Mapped[int] = mapped_column(Integer)
    host: Mapped[str] = mapped_column(String(200), default="")
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    heartbeat_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    stopped_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    #: What the engine reports with each heartbeat (per campaign: operators allocated, lines, pacer, auto-stop),
    #: read by the monitoring API, which may run in another process.
    stats: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default=text("'{}'::jsonb"))


class Attempt(IdMixin, Base):
    """One call attempt: a row per dialled number, with the time of every stage.

    While an attempt is not ``done`` it holds its contact and its number: partial unique indexes
    make a second simultaneous attempt on either impossible, whatever the engine does.
    """

    __tablename__ = "attempts"
    campaign_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("campaigns.id", ondelete="CASCADE"))
    contact_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("contacts.id", ondelete="SET NULL"), nullable=True
    )
    phone_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("contact_phones.id", ondelete="SET NULL"), nullable=True
    )
    selection_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("selections.id", ondelete="SET NULL"), nullable=True
    )
    callback_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("callbacks.id", ondelete="SET NULL"), nullable=True
    )
    operator_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("operators.id", ondelete="SET NULL"), nullable=True
    )
    engine_run_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("engine_runs.id", ondelete="SET NULL"), nullable=True
    )
    number: Mapped[str] = mapped_column(String(20))
    #: 'outbound' (the dialer called), or 'inbound' (the customer called a caller ID: engine/inbound.py).
    direction: Mapped[str] = mapped_column(String(16), default="outbound", server_default="outbound")
    caller_id: Mapped[str | None] = mapped_column(String(20), nullable=True)
    call_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    state: Mapped[AttemptState] = mapped_column(_enum(AttemptState, "attempt_state"), default=AttemptState.queued)
    outcome: Mapped[OutcomeCategory | None] = mapped_column(
        _enum(OutcomeCategory, "outcome_category"), nullable=True
    )
    completion_code_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("completion_codes.id", ondelete="SET NULL"), nullable=True
    )
    answered_by: Mapped[str | None] = mapped_column(String(16), nullable=True)
    hangup_side: Mapped[str | None] = mapped_column(String(16), nullable=True)
    hangup_cause: Mapped[str] = mapped_column(Text, default="", server_default="")
    sip_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    comment: Mapped[str] = mapped_column(Text, default="", server_default="")
    queued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    dialed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    ringing_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    connected_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    hung_up_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    wrap_up_ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    __table_args__ = (
        Index("uq_attempts_live_contact", "contact_id", unique=True, postgresql_where=text("state <> 'done'")),
        Index("uq_attempts_live_number", "number", unique=True, postgresql_where=text("state <> 'done'")),
        Index("ix_attempts_campaign_queued", "campaign_id", "queued_at"),
        Index("ix_attempts_contact", "contact_id"),
        Index("ix_attempts_phone", "phone_id"),
        Index("ix_attempts_number", "number", "id"),
        Index("ix_attempts_operator_queued", "operator_id", "queued_at"),
        Index("ix_attempts_live", "engine_run_id", postgresql_where=text("state <> 'done'")),
        CheckConstraint("direction IN ('outbound', 'inbound')", name="direction"),
    )


class OperatorStateLog(IdMixin, Base):
    """Every operator state change: one row per period in a state (``ended_at`` null while current)."""

    __tablename__ = "operator_state_log"
    operator_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("operators.id", ondelete="CASCADE"))
    state: Mapped[OperatorState] = mapped_column(_enum(OperatorState, "operator_state"))
    reason: Mapped[str] = mapped_column(Text, default="", server_default="")
    campaign_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("campaigns.id", ondelete="SET NULL"), nullable=True
    )
    attempt_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("attempts.id", ondelete="SET NULL"), nullable=True
    )
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    __table_args__ = (
        Index("ix_operator_state_log_operator_started", "operator_id", "started_at"),
        Index("uq_operator_state_log_current", "operator_id", unique=True, postgresql_where=text("ended_at IS NULL")),
    )


class EngineCommand(IdMixin, Base):
    """A command for the engine from the operator or supervisor API (which may run in another process).

    The API inserts the row and NOTIFYs ``dialer_commands``; the engine applies commands in id order and marks
    each processed with its result in the same transaction as the effects, so the API can answer the request.
    """

    __tablename__ = "engine_commands"
    kind: Mapped[str] = mapped_column(String(32))
    operator_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("operators.id", ondelete="CASCADE"), nullable=True
    )
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default=text("'{}'::jsonb"))
    created_by: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    processed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    #: {"ok": true, ...} or {"ok": false, "error": "..."}
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONB, nullable=True)

    __table_args__ = (
        Index("ix_engine_commands_pending", "id", postgresql_where=text("processed_at IS NULL")),
    )
