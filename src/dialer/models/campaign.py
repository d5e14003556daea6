"""Completion codes, strategies, holidays, caller IDs, campaigns, selections and callbacks."""

from __future__ import annotations

from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    SmallInteger,
    String,
    Table,
    Text,
    Time,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy import Enum as SAEnum
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from dialer.models.base import Base, IdMixin, TimestampMixin, enum_values
from dialer.models.enums import (
    CallbackKind,
    CallbackStatus,
    CampaignKind,
    CampaignStatus,
    DayType,
    DialMode,
    OutcomeCategory,
    PhoneType,
)
from dialer.models.media import RecordMode


def _enum(e: type, name: str) -> SAEnum:
    return SAEnum(e, name=name, native_enum=False, length=32, values_callable=enum_values,
                  validate_strings=True)


completion_code_group_members = Table(
    "completion_code_group_members",
    Base.metadata,
    Column("group_id", BigInteger, ForeignKey("completion_code_groups.id", ondelete="CASCADE"), primary_key=True),
    Column("code_id", BigInteger, ForeignKey("completion_codes.id", ondelete="CASCADE"), primary_key=True),
)

caller_id_group_members = Table(
    "caller_id_group_members",
    Base.metadata,
    Column("group_id", BigInteger, ForeignKey("caller_id_groups.id", ondelete="CASCADE"), primary_key=True),
    Column("caller_id_id", BigInteger, ForeignKey("caller_ids.id", ondelete="CASCADE"), primary_key=True),
)

campaign_lists = Table(
    "campaign_lists",
    Base.metadata,
    Column("campaign_id", BigInteger, ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True),
    Column("list_id", BigInteger, ForeignKey("contact_lists.id", ondelete="RESTRICT"), primary_key=True),
)

campaign_pools = Table(
    "campaign_pools",
    Base.metadata,
    Column("campaign_id", BigInteger, ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True),
    Column("pool_id", BigInteger, ForeignKey("operator_pools.id", ondelete="RESTRICT"), primary_key=True),
)


class CompletionCode(IdMixin, TimestampMixin, Base):
    """A completion code (000 §8) with its explicit outcome category.

    System codes (``system_key`` set) are set automatically by the engine and cannot be deleted.
    """

    __tablename__ = "completion_codes"
    name: Mapped[str] = mapped_column(String(200), unique=True)
    category: Mapped[OutcomeCategory] = mapped_column(_enum(OutcomeCategory, "outcome_category"))
    description: Mapped[str] = mapped_column(Text, default="")
    system_key: Mapped[str | None] = mapped_column(String(64), nullable=True, unique=True)
    #: The attempt is final for the contact (no more calls).
    is_final: Mapped[bool] = mapped_column(Boolean, default=False)
    #: Setting this code adds the number to the campaign's DNC list ("never call again").
    adds_to_dnc: Mapped[bool] = mapped_column(Boolean, default=False)
    #: Status written back to the CRM.
    crm_status: Mapped[str | None] = mapped_column(String(200), nullable=True)
    hotkey: Mapped[str | None] = mapped_column(String(16), nullable=True)

    @property
    def is_system(self) -> bool:
        return self.system_key is not None


class CompletionCodeGroup(IdMixin, TimestampMixin, Base):
    __tablename__ = "completion_code_groups"
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")


class Strategy(IdMixin, TimestampMixin, Base):
    """How a campaign dials (000 §10.1, 002 §5.2.5)."""

    __tablename__ = "strategies"
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    #: The phone field dialled first; other phone fields are used by the switch rules.
    phone_field_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("fields.id", ondelete="RESTRICT"), nullable=True
    )
    skill_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("skills.id", ondelete="RESTRICT"), nullable=True
    )
    default_completion_code_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("completion_codes.id", ondelete="RESTRICT"), nullable=True
    )
    call_window_start: Mapped[time] = mapped_column(Time, default=time(9, 0))
    call_window_end: Mapped[time] = mapped_column(Time, default=time(21, 0))
    answer_timeout_s: Mapped[int] = mapped_column(Integer, default=30)
    max_call_duration_s: Mapped[int | None] = mapped_column(Integer, nullable=True)
    max_attempts_per_contact: Mapped[int | None] = mapped_column(Integer, nullable=True)
    max_attempts_per_day: Mapped[int | None] = mapped_column(Integer, nullable=True)
    pause_between_attempts_s: Mapped[int] = mapped_column(Integer, default=0)
    #: Default interval between calls when a rule says "use the common interval".
    common_retry_interval_s: Mapped[int] = mapped_column(Integer, default=3600)
    min_operators: Mapped[int | None] = mapped_column(Integer, nullable=True)
    max_operators: Mapped[int | None] = mapped_column(Integer, nullable=True)
    #: Seconds an answered customer may wait for an operator before hold music / abandoned.
    operator_wait_s: Mapped[int] = mapped_column(Integer, default=2)
    #: Operator wrap-up time limit in seconds.
    wrap_up_s: Mapped[int] = mapped_column(Integer, default=60)
    #: Operator is auto-paused after this many missed offers (None: never).
    auto_pause_after_missed: Mapped[int | None] = mapped_column(Integer, nullable=True)
    #: Seconds from the answer a live customer may wait for an operator before he is hung up ("no operator",
    #: abandoned); None: until he hangs up himself.
    max_hold_s: Mapped[int | None] = mapped_column(Integer, nullable=True, default=30, server_default=text("30"))

    __table_args__ = (
        CheckConstraint("answer_timeout_s > 0", name="answer_timeout_positive"),
        CheckConstraint("max_hold_s IS NULL OR max_hold_s > 0", name="max_hold_positive"),
        CheckConstraint("min_operators IS NULL OR max_operators IS NULL OR min_operators <= max_operators",
                        name="operators_range"),
    )


