"""API schemas of CRM connectors, webhook subscriptions, the outbox, the request log and the integration API."""

from __future__ import annotations

import ipaddress
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from dialer.api.crud import ReadSchema, Schema
from dialer.crm.outbox import WEBHOOK_EVENTS

Kind = Literal["fake", "generic_http", "leadvertex", "bitrix24"]
Action = Literal["call", "postpone", "leave", "final"]


class StatusRule(BaseModel):
    action: Action
    #: The CRM status's name, kept for the UI.
    name: str = ""


def _check_result_map(value: dict[str, str] | None) -> dict[str, str] | None:
    if value is None:
        return None
    for key in value:
        kind, _, rest = key.partition(":")
        if key != "exhausted" and (kind not in ("code", "final", "category") or not rest):
            raise ValueError(f"'{key}': keys are code:<id>, final:<category>, category:<category> or exhausted")
    return value


def _check_events(value: list[str] | None) -> list[str] | None:
    if value is None:
        return None
    unknown = sorted(set(value) - set(WEBHOOK_EVENTS))
    if unknown:
        raise ValueError(f"unknown events {unknown}: choose from {list(WEBHOOK_EVENTS)}")
    return list(dict.fromkeys(value))


class ConnectorCreate(Schema):
    name: str = Field(min_length=1, max_length=200)
    kind: Kind
    settings: dict[str, Any] = Field(default_factory=dict, description=(
        "Adapter settings: leadvertex {account | base_url, changed_param, since}; bitrix24 {entity: lead | deal, "
        "user_id, register_calls; the inbound webhook URL goes in token}; generic_http {read_url, "
        "records_path, map, write_url, statuses | statuses_url, headers}; every kind: field_map {CRM field or "
        "$id / $status: list field}, phone_field (docs/crm.md)"))
    token: str = Field("", max_length=500, description="The CRM's API token; write-only, never returned")
    list_id: int | None = Field(None, description="The contact list records are read into")
    read_enabled: bool = False
    write_enabled: bool = True
    poll_interval_s: int = Field(60, ge=5, le=86400)
    status_map: dict[str, StatusRule] = Field(default_factory=dict, description="CRM status id → what it means")
    result_map: dict[str, str] = Field(default_factory=dict, description=(
        "code:<completion code id> | final:<category> | exhausted | category:<category> → CRM status to set"))
    max_tries: int = Field(12, ge=1, le=100)
    is_active: bool = True

    _results = field_validator("result_map")(_check_result_map)


class ConnectorUpdate(Schema):
    name: str | None = Field(None, min_length=1, max_length=200)
    settings: dict[str, Any] | None = None
    token: str | None = Field(None, max_length=500, description="Write-only; empty removes it")
    list_id: int | None = None
    read_enabled: bool | None = None
    write_enabled: bool | None = None
    poll_interval_s: int | None = Field(None, ge=5, le=86400)
    status_map: dict[str, StatusRule] | None = None
    result_map: dict[str, str] | None = None
    max_tries: int | None = Field(None, ge=1, le=100)
    is_active: bool | None = None

    _results = field_validator("result_map")(_check_result_map)


class ConnectorRead(ReadSchema):
    id: int
    name: str
    kind: str
    settings: dict[str, Any]
    has_token: bool = False
    list_id: int | None
    read_enabled: bool
    write_enabled: bool
    poll_interval_s: int
    status_map: dict[str, Any]
    result_map: dict[str, Any]
    max_tries: int
    cursor: dict[str, Any]
    last_read_at: datetime | None
    last_error: str
    is_active: bool
    created_at: datetime
    updated_at: datetime


class SubscriptionCreate(Schema):
    name: str = Field(min_length=1, max_length=200)
    url: str = Field(min_length=8, max_length=2000, pattern=r"^https?://", description="Where events are POSTed")
    events: list[str] = Field(default_factory=list, description=f"Switched-on events: {', '.join(WEBHOOK_EVENTS)}")
    max_tries: int = Field(12, ge=1, le=100)
    is_active: bool = True

    _events = field_validator("events")(_check_events)


