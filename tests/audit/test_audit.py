from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI
from openpyxl import load_workbook
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from dialer.db import make_engine


async def test_changes_are_logged_with_old_and_new_values(admin: httpx.AsyncClient) -> None:
    skill = (await admin.post("/api/skills", json={"name": "Английский"})).json()
    await admin.patch(f"/api/skills/{skill['id']}", json={"name": "English", "description": "B2+"})
    await admin.delete(f"/api/skills/{skill['id']}")
    page = (await admin.get("/api/audit", params={"object_type": "skills", "object_id": str(skill["id"])})).json()
    actions = [e["action"] for e in page["items"]]
    assert actions == ["deleted", "updated", "created"]  # newest first
    updated = page["items"][1]
    assert updated["changes"]["name"] == {"old": "Английский", "new": "English"}
    assert updated["user_login"] == "admin" and updated["user_roles"] == "admin"
    assert page["items"][0]["changes"]["name"]["old"] == "English"
    at = datetime.fromisoformat(updated["at"])
    assert at.tzinfo is not None
    assert abs((datetime.now(UTC) - at).total_seconds()) < 60


async def test_secrets_never_reach_the_log(admin: httpx.AsyncClient) -> None:
    await admin.post("/api/users", json={"login": "kate", "password": "very-secret-1"})
    page = (await admin.get("/api/audit", params={"object_type": "users", "action": "created"})).json()
    entry = next(e for e in page["items"] if e["changes"]["login"]["new"] == "kate")
    assert entry["changes"]["password_hash"]["new"] == "***"
    assert "very-secret" not in str(page)


async def test_log_is_append_only_and_partitioned(app: FastAPI, admin: httpx.AsyncClient, db_url: str) -> None:
    """The triggers hold even for the owner of the log (the application's own role may not even try:
    tests/audit/test_app_role.py)."""
    await admin.post("/api/skills", json={"name": "X"})
    owner = make_engine(db_url, pool_size=1)
    async with owner.connect() as conn:
        for statement in ("UPDATE audit_log SET user_login = 'mallory'", "DELETE FROM audit_log",
                          "TRUNCATE audit_log"):
            with pytest.raises(DBAPIError, match="append-only"):
                await conn.execute(text(statement))
            await conn.rollback()
        parts = (await conn.execute(text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'audit_log'::regclass ORDER BY 1"))).scalars().all()
        this_month = "audit_log_p" + datetime.now(UTC).strftime("%Y%m")
        assert this_month in parts and "audit_log_default" in parts
        assert len([p for p in parts if p.startswith("audit_log_p")]) >= 4  # this month and 3 ahead
        where = (await conn.execute(text(
            "SELECT tableoid::regclass::text FROM audit_log ORDER BY at DESC LIMIT 1"))).scalar_one()
        assert where == this_month
        # A month's partition refuses TRUNCATE too, also one created later by audit_ensure_partitions.
        await conn.execute(text("SELECT audit_ensure_partitions(14)"))
        await conn.commit()
        later = "audit_log_p" + (datetime.now(UTC).replace(day=1) + timedelta(days=31 * 13)).strftime("%Y%m")
        for partition in (this_month, "audit_log_default", later):
            with pytest.raises(DBAPIError, match="append-only"):
                await conn.execute(text(f"TRUNCATE {partition}"))
            await conn.rollback()
    await owner.dispose()


async def test_export_csv_and_xlsx_with_filters(admin: httpx.AsyncClient) -> None:
    await admin.post("/api/skills", json={"name": "Экспорт"})
    await admin.post("/api/pools", json={"name": "Пул"})
    r = await admin.get("/api/audit/export", params={"format": "csv", "object_type": "skills"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig")), delimiter=";"))
    assert rows[0][:3] == ["id", "at", "user_login"]
    assert len(rows) == 2 and rows[1][6] == "skills" and "Экспорт" in rows[1][8]
    r = await admin.get("/api/audit/export", params={"format": "xlsx"})
    sheet = load_workbook(io.BytesIO(r.content)).active
    assert sheet is not None
    types = {row[6] for row in sheet.iter_rows(min_row=2, values_only=True)}
    assert {"skills", "operator_pools"} <= types


async def test_no_endpoint_changes_the_log(app: FastAPI) -> None:
    from dialer.api.routes import api_routes

    for path, route in api_routes(app):
        if path.startswith("/api/audit"):
            assert route.methods == {"GET"}, path
