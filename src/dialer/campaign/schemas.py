"""API schemas of completion codes, strategies, holidays, caller IDs, campaigns, selections and callbacks."""

from __future__ import annotations

import datetime as dt
from datetime import date, datetime, time
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, PlainSerializer, WithJsonSchema, field_validator
from pydantic.json_schema import SkipJsonSchema

from dialer.api.crud import ReadSchema, Schema
from dialer.campaign.selection import Op, SortDir
from dialer.campaign.validation import (
    check_audio_name,
    check_time_zone,
    format_hhmm,
    parse_hhmm,
    parse_hhmm_end,
    parse_intervals,
)
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

HHMM = Annotated[
    time,
    BeforeValidator(parse_hhmm),
    PlainSerializer(format_hhmm, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "pattern": r"^([01]\d|2[0-3]):[0-5]\d$", "examples": ["09:00"]}),
]
#: The end of a daily span: ``HH:MM`` or ``24:00`` (midnight, stored and shown as ``00:00``).
HHMMEnd = Annotated[
    time,
    BeforeValidator(parse_hhmm_end),
    PlainSerializer(format_hhmm, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "pattern": r"^(([01]\d|2[0-3]):[0-5]\d|24:00)$", "examples": ["21:00"]}),
]
_WINDOW = ("The calling window in each phone's local time (the campaign's zone for a phone without one): from "
           "call_window_start to call_window_end. An end after the start is the same day; an end before the start "
           "runs over midnight (22:00–02:00); an end equal to the start (00:00–00:00) is all day; 24:00 is "
           "accepted as an end and stored as 00:00.")
TimeZoneName = Annotated[str, AfterValidator(check_time_zone), Field(examples=["Europe/Moscow"])]
Intervals = Annotated[
    list[int],
    BeforeValidator(parse_intervals),
    WithJsonSchema({"anyOf": [{"type": "string", "examples": ["15;60;1440"]},
                              {"type": "array", "items": {"type": "integer", "exclusiveMinimum": 0}}]}),
]
Name = Annotated[str, Field(min_length=1, max_length=200)]
#: A file of the hold-audio directory, named without ``.wav`` (campaign/validation.py check_audio_name).
AudioName = Annotated[str, AfterValidator(check_audio_name), Field(max_length=200, examples=["consent-ru"])]
#: Retention of recordings in days (e.g. 30, 180, 365); null keeps them.
RetentionDays = Annotated[int, Field(ge=1, le=36500, examples=[180])]
RecordPercent = Annotated[int, Field(ge=1, le=99, description="Share of calls recorded with record_mode 'percent'")]
#: Outcomes that have retry intervals: the categories that end without a conversation, plus "machine".
RetryOutcome = Literal["busy", "no_answer", "machine", "abandoned", "rejected", "error"]


# --- completion codes -----------------------------------------------------------------------------


class CompletionCodeCreate(Schema):
    name: Name
    category: OutcomeCategory
    description: str = ""
    is_final: bool = False
    adds_to_dnc: bool = False
    crm_status: str | None = Field(None, max_length=200)
    hotkey: str | None = Field(None, max_length=16)


class CompletionCodeUpdate(Schema):
    name: Name | None = None
    category: OutcomeCategory | None = None
    description: str | None = None
    is_final: bool | None = None
    adds_to_dnc: bool | None = None
    crm_status: str | None = Field(None, max_length=200)
    hotkey: str | None = Field(None, max_length=16)
    #: Set by the system only; accepted here to refuse a change with a clear message.
    system_key: str | None = None


class CompletionCodeRead(ReadSchema):
    id: int
    name: str
    category: OutcomeCategory
    description: str
    is_final: bool
    adds_to_dnc: bool
    crm_status: str | None
    hotkey: str | None
    system_key: str | None
    is_system: bool
    created_at: datetime
    updated_at: datetime


# --- strategies -----------------------------------------------------------------------------------


