"""Business rules of the workplace API: who the operator is, reading his state and call, commands, monitoring."""

from __future__ import annotations

import math
import time as time_module
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dialer.audit.recorder import log
from dialer.engine import manual
from dialer.engine import repository as engine_repo
from dialer.engine.commands import CommandKind, enqueue, wait_result
from dialer.engine.operator_fsm import PAUSE_REASONS
from dialer.engine.outcome import AttemptResult, apply_result
from dialer.engine.selection import load_plan
from dialer.exceptions import Conflict, DialerError, NotFound, PermissionDenied, ValidationFailed
from dialer.models import Operator
from dialer.models.enums import AttemptState, AuditAction, OperatorState
from dialer.workplace import card as panel
from dialer.workplace import repository as repo
from dialer.workplace.schemas import (
    AttemptBrief,
    AttemptDetail,
    AutoAnswerRead,
    CallRead,
    CampaignChoice,
    CampaignLive,
    CardField,
    CodeCount,
    CodeRead,
    CommandResult,
    CompleteBody,
    ConsultBody,
    EngineLive,
    HistoryEntry,
    IdleReason,
    LiveCall,
    LiveSnapshot,
    ManualDialBody,
    OperatorLive,
    OperatorStateRead,
    PoolLive,
    ScriptPart,
    SipLive,
    TargetGroup,
    TargetOperator,
    TimelineEntry,
    TransferBody,
    TransferNote,
    TransferRead,
    TransferTargets,
    TrunkLive,
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
        call = await _call(session, period.attempt_id, viewer=op.id)
    return OperatorStateRead(
        operator_id=op.id, name=op.name, state=(period.state.value if period else OperatorState.offline.value),
        reason=period.reason if period else "", since=period.started_at if period else None,
        seconds_in_state=_seconds(period.started_at if period else None, now),
        campaign_id=period.campaign_id if period else None, call=call, pause_reasons=list(PAUSE_REASONS),
        engine_running=run is not None, server_time=now, auto_answer=op.auto_answer, can_answer=False,
        campaigns=[CampaignChoice(id=c.id, name=c.name, status=c.status.value)
                   for c in await panel.dialable_campaigns(session, op.id)])


async def _transfer_view(session: AsyncSession, attempt_id: int, viewer: int | None
                         ) -> tuple[TransferNote | None, dict[str, Any] | None, bool]:
    """For the operator ``viewer``: the transfer that brought the customer to him (or is bringing him: a
    consultation), the consultation he himself has started, and whether he handed the customer over."""
    rows = [r for r in await repo.transfers_of(session, [attempt_id]) if r[0].result != "refused"]
    if not rows or viewer is None:
        return None, None, False
    # a consultation hands the customer over only when completed, every other transfer at once; the last handover
    # counts (a customer who came back to him later is his again)
    handovers = [r for r in rows if r[0].kind != "attended" or r[0].result == "connected"]
    handed = bool(handovers) and handovers[-1][0].from_operator_id == viewer
    last = rows[-1]
    t = last[0]
    if t.from_operator_id == viewer:
        if t.kind == "attended" and t.result == "pending":
            period = await repo.current_period(session, t.to_operator_id) if t.to_operator_id else None
            answered = period is not None and period.state is OperatorState.in_call
            return None, {"transfer_id": t.id, "operator_id": t.to_operator_id, "operator_name": last.to_name,
                          "answered": answered}, False
        return None, None, handed
    received = [r for r in rows if r[0].from_operator_id != viewer]
    if not received:
        return None, None, handed
    got = received[-1]
    return TransferNote(transfer_id=got[0].id, kind=got[0].kind, result=got[0].result,
                        from_operator_id=got[0].from_operator_id, from_operator_name=got.from_name,
                        comment=got[0].comment or "", requested_at=got[0].requested_at), None, handed


async def _call(session: AsyncSession, attempt_id: int, *, viewer: int | None = None) -> CallRead | None:
    """The call with the client card as the operator sees it (see :mod:`dialer.workplace.card`)."""
    a = await repo.attempt(session, attempt_id)
    if a is None:
        return None
    card = await engine_repo.contact_card(session, a.contact_id, campaign_id=a.campaign_id)
    list_id, data = await panel.contact_data(session, a.contact_id)
    shown, values, crm = await panel.card_fields(session, list_id, data)
    # the card template decides what the operator sees: only the list's in-card fields, in the list's order
    card["fields"] = {f["name"]: f["value"] for f in shown}
    script_text = str(card.get("campaign", {}).get("script") or "")
    parts = panel.fill_script(script_text, values)
    history = [HistoryEntry(attempt_id=h["attempt_id"], at=h["at"], number=h["number"], campaign_id=h["campaign_id"],
                            state=h["state"], outcome=h["outcome"], completion_code=h["completion_code"],
                            operator=h["operator"], comment=h["comment"] or "")
               for h in (card.get("history", []) if a.contact_id is not None
                         else await panel.number_history(session, a.number))]
    codes = await repo.campaign_codes(session, a.campaign_id)
    transfer, consulting, handed = await _transfer_view(session, a.id, viewer)
    preview = a.state is AttemptState.queued
    seconds = await panel.preview_seconds(session, a.campaign_id) if preview else None
    return CallRead(
        attempt_id=a.id, state=a.state.value, number=a.number, campaign_id=a.campaign_id,
        campaign_name=card.get("campaign", {}).get("name", ""), preview=preview,
        queued_at=a.queued_at, answered_at=a.answered_at, connected_at=a.connected_at, hung_up_at=a.hung_up_at,
        card=card, codes=[CodeRead(id=c.id, name=c.name, category=c.category.value, hotkey=c.hotkey,
                                   is_final=c.is_final, system_key=c.system_key) for c in codes],
        contact_id=a.contact_id, fields=[CardField(**f) for f in shown], crm_url=panel.crm_link(crm, values),
        script="".join(p.get("text") or p.get("value") or "" for p in parts),
        script_parts=[ScriptPart(**p) for p in parts], history=history,
        notes=[h for h in history if h.comment.strip() and h.attempt_id != a.id],
        preview_seconds=seconds,
        preview_deadline=a.queued_at + timedelta(seconds=seconds) if seconds is not None else None,
        transfer=transfer, consulting=consulting, handed_over=handed)


async def manual_dial_payload(session: AsyncSession, op: Operator, body: ManualDialBody) -> dict[str, Any]:
    """Check a manual dial request before the engine gets it; returns the command payload.

    The engine checks again what may change meanwhile (the operator's state, DNC lists, calls in progress)."""
    if body.number is None and body.contact_id is None:
        raise ValidationFailed.field("number", "give a number or a contact id")
    number = None
    if body.number is not None and body.number.strip():
        try:
            number = manual.normalize_number(body.number)
        except DialerError as err:
            raise ValidationFailed.field("number", err.detail) from None
    elif body.contact_id is None:
        raise ValidationFailed.field("number", "give a number or a contact id")
    allowed = {c.id for c in await panel.dialable_campaigns(session, op.id)}
    if body.campaign_id not in allowed:
        raise ValidationFailed.field("campaign_id", f"campaign {body.campaign_id} is not running or you do not work "
                                                    "for it")
    return {"campaign_id": body.campaign_id, "number": number, "contact_id": body.contact_id}


async def set_auto_answer(session: AsyncSession, op: Operator, enabled: bool) -> AutoAnswerRead:
    """The operator's auto-answer switch (audited as a change of the operator, like every ORM change)."""
    op.auto_answer = enabled
    await session.flush()
    return AutoAnswerRead(operator_id=op.id, auto_answer=op.auto_answer)


async def check_complete(session: AsyncSession, op: Operator, body: CompleteBody) -> dict[str, Any]:
    """Validate a completion against what is recorded; returns the command payload."""
    period = await repo.current_period(session, op.id)
    if period is None or period.attempt_id is None or period.state not in (OperatorState.in_call,
                                                                           OperatorState.wrap_up):
        raise Conflict("there is no call to complete", errors=[{"field": "state", "reason": "no call in progress"}])
    a = await repo.attempt(session, period.attempt_id)
    if a is None:
        raise Conflict("the call is gone")
    if body.completion_code_id is None:
        # optional only in the wrap-up after a handover (his customer went on with someone else: engine/transfers.py)
        handovers = [r for r in await repo.transfers_of(session, [a.id])
                     if r[0].result != "refused" and (r[0].kind != "attended" or r[0].result == "connected")]
        if period.state is not OperatorState.wrap_up or not handovers or handovers[-1][0].from_operator_id != op.id:
            raise ValidationFailed.field("completion_code_id", "choose a completion code")
        return {"completion_code_id": None, "comment": body.comment, "attempt_id": a.id}
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
    pending: dict[str, str] = (run.stats or {}).get("operators_pending", {}) if run is not None else {}
    day = now - timedelta(days=1)
    operators = []
    counts: dict[str, int] = {s.value: 0 for s in OperatorState}
    op_day = _day_start(now, OPERATOR_DAY_ZONE)
    op_rows = await repo.operators_live(session, op_day)
    per_op = await repo.operators_today(session, [r.id for r in op_rows], op_day)
    members = await repo.pool_members(session)
    devices = await repo.operator_devices(session)
    for row in op_rows:
        st = row.state.value if row.state is not None else OperatorState.offline.value
        counts[st] += 1
        dev = devices.get(row.id)
        mine = per_op.get(row.id, {})
        operators.append(OperatorLive(
            id=row.id, name=row.name, state=st, reason=row.reason or "", since=row.started_at,
            seconds_in_state=_seconds(row.started_at, now), campaign_id=row.campaign_id,
            campaign_name=row.campaign_name, attempt_id=row.attempt_id, number=row.number, contact_id=row.contact_id,
            calls_today=int(row.calls_today or 0), talk_s_today=float(mine.get("talk_s", 0.0)),
            codes_today=[CodeCount(**c) for c in mine.get("codes", [])], pool_ids=members.get(row.id, []),
            sip=None if dev is None else SipLive(login=dev.login, online=bool(dev.online),
                                                 reachable=bool(dev.reachable), changed_at=dev.changed_at,
                                                 detail=dev.detail or ""),
            pause_pending=pending.get(str(row.id))))
    rows = await repo.monitored_campaigns(session, day)
    calls = await repo.calls_in_progress(session, [c.id for c, _ in rows])
    left = await _dialable_left(session, [c.id for c, _ in rows])
    campaign_pools = await repo.campaign_pool_ids(session, [c.id for c, _ in rows])
    trunk_rows = await repo.trunks(session)
    active = [t for t in trunk_rows if t.is_active]
    trunks_down = bool(active) and all(t.up is False for t in active)
    skill_names: dict[int, str] | None = None
    campaigns = []
    for c, wait_s in rows:
        t = await repo.today(session, c.id, _day_start(now, c.time_zone), float(wait_s))
        pct = round(100.0 * t["abandoned"] / t["live"], 2) if t["live"] else 0.0
        cap = float(c.abandon_cap_pct)
        engine = stats.get(str(c.id), {})
        idle = _idle_reasons(c.status.value, c.status_reason, engine if run is not None else None,
                             calls.get(c.id, {}), trunks_down, pct, cap)
        if any(r.code == "no_operator_with_skill" for r in idle):
            if skill_names is None:
                skill_names = await repo.skill_names(session)
            for r in idle:
                if r.code == "no_operator_with_skill":
                    ids = r.params.pop("skill_ids", [])
                    r.params["skills"] = [skill_names.get(int(i), str(i)) for i in ids]
        campaigns.append(CampaignLive(
            id=c.id, name=c.name, time_zone=c.time_zone, status=c.status.value, status_reason=c.status_reason,
            dial_mode=c.dial_mode.value,
            priority=c.priority, calls=calls.get(c.id, {}), attempts_today=t["attempts"],
            outcomes_today=t["outcomes"], live_answers_today=t["live"], abandoned_today=t["abandoned"],
            abandon_pct=pct, abandon_upper_pct=wilson_upper_pct(t["abandoned"], t["live"]),
            abandon_cap_pct=cap, over_cap=pct > cap, dial_ratio=engine.get("dial_ratio"),
            engine=engine, auto_stopped=c.status.value == "auto_paused",
            consecutive_errors=int(engine.get("consecutive_errors", 0)), dialable_left=left.get(c.id, 0),
            pool_ids=campaign_pools.get(c.id, []), idle_reasons=idle))
    return LiveSnapshot(
        at=now, engine=EngineLive(running=run is not None, run_id=run.id if run else None,
                                  host=run.host if run else None, pid=run.pid if run else None,
                                  heartbeat_at=run.heartbeat_at if run else None,
                                  started_at=run.started_at if run else None),
        operator_counts=counts, operators=operators, campaigns=campaigns,
        live_calls=await _live_calls(session),
        pools=[PoolLive(id=p.id, name=p.name) for p in await repo.pools(session)],
        trunks=[TrunkLive(id=t.id, name=t.name, is_active=t.is_active, up=t.up, detail=t.detail or "",
                          changed_at=t.changed_at) for t in trunk_rows])


async def _live_calls(session: AsyncSession) -> list[LiveCall]:
    rows = await repo.live_calls(session)
    transfers = await repo.live_transfers(session, [r.id for r in rows])
    out = []
    for r in rows:
        t = transfers.get(r.id)
        out.append(LiveCall(attempt_id=r.id, campaign_id=r.campaign_id, operator_id=r.operator_id, number=r.number,
                            direction=r.direction, state=r.state.value, answered_by=r.answered_by,
                            queued_at=r.queued_at, transfer_kind=t.kind if t is not None else None,
                            transfer_result=t.result if t is not None else None))
    return out


def wilson_upper_pct(events: int, trials: int, z: float = 1.96) -> float:
    """The upper end of the Wilson score interval of ``events`` / ``trials``, in percent (0 without trials)."""
    if trials <= 0:
        return 0.0
    p = events / trials
    centre = p + z * z / (2 * trials)
    margin = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials))
    return round(100.0 * min(1.0, (centre + margin) / (1 + z * z / trials)), 2)


