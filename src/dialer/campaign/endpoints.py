"""HTTP endpoints of completion codes, strategies, holidays, caller IDs, campaigns, selections and callbacks.

Most entities use the generic :func:`~dialer.api.crud.crud_router` with hooks from the service;
the routes added here are the ones the generic five cannot express: campaign actions, the
day-type lookup, selections nested under their campaign, and writes that need the request's
settings (phone numbers are read in the configured default country).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy import Select, extract

from dialer.api.crud import (
    ListParams,
    Page,
    Resource,
    apply_search,
    apply_sort,
    crud_router,
    list_params,
    load,
    not_null_hook,
    paginate,
    to_read,
)
from dialer.api.deps import Session, require
from dialer.api.groups import MemberGroup
from dialer.auth.permissions import P
from dialer.campaign import repository as repo
from dialer.campaign import service
from dialer.campaign.schemas import (
    Acknowledge,
    CallbackCreate,
    CallbackRead,
    CallbackUpdate,
    CallerIdCreate,
    CallerIdRead,
    CallerIdUpdate,
    CampaignCreate,
    CampaignRead,
    CampaignUpdate,
    CompletionCodeCreate,
    CompletionCodeRead,
    CompletionCodeUpdate,
    DayTypeRead,
    HolidayCreate,
    HolidayRead,
    HolidayUpdate,
    Postpone,
    PreviewRead,
    PreviewRequest,
    SelectionCreate,
    SelectionRead,
    SelectionUpdate,
    StatusComment,
    StrategyCreate,
    StrategyRead,
    StrategyUpdate,
)
from dialer.campaign.status import Action
from dialer.exceptions import ValidationFailed
from dialer.models import (
    Callback,
    CallerId,
    CallerIdGroup,
    Campaign,
    CompletionCode,
    CompletionCodeGroup,
    Holiday,
    Selection,
    Strategy,
    caller_id_group_members,
    completion_code_group_members,
)


def _flag(request: Request, name: str) -> bool | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    if raw.lower() not in ("1", "0", "true", "false", "yes", "no"):
        raise ValidationFailed.field(name, f"'{raw}' is not true or false")
    return raw.lower() in ("1", "true", "yes")


def _region(request: Request) -> str:
    return str(request.app.state.settings.default_country)


# --- completion codes -----------------------------------------------------------------------------


def _codes_filter(stmt: Select[Any], request: Request) -> Select[Any]:
    is_system = _flag(request, "is_system")
    if is_system is None:
        return stmt
    return stmt.where(CompletionCode.system_key.is_not(None) if is_system else CompletionCode.system_key.is_(None))


codes = Resource(
    model=CompletionCode, path="completion-codes", tag="completion codes", read_schema=CompletionCodeRead,
    create_schema=CompletionCodeCreate, update_schema=CompletionCodeUpdate,
    read_perm=P.codes_read, write_perm=P.codes_write,
    search=("name", "description", "crm_status"), sort=("id", "name", "category", "created_at"),
    filters=("category", "is_final", "adds_to_dnc"), list_filter=_codes_filter,
    before_update=service.code_before_update, before_delete=service.code_before_delete,
)

code_groups = MemberGroup(
    model=CompletionCodeGroup, member_model=CompletionCode, members=completion_code_group_members,
    member_column="code_id", members_field="code_ids", schema_prefix="CodeGroup",
    path="completion-code-groups", tag="completion codes", read_perm=P.codes_read, write_perm=P.codes_write,
    before_delete=service.refuse_delete_if_used_by_campaigns("completion-code group",
                                                             Campaign.completion_code_group_id),
)

# --- strategies -----------------------------------------------------------------------------------

strategies = Resource(
    model=Strategy, path="strategies", tag="strategies", read_schema=StrategyRead, create_schema=StrategyCreate,
    update_schema=StrategyUpdate, read_perm=P.strategies_read, write_perm=P.strategies_write,
    search=("name", "description"), sort=("id", "name", "created_at"),
    filters=("skill_id", "phone_field_id", "default_completion_code_id"),
    extra_fields=("outcome_retries", "result_rules"),
    before_create=service.strategy_before_create, before_update=service.strategy_before_update,
    after_save=service.strategy_after_save, read_extra=service.strategy_read_extra,
    before_delete=service.strategy_before_delete,
)

# --- holidays -------------------------------------------------------------------------------------


def _year_filter(stmt: Select[Any], request: Request) -> Select[Any]:
    raw = request.query_params.get("year")
    if raw is None:
        return stmt
    if not raw.isdigit() or not 1900 <= int(raw) <= 9999:
        raise ValidationFailed.field("year", f"'{raw}' is not a year like 2026")
    return stmt.where(extract("year", Holiday.day) == int(raw))


holidays = Resource(
    model=Holiday, path="holidays", tag="holidays", read_schema=HolidayRead, create_schema=HolidayCreate,
    update_schema=HolidayUpdate, read_perm=P.holidays_read, write_perm=P.holidays_write,
    search=("name",), sort=("id", "day", "name"), filters=("is_working_day",), list_filter=_year_filter,
    before_update=not_null_hook(Holiday),
)

# Mounted before the holidays' "/{item_id}" routes so that "day-type" is not read as an id.
calendar_router = APIRouter(prefix="/api/holidays", tags=["holidays"])


@calendar_router.get("/day-type", response_model=DayTypeRead, summary="Working day or holiday on a date")
async def get_day_type(session: Session, day: date = Query(alias="date", description="YYYY-MM-DD"),
                       _: Any = Depends(require(P.holidays_read))) -> Any:
    """Saturdays and Sundays are holidays unless marked as working days; listed holidays are holidays."""
    return {"date": day, "day_type": await service.day_type_on(session, day)}


# --- caller IDs -----------------------------------------------------------------------------------

caller_ids = Resource(
    model=CallerId, path="caller-ids", tag="caller IDs", read_schema=CallerIdRead, create_schema=CallerIdCreate,
    update_schema=CallerIdUpdate, read_perm=P.callerids_read, write_perm=P.callerids_write,
    search=("number", "description"), sort=("id", "number", "created_at"), filters=("is_active",),
    skip=("create", "update"),
)
caller_id_router = crud_router(caller_ids)


@caller_id_router.post("", response_model=CallerIdRead, status_code=201, summary="Create one of caller IDs")
async def create_caller_id(payload: CallerIdCreate, request: Request, session: Session,
                           _: Any = Depends(require(P.callerids_write))) -> Any:
    """The number is normalised to E.164; without a country code it is read in the default country."""
    return await service.create_caller_id(session, payload.model_dump(), _region(request))


@caller_id_router.patch("/{item_id}", response_model=CallerIdRead, summary="Change one of caller IDs")
async def update_caller_id(item_id: int, payload: CallerIdUpdate, request: Request, session: Session,
                           _: Any = Depends(require(P.callerids_write))) -> Any:
    obj = await load(session, CallerId, item_id, "caller ID")
    return await service.update_caller_id(session, obj, payload.model_dump(exclude_unset=True), _region(request))


caller_id_groups = MemberGroup(
    model=CallerIdGroup, member_model=CallerId, members=caller_id_group_members,
    member_column="caller_id_id", members_field="caller_id_ids", schema_prefix="CallerIdGroup",
    path="caller-id-groups", tag="caller IDs", read_perm=P.callerids_read, write_perm=P.callerids_write,
    before_delete=service.refuse_delete_if_used_by_campaigns("caller-ID group", Campaign.caller_id_group_id),
)

# --- campaigns ------------------------------------------------------------------------------------

campaigns = Resource(
    model=Campaign, path="campaigns", tag="campaigns", read_schema=CampaignRead, create_schema=CampaignCreate,
    update_schema=CampaignUpdate, read_perm=P.campaigns_read, write_perm=P.campaigns_write,
    search=("name", "description"),
    sort=("id", "name", "priority", "status", "dial_mode", "created_at", "status_changed_at"),
    filters=("status", "dial_mode", "kind", "strategy_id"), extra_fields=("list_ids", "pool_ids", "schedule"),
    before_create=service.campaign_before_create, before_update=service.campaign_before_update,
    after_save=service.campaign_after_save, read_extra=service.campaign_read_extra,
    before_delete=service.campaign_before_delete,
)
campaign_router = crud_router(campaigns)
_control = Depends(require(P.campaigns_control))


async def _act(session: Session, campaign_id: int, action: Action, comment: str) -> Any:
    campaign = await service.change_status(session, campaign_id, action, comment)
    return await to_read(campaigns, session, campaign)


@campaign_router.post("/{campaign_id}/start", response_model=CampaignRead, summary="Start or restart a campaign")
async def start_campaign(campaign_id: int, session: Session, body: StatusComment | None = None,
                         _: Any = _control) -> Any:
    """draft, stopped or finished → running; the campaign must be runnable (strategy with a phone field,
    at least one contact list, a completion-code group with codes)."""
    return await _act(session, campaign_id, Action.start, body.comment if body else "")


@campaign_router.post("/{campaign_id}/pause", response_model=CampaignRead, summary="Pause a running campaign")
async def pause_campaign(campaign_id: int, session: Session, body: StatusComment | None = None,
                         _: Any = _control) -> Any:
    return await _act(session, campaign_id, Action.pause, body.comment if body else "")


@campaign_router.post("/{campaign_id}/resume", response_model=CampaignRead, summary="Resume a paused campaign")
async def resume_campaign(campaign_id: int, session: Session, body: StatusComment | None = None,
                          _: Any = _control) -> Any:
    return await _act(session, campaign_id, Action.resume, body.comment if body else "")


@campaign_router.post("/{campaign_id}/stop", response_model=CampaignRead, summary="Stop a campaign")
async def stop_campaign(campaign_id: int, session: Session, body: StatusComment | None = None,
                        _: Any = _control) -> Any:
    return await _act(session, campaign_id, Action.stop, body.comment if body else "")


@campaign_router.post("/{campaign_id}/acknowledge", response_model=CampaignRead,
                      summary="Acknowledge an auto-stop and dial again")
async def acknowledge_campaign(campaign_id: int, body: Acknowledge, session: Session, _: Any = _control) -> Any:
    """auto_paused → running, with a comment saying why it is safe (kept as the status reason)."""
    return await _act(session, campaign_id, Action.acknowledge, body.comment)


# --- selections -----------------------------------------------------------------------------------

selection_router = APIRouter(prefix="/api/campaigns/{campaign_id}/selections", tags=["selections"])
_sel_read = Depends(require(P.selections_read))
_sel_write = Depends(require(P.selections_write))
_SELECTION_SORT = {name: getattr(Selection, name) for name in ("id", "name", "priority", "is_active", "created_at")}


@selection_router.get("", response_model=Page[SelectionRead], summary="List selections of a campaign")
async def list_selections(campaign_id: int, request: Request, session: Session,
                          params: ListParams = Depends(list_params), _: Any = _sel_read) -> Any:
    await service.load_campaign(session, campaign_id)
    stmt = repo.selections_of(campaign_id)
    if (active := _flag(request, "is_active")) is not None:
        stmt = stmt.where(Selection.is_active.is_(active))
    stmt = apply_search(stmt, params.q, [Selection.name])
    stmt = apply_sort(stmt, params.sort, _SELECTION_SORT, [Selection.priority.desc(), Selection.id])
    items, total = await paginate(session, stmt, params)
    return {"items": items, "total": total, "page": params.page, "per_page": params.per_page}


@selection_router.post("", response_model=SelectionRead, status_code=201, summary="Create a selection")
async def create_selection(campaign_id: int, payload: SelectionCreate, session: Session, _: Any = _sel_write) -> Any:
    return await service.create_selection(session, campaign_id, payload.model_dump())


@selection_router.post("/preview", response_model=PreviewRead, summary="Count contacts for unsaved conditions")
async def preview_unsaved(campaign_id: int, payload: PreviewRequest, session: Session, _: Any = _sel_read) -> Any:
    """For the condition builder: how many contacts of the campaign's lists (not done) match right now."""
    return await service.preview(session, campaign_id, payload.model_dump())


