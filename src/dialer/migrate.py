"""Running the Alembic migrations from the product (``dialer migrate``, start-up, tests), and the start-up
maintenance every process runs before it uses the database (:func:`prepare_database`)."""

from __future__ import annotations

import asyncio
from importlib.resources import files

from alembic import command
from alembic.config import Config
from sqlalchemy import text

from dialer.config import Settings
from dialer.db import make_engine


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(files("dialer") / "migrations"))
    cfg.attributes["url"] = url
    return cfg


def upgrade(url: str, revision: str = "heads") -> None:
    """Bring the database at ``url`` to ``revision`` (blocking: call it in a thread from async code).

    ``heads`` rather than ``head``: independent features may each add a migration on the same parent (the history
    then has several heads until a merge revision joins them), and every one of them must be applied.
    """
    command.upgrade(alembic_config(url), revision)


def check(url: str) -> None:
    """Fail if the models and the migrations disagree (``alembic check``)."""
    command.check(alembic_config(url))


async def prepare_database(url: str, settings: Settings) -> None:
    """Create the database if needed, migrate it, and run the start-up maintenance."""
    from dialer.auth.catalogue import sync_permissions
    from dialer.db import ensure_database

    await ensure_database(url)
    await asyncio.to_thread(upgrade, url)
    engine = make_engine(url, pool_size=1)
    try:
        async with engine.begin() as conn:
            # tables made by the migrations just applied go to the application's role (migration 0012_roles)
            if await conn.scalar(text("SELECT to_regprocedure('dialer_hand_over()') IS NOT NULL")):
                await conn.execute(text("SELECT dialer_hand_over()"))
            await conn.execute(text("SELECT audit_ensure_partitions(:n)"), {"n": settings.audit_months_ahead})
            await sync_permissions(conn)
    finally:
        await engine.dispose()
