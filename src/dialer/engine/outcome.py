"""What happens to a contact after an attempt ends: the strategy's rules (000 §10.1, 002 §5.2.5).

:func:`apply_result` runs in the caller's transaction, beside its update of the attempt row. It
counts the attempt on the contact, then :func:`decide` — a pure function, the whole rule book —
says whether the contact is finished or when to call it next, and on which phone.

The rules, first match wins
---------------------------
1. **Never call** (the operator's button) or a code that ``adds_to_dnc``: the number goes into the
   campaign's DNC list — the global blacklist when the campaign has none — and the contact is
   final.
2. A code marked **is_final**: final.
3. The operator's **postpone** (``callback_at``): a callback at that time — personal when an
   operator is named, common otherwise — valid for :data:`CALLBACK_WINDOW`; the contact's timer
   is set to the same time (so it is called even if the callback window passes unserved). A
   postpone is the customer's wish: it outranks the retry rules and the attempt limit.
4. The code's **result rule** for today's day type (working day, or weekend/holiday by the
   calendar): final; or call again after ``retry_interval_s`` (or the strategy's common interval);
   and when the rule switches phones, after ``attempts_on_previous_number`` attempts on the
   current number the next call goes to the contact's phone of ``switch_to_phone_type`` (its
   lowest position, never the current number). Without such a phone the contact stays on the
   current number.
5. Otherwise the **outcome's retry setting** (``busy: 15;60;1440, at most 5``): the k-th attempt
   that ended this way waits the k-th interval (the last one repeats); the attempt that reaches
   ``max_attempts`` is final. An answering machine is the outcome ``machine`` when the strategy
   has that setting, and its category's otherwise; each attempt counts toward the one setting
   that handles it.
6. Otherwise call again after the strategy's **common interval**.
7. Whatever 4–6 said, reaching the strategy's ``max_attempts_per_contact`` is final.

Every attempt adds one to ``attempts_total`` and to today's ``attempts_today`` (restarting at 1 on
a new day in the campaign's zone), and sets ``last_outcome`` and ``last_attempt_at``. A final
contact is ``done`` with no timer, other contacts ``in_progress``. The callback the attempt served
is marked done whatever the outcome (the retry rules take over); a new postpone cancels the
contact's other pending callbacks in the campaign, and so does a final decision.

Where a switch is remembered: ``contacts.next_phone_id`` (proposed column, see
:data:`dialer.engine.selection.NEXT_PHONE_COLUMN`); until it exists the decision still reports
the switch but the hopper keeps dialling the phone field's phone first.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import case, func, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from dialer.audit.recorder import log
from dialer.crm.outbox import capture_results
from dialer.engine.selection import (
    NEXT_PHONE_COLUMN,
    CampaignPlan,
    CodePlan,
    OutcomeRetryPlan,
    ResultRulePlan,
    code_plan,
)
from dialer.models import Attempt, Callback, CompletionCode, Contact, ContactPhone, DncEntry
from dialer.models.enums import AuditAction, CallbackKind, CallbackStatus, ContactStatus, OutcomeCategory, PhoneType

#: How long a callback made by a postpone stays valid (after that the contact's timer still holds).
CALLBACK_WINDOW = timedelta(hours=1)
#: The retry setting for answering machines (``strategy_outcome_retries.outcome``).
MACHINE = "machine"


class Reason(StrEnum):
    """Why a decision was taken (for logs, reports and tests)."""

    never_call = "never_call"
    dnc_code = "dnc_code"
    final_code = "final_code"
    postponed = "postponed"
    rule_final = "rule_final"
    rule_retry = "rule_retry"
    rule_switch = "rule_switch"
    switch_unavailable = "switch_unavailable"
    outcome_retry = "outcome_retry"
    outcome_exhausted = "outcome_exhausted"
    common_interval = "common_interval"
    max_attempts = "max_attempts"


@dataclass(frozen=True)
class AttemptResult:
    """How an attempt ended, as the engine reports it to :func:`apply_result`."""

    attempt_id: int
    campaign_id: int
    contact_id: int | None
    phone_id: int | None
    number: str
    category: OutcomeCategory
    completion_code_id: int
    answered_by_machine: bool = False
    #: The operator's postpone: call back at this time (personal when the operator is given).
    callback_at: datetime | None = None
    callback_operator_id: int | None = None
    #: The operator's "never call again".
    never_call: bool = False
    #: The operator's comment (a callback booked with the result carries it).
    comment: str = ""


@dataclass(frozen=True, slots=True)
class ContactDecision:
    """What the rules decided for the contact."""

    final: bool
    next_call_at: datetime | None
    switch_to_phone_type: PhoneType | None
    reason: str
    #: The number was put into a DNC list.
    add_to_dnc: bool = False


@dataclass(frozen=True, slots=True)
class History:
    """The contact's attempts, each count including the attempt being decided."""

    #: All attempts on the contact.
    attempts_total: int
    #: Attempts handled by the same outcome retry setting (see :func:`retry_key`).
    outcome_attempts: int
    #: Attempts on the number just dialled.
    number_attempts: int


