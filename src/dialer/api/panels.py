"""Reads the browser panels need that no domain API gives in one piece (``/api/panels``).

- ``GET /api/panels/campaigns/{id}/codes``: the completion codes of a campaign, for the buttons that record the
  result of a conversation an engine crash cut off (the operator's own, or a supervisor's on the floor);
- ``GET /api/panels/my-callbacks``: the operator's callbacks due today or overdue, with the comment he wrote on
  the call that booked each (001: "перезвоны"; the callback's own comment is the engine's placeholder);
- ``GET /api/panels/my-day``: the operator's own figures for today;
- ``GET /api/panels/contacts/{id}/attempts``: a contact's call history for the administration's contact dialog.

Each checks a permission like every endpoint; the operator's reads are scoped to the caller's own operator.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel
from sqlalchemy import and_, func, or_, select, true
from sqlalchemy.orm import aliased

from dialer.api.deps import Session, require
from dialer.auth.permissions import P
from dialer.auth.service import Principal
from dialer.exceptions import NotFound
from dialer.models import Attempt, Callback, Campaign, CompletionCode, Contact, Operator
from dialer.models.enums import AttemptState, CallbackKind, CallbackStatus, OutcomeCategory
from dialer.web.access import RequireAny
from dialer.workplace import repository as workplace_repo
from dialer.workplace.schemas import CodeRead
from dialer.workplace.service import OPERATOR_DAY_ZONE, operator_of

router = APIRouter(prefix="/api/panels", tags=["panels"])

_codes_reader = Depends(RequireAny(P.panel_use, P.operators_control))
_panel = Depends(require(P.panel_use))
_contacts = Depends(require(P.contacts_read))


class MyCallback(BaseModel):
    id: int
    campaign_id: int
    campaign_name: str
    contact_id: int | None
    number: str
    #: ``personal``: for this operator only; ``common``: any operator of the campaign.
    kind: str
    window_start: datetime
    window_end: datetime
    #: The window has passed and nobody called yet.
    overdue: bool
    #: What the operator wrote on the call that booked it ("" when none).
    comment: str
    #: The call that booked it, when known.
    attempt_id: int | None


class MyDay(BaseModel):
    """The operator's own figures since midnight (Moscow, as the supervisor's floor counts an operator's day)."""

    since: datetime
    #: Calls he worked (offered or dialled for him), finished.
    calls: int
    #: Of them, conversations (connected to him).
    conversations: int
    talk_s: float
    #: Average conversation length (0 without conversations).
    avg_talk_s: float
    #: Finished calls per outcome category.
    outcomes: dict[str, int]
    #: Finished calls per completion code, most frequent first.
    codes: list[dict[str, Any]]
    #: Callbacks he booked today.
    callbacks_booked: int


class ContactAttempt(BaseModel):
    id: int
    campaign_id: int
    campaign_name: str | None
    number: str
    state: str
    outcome: str | None
    completion_code: str | None
    operator_name: str | None
    queued_at: datetime
    talk_s: float | None
    sip_code: int | None
    comment: str


@router.get("/campaigns/{campaign_id}/codes", response_model=list[CodeRead],
            summary="The completion codes of a campaign (its completion-code group)")
async def campaign_codes(campaign_id: int, session: Session, _: Any = _codes_reader) -> Any:
    if await session.get(Campaign, campaign_id) is None:
        raise NotFound(f"campaign {campaign_id} does not exist")
    return [CodeRead(id=c.id, name=c.name, category=c.category.value, hotkey=c.hotkey, is_final=c.is_final,
                     system_key=c.system_key) for c in await workplace_repo.campaign_codes(session, campaign_id)]


def _booking_attempt() -> Any:
    """The call that booked a callback: the latest attempt on its contact in its campaign that an operator worked
    and that ended before the callback was made (the engine books it when it applies that call's result)."""
    booking = aliased(Attempt)
    return (select(booking.id, booking.operator_id, booking.comment)
            .where(booking.campaign_id == Callback.campaign_id, booking.contact_id == Callback.contact_id,
                   booking.operator_id.is_not(None), booking.queued_at <= Callback.created_at)
            .order_by(booking.id.desc()).limit(1).correlate(Callback).lateral("booking"))


@router.get("/my-callbacks", response_model=list[MyCallback],
            summary="My callbacks due today or overdue (personal ones and those I booked)")