class StrategyOutcomeRetry(IdMixin, Base):
    """Retry intervals per outcome, e.g. busy → "15;60;1440" minutes, at most 5 attempts (002 §5.2.5)."""

    __tablename__ = "strategy_outcome_retries"
    strategy_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("strategies.id", ondelete="CASCADE"))
    #: An outcome category, or "machine" for answering machines.
    outcome: Mapped[str] = mapped_column(String(32))
    intervals_min: Mapped[list[int]] = mapped_column(ARRAY(Integer))
    max_attempts: Mapped[int] = mapped_column(Integer)

    __table_args__ = (UniqueConstraint("strategy_id", "outcome", name="uq_strategy_outcome_retries_outcome"),)


class StrategyResultRule(IdMixin, Base):
    """What happens after a completion code, on working days or on weekends/holidays (000 §10.1)."""

    __tablename__ = "strategy_result_rules"
    strategy_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("strategies.id", ondelete="CASCADE"))
    completion_code_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("completion_codes.id", ondelete="CASCADE")
    )
    day_type: Mapped[DayType] = mapped_column(_enum(DayType, "day_type"))
    #: Seconds until the next call; None with ``use_common_interval`` takes the strategy's interval.
    retry_interval_s: Mapped[int | None] = mapped_column(Integer, nullable=True)
    use_common_interval: Mapped[bool] = mapped_column(Boolean, default=False)
    #: Attempts on the current number before switching to ``switch_to_phone_type``.
    attempts_on_previous_number: Mapped[int | None] = mapped_column(Integer, nullable=True)
    switch_to_phone_type: Mapped[PhoneType | None] = mapped_column(_enum(PhoneType, "phone_type"), nullable=True)
    #: No more calls to the contact.
    is_final: Mapped[bool] = mapped_column(Boolean, default=False)

    __table_args__ = (
        UniqueConstraint("strategy_id", "completion_code_id", "day_type", name="uq_strategy_result_rules_code_day"),
    )


class Holiday(IdMixin, Base):
    """A calendar day that counts as a holiday (or, with ``is_working_day``, a transferred working day)."""

    __tablename__ = "holidays"
    day: Mapped[date] = mapped_column(Date, unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    is_working_day: Mapped[bool] = mapped_column(Boolean, default=False)


class CallerId(IdMixin, TimestampMixin, Base):
    __tablename__ = "caller_ids"
    number: Mapped[str] = mapped_column(String(20), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)


class CallerIdGroup(IdMixin, TimestampMixin, Base):
    __tablename__ = "caller_id_groups"
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")


class Campaign(IdMixin, TimestampMixin, Base):
    """A campaign (000 §12) with its dial mode, schedule and status machine."""

    __tablename__ = "campaigns"
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    strategy_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("strategies.id", ondelete="RESTRICT"))
    completion_code_group_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("completion_code_groups.id", ondelete="RESTRICT")
    )
    kind: Mapped[CampaignKind] = mapped_column(_enum(CampaignKind, "campaign_kind"), default=CampaignKind.finite)
    start_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    #: IANA zone of the campaign: fallback for contacts whose zone is unknown, and the schedule's zone.
    time_zone: Mapped[str] = mapped_column(String(64), default="Europe/Moscow")
    dnc_list_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("dnc_lists.id", ondelete="RESTRICT"), nullable=True
    )
    caller_id_group_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("caller_id_groups.id", ondelete="RESTRICT"), nullable=True
    )
    dial_mode: Mapped[DialMode] = mapped_column(_enum(DialMode, "dial_mode"), default=DialMode.progressive)
    #: Mode parameters: preview_seconds, max_lines, abandon_cap_pct, abandon_window_min, max_ratio ...
    dial_params: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    priority: Mapped[int] = mapped_column(Integer, default=50)
    max_concurrent_calls: Mapped[int | None] = mapped_column(Integer, nullable=True)
    abandon_cap_pct: Mapped[Decimal] = mapped_column(Numeric(5, 2), default=Decimal("3.00"))
    call_script: Mapped[str] = mapped_column(Text, default="")
    hold_audio: Mapped[str | None] = mapped_column(Text, nullable=True)
    status: Mapped[CampaignStatus] = mapped_column(
        _enum(CampaignStatus, "campaign_status"), default=CampaignStatus.draft
    )
    status_reason: Mapped[str] = mapped_column(Text, default="")
    status_changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # --- media (issue #16 §1, §3, §4); the engine reads them into Originate.record / detect_machine /
    # machine_message, the SIP driver plays the audio names (files of the hold-audio directory) ---
    #: Which calls are recorded: none, all, or ``record_percent`` of them.
    record_mode: Mapped[RecordMode] = mapped_column(_enum(RecordMode, "record_mode"), default=RecordMode.none,
                                                    server_default=RecordMode.none.value)
    record_percent: Mapped[int | None] = mapped_column(Integer, nullable=True)
    #: Played to the customer before the operator joins a recorded call ("разговор записывается"); null: none.
    record_consent_audio: Mapped[str | None] = mapped_column(String(200), nullable=True)
    #: Recordings are deleted this many days after the call; null: kept.
    recording_retention_days: Mapped[int | None] = mapped_column(Integer, nullable=True)
    #: Answering-machine detection on the answered customer leg.
    amd_enabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    #: Left on an answering machine after the beep; null: hang up.
    amd_message: Mapped[str | None] = mapped_column(String(200), nullable=True)
    #: Played to a live customer no operator took within the grace time, before the call ends and a callback is
    #: booked; null: hold music as before.
    abandon_message: Mapped[str | None] = mapped_column(String(200), nullable=True)

    __table_args__ = (
        CheckConstraint("priority BETWEEN 1 AND 100", name="priority_range"),
        CheckConstraint("record_percent IS NULL OR record_percent BETWEEN 1 AND 99", name="record_percent_range"),
        CheckConstraint("record_mode <> 'percent' OR record_percent IS NOT NULL", name="record_percent_given"),
        CheckConstraint("recording_retention_days IS NULL OR recording_retention_days BETWEEN 1 AND 36500",
                        name="recording_retention_range"),
    )