def _idle_reasons(status: str, status_reason: str, engine: dict[str, Any] | None, calls: dict[str, int],
                  trunks_down: bool, abandon_pct: float, cap_pct: float) -> list[IdleReason]:
    """Why a campaign places no calls: the engine's reasons (engine/idle.py) and what only the web sees — trunks
    down, the abandon cap, an auto-stop. ``engine`` None: no engine is running (the floor says so itself)."""
    if status == "auto_paused":
        return [IdleReason(code="auto_stopped", params={"reason": status_reason})]
    if status != "running" or engine is None:
        return []
    if calls.get("dialing", 0) or calls.get("ringing", 0):
        return []
    out = [IdleReason(code=str(r.get("code")), params=dict(r.get("params") or {}))
           for r in engine.get("idle_reasons", [])]
    if trunks_down and not any(r.code == "trunk_down" for r in out):
        out.append(IdleReason(code="trunk_down"))
    if abandon_pct > cap_pct:
        out.append(IdleReason(code="over_abandon_cap", params={"abandon_pct": abandon_pct, "cap_pct": cap_pct}))
    return out


#: How long the count of dialable contacts is reused (it scans the campaigns' due contacts).
DIALABLE_CACHE_S = 5.0
_dialable_cache: dict[tuple[str, int], tuple[float, int]] = {}