async def my_callbacks(session: Session, principal: Principal = _panel) -> Any:
    op = await operator_of(session, principal.user_id)
    now = datetime.now(UTC)
    booking = _booking_attempt()
    rows = (await session.execute(
        select(Callback, Campaign.name, Campaign.time_zone, booking.c.id, booking.c.comment)
        .join(Campaign, Campaign.id == Callback.campaign_id)
        .outerjoin(booking, true())
        .where(Callback.status == CallbackStatus.pending,
               or_(and_(Callback.kind == CallbackKind.personal, Callback.operator_id == op.id),
                   booking.c.operator_id == op.id),
               Callback.window_start < now + timedelta(days=2))
        .order_by(Callback.window_start, Callback.id).limit(500))).all()
    out = []
    for cb, campaign_name, zone, attempt_id, comment in rows:
        local_now = now.astimezone(ZoneInfo(zone))
        tomorrow = datetime.combine(local_now.date() + timedelta(days=1), time(0), tzinfo=local_now.tzinfo)
        if cb.window_start >= tomorrow:
            continue  # later than today in the campaign's time zone
        out.append(MyCallback(id=cb.id, campaign_id=cb.campaign_id, campaign_name=campaign_name,
                              contact_id=cb.contact_id, number=cb.number, kind=cb.kind.value,
                              window_start=cb.window_start, window_end=cb.window_end, overdue=cb.window_end < now,
                              comment=comment or "", attempt_id=attempt_id))
    return out


@router.get("/my-day", response_model=MyDay, summary="My figures for today: calls, conversations, talk time, codes")
async def my_day(session: Session, principal: Principal = _panel) -> Any:
    op = await operator_of(session, principal.user_id)
    local = datetime.now(UTC).astimezone(ZoneInfo(OPERATOR_DAY_ZONE))
    since = datetime.combine(local.date(), time(0), tzinfo=local.tzinfo).astimezone(UTC)
    figures = (await workplace_repo.operators_today(session, [op.id], since)).get(op.id, {"talk_s": 0.0, "codes": []})
    mine = and_(Attempt.operator_id == op.id, Attempt.queued_at >= since, Attempt.state == AttemptState.done)
    outcomes = {(o.value if o is not None else "none"): int(n) for o, n in (await session.execute(
        select(Attempt.outcome, func.count()).where(mine).group_by(Attempt.outcome))).all()}
    outcomes.pop("none", None)
    conversations = int(await session.scalar(
        select(func.count()).select_from(Attempt).where(mine, Attempt.connected_at.is_not(None))) or 0)
    booking = _booking_attempt()
    booked = int(await session.scalar(
        select(func.count()).select_from(Callback).join(booking, true())
        .where(booking.c.operator_id == op.id, Callback.created_at >= since)) or 0)
    talk = float(figures["talk_s"])
    return MyDay(since=since, calls=sum(outcomes.values()), conversations=conversations, talk_s=talk,
                 avg_talk_s=round(talk / conversations, 1) if conversations else 0.0,
                 outcomes={c.value: outcomes.get(c.value, 0) for c in OutcomeCategory},
                 codes=figures["codes"], callbacks_booked=booked)


@router.get("/contacts/{contact_id}/attempts", response_model=list[ContactAttempt],
            summary="A contact's calls, the latest first")
async def contact_attempts(contact_id: int, session: Session, limit: int = Query(100, ge=1, le=500),
                           _: Any = _contacts) -> Any:
    if await session.get(Contact, contact_id) is None:
        raise NotFound(f"contact {contact_id} does not exist")
    rows = (await session.execute(
        select(Attempt, Campaign.name, CompletionCode.name, Operator.name)
        .outerjoin(Campaign, Campaign.id == Attempt.campaign_id)
        .outerjoin(CompletionCode, CompletionCode.id == Attempt.completion_code_id)
        .outerjoin(Operator, Operator.id == Attempt.operator_id)
        .where(Attempt.contact_id == contact_id).order_by(Attempt.id.desc()).limit(limit))).all()
    return [ContactAttempt(
        id=a.id, campaign_id=a.campaign_id, campaign_name=campaign_name, number=a.number, state=a.state.value,
        outcome=a.outcome.value if a.outcome else None, completion_code=code_name, operator_name=operator_name,
        queued_at=a.queued_at, sip_code=a.sip_code, comment=a.comment or "",
        talk_s=round((a.hung_up_at - a.connected_at).total_seconds(), 1)
        if a.connected_at is not None and a.hung_up_at is not None else None)
        for a, campaign_name, code_name, operator_name in rows]


routers = [router]