@selection_router.get("/{selection_id}", response_model=SelectionRead, summary="Get a selection")
async def get_selection(campaign_id: int, selection_id: int, session: Session, _: Any = _sel_read) -> Any:
    return await service.load_selection(session, campaign_id, selection_id)


@selection_router.get("/{selection_id}/preview", response_model=PreviewRead,
                      summary="Count contacts a selection takes now")
async def preview_selection(campaign_id: int, selection_id: int, session: Session, _: Any = _sel_read) -> Any:
    return await service.preview_saved(session, campaign_id, selection_id)


@selection_router.patch("/{selection_id}", response_model=SelectionRead, summary="Change a selection")
async def update_selection(campaign_id: int, selection_id: int, payload: SelectionUpdate, session: Session,
                           _: Any = _sel_write) -> Any:
    return await service.update_selection(session, campaign_id, selection_id, payload.model_dump(exclude_unset=True))


@selection_router.delete("/{selection_id}", status_code=204, summary="Delete a selection")
async def delete_selection(campaign_id: int, selection_id: int, session: Session, _: Any = _sel_write) -> Response:
    await service.delete_selection(session, campaign_id, selection_id)
    return Response(status_code=204)


# --- callbacks ------------------------------------------------------------------------------------


def _visible_callbacks(stmt: Select[Any], request: Request) -> Select[Any]:
    """An operator lists only his own and his campaigns' shared callbacks (service.CallbackScope)."""
    return stmt.where(service.visible_callbacks(getattr(request.state, "principal", None)))