async def _dialable_left(session: AsyncSession, campaign_ids: list[int]) -> dict[int, int]:
    """Dialable contacts per campaign, counted at most every :data:`DIALABLE_CACHE_S` seconds per campaign."""
    bind = session.get_bind()
    db = str(bind.engine.url)
    now = time_module.monotonic()
    out: dict[int, int] = {}
    stale = []
    for cid in campaign_ids:
        hit = _dialable_cache.get((db, cid))
        if hit is not None and now - hit[0] < DIALABLE_CACHE_S:
            out[cid] = hit[1]
        else:
            stale.append(cid)
    if stale:
        for cid, n in (await repo.dialable_left(session, stale)).items():
            _dialable_cache[(db, cid)] = (now, n)
            out[cid] = n
    if len(_dialable_cache) > 10_000:
        _dialable_cache.clear()
    return out


async def find_attempts(session: AsyncSession, *, number: str | None = None, operator_id: int | None = None,
                        campaign_id: int | None = None, result_pending: bool = False,
                        limit: int = 50) -> list[AttemptBrief]:
    """The attempt search of the supervisor's floor: by number (as dialled or typed: 8916..., +7 916 ...)."""
    numbers: list[str] = []
    if number:
        digits = "".join(ch for ch in number if ch.isdigit())
        if not digits:
            raise ValidationFailed.field("number", "a phone number has digits")
        numbers = [number.strip(), digits, "+" + digits]
        if len(digits) == 11 and digits[0] == "8":
            numbers.append("+7" + digits[1:])
        if len(digits) == 10:
            numbers.append("+7" + digits)
    rows = await repo.find_attempts(session, numbers=sorted(set(numbers)), operator_id=operator_id,
                                    campaign_id=campaign_id, result_pending=result_pending, limit=limit)
    counts = await repo.transfer_counts(session, [a.id for a, *_ in rows])
    return [AttemptBrief(
        id=a.id, campaign_id=a.campaign_id, campaign_name=campaign_name, contact_id=a.contact_id, number=a.number,
        direction=a.direction,
        state=a.state.value, outcome=a.outcome.value if a.outcome else None, completion_code=code_name,
        operator_id=a.operator_id, operator_name=operator_name, queued_at=a.queued_at,
        talk_s=round((a.hung_up_at - a.connected_at).total_seconds(), 1)
        if a.connected_at is not None and a.hung_up_at is not None else None, transfers=counts.get(a.id, 0))
        for a, campaign_name, code_name, operator_name in rows]


