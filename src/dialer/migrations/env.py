"""Alembic environment: runs migrations through the async engine of the product."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from alembic import context
from sqlalchemy.engine import Connection

from dialer.config import get_settings
from dialer.db import make_engine, resolve_url
from dialer.models import Base

config = context.config
target_metadata = Base.metadata

#: Tables the models do not declare: monthly audit partitions; expression indexes (per field, the hopper's,
#: logins regardless of case).
_UNMANAGED_TABLE = re.compile(r"^audit_log_(p\d{6}|default)$")
_UNMANAGED_INDEX = re.compile(r"^(ix_contacts_f\d+(_num)?|ix_contacts_due|uq_users_login_lower)$")


def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    if type_ == "table" and name and _UNMANAGED_TABLE.match(name):
        return False
    return not (type_ == "index" and name and _UNMANAGED_INDEX.match(name))


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        include_object=include_object,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run() -> None:
    url = config.attributes.get("url") or resolve_url(get_settings())
    engine = make_engine(url, pool_size=1)
    async with engine.connect() as connection:
        await connection.run_sync(_configure)
        await connection.commit()
    await engine.dispose()


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
    else:
        asyncio.run(_run())


run()
