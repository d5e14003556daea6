"""Business rules of the campaign package: crud hooks, the status machine in action, previews, callbacks.

Services never commit: the request (or the engine's unit of work) does. ORM changes are audited by
the recorder; status changes and association tables are logged here with :func:`log`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel
from sqlalchemy import ColumnElement, and_, true
from sqlalchemy.ext.asyncio import AsyncSession

from dialer.api.crud import ensure_all_exist, ensure_exists, member_ids, reject_nulls, set_members
from dialer.api.deps import principal_of
from dialer.audit.recorder import log
from dialer.auth.permissions import P
from dialer.auth.service import Principal
from dialer.campaign import repository as repo
from dialer.campaign.calendar import calendar_of
from dialer.campaign.calendar import day_type as calendar_day_type
from dialer.campaign.schemas import OutcomeRetry, ResultRule
from dialer.campaign.selection import (
    ConditionError,
    compile_conditions,
    compile_limits,
    normalize_conditions,
    normalize_sort,
    referenced_field_ids,
)
from dialer.campaign.status import Action, allowed_actions, next_status
from dialer.campaign.validation import (
    check_outcome_retries,
    check_recording,
    check_result_rules,
    check_schedule,
    format_intervals,
    normalize_dial,
    to_e164,
)
from dialer.exceptions import Conflict, IllegalTransition, NotFound, PermissionDenied, ValidationFailed
from dialer.models import (
    Base,
    Callback,
    CallerId,
    CallerIdGroup,
    Campaign,
    CampaignSchedule,
    CompletionCode,
    CompletionCodeGroup,
    ContactList,
    DncList,
    Field,
    Operator,
    OperatorPool,
    Selection,
    Skill,
    Strategy,
    StrategyOutcomeRetry,
    StrategyResultRule,
    campaign_lists,
    campaign_pools,
)
from dialer.models.enums import AuditAction, CallbackKind, CallbackStatus, CampaignKind, CampaignStatus, DayType
from dialer.models.enums import FieldType as FT

# --- shared checks --------------------------------------------------------------------------------


def _conflict(field: str, reason: str, detail: str | None = None) -> Conflict:
    return Conflict(detail or reason, errors=[{"field": field, "reason": reason}])


async def refuse_if_used_by_campaigns(session: AsyncSession, what: str, column: Any, obj_id: int) -> None:
    if names := await repo.names_where(session, Campaign.name, column == obj_id):
        raise Conflict(f"{what} is used by campaigns {', '.join(repr(n) for n in names)}; change them first")


def refuse_delete_if_used_by_campaigns(what: str, column: Any) -> Any:
    """A ``before_delete`` hook refusing to delete a row campaigns refer to by ``column`` ("<what> '<name>'")."""

    async def hook(session: AsyncSession, obj: Any) -> None:
        await refuse_if_used_by_campaigns(session, f"{what} '{obj.name}'", column, obj.id)

    return hook


def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def localize(moment: datetime, tz: ZoneInfo) -> datetime:
    """Naive date-times are wall-clock time of ``tz``."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=tz)


# --- completion codes -----------------------------------------------------------------------------


async def code_before_update(session: AsyncSession, obj: CompletionCode, data: dict[str, Any]) -> dict[str, Any]:
    if "system_key" in data and data.pop("system_key") != obj.system_key:
        raise _conflict("system_key", "is assigned by the system and cannot be changed")
    reject_nulls(CompletionCode, data)
    if obj.is_system and "category" in data and data["category"] != obj.category:
        raise _conflict("category", f"'{obj.name}' is a system code; its category ({obj.category.value}) "
                                    "is fixed because the dialer sets it automatically")
    return data


async def code_before_delete(session: AsyncSession, obj: CompletionCode) -> None:
    if obj.is_system:
        raise Conflict(f"completion code '{obj.name}' is a system code set automatically by the dialer; "
                       "it cannot be deleted")
    if names := await repo.names_where(session, Strategy.name, Strategy.default_completion_code_id == obj.id):
        raise Conflict(f"completion code '{obj.name}' is the default code of strategies "
                       f"{', '.join(repr(n) for n in names)}; change them first")


# --- strategies -----------------------------------------------------------------------------------