class OutcomeRetry(Schema):
    """Retry intervals after an outcome, e.g. busy: "15;60;1440" minutes, at most 5 attempts (002 §5.2.5)."""

    outcome: RetryOutcome
    intervals: Intervals
    max_attempts: int = Field(ge=1, le=1000)


class OutcomeRetryRead(ReadSchema):
    outcome: str
    #: The intervals as typed: "15;60;1440".
    intervals: str
    intervals_min: list[int]
    max_attempts: int


class ResultRule(Schema):
    """What follows a completion code on working days or on holidays (000 §10.1)."""

    completion_code_id: int
    day_type: DayType
    retry_interval_s: int | None = Field(None, gt=0)
    use_common_interval: bool = False
    attempts_on_previous_number: int | None = Field(None, ge=1)
    switch_to_phone_type: PhoneType | None = None
    is_final: bool = False


class ResultRuleRead(ReadSchema):
    completion_code_id: int
    day_type: DayType
    retry_interval_s: int | None
    use_common_interval: bool
    attempts_on_previous_number: int | None
    switch_to_phone_type: PhoneType | None
    is_final: bool


_MAX_HOLD = ("Seconds from the answer a live customer may wait for an operator (hold audio after operator_wait_s); "
             "then he is hung up with the cause 'no operator' and the attempt is abandoned. null: he waits until "
             "he hangs up himself.")


class StrategyCreate(Schema):
    name: Name
    description: str = ""
    phone_field_id: int | None = None
    skill_id: int | None = None
    default_completion_code_id: int | None = None
    call_window_start: HHMM = Field(time(9, 0), description=_WINDOW)
    call_window_end: HHMMEnd = Field(time(21, 0), description=_WINDOW)
    answer_timeout_s: int = Field(30, gt=0, le=600)
    max_call_duration_s: int | None = Field(None, gt=0)
    max_attempts_per_contact: int | None = Field(None, ge=1)
    max_attempts_per_day: int | None = Field(None, ge=1)
    pause_between_attempts_s: int = Field(0, ge=0)
    common_retry_interval_s: int = Field(3600, gt=0)
    min_operators: int | None = Field(None, ge=0)
    max_operators: int | None = Field(None, ge=0)
    operator_wait_s: int = Field(2, ge=0)
    wrap_up_s: int = Field(60, ge=0)
    auto_pause_after_missed: int | None = Field(None, ge=1)
    max_hold_s: int | None = Field(30, gt=0, description=_MAX_HOLD)
    outcome_retries: list[OutcomeRetry] = []
    result_rules: list[ResultRule] = []


class StrategyUpdate(Schema):
    name: Name | None = None
    description: str | None = None
    phone_field_id: int | None = None
    skill_id: int | None = None
    default_completion_code_id: int | None = None
    call_window_start: HHMM | None = Field(None, description=_WINDOW)
    call_window_end: HHMMEnd | None = Field(None, description=_WINDOW)
    answer_timeout_s: int | None = Field(None, gt=0, le=600)
    max_call_duration_s: int | None = Field(None, gt=0)
    max_attempts_per_contact: int | None = Field(None, ge=1)
    max_attempts_per_day: int | None = Field(None, ge=1)
    pause_between_attempts_s: int | None = Field(None, ge=0)
    common_retry_interval_s: int | None = Field(None, gt=0)
    min_operators: int | None = Field(None, ge=0)
    max_operators: int | None = Field(None, ge=0)
    operator_wait_s: int | None = Field(None, ge=0)
    wrap_up_s: int | None = Field(None, ge=0)
    auto_pause_after_missed: int | None = Field(None, ge=1)
    max_hold_s: int | None = Field(None, gt=0, description=_MAX_HOLD)
    #: When given, replace all retries / rules of the strategy.
    outcome_retries: list[OutcomeRetry] | None = None
    result_rules: list[ResultRule] | None = None


