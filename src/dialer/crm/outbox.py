"""The outbox: what must go out, inserted in the same transaction as the change it reports.

Two producers call this module, both inside a transaction they commit themselves:

* the engine's journal (:mod:`dialer.engine.journal`) hands every unit's events to :func:`capture_events` right
  before it NOTIFYs them: call placed / ringing / answered / connected / ended, operator state changed, campaign
  state changed become webhook items of the subscriptions that switched them on;
* :func:`dialer.engine.outcome.apply_result` (and its batch form) hands every applied result to
  :func:`capture_results` — the engine's own results, the operator's completion code, and the result an operator
  or supervisor records afterwards (``workplace.service.record_result``) all pass there — which become
  ``call.result`` and ``contact.finished`` webhook items and one CRM write per CRM record of the contact.

So a result is never committed without its deliveries, nor a delivery without its result; a CRM that is down
only makes the outbox longer (the worker, :mod:`dialer.crm.worker`, delivers later), dialling goes on. Each call
is one ``INSERT … SELECT`` whatever the batch size, and none at all while nothing is switched on (what is, is read
at most every :data:`CONFIG_TTL_S` seconds). The module imports no web framework: the engine uses it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from dialer.engine.events import (
    CallAnswered,
    CallConnected,
    CallEnded,
    CallPlaced,
    CallRinging,
    CampaignStatusChanged,
    Event,
    OperatorStateChanged,
)

__all__ = ["CONFIG_TTL_S", "EVENT_NAMES", "RESULT_EVENT", "WEBHOOK_EVENTS", "capture_events", "capture_results",
           "event_body", "forget_config", "record_key", "switched_on"]

#: Engine events and the webhook event names they are sent as (003 §10.6 lists the call stages).
EVENT_NAMES: dict[type[Event], str] = {
    CallPlaced: "call.queued",
    CallRinging: "call.ringing",
    CallAnswered: "call.answered",
    CallConnected: "call.connected",
    CallEnded: "call.ended",
    OperatorStateChanged: "operator.state",
    CampaignStatusChanged: "campaign.state",
}
#: A result was set on an attempt (the engine's, the operator's completion code, or one recorded afterwards).
RESULT_EVENT = "call.result"
#: The strategy made the contact final.
CONTACT_FINISHED = "contact.finished"
#: Every event a subscription may switch on, in the order the UI lists them.
WEBHOOK_EVENTS: tuple[str, ...] = (*EVENT_NAMES.values(), RESULT_EVENT, CONTACT_FINISHED)


class _Result(Protocol):
    """What is read of :class:`dialer.engine.outcome.AttemptResult` (not imported: outcome imports this module)."""

    @property
    def attempt_id(self) -> int: ...
    @property
    def campaign_id(self) -> int: ...
    @property
    def contact_id(self) -> int | None: ...
    @property
    def number(self) -> str: ...
    @property
    def category(self) -> Any: ...
    @property
    def completion_code_id(self) -> int: ...
    @property
    def callback_at(self) -> datetime | None: ...
    @property
    def never_call(self) -> bool: ...


class _Decision(Protocol):
    """What is read of :class:`dialer.engine.outcome.ContactDecision`."""

    @property
    def final(self) -> bool: ...
    @property
    def next_call_at(self) -> datetime | None: ...
    @property
    def reason(self) -> str: ...


def record_key(event: Event) -> str:
    """Items of one subscription with the same key go out in order: a call's stages, an operator's states."""
    attempt = getattr(event, "attempt_id", None)
    if isinstance(event, OperatorStateChanged):
        return f"operator:{event.operator_id}"
    if attempt is not None:
        return f"attempt:{attempt}"
    return f"campaign:{getattr(event, 'campaign_id', '')}"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def event_body(event: Event) -> dict[str, Any]:
    """The event's fields as the webhook's ``data`` (the same names as the live stream)."""
    data: dict[str, Any] = {}
    for name in event.__dataclass_fields__:
        if name in ("truncated",):
            continue
        value = getattr(event, name)
        data[name] = value.isoformat() if isinstance(value, datetime) else value
    return data


_WEBHOOKS = text(
    "INSERT INTO integration_outbox (subscription_id, record_key, event, payload, status, tries, next_at,"
    " last_error, created_at) "
    "SELECT s.id, e.key, e.name, CAST(e.body AS jsonb), 'pending', 0, now(), '', now() "
    "FROM unnest(CAST(:names AS text[]), CAST(:keys AS text[]), CAST(:bodies AS text[])) WITH ORDINALITY"
    " AS e(name, key, body, n) "
    "JOIN webhook_subscriptions s ON s.is_active AND e.name = ANY(s.events) "
    "ORDER BY e.n, s.id")

_CRM = text(
    "INSERT INTO integration_outbox (connector_id, record_key, event, payload, status, tries, next_at,"
    " last_error, created_at) "
    "SELECT r.connector_id, 'record:' || r.external_id, 'result',"
    " CAST(e.body AS jsonb) || jsonb_build_object('external_id', r.external_id), 'pending', 0, now(), '', now() "
    "FROM unnest(CAST(:contacts AS bigint[]), CAST(:bodies AS text[])) WITH ORDINALITY AS e(contact_id, body, n) "
    "JOIN crm_records r ON r.contact_id = e.contact_id "
    "JOIN crm_connectors c ON c.id = r.connector_id AND c.is_active AND c.write_enabled "
    "ORDER BY e.n, r.id")


#: How long what is switched on (events subscribed to, connectors writing) is reused before it is read again: a new
#: subscription or connector takes effect within this time. Until then the journal pays nothing for integrations
#: nobody configured (no serialising, no statement).
CONFIG_TTL_S = 2.0
_config: dict[str, tuple[float, frozenset[str], bool]] = {}

_CONFIG = text(
    "SELECT coalesce((SELECT array_agg(DISTINCT e) FROM webhook_subscriptions s, unnest(s.events) AS e"
    " WHERE s.is_active), '{}'), EXISTS (SELECT 1 FROM crm_connectors WHERE is_active AND write_enabled)")


async def switched_on(session: AsyncSession) -> tuple[frozenset[str], bool]:
    """The webhook events some active subscription wants, and whether any connector writes results (cached per
    database for :data:`CONFIG_TTL_S`)."""
    bind = session.bind
    key = str(bind.engine.url if isinstance(bind, AsyncConnection) else bind.url) if bind is not None else ""
    now = time.monotonic()
    found = _config.get(key)
    if found is None or now - found[0] > CONFIG_TTL_S:
        events, writing = (await session.execute(_CONFIG)).one()
        found = (now, frozenset(events or ()), bool(writing))
        _config[key] = found
    return found[1], found[2]


def forget_config() -> None:
    """Read what is switched on again at the next unit (after a change in this process)."""
    _config.clear()


async def _webhooks(session: AsyncSession, items: Sequence[tuple[str, str, dict[str, Any]]]) -> None:
    if items:
        await session.execute(_WEBHOOKS, {
            "names": [n for n, _, _ in items], "keys": [k for _, k, _ in items],
            "bodies": [json.dumps(b, ensure_ascii=False, default=str) for _, _, b in items]})


async def capture_events(session: AsyncSession, events: Sequence[Event]) -> None:
    """Webhook items for the engine events of one journal unit (in the caller's transaction)."""
    if not events:
        return
    wanted, _ = await switched_on(session)
    if not wanted:
        return
    await _webhooks(session, [(name, record_key(e), event_body(e)) for e in events
                              if (name := EVENT_NAMES.get(type(e))) is not None and name in wanted])


def _result_body(result: _Result, decision: _Decision, now: datetime) -> dict[str, Any]:
    return {"attempt_id": result.attempt_id, "campaign_id": result.campaign_id, "contact_id": result.contact_id,
            "number": result.number, "category": str(getattr(result.category, "value", result.category)),
            "completion_code_id": result.completion_code_id, "final": decision.final,
            "reason": str(decision.reason), "next_call_at": _iso(decision.next_call_at),
            "callback_at": _iso(result.callback_at), "never_call": result.never_call, "at": now.isoformat()}


async def capture_results(session: AsyncSession, items: Sequence[tuple[_Result, _Decision, datetime]]) -> None:
    """Webhook items and CRM writes for applied results (in the caller's transaction)."""
    if not items:
        return
    wanted, writing = await switched_on(session)
    if not wanted and not writing:
        return
    hooks: list[tuple[str, str, dict[str, Any]]] = []
    contacts: list[int] = []
    bodies: list[str] = []
    for result, decision, now in items:
        body = _result_body(result, decision, now)
        if RESULT_EVENT in wanted:
            hooks.append((RESULT_EVENT, f"attempt:{result.attempt_id}", body))
        if result.contact_id is not None:
            if decision.final and CONTACT_FINISHED in wanted:
                hooks.append((CONTACT_FINISHED, f"contact:{result.contact_id}", body))
            if writing:
                contacts.append(result.contact_id)
                bodies.append(json.dumps(body, ensure_ascii=False))
    await _webhooks(session, hooks)
    if contacts:
        await session.execute(_CRM, {"contacts": contacts, "bodies": bodies})
