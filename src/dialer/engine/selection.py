"""Which contacts a campaign may dial now: indexed queries that fill the engine's hopper.

The engine does not look for a contact per call. It asks :func:`fill_hopper` for the next ``limit``
candidates at once (a contact, the phone to dial and the routing the call needs) and keeps them in
memory until operators are free. Every query ends in ``ORDER BY … LIMIT`` over an index, so the
cost follows ``limit``, not the size of the lists (measured with 1,000,000 contacts in
``tests/engine/test_selection_bench.py``).

What is dialable now (the rules, in the order they are applied)
---------------------------------------------------------------
* **The campaign is open** (:func:`campaign_open`): not before its ``start_at``; not on a holiday of
  the calendar (a listed day that is not marked as a working day); inside one of the weekly
  schedule's periods in the campaign's time zone (from ``start`` on its weekday to ``end``; an end
  of 00:00 is midnight, an end before the start is the next day's, start = end is 24 hours). A
  campaign without a schedule is open at any hour of a non-holiday. Weekends are not holidays
  here: the schedule says whether Saturday is dialled; a transferred working Saturday follows
  Saturday's periods. Outside those hours :func:`fill_hopper` returns nothing.
* **Due callbacks first** (priority :data:`CALLBACK_PRIORITY`): pending callbacks of the campaign
  with ``window_start ≤ now < window_end``, earliest window first, one per contact. A personal
  callback carries its operator (only he may take it). The customer chose that time, so a
  callback ignores the contact's timer and the attempt limits, but never the calling window in the
  phone's zones (the law's hours hold for callbacks too: one booked for 23:00 local waits for the
  window to open while its own window lasts), DNC, a live call or a finished (``done``) contact.
  It is dialled on its own number, which must be one of the contact's phones (a callback without a
  contact, or with a number the contact does not have, is not served by the hopper).
* **Then the selections, highest priority first** (ties by id). A contact belongs to the first
  active selection whose *conditions* hold; that selection's limits (attempts in total and today,
  pause since the last attempt) then decide whether it is dialable, and it is never taken by a
  lower selection. A selection's candidates come in its sort order; a selection without a sort
  uses the default order. Without any selection, every contact of the lists is dialled in the
  default order: timer first (``next_call_at`` null first, then earliest), then id. A campaign
  whose selections are all inactive dials nothing but its callbacks: switching the only
  selection off must not start calling the whole list. A selection whose stored conditions no
  longer compile (a field was deleted) is skipped and named in :attr:`CampaignPlan.problems`.
* **Every contact**: of the campaign's lists, status not ``done``, ``next_call_at`` null or due,
  the strategy's limits (``max_attempts_per_contact`` on ``attempts_total``,
  ``max_attempts_per_day`` on today's attempts — ``attempts_today`` counts only when
  ``attempts_day`` is today in the campaign's zone — and ``pause_between_attempts_s`` since
  ``last_attempt_at``), no live attempt (``attempts.state <> 'done'``), not in
  ``exclude_contact_ids`` (what the hopper already holds).
* **The phone to dial** is the contact's first *dialable* phone in this order: the phone chosen by
  a "switch to another phone" result rule (``contacts.next_phone_id``, used when that column
  exists: see the module's note), then the strategy's phone field's phone, then the phones whose
  type a switch rule of the strategy names, by position. A phone is dialable when it is in no DNC
  list (the campaign's list and the global blacklist; an entry blocks its number or, as a prefix,
  every number starting with it), no live attempt holds its number, and the strategy's calling
  window is open in *each* of its time zones; a phone without a zone uses the campaign's zone.

How the queries stay indexed
----------------------------
*Zones.* :func:`zones_in_use` takes a census of the zones phones have (the GIN index on
``timezones`` answers "is there a phone in zone z?" for each IANA zone in milliseconds; the census
is kept a minute and only grows). :func:`open_zones` computes, once a minute, which of those zones
are inside the strategy's window now, and the query asks ``contact_phones.timezones <@ :open``
(true for a phone without zones) plus ``&& :open`` while the campaign's own zone is closed. The
array stays a handful of names, so the test costs little per row and the planner's estimates for
the GIN index are right. A phone in a zone new to the database waits for the next census.

*Two routes per list.* Contact first: the list's due contacts come in order from an index
(``ix_contacts_due`` for the default order) and each one's best dialable phone is looked up; with
most contacts callable this stops after about ``limit`` contacts. The scan gives up after
``max(SCAN_CAP_MIN, SCAN_CAP_PER_ROW × batch)`` contacts; if it came back short, the lists it gave
up on are searched phone first: their phones in open zones (GIN), their contacts, sorted. That
bounds the night-time case (few zones open, or a list of one region that is closed) by the phones
that can be called rather than by the list. Several lists are merged by the same ORDER BY.

*Cheap checks last.* DNC and live-call checks are evaluated per candidate in order and stop with
the ``LIMIT`` (a column of a fenced subquery, not a join the planner could turn into a hash over all
candidates). Inside the hopper's transaction plans are made per call (``plan_cache_mode =
force_custom_plan``: the right route depends on the values) and ``random_page_cost`` is 1.1.

Indexes the queries rely on (migration proposed in the report; the benchmark test creates them):
:data:`INDEXES`.
"""

from __future__ import annotations

import logging
import time as time_module
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Select,
    Text,
    all_,
    and_,
    any_,
    case,
    exists,
    func,
    literal,
    literal_column,
    or_,
    select,
    text,
    true,
    union,
    union_all,
)
from sqlalchemy.dialects.postgresql import ARRAY, array, distinct_on
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import ColumnClause, UnaryExpression
from sqlalchemy.sql.selectable import SelectBase

from dialer.campaign.calendar import calendar_of, day_type
from dialer.campaign.selection import (
    ConditionError,
    FieldInfo,
    compile_conditions,
    compile_limits,
    compile_sort,
    referenced_field_ids,
)
from dialer.campaign.validation import span_minutes
from dialer.models import (
    Attempt,
    Callback,
    Campaign,
    CampaignSchedule,
    CompletionCode,
    Contact,
    ContactPhone,
    DncEntry,
    DncList,
    Field,
    Holiday,
    Selection,
    Strategy,
    StrategyOutcomeRetry,
    StrategyResultRule,
    campaign_lists,
)
from dialer.models.enums import CallbackKind, CampaignKind, DayType, OutcomeCategory, PhoneType

log = logging.getLogger(__name__)