async def record_result(session: AsyncSession, attempt_id: int, body: CompleteBody, *,
                        operator_id: int | None) -> AttemptBrief:
    """The result of a conversation a crash cut off, recorded afterwards by its operator (``operator_id``: only his
    own) or a supervisor (``None``). Recovery closed it with the placeholder code ``engine_restarted`` and already
    counted it on the contact; the recorded code replaces the placeholder and the strategy decides again for the
    contact from it (callback, never call, final or retry), without counting the attempt twice."""
    found = await repo.attempt_for_result(session, attempt_id)
    if found is None or (operator_id is not None and found[0].operator_id != operator_id):
        raise NotFound(f"attempt {attempt_id} not found")
    attempt, key = found
    if key != repo.RESULT_PENDING_CODE or attempt.connected_at is None:
        raise Conflict(f"attempt {attempt_id} has its result already: only a conversation cut off by an engine "
                       "restart waits for one", errors=[{"field": "attempt_id", "reason": "has a result"}])
    try:
        plan = await load_plan(session, attempt.campaign_id)
    except LookupError:
        raise Conflict(f"the campaign of attempt {attempt_id} no longer exists") from None
    code = plan.codes.get(body.completion_code_id) if body.completion_code_id is not None else None
    if code is None or not await repo.code_in_campaign(session, code.id, attempt.campaign_id):
        raise ValidationFailed.field("completion_code_id", f"code {body.completion_code_id} is not in the "
                                     "campaign's completion-code group")
    callback_at = body.callback_at
    if callback_at is not None:
        if attempt.contact_id is None:
            raise ValidationFailed.field("callback_at", f"{attempt.number} belongs to no contact: a callback on it "
                                         "could never be dialled")
        if callback_at.tzinfo is None:
            callback_at = callback_at.replace(tzinfo=UTC)
    attempt.completion_code_id, attempt.outcome = code.id, code.category
    if body.comment:
        attempt.comment = body.comment
    await session.flush()
    result = AttemptResult(
        attempt_id=attempt.id, campaign_id=attempt.campaign_id, contact_id=attempt.contact_id,
        phone_id=attempt.phone_id, number=attempt.number, category=code.category, completion_code_id=code.id,
        answered_by_machine=attempt.answered_by == "machine", callback_at=callback_at,
        callback_operator_id=attempt.operator_id if body.callback_personal and callback_at else None,
        never_call=body.never_call, comment=body.comment)
    await apply_result(session, plan, result, datetime.now(UTC), count=False)
    briefs = await find_attempts(session, operator_id=attempt.operator_id, campaign_id=attempt.campaign_id,
                                 limit=200)
    return next(b for b in briefs if b.id == attempt.id)