def retry_key(retries: Mapping[str, OutcomeRetryPlan], category: OutcomeCategory, machine: bool) -> str:
    """The outcome retry setting that handles an attempt: ``machine`` if it has one, else the category."""
    return MACHINE if machine and MACHINE in retries else category.value


def _final(reason: Reason, *, dnc: bool = False) -> ContactDecision:
    return ContactDecision(True, None, None, reason, add_to_dnc=dnc)


def decide(*, code: CodePlan, never_call: bool, callback_at: datetime | None, rule: ResultRulePlan | None,
           retry: OutcomeRetryPlan | None, history: History, max_attempts_per_contact: int | None,
           common_interval_s: int, switch_types_available: Collection[PhoneType], now: datetime) -> ContactDecision:
    """The strategy's verdict on one attempt (the rules of this module's docstring, in order); pure.

    ``rule`` is the code's result rule for today's day type, ``retry`` the outcome retry setting
    that handles the attempt (looked up by the caller: :func:`retry_key`); ``switch_types_available``
    are the types of the contact's phones other than the one just dialled.
    """
    if never_call or code.adds_to_dnc:
        return _final(Reason.never_call if never_call else Reason.dnc_code, dnc=True)
    if code.is_final:
        return _final(Reason.final_code)
    if callback_at is not None:
        return ContactDecision(False, callback_at, None, Reason.postponed)
    if rule is not None:
        if rule.is_final:
            return _final(Reason.rule_final)
        interval = rule.retry_interval_s if rule.retry_interval_s is not None else common_interval_s
        switch: PhoneType | None = None
        reason = Reason.rule_retry
        wanted = rule.switch_to_phone_type
        if wanted is not None and history.number_attempts >= (rule.attempts_on_previous_number or 1):
            if wanted in switch_types_available:
                switch, reason = wanted, Reason.rule_switch
            else:
                reason = Reason.switch_unavailable
        decision = ContactDecision(False, now + timedelta(seconds=interval), switch, reason)
    elif retry is not None and retry.intervals_min:
        if history.outcome_attempts >= retry.max_attempts:
            return _final(Reason.outcome_exhausted)
        k = min(max(history.outcome_attempts, 1), len(retry.intervals_min))
        decision = ContactDecision(False, now + timedelta(minutes=retry.intervals_min[k - 1]), None,
                                   Reason.outcome_retry)
    else:
        decision = ContactDecision(False, now + timedelta(seconds=common_interval_s), None, Reason.common_interval)
    if max_attempts_per_contact is not None and history.attempts_total >= max_attempts_per_contact:
        return _final(Reason.max_attempts)
    return decision


# --- the database side ----------------------------------------------------------------------------


async def _code(session: AsyncSession, plan: CampaignPlan, code_id: int) -> CodePlan:
    found = plan.codes.get(code_id)
    if found is not None:
        return found
    row = await session.get(CompletionCode, code_id)
    if row is None:
        raise LookupError(f"completion code {code_id} does not exist")
    return code_plan(row)


async def _history(session: AsyncSession, plan: CampaignPlan, result: AttemptResult,
                   key: str, *, counted: bool = False) -> tuple[History, int | None]:
    """Locks the contact (until the caller's commit), counts its earlier attempts; also the callback served."""
    machine = Attempt.answered_by == "machine"
    if key == MACHINE:
        same_setting = machine
    elif MACHINE in plan.outcome_retries:
        same_setting = (Attempt.outcome == key) & Attempt.answered_by.is_distinct_from("machine")
    else:
        same_setting = Attempt.outcome == key
    earlier = (Attempt.contact_id == result.contact_id, Attempt.id != result.attempt_id)
    outcome = select(func.count()).where(*earlier, same_setting).scalar_subquery().label("outcome")
    on_number = select(func.count()).where(*earlier, Attempt.number == result.number).scalar_subquery().label("number")
    served = _served_callback(result).label("served")
    row = (await session.execute(
        select(Contact.attempts_total, outcome, on_number, served)
        .where(Contact.id == result.contact_id).with_for_update(of=Contact))).one_or_none()
    if row is None:  # the contact was deleted meanwhile
        return History(1, 1, 1), await session.scalar(select(_served_callback(result)))
    # ``counted``: the contact's total includes this attempt already (a result recorded in place of another)
    return History(row.attempts_total + (0 if counted else 1), row.outcome + 1, row.number + 1), row.served


