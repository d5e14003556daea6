"""What the integration pages and API do: dead letters, the backlog, test events, keys, the request log."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from dialer.audit.recorder import log
from dialer.crm.signing import new_key
from dialer.exceptions import NotFound
from dialer.models import IntegrationAllow, IntegrationRequest, OutboxItem, WebhookSubscription
from dialer.models.enums import AuditAction

__all__ = ["TEST_EVENT", "address_allowed", "backlog", "queue_test_event", "recent_requests", "regenerate_key",
           "replay"]

#: The event the debug page sends (003 "Отладка взаимодействия").
TEST_EVENT = "test"


async def replay(session: AsyncSession, ids: Sequence[int]) -> int:
    """Send dead letters again: they become pending with fresh tries (audited); returns how many."""
    if not ids:
        return 0
    done = list((await session.execute(
        update(OutboxItem).where(OutboxItem.id.in_(list(ids)), OutboxItem.status == "dead")
        .values(status="pending", tries=0, next_at=func.now(), lease_until=None)
        .returning(OutboxItem.id))).scalars())
    for item_id in done:
        await log(session, AuditAction.custom, "integration_outbox", item_id, changes={"status": ["dead", "pending"]},
                  event_label="replayed")
    return len(done)


async def backlog(session: AsyncSession) -> dict[str, Any]:
    """Items waiting and dead, per target, and the age of the oldest one waiting."""
    rows = (await session.execute(text(
        "SELECT o.connector_id, o.subscription_id, coalesce(c.name, s.name) AS name, o.status, count(*) AS n,"
        " min(o.created_at) AS oldest FROM integration_outbox o"
        " LEFT JOIN crm_connectors c ON c.id = o.connector_id"
        " LEFT JOIN webhook_subscriptions s ON s.id = o.subscription_id"
        " WHERE o.status <> 'delivered' GROUP BY 1, 2, 3, 4 ORDER BY 3, 4"))).mappings().all()
    now = datetime.now(UTC)
    targets: dict[tuple[Any, Any], dict[str, Any]] = {}
    for r in rows:
        t = targets.setdefault((r["connector_id"], r["subscription_id"]), {
            "connector_id": r["connector_id"], "subscription_id": r["subscription_id"], "name": r["name"],
            "pending": 0, "dead": 0, "oldest_pending_s": None})
        t[r["status"]] = int(r["n"])
        if r["status"] == "pending":
            t["oldest_pending_s"] = round((now - r["oldest"]).total_seconds(), 1)
    return {"pending": sum(t["pending"] for t in targets.values()),
            "dead": sum(t["dead"] for t in targets.values()), "targets": list(targets.values())}


async def recent_requests(session: AsyncSession, *, limit: int = 100, target: str | None = None) -> list[Any]:
    stmt = select(IntegrationRequest).order_by(IntegrationRequest.id.desc()).limit(limit)
    if target:
        stmt = stmt.where(IntegrationRequest.target == target)
    return list((await session.scalars(stmt)).all())


async def queue_test_event(session: AsyncSession, subscription_id: int, *, by: str) -> int:
    """A ``test`` event for one subscription, delivered like any other (signed, retried); returns its item id."""
    sub = await session.get(WebhookSubscription, subscription_id)
    if sub is None:
        raise NotFound(f"webhook subscription {subscription_id} does not exist")
    item = OutboxItem(subscription_id=sub.id, record_key=f"test:{sub.id}", event=TEST_EVENT,
                      payload={"message": "Проверка связи", "by": by, "at": datetime.now(UTC).isoformat()},
                      status="pending", tries=0, last_error="")
    session.add(item)
    await session.flush()
    return item.id


async def regenerate_key(session: AsyncSession, subscription_id: int) -> str:
    """A new signing key for a subscription (the audit log records that it changed, not the key)."""
    sub = await session.get(WebhookSubscription, subscription_id)
    if sub is None:
        raise NotFound(f"webhook subscription {subscription_id} does not exist")
    sub.secret = new_key()
    await session.flush()
    return sub.secret


async def address_allowed(session: AsyncSession, address: str) -> bool:
    """The integration API's IP allow-list (003 §10.6): empty allows everyone."""
    ranges = list((await session.scalars(select(IntegrationAllow.cidr))).all())
    if not ranges:
        return True
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(r, strict=False) for r in ranges)