class CampaignSchedule(IdMixin, Base):
    """One dialling period of the weekly schedule: weekday (0 = Monday) and a time range (002 §5.2.3).

    The period runs from ``start`` on its weekday to ``end``: an ``end`` of 00:00 is midnight, an ``end`` before
    ``start`` is the next day's, ``start == end`` is 24 hours (see ``campaign.validation.span_minutes``).
    """

    __tablename__ = "campaign_schedules"
    campaign_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("campaigns.id", ondelete="CASCADE"), index=True)
    weekday: Mapped[int] = mapped_column(SmallInteger)
    start: Mapped[time] = mapped_column(Time)
    end: Mapped[time] = mapped_column(Time)

    __table_args__ = (
        CheckConstraint("weekday BETWEEN 0 AND 6", name="weekday_range"),
    )


class Selection(IdMixin, TimestampMixin, Base):
    """A selection rule of a campaign (001 "Правила выборки")."""

    __tablename__ = "selections"
    campaign_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("campaigns.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    priority: Mapped[int] = mapped_column(Integer, default=50)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    #: [{"field": "<field id or system attribute>", "op": "eq", "value": ...}], all must hold.
    conditions: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    #: [{"field": ..., "dir": "asc"|"desc"}]
    sort: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    skill_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("skills.id", ondelete="RESTRICT"), nullable=True
    )
    min_skill_level: Mapped[int | None] = mapped_column(Integer, nullable=True)
    pool_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("operator_pools.id", ondelete="RESTRICT"), nullable=True
    )
    max_attempts_per_day: Mapped[int | None] = mapped_column(Integer, nullable=True)
    max_attempts_total: Mapped[int | None] = mapped_column(Integer, nullable=True)
    pause_between_attempts_s: Mapped[int | None] = mapped_column(Integer, nullable=True)
    final_crm_status: Mapped[str | None] = mapped_column(String(200), nullable=True)

    __table_args__ = (
        UniqueConstraint("campaign_id", "name", name="uq_selections_campaign_name"),
        CheckConstraint("min_skill_level IS NULL OR min_skill_level BETWEEN 1 AND 100", name="min_skill_range"),
    )


class Callback(IdMixin, TimestampMixin, Base):
    """A scheduled callback (000 §14), optionally for a specific operator."""

    __tablename__ = "callbacks"
    campaign_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("campaigns.id", ondelete="CASCADE"))
    contact_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("contacts.id", ondelete="CASCADE"), nullable=True
    )
    number: Mapped[str] = mapped_column(String(20))
    kind: Mapped[CallbackKind] = mapped_column(_enum(CallbackKind, "callback_kind"), default=CallbackKind.common)
    operator_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("operators.id", ondelete="SET NULL"), nullable=True
    )
    window_start: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    window_end: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    status: Mapped[CallbackStatus] = mapped_column(
        _enum(CallbackStatus, "callback_status"), default=CallbackStatus.pending
    )
    comment: Mapped[str] = mapped_column(Text, default="")

    __table_args__ = (
        CheckConstraint("window_start < window_end", name="window_order"),
        Index("ix_callbacks_due", "campaign_id", "status", "window_start"),
        Index("ix_callbacks_contact", "contact_id"),
    )
