"""REST API of the CRM integration and events out (docs/crm.md).

Configuration — connectors, webhook subscriptions, the integration API's allow-list, the outbox and its dead
letters, the request log — needs ``telephony.read`` / ``telephony.write`` (the equipment and integrations of the
installation). The integration API for external systems (``/api/integration/…``, an API token, the allow-list)
needs the permission of what it does: contacts, DNC, campaign control, operator control.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from dialer.api.crud import (
    SORTABLE,
    ListParams,
    Page,
    Resource,
    apply_sort,
    crud_router,
    list_params,
    load,
    paginate,
)
from dialer.api.deps import Session, client_of, require
from dialer.auth.permissions import P
from dialer.auth.service import Principal
from dialer.campaign import service as campaigns
from dialer.campaign.status import Action
from dialer.crm import service
from dialer.crm.base import CrmError, CrmRecordData
from dialer.crm.reader import read_once, upsert_record
from dialer.crm.registry import ADAPTERS, build
from dialer.crm.schemas import (
    AllowCreate,
    AllowRead,
    AllowUpdate,
    Backlog,
    CallNowBody,
    CampaignActionBody,
    CampaignActionResult,
    ConnectorCreate,
    ConnectorRead,
    ConnectorUpdate,
    DncBody,
    DncResult,
    KeyRead,
    OutboxRead,
    ReadResult,
    RecordResult,
    RecordUpsert,
    ReplayBody,
    ReplayResult,
    RequestRead,
    SubscriptionCreate,
    SubscriptionRead,
    SubscriptionUpdate,
    TestEventResult,
)
from dialer.crm.signing import new_client_id, new_key
from dialer.dnc.service import global_list_id, normalize_entry
from dialer.engine.commands import CommandKind
from dialer.exceptions import DialerError, PermissionDenied, ValidationFailed
from dialer.models import CrmConnector, DncEntry, DncList, IntegrationAllow, OutboxItem, WebhookSubscription
from dialer.workplace import service as workplace
from dialer.workplace.schemas import CommandResult, ManualDialBody


class Unreachable(DialerError):
    status = 502
    title = "The CRM did not answer as expected"
    type_slug = "crm-unreachable"


def _region(request: Request) -> str:
    return str(request.app.state.settings.default_country)


# --- connectors -----------------------------------------------------------------------------------------------


def _dump_rules(data: dict[str, Any]) -> dict[str, Any]:
    if data.get("status_map") is not None:
        data["status_map"] = {str(k): (v.model_dump() if hasattr(v, "model_dump") else dict(v))
                              for k, v in data["status_map"].items()}
    return data


async def _connector_before_create(session: AsyncSession, data: dict[str, Any]) -> dict[str, Any]:
    if data["kind"] not in ADAPTERS:
        raise ValidationFailed.field("kind", f"choose one of {sorted(ADAPTERS)}")
    data.setdefault("cursor", {})
    return _dump_rules(data)


async def _connector_before_update(session: AsyncSession, obj: CrmConnector, data: dict[str, Any]) -> dict[str, Any]:
    if "token" in data and data["token"] is None:
        data["token"] = ""
    return _dump_rules(data)


async def _connector_read_extra(session: AsyncSession, obj: CrmConnector) -> dict[str, Any]:
    return {"has_token": bool(obj.token)}


connectors = Resource(
    model=CrmConnector, path="crm-connectors", tag="integration", read_schema=ConnectorRead,
    create_schema=ConnectorCreate, update_schema=ConnectorUpdate, read_perm=P.integrations_read,
    write_perm=P.integrations_write, search=("name", "kind"), sort=("id", "name", "kind", "created_at"),
    filters=("kind", "is_active"), before_create=_connector_before_create, before_update=_connector_before_update,
    read_extra=_connector_read_extra, label="CRM connector",
)
connector_router = crud_router(connectors)
_cfg_read = Depends(require(P.integrations_read))
_cfg_write = Depends(require(P.integrations_write))


@connector_router.get("/{item_id}/statuses", response_model=dict[str, str],
                      summary="The CRM's statuses, asked of the CRM now (for the status mapping)")
async def crm_statuses(item_id: int, session: Session, _: Any = _cfg_read) -> Any:
    c = await load(session, CrmConnector, item_id, "CRM connector")
    try:
        adapter = build(c.kind, name=c.name, token=c.token, settings=dict(c.settings or {}))
    except ValueError as err:
        raise ValidationFailed.field("settings", str(err)) from None
    try:
        return await adapter.statuses()
    except CrmError as err:
        raise Unreachable(str(err)) from None
    finally:
        await adapter.aclose()


@connector_router.post("/{item_id}/read", response_model=ReadResult,
                       summary="Read new and changed records into the connector's list now")
async def crm_read_now(item_id: int, request: Request, session: Session, _: Any = _cfg_write) -> Any:
    c = await load(session, CrmConnector, item_id, "CRM connector")
    if c.list_id is None:
        raise ValidationFailed.field("list_id", "choose the contact list records are read into")
    await session.commit()  # the read commits on its own sessions
    try:
        report = await read_once(request.app.state.sessionmaker, item_id, country=_region(request))
    except CrmError as err:
        raise Unreachable(str(err)) from None
    return ReadResult(read=report.read, created=report.created, updated=report.updated, finished=report.finished,
                      refused=[{"external_id": i, "reason": r} for i, r in report.refused])


# --- webhook subscriptions ------------------------------------------------------------------------------------


async def _subscription_before_create(session: AsyncSession, data: dict[str, Any]) -> dict[str, Any]:
    data["client_id"] = new_client_id()
    data["secret"] = new_key()
    return data


subscriptions = Resource(
    model=WebhookSubscription, path="webhooks", tag="integration", read_schema=SubscriptionRead,
    create_schema=SubscriptionCreate, update_schema=SubscriptionUpdate, read_perm=P.integrations_read,
    write_perm=P.integrations_write, search=("name", "url"), sort=("id", "name", "created_at"),
    filters=("is_active",), before_create=_subscription_before_create, label="webhook subscription",
)
subscription_router = crud_router(subscriptions)


@subscription_router.post("/{item_id}/regenerate-key", response_model=KeyRead,
                          summary="A new signing key (the old one stops working at once)")
async def regenerate_key(item_id: int, session: Session, _: Any = _cfg_write) -> Any:
    return KeyRead(secret=await service.regenerate_key(session, item_id))


@subscription_router.post("/{item_id}/test", response_model=TestEventResult, status_code=202,
                          summary="Send a signed test event through the outbox (the debug page)")
async def send_test_event(item_id: int, request: Request, session: Session,
                          principal: Principal = _cfg_write) -> Any:
    item_id = await service.queue_test_event(session, item_id, by=principal.login)
    worker = getattr(request.app.state, "delivery_worker", None)
    if worker is not None:
        worker.wake()
    return TestEventResult(outbox_id=item_id)


# --- allow-list -------------------------------------------------------------------------------------------------

allow = Resource(
    model=IntegrationAllow, path="integration-allow", tag="integration", read_schema=AllowRead,
    create_schema=AllowCreate, update_schema=AllowUpdate, read_perm=P.integrations_read,
    write_perm=P.integrations_write, search=("cidr", "comment"), sort=("id", "cidr", "created_at"),
    label="allowed address",
)

# --- outbox, backlog, requests ----------------------------------------------------------------------------------

debug = APIRouter(prefix="/api/integration", tags=["integration"])
_OUTBOX_SORT = {"id": OutboxItem.id, "created_at": OutboxItem.created_at, "tries": OutboxItem.tries,
                "next_at": OutboxItem.next_at}
SORTABLE["/api/integration/outbox"] = tuple(sorted(_OUTBOX_SORT))


@debug.get("/outbox", response_model=Page[OutboxRead], summary="Outbox items (status=pending|delivered|dead)")
async def list_outbox(session: Session, params: ListParams = Depends(list_params),
                      status: str | None = Query(None, pattern="^(pending|delivered|dead)$"),
                      connector_id: int | None = None, subscription_id: int | None = None,
                      _: Any = _cfg_read) -> Any:
    stmt = select(OutboxItem)
    if status is not None:
        stmt = stmt.where(OutboxItem.status == status)
    if connector_id is not None:
        stmt = stmt.where(OutboxItem.connector_id == connector_id)
    if subscription_id is not None:
        stmt = stmt.where(OutboxItem.subscription_id == subscription_id)
    stmt = apply_sort(stmt, params.sort, _OUTBOX_SORT, [OutboxItem.id.desc()])
    rows, total = await paginate(session, stmt, params)
    return Page[OutboxRead](items=[OutboxRead.model_validate(r) for r in rows], total=total, page=params.page,
                            per_page=params.per_page)


@debug.post("/outbox/replay", response_model=ReplayResult, summary="Send dead letters again")
async def replay(body: ReplayBody, request: Request, session: Session, _: Any = _cfg_write) -> Any:
    done = await service.replay(session, body.ids)
    worker = getattr(request.app.state, "delivery_worker", None)
    if worker is not None:
        worker.wake()
    return ReplayResult(replayed=done)


@debug.get("/backlog", response_model=Backlog, summary="Items waiting and dead letters per target")
async def backlog(session: Session, _: Any = _cfg_read) -> Any:
    return await service.backlog(session)


@debug.get("/requests", response_model=list[RequestRead],
           summary="The last requests to CRMs and webhooks with their answers and timing")
async def requests(session: Session, limit: int = Query(100, ge=1, le=1000), target: str | None = None,
                   _: Any = _cfg_read) -> Any:
    return await service.recent_requests(session, limit=limit, target=target)


# --- the integration API for external systems -------------------------------------------------------------------


async def _allowed(request: Request, session: Session) -> None:
    """The allow-list of 003 §10.6 (empty: any address)."""
    address = client_of(request)
    if not await service.address_allowed(session, address):
        raise PermissionDenied(f"calls of the integration API are not accepted from {address}")


integration = APIRouter(prefix="/api/integration", tags=["integration"], dependencies=[Depends(_allowed)])


@integration.put("/crm-connectors/{connector_id}/records/{external_id}", response_model=RecordResult,
                 summary="Add or update a contact by its CRM id (the CRM pushes a record)")
async def upsert(connector_id: int, external_id: str, body: RecordUpsert, request: Request, session: Session,
                 _: Any = Depends(require(P.contacts_write))) -> Any:
    connector = await load(session, CrmConnector, connector_id, "CRM connector")
    record = CrmRecordData(external_id.strip(), body.status, tuple(p for p in body.phones if p.strip()),
                           dict(body.fields), recall_at=body.recall_at)
    if not record.external_id:
        raise ValidationFailed.field("external_id", "the CRM id must not be empty")
    from dialer.crm.reader import ReadReport

    report = ReadReport()
    contact = await upsert_record(session, connector, record, country=_region(request), report=report)
    return RecordResult(contact_id=contact.id if contact is not None else None, created=report.created > 0,
                        finished=report.finished > 0)


@integration.post("/dnc", response_model=DncResult, summary="Put a number on a DNC list (the global blacklist by "
                  "default)")
async def add_dnc(body: DncBody, request: Request, session: Session, _: Any = Depends(require(P.dnc_write))) -> Any:
    list_id = body.list_id if body.list_id is not None else await global_list_id(session)
    await load(session, DncList, list_id, "dnc list")
    number = normalize_entry(body.number, is_prefix=False, default_region=_region(request))
    added = await session.scalar(pg_insert(DncEntry).values(
        list_id=list_id, number=number, is_prefix=False, comment=body.comment)
        .on_conflict_do_nothing(constraint="uq_dnc_entries_list_number").returning(DncEntry.id))
    if added is not None:
        from dialer.audit.recorder import log
        from dialer.models.enums import AuditAction

        await log(session, AuditAction.created, "dnc_entries", added, changes={"number": [None, number],
                                                                                "list_id": [None, list_id]})
    return DncResult(list_id=list_id, number=number, added=added is not None)


@integration.post("/campaigns/{campaign_id}/control", response_model=CampaignActionResult,
                  summary="Start, pause, resume or stop a campaign")
async def campaign_control(campaign_id: int, body: CampaignActionBody, session: Session,
                           _: Any = Depends(require(P.campaigns_control))) -> Any:
    campaign = await campaigns.change_status(session, campaign_id, Action(body.action), body.reason)
    return CampaignActionResult(campaign_id=campaign.id, status=campaign.status.value)


@integration.post("/calls", response_model=CommandResult,
                  summary="Place one call now for an operator (003 §10.6 p.5: a call requested by the CRM)")
async def call_now(body: CallNowBody, request: Request, response: Response, session: Session,
                   principal: Principal = Depends(require(P.operators_control))) -> Any:
    op = await workplace.operator(session, body.operator_id)
    payload = await workplace.manual_dial_payload(session, op, ManualDialBody(
        campaign_id=body.campaign_id, number=body.number, contact_id=body.contact_id))
    await session.commit()
    result, status = await workplace.send(request.app.state.sessionmaker, CommandKind.manual_dial, op.id, payload,
                                          user_id=principal.user_id)
    response.status_code = status
    return result


routers = [connector_router, subscription_router, crud_router(allow), debug, integration]
