"""What the application does for the contact domain when it starts and stops.

``create_app``'s lifespan is meant to call :func:`on_startup` after the engine exists and
:func:`on_shutdown` before disposing of it.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from dialer.contact.importer import fail_interrupted_imports
from dialer.contact.indexes import reconcile_field_indexes
from dialer.core.tasks import background as tasks


async def on_startup(engine: AsyncEngine, maker: async_sessionmaker[AsyncSession]) -> None:
    """Close the import jobs a stop cut off, and reconcile the field indexes in the background
    (building a missing index on a large table takes a while; the server need not wait)."""
    await fail_interrupted_imports(maker)
    tasks.spawn(reconcile_field_indexes(engine), name="reconcile field indexes")


async def on_shutdown(grace_s: float = 5.0) -> None:
    """Give running imports and index builds ``grace_s`` to finish, then cancel them (an import
    keeps what it committed and its job says why it stopped)."""
    await tasks.shutdown(grace_s)
