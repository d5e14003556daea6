"""Manual dial (001 "Ручной набор"): an operator calls a number or a contact himself, outside the queue.

The command ``manual_dial`` (``{"number": "+7…"}`` and/or ``{"contact_id": 5}``, with ``"campaign_id"``) reaches
the engine like any other; :func:`prepare` checks it and inserts its attempt inside the engine's actor, and the
placement collaborator (:meth:`dialer.engine.placement.CallPlacement.manual_dial`) places the call:

* the operator must be ready or on a break and have no call; the campaign must be loaded by the engine (running or
  paused) and the operator in its pools;
* a contact must belong to one of the campaign's lists; its number is the one given (one of its phones) or its
  first phone. A bare number is normalised (E.164) and attached to the contact of the campaign's lists that has
  it, if any; otherwise the attempt has no contact (the outcome then only adds DNC entries and callbacks);
* the number is checked against the campaign's DNC list and the global blacklist (as a number and by prefix) and
  against the strategy's calling window in the number's time zones, and refused with the reason; a contact or
  number already being called is refused too (the partial unique indexes
  of ``attempts`` decide, as for every call);
* the attempt row is inserted — committed — before the call is placed, with the operator reserved for it, so the
  call appears in the history, the reports and crash recovery like any other; it is answered straight to this
  operator, and its outcome comes from his normal wrap-up (or the wrap-up timeout).

An operator who dialled from a break goes back to that break once the call is over.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, exists, literal, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from dialer.contact.phonelookup import phone_lookup
from dialer.engine.assign import in_pools, move
from dialer.engine.context import EngineContext
from dialer.engine.operator_fsm import OperatorEvent as OE
from dialer.engine.repository import dnc_lists_of
from dialer.engine.selection import Candidate, not_in_dnc_lists, window_closes_at
from dialer.engine.state import CampaignRuntime, LiveCall, OperatorSlot
from dialer.exceptions import DialerError
from dialer.models import Attempt, Contact, ContactPhone
from dialer.models.enums import AttemptState, CampaignStatus, OperatorState
from dialer.phone.normalize import to_e164

__all__ = ["Target", "normalize_number", "prepare", "resolve"]

#: The priority recorded on the candidate of a manual call (it never competes in a hopper).
MANUAL_PRIORITY = 0


def normalize_number(raw: str) -> str:
    """The number in E.164, or :class:`DialerError` with the reason."""
    text = (raw or "").strip()
    if not text:
        raise DialerError("no number to dial")
    try:
        return to_e164(text)
    except Exception as err:  # InvalidPhone and the parser's own errors
        raise DialerError(f"'{text}' is not a valid phone number: {err}") from err


class Target:
    """What a manual dial calls: the number, and the contact and phone it belongs to (if any)."""

    def __init__(self, number: str, contact_id: int | None, phone_id: int | None, list_id: int | None) -> None:
        self.number = number
        self.contact_id = contact_id
        self.phone_id = phone_id
        self.list_id = list_id


async def resolve(session: AsyncSession, c: CampaignRuntime, *, number: str | None,
                  contact_id: int | None, now_utc: datetime) -> Target:
    """The number to dial and its contact, checked against the campaign's lists, DNC lists and calling window."""
    lists = list(c.plan.list_ids)
    if contact_id is not None:
        row = (await session.execute(select(Contact.id, Contact.list_id).where(Contact.id == contact_id))).first()
        if row is None:
            raise DialerError(f"contact {contact_id} does not exist")
        if row.list_id not in lists:
            raise DialerError(f"contact {contact_id} is not in a contact list of campaign {c.cfg.name!r}")
        phones = (await session.execute(
            select(ContactPhone.id, ContactPhone.e164).where(ContactPhone.contact_id == contact_id)
            .order_by(ContactPhone.position, ContactPhone.id))).all()
        if number:
            wanted = normalize_number(number)
            phone = next((p for p in phones if p.e164 == wanted), None)
            if phone is None:
                raise DialerError(f"{wanted} is not a phone of contact {contact_id}")
        elif phones:
            phone = phones[0]
        else:
            raise DialerError(f"contact {contact_id} has no phone number")
        target = Target(phone.e164, contact_id, phone.id, row.list_id)
    elif number:
        e164 = normalize_number(number)
        found = (await session.execute(
            select(ContactPhone.id, ContactPhone.contact_id, Contact.list_id)
            .join(Contact, Contact.id == ContactPhone.contact_id)
            .where(ContactPhone.e164 == e164, Contact.list_id.in_(lists))
            .order_by(ContactPhone.contact_id).limit(1))).first() if lists else None
        target = Target(e164, found.contact_id, found.id, found.list_id) if found is not None else \
            Target(e164, None, None, None)
    else:
        raise DialerError("give a number or a contact id to dial")
    allowed = await session.scalar(select(not_in_dnc_lists(dnc_lists_of(c.id), literal(target.number)).label("ok")))
    if not allowed:
        raise DialerError(f"{target.number} is on a do-not-call list (the campaign's or the global blacklist)")
    await _check_window(session, c, target, now_utc)
    return target


