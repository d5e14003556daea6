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
    #: Required, except in the wrap-up after handing the customer over (a transfer): the next operator sets the
    #: attempt's code, this one's is optional.
    completion_code_id: int | None = None
    comment: str = Field("", max_length=4000)
    #: Call the customer back at this time (a postpone: 30 min, 1 h, 2 h, 3 h or a date, 001).
    callback_at: datetime | None = None
    #: The callback is for this operator only.
    callback_personal: bool = False
    #: "Never call again": the number goes to the campaign's DNC list.
    never_call: bool = False


class ManualDialBody(Schema):
    """A call outside the queue: a number, a contact (its first phone, or ``number`` among its phones), or both."""

    campaign_id: int = Field(description="The campaign the call belongs to (its DNC lists, caller IDs, codes)")
    number: str | None = Field(None, max_length=40, description="Any written form; normalised to E.164")
    contact_id: int | None = Field(None, description="A contact of the campaign's lists")


class AutoAnswerBody(Schema):
    enabled: bool


class AutoAnswerRead(BaseModel):
    operator_id: int
    auto_answer: bool


class ForceStateBody(Schema):
    state: Literal["ready", "paused", "offline"]
    reason: str = Field("supervisor", max_length=100)


class TransferBody(Schema):
    """A transfer of the customer of a connected call (engine/transfers.py): to a ready operator (blind), to the next
    free operator of a pool or with a skill (queued on hold audio), or to an external number (permission
    ``transfers.external``; DNC lists apply)."""

    to: Literal["operator", "pool", "skill", "external"]
    operator_id: int | None = Field(None, description="to=operator: the operator who takes the customer (ready)")
    pool_id: int | None = Field(None, description="to=pool: the pool whose next free operator takes him")
    skill_id: int | None = Field(None, description="to=skill: the skill the next operator needs")
    min_level: int = Field(1, ge=1, le=10, description="to=skill: the lowest level of the skill")
    number: str | None = Field(None, max_length=40, description="to=external: any written form; normalised to E.164")
    comment: str = Field("", max_length=2000, description="A note for the next operator (shown on his card)")
    attempt_id: int | None = Field(None, description="The call the requester sees (its attempt): refused (409) when "
                                   "the operator's conversation is another one by now")


class ConsultBody(Schema):
    """Attended transfer: the customer is held while this operator (ready) is called."""

    operator_id: int
    comment: str = Field("", max_length=2000, description="A note for him (shown on his card once he takes over)")
    attempt_id: int | None = Field(None, description="The call the requester sees (its attempt): refused (409) when "
                                   "the operator's conversation is another one by now")


class TransferNote(BaseModel):
    """The transfer that brought the customer to this operator (the last of the attempt)."""

    transfer_id: int
    kind: str
    result: str
    from_operator_id: int | None
    from_operator_name: str | None
    comment: str
    requested_at: datetime


class TransferRead(BaseModel):
    """One transfer of an attempt (a ``call_transfers`` row), for the call card and the reports."""

    id: int
    kind: str
    source: str
    from_operator_id: int | None
    from_operator_name: str | None
    to_operator_id: int | None
    to_operator_name: str | None
    to_pool_id: int | None
    to_pool_name: str | None
    to_skill_id: int | None
    to_skill_name: str | None
    to_number: str | None
    comment: str
    requested_at: datetime
    connected_at: datetime | None
    ended_at: datetime | None
    result: str
    detail: str


class TargetOperator(BaseModel):
    id: int
    name: str
    state: str
    reason: str
    campaign_name: str | None
    #: His phone is registered and answers (None: no SIP device, simulated or extension only).
    phone_online: bool | None


class TargetGroup(BaseModel):
    id: int
    name: str
    #: Operators of it who are ready now.
    ready: int
    members: int


class TransferTargets(BaseModel):
    """Whom the customer can be transferred to: operators logged in (with their state), pools, skills."""

    operators: list[TargetOperator]
    pools: list[TargetGroup]
    skills: list[TargetGroup]
    #: The user may transfer to external numbers (permission ``transfers.external``).
    external_allowed: bool


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
    #: Set on the system codes (``answered``, ``busy``, ``answering_machine``, ``never_call`` ...).
    system_key: str | None = None


class CardField(BaseModel):
    field_id: int
    name: str
    type: str
    value: Any
    #: The value as text (numbers without a trailing ".0", lists joined).
    text: str


class ScriptPart(BaseModel):
    """A piece of the call script: plain ``text``, or a placeholder's ``field`` with its ``value``."""

    text: str | None = None
    field: str | None = None
    value: str | None = None


class HistoryEntry(BaseModel):
    attempt_id: int
    at: datetime | None
    number: str
    campaign_id: int
    state: str | None
    #: The outcome category (answered, no_answer, busy, rejected, abandoned, error).
    outcome: str | None
    completion_code: str | None
    operator: str | None
    comment: str


class CampaignChoice(BaseModel):
    id: int
    name: str
    status: str


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
    contact_id: int | None = None
    #: The fields of the list's card template (``in_card``), in the list's order.
    fields: list[CardField] = []
    #: The client in the CRM (the list's ``crm_url`` filled in); only http(s) links.
    crm_url: str | None = None
    #: The campaign's call script with the client's values, as plain text and as parts.
    script: str = ""
    script_parts: list[ScriptPart] = []
    #: This client's attempts, newest first (this call included).
    history: list[HistoryEntry] = []
    #: Comments earlier operators left on this client's calls (newest first).
    notes: list[HistoryEntry] = []
    #: Preview mode: seconds the operator has to read the card, and when the call is placed by itself.
    preview_seconds: float | None = None
    preview_deadline: datetime | None = None
    #: The customer was transferred to this operator: from whom, with his note (None: not transferred).
    transfer: TransferNote | None = None
    #: An attended transfer in progress: the operator being consulted (his id, name) and whether he answered.
    consulting: dict[str, Any] | None = None
    #: This operator handed the customer over (a transfer, a rescue): his wrap-up's code is optional.
    handed_over: bool = False


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
    #: The server's clock, for timers in the browser.
    server_time: datetime | None = None
    #: The operator's phone answers offered calls by itself.
    auto_answer: bool = True
    #: Whether the browser can answer a ringing call (no telephony driver offers it yet: the phone answers).
    can_answer: bool = False
    #: Campaigns the operator may dial manually in (running or paused, he is in their pools).
    campaigns: list[CampaignChoice] = []