class SubscriptionUpdate(Schema):
    name: str | None = Field(None, min_length=1, max_length=200)
    url: str | None = Field(None, min_length=8, max_length=2000, pattern=r"^https?://")
    events: list[str] | None = None
    max_tries: int | None = Field(None, ge=1, le=100)
    is_active: bool | None = None

    _events = field_validator("events")(_check_events)


class SubscriptionRead(ReadSchema):
    id: int
    name: str
    url: str
    client_id: str = Field(description="X-Client-ID (003 §10.6 «Уникальный код идентификации»)")
    secret: str = Field(description="The signing key (003 «Уникальный ключ для подписи»)")
    events: list[str]
    max_tries: int
    is_active: bool
    created_at: datetime
    updated_at: datetime


class KeyRead(BaseModel):
    secret: str


class AllowCreate(Schema):
    cidr: str = Field(min_length=2, max_length=64, description="An address or a network: 10.0.0.5, 192.168.0.0/24")
    comment: str = ""

    @field_validator("cidr")
    @classmethod
    def _network(cls, value: str) -> str:
        try:
            return str(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise ValueError("not an IP address or network such as 192.168.0.0/24") from None


class AllowUpdate(Schema):
    comment: str | None = None


class AllowRead(ReadSchema):
    id: int
    cidr: str
    comment: str
    created_at: datetime


class OutboxRead(ReadSchema):
    id: int
    connector_id: int | None
    subscription_id: int | None
    record_key: str
    event: str
    payload: dict[str, Any]
    status: str
    tries: int
    next_at: datetime
    last_error: str
    created_at: datetime
    delivered_at: datetime | None


class ReplayBody(Schema):
    ids: list[int] = Field(min_length=1, max_length=10000)


class ReplayResult(BaseModel):
    replayed: int


class TestEventResult(BaseModel):
    outbox_id: int


class BacklogTarget(BaseModel):
    connector_id: int | None
    subscription_id: int | None
    name: str | None
    pending: int
    dead: int
    oldest_pending_s: float | None


class Backlog(BaseModel):
    pending: int
    dead: int
    targets: list[BacklogTarget]


class RequestRead(ReadSchema):
    id: int
    target: str
    method: str
    url: str
    status: int | None
    duration_ms: float
    request: str
    response: str
    error: str
    outbox_id: int | None
    at: datetime


class ReadResult(BaseModel):
    read: int
    created: int
    updated: int
    finished: int
    refused: list[dict[str, str]]


class RecordUpsert(Schema):
    """A CRM record pushed by the CRM itself (the same path as a read)."""

    status: str = Field("", max_length=200, description="The CRM status (the connector's status map applies)")
    phones: list[str] = Field(default_factory=list, max_length=20)
    fields: dict[str, Any] = Field(default_factory=dict, description="Fields by the CRM's names (the field map)")
    recall_at: datetime | None = None


class RecordResult(BaseModel):
    contact_id: int | None
    created: bool
    finished: bool


class DncBody(Schema):
    number: str = Field(min_length=1, max_length=64)
    list_id: int | None = Field(None, description="A DNC list; the global blacklist when left out")
    comment: str = ""


class DncResult(BaseModel):
    list_id: int
    number: str
    added: bool


class CampaignActionBody(Schema):
    action: Literal["start", "pause", "resume", "stop"]
    reason: str = ""


class CampaignActionResult(BaseModel):
    campaign_id: int
    status: str


class CallNowBody(Schema):
    """003 §10.6 p.5 «совершение исходящего вызова по запросу из CRM»: one call now, by an operator."""

    operator_id: int
    campaign_id: int
    number: str | None = Field(None, max_length=40)
    contact_id: int | None = None