callbacks = Resource(
    model=Callback, path="callbacks", tag="callbacks", read_schema=CallbackRead, create_schema=CallbackCreate,
    update_schema=CallbackUpdate, read_perm=P.callbacks_read, write_perm=P.callbacks_write,
    search=("number", "comment"), sort=("id", "window_start", "window_end", "status", "created_at"),
    filters=("campaign_id", "operator_id", "status", "kind", "contact_id"), skip=("create", "update"),
    list_filter=_visible_callbacks, read_extra=service.callback_read_guard,
    before_delete=service.callback_before_delete,
)
callback_router = crud_router(callbacks)
_cb_write = Depends(require(P.callbacks_write))


@callback_router.post("", response_model=CallbackRead, status_code=201, summary="Schedule a callback")
async def create_callback(payload: CallbackCreate, request: Request, session: Session, _: Any = _cb_write) -> Any:
    return await service.create_callback(session, payload.model_dump(), _region(request))


@callback_router.patch("/{item_id}", response_model=CallbackRead, summary="Change a callback")
async def update_callback(item_id: int, payload: CallbackUpdate, request: Request, session: Session,
                          _: Any = _cb_write) -> Any:
    return await service.update_callback(session, item_id, payload.model_dump(exclude_unset=True), _region(request))


@callback_router.post("/{item_id}/postpone", response_model=CallbackRead, summary="Postpone a callback")
async def postpone_callback(item_id: int, payload: Postpone, session: Session, _: Any = _cb_write) -> Any:
    """``{"minutes": 30}`` moves the window to start 30 minutes from now; ``{"until": ...}`` to that moment."""
    return await service.postpone_callback(session, item_id, minutes=payload.minutes, until=payload.until)


routers = [
    crud_router(codes),
    crud_router(code_groups.resource()),
    crud_router(strategies),
    calendar_router,
    crud_router(holidays),
    caller_id_router,
    crud_router(caller_id_groups.resource()),
    selection_router,
    campaign_router,
    callback_router,
]
