"""CRM test support: connectors, subscriptions and outbox items in the test's database."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dialer.core.clock import VirtualClock
from dialer.models import CrmConnector, OutboxItem, WebhookSubscription

Maker = async_sessionmaker[AsyncSession]


def clock() -> VirtualClock:
    return VirtualClock(epoch=datetime.now(UTC))


async def connector(maker: Maker, *, kind: str = "leadvertex", name: str = "CRM", settings: dict[str, Any],
                    token: str = "", **values: Any) -> int:
    async with maker() as session, session.begin():
        row = CrmConnector(name=name, kind=kind, settings=settings, token=token,
                           status_map=values.pop("status_map", {}), result_map=values.pop("result_map", {}),
                           cursor={}, last_error="", read_enabled=False,
                           write_enabled=True, poll_interval_s=60, max_tries=values.pop("max_tries", 12),
                           is_active=True, **values)
        session.add(row)
        await session.flush()
        return row.id


async def subscription(maker: Maker, *, url: str, client_id: str, secret: str, events: list[str],
                       max_tries: int = 12, name: str = "hook") -> int:
    async with maker() as session, session.begin():
        row = WebhookSubscription(name=name, url=url, client_id=client_id, secret=secret, events=events,
                                  max_tries=max_tries, is_active=True)
        session.add(row)
        await session.flush()
        return row.id


async def results(maker: Maker, connector_id: int, items: list[tuple[str, dict[str, Any]]]) -> None:
    """Outbox items as :mod:`dialer.crm.outbox` writes them: (external id, result payload)."""
    async with maker() as session, session.begin():
        await session.execute(text(
            "INSERT INTO integration_outbox (connector_id, record_key, event, payload, status, tries, next_at,"
            " last_error, created_at) SELECT :c, 'record:' || e.ext, 'result', CAST(e.body AS jsonb), 'pending', 0,"
            " now(), '', now() FROM unnest(CAST(:ext AS text[]), CAST(:body AS text[])) WITH ORDINALITY"
            " AS e(ext, body, n) ORDER BY e.n"),
            {"c": connector_id, "ext": [e for e, _ in items],
             "body": [json.dumps({**p, "external_id": e}) for e, p in items]})


async def statuses(maker: Maker) -> dict[str, int]:
    async with maker() as session:
        rows = (await session.execute(select(OutboxItem.status, func.count()).group_by(OutboxItem.status))).all()
    return {str(s): int(n) for s, n in rows}


async def items(maker: Maker) -> list[OutboxItem]:
    async with maker() as session:
        return list((await session.scalars(select(OutboxItem).order_by(OutboxItem.id))).all())