def _merged(data: Mapping[str, Any], obj: Base | None, key: str, default: Any = None) -> Any:
    if key in data:
        return data[key]
    return getattr(obj, key) if obj is not None else default


async def _check_strategy(session: AsyncSession, data: Mapping[str, Any], obj: Strategy | None) -> None:
    # any start and end make a window: end < start runs over midnight, end == start is all day (the engine's
    # selection.window_open reads them so)
    low, high = _merged(data, obj, "min_operators"), _merged(data, obj, "max_operators")
    if low is not None and high is not None and low > high:
        field = "max_operators" if "max_operators" in data else "min_operators"
        raise ValidationFailed.field(field, f"min_operators ({low}) must not exceed max_operators ({high})")
    if (field_id := data.get("phone_field_id")) is not None:
        field_row = await session.get(Field, field_id)
        if field_row is None:
            raise ValidationFailed.field("phone_field_id", f"field {field_id} does not exist")
        if field_row.type is not FT.phone:
            raise ValidationFailed.field("phone_field_id", f"field '{field_row.name}' is of type "
                                                           f"{field_row.type.value}; choose a phone field")
    await ensure_exists(session, Skill, data.get("skill_id"), "skill_id")
    await ensure_exists(session, CompletionCode, data.get("default_completion_code_id"), "default_completion_code_id")


async def strategy_before_create(session: AsyncSession, data: dict[str, Any]) -> dict[str, Any]:
    await _check_strategy(session, data, None)
    return data


async def strategy_before_update(session: AsyncSession, obj: Strategy, data: dict[str, Any]) -> dict[str, Any]:
    reject_nulls(Strategy, data)
    await _check_strategy(session, data, obj)
    return data


def _retry_key(r: StrategyOutcomeRetry | Mapping[str, Any]) -> tuple[Any, ...]:
    if isinstance(r, StrategyOutcomeRetry):
        return r.outcome, list(r.intervals_min), r.max_attempts
    return r["outcome"], list(r["intervals"]), r["max_attempts"]


_RULE_KEYS = ("completion_code_id", "day_type", "retry_interval_s", "use_common_interval",
              "attempts_on_previous_number", "switch_to_phone_type", "is_final")


def _rule_key(r: StrategyResultRule | Mapping[str, Any]) -> tuple[Any, ...]:
    if isinstance(r, StrategyResultRule):
        return tuple(getattr(r, k) for k in _RULE_KEYS)
    return tuple(r[k] for k in _RULE_KEYS)