#: ``Candidate.priority`` of a due callback: above every selection (selections have 1–100).
CALLBACK_PRIORITY = 101
#: ``Candidate.priority`` of a contact of a campaign without selections.
DEFAULT_PRIORITY = 0
#: The column a switch rule writes the next phone to (proposed; used once it exists).
NEXT_PHONE_COLUMN = "next_phone_id"
#: The contact-first route gives up after max(SCAN_CAP_MIN, SCAN_CAP_PER_ROW × batch) contacts (see ``_Pass``).
SCAN_CAP_MIN = 4000
SCAN_CAP_PER_ROW = 32
#: Seconds a census of the zones phones have is trusted (see :func:`zones_in_use`).
ZONE_CENSUS_MAX_AGE_S = 60.0
#: ``random_page_cost`` inside the hopper's transactions (see ``_planner_settings``).
RANDOM_PAGE_COST = 1.1
#: E.164: "+" and at most 15 digits, so a number has at most 15 prefixes "+7" … the whole number.
_E164_MAX = 16

#: Indexes the hopper's queries are planned around: name → definition (to be added by a migration).
INDEXES: dict[str, str] = {
    # The contacts that can still be dialled, per list in timer order: "COALESCE(...) <= now" is a
    # range, so the contact-first scan reads due contacts only and stops after the last one.
    "ix_contacts_due": "CREATE INDEX ix_contacts_due ON contacts "
                       "(list_id, (COALESCE(next_call_at, '-infinity'::timestamptz)), id) WHERE status <> 'done'",
    # Phones by zone: the phone-first route and the census of zones in use (see zones_in_use).
    "ix_contact_phones_timezones": "CREATE INDEX ix_contact_phones_timezones ON contact_phones "
                                   "USING gin (timezones)",
}


# --- the plan -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Candidate:
    """One contact to dial, the phone to dial and how to route the call."""

    contact_id: int
    phone_id: int
    number: str
    list_id: int
    selection_id: int | None
    callback_id: int | None
    #: Callback affinity: only this operator may take the call.
    operator_id: int | None
    skill_id: int | None
    min_skill_level: int | None
    pool_id: int | None
    #: The selection's priority; :data:`CALLBACK_PRIORITY` for callbacks, :data:`DEFAULT_PRIORITY` without selections.
    priority: int
    #: UTC moment after which the candidate may not be dialled any more: the earliest end of the strategy's calling
    #: window in the phone's zones (a callback: the end of its window); None while the window never closes.
    closes_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class SchedulePeriod:
    """One period of the weekly schedule: from ``start`` on ``weekday`` (0 = Monday) to ``end`` (see campaign_open)."""

    weekday: int
    start: time
    end: time


@dataclass(frozen=True, slots=True)
class SelectionPlan:
    """An active selection as stored (conditions and sort are compiled per pass: "today" moves)."""

    id: int
    name: str
    priority: int
    conditions: tuple[Mapping[str, Any], ...]
    sort: tuple[Mapping[str, Any], ...]
    skill_id: int | None
    min_skill_level: int | None
    pool_id: int | None
    max_attempts_total: int | None
    max_attempts_per_day: int | None
    pause_between_attempts_s: int | None


@dataclass(frozen=True, slots=True)
class OutcomeRetryPlan:
    """Retries after an outcome: the k-th such attempt waits ``intervals_min[k-1]`` (the last repeats)."""

    outcome: str  # an OutcomeCategory value or "machine"
    intervals_min: tuple[int, ...]
    max_attempts: int


@dataclass(frozen=True, slots=True)
class ResultRulePlan:
    """What a completion code leads to on a day type (000 §10.1)."""

    completion_code_id: int
    day_type: DayType
    retry_interval_s: int | None
    use_common_interval: bool
    attempts_on_previous_number: int | None
    switch_to_phone_type: PhoneType | None
    is_final: bool


@dataclass(frozen=True, slots=True)
class CodePlan:
    """A completion code as the outcome rules see it."""

    id: int
    name: str
    category: OutcomeCategory
    is_final: bool
    adds_to_dnc: bool
    system_key: str | None


@dataclass(frozen=True)
class CampaignPlan:
    """Everything about a campaign the hopper and the outcome rules need, loaded once by :func:`load_plan`.

    The plan is a snapshot: reload it when the campaign, its strategy, selections, schedule or the
    holiday calendar change (the engine does so on its configuration events and periodically).
    Contacts, phones, DNC entries, callbacks and attempts are never cached: every query reads them.
    """

    campaign_id: int
    name: str
    kind: CampaignKind
    time_zone: str
    start_at: datetime | None
    list_ids: tuple[int, ...]
    schedule: tuple[SchedulePeriod, ...]
    #: The holiday calendar: listed day → is it a (transferred) working day.
    holidays: Mapping[date, bool]
    dnc_list_id: int | None
    global_dnc_list_id: int
    strategy_id: int
    phone_field_id: int | None
    skill_id: int | None
    call_window_start: time
    call_window_end: time
    max_attempts_per_contact: int | None
    max_attempts_per_day: int | None
    pause_between_attempts_s: int
    common_retry_interval_s: int
    #: Outcome ("busy", …, "machine") → its retry setting.
    outcome_retries: Mapping[str, OutcomeRetryPlan]
    #: (completion code id, day type) → its result rule.
    result_rules: Mapping[tuple[int, DayType], ResultRulePlan]
    #: Every completion code (codes made later are read from the database when they occur).
    codes: Mapping[int, CodePlan]
    #: The active selections that compile, highest priority first.
    selections: tuple[SelectionPlan, ...]
    #: The campaign has selections at all (active or not, valid or not).
    has_selections: bool
    #: The fields the selections refer to.
    fields: Mapping[int, FieldInfo]
    #: What is wrong with the configuration (broken selections), for the supervisor.
    problems: tuple[str, ...]
    #: ``contacts.next_phone_id`` exists (switch rules are then remembered per contact).
    next_phone_column: bool
    loaded_at: datetime

    @property
    def tz(self) -> ZoneInfo:
        return _zone(self.time_zone)

    @property
    def dnc_list_ids(self) -> tuple[int, ...]:
        """The lists whose entries block a number: the campaign's and the global blacklist."""
        if self.dnc_list_id is None or self.dnc_list_id == self.global_dnc_list_id:
            return (self.global_dnc_list_id,)
        return (self.dnc_list_id, self.global_dnc_list_id)

    @property
    def switch_phone_types(self) -> tuple[PhoneType, ...]:
        """Phone types the strategy's rules switch to: their phones are dialled after the phone field's."""
        return tuple(sorted({r.switch_to_phone_type for r in self.result_rules.values()
                             if r.switch_to_phone_type is not None}))

    def local_date(self, now_utc: datetime) -> date:
        """Today in the campaign's time zone (what "today" means for per-day limits and rules)."""
        return now_utc.astimezone(self.tz).date()

    def day_type(self, now_utc: datetime) -> DayType:
        """Working day or weekend/holiday today, by the holiday calendar."""
        return day_type(self.local_date(now_utc), self.holidays)


