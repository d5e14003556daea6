"""Keeps the permission table in step with the code's catalogue at every start."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from dialer.auth.permissions import DESCRIPTIONS


async def sync_permissions(conn: AsyncConnection) -> None:
    """Insert permissions added to the code since the last start; descriptions follow the code."""
    await conn.execute(
        text(
            "INSERT INTO permissions (code, description) VALUES (:code, :description) "
            "ON CONFLICT (code) DO UPDATE SET description = EXCLUDED.description"
        ),
        [{"code": p.value, "description": d} for p, d in DESCRIPTIONS.items()],
    )
