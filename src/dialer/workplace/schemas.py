"""API schemas of the operator's workplace, the supervisor's actions and live monitoring."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from dialer.api.crud import Schema


class PauseBody(Schema):
    reason: str = Field("break", min_length=1, max_length=100,
                        description="Why: break, lunch, training, meeting, technical, other, or free text")


class CompleteBody(Schema):
    completion_code_id: int
    comment: str = Field("", max_length=4000)
    #: Call the customer back at this time (a postpone: 30 min, 1 h, 2 h, 3 h or a date, 001).
    callback_at: datetime | None = None
    #: The callback is for this operator only.
    callback_personal: bool = False
    #: "Never call again": the number goes to the campaign's DNC list.
    never_call: bool = False


class ForceStateBody(Schema):
    state: Literal["ready", "paused", "offline"]
    reason: str = Field("supervisor", max_length=100)


class CommandResult(BaseModel):
    """What the engine answered (``queued`` when it did not answer in time: the command waits for it)."""

    command_id: int
    ok: bool
    queued: bool = False
    state: str | None = None
    reason: str | None = None
    pending: str | None = None
    detail: str | None = None


class CodeRead(BaseModel):
    id: int
    name: str
    category: str
    hotkey: str | None
    is_final: bool


class CallRead(BaseModel):
    attempt_id: int
    state: str
    number: str
    campaign_id: int
    campaign_name: str
    preview: bool
    queued_at: datetime
    answered_at: datetime | None
    connected_at: datetime | None
    hung_up_at: datetime | None
    #: The contact card: field values by name, phones, list, campaign with its call script, attempt history.
    card: dict[str, Any]
    #: The codes the operator may set (the campaign's completion-code group).
    codes: list[CodeRead]


class OperatorStateRead(BaseModel):
    operator_id: int
    name: str
    state: str
    reason: str
    since: datetime | None
    seconds_in_state: float
    campaign_id: int | None
    call: CallRead | None
    pause_reasons: list[str]
    engine_running: bool


class OperatorLive(BaseModel):
    id: int
    name: str
    state: str
    reason: str
    since: datetime | None
    seconds_in_state: float
    campaign_id: int | None
    attempt_id: int | None
    calls_today: int


class CampaignLive(BaseModel):
    id: int
    name: str
    status: str
    status_reason: str
    dial_mode: str
    priority: int
    #: Calls in progress by stage: dialing, ringing, answered (waiting for an operator), connected, wrap_up.
    calls: dict[str, int]
    attempts_today: int
    #: Today's (campaign time zone) finished attempts per outcome category.
    outcomes_today: dict[str, int]
    live_answers_today: int
    #: Live answers not connected within the threshold (the regulatory definition).
    abandoned_today: int
    abandon_pct: float
    abandon_cap_pct: float
    over_cap: bool
    #: Calls dialling per free operator now (from the engine).
    dial_ratio: float | None
    #: What the engine reports: operators allocated, hopper, pacer, schedule.
    engine: dict[str, Any]
    auto_stopped: bool
    consecutive_errors: int


class EngineLive(BaseModel):
    running: bool
    run_id: int | None
    host: str | None
    pid: int | None
    heartbeat_at: datetime | None
    started_at: datetime | None


class LiveSnapshot(BaseModel):
    at: datetime
    engine: EngineLive
    operator_counts: dict[str, int]
    operators: list[OperatorLive]
    campaigns: list[CampaignLive]


class TimelineEntry(BaseModel):
    stage: str
    at: datetime


class AttemptDetail(BaseModel):
    id: int
    campaign_id: int
    campaign_name: str | None
    contact_id: int | None
    number: str
    caller_id: str | None
    state: str
    outcome: str | None
    completion_code_id: int | None
    completion_code: str | None
    operator_id: int | None
    operator_name: str | None
    answered_by: str | None
    hangup_side: str | None
    hangup_cause: str
    sip_code: int | None
    comment: str
    call_id: str | None
    #: Seconds a live answer waited for an operator (to connection, or to the hang-up if none came).
    waited_s: float | None
    #: A live answer not connected within the campaign's threshold (statistics), whatever its category.
    abandoned: bool
    ring_s: float | None
    talk_s: float | None
    wrap_up_s: float | None
    timeline: list[TimelineEntry]
    operator_periods: list[dict[str, Any]]
    card: dict[str, Any]
