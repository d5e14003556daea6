"""Edge cases an administrator meets through the API: changing fields that hold data, editing the
phones of a contact the engine may be working on, searching, unknown countries, exporting odd text."""

from __future__ import annotations

import io
from datetime import datetime
from typing import Any

import httpx
import openpyxl
from fastapi import FastAPI
from sqlalchemy import select, update

from dialer.models import Campaign, Contact, ContactPhone, Selection
from tests.contact.conftest import make_field, make_list, standard_list


async def _selection_on(app: FastAPI, admin: httpx.AsyncClient, lst: dict[str, Any],
                        conditions: list[dict[str, Any]]) -> None:
    """A campaign over the list with one selection (inserted directly: only the stored JSON matters here)."""
    code = (await admin.post("/api/completion-codes", json={"name": "Итог", "category": "answered"})).json()
    group = (await admin.post("/api/completion-code-groups", json={"name": "Группа", "code_ids": [code["id"]]})).json()
    strategy = (await admin.post("/api/strategies", json={"name": "Стратегия"})).json()
    async with app.state.sessionmaker() as session, session.begin():
        campaign = Campaign(name="Весна", strategy_id=strategy["id"], completion_code_group_id=group["id"])
        session.add(campaign)
        await session.flush()
        session.add(Selection(campaign_id=campaign.id, name="Выборка", conditions=conditions, sort=[]))


async def test_field_changes_that_would_strand_data_are_refused(app: FastAPI, admin: httpx.AsyncClient) -> None:
    kind = await make_field(admin, "Вид", "enum", options=["Новый", "Старый"])
    score = await make_field(admin, "Балл", "integer")
    lst = await make_list(admin, "Клиенты", [kind, score])
    url = f"/api/lists/{lst['id']}/contacts"
    for value in ("новый", "Новый", "Старый"):
        assert (await admin.post(url, json={"values": {"Вид": value}})).status_code == 201

    # Dropping an option that contacts hold would leave their values outside the options.
    r = await admin.patch(f"/api/fields/{kind['id']}", json={"options": ["Старый", "VIP"]})
    assert r.status_code == 409, r.text
    [error] = r.json()["errors"]
    assert error["field"] == "options" and "'Новый' (2 contacts)" in error["reason"]
    assert (await admin.get(f"/api/fields/{kind['id']}")).json()["options"] == ["Новый", "Старый"]
    # Adding options and dropping unused ones is fine.
    r = await admin.patch(f"/api/fields/{kind['id']}", json={"options": ["Новый", "Старый", "VIP"]})
    assert r.status_code == 200 and r.json()["options"] == ["Новый", "Старый", "VIP"]
    r = await admin.patch(f"/api/fields/{kind['id']}", json={"options": ["Старый", "Новый"]})
    assert r.status_code == 200, r.text

    # A selection's condition must survive a change of the field it names, even without values.
    await _selection_on(app, admin, lst, [{"field": score["id"], "op": "gt", "value": 3},
                                          {"field": kind["id"], "op": "in", "value": ["Старый"]}])
    r = await admin.patch(f"/api/fields/{score['id']}", json={"type": "boolean"})
    assert r.status_code == 409, r.text
    [error] = r.json()["errors"]
    assert error["field"] == "type" and "'Весна / Выборка'" in error["reason"] and "'gt'" in error["reason"]
    r = await admin.patch(f"/api/fields/{score['id']}", json={"type": "decimal"})  # 'gt' still applies
    assert r.status_code == 200 and r.json()["type"] == "decimal"
    async with app.state.sessionmaker() as session, session.begin():
        await session.execute(update(Contact).values(data={}))  # no contact holds 'Старый' any more
    r = await admin.patch(f"/api/fields/{kind['id']}", json={"options": ["Новый"]})
    assert r.status_code == 409 and "'Старый' is not an option" in r.json()["errors"][0]["reason"]