async def _check_window(session: AsyncSession, c: CampaignRuntime, target: Target, now_utc: datetime) -> None:
    """A manual call keeps the law's hours too: the strategy's calling window must be open in every time zone of
    the number (its phone's zones; a bare number's from the phone-code table and ``phonenumbers``; none known:
    the campaign's zone)."""
    start, end = c.plan.call_window_start, c.plan.call_window_end
    if start == end:
        return  # open all day
    zones: tuple[str, ...] = ()
    if target.phone_id is not None:
        zones = tuple(await session.scalar(select(ContactPhone.timezones).where(
            ContactPhone.id == target.phone_id)) or ())
    else:
        zones = tuple((await phone_lookup(session)).details(target.number).timezones)
    zones = zones or (c.plan.time_zone,)
    closes = window_closes_at(start, end, now_utc, zones)
    if closes is not None and closes <= now_utc:
        shut = [z for z in zones if window_closes_at(start, end, now_utc, (z,)) == now_utc] or list(zones)
        local = ", ".join(f"{now_utc.astimezone(ZoneInfo(z)):%H:%M} {z}" for z in shut[:3])
        raise DialerError(f"{target.number} is outside its calling window {start:%H:%M}–{end:%H:%M} "
                          f"(local time {local})")


async def _insert(db: AsyncSession | AsyncConnection, row: Mapping[str, Any]) -> int | None:
    """Insert the live attempt; None when a live attempt holds its contact or number (or DNC blocks it now)."""
    chosen = select(*[_literal(k, v) for k, v in row.items()]).where(
        not_in_dnc_lists(dnc_lists_of(row["campaign_id"]), literal(row["number"])))
    stmt = pg_insert(Attempt).from_select(list(row), chosen).on_conflict_do_nothing().returning(Attempt.id)
    found = (await db.execute(stmt)).scalar_one_or_none()
    return int(found) if found is not None else None


def _literal(key: str, value: Any) -> Any:
    column = Attempt.__table__.c[key]
    return bindparam(f"m_{key}", value, type_=column.type).label(key)


async def _why_busy(session: AsyncSession, target: Target) -> str:
    live = Attempt.state != AttemptState.done
    if target.contact_id is not None and await session.scalar(select(exists().where(
            live, Attempt.contact_id == target.contact_id))):
        return f"contact {target.contact_id} is being called right now"
    if await session.scalar(select(exists().where(live, Attempt.number == target.number))):
        return f"{target.number} is being called right now"
    return f"{target.number} is on a do-not-call list"


async def prepare(ctx: EngineContext, op: OperatorSlot, payload: Mapping[str, Any]) -> LiveCall:
    """Check a ``manual_dial`` command for ``op`` (inside the actor) and insert its attempt, the operator reserved
    for it; returns the live call to place, or raises :class:`DialerError` with the reason."""
    if op.call is not None or op.state not in (OperatorState.ready, OperatorState.paused):
        raise DialerError(f"a manual call needs the operator ready or on a break without a call; he is "
                          f"{op.state.value.replace('_', '-')}")
    try:
        campaign_id = int(payload["campaign_id"])
    except (KeyError, TypeError, ValueError):
        raise DialerError("a manual call needs the campaign it belongs to (campaign_id)") from None
    c = ctx.campaigns.get(campaign_id)
    if c is None or c.status not in (CampaignStatus.running, CampaignStatus.paused):
        raise DialerError(f"campaign {campaign_id} is not running")
    if not op.info.is_active or not in_pools(op, c):
        raise DialerError(f"operator {op.info.name} does not work for campaign {c.cfg.name!r} (not in its pools)")
    raw_contact = payload.get("contact_id")
    contact_id = int(raw_contact) if raw_contact not in (None, "") else None
    number = str(payload.get("number") or "").strip() or None
    async with ctx.maker() as session:
        target = await resolve(session, c, number=number, contact_id=contact_id, now_utc=ctx.clock.utcnow())
    if any(x.number == target.number or (target.contact_id is not None and x.contact_id == target.contact_id)
           for x in ctx.attempts.values()):
        raise DialerError(f"{target.number} is being called right now")
    utc = ctx.clock.utcnow()
    caller = c.next_caller_id()
    row = {"campaign_id": c.id, "contact_id": target.contact_id, "phone_id": target.phone_id,
           "selection_id": None, "callback_id": None, "operator_id": op.id, "engine_run_id": ctx.run_id,
           "number": target.number, "caller_id": caller, "state": AttemptState.dialing, "queued_at": utc,
           "dialed_at": utc, "hangup_cause": "", "comment": ""}
    attempt_id = await ctx.commit_now(lambda db: _insert(db, row))
    if attempt_id is None:
        async with ctx.maker() as session:
            raise DialerError(await _why_busy(session, target))
    # A number that is no contact's has no contact, phone or list: the ctx's call records carry None there
    # (apply_result handles an attempt without a contact).
    candidate = Candidate(contact_id=cast(int, target.contact_id), phone_id=cast(int, target.phone_id),
                          number=target.number, list_id=cast(int, target.list_id), selection_id=None,
                          callback_id=None, operator_id=op.id, skill_id=None, min_skill_level=None, pool_id=None,
                          priority=MANUAL_PRIORITY)
    call = LiveCall(attempt_id=attempt_id, campaign=c, candidate=candidate, caller_id=caller,
                    state=AttemptState.dialing, queued_utc=utc, operator=op, reserved=True)
    c.calls[attempt_id] = call
    ctx.attempts[attempt_id] = call
    if op.state is OperatorState.paused:
        # back to the break after the call (the periods show the call between the two)
        op.pending = (OperatorState.paused, op.reason or "break")
        ctx.roster.transition(op, OE.go_ready)
    op.call = call
    move(op, c, ctx.campaigns)
    ctx.roster.transition(op, OE.reserve)
    return call
