"""Calls cut by a crash: counted and passed through the strategy at the next start.

:func:`dialer.engine.repository.start_run` closes the attempts a dead engine left in flight (system code
``engine_restarted``, category ``error``, hung up when last known alive). Each one is an attempt like any other: this
module hands it to :func:`~dialer.engine.outcome.apply_results` with its campaign's plan, so it is counted on the
contact (``attempts_total``, ``attempts_today``, ``last_outcome``) and the strategy's rules decide when the contact
is called again (the code's result rule, else the ``error`` outcome's retry setting, else the common interval) —
never at once, which is what happened when recovered contacts were merely freed. A recovered attempt whose strategy
cannot be applied (its campaign deleted, a contact gone) stays closed; the failure is logged, the others go on.

Transfers cut by a crash: a transfer's row is committed ``pending`` before the telephony call and its result goes
through the write-behind journal (:mod:`dialer.engine.transfers`), so a crash in between leaves it pending for ever.
:func:`close_transfers` ends, at start, every pending transfer of an attempt that is done — the attempts recovered
just now and any whose result was journalled while the transfer's was lost (one engine at a time: no transfer of a
done attempt can still be in progress) — with the result ``abandoned`` and the detail ``engine_restarted``.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from dialer.engine.outcome import AttemptResult, apply_result, apply_results
from dialer.engine.repository import RecoveredAttempt
from dialer.engine.selection import CampaignPlan, load_plan
from dialer.models import Attempt
from dialer.models.enums import AttemptState, OutcomeCategory
from dialer.models.transfer import CallTransfer

__all__ = ["RESTARTED_DETAIL", "apply_strategy", "close_transfers"]

#: The detail of a transfer closed at start because the engine that carried it out died.
RESTARTED_DETAIL = "engine_restarted: the engine stopped before the transfer's result was recorded"

log = logging.getLogger(__name__)


async def apply_strategy(session: AsyncSession, recovered: list[RecoveredAttempt], code_id: int | None,
                         now_utc: datetime) -> int:
    """Apply the strategy to the recovered attempts in the caller's transaction; returns how many were applied."""
    if not recovered or code_id is None:
        return 0
    plans: dict[int, CampaignPlan | None] = {}
    items: list[tuple[CampaignPlan, AttemptResult, datetime]] = []
    for r in recovered:
        if r.campaign_id not in plans:
            try:
                async with session.begin_nested():
                    plans[r.campaign_id] = await load_plan(session, r.campaign_id)
            except LookupError:
                plans[r.campaign_id] = None
        plan = plans[r.campaign_id]
        if plan is None:
            log.warning("recovered attempt %s: campaign %s is gone; its result stays as it is", r.attempt_id,
                        r.campaign_id)
            continue
        items.append((plan, AttemptResult(
            attempt_id=r.attempt_id, campaign_id=r.campaign_id, contact_id=r.contact_id, phone_id=r.phone_id,
            number=r.number, category=OutcomeCategory.error, completion_code_id=code_id,
            answered_by_machine=r.answered_by == "machine"), now_utc))
    try:
        async with session.begin_nested():
            await apply_results(session, items)
        return len(items)
    except Exception:
        log.exception("applying the strategy to %d recovered attempts at once failed; one by one", len(items))
    applied = 0
    for plan, result, at in items:
        try:
            async with session.begin_nested():
                await apply_result(session, plan, result, at)
            applied += 1
        except Exception:
            log.exception("applying the strategy to recovered attempt %s failed", result.attempt_id)
    return applied


async def close_transfers(session: AsyncSession, now_utc: datetime) -> int:
    """Close the pending transfers of done attempts (see the module docstring); returns how many, in the caller's
    transaction (after :func:`dialer.engine.repository.start_run` closed the attempts of dead runs)."""
    done = select(Attempt.id).where(Attempt.state == AttemptState.done)
    rows = (await session.execute(
        update(CallTransfer).where(CallTransfer.result == "pending", CallTransfer.attempt_id.in_(done))
        .values(result="abandoned", ended_at=now_utc, detail=RESTARTED_DETAIL)
        .returning(CallTransfer.id))).all()
    if rows:
        log.warning("closed %d transfers left pending by a dead engine", len(rows))
    return len(rows)
