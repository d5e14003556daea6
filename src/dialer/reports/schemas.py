"""What the reports answer (the same shapes feed the pages, the exports and the benchmark's comparison)."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, Field

CATEGORIES = ("answered", "no_answer", "busy", "rejected", "abandoned", "error")


class Applied(BaseModel):
    """The filter as the server understood it (local days, zone, ids after pools and groups were expanded)."""

    date_from: date
    date_to: date
    tz: str
    campaign_ids: list[int] | None
    list_ids: list[int] | None
    operator_ids: list[int] | None
    code_ids: list[int] | None
    direction: str | None = Field(None, description="'outbound' or 'inbound'; null: both")


class Kpi(BaseModel):
    attempts: int
    answered: int
    reached_contacts: int = Field(description="Distinct contacts with at least one answered call")
    answer_rate: float = Field(description="answered / attempts, %")
    abandoned: int = Field(description="Outbound calls answered by a person nobody took (inbound callers who gave up "
                                       "are in inbound_abandoned)")
    live_answers: int = Field(description="Outbound answered + abandoned")
    abandon_rate: float = Field(description="abandoned / live answers of the outbound calls, %")
    inbound_abandoned: int = Field(0, description="Inbound callers nobody took (not in the abandon rate)")
    abandon_cap: float | None = Field(description="The strictest cap of the campaigns reported, %")
    handled: int = Field(description="Calls connected to an operator")
    talk_ms: int
    wrap_ms: int
    aht_ms: int = Field(description="(talk + wrap-up) / handled")
    successful: int = Field(description="Answered calls whose completion code is marked successful")
    conversion: float = Field(description="successful / answered, %")
    transferred: int = Field(0, description="Calls whose customer was handed to another operator or number at least "
                                            "once (a connected transfer or rescue)")


class Counts(BaseModel):
    """Attempts per outcome category and in all."""

    answered: int = 0
    no_answer: int = 0
    busy: int = 0
    rejected: int = 0
    abandoned: int = 0
    error: int = 0
    total: int = 0


class DayRow(Counts):
    day: date


class HourRow(Counts):
    hour: int


class DirectionRow(Counts):
    direction: str


class SliceRow(Counts):
    id: int | None
    name: str
    answer_rate: float
    abandon_rate: float = Field(description="Of the outbound calls, %")
    abandon_cap: float | None = None
    successful: int = 0
    conversion: float = 0.0


class Outcomes(BaseModel):
    applied: Applied
    kpi: Kpi
    categories: Counts
    by_day: list[DayRow]
    by_hour: list[HourRow]
    by_direction: list[DirectionRow] = []
    by_campaign: list[SliceRow]
    by_list: list[SliceRow]


class DimensionRow(Counts):
    key: str
    answer_rate: float


class OutcomeSlices(BaseModel):
    applied: Applied
    dimension: str
    rows: list[DimensionRow]


class CodeCount(BaseModel):
    code_id: int | None
    name: str
    count: int


class OperatorRow(BaseModel):
    operator_id: int
    name: str
    handled: int = Field(description="Calls he talked on; a transferred call counts for every operator who had it")
    answered: int
    talk_ms: int = Field(description="His own part of each call's talk (a transferred call's is split at the "
                                     "transfers)")
    wrap_ms: int
    aht_ms: int
    waiting_ms: int = Field(description="Time ready, waiting for a call")
    logged_in_ms: int
    paused_ms: int
    successful: int
    conversion: float
    calls_per_hour: float = Field(description="Handled calls per logged-in hour")
    codes: list[CodeCount]
    rank: int


class Operators(BaseModel):
    applied: Applied
    rows: list[OperatorRow]


class StateRow(BaseModel):
    operator_id: int
    name: str
    day: date
    first_login: datetime | None
    last_logout: datetime | None
    logged_in_ms: int
    ready_ms: int
    reserved_ms: int = Field(description="Reserved for a call or ringing")
    in_call_ms: int
    wrap_up_ms: int
    paused_ms: int
    paused_by_reason: dict[str, int]
    occupancy: float = Field(description="(in call + wrap-up) / (logged in − paused), %")


class States(BaseModel):
    applied: Applied
    rows: list[StateRow]


class CodeRow(BaseModel):
    code_id: int | None
    name: str
    category: str
    successful: bool
    count: int
    share: float


class GroupRow(BaseModel):
    group_id: int
    name: str
    count: int
    share: float


class PairRow(BaseModel):
    id: int
    name: str
    code_id: int | None
    code: str
    count: int


class Codes(BaseModel):
    applied: Applied
    total: int
    rows: list[CodeRow]
    groups: list[GroupRow]
    by_campaign: list[PairRow]
    by_operator: list[PairRow]


class LedgerRow(BaseModel):
    campaign_id: int
    campaign: str
    day: date
    live_answers: int
    abandoned: int
    rate: float
    inbound_answered: int = Field(0, description="Inbound calls taken (not in the ledger's figures)")
    inbound_abandoned: int = Field(0, description="Inbound callers who gave up or got a callback (not in the "
                                                  "ledger's figures: the cap is about outbound calls)")
    rolling_live_answers: int
    rolling_abandoned: int
    rolling_rate: float = Field(description="Abandoned / live answers over the 30 days ending that day, %")
    cap: float
    over_cap: bool


class Abandon(BaseModel):
    applied: Applied
    rows: list[LedgerRow]


class ZoneLeft(BaseModel):
    zone: str
    contacts: int
    window_opens: datetime | None = Field(description="When the campaign's calling window opens next there "
                                                      "(null: open now or no single campaign chosen)")


class ListProgress(BaseModel):
    list_id: int
    name: str
    total: int
    new: int
    in_progress: int
    done: int
    by_last_outcome: dict[str, int]
    zone_uncertain: int
    in_dnc: int = Field(description="Contacts whose every phone is on a DNC list or the blacklist")
    left_by_zone: list[ZoneLeft]


class Progress(BaseModel):
    applied: Applied
    lists: list[ListProgress]


class CallRow(BaseModel):
    id: int
    campaign_id: int
    campaign: str
    list: str | None
    operator_id: int | None
    operator: str | None
    number: str
    caller_id: str | None
    outcome: str | None
    code: str | None
    queued_at: datetime
    dialed_at: datetime | None
    ringing_at: datetime | None
    answered_at: datetime | None
    connected_at: datetime | None
    hung_up_at: datetime | None
    wrap_up_ended_at: datetime | None
    talk_ms: int | None
    hangup_cause: str
    direction: str = "outbound"
    transfers: int = Field(0, description="Connected transfers of the call (to an operator, pool, skill, external "
                                          "number, attended, rescue)")


class Calls(BaseModel):
    applied: Applied
    items: list[CallRow]
    total: int
    page: int
    per_page: int


class ShiftSummary(BaseModel):
    applied: Applied
    outcomes: Outcomes
    operators: Operators
    abandon: Abandon


class SuccessfulCodes(BaseModel):
    code_ids: list[int]


class ClickhouseStatus(BaseModel):
    mode: str = Field(description="off, embedded (chdb) or server")
    triggers: bool = Field(description="Whether the outbox's triggers are installed (they are while the copy is on)")
    pending: int = Field(description="Changed rows waiting to be copied")
    oldest_at: datetime | None = Field(description="When the oldest waiting change was made")
    lag_s: float = Field(description="Its age, seconds (0: nothing waits)")
    copied_rows: int
    copied_at: datetime | None = Field(description="The last batch copied")
    last_error: str = Field(description="Empty when the last round succeeded")
    last_error_at: datetime | None
    initial_load_complete: bool = Field(description="Every row enqueued when the copy was turned on is in ClickHouse "
                                                    "(until then the reports read PostgreSQL)")
    loaded_at: datetime | None = Field(description="When the initial load completed")


class ReportSettingsRead(BaseModel):
    time_zone: str


class ViewWrite(BaseModel):
    report: str = Field(description="outcomes, operators, states, codes, progress, abandon, calls or shift")
    name: str = Field(min_length=1, max_length=200)
    query: dict[str, str] = Field(default_factory=dict, description="The page's filter (and sort) parameters")
    is_default: bool = False


class ViewRead(ViewWrite):
    id: int
    created_at: datetime
