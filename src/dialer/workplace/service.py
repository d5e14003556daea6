"""Business rules of the workplace API: who the operator is, reading his state and call, commands, monitoring."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dialer.engine import repository as engine_repo
from dialer.engine.commands import CommandKind, enqueue, wait_result
from dialer.engine.operator_fsm import PAUSE_REASONS
from dialer.exceptions import Conflict, NotFound, ValidationFailed
from dialer.models import Operator
from dialer.models.enums import AttemptState, OperatorState
from dialer.workplace import repository as repo
from dialer.workplace.schemas import (
    AttemptDetail,
    CallRead,
    CampaignLive,
    CodeRead,
    CommandResult,
    CompleteBody,
    EngineLive,
    LiveSnapshot,
    OperatorLive,
    OperatorStateRead,
    TimelineEntry,
)

#: How long a request waits for the engine to apply a command before answering "queued".
ENGINE_WAIT_S = 3.0
#: An engine without a heartbeat for this long is not running (as the engine's own recovery rule says).
ENGINE_DEAD_AFTER_S = 15.0
#: The zone "today" means for operators' counters (operators have no zone of their own; campaigns use theirs).
OPERATOR_DAY_ZONE = "Europe/Moscow"
_BUSY = {OperatorState.reserved, OperatorState.ringing, OperatorState.in_call, OperatorState.wrap_up}


async def operator_of(session: AsyncSession, user_id: int) -> Operator:
    """The operator the logged-in user works as."""
    op = await repo.operator_of_user(session, user_id)
    if op is None:
        raise NotFound("your user is not an operator: an administrator links an operator to it (operators.user_id)")
    if not op.is_active:
        raise Conflict(f"operator {op.name} is deactivated")
    return op


async def operator(session: AsyncSession, operator_id: int) -> Operator:
    op = await session.get(Operator, operator_id)
    if op is None:
        raise NotFound(f"operator {operator_id} does not exist")
    return op


def _seconds(since: datetime | None, now: datetime) -> float:
    return round(max(0.0, (now - since).total_seconds()), 1) if since else 0.0


async def state(session: AsyncSession, op: Operator) -> OperatorStateRead:
    """The operator's status, time in it, and the call he works on with the contact card."""
    now = await repo.db_now(session)
    period = await repo.current_period(session, op.id)
    run = await repo.live_run(session, ENGINE_DEAD_AFTER_S)
    call = None
    if period is not None and period.state in _BUSY and period.attempt_id is not None:
        call = await _call(session, period.attempt_id)
    return OperatorStateRead(
        operator_id=op.id, name=op.name, state=(period.state.value if period else OperatorState.offline.value),
        reason=period.reason if period else "", since=period.started_at if period else None,
        seconds_in_state=_seconds(period.started_at if period else None, now),
        campaign_id=period.campaign_id if period else None, call=call, pause_reasons=list(PAUSE_REASONS),
        engine_running=run is not None)


async def _call(session: AsyncSession, attempt_id: int) -> CallRead | None:
    a = await repo.attempt(session, attempt_id)
    if a is None:
        return None
    card = await engine_repo.contact_card(session, a.contact_id, campaign_id=a.campaign_id)
    codes = await repo.campaign_codes(session, a.campaign_id)
    return CallRead(
        attempt_id=a.id, state=a.state.value, number=a.number, campaign_id=a.campaign_id,
        campaign_name=card.get("campaign", {}).get("name", ""), preview=a.state is AttemptState.queued,
        queued_at=a.queued_at, answered_at=a.answered_at, connected_at=a.connected_at, hung_up_at=a.hung_up_at,
        card=card, codes=[CodeRead(id=c.id, name=c.name, category=c.category.value, hotkey=c.hotkey,
                                   is_final=c.is_final) for c in codes])


async def check_complete(session: AsyncSession, op: Operator, body: CompleteBody) -> dict[str, Any]:
    """Validate a completion against what is recorded; returns the command payload."""
    period = await repo.current_period(session, op.id)
    if period is None or period.attempt_id is None or period.state not in (OperatorState.in_call,
                                                                           OperatorState.wrap_up):
        raise Conflict("there is no call to complete", errors=[{"field": "state", "reason": "no call in progress"}])
    a = await repo.attempt(session, period.attempt_id)
    if a is None:
        raise Conflict("the call is gone")
    if not await repo.code_in_campaign(session, body.completion_code_id, a.campaign_id):
        raise ValidationFailed.field("completion_code_id", f"completion code {body.completion_code_id} is not in "
                                                           "the campaign's completion-code group")
    callback_at = body.callback_at
    if callback_at is not None:
        if callback_at.tzinfo is None:
            callback_at = callback_at.replace(tzinfo=UTC)
        if callback_at <= datetime.now(UTC):
            raise ValidationFailed.field("callback_at", "must be in the future")
    if body.callback_personal and callback_at is None:
        raise ValidationFailed.field("callback_personal", "a personal callback needs callback_at")
    return {"completion_code_id": body.completion_code_id, "comment": body.comment,
            "callback_at": callback_at.isoformat() if callback_at else None,
            "callback_personal": body.callback_personal, "never_call": body.never_call,
            "attempt_id": a.id}


async def send(maker: async_sessionmaker[AsyncSession], kind: CommandKind, operator_id: int,
               payload: dict[str, Any] | None = None, *, user_id: int | None = None,
               wait_s: float = ENGINE_WAIT_S) -> tuple[CommandResult, int]:
    """Queue a command, wait for the engine's answer; returns the result and the HTTP status (200 or 202).

    A refusal by the engine is a 409 with its reason.
    """
    command_id = await enqueue(maker, kind, operator_id, payload, created_by=user_id)
    result = await wait_result(maker, command_id, timeout_s=wait_s)
    if result is None:
        return CommandResult(command_id=command_id, ok=True, queued=True,
                             detail="the engine has not applied it yet; it will as soon as it runs"), 202
    if not result.get("ok"):
        raise Conflict(str(result.get("error") or "the engine refused the command"))
    return CommandResult(command_id=command_id, ok=True, state=result.get("state"), reason=result.get("reason"),
                         pending=result.get("pending")), 200