def _served_callback(result: AttemptResult) -> Any:
    return select(Attempt.callback_id).where(Attempt.id == result.attempt_id).scalar_subquery()


async def _other_phones(session: AsyncSession, result: AttemptResult) -> list[Any]:
    rows = await session.execute(
        select(ContactPhone.id, ContactPhone.phone_type).where(
            ContactPhone.contact_id == result.contact_id, ContactPhone.e164 != result.number)
        .order_by(ContactPhone.position, ContactPhone.id))
    return [r for r in rows.all() if r.id != result.phone_id]


async def _rules(session: AsyncSession, plan: CampaignPlan, result: AttemptResult, now_utc: datetime,
                 ) -> tuple[CodePlan, str, ResultRulePlan | None, OutcomeRetryPlan | None]:
    """The attempt's code, its retry key, and the rule that applies: the code's result rule for today's day type,
    else the outcome's retry setting."""
    code = await _code(session, plan, result.completion_code_id)
    key = retry_key(plan.outcome_retries, result.category, result.answered_by_machine)
    rule = plan.result_rules.get((code.id, plan.day_type(now_utc)))
    return code, key, rule, plan.outcome_retries.get(key) if rule is None else None


def _verdict(plan: CampaignPlan, result: AttemptResult, now_utc: datetime, code: CodePlan,
             rule: ResultRulePlan | None, retry: OutcomeRetryPlan | None, history: History,
             phones: Sequence[Any]) -> ContactDecision:
    return decide(code=code, never_call=result.never_call, callback_at=result.callback_at, rule=rule, retry=retry,
                  history=history, max_attempts_per_contact=plan.max_attempts_per_contact,
                  common_interval_s=plan.common_retry_interval_s,
                  switch_types_available={p.phone_type for p in phones}, now=now_utc)


async def apply_result(session: AsyncSession, plan: CampaignPlan, result: AttemptResult,
                       now_utc: datetime, *, count: bool = True) -> ContactDecision:
    """Count the attempt on its contact and apply the strategy's decision, in the caller's transaction.

    ``count=False`` applies a result that replaces one already counted (the result an operator records later for a
    conversation a crash cut off): the decision is taken anew, the counters stay.

    Writes the contact's counters, status and timer (and the next phone, once
    ``contacts.next_phone_id`` exists); adds the number to DNC, creates or closes callbacks as
    the module docstring says. Never commits. An attempt without a contact (a manual call) only
    gets its DNC entry and callback.
    """
    code, key, rule, retry = await _rules(session, plan, result, now_utc)
    phones: list[Any] = []
    if result.contact_id is None:
        history, served = History(1, 1, 1), await session.scalar(select(_served_callback(result)))
    else:
        history, served = await _history(session, plan, result, key, counted=not count)
        if rule is not None and rule.switch_to_phone_type is not None:
            phones = await _other_phones(session, result)
    decision = _verdict(plan, result, now_utc, code, rule, retry, history, phones)
    if result.contact_id is not None:
        target = next((p.id for p in phones if p.phone_type == decision.switch_to_phone_type), None)
        await _update_contact(session, plan, result, decision, now_utc, target, count=count)
    if decision.add_to_dnc:
        await _add_to_dnc(session, plan, result)
    await _settle_callbacks(session, plan, result, decision, now_utc, served)
    # the CRM writes and webhooks of this result are committed with it (docs/crm.md)
    await capture_results(session, [(result, decision, now_utc)])
    return decision