@lru_cache(maxsize=1024)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


async def load_plan(session: AsyncSession, campaign_id: int) -> CampaignPlan:
    """Read a campaign's configuration into a :class:`CampaignPlan` (a dozen small queries).

    Raises ``LookupError`` when the campaign or its strategy does not exist.
    """
    campaign = await session.get(Campaign, campaign_id)
    if campaign is None:
        raise LookupError(f"campaign {campaign_id} does not exist")
    strategy = await session.get(Strategy, campaign.strategy_id)
    if strategy is None:
        raise LookupError(f"strategy {campaign.strategy_id} of campaign {campaign_id} does not exist")
    now = datetime.now(UTC)
    list_ids = tuple((await session.scalars(
        select(campaign_lists.c.list_id).where(campaign_lists.c.campaign_id == campaign_id)
        .order_by(campaign_lists.c.list_id))).all())
    schedule = tuple(SchedulePeriod(p.weekday, p.start, p.end) for p in (await session.scalars(
        select(CampaignSchedule).where(CampaignSchedule.campaign_id == campaign_id)
        .order_by(CampaignSchedule.weekday, CampaignSchedule.start))).all())
    holidays = calendar_of((await session.scalars(select(Holiday))).all())
    global_dnc = (await session.scalars(select(DncList.id).where(DncList.is_global))).one()
    retries = {r.outcome: OutcomeRetryPlan(r.outcome, tuple(r.intervals_min), r.max_attempts)
               for r in (await session.scalars(
                   select(StrategyOutcomeRetry).where(StrategyOutcomeRetry.strategy_id == strategy.id))).all()}
    rules = {(r.completion_code_id, r.day_type): ResultRulePlan(
        r.completion_code_id, r.day_type, r.retry_interval_s, r.use_common_interval, r.attempts_on_previous_number,
        r.switch_to_phone_type, r.is_final)
        for r in (await session.scalars(
            select(StrategyResultRule).where(StrategyResultRule.strategy_id == strategy.id))).all()}
    codes = {c.id: code_plan(c) for c in (await session.scalars(select(CompletionCode))).all()}
    all_selections = (await session.scalars(
        select(Selection).where(Selection.campaign_id == campaign_id)
        .order_by(Selection.priority.desc(), Selection.id))).all()
    wanted = referenced_field_ids(*[s.conditions or [] for s in all_selections],
                                  *[s.sort or [] for s in all_selections])
    fields = {f.id: FieldInfo(f.id, f.name, f.type, tuple(f.options or ())) for f in (await session.scalars(
        select(Field).where(Field.id.in_(wanted)))).all()} if wanted else {}
    tz = _zone(campaign.time_zone)
    today = now.astimezone(tz).date()
    selections: list[SelectionPlan] = []
    problems: list[str] = []
    for s in all_selections:
        if not s.is_active:
            continue
        try:
            compile_conditions(s.conditions or [], fields, today=today, tz=tz)
            compile_sort(s.sort or [], fields, today=today, tz=tz)
        except ConditionError as err:
            problems.append(f"selection '{s.name}' is skipped: {err}")
            log.warning("campaign %s: selection %s is skipped: %s", campaign_id, s.id, err)
            continue
        selections.append(SelectionPlan(
            s.id, s.name, s.priority, tuple(s.conditions or ()), tuple(s.sort or ()), s.skill_id, s.min_skill_level,
            s.pool_id, s.max_attempts_total, s.max_attempts_per_day, s.pause_between_attempts_s))
    next_phone_column = bool(await session.scalar(text(
        "SELECT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() "
        "AND table_name = 'contacts' AND column_name = :column)"), {"column": NEXT_PHONE_COLUMN}))
    return CampaignPlan(
        campaign_id=campaign.id, name=campaign.name, kind=campaign.kind, time_zone=campaign.time_zone,
        start_at=campaign.start_at, list_ids=list_ids, schedule=schedule, holidays=holidays,
        dnc_list_id=campaign.dnc_list_id, global_dnc_list_id=global_dnc, strategy_id=strategy.id,
        phone_field_id=strategy.phone_field_id, skill_id=strategy.skill_id,
        call_window_start=strategy.call_window_start, call_window_end=strategy.call_window_end,
        max_attempts_per_contact=strategy.max_attempts_per_contact, max_attempts_per_day=strategy.max_attempts_per_day,
        pause_between_attempts_s=strategy.pause_between_attempts_s or 0,
        common_retry_interval_s=strategy.common_retry_interval_s, outcome_retries=retries, result_rules=rules,
        codes=codes, selections=tuple(selections), has_selections=bool(all_selections), fields=fields,
        problems=tuple(problems), next_phone_column=next_phone_column, loaded_at=now)


def code_plan(code: CompletionCode) -> CodePlan:
    return CodePlan(code.id, code.name, code.category, code.is_final, code.adds_to_dnc, code.system_key)


# --- time -----------------------------------------------------------------------------------------


def campaign_open(plan: CampaignPlan, now_utc: datetime) -> bool:
    """Whether the campaign may dial at ``now_utc`` by its start time, holidays and weekly schedule.

    Closed before ``start_at`` and all day on a holiday of the calendar (a listed day not marked as
    a working day). Otherwise open inside a period of the weekly schedule (campaign's zone): from its
    ``start`` on its weekday for :func:`~dialer.campaign.validation.span_minutes` — an ``end`` of
    00:00 is midnight, an ``end`` before ``start`` reaches into the next day, ``start == end`` is 24
    hours. A campaign without any schedule period is open all day.
    """
    if plan.start_at is not None and now_utc < plan.start_at:
        return False
    local = now_utc.astimezone(plan.tz)
    if plan.holidays.get(local.date()) is False:
        return False
    if not plan.schedule:
        return True
    # minutes since Monday 00:00; a period covers [its start, + span) round the week (overnight ones reach into
    # the next day, Sunday's into Monday)
    week = 7 * 1440
    minute = local.weekday() * 1440 + local.hour * 60 + local.minute + (local.second + local.microsecond / 1e6) / 60
    return any((minute - (p.weekday * 1440 + p.start.hour * 60 + p.start.minute)) % week < span_minutes(p.start, p.end)
               for p in plan.schedule)


