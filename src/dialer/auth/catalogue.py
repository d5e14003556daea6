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


def describe(code: str, lang: str) -> str:
    """A permission's description in ``lang`` (the catalogues' ``permission.<code>``: "Просмотр кампаний"), for the
    permission matrix; the English description of the code when no catalogue has it."""
    from dialer.web import i18n

    english = next((d for p, d in DESCRIPTIONS.items() if p.value == code), code)
    return i18n.catalogue(lang).get(f"permission.{code}", english)