async def apply_results(session: AsyncSession,
                        items: Sequence[tuple[CampaignPlan, AttemptResult, datetime]]) -> list[ContactDecision]:
    """:func:`apply_result` for each item, with a few statements for the whole batch instead of several per attempt.

    The journal's optimistic path: the contacts are locked (in id order) and read with all their attempts in two
    queries, :func:`decide` runs per attempt, and the counters, statuses and timers are written by one
    ``UPDATE ... FROM unnest``; the rare parts (a phone switch, a DNC entry, callbacks) go per attempt as in
    :func:`apply_result`. A batch in which one contact appears twice is applied one attempt after the other, so
    the second sees the first's counts exactly as the sequential path would.
    """
    contact_ids = [r.contact_id for _, r, _ in items if r.contact_id is not None]
    if len(set(contact_ids)) != len(contact_ids):
        return [await apply_result(session, plan, result, now) for plan, result, now in items]
    ids = sorted(contact_ids)
    totals: dict[int, int] = {}
    if ids:
        totals = {int(i): int(t) for i, t in (await session.execute(
            select(Contact.id, Contact.attempts_total).where(Contact.id.in_(ids)).order_by(Contact.id)
            .with_for_update())).all()}
    earlier: dict[int, list[Any]] = {}
    if totals:
        for row in (await session.execute(
                select(Attempt.contact_id, Attempt.id, Attempt.outcome, Attempt.answered_by, Attempt.number)
                .where(Attempt.contact_id.in_(list(totals))))).all():
            earlier.setdefault(int(row.contact_id), []).append(row)
    served = {int(i): c for i, c in (await session.execute(
        select(Attempt.id, Attempt.callback_id).where(Attempt.id.in_([r.attempt_id for _, r, _ in items])))).all()}

    decisions: list[ContactDecision] = []
    rows: list[tuple[int, Any, str, datetime, str, datetime | None]] = []
    for plan, result, now_utc in items:
        code, key, rule, retry = await _rules(session, plan, result, now_utc)
        phones: list[Any] = []
        if result.contact_id is None or result.contact_id not in totals:  # no contact, or deleted meanwhile
            history = History(1, 1, 1)
        else:
            others = [a for a in earlier.get(result.contact_id, ()) if a.id != result.attempt_id]
            history = History(totals[result.contact_id] + 1,
                              sum(1 for a in others if _same_setting(plan, key, a)) + 1,
                              sum(1 for a in others if a.number == result.number) + 1)
            if rule is not None and rule.switch_to_phone_type is not None:
                phones = await _other_phones(session, result)
        decision = _verdict(plan, result, now_utc, code, rule, retry, history, phones)
        decisions.append(decision)
        if result.contact_id is not None and result.contact_id in totals:
            status = ContactStatus.done if decision.final else ContactStatus.in_progress
            rows.append((result.contact_id, plan.local_date(now_utc), result.category.value, now_utc, status.value,
                         decision.next_call_at))
            target = next((p.id for p in phones if p.phone_type == decision.switch_to_phone_type), None)
            if plan.next_phone_column and target is not None:
                await session.execute(text(f"UPDATE contacts SET {NEXT_PHONE_COLUMN} = :phone WHERE id = :contact"),
                                      {"phone": target, "contact": result.contact_id})
    if rows:
        await session.execute(_CONTACTS_UPDATE, {
            "ids": [r[0] for r in rows], "today": [r[1] for r in rows], "outcome": [r[2] for r in rows],
            "at": [r[3] for r in rows], "status": [r[4] for r in rows], "next": [r[5] for r in rows]})
    for (plan, result, now_utc), decision in zip(items, decisions, strict=True):
        if decision.add_to_dnc:
            await _add_to_dnc(session, plan, result)
        await _settle_callbacks(session, plan, result, decision, now_utc, served.get(result.attempt_id))
    await capture_results(session, [(result, decision, now_utc) for (_, result, now_utc), decision
                                    in zip(items, decisions, strict=True)])
    return decisions


#: The contact side of :func:`apply_results` for many attempts at once (the same columns as :func:`_update_contact`).
_CONTACTS_UPDATE = text(
    "UPDATE contacts AS c SET attempts_total = c.attempts_total + 1, "
    "attempts_today = CASE WHEN c.attempts_day = v.today THEN c.attempts_today + 1 ELSE 1 END, "
    "attempts_day = v.today, last_outcome = v.outcome, last_attempt_at = v.at, status = v.status, "
    "next_call_at = v.next "
    "FROM unnest(CAST(:ids AS bigint[]), CAST(:today AS date[]), CAST(:outcome AS text[]), "
    "CAST(:at AS timestamptz[]), CAST(:status AS text[]), CAST(:next AS timestamptz[])) "
    "AS v(id, today, outcome, at, status, next) WHERE c.id = v.id")


