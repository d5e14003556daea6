"""The migrations and the models agree, and the schema can go down and up again."""

from __future__ import annotations

import asyncio

from dialer.migrate import check, upgrade


async def test_models_match_migrations(db_url: str) -> None:
    await asyncio.to_thread(check, db_url)  # `alembic check`: raises when autogenerate finds a difference


async def test_downgrade_and_upgrade_again(db_url: str) -> None:
    from alembic import command

    from dialer.migrate import alembic_config

    await asyncio.to_thread(command.downgrade, alembic_config(db_url), "base")
    await asyncio.to_thread(upgrade, db_url)
    await asyncio.to_thread(check, db_url)
