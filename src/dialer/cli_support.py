"""What command-line commands share: opening the product database outside the web app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from dialer.config import Settings, get_settings
from dialer.db import make_engine, make_sessionmaker, resolve_url


@asynccontextmanager
async def open_database(
    settings: Settings | None = None, *, database_url: str | None = None, prepare: bool = True
) -> AsyncIterator[tuple[AsyncEngine, async_sessionmaker[AsyncSession], Settings]]:
    """Resolve the database (embedded when unconfigured), migrate it, and yield engine and sessions."""
    from dialer.migrate import prepare_database

    settings = settings or get_settings()
    url = database_url or resolve_url(settings)
    if prepare:
        await prepare_database(url, settings)
    engine = make_engine(url)
    try:
        yield engine, make_sessionmaker(engine), settings
    finally:
        await engine.dispose()