class StrategyRead(ReadSchema):
    id: int
    name: str
    description: str
    phone_field_id: int | None
    skill_id: int | None
    default_completion_code_id: int | None
    call_window_start: HHMM
    call_window_end: HHMM
    answer_timeout_s: int
    max_call_duration_s: int | None
    max_attempts_per_contact: int | None
    max_attempts_per_day: int | None
    pause_between_attempts_s: int
    common_retry_interval_s: int
    min_operators: int | None
    max_operators: int | None
    operator_wait_s: int
    wrap_up_s: int
    auto_pause_after_missed: int | None
    max_hold_s: int | None
    outcome_retries: list[OutcomeRetryRead]
    result_rules: list[ResultRuleRead]
    created_at: datetime
    updated_at: datetime


# --- holidays -------------------------------------------------------------------------------------


class HolidayCreate(Schema):
    day: date
    name: str = Field("", max_length=200)
    #: A transferred working day (e.g. a working Saturday) rather than a holiday.
    is_working_day: bool = False


class HolidayUpdate(Schema):
    day: date | None = None
    name: str | None = Field(None, max_length=200)
    is_working_day: bool | None = None


class HolidayRead(ReadSchema):
    id: int
    day: date
    name: str
    is_working_day: bool


class DayTypeRead(ReadSchema):
    date: dt.date
    day_type: DayType


# --- caller IDs -----------------------------------------------------------------------------------


class CallerIdCreate(Schema):
    number: str = Field(min_length=1, max_length=64, examples=["+7 495 123-45-67"])
    description: str = ""
    is_active: bool = True


class CallerIdUpdate(Schema):
    number: str | None = Field(None, min_length=1, max_length=64)
    description: str | None = None
    is_active: bool | None = None


class CallerIdRead(ReadSchema):
    id: int
    number: str
    description: str
    is_active: bool
    created_at: datetime


# --- campaigns ------------------------------------------------------------------------------------


class SchedulePeriod(Schema):
    """One dialling period of the weekly schedule (002 §5.2.3) in the campaign's time zone; weekday 0 is Monday.

    The period starts at ``start`` on its weekday. An ``end`` after ``start`` is the same day; ``00:00`` (or
    ``24:00``) is midnight; an ``end`` before ``start`` runs over midnight into the next day (Sunday's into
    Monday); ``end`` equal to ``start`` is 24 hours (``00:00``–``00:00``: the whole day). Periods must not overlap.
    """

    weekday: int = Field(ge=0, le=6)
    start: HHMM
    end: HHMMEnd = Field(description="End of the period: after start the same day, 00:00/24:00 midnight, before "
                                     "start the next day, equal to start 24 hours later.")


class _NoStatus(Schema):
    #: Not writable: the status changes only through the actions (start, pause, resume, stop, acknowledge).
    status: SkipJsonSchema[Any] = Field(None, exclude=True)

    @field_validator("status", mode="before")
    @classmethod
    def _refuse_status(cls, value: Any) -> Any:
        raise ValueError("is changed only by the actions start, pause, resume, stop and acknowledge")


_START_AT = ("Launch time (000 §12.1). A campaign still in draft is started by the engine at this time, as by the "
             "start action (if it is not runnable then, it stays in draft until the time is changed); a running "
             "campaign dials nothing before it. A stopped or finished campaign is not restarted by it. Naive times "
             "are in the campaign's time zone.")