def _same_setting(plan: CampaignPlan, key: str, attempt: Any) -> bool:
    """Whether an earlier attempt was handled by the outcome retry setting ``key`` (as :func:`_history` counts)."""
    machine = attempt.answered_by == "machine"
    outcome = attempt.outcome.value if attempt.outcome is not None else None
    if key == MACHINE:
        return machine
    if MACHINE in plan.outcome_retries:
        return outcome == key and not machine
    return outcome == key


async def _update_contact(session: AsyncSession, plan: CampaignPlan, result: AttemptResult,
                          decision: ContactDecision, now_utc: datetime, next_phone_id: int | None, *,
                          count: bool = True) -> None:
    today = plan.local_date(now_utc)
    values: dict[Any, Any] = {
        Contact.last_outcome: result.category,
        Contact.status: ContactStatus.done if decision.final else ContactStatus.in_progress,
        Contact.next_call_at: decision.next_call_at,
    }
    if count:
        values.update({
            Contact.attempts_total: Contact.attempts_total + 1,
            Contact.attempts_today: case((Contact.attempts_day == today, Contact.attempts_today + 1), else_=1),
            Contact.attempts_day: today,
            Contact.last_attempt_at: now_utc,
        })
    # Engine bookkeeping, not a configuration change: a plain UPDATE (the attempt row is the record).
    await session.execute(update(Contact).where(Contact.id == result.contact_id).values(values)
                          .execution_options(synchronize_session=False))
    if plan.next_phone_column and next_phone_id is not None:
        await session.execute(text(f"UPDATE contacts SET {NEXT_PHONE_COLUMN} = :phone WHERE id = :contact"),
                              {"phone": next_phone_id, "contact": result.contact_id})


async def _add_to_dnc(session: AsyncSession, plan: CampaignPlan, result: AttemptResult) -> None:
    list_id = plan.dnc_list_id if plan.dnc_list_id is not None else plan.global_dnc_list_id
    # shown in the (Russian-first) DNC list screens
    comment = f"Больше не звонить (попытка {result.attempt_id})" if result.never_call \
        else f"Код завершения {result.completion_code_id} (попытка {result.attempt_id})"
    entry_id = await session.scalar(
        pg_insert(DncEntry).values(list_id=list_id, number=result.number, is_prefix=False, comment=comment)
        .on_conflict_do_nothing(constraint="uq_dnc_entries_list_number").returning(DncEntry.id))
    if entry_id is not None:
        await log(session, AuditAction.created, "dnc_entries", entry_id,
                  changes={"list_id": {"old": None, "new": list_id}, "number": {"old": None, "new": result.number},
                           "comment": {"old": None, "new": comment}})


async def _settle_callbacks(session: AsyncSession, plan: CampaignPlan, result: AttemptResult,
                            decision: ContactDecision, now_utc: datetime, served: int | None) -> None:
    if served is not None:
        await session.execute(update(Callback).where(Callback.id == served, Callback.status == CallbackStatus.pending)
                              .values(status=CallbackStatus.done, updated_at=now_utc)
                              .execution_options(synchronize_session=False))
    # a callback is dialled for a contact only (the command refuses a postpone of a bare number)
    postponed = decision.reason == Reason.postponed and result.callback_at is not None and result.contact_id is not None
    if result.contact_id is not None and (decision.final or postponed):
        await session.execute(
            update(Callback).where(Callback.campaign_id == plan.campaign_id,
                                   Callback.contact_id == result.contact_id,
                                   Callback.status == CallbackStatus.pending)
            .values(status=CallbackStatus.cancelled, updated_at=now_utc)
            .execution_options(synchronize_session=False))
    if postponed:
        assert result.callback_at is not None
        personal = result.callback_operator_id is not None
        session.add(Callback(
            campaign_id=plan.campaign_id, contact_id=result.contact_id, number=result.number,
            kind=CallbackKind.personal if personal else CallbackKind.common, operator_id=result.callback_operator_id,
            window_start=result.callback_at, window_end=result.callback_at + CALLBACK_WINDOW,
            status=CallbackStatus.pending,
            comment=result.comment.strip() or f"Перенос звонка оператором (попытка {result.attempt_id})"))
        await session.flush()


__all__ = [
    "CALLBACK_WINDOW",
    "AttemptResult",
    "ContactDecision",
    "History",
    "Reason",
    "apply_result",
    "apply_results",
    "decide",
    "retry_key",
]