async def test_field_names_differ_in_more_than_case(admin: httpx.AsyncClient) -> None:
    fio = await make_field(admin, "ФИО")
    await make_field(admin, "Сумма", "decimal")
    r = await admin.post("/api/fields", json={"name": "фио", "type": "string"})
    assert r.status_code == 409 and r.json()["errors"][0]["field"] == "name", r.text
    r = await admin.patch(f"/api/fields/{fio['id']}", json={"name": "СУММА"})
    assert r.status_code == 409 and "'Сумма'" in r.json()["errors"][0]["reason"]
    r = await admin.patch(f"/api/fields/{fio['id']}", json={"name": "Фио"})  # its own name in another case
    assert r.status_code == 200 and r.json()["name"] == "Фио"


async def test_phone_type_of_a_field_reaches_the_contacts_phones(admin: httpx.AsyncClient) -> None:
    lst, f = await standard_list(admin)
    url = f"/api/lists/{lst['id']}/contacts"
    c = (await admin.post(url, json={"values": {"Телефон": "+79123456789"}})).json()
    assert c["phones"][0]["type"] == "mobile"
    r = await admin.patch(f"/api/fields/{f['phone']['id']}", json={"phone_type": "home"})
    assert r.status_code == 200, r.text
    assert [p["type"] for p in (await admin.get(f"{url}/{c['id']}")).json()["phones"]] == ["home"]


async def test_editing_a_contact_keeps_the_rows_of_unchanged_phones(app: FastAPI, admin: httpx.AsyncClient) -> None:
    lst, _ = await standard_list(admin)
    url = f"/api/lists/{lst['id']}/contacts"
    c = (await admin.post(url, json={"values": {"ФИО": "Иванов", "Телефон": "+79123456789",
                                                "Рабочий телефон": "+74951234567"},
                                     "phones": [{"number": "+73432100000", "type": "home"}]})).json()
    mobile, work, home = (p["id"] for p in c["phones"])
    # A strategy rule switched the contact to the work phone (what the engine remembers).
    async with app.state.sessionmaker() as session, session.begin():
        await session.execute(update(Contact).where(Contact.id == c["id"]).values(next_phone_id=work))

    async def phones() -> list[tuple[int, str, str, str]]:
        got = (await admin.get(f"{url}/{c['id']}")).json()["phones"]
        return [(p["id"], p["number"], p["raw"], p["type"]) for p in got]

    r = await admin.patch(f"{url}/{c['id']}", json={"values": {"ФИО": "Иванов Иван", "Телефон": "8 912 345-67-89"}})
    assert r.status_code == 200, r.text
    assert await phones() == [(mobile, "+79123456789", "8 912 345-67-89", "mobile"),
                              (work, "+74951234567", "+74951234567", "work"),
                              (home, "+73432100000", "+73432100000", "home")]
    r = await admin.patch(f"{url}/{c['id']}", json={"values": {"Телефон": "+79123450000"},
                                                    "phones": [{"number": "+73432100000", "type": "home"},
                                                               {"number": "+79990000000", "type": "other"}]})
    assert r.status_code == 200, r.text
    after = await phones()
    assert [p[1] for p in after] == ["+79123450000", "+74951234567", "+73432100000", "+79990000000"]
    assert after[0][0] not in (mobile, work, home) and after[1][0] == work and after[2][0] == home
    async with app.state.sessionmaker() as session:
        assert await session.scalar(select(Contact.next_phone_id).where(Contact.id == c["id"])) == work
        assert mobile not in (await session.scalars(select(ContactPhone.id))).all()


async def test_search_looks_at_values_ignoring_case_and_yo(admin: httpx.AsyncClient) -> None:
    lst, _ = await standard_list(admin)
    url = f"/api/lists/{lst['id']}/contacts"
    for name, amount in [("Ёлкин Пётр", "5"), ("ИВАНОВ", "77"), ("Сидоров", "")]:
        values = {"ФИО": name} | ({"Сумма": amount} if amount else {})
        assert (await admin.post(url, json={"values": values})).status_code == 201

    async def found(q: str) -> list[str]:
        r = await admin.get(url, params={"q": q, "sort": "id"})
        assert r.status_code == 200, r.text
        return [c["values"]["ФИО"] for c in r.json()["items"]]

    assert await found("елкин") == ["Ёлкин Пётр"]
    assert await found("ЁЛКИН") == ["Ёлкин Пётр"]
    assert await found("петр") == ["Ёлкин Пётр"]
    assert await found("иванов") == ["ИВАНОВ"]
    # Field ids are the keys of the stored JSON: searching "1" or ":" must not find every contact.
    assert await found("1") == []
    assert await found(":") == []
    assert await found("7") == ["ИВАНОВ"]


