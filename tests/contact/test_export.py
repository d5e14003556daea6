from __future__ import annotations

import csv
import io
from typing import Any

import httpx
import openpyxl
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update

from dialer.models import AuditEntry, Contact
from dialer.models.enums import ContactStatus, OutcomeCategory
from tests.contact.conftest import standard_list, wait_import
from tests.contact.test_import import contacts_of, upload

ROWS = [
    {"ФИО": "Иванов Иван", "Телефон": "+79123456789", "Рабочий телефон": "+74951234567", "Сумма": "1234.56",
     "Дата": "2024-03-01"},
    {"ФИО": "Петрова; Анна \"Аня\"", "Телефон": "+79123456790", "Сумма": "100"},
    {"ФИО": "Сидоров", "Телефон": "+79123456791", "Сумма": "0.5", "Дата": "2023-12-31"},
]


async def _source(app: FastAPI, admin: httpx.AsyncClient) -> tuple[dict[str, Any], list[int]]:
    lst, _ = await standard_list(admin)
    ids = []
    for values in ROWS:
        r = await admin.post(f"/api/lists/{lst['id']}/contacts", json={"values": values, "tags": ["t"]})
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    async with app.state.sessionmaker() as session, session.begin():
        await session.execute(update(Contact).where(Contact.id == ids[0]).values(
            status=ContactStatus.in_progress, last_outcome=OutcomeCategory.no_answer, attempts_total=1))
        await session.execute(update(Contact).where(Contact.id == ids[1]).values(
            status=ContactStatus.done, last_outcome=OutcomeCategory.answered, attempts_total=2))
    return lst, ids


async def _round_trip(admin: httpx.AsyncClient, source: dict[str, Any], name: str, content: bytes) -> None:
    target = (await admin.post("/api/lists", json={"name": f"Копия {name}"})).json()
    r = await admin.post(f"/api/lists/{target['id']}/copy-fields", json={"from_list_id": source["id"]})
    assert r.status_code == 200
    job = await wait_import(admin, (await upload(admin, target["id"], name, content)).json()["id"])
    assert job["imported"] == 3 and job["rejected"] == 0, job
    before = [c["values"] for c in await contacts_of(admin, source["id"])]
    after = [c["values"] for c in await contacts_of(admin, target["id"])]
    assert after == before


async def test_csv_export_round_trip_and_filters(app: FastAPI, admin: httpx.AsyncClient) -> None:
    lst, _ = await _source(app, admin)
    url = f"/api/lists/{lst['id']}/contacts/export"
    r = await admin.get(url)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.headers["x-total-count"] == "3" and "attachment" in r.headers["content-disposition"]
    assert r.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig")), delimiter=";"))
    header = rows[0]
    assert header[:5] == ["ФИО", "Телефон", "Рабочий телефон", "Сумма", "Дата"] and "region" in header
    first = dict(zip(header, rows[1], strict=True))
    assert first["Сумма"] == "1234,56" and first["Дата"] == "01.03.2024" and first["status"] == "in_progress"
    assert first["last_outcome"] == "no_answer" and first["tags"] == "t"
    await _round_trip(admin, lst, "export.csv", r.content)

    not_called = await admin.get(url, params={"not_called": "true"})
    assert [row[0] for row in csv.reader(io.StringIO(not_called.content.decode("utf-8-sig")), delimiter=";")][1:] == [
        "Сидоров"]
    no_answer = await admin.get(url, params={"outcome": "no_answer,busy", "format": "csv"})
    assert no_answer.headers["x-total-count"] == "1"
    r = await admin.get(url, params={"f.Сумма": "100"})
    assert r.headers["x-total-count"] == "1"
    async with app.state.sessionmaker() as session:
        entries = (await session.scalars(select(AuditEntry).where(AuditEntry.event == "contacts exported")
                                         .order_by(AuditEntry.id))).all()
    assert [e.changes["contacts"]["new"] for e in entries] == [3, 1, 1, 1]
    assert entries[1].changes["filter"]["new"] == {"not_called": True}


async def test_xlsx_export_round_trip(app: FastAPI, admin: httpx.AsyncClient) -> None:
    lst, _ = await _source(app, admin)
    r = await admin.get(f"/api/lists/{lst['id']}/contacts/export", params={"format": "xlsx"})
    assert r.status_code == 200 and "spreadsheetml" in r.headers["content-type"]
    wb = openpyxl.load_workbook(io.BytesIO(r.content), read_only=True)
    ws = wb.worksheets[0]
    rows = [list(row) for row in ws.iter_rows(values_only=True)]
    wb.close()
    assert rows[0][:5] == ["ФИО", "Телефон", "Рабочий телефон", "Сумма", "Дата"]
    assert rows[1][1] == "+79123456789" and rows[1][3] == pytest.approx(1234.56)
    await _round_trip(admin, lst, "export.xlsx", r.content)


async def test_export_needs_the_permission(app: FastAPI, admin: httpx.AsyncClient) -> None:
    from tests.conftest import client_for

    lst, _ = await standard_list(admin)
    async with await client_for(app, "viewer", roles=("system_tester",)) as viewer:
        assert (await viewer.get(f"/api/lists/{lst['id']}/contacts")).status_code == 200
        assert (await viewer.get(f"/api/lists/{lst['id']}/contacts/export")).status_code == 403
        assert (await viewer.post(f"/api/lists/{lst['id']}/contacts/bulk-delete", json={"ids": [1]})).status_code == 403


async def test_contacts_in_the_blacklist_are_found_exported_and_removed(app: FastAPI,
                                                                        admin: httpx.AsyncClient) -> None:
    lst, ids = await _source(app, admin)
    url = f"/api/lists/{lst['id']}/contacts"
    blacklist = next(x for x in (await admin.get("/api/dnc-lists")).json()["items"] if x["is_global"])
    own = (await admin.post("/api/dnc-lists", json={"name": "Жалобы"})).json()
    # Иванов by his work phone (a prefix of the blacklist), Сидоров by number in another DNC list.
    await admin.post(f"/api/dnc-lists/{blacklist['id']}/entries", json={"number": "+7495123", "is_prefix": True})
    await admin.post(f"/api/dnc-lists/{own['id']}/entries", json={"number": "+79123456791"})

    found = (await admin.get(url, params={"in_dnc": "true"})).json()
    assert [c["id"] for c in found["items"]] == [ids[0]]
    found = (await admin.get(url, params={"in_dnc": "true", "dnc_list_id": own["id"]})).json()
    assert sorted(c["id"] for c in found["items"]) == [ids[0], ids[2]]
    r = await admin.get(f"{url}/export", params={"in_dnc": "true"})
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig")), delimiter=";"))
    assert len(rows) == 2 and rows[1][0] == "Иванов Иван"
    r = await admin.get(url, params={"dnc_list_id": "x"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "dnc_list_id"

    # 002 §5.5 "убрать номера из базы, отфильтровав их по черному списку"
    r = await admin.post(f"{url}/bulk-delete", json={"filter": {"in_dnc": True}})
    assert r.status_code == 200 and r.json()["deleted"] == 1
    assert sorted(c["id"] for c in (await admin.get(url)).json()["items"]) == [ids[1], ids[2]]
    async with app.state.sessionmaker() as session:
        entry = (await session.scalars(select(AuditEntry).where(
            AuditEntry.object_type == "contact_lists", AuditEntry.object_id == str(lst["id"]))
            .order_by(AuditEntry.id.desc()))).first()
    assert entry is not None and "in_dnc" in str(entry.changes)
