"""Migration 0012_crm creates exactly the tables of :mod:`dialer.models.crm` (the whole schema is compared by
tests/test_migrations.py; this one names the CRM tables when they drift)."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection

from dialer.db import make_engine
from dialer.models import Base

CRM_TABLES = ("crm_connectors", "crm_records", "webhook_subscriptions", "integration_outbox",
              "integration_requests", "integration_allow")


def _compare(conn: Connection) -> list[Any]:
    return [d for d in compare_metadata(MigrationContext.configure(conn), Base.metadata)
            if any(name in repr(d) for name in CRM_TABLES)]


async def test_crm_tables_match_their_models(db_url: str) -> None:
    engine = make_engine(db_url, pool_size=1)
    try:
        async with engine.connect() as conn:
            tables = set((await conn.exec_driver_sql(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")).scalars())
            diffs = await conn.run_sync(_compare)
    finally:
        await engine.dispose()
    assert set(CRM_TABLES) <= tables
    assert diffs == []