def window_open(start: time, end: time, local: time) -> bool:
    """``start ≤ local < end``; a window with ``start > end`` runs over midnight, ``start == end`` is all day."""
    if start == end:
        return True
    if start < end:
        return start <= local < end
    return local >= start or local < end


def window_closes_at(start: time, end: time, now_utc: datetime, zones: Iterable[str]) -> datetime | None:
    """The first moment after ``now_utc`` at which the window ``start``–``end`` is closed in one of ``zones``.

    None for an all-day window (``start == end``); ``now_utc`` itself when the window is not open now in one of
    them (or a name is not a time zone). The end is taken in each zone's wall-clock time, across DST changes.
    """
    if start == end:
        return None
    closes: datetime | None = None
    for name in zones:
        try:
            tz = _zone(name)
        except (ZoneInfoNotFoundError, ValueError):
            return now_utc
        local = now_utc.astimezone(tz)
        moment = local.time().replace(tzinfo=None)
        if not window_open(start, end, moment):
            return now_utc
        day = local.date() if moment < end else local.date() + timedelta(days=1)
        at = datetime.combine(day, end, tzinfo=tz).astimezone(UTC)
        closes = at if closes is None or at < closes else closes
    return closes


@lru_cache(maxsize=1)
def _known_zones() -> tuple[str, ...]:
    return tuple(sorted(available_timezones()))


@lru_cache(maxsize=256)
def _open_zones_at(start: time, end: time, minute: datetime, among: frozenset[str] | None) -> frozenset[str]:
    opened = set()
    for name in _known_zones() if among is None else among:
        try:
            zone = _zone(name)
        except (ZoneInfoNotFoundError, ValueError):
            continue
        if window_open(start, end, minute.astimezone(zone).time().replace(tzinfo=None)):
            opened.add(name)
    return frozenset(opened)


def open_zones(start: time, end: time, now_utc: datetime, among: Iterable[str] | None = None) -> frozenset[str]:
    """The zones (of ``among``, default every IANA zone) where the window ``start``–``end`` is open at ``now_utc``.

    Windows are whole minutes and zone offsets too, so the answer changes only on a minute: it is
    cached per minute. Names that are not time zones are never open.
    """
    minute = now_utc.astimezone(UTC).replace(second=0, microsecond=0)
    return _open_zones_at(start, end, minute, None if among is None else frozenset(among))


@dataclass(frozen=True, slots=True)
class _Census:
    zones: frozenset[str]
    taken_at: float


_censuses: dict[str, _Census] = {}


def forget_zones() -> None:
    """Drop the cached census of zones in use (tests; after bulk changes to phones' zones)."""
    _censuses.clear()


async def zones_in_use(session: AsyncSession, *, max_age_s: float | None = None) -> frozenset[str]:
    """The time zones the contacts' phones have, from a census at most ``max_age_s`` old.

    The calling-window test compares each phone's zones with the open ones; passing only zones
    that occur keeps that array small (a handful instead of ~600), which keeps the per-row test
    cheap and the planner's estimates for the GIN index right. The census asks the GIN index once
    per IANA zone not yet seen (milliseconds; a scan of the phones without the index), and only
    grows until the process restarts: a zone whose phones were deleted stays, harmlessly. A phone
    in a zone new to the database waits for the next census (:data:`ZONE_CENSUS_MAX_AGE_S`).
    """
    bind = session.bind
    key = str(getattr(bind, "url", ""))
    age = ZONE_CENSUS_MAX_AGE_S if max_age_s is None else max_age_s
    cached = _censuses.get(key)
    now = time_module.monotonic()
    if cached is not None and now - cached.taken_at < age:
        return cached.zones
    known = cached.zones if cached is not None else frozenset()
    indexed = await session.scalar(text(
        "SELECT EXISTS (SELECT 1 FROM pg_indexes WHERE schemaname = current_schema() "
        "AND tablename = 'contact_phones' AND indexname = :name)"), {"name": "ix_contact_phones_timezones"})
    if indexed:
        candidates = [z for z in _known_zones() if z not in known]
        found = (await session.scalars(text(
            "SELECT z FROM unnest(CAST(:zones AS text[])) z "
            "WHERE EXISTS (SELECT 1 FROM contact_phones p WHERE p.timezones && ARRAY[z])"),
            {"zones": candidates})).all()
    else:
        found = (await session.scalars(text(
            "SELECT DISTINCT z FROM contact_phones p CROSS JOIN LATERAL unnest(p.timezones) z"))).all()
    zones = known | frozenset(found)
    _censuses[key] = _Census(zones, now)
    return zones


# --- SQL pieces -----------------------------------------------------------------------------------

# Literals (not parameters) where a partial index's predicate must be proven from the query.
_DONE: ColumnClause[Any] = literal_column("'done'")
_MINUS_INFINITY: ColumnClause[Any] = literal_column("'-infinity'::timestamptz")
#: A column, or an expression over columns.
_Expr = ColumnElement[Any] | InstrumentedAttribute[Any]
_NEXT_PHONE = literal_column(f"contacts.{NEXT_PHONE_COLUMN}", BigInteger)


def due_at() -> ColumnElement[Any]:
    """``COALESCE(next_call_at, '-infinity')``: the timer with "never called" first (ix_contacts_due's key)."""
    return func.coalesce(Contact.next_call_at, _MINUS_INFINITY)


def default_order() -> list[ColumnElement[Any]]:
    return [due_at().asc(), Contact.id.asc()]


def _bigints(values: Iterable[int]) -> ColumnElement[Any]:
    return literal(sorted(set(values)), ARRAY(BigInteger))


def not_in_dnc(plan: CampaignPlan, number: _Expr) -> ColumnElement[bool]:
    """No entry of the campaign's DNC lists blocks ``number``, as the number or as one of its prefixes."""
    return not_in_dnc_lists(plan.dnc_list_ids, number)