class CampaignCreate(_NoStatus):
    name: Name
    description: str = ""
    strategy_id: int
    completion_code_group_id: int
    kind: CampaignKind = CampaignKind.finite
    start_at: datetime | None = Field(None, description=_START_AT)
    time_zone: TimeZoneName = "Europe/Moscow"
    dnc_list_id: int | None = None
    caller_id_group_id: int | None = None
    dial_mode: DialMode = DialMode.progressive
    #: Parameters of the dial mode: preview_seconds (preview); abandon_cap_pct, abandon_window_min,
    #: max_ratio (predictive); max_lines (fixed_lines). Defaults are filled in.
    dial_params: dict[str, Any] = {}
    priority: int = Field(50, ge=1, le=100)
    max_concurrent_calls: int | None = Field(None, ge=1)
    #: Abandoned-call cap in % (mirrors dial_params.abandon_cap_pct of predictive mode); default 3.
    abandon_cap_pct: Decimal | None = Field(None, ge=0, le=100)
    call_script: str = ""
    hold_audio: str | None = None
    list_ids: list[int] = Field(min_length=1)
    pool_ids: list[int] = []
    schedule: list[SchedulePeriod] = []
    # media (issue #16): recording, answering-machine detection, the abandoned caller's message
    record_mode: RecordMode = Field(RecordMode.none, description="Which calls are recorded: none, all, or "
                                    "record_percent of them (an operator's record_override comes first)")
    record_percent: RecordPercent | None = None
    record_consent_audio: AudioName | None = Field(None, description="Played to the customer before the operator "
                                                   "joins a recorded call; null: none")
    recording_retention_days: RetentionDays | None = Field(None, description="Recordings are deleted this many "
                                                           "days after the call; null: kept")
    amd_enabled: bool = Field(False, description="Answering-machine detection on answered calls")
    amd_message: AudioName | None = Field(None, description="Left on an answering machine; null: hang up")
    abandon_message: AudioName | None = Field(None, description="Played to a live customer no operator took "
                                              "within the grace time, before a callback is booked; null: hold music")


class CampaignUpdate(_NoStatus):
    name: Name | None = None
    description: str | None = None
    strategy_id: int | None = None
    completion_code_group_id: int | None = None
    kind: CampaignKind | None = None
    start_at: datetime | None = Field(None, description=_START_AT)
    time_zone: TimeZoneName | None = None
    dnc_list_id: int | None = None
    caller_id_group_id: int | None = None
    dial_mode: DialMode | None = None
    dial_params: dict[str, Any] | None = None
    priority: int | None = Field(None, ge=1, le=100)
    max_concurrent_calls: int | None = Field(None, ge=1)
    abandon_cap_pct: Decimal | None = Field(None, ge=0, le=100)
    call_script: str | None = None
    hold_audio: str | None = None
    list_ids: list[int] | None = Field(None, min_length=1)
    pool_ids: list[int] | None = None
    #: When given, replaces the whole schedule.
    schedule: list[SchedulePeriod] | None = None
    record_mode: RecordMode | None = None
    record_percent: RecordPercent | None = None
    record_consent_audio: AudioName | None = None
    recording_retention_days: RetentionDays | None = None
    amd_enabled: bool | None = None
    amd_message: AudioName | None = None
    abandon_message: AudioName | None = None


class CampaignRead(ReadSchema):
    id: int
    name: str
    description: str
    strategy_id: int
    completion_code_group_id: int
    kind: CampaignKind
    start_at: datetime | None
    time_zone: str
    dnc_list_id: int | None
    caller_id_group_id: int | None
    dial_mode: DialMode
    dial_params: dict[str, Any]
    priority: int
    max_concurrent_calls: int | None
    abandon_cap_pct: float
    call_script: str
    hold_audio: str | None
    status: CampaignStatus
    status_reason: str
    status_changed_at: datetime
    #: What the current status allows: start, pause, resume, stop, acknowledge.
    allowed_actions: list[str]
    list_ids: list[int]
    pool_ids: list[int]
    schedule: list[SchedulePeriod]
    record_mode: RecordMode
    record_percent: int | None
    record_consent_audio: str | None
    recording_retention_days: int | None
    amd_enabled: bool
    amd_message: str | None
    abandon_message: str | None
    created_at: datetime
    updated_at: datetime


class StatusComment(Schema):
    comment: str = Field("", max_length=2000)


class Acknowledge(Schema):
    #: Why it is safe to dial again after the auto-stop.
    comment: str = Field(min_length=1, max_length=2000)


# --- selections -----------------------------------------------------------------------------------


class Condition(Schema):
    """``{"field": 12 | "attempts_today", "op": "gt", "value": 3}``; see :mod:`dialer.campaign.selection`."""

    field: int | str
    op: Op
    #: Required; null with eq/ne means "is empty" / "is not empty".
    value: Any