# --- monitoring -----------------------------------------------------------------------------------------------


def _day_start(now: datetime, zone: str) -> datetime:
    local = now.astimezone(ZoneInfo(zone))
    return datetime.combine(local.date(), time(0), tzinfo=local.tzinfo).astimezone(UTC)


async def snapshot(session: AsyncSession) -> LiveSnapshot:
    """Operators and campaigns now: states, calls in progress, today's outcomes, abandon rate against the cap."""
    now = await repo.db_now(session)
    run = await repo.live_run(session, ENGINE_DEAD_AFTER_S)
    stats: dict[str, Any] = (run.stats or {}).get("campaigns", {}) if run is not None else {}
    day = now - timedelta(days=1)
    operators = []
    counts: dict[str, int] = {s.value: 0 for s in OperatorState}
    for row in await repo.operators_live(session, _day_start(now, OPERATOR_DAY_ZONE)):
        st = row.state.value if row.state is not None else OperatorState.offline.value
        counts[st] += 1
        operators.append(OperatorLive(id=row.id, name=row.name, state=st, reason=row.reason or "",
                                      since=row.started_at, seconds_in_state=_seconds(row.started_at, now),
                                      campaign_id=row.campaign_id, attempt_id=row.attempt_id,
                                      calls_today=int(row.calls_today or 0)))
    rows = await repo.monitored_campaigns(session, day)
    calls = await repo.calls_in_progress(session, [c.id for c, _ in rows])
    campaigns = []
    for c, wait_s in rows:
        t = await repo.today(session, c.id, _day_start(now, c.time_zone), float(wait_s))
        pct = round(100.0 * t["abandoned"] / t["live"], 2) if t["live"] else 0.0
        cap = float(c.abandon_cap_pct)
        engine = stats.get(str(c.id), {})
        campaigns.append(CampaignLive(
            id=c.id, name=c.name, status=c.status.value, status_reason=c.status_reason, dial_mode=c.dial_mode.value,
            priority=c.priority, calls=calls.get(c.id, {}), attempts_today=t["attempts"],
            outcomes_today=t["outcomes"], live_answers_today=t["live"], abandoned_today=t["abandoned"],
            abandon_pct=pct, abandon_cap_pct=cap, over_cap=pct > cap, dial_ratio=engine.get("dial_ratio"),
            engine=engine, auto_stopped=c.status.value == "auto_paused",
            consecutive_errors=int(engine.get("consecutive_errors", 0))))
    return LiveSnapshot(
        at=now, engine=EngineLive(running=run is not None, run_id=run.id if run else None,
                                  host=run.host if run else None, pid=run.pid if run else None,
                                  heartbeat_at=run.heartbeat_at if run else None,
                                  started_at=run.started_at if run else None),
        operator_counts=counts, operators=operators, campaigns=campaigns)


async def attempt_detail(session: AsyncSession, attempt_id: int) -> AttemptDetail:
    """The per-call card: every column, the stage timeline, derived durations, the operator's periods."""
    row = await repo.attempt_detail(session, attempt_id)
    if row is None:
        raise NotFound(f"attempt {attempt_id} does not exist")
    a, campaign_name, code_name, operator_name, wait_s = row
    stages = [("queued", a.queued_at), ("dialed", a.dialed_at), ("ringing", a.ringing_at),
              ("answered", a.answered_at), ("connected", a.connected_at), ("hung_up", a.hung_up_at),
              ("wrap_up_ended", a.wrap_up_ended_at)]
    timeline = [TimelineEntry(stage=name, at=at) for name, at in stages if at is not None]

    def span(start: datetime | None, end: datetime | None) -> float | None:
        return round((end - start).total_seconds(), 3) if start is not None and end is not None else None

    waited = None
    abandoned = False
    if a.answered_by == "human" and a.answered_at is not None:
        waited = span(a.answered_at, a.connected_at or a.hung_up_at)
        threshold = float(wait_s if wait_s is not None else 2)
        abandoned = a.connected_at is None or (waited is not None and waited > threshold)
    periods = [{"operator_id": p.operator_id, "state": p.state.value, "reason": p.reason,
                "started_at": p.started_at.isoformat(), "ended_at": p.ended_at.isoformat() if p.ended_at else None}
               for p in await repo.attempt_periods(session, a.id)]
    card = await engine_repo.contact_card(session, a.contact_id, campaign_id=a.campaign_id, history=10)
    return AttemptDetail(
        id=a.id, campaign_id=a.campaign_id, campaign_name=campaign_name, contact_id=a.contact_id, number=a.number,
        caller_id=a.caller_id, state=a.state.value, outcome=a.outcome.value if a.outcome else None,
        completion_code_id=a.completion_code_id, completion_code=code_name, operator_id=a.operator_id,
        operator_name=operator_name, answered_by=a.answered_by, hangup_side=a.hangup_side,
        hangup_cause=a.hangup_cause, sip_code=a.sip_code, comment=a.comment, call_id=a.call_id, waited_s=waited,
        abandoned=abandoned, ring_s=span(a.dialed_at, a.answered_at or a.hung_up_at),
        talk_s=span(a.connected_at, a.hung_up_at), wrap_up_s=span(a.hung_up_at, a.wrap_up_ended_at)
        if a.connected_at is not None else None, timeline=timeline, operator_periods=periods, card=card)