def not_in_dnc_lists(list_ids: Iterable[int] | SelectBase, number: _Expr) -> ColumnElement[bool]:
    """No entry of the DNC lists ``list_ids`` (ids, or a query of them) blocks ``number``, as the number or as one
    of its prefixes.

    The prefixes are spelled out (``number = ANY(ARRAY[left(n, 2), …, n])``), so one scan of the
    unique index on ``(list_id, number, is_prefix)`` answers both kinds of entry.
    """
    prefixes = array([func.left(number, n) for n in range(2, _E164_MAX)] + [number])
    lists = DncEntry.list_id.in_(list_ids) if isinstance(list_ids, SelectBase) else \
        DncEntry.list_id == any_(_bigints(list_ids))
    return ~exists().where(
        lists,
        DncEntry.number == any_(prefixes),
        or_(DncEntry.is_prefix, DncEntry.number == number),
    )


def no_live_number(number: _Expr) -> ColumnElement[bool]:
    """No call in progress to ``number`` (served by ``uq_attempts_live_number``)."""
    return ~exists().where(Attempt.number == number, Attempt.state != _DONE)


def no_live_contact(contact_id: _Expr) -> ColumnElement[bool]:
    """No call in progress for the contact (served by ``uq_attempts_live_contact``)."""
    return ~exists().where(Attempt.contact_id == contact_id, Attempt.state != _DONE)


def in_window(plan: CampaignPlan, now_utc: datetime, in_use: Iterable[str]) -> ColumnElement[bool] | None:
    """The phone's calling window is open in each of its zones (no zone: the campaign's); None if no phone can be.

    ``in_use`` are the zones phones have (:func:`zones_in_use`). ``timezones <@ :open`` is true
    for a phone without zones, so while the campaign's zone is closed ``&& :open`` excludes them.
    Both operators are answered by the GIN index on ``timezones``.
    """
    opened = open_zones(plan.call_window_start, plan.call_window_end, now_utc, {*in_use, plan.time_zone})
    if not opened:
        return None
    zones = literal(sorted(opened), ARRAY(Text))
    clause = ContactPhone.timezones.contained_by(zones)
    if plan.time_zone not in opened:
        clause = and_(clause, ContactPhone.timezones.overlap(zones))
    return clause


@dataclass(frozen=True, slots=True)
class _Phones:
    """The phone columns a query reads: ``contact_phones`` itself or a subquery of it."""

    id: Any
    field_id: Any
    phone_type: Any
    position: Any
    e164: Any

    @classmethod
    def of(cls, source: Any) -> _Phones:
        return cls(source.id, source.field_id, source.phone_type, source.position, source.e164)


_TABLE_PHONES = _Phones.of(ContactPhone)


def _eligible_phone(plan: CampaignPlan, p: _Phones, next_phone: Any) -> ColumnElement[bool]:
    """The phones the strategy dials at all: the switch target, the phone field's, the switch rules' types."""
    if plan.phone_field_id is None:
        return true()
    clauses: list[ColumnElement[bool]] = [p.field_id == plan.phone_field_id]
    if plan.switch_phone_types:
        clauses.append(p.phone_type.in_(plan.switch_phone_types))
    if next_phone is not None:
        clauses.append(p.id == next_phone)
    return or_(*clauses)


def _phone_rank(plan: CampaignPlan, p: _Phones, next_phone: Any) -> ColumnElement[int]:
    """0 for the switch target, 1 for the phone field's phone, 2 for the others (then by position)."""
    whens: list[tuple[ColumnElement[bool], int]] = []
    if next_phone is not None:
        whens.append((p.id == next_phone, 0))
    if plan.phone_field_id is not None:
        whens.append((p.field_id == plan.phone_field_id, 1))
    return case(*whens, else_=2) if whens else literal(2)


def _phone_free(plan: CampaignPlan, p: _Phones) -> ColumnElement[bool]:
    return and_(not_in_dnc(plan, p.e164), no_live_number(p.e164))


def dialable_phone(plan: CampaignPlan, now_utc: datetime, in_use: Iterable[str]) -> ColumnElement[bool] | None:
    """Conditions on ``contact_phones``: eligible, in its window, not in DNC, not being called."""
    window = in_window(plan, now_utc, in_use)
    if window is None:
        return None
    next_phone = _NEXT_PHONE if plan.next_phone_column else None
    return and_(_eligible_phone(plan, _TABLE_PHONES, next_phone), window, _phone_free(plan, _TABLE_PHONES))


def contact_filters(plan: CampaignPlan, now_utc: datetime, exclude: Collection[int]) -> list[ColumnElement[bool]]:
    """Conditions on ``contacts`` every candidate meets: not done, due, the strategy's limits, not busy."""
    today = plan.local_date(now_utc)
    clauses: list[ColumnElement[bool]] = [
        Contact.status != _DONE,
        due_at() <= now_utc,
        compile_limits(max_attempts_total=plan.max_attempts_per_contact,
                       max_attempts_per_day=plan.max_attempts_per_day,
                       pause_between_attempts_s=plan.pause_between_attempts_s, now=now_utc, today=today),
        no_live_contact(Contact.id),
    ]
    if exclude:
        clauses.append(Contact.id != all_(_bigints(exclude)))
    return clauses


_DIRECTIONS = {operators.asc_op: "asc", operators.desc_op: "desc", operators.nulls_first_op: "nulls_first",
               operators.nulls_last_op: "nulls_last"}


@dataclass(frozen=True, slots=True)
class _SortKey:
    """One ORDER BY item split into its expression and its modifiers, to re-apply them to an output column."""

    expr: ColumnElement[Any]
    modifiers: tuple[str, ...]

    @classmethod
    def split(cls, item: ColumnElement[Any]) -> _SortKey:
        modifiers: list[str] = []
        while isinstance(item, UnaryExpression) and item.modifier in _DIRECTIONS:
            modifiers.append(_DIRECTIONS[item.modifier])
            item = item.element
        return cls(item, tuple(reversed(modifiers)))

    def on(self, column: Any) -> ColumnElement[Any]:
        for modifier in self.modifiers:
            column = getattr(column, modifier)()
        return column


def _is_contact_id(expr: Any) -> bool:
    return isinstance(expr, ColumnClause) and expr.table is Contact.__table__ and expr.key == "id"


@dataclass(frozen=True, slots=True)
class _Source:
    """One ordered stream of contacts: a selection (or the default of a campaign without selections)."""

    selection: SelectionPlan | None
    where: ColumnElement[bool]
    order: list[ColumnElement[Any]]

    @property
    def keys(self) -> list[_SortKey]:
        return [_SortKey.split(o) for o in self.order]