class SortItem(Schema):
    field: int | str
    dir: SortDir = SortDir.asc


class SelectionCreate(Schema):
    name: Name
    priority: int = Field(50, ge=1, le=100)
    is_active: bool = True
    conditions: list[Condition] = []
    sort: list[SortItem] = []
    skill_id: int | None = None
    min_skill_level: int | None = Field(None, ge=1, le=100)
    pool_id: int | None = None
    max_attempts_per_day: int | None = Field(None, ge=1)
    max_attempts_total: int | None = Field(None, ge=1)
    pause_between_attempts_s: int | None = Field(None, ge=0)
    final_crm_status: str | None = Field(None, max_length=200)


class SelectionUpdate(Schema):
    name: Name | None = None
    priority: int | None = Field(None, ge=1, le=100)
    is_active: bool | None = None
    conditions: list[Condition] | None = None
    sort: list[SortItem] | None = None
    skill_id: int | None = None
    min_skill_level: int | None = Field(None, ge=1, le=100)
    pool_id: int | None = None
    max_attempts_per_day: int | None = Field(None, ge=1)
    max_attempts_total: int | None = Field(None, ge=1)
    pause_between_attempts_s: int | None = Field(None, ge=0)
    final_crm_status: str | None = Field(None, max_length=200)


class SelectionRead(ReadSchema):
    id: int
    campaign_id: int
    name: str
    priority: int
    is_active: bool
    conditions: list[dict[str, Any]]
    sort: list[dict[str, Any]]
    skill_id: int | None
    min_skill_level: int | None
    pool_id: int | None
    max_attempts_per_day: int | None
    max_attempts_total: int | None
    pause_between_attempts_s: int | None
    final_crm_status: str | None
    created_at: datetime
    updated_at: datetime


class PreviewRequest(Schema):
    """Unsaved conditions (and limits) of the selection builder."""

    conditions: list[Condition] = []
    max_attempts_per_day: int | None = Field(None, ge=1)
    max_attempts_total: int | None = Field(None, ge=1)
    pause_between_attempts_s: int | None = Field(None, ge=0)


class PreviewRead(ReadSchema):
    #: Contacts of the campaign's lists, not done, that the selection takes right now.
    matching: int
    #: Contacts of the campaign's lists that are not done.
    total: int


# --- callbacks ------------------------------------------------------------------------------------


class CallbackCreate(Schema):
    campaign_id: int
    #: Must be in one of the campaign's lists.
    contact_id: int | None = None
    #: Normalised to E.164; may be left out when contact_id is given (the contact's first phone).
    number: str | None = Field(None, min_length=1, max_length=64)
    kind: CallbackKind = CallbackKind.common
    #: Required for a personal callback.
    operator_id: int | None = None
    #: Naive times are in the campaign's time zone.
    window_start: datetime
    window_end: datetime
    status: CallbackStatus = CallbackStatus.pending
    comment: str = ""


class CallbackUpdate(Schema):
    campaign_id: int | None = None
    contact_id: int | None = None
    number: str | None = Field(None, min_length=1, max_length=64)
    kind: CallbackKind | None = None
    operator_id: int | None = None
    window_start: datetime | None = None
    window_end: datetime | None = None
    status: CallbackStatus | None = None
    comment: str | None = None


class CallbackRead(ReadSchema):
    id: int
    campaign_id: int
    contact_id: int | None
    number: str
    kind: CallbackKind
    operator_id: int | None
    window_start: datetime
    window_end: datetime
    status: CallbackStatus
    comment: str
    created_at: datetime
    updated_at: datetime


class Postpone(Schema):
    """Postpone a pending callback: ``{"minutes": 30}`` from now, or ``{"until": "2026-03-02T10:00"}``."""

    minutes: int | None = Field(None, gt=0, le=525_600, examples=[30, 60, 120, 180])
    #: Naive times are in the campaign's time zone.
    until: datetime | None = None