async def attempt_detail(session: AsyncSession, attempt_id: int) -> AttemptDetail:
    """The per-call card: every column, the stage timeline, derived durations, the operator's periods."""
    row = await repo.attempt_detail(session, attempt_id)
    if row is None:
        raise NotFound(f"attempt {attempt_id} does not exist")
    a, campaign_name, code_name, operator_name, wait_s = row
    stages = [("queued", a.queued_at), ("dialed", a.dialed_at), ("ringing", a.ringing_at),
              ("answered", a.answered_at), ("connected", a.connected_at), ("hung_up", a.hung_up_at),
              ("wrap_up_ended", a.wrap_up_ended_at)]
    reached = [(name, at) for name, at in stages if at is not None]
    timeline = [TimelineEntry(stage=name, at=at, duration_s=round((reached[i + 1][1] - at).total_seconds(), 3)
                              if i + 1 < len(reached) else None) for i, (name, at) in enumerate(reached)]

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
        direction=a.direction,
        caller_id=a.caller_id, state=a.state.value, outcome=a.outcome.value if a.outcome else None,
        completion_code_id=a.completion_code_id, completion_code=code_name, operator_id=a.operator_id,
        operator_name=operator_name, answered_by=a.answered_by, hangup_side=a.hangup_side,
        hangup_cause=a.hangup_cause, sip_code=a.sip_code, comment=a.comment, call_id=a.call_id, waited_s=waited,
        abandoned=abandoned, ring_s=span(a.dialed_at, a.answered_at or a.hung_up_at),
        talk_s=span(a.connected_at, a.hung_up_at), wrap_up_s=span(a.hung_up_at, a.wrap_up_ended_at)
        if a.connected_at is not None else None, timeline=timeline, operator_periods=periods, card=card,
        transfers=[transfer_read(r) for r in await repo.transfers_of(session, [a.id])])