def _sources(plan: CampaignPlan, now_utc: datetime) -> list[_Source]:
    """The selections in priority order, each excluding the contacts of those before it."""
    if not plan.has_selections:
        return [_Source(None, true(), default_order())]
    tz, today = plan.tz, plan.local_date(now_utc)
    sources: list[_Source] = []
    claimed: list[ColumnElement[bool]] = []
    for sel in plan.selections:
        conditions = compile_conditions(sel.conditions, plan.fields, today=today, tz=tz).self_group()
        limits = compile_limits(max_attempts_total=sel.max_attempts_total,
                                max_attempts_per_day=sel.max_attempts_per_day,
                                pause_between_attempts_s=sel.pause_between_attempts_s, now=now_utc, today=today)
        where = and_(conditions, limits, *[c.is_not(True) for c in claimed])
        order = compile_sort(sel.sort, plan.fields, today=today, tz=tz) if sel.sort else default_order()
        sources.append(_Source(sel, where, order))
        claimed.append(conditions)
    return sources


class _Route(StrEnum):
    """How one list's candidates are found."""

    contacts = "contacts"  # contact first: the ordered index, each contact's phones checked
    phones = "phones"      # phone first: the list's phones in open zones, their contacts sorted


@dataclass(frozen=True)
class _Pass:
    """One query of the hopper over a source: the contacts' conditions, the phones' window, how many pairs."""

    plan: CampaignPlan
    source: _Source
    contacts: list[ColumnElement[bool]]
    window: ColumnElement[bool]
    batch: int

    @property
    def scan_cap(self) -> int:
        """Contacts the contact-first route examines before the phone-first route takes over."""
        return max(SCAN_CAP_MIN, SCAN_CAP_PER_ROW * self.batch)

    def _next_phone(self) -> Any:
        return _NEXT_PHONE if self.plan.next_phone_column else None

    def _key_names(self) -> list[tuple[_SortKey, str]]:
        """Each sort key with its output column; ``contacts.id`` is the ``contact_id`` column itself."""
        return [(k, "contact_id" if _is_contact_id(k.expr) else f"k{i}") for i, k in enumerate(self.source.keys)]

    def _key_columns(self) -> list[ColumnElement[Any]]:
        return [k.expr.label(name) for k, name in self._key_names() if name != "contact_id"]

    def _checked(self, pairs: Select[Any], phones: _Phones, rank: Any) -> Select[Any]:
        """``pairs`` (sorted candidate pairs) checked for DNC and live calls only until ``batch`` pass.

        The checks are a column of a fenced subquery (``OFFSET 0``), not a join the planner could
        turn into a hash over every candidate: each runs per row, in order, and the ``LIMIT``
        stops them. The sort keys are output columns, so the planner knows the order holds.
        """
        names = [name for _, name in self._key_names() if name != "contact_id"]
        checked = (pairs.add_columns(phones.id.label("phone_id"), phones.e164.label("number"), rank.label("phone_rank"),
                                     phones.position.label("phone_position"),
                                     _phone_free(self.plan, phones).label("free"))
                   .order_by(None)
                   .order_by(*[k.on(pairs.selected_columns[name]) for k, name in self._key_names()], rank,
                             phones.position, phones.id)
                   .offset(0).subquery("checked"))
        c = checked.c
        return (select(c.contact_id, c.list_id, c.phone_id, c.number, c.phone_rank, c.phone_position,
                       *[c[name] for name in names])
                .where(c.free)
                .order_by(*[k.on(c[name]) for k, name in self._key_names()], c.phone_rank, c.phone_position,
                          c.phone_id)
                .limit(self.batch))

    def contacts_branch(self, list_id: int) -> Select[Any]:
        """Contact first: the first :attr:`scan_cap` contacts in the source's order, then their best phone.

        The contacts come from an ordered index scan (``ix_contacts_due`` in the default order) that
        stops as soon as ``batch`` pairs are found, so a dense list costs about ``batch`` rows.
        """
        next_phone = self._next_phone()
        head = (select(Contact.id.label("contact_id"), Contact.list_id.label("list_id"),
                       *([next_phone.label("next_phone")] if next_phone is not None else []), *self._key_columns())
                .where(Contact.list_id == list_id, *self.contacts, self.source.where)
                .order_by(*self.source.order).limit(self.scan_cap).subquery("head"))
        head_next = head.c.next_phone if next_phone is not None else None
        p = _TABLE_PHONES
        pairs = (select(head.c.contact_id, head.c.list_id,
                        *[head.c[name] for _, name in self._key_names() if name != "contact_id"])
                 .select_from(head).join(ContactPhone, ContactPhone.contact_id == head.c.contact_id)
                 .where(_eligible_phone(self.plan, p, head_next), self.window))
        return self._checked(pairs, p, _phone_rank(self.plan, p, head_next))

    def phones_branch(self, list_id: int) -> Select[Any]:
        """Phone first: the list's phones in open zones (GIN on ``timezones``), their contacts, sorted.

        For a list with few phones in open zones (night in the west, a list of one region): the cost
        follows those phones, not the contacts that cannot be called now.
        """
        next_phone = self._next_phone()
        opened = (select(ContactPhone.id, ContactPhone.contact_id, ContactPhone.field_id, ContactPhone.phone_type,
                         ContactPhone.position, ContactPhone.e164)
                  .where(ContactPhone.list_id == list_id, self.window)
                  .cte(f"open_phones_{list_id}").prefix_with("MATERIALIZED"))
        o = _Phones.of(opened.c)
        pairs = (select(Contact.id.label("contact_id"), Contact.list_id.label("list_id"), *self._key_columns())
                 .select_from(opened).join(Contact, Contact.id == opened.c.contact_id)
                 .where(Contact.list_id == list_id, *self.contacts, self.source.where,
                        _eligible_phone(self.plan, o, next_phone)))
        return self._checked(pairs, o, _phone_rank(self.plan, o, next_phone))

    def merged(self, branches: Sequence[Select[Any]]) -> Select[Any]:
        """The branches' rows in the source's order (one branch per list keeps each list's index in order)."""
        if len(branches) == 1:
            return branches[0]
        merged = union_all(*[b.subquery().select() for b in branches]).subquery("merged")
        return (select(merged.c.contact_id, merged.c.list_id, merged.c.phone_id, merged.c.number)
                .order_by(*[k.on(merged.c[name]) for k, name in self._key_names()],
                          merged.c.phone_rank, merged.c.phone_position, merged.c.phone_id)
                .limit(self.batch))

    async def _capped(self, session: AsyncSession, list_ids: Sequence[int]) -> set[int]:
        """The lists whose contact-first scan stopped at its cap (so it may have missed phones further on)."""
        # any scan_cap of them tell: no ORDER BY, so an unindexed sort costs nothing here
        counts = [select(func.count()).select_from(
            select(Contact.id).where(Contact.list_id == list_id, *self.contacts, self.source.where)
            .limit(self.scan_cap).subquery()).scalar_subquery().label(f"l{list_id}")
            for list_id in list_ids]
        row = (await session.execute(select(*counts))).one()
        return {list_id for list_id, n in zip(list_ids, row, strict=True) if n >= self.scan_cap}

    def _branches(self, routes: Mapping[int, _Route]) -> list[Select[Any]]:
        return [self.phones_branch(lid) if route is _Route.phones else self.contacts_branch(lid)
                for lid, route in routes.items()]

    async def rows(self, session: AsyncSession) -> Sequence[Any]:
        """Up to ``batch`` (contact, phone) pairs in order.

        Every list is searched contact first. When that comes back short, the lists whose scan
        stopped at :attr:`scan_cap` are searched again phone first: few of their contacts can be
        called now (their zones are closed), and the phones in open zones are the short way to
        them. A list that is simply exhausted costs no second query.
        """
        routes = dict.fromkeys(self.plan.list_ids, _Route.contacts)
        rows = (await session.execute(self.merged(self._branches(routes)))).all()
        if len(rows) >= self.batch:
            return rows
        capped = await self._capped(session, self.plan.list_ids)
        if not capped:
            return rows
        rerouted = {lid: _Route.phones if lid in capped else route for lid, route in routes.items()}
        return (await session.execute(self.merged(self._branches(rerouted)))).all()


