"""What the application does for the contact domain when it starts and stops.

``create_app``'s lifespan is meant to call :func:`on_startup` after the engine exists and
:func:`on_shutdown` before disposing of it.
"""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from dialer.config import Settings, get_settings
from dialer.contact.importer import fail_interrupted_imports, remove_stale_uploads
from dialer.contact.indexes import reconcile_field_indexes
from dialer.core.tasks import background as tasks

log = logging.getLogger(__name__)


async def on_startup(engine: AsyncEngine, maker: async_sessionmaker[AsyncSession],
                     settings: Settings | None = None) -> None:
    """Close the import jobs a stop cut off, delete the uploads they (or any killed request) left
    spooled, and reconcile the field indexes in the background (building a missing index on a
    large table takes a while; the server need not wait). ``settings``: the application's
    (default: :func:`get_settings`), for where uploads are spooled."""
    await fail_interrupted_imports(maker)
    try:
        await remove_stale_uploads(maker, settings or get_settings())
    except Exception:  # a clean-up must not keep the server from starting
        log.exception("could not clean up stale uploads")
    tasks.spawn(reconcile_field_indexes(engine), name="reconcile field indexes")


async def on_shutdown(grace_s: float = 5.0) -> None:
    """Give running imports and index builds ``grace_s`` to finish, then cancel them (an import
    keeps what it committed and its job says why it stopped)."""
    await tasks.shutdown(grace_s)