# --- transfers (engine/transfers.py) ----------------------------------------------------------------------------


async def transfer_targets(session: AsyncSession, *, external_allowed: bool,
                           exclude_operator_id: int | None = None) -> TransferTargets:
    """Operators logged in with their state (a blind transfer needs a ready one), pools and skills."""
    ops, pools, skills = await repo.transfer_targets(session)
    return TransferTargets(
        operators=[TargetOperator(id=r.id, name=r.name, state=r.state.value if r.state is not None else "offline",
                                  reason=r.reason or "", campaign_name=r.campaign_name,
                                  phone_online=None if r.device_id is None else bool(r.online and r.reachable))
                   for r in ops if r.id != exclude_operator_id],
        pools=[TargetGroup(id=r.id, name=r.name, ready=int(r.ready or 0), members=int(r.members or 0))
               for r in pools],
        skills=[TargetGroup(id=r.id, name=r.name, ready=int(r.ready or 0), members=int(r.members or 0))
                for r in skills],
        external_allowed=external_allowed)


async def connected_attempt(session: AsyncSession, op: Operator, expected: int | None = None) -> int:
    """The attempt of the operator's conversation (what a transfer moves); 409 when he has none, or when it is not
    ``expected`` (the call the requester saw). The engine checks it again against the call it holds when the command
    runs (engine/transfers.py): a click as one call ends and the next is connected moves nobody."""
    period = await repo.current_period(session, op.id)
    if period is None or period.attempt_id is None or period.state is not OperatorState.in_call:
        raise Conflict(f"operator {op.name} has no conversation to transfer",
                       errors=[{"field": "state", "reason": "no call in progress"}])
    if expected is not None and int(period.attempt_id) != expected:
        raise Conflict(f"attempt {expected} is not operator {op.name}'s conversation any more (he talks in attempt "
                       f"{period.attempt_id})", errors=[{"field": "attempt_id", "reason": "not his current call"}])
    return int(period.attempt_id)


