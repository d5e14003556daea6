"""Why a running campaign places no calls, in words a supervisor can act on (#13: "why isn't it dialling").

Each reason is ``{"code": …, "params": {…}}`` (datetimes as ISO strings in UTC); the panels translate the code.
Two kinds:

- what the engine sees in memory at once (:func:`reasons_now`): outside the campaign's schedule (and when it opens
  next), no operator logged in to its pools, operators there but none with the skill its calls ask for, its
  concurrent-call limit reached;
- what only the database can tell when the hopper comes back empty (:func:`explain_empty`, run by the engine
  beside its actor at most every :data:`EXPLAIN_EVERY_S`): every contact is finished (``list_exhausted``), contacts
  are due but no phone's calling window is open (``no_contact_in_window``, with the moment the first window opens),
  or every contact waits for its retry time (``waiting_for_retry``, with the earliest).

The web adds what the engine does not know: trunks down, the abandon cap, an auto-stop (workplace/service.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, any_, func, literal_column, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from dialer.engine.assign import Demand, in_pools
from dialer.engine.selection import (
    _DONE,
    _NEXT_PHONE,
    _TABLE_PHONES,
    CampaignPlan,
    _bigints,
    _eligible_phone,
    _sources,
    _zone,
    campaign_open,
    contact_filters,
    not_in_dnc,
    window_open,
    work_left,
)
from dialer.engine.state import CampaignRuntime, OperatorSlot
from dialer.models.campaign import Callback
from dialer.models.contact import Contact, ContactPhone
from dialer.models.enums import CampaignStatus, OperatorState

__all__ = ["EXPLAIN_EVERY_S", "explain_empty", "needs_explaining", "next_open", "next_window", "reasons_now"]

#: How often the engine asks the database why a campaign's hopper is empty (per campaign).
EXPLAIN_EVERY_S = 30.0
#: How far ahead :func:`next_open` looks (a week and a day: every weekly schedule opens within it).
_HORIZON = timedelta(days=8)
#: Phones sampled to find the zones of the contacts waiting for their window.
_ZONE_SAMPLE = 500

Reason = dict[str, Any]


def _reason(code: str, **params: Any) -> Reason:
    return {"code": code, "params": {k: (v.astimezone(UTC).isoformat() if isinstance(v, datetime) else v)
                                     for k, v in params.items()}}


def next_open(plan: CampaignPlan, now_utc: datetime) -> datetime | None:
    """The first minute after ``now_utc`` at which :func:`campaign_open` is true (None: not within 8 days)."""
    step = timedelta(minutes=5)
    t = now_utc.replace(second=0, microsecond=0) + timedelta(minutes=1)
    end = now_utc + _HORIZON
    while t <= end:
        if campaign_open(plan, t):
            back = t - timedelta(minutes=1)  # refine to the minute: schedules are whole minutes
            while back > now_utc and campaign_open(plan, back):
                t, back = back, back - timedelta(minutes=1)
            return t
        t += step
    return None


def next_window(plan: CampaignPlan, now_utc: datetime, zone_sets: Iterable[tuple[str, ...]]) -> datetime | None:
    """The first moment after ``now_utc`` when the calling window is open in every zone of one of ``zone_sets``
    (a phone's zones; an empty one is the campaign's zone)."""
    start, end = plan.call_window_start, plan.call_window_end
    sets = [tuple(z) or (plan.time_zone,) for z in zone_sets]
    moments: set[datetime] = set()
    for zones in sets:
        for name in zones:
            try:
                tz = _zone(name)
            except Exception:
                continue
            local = now_utc.astimezone(tz)
            for days in range(3):
                at = datetime.combine(local.date() + timedelta(days=days), start, tzinfo=tz).astimezone(UTC)
                if at > now_utc:
                    moments.add(at)

    def all_open(at: datetime, zones: tuple[str, ...]) -> bool:
        try:
            return all(window_open(start, end, at.astimezone(_zone(z)).time().replace(tzinfo=None)) for z in zones)
        except Exception:
            return False

    for at in sorted(moments):
        if any(all_open(at, zones) for zones in sets):
            return at
    return None


def needs_explaining(c: CampaignRuntime) -> bool:
    """The hopper came back empty and nothing is in progress: only the database can say why."""
    return (c.status is CampaignStatus.running and c.open and not len(c.hopper) and not c.calls
            and c.refill_empty_at is not None)


async def explain_empty(session: AsyncSession, plan: CampaignPlan, now_utc: datetime) -> list[Reason]:
    """Why the hopper of an open campaign is empty: finished, windows closed, or retries not yet due."""
    if not await work_left(session, plan, now_utc):
        return [_reason("list_exhausted")]
    if plan.list_ids:
        # contacts due now that a selection takes, with a phone the strategy dials and no DNC entry blocks — the
        # hopper's conditions without the calling window
        sources = _sources(plan, now_utc)
        if sources:
            matched = or_(*[s.where for s in sources]) if len(sources) > 1 else sources[0].where
            next_phone = _NEXT_PHONE if plan.next_phone_column else None
            phone = and_(_eligible_phone(plan, _TABLE_PHONES, next_phone), not_in_dnc(plan, ContactPhone.e164))
            zones = (await session.scalars(
                select(ContactPhone.timezones).join(Contact, Contact.id == ContactPhone.contact_id).where(
                    Contact.list_id == any_(_bigints(plan.list_ids)), *contact_filters(plan, now_utc, ()),
                    matched, phone).limit(_ZONE_SAMPLE))).all()
            if zones:
                sets = {tuple(sorted(z or ())) for z in zones}
                at = next_window(plan, now_utc, sets)
                if at is not None:
                    return [_reason("no_contact_in_window", next_window_at=at)]
    retry = await session.scalar(select(func.min(Contact.next_call_at)).where(
        Contact.list_id == any_(_bigints(plan.list_ids or (0,))), Contact.status != _DONE,
        Contact.next_call_at > now_utc))
    callback = await session.scalar(select(func.min(Callback.window_start)).where(
        Callback.campaign_id == plan.campaign_id, Callback.status == literal_column("'pending'"),
        Callback.window_start > now_utc))
    due = min((t for t in (retry, callback) if t is not None), default=None)
    return [_reason("waiting_for_retry", next_retry_at=due)]


def reasons_now(c: CampaignRuntime, operators: Mapping[int, OperatorSlot], now_utc: datetime,
                explained: list[Reason], *, no_trunk: bool = False) -> list[Reason]:
    """What keeps ``c`` from dialling, as far as the engine's memory tells (plus the database's last answer,
    ``explained``, while its hopper stays empty)."""
    if c.status is not CampaignStatus.running:
        return []
    if not c.open:
        return [_reason("outside_schedule", next_open_at=next_open(c.plan, now_utc))]
    out: list[Reason] = [_reason("trunk_down")] if no_trunk else []
    limit = c.cfg.max_concurrent_calls
    if limit is not None and len(c.calls) >= limit:
        out.append(_reason("limit_reached", limit=limit))
    if needs_explaining(c):
        out.extend(explained)
    working = [o for o in operators.values() if o.state is not OperatorState.offline and o.info.is_active
               and in_pools(o, c)]
    if not working:
        out.append(_reason("no_operators"))
    else:
        demand = Demand.of(c) if len(c.hopper) else Demand(Demand.planned(c), True)
        if not any(demand.served_by(o) for o in working):
            skills = sorted({need[2] for need in demand.needs if need[2] is not None})
            out.append(_reason("no_operator_with_skill", skill_ids=skills))
    return out