def _complete(schema: type[BaseModel], items: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
    """Nested items with their defaults (a PATCH dump leaves out what the client did not send)."""
    return None if items is None else [schema.model_validate(item).model_dump() for item in items]


async def strategy_after_save(session: AsyncSession, obj: Strategy, extra: dict[str, Any]) -> None:
    """Replace the strategy's outcome retries and result rules when the payload gives them."""
    retries = _complete(OutcomeRetry, extra.get("outcome_retries"))
    if retries is not None:
        check_outcome_retries(retries)
        current_retries = await repo.outcome_retries(session, obj.id)
        if sorted(map(_retry_key, current_retries)) != sorted(map(_retry_key, retries)):
            await repo.replace_rows(session, current_retries, [
                StrategyOutcomeRetry(strategy_id=obj.id, outcome=r["outcome"], intervals_min=list(r["intervals"]),
                                     max_attempts=r["max_attempts"]) for r in retries])
    rules = _complete(ResultRule, extra.get("result_rules"))
    if rules is not None:
        check_result_rules(rules)
        for i, rule in enumerate(rules):
            await ensure_exists(session, CompletionCode, rule["completion_code_id"],
                                f"result_rules.{i}.completion_code_id")
        current_rules = await repo.result_rules(session, obj.id)
        if sorted(map(_rule_key, current_rules), key=repr) != sorted(map(_rule_key, rules), key=repr):
            await repo.replace_rows(session, current_rules, [
                StrategyResultRule(strategy_id=obj.id, **{k: r[k] for k in _RULE_KEYS}) for r in rules])


async def strategy_read_extra(session: AsyncSession, obj: Strategy) -> dict[str, Any]:
    return {
        "outcome_retries": [
            {"outcome": r.outcome, "intervals": format_intervals(r.intervals_min),
             "intervals_min": list(r.intervals_min), "max_attempts": r.max_attempts}
            for r in await repo.outcome_retries(session, obj.id)],
        "result_rules": [{k: getattr(r, k) for k in _RULE_KEYS} for r in await repo.result_rules(session, obj.id)],
    }


async def strategy_before_delete(session: AsyncSession, obj: Strategy) -> None:
    await refuse_if_used_by_campaigns(session, f"strategy '{obj.name}'", Campaign.strategy_id, obj.id)


# --- holidays -------------------------------------------------------------------------------------


async def day_type_on(session: AsyncSession, day: date) -> DayType:
    return calendar_day_type(day, calendar_of(await repo.holidays_on(session, day)))


# --- caller IDs -----------------------------------------------------------------------------------


def _e164(number: str, region: str, field: str = "number") -> str:
    try:
        return to_e164(number, region)
    except ValueError as err:
        raise ValidationFailed.field(field, str(err)) from None


async def create_caller_id(session: AsyncSession, data: dict[str, Any], region: str) -> CallerId:
    data["number"] = _e164(data["number"], region)
    obj = CallerId(**data)
    session.add(obj)
    await session.flush()
    return obj


async def update_caller_id(session: AsyncSession, obj: CallerId, data: dict[str, Any], region: str) -> CallerId:
    reject_nulls(CallerId, data)
    if "number" in data:
        data["number"] = _e164(data["number"], region)
    for key, value in data.items():
        setattr(obj, key, value)
    await session.flush()
    return obj


# --- campaigns ------------------------------------------------------------------------------------

_CAMPAIGN_REFS: dict[str, type[Base]] = {
    "strategy_id": Strategy,
    "completion_code_group_id": CompletionCodeGroup,
    "dnc_list_id": DncList,
    "caller_id_group_id": CallerIdGroup,
}
DEFAULT_ABANDON_CAP = Decimal("3.00")
#: Statuses in which the engine may still be working on a campaign.
ACTIVE = frozenset({CampaignStatus.running, CampaignStatus.paused, CampaignStatus.auto_paused})


async def _check_campaign_refs(session: AsyncSession, data: Mapping[str, Any]) -> None:
    for key, model in _CAMPAIGN_REFS.items():
        await ensure_exists(session, model, data.get(key), key)


async def campaign_before_create(session: AsyncSession, data: dict[str, Any]) -> dict[str, Any]:
    await _check_campaign_refs(session, data)
    data["dial_params"], data["abandon_cap_pct"] = normalize_dial(
        data["dial_mode"], data["dial_params"], data.get("abandon_cap_pct"), DEFAULT_ABANDON_CAP)
    check_recording(data.get("record_mode", "none"), data.get("record_percent"))
    if data.get("start_at") is not None:
        data["start_at"] = localize(data["start_at"], zone(data["time_zone"]))
    return data


async def campaign_before_update(session: AsyncSession, obj: Campaign, data: dict[str, Any]) -> dict[str, Any]:
    cap = data.pop("abandon_cap_pct", None)
    reject_nulls(Campaign, data)
    await _check_campaign_refs(session, data)
    if cap is not None or "dial_mode" in data or "dial_params" in data:
        mode = data.get("dial_mode", obj.dial_mode)
        if "dial_params" in data:
            params = data["dial_params"]
        elif mode == obj.dial_mode:
            # the column given alone overrides the stored parameter
            params = {k: v for k, v in obj.dial_params.items() if cap is None or k != "abandon_cap_pct"}
        else:
            params = {}
        data["dial_params"], data["abandon_cap_pct"] = normalize_dial(mode, params, cap, obj.abandon_cap_pct)
    if "record_mode" in data or "record_percent" in data:
        check_recording(data.get("record_mode", obj.record_mode), data.get("record_percent", obj.record_percent))
    if data.get("start_at") is not None:
        data["start_at"] = localize(data["start_at"], zone(data.get("time_zone", obj.time_zone)))
    return data


def _period_key(p: CampaignSchedule | Mapping[str, Any]) -> tuple[Any, ...]:
    if isinstance(p, CampaignSchedule):
        return p.weekday, p.start, p.end
    return p["weekday"], p["start"], p["end"]


async def campaign_after_save(session: AsyncSession, obj: Campaign, extra: dict[str, Any]) -> None:
    if (list_ids := extra.get("list_ids")) is not None:
        await ensure_all_exist(session, ContactList, list_ids, "list_ids")
        await set_members(session, campaign_lists, "campaign_id", obj.id, "list_id", list_ids, otype="campaigns")
    if (pool_ids := extra.get("pool_ids")) is not None:
        await ensure_all_exist(session, OperatorPool, pool_ids, "pool_ids")
        await set_members(session, campaign_pools, "campaign_id", obj.id, "pool_id", pool_ids, otype="campaigns")
    if (periods := extra.get("schedule")) is not None:
        check_schedule(periods)
        current = await repo.schedule(session, obj.id)
        if sorted(map(_period_key, current)) != sorted(map(_period_key, periods)):
            await repo.replace_rows(session, current, [
                CampaignSchedule(campaign_id=obj.id, weekday=p["weekday"], start=p["start"], end=p["end"])
                for p in periods])


async def campaign_read_extra(session: AsyncSession, obj: Campaign) -> dict[str, Any]:
    return {
        "list_ids": await member_ids(session, campaign_lists, "campaign_id", obj.id, "list_id"),
        "pool_ids": await member_ids(session, campaign_pools, "campaign_id", obj.id, "pool_id"),
        "schedule": [{"weekday": p.weekday, "start": p.start, "end": p.end}
                     for p in await repo.schedule(session, obj.id)],
        "allowed_actions": [a.value for a in allowed_actions(obj.status)],
    }


async def campaign_before_delete(session: AsyncSession, obj: Campaign) -> None:
    """A campaign that has dialled keeps its history: its attempts are what reports, recovery and the engine's
    calls in progress stand on (deleting them under a stopped campaign whose calls were still live broke the
    engine's journal). Only a campaign that never placed a call can be deleted; one with history stays, stopped."""
    if obj.status in ACTIVE:
        raise _conflict("status", f"the campaign is {obj.status.value}; stop it before deleting",
                        f"campaign '{obj.name}' is {obj.status.value.replace('_', '-')}; stop it before deleting")
    live, total = await repo.attempt_counts(session, obj.id)
    if live:
        raise _conflict("status", f"{live} of its calls are still in progress",
                        f"campaign '{obj.name}' still has {live} calls in progress; it cannot be deleted")
    if total:
        raise _conflict("id", f"the campaign has {total} calls in its history, kept for reports",
                        f"campaign '{obj.name}' has {total} calls in its history, which reports need: it is kept "
                        "(stopped, it dials nothing); only a campaign that never dialled can be deleted")


async def ensure_runnable(session: AsyncSession, campaign: Campaign) -> None:
    """A campaign can dial only with a strategy that has a phone field, ≥1 list and a non-empty code group."""
    problems: list[dict[str, str]] = []
    strategy = await repo.strategy(session, campaign.strategy_id)
    if strategy is None:
        problems.append({"field": "strategy_id", "reason": "the campaign has no strategy"})
    elif strategy.phone_field_id is None:
        problems.append({"field": "strategy_id",
                         "reason": f"strategy '{strategy.name}' has no phone field to dial (phone_field_id)"})
    if not await member_ids(session, campaign_lists, "campaign_id", campaign.id, "list_id"):
        problems.append({"field": "list_ids", "reason": "the campaign has no contact lists"})
    group = await session.get(CompletionCodeGroup, campaign.completion_code_group_id)
    if group is None:
        problems.append({"field": "completion_code_group_id", "reason": "the campaign has no completion-code group"})
    elif not await repo.group_size(session, group.id):
        problems.append({"field": "completion_code_group_id",
                         "reason": f"completion-code group '{group.name}' has no codes"})
    if problems:
        raise Conflict(f"campaign '{campaign.name}' cannot run: " + "; ".join(p["reason"] for p in problems),
                       errors=problems)


async def change_status(session: AsyncSession, campaign_id: int, action: Action, reason: str = "") -> Campaign:
    """Apply one action of the status machine (:mod:`dialer.campaign.status`) and audit it.

    The campaign row is locked first, so a supervisor's pause and the engine's auto-pause cannot
    interleave. Raises :class:`IllegalTransition` (409) for an action the status does not allow,
    :class:`Conflict` when a campaign that is not runnable would start running.
    """
    campaign = await repo.lock_campaign(session, campaign_id)
    if campaign is None:
        raise NotFound(f"campaign {campaign_id} does not exist")
    old = campaign.status
    new = next_status(old, action, name=campaign.name)
    if action is Action.acknowledge and not reason.strip():
        raise ValidationFailed.field("comment", "say why it is safe to dial again after the auto-stop")
    if action is Action.finish and campaign.kind is CampaignKind.infinite:
        raise IllegalTransition(f"campaign '{campaign.name}' is infinite; it never finishes, it waits for "
                                "new contacts")
    if new is CampaignStatus.running:
        await ensure_runnable(session, campaign)
    old_reason = campaign.status_reason
    await repo.set_status(session, campaign.id, new, reason)
    await log(session, AuditAction.custom, "campaigns", campaign.id, event_label=f"status: {old} → {new}",
              changes={"status": {"old": old, "new": new}, "status_reason": {"old": old_reason, "new": reason}})
    await session.refresh(campaign)
    return campaign


async def auto_pause(session: AsyncSession, campaign_id: int, reason: str) -> Campaign:
    """The engine's safety stop: running → auto_paused until a supervisor acknowledges (001)."""
    return await change_status(session, campaign_id, Action.auto_pause, reason)


async def finish(session: AsyncSession, campaign_id: int, reason: str = "the contact lists are exhausted") -> Campaign:
    """The engine's end of a finite campaign: running → finished."""
    return await change_status(session, campaign_id, Action.finish, reason)


# --- selections -----------------------------------------------------------------------------------


async def load_campaign(session: AsyncSession, campaign_id: int) -> Campaign:
    campaign = await session.get(Campaign, campaign_id)
    if campaign is None:
        raise NotFound(f"campaign {campaign_id} does not exist")
    return campaign


async def load_selection(session: AsyncSession, campaign_id: int, selection_id: int) -> Selection:
    await load_campaign(session, campaign_id)
    found = await repo.selection(session, campaign_id, selection_id)
    if found is None:
        raise NotFound(f"selection {selection_id} does not exist in campaign {campaign_id}")
    return found


async def _normalized_rules(session: AsyncSession, data: dict[str, Any]) -> None:
    conditions, sort = data.get("conditions"), data.get("sort")
    fields = await repo.fields_by_id(session, referenced_field_ids(conditions or [], sort or []))
    try:
        if conditions is not None:
            data["conditions"] = normalize_conditions(conditions, fields)
        if sort is not None:
            data["sort"] = normalize_sort(sort, fields)
    except ConditionError as err:
        raise ValidationFailed.field(err.path, err.reason) from None


async def _check_selection(session: AsyncSession, data: dict[str, Any]) -> None:
    await ensure_exists(session, Skill, data.get("skill_id"), "skill_id")
    await ensure_exists(session, OperatorPool, data.get("pool_id"), "pool_id")
    await _normalized_rules(session, data)


async def create_selection(session: AsyncSession, campaign_id: int, data: dict[str, Any]) -> Selection:
    await load_campaign(session, campaign_id)
    await _check_selection(session, data)
    obj = Selection(campaign_id=campaign_id, **data)
    session.add(obj)
    await session.flush()
    await session.refresh(obj)
    return obj


async def update_selection(session: AsyncSession, campaign_id: int, selection_id: int,
                           data: dict[str, Any]) -> Selection:
    obj = await load_selection(session, campaign_id, selection_id)
    reject_nulls(Selection, data)
    await _check_selection(session, data)
    for key, value in data.items():
        setattr(obj, key, value)
    await session.flush()
    await session.refresh(obj)
    return obj


async def delete_selection(session: AsyncSession, campaign_id: int, selection_id: int) -> None:
    await session.delete(await load_selection(session, campaign_id, selection_id))
    await session.flush()


async def preview(session: AsyncSession, campaign_id: int, rules: Mapping[str, Any], *,
                  now: datetime | None = None) -> dict[str, int]:
    """How many contacts of the campaign's lists (not done) the conditions and limits take right now.

    ``rules`` holds ``conditions`` and optionally ``max_attempts_total``, ``max_attempts_per_day``,
    ``pause_between_attempts_s``. Today is the campaign's date in its time zone.
    """
    campaign = await load_campaign(session, campaign_id)
    tz = zone(campaign.time_zone)
    now = now or datetime.now(UTC)
    today = now.astimezone(tz).date()
    conditions = rules.get("conditions") or []
    fields = await repo.fields_by_id(session, referenced_field_ids(conditions))
    try:
        clause = compile_conditions(conditions, fields, today=today, tz=tz)
    except ConditionError as err:
        raise ValidationFailed.field(err.path, err.reason) from None
    limits = compile_limits(max_attempts_total=rules.get("max_attempts_total"),
                            max_attempts_per_day=rules.get("max_attempts_per_day"),
                            pause_between_attempts_s=rules.get("pause_between_attempts_s"), now=now, today=today)
    list_ids = await member_ids(session, campaign_lists, "campaign_id", campaign.id, "list_id")
    matching, total = await repo.count_matching(session, list_ids, and_(clause, limits))
    return {"matching": matching, "total": total}


async def preview_saved(session: AsyncSession, campaign_id: int, selection_id: int, *,
                        now: datetime | None = None) -> dict[str, int]:
    obj = await load_selection(session, campaign_id, selection_id)
    rules = {"conditions": obj.conditions, "max_attempts_total": obj.max_attempts_total,
             "max_attempts_per_day": obj.max_attempts_per_day,
             "pause_between_attempts_s": obj.pause_between_attempts_s}
    try:
        return await preview(session, campaign_id, rules, now=now)
    except ValidationFailed as err:
        # stored conditions that no longer fit (a field was deleted or changed its type)
        raise Conflict(f"selection '{obj.name}' needs fixing: {err.detail}", errors=err.errors) from None


# --- callbacks ------------------------------------------------------------------------------------

_CALLBACK_KEYS = ("campaign_id", "contact_id", "number", "kind", "operator_id", "window_start", "window_end",
                  "status", "comment")
#: Who holds it sees and changes every callback: supervisors and administrators, who watch every operator's calls
#: live anyway. Everyone else is held to the operator he works as (``operators.user_id``), see :class:`CallbackScope`.
ALL_CALLBACKS = P.monitoring_read


def _sees_all(principal: Principal | None) -> bool:
    return principal is None or ALL_CALLBACKS in principal.permissions


@dataclasses.dataclass(eq=False)
class CallbackScope:
    """Whose callbacks a request may see and change.

    ``everything`` for holders of :data:`ALL_CALLBACKS` (and system work without a principal). Anyone else sees
    only what the (active) operator he works as may: his own personal callbacks and the shared callbacks of the
    campaigns he works for — his pools meet the campaign's, or it has none, as the engine assigns calls. A user
    who is no operator sees none. A callback outside the scope is answered as one that does not exist (404).
    :func:`visible_callbacks` is the same rule in SQL, for lists.
    """

    everything: bool
    operator_id: int | None = None
    _campaigns: dict[int, bool] = dataclasses.field(default_factory=dict)

    async def works_for(self, session: AsyncSession, campaign_id: int) -> bool:
        if self.operator_id is None:
            return False
        if campaign_id not in self._campaigns:
            self._campaigns[campaign_id] = await repo.operator_works_for(session, self.operator_id, campaign_id)
        return self._campaigns[campaign_id]

    async def sees(self, session: AsyncSession, obj: Callback) -> bool:
        if self.everything:
            return True
        if obj.kind is CallbackKind.personal:
            return self.operator_id is not None and obj.operator_id == self.operator_id
        return await self.works_for(session, obj.campaign_id)


async def callback_scope(session: AsyncSession, principal: Principal | None) -> CallbackScope:
    """The request's scope (kept for the request: its session lives as long)."""
    cached = session.info.get("callback_scope")
    if isinstance(cached, CallbackScope):
        return cached
    if _sees_all(principal):
        scope = CallbackScope(everything=True)
    else:
        assert principal is not None
        scope = CallbackScope(everything=False,
                              operator_id=await repo.active_operator_of_user(session, principal.user_id))
    session.info["callback_scope"] = scope
    return scope


def visible_callbacks(principal: Principal | None) -> ColumnElement[bool]:
    """SQL: the callbacks ``principal`` may see (the rule of :class:`CallbackScope`)."""
    if _sees_all(principal):
        return true()
    assert principal is not None
    operator_id = repo.operator_of_user(principal.user_id)
    return and_(operator_id.is_not(None), repo.callbacks_of_operator(operator_id))


async def callback_read_guard(session: AsyncSession, obj: Callback) -> dict[str, Any]:
    """``read_extra`` of the generic endpoints (get, each item of a list): a callback the request's principal may
    not see does not exist for him (lists are filtered by :func:`visible_callbacks` already)."""
    await load_callback(session, obj.id)
    return {}


async def callback_before_delete(session: AsyncSession, obj: Callback) -> None:
    await load_callback(session, obj.id)


async def _check_scope(session: AsyncSession, scope: CallbackScope, values: dict[str, Any], changed: set[str]) -> None:
    """A scoped user's new or changed callback stays his (403 naming the field otherwise).

    He books callbacks only in campaigns he works for, personal ones only for himself (the operator is himself when
    not given), never gives a callback to another operator, nor makes another operator's booking personal.
    """
    if scope.everything:
        return
    own = scope.operator_id
    if own is None:
        raise PermissionDenied("callbacks are scheduled by operators for themselves, and by supervisors; "
                               "your user is not an operator")
    if values.get("operator_id") is None and values["kind"] is CallbackKind.personal:
        values["operator_id"] = own
    operator_id = values.get("operator_id")
    if "operator_id" in changed and operator_id not in (None, own):
        raise PermissionDenied("you can book a callback only for yourself",
                               errors=[{"field": "operator_id", "reason": "must be your own operator or empty"}])
    if values["kind"] is CallbackKind.personal and operator_id != own:
        raise PermissionDenied("the callback is booked for another operator; you can take only shared callbacks",
                               errors=[{"field": "operator_id", "reason": "is another operator's"}])
    if "campaign_id" in changed and not await scope.works_for(session, values["campaign_id"]):
        raise PermissionDenied(f"you do not work for campaign {values['campaign_id']}",
                               errors=[{"field": "campaign_id", "reason": "is not a campaign of your pools"}])


async def _check_dialable(session: AsyncSession, values: dict[str, Any], campaign: Campaign, *,
                          find_contact: bool) -> None:
    """A pending callback is dialled for a contact of the campaign's lists on one of the contact's numbers
    (``engine/selection.py``): one on any other number would be kept and never called, so it is refused.

    Without a contact, the contact is the one of the campaign's lists that has the number (``find_contact``).
    """
    number, contact_id = values["number"], values.get("contact_id")
    if contact_id is None:
        if not find_contact:  # the request itself took the contact away
            raise ValidationFailed.field("contact_id", "a pending callback needs the contact it calls back")
        found = await repo.contacts_with_number(session, campaign.id, number)
        if not found:
            raise ValidationFailed.field("number", f"{number} belongs to no contact of the lists of campaign "
                                                   f"'{campaign.name}': a callback is dialled only for a contact, "
                                                   "on one of its numbers")
        if len(found) > 1:
            raise ValidationFailed.field("contact_id", f"several contacts have the number {number}; say which one")
        values["contact_id"] = found[0]
    elif not await repo.contact_has_number(session, contact_id, number):
        raise ValidationFailed.field("number", f"{number} is not a number of contact {contact_id}: a callback is "
                                               "dialled only on one of its contact's numbers")


async def _check_callback(session: AsyncSession, values: dict[str, Any], changed: set[str], region: str, *,
                          creating: bool, now: datetime | None = None) -> None:
    """Validate a callback's merged values in place; ``changed`` are the keys the request gave."""
    campaign = await session.get(Campaign, values["campaign_id"])
    if campaign is None:
        raise ValidationFailed.field("campaign_id", f"campaign {values['campaign_id']} does not exist")
    contact_id = values.get("contact_id")
    if contact_id is not None and not await repo.contact_in_campaign(session, contact_id, campaign.id):
        raise ValidationFailed.field("contact_id", f"contact {contact_id} is not in any contact list of "
                                                   f"campaign '{campaign.name}'")
    if values.get("number") is None:
        number = await repo.first_phone(session, contact_id) if contact_id is not None else None
        if number is None:
            raise ValidationFailed.field("number", "a number is required (or a contact that has a phone)")
        values["number"] = number
    elif "number" in changed:
        values["number"] = _e164(values["number"], region)
    if values["status"] == CallbackStatus.pending and {"campaign_id", "contact_id", "number", "status"} & changed:
        await _check_dialable(session, values, campaign, find_contact=creating or "contact_id" not in changed)
    if values["kind"] is CallbackKind.personal and values.get("operator_id") is None:
        raise ValidationFailed.field("operator_id", "a personal callback needs the operator it is for")
    await ensure_exists(session, Operator, values.get("operator_id"), "operator_id")
    tz = zone(campaign.time_zone)
    for key in ("window_start", "window_end"):
        if key in changed or "campaign_id" in changed:
            values[key] = localize(values[key], tz)
    if values["window_start"] >= values["window_end"]:
        raise ValidationFailed.field("window_end", "must be after window_start")
    window_set = bool({"window_start", "window_end", "status", "campaign_id"} & changed)
    if (window_set and values["status"] == CallbackStatus.pending
            and values["window_end"] <= (now or datetime.now(UTC))):
        # a pending callback whose window is over would never be dialled
        raise ValidationFailed.field("window_end", "is in the past; a pending callback needs a window that has "
                                                   "not ended yet")


async def create_callback(session: AsyncSession, data: dict[str, Any], region: str) -> Callback:
    await _check_scope(session, await callback_scope(session, principal_of(session)), data, set(data))
    await _check_callback(session, data, set(data), region, creating=True)
    obj = Callback(**data)
    session.add(obj)
    await session.flush()
    await session.refresh(obj)
    return obj


async def update_callback(session: AsyncSession, callback_id: int, data: dict[str, Any], region: str) -> Callback:
    obj = await load_callback(session, callback_id)
    reject_nulls(Callback, data)
    values = {k: getattr(obj, k) for k in _CALLBACK_KEYS} | data
    await _check_scope(session, await callback_scope(session, principal_of(session)), values, set(data))
    await _check_callback(session, values, set(data), region, creating=False)
    for key in _CALLBACK_KEYS:
        if getattr(obj, key) != values[key]:
            setattr(obj, key, values[key])
    await session.flush()
    await session.refresh(obj)
    return obj


async def load_callback(session: AsyncSession, callback_id: int) -> Callback:
    """The callback if the request's principal may see it; one he may not is answered as one that does not exist."""
    obj = await repo.callback(session, callback_id)
    if obj is None or not await (await callback_scope(session, principal_of(session))).sees(session, obj):
        raise NotFound(f"callback {callback_id} does not exist")
    return obj


async def postpone_callback(session: AsyncSession, callback_id: int, *, minutes: int | None,
                            until: datetime | None, now: datetime | None = None) -> Callback:
    """Move a pending callback's window to start ``minutes`` from now or at ``until``, keeping its length."""
    obj = await load_callback(session, callback_id)
    if obj.status is not CallbackStatus.pending:
        raise _conflict("status", f"the callback is {obj.status.value}; only a pending callback can be postponed")
    if (minutes is None) == (until is None):
        raise ValidationFailed.field("minutes", "give either minutes (e.g. 30, 60, 120, 180) or until")
    now = now or datetime.now(UTC)
    if until is not None:
        campaign = await load_campaign(session, obj.campaign_id)
        start = localize(until, zone(campaign.time_zone))
        if start <= now:
            raise ValidationFailed.field("until", "must be in the future")
    else:
        start = now + timedelta(minutes=minutes or 0)
    length = obj.window_end - obj.window_start
    obj.window_start, obj.window_end = start, start + length
    await session.flush()
    await session.refresh(obj)
    return obj