async def transfer_payload(session: AsyncSession, op: Operator, body: TransferBody, *, external_allowed: bool,
                           source: str, user_id: int) -> tuple[int, dict[str, Any]]:
    """Check a transfer before the engine gets it (it checks states again); returns the attempt and the payload."""
    attempt_id = await connected_attempt(session, op, body.attempt_id)
    payload: dict[str, Any] = {"to": body.to, "comment": body.comment, "source": source, "requested_by": user_id,
                               "attempt_id": attempt_id}
    if body.to == "operator":
        if body.operator_id is None:
            raise ValidationFailed.field("operator_id", "whom to transfer to: give an operator")
        target = await session.get(Operator, body.operator_id)
        if target is None or not target.is_active:
            raise ValidationFailed.field("operator_id", f"operator {body.operator_id} does not exist or is inactive")
        if target.id == op.id:
            raise ValidationFailed.field("operator_id", "the call is his already")
        payload["to_operator_id"] = target.id
    elif body.to == "pool":
        if body.pool_id is None or not await repo.pool_exists(session, body.pool_id):
            raise ValidationFailed.field("pool_id", f"pool {body.pool_id} does not exist")
        payload["pool_id"] = body.pool_id
    elif body.to == "skill":
        if body.skill_id is None or not await repo.skill_exists(session, body.skill_id):
            raise ValidationFailed.field("skill_id", f"skill {body.skill_id} does not exist")
        payload["skill_id"], payload["min_level"] = body.skill_id, body.min_level
    else:
        if not external_allowed:
            raise PermissionDenied("transferring customers to external numbers needs the permission "
                                   "transfers.external")
        try:
            payload["number"] = manual.normalize_number(body.number or "")
        except DialerError as err:
            raise ValidationFailed.field("number", err.detail) from None
    return attempt_id, payload


async def consult_payload(session: AsyncSession, op: Operator, body: ConsultBody, *, source: str,
                          user_id: int) -> tuple[int, dict[str, Any]]:
    attempt_id = await connected_attempt(session, op, body.attempt_id)
    target = await session.get(Operator, body.operator_id)
    if target is None or not target.is_active:
        raise ValidationFailed.field("operator_id", f"operator {body.operator_id} does not exist or is inactive")
    if target.id == op.id:
        raise ValidationFailed.field("operator_id", "an operator cannot consult himself")
    return attempt_id, {"to_operator_id": target.id, "comment": body.comment, "source": source,
                        "requested_by": user_id, "attempt_id": attempt_id}


async def audit_transfer(session: AsyncSession, action: str, attempt_id: int, op: Operator,
                         payload: dict[str, Any], result: CommandResult | None = None) -> None:
    """Every transfer request is in the audit log (the actor is the requesting user), a refused one with the
    engine's reason."""
    changes = {k: v for k, v in payload.items() if k not in ("requested_by",) and v not in (None, "")}
    label = f"{action}: operator {op.name}"
    if result is not None and not result.ok and not result.queued:
        label += f" — refused: {result.reason or 'by the engine'}"
    await log(session, AuditAction.custom, "attempts", attempt_id, changes={"operator_id": op.id, **changes},
              event_label=label[:500])


def transfer_read(row: Any) -> TransferRead:
    t = row[0]
    return TransferRead(
        id=t.id, kind=t.kind, source=t.source, from_operator_id=t.from_operator_id, from_operator_name=row.from_name,
        to_operator_id=t.to_operator_id, to_operator_name=row.to_name, to_pool_id=t.to_pool_id,
        to_pool_name=row.pool_name, to_skill_id=t.to_skill_id, to_skill_name=row.skill_name, to_number=t.to_number,
        comment=t.comment or "", requested_at=t.requested_at, connected_at=t.connected_at, ended_at=t.ended_at,
        result=t.result, detail=t.detail or "")