class SipLive(BaseModel):
    """An operator's SIP phone and its last known registration (``online`` false: never registered or gone)."""

    login: str
    online: bool
    reachable: bool
    changed_at: datetime | None
    detail: str


class CodeCount(BaseModel):
    id: int | None
    name: str
    category: str
    count: int


class OperatorLive(BaseModel):
    id: int
    name: str
    state: str
    reason: str
    since: datetime | None
    seconds_in_state: float
    campaign_id: int | None
    campaign_name: str | None = None
    attempt_id: int | None
    #: The number and contact of the call he works on (or previews), if any.
    number: str | None = None
    contact_id: int | None = None
    calls_today: int
    #: Seconds talked today (calls connected today; a call in progress counts up to now).
    talk_s_today: float = 0.0
    #: Today's finished calls by completion code, most frequent first.
    codes_today: list[CodeCount] = []
    pool_ids: list[int] = []
    #: His SIP device (none: he works without one, e.g. simulated or a trunk extension).
    sip: SipLive | None = None
    #: A pause asked for while he is in a call (its reason), applied when the call ends.
    pause_pending: str | None = None


class IdleReason(BaseModel):
    """Why a running campaign places no calls: a code the panels translate and its parameters (datetimes as ISO
    strings): outside_schedule {next_open_at}, no_contact_in_window {next_window_at}, no_operators,
    no_operator_with_skill {skills}, waiting_for_retry {next_retry_at}, list_exhausted, trunk_down,
    limit_reached {limit}, auto_stopped {reason}, over_abandon_cap {abandon_pct, cap_pct}."""

    code: str
    params: dict[str, Any] = {}


class CampaignLive(BaseModel):
    id: int
    name: str
    #: The campaign's time zone (its schedule, and the times of its idle reasons, are in it).
    time_zone: str = ""
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
    #: The upper end of the rate's 95% confidence interval (Wilson) over today's live answers: with few answers the
    #: rate alone says little (2 of 40 is 5%, but could well be 1%).
    abandon_upper_pct: float = 0.0
    abandon_cap_pct: float
    over_cap: bool
    #: Calls dialling per free operator now (from the engine).
    dial_ratio: float | None
    #: What the engine reports: operators allocated, hopper, pacer, schedule.
    engine: dict[str, Any]
    auto_stopped: bool
    consecutive_errors: int
    #: Contacts of its lists not done and due now (cached for a few seconds).
    dialable_left: int = 0
    pool_ids: list[int] = []
    #: Why it places no calls now (empty while it dials, or when it is not running).
    idle_reasons: list[IdleReason] = []


class EngineLive(BaseModel):
    running: bool
    run_id: int | None
    host: str | None
    pid: int | None
    heartbeat_at: datetime | None
    started_at: datetime | None


class PoolLive(BaseModel):
    id: int
    name: str


class TrunkLive(BaseModel):
    id: int
    name: str
    is_active: bool
    #: As the engine last saw it; None: never checked.
    up: bool | None
    detail: str
    changed_at: datetime | None


class LiveCall(BaseModel):
    """A call in progress (an attempt not done), for a panel that follows calls by their events."""

    attempt_id: int
    campaign_id: int
    operator_id: int | None
    number: str
    direction: str = "outbound"
    state: str
    answered_by: str | None
    queued_at: datetime
    #: The call's last transfer: its kind and result (pending while it is carried out), None if never transferred.
    transfer_kind: str | None = None
    transfer_result: str | None = None


class LiveSnapshot(BaseModel):
    at: datetime
    engine: EngineLive
    operator_counts: dict[str, int]
    operators: list[OperatorLive]
    campaigns: list[CampaignLive]
    pools: list[PoolLive] = []
    trunks: list[TrunkLive] = []
    #: Every call in progress (their counts per campaign and stage are ``campaigns[].calls``).
    live_calls: list[LiveCall] = []


class TimelineEntry(BaseModel):
    stage: str
    at: datetime
    #: Seconds until the next stage (None for the last one).
    duration_s: float | None = None


class AttemptBrief(BaseModel):
    """One line of the attempt search (``GET /api/monitoring/attempts``)."""

    id: int
    campaign_id: int
    campaign_name: str | None
    contact_id: int | None
    number: str
    #: "outbound" (placed by the dialer) or "inbound" (the customer called: engine/inbound.py).
    direction: str = "outbound"
    state: str
    outcome: str | None
    completion_code: str | None
    operator_id: int | None
    operator_name: str | None
    queued_at: datetime
    talk_s: float | None
    #: How many times the customer was transferred (call_transfers rows, refused ones included).
    transfers: int = 0


class AttemptDetail(BaseModel):
    id: int
    campaign_id: int
    campaign_name: str | None
    contact_id: int | None
    number: str
    direction: str = "outbound"
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
    #: The transfers of the customer, in order (``call_transfers``): the attempt's stages after the first operator.
    transfers: list[TransferRead] = []