async def _planner_settings(session: AsyncSession) -> None:
    """Settings for the rest of the caller's transaction (one round trip).

    The best plan depends on the values (how many phones are in open zones now), so plans are
    made per call rather than cached generically; and random page reads are priced as the cached
    or SSD-backed reads they are (1.1, the usual advice, instead of the spinning-disk default of
    4), without which the planner prefers scanning all phones over the GIN index on their zones.
    """
    await session.execute(text("SELECT set_config('plan_cache_mode', 'force_custom_plan', true), "
                               "set_config('random_page_cost', :cost, true)"), {"cost": str(RANDOM_PAGE_COST)})


async def _callbacks(session: AsyncSession, plan: CampaignPlan, now_utc: datetime, limit: int,
                     exclude: Collection[int], window: ColumnElement[bool] | None = None) -> list[Candidate]:
    """Due callbacks, earliest window first, one per contact, on the callback's own number; with ``window``
    only those whose phone's calling window is open now (:func:`in_window`)."""
    clauses = [
        Callback.campaign_id == plan.campaign_id,
        Callback.status == literal_column("'pending'"),
        Callback.window_start <= now_utc,
        Callback.window_end > now_utc,
        Contact.list_id == any_(_bigints(plan.list_ids)),
        Contact.status != _DONE,
        no_live_contact(Contact.id),
        no_live_number(Callback.number),
        not_in_dnc(plan, Callback.number),
    ]
    if exclude:
        clauses.append(Contact.id != all_(_bigints(exclude)))
    if window is not None:
        clauses.append(window)
    ranked = (select(Callback.id, Callback.contact_id, Callback.kind, Callback.operator_id, Callback.number,
                     Callback.window_start, Callback.window_end, Contact.list_id, ContactPhone.id.label("phone_id"))
              .join(Contact, Contact.id == Callback.contact_id)
              .join(ContactPhone, and_(ContactPhone.contact_id == Callback.contact_id,
                                       ContactPhone.e164 == Callback.number))
              .where(*clauses)
              .ext(distinct_on(Callback.contact_id))
              .order_by(Callback.contact_id, Callback.window_start, Callback.id, ContactPhone.position,
                        ContactPhone.id).subquery())
    rows = (await session.execute(select(ranked).order_by(ranked.c.window_start, ranked.c.id).limit(limit))).all()
    return [Candidate(contact_id=r.contact_id, phone_id=r.phone_id, number=r.number, list_id=r.list_id,
                      selection_id=None, callback_id=r.id,
                      operator_id=r.operator_id if r.kind == CallbackKind.personal else None,
                      skill_id=plan.skill_id, min_skill_level=None, pool_id=None, priority=CALLBACK_PRIORITY,
                      closes_at=r.window_end)
            for r in rows]


async def fill_hopper(session: AsyncSession, plan: CampaignPlan, now_utc: datetime, limit: int,
                      exclude_contact_ids: Collection[int] = ()) -> list[Candidate]:
    """Up to ``limit`` candidates to dial now, best first: due callbacks, then the selections in priority order.

    Never a contact in ``exclude_contact_ids`` (what the caller's hopper already holds), never a
    contact or a number with a live attempt, a contact at most once and a number at most once (two
    contacts sharing a number: the second waits for a later fill). Nothing is reserved: the
    partial unique indexes on live attempts settle a race with another engine when the attempt is
    inserted. Returns fewer than ``limit`` when no more are dialable now; an empty list when the
    campaign is closed (:func:`campaign_open`).
    """
    if limit <= 0 or not plan.list_ids or not campaign_open(plan, now_utc):
        return []
    await _planner_settings(session)
    excluded = set(exclude_contact_ids)  # contacts the queries must not return (taken or passed over)
    numbers: set[str] = set()
    found: list[Candidate] = []

    def take(candidate: Candidate) -> None:
        excluded.add(candidate.contact_id)
        if candidate.number not in numbers and len(found) < limit:
            numbers.add(candidate.number)
            found.append(candidate)

    window = in_window(plan, now_utc, await zones_in_use(session))
    if window is None:
        return found
    for callback in await _callbacks(session, plan, now_utc, limit, excluded, window):
        take(callback)
    for source in _sources(plan, now_utc):
        while len(found) < limit:
            wanted = limit - len(found)
            # Pairs, not contacts: a contact with two dialable phones takes two rows (the first is its best).
            batch = wanted + wanted // 4 + 4
            query = _Pass(plan, source, contact_filters(plan, now_utc, excluded), window, batch)
            rows = await query.rows(session)
            for row in rows:
                if row.contact_id not in excluded:
                    take(_candidate(plan, source.selection, row))
            if len(rows) < batch:
                break
        if len(found) >= limit:
            break
    return await _with_closing_times(session, plan, now_utc, found)