async def test_an_unknown_country_is_a_field_error(admin: httpx.AsyncClient) -> None:
    lst, _ = await standard_list(admin)
    url = f"/api/lists/{lst['id']}/contacts"
    r = await admin.post(url, json={"values": {"Телефон": "9123456789"}, "country": "XX"})
    assert r.status_code == 422 and [(e["field"], e["reason"], e["code"]) for e in r.json()["errors"]] == [
        ("country", "'XX' is not a country code such as RU, KZ or BY", "not_country")]
    c = (await admin.post(url, json={"values": {"ФИО": "Без телефона"}})).json()
    r = await admin.patch(f"{url}/{c['id']}", json={"values": {"Телефон": "9123456789"}, "country": "Russia"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "country"
    r = await admin.patch(f"{url}/{c['id']}", json={"values": {"Телефон": "9123456789"}, "country": "ru"})
    assert r.status_code == 200 and r.json()["phones"][0]["number"] == "+79123456789"


async def test_xlsx_keeps_text_as_text_and_local_datetimes_as_dates(admin: httpx.AsyncClient) -> None:
    lst, _ = await standard_list(admin)
    when = await make_field(admin, "Когда", "datetime")
    await admin.patch(f"/api/lists/{lst['id']}", json={"fields": [*lst["fields"], {"field_id": when["id"]}]})
    url = f"/api/lists/{lst['id']}/contacts"
    for values in ({"ФИО": '=HYPERLINK("http://evil.example","x")', "Телефон": "+79123456789",
                    "Когда": "01.03.2024 10:30"},
                   {"ФИО": "Строка\x0bс\x01управляющими", "Когда": "2024-03-01T10:30:00+05:00"}):
        assert (await admin.post(url, json={"values": values})).status_code == 201
    r = await admin.get(f"{url}/export", params={"format": "xlsx"})
    assert r.status_code == 200
    sheet = openpyxl.load_workbook(io.BytesIO(r.content)).active
    rows = list(sheet.iter_rows(min_row=2))
    formula, control = rows[0][0], rows[1][0]
    assert (formula.value, formula.data_type) == ('=HYPERLINK("http://evil.example","x")', "s")
    assert control.value == "Строкасуправляющими"
    assert (rows[0][1].value, rows[0][1].data_type) == ("+79123456789", "s")  # a phone stays text
    assert rows[0][5].value == datetime(2024, 3, 1, 10, 30) and rows[0][5].is_date
    assert rows[1][5].value == "2024-03-01T10:30:00+05:00"  # an offset Excel could not keep: text


async def test_bulk_delete_names_the_wrong_part_of_its_filter(admin: httpx.AsyncClient) -> None:
    lst, _ = await standard_list(admin)
    url = f"/api/lists/{lst['id']}/contacts"
    assert (await admin.post(url, json={"values": {"ФИО": "Остаётся", "Сумма": "5"}})).status_code == 201
    r = await admin.post(f"{url}/bulk-delete", json={"filter": {"fields": {"Сумма": "много"}}})
    assert r.status_code == 422 and [e["field"] for e in r.json()["errors"]] == ["filter.fields.Сумма"]
    r = await admin.post(f"{url}/bulk-delete", json={"filter": {"phone": "12"}})
    assert r.status_code == 422 and [e["field"] for e in r.json()["errors"]] == ["filter.phone"]
    r = await admin.post(f"{url}/bulk-delete", json={"filter": {"q": "нет такого"}})
    assert r.status_code == 200 and r.json() == {"deleted": 0}
    assert (await admin.get(url)).json()["total"] == 1