async def _with_closing_times(session: AsyncSession, plan: CampaignPlan, now_utc: datetime,
                              found: list[Candidate]) -> list[Candidate]:
    """Each candidate with the moment its phone's calling window closes (a callback: that or the end of its own
    window, whichever comes first)."""
    ids = [c.phone_id for c in found]
    if not ids or plan.call_window_start == plan.call_window_end:
        return found
    zones = {int(i): tuple(z or ()) for i, z in (await session.execute(
        select(ContactPhone.id, ContactPhone.timezones).where(ContactPhone.id == any_(_bigints(ids))))).all()}
    out = []
    for c in found:
        names = zones.get(c.phone_id) or (plan.time_zone,)
        closes = window_closes_at(plan.call_window_start, plan.call_window_end, now_utc, names)
        if c.callback_id is not None and c.closes_at is not None:
            closes = c.closes_at if closes is None else min(closes, c.closes_at)
        out.append(replace(c, closes_at=closes))
    return out


async def work_left(session: AsyncSession, plan: CampaignPlan, now_utc: datetime) -> bool:
    """Whether a finite campaign has anything to dial, now or later: :func:`fill_hopper`'s rules without the ones
    that only depend on the time (calling window, schedule, timers, per-day limits and pauses).

    Left is a contact of the lists that is not ``done``, under the strategy's ``max_attempts_per_contact``, that
    an active selection takes (its conditions, not claimed by a higher one, under its ``max_attempts_total``; a
    campaign without selections takes every contact, one whose selections are all inactive none), and that has a
    phone the strategy dials which no DNC entry blocks; or a pending callback whose window has not ended, for a
    contact that is not done, on a number not in DNC. Contacts without phones, with only blocked numbers, or
    that no selection takes would otherwise keep a finite campaign running for ever. Live attempts are the
    caller's business (it checks its calls in flight).
    """
    if plan.list_ids and (not plan.has_selections or plan.selections):
        today = plan.local_date(now_utc)
        next_phone = _NEXT_PHONE if plan.next_phone_column else None
        phone = and_(_eligible_phone(plan, _TABLE_PHONES, next_phone), not_in_dnc(plan, ContactPhone.e164))
        clauses: list[ColumnElement[bool]] = [
            Contact.list_id == any_(_bigints(plan.list_ids)), Contact.status != _DONE,
            compile_limits(max_attempts_total=plan.max_attempts_per_contact, max_attempts_per_day=None,
                           pause_between_attempts_s=None, now=now_utc, today=today),
            exists().where(ContactPhone.contact_id == Contact.id, phone)]
        if plan.has_selections:
            taken: list[ColumnElement[bool]] = []
            claimed: list[ColumnElement[bool]] = []
            for sel in plan.selections:
                conditions = compile_conditions(sel.conditions, plan.fields, today=today, tz=plan.tz).self_group()
                limit = compile_limits(max_attempts_total=sel.max_attempts_total, max_attempts_per_day=None,
                                       pause_between_attempts_s=None, now=now_utc, today=today)
                taken.append(and_(conditions, limit, *[c.is_not(True) for c in claimed]))
                claimed.append(conditions)
            clauses.append(or_(*taken))
        if await session.scalar(select(exists(select(Contact.id).where(*clauses)))):
            return True
    callback = select(Callback.id).join(Contact, Contact.id == Callback.contact_id).where(
        Callback.campaign_id == plan.campaign_id, Callback.status == literal_column("'pending'"),
        Callback.window_end > now_utc, Contact.status != _DONE, not_in_dnc(plan, Callback.number))
    return bool(await session.scalar(select(exists(callback))))


def _candidate(plan: CampaignPlan, selection: SelectionPlan | None, row: Any) -> Candidate:
    if selection is None:
        return Candidate(contact_id=row.contact_id, phone_id=row.phone_id, number=row.number, list_id=row.list_id,
                         selection_id=None, callback_id=None, operator_id=None, skill_id=plan.skill_id,
                         min_skill_level=None, pool_id=None, priority=DEFAULT_PRIORITY)
    return Candidate(contact_id=row.contact_id, phone_id=row.phone_id, number=row.number, list_id=row.list_id,
                     selection_id=selection.id, callback_id=None, operator_id=None,
                     skill_id=selection.skill_id if selection.skill_id is not None else plan.skill_id,
                     min_skill_level=selection.min_skill_level, pool_id=selection.pool_id,
                     priority=selection.priority)


async def dialable_count(session: AsyncSession, plan: CampaignPlan, now_utc: datetime, *,
                         cap: int | None = None) -> int:
    """How many contacts :func:`fill_hopper` could return now, for supervisors (0 while the campaign is closed).

    Exact: every due contact of the lists is checked like the hopper checks it, which costs about
    2.5 s per million due contacts — refresh a dashboard's figure every half minute, not per
    request. With ``cap`` the count stops there ("10,000+"), at a cost that follows ``cap``.
    """
    if not plan.list_ids or not campaign_open(plan, now_utc):
        return 0
    await _planner_settings(session)
    in_use = await zones_in_use(session)
    window = in_window(plan, now_utc, in_use)
    if window is None:
        return 0
    callbacks = {c.contact_id for c in await _callbacks(session, plan, now_utc, cap or 1_000_000, (), window)}
    sources = _sources(plan, now_utc)
    phone = dialable_phone(plan, now_utc, in_use)
    if phone is None or not sources:
        return len(callbacks)
    matched = or_(*[s.where for s in sources]) if len(sources) > 1 else sources[0].where
    query: Any = select(Contact.id).where(
        Contact.list_id == any_(_bigints(plan.list_ids)), *contact_filters(plan, now_utc, ()), matched,
        exists().where(ContactPhone.contact_id == Contact.id, phone))
    if callbacks:
        query = union(query, select(func.unnest(_bigints(callbacks))))
    if cap is not None:
        query = query.limit(cap)
    return int(await session.scalar(select(func.count()).select_from(query.subquery())) or 0)


__all__ = [
    "CALLBACK_PRIORITY",
    "DEFAULT_PRIORITY",
    "INDEXES",
    "NEXT_PHONE_COLUMN",
    "CampaignPlan",
    "Candidate",
    "CodePlan",
    "OutcomeRetryPlan",
    "ResultRulePlan",
    "SchedulePeriod",
    "SelectionPlan",
    "campaign_open",
    "code_plan",
    "dialable_count",
    "fill_hopper",
    "forget_zones",
    "load_plan",
    "not_in_dnc_lists",
    "open_zones",
    "window_closes_at",
    "window_open",
    "work_left",
    "zones_in_use",
]
