from __future__ import annotations

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from dialer.contact import phonelookup
from dialer.models import AuditEntry, PhoneCode
from dialer.timezone.codes import prefix_range
from tests.contact.conftest import make_field, make_list, standard_list


async def test_create_validates_and_names_fields(admin: httpx.AsyncClient) -> None:
    lst, _ = await standard_list(admin)
    url = f"/api/lists/{lst['id']}/contacts"
    r = await admin.post(url, json={"values": {"Сумма": "много", "Дата": "31.02.2024", "Телефон": "12345",
                                               "Нет такого": "x"}})
    assert r.status_code == 422
    errors = {e["field"]: e["reason"] for e in r.json()["errors"]}
    assert set(errors) == {"values.Сумма", "values.Дата", "values.Телефон", "values.Нет такого"}
    assert "number" in errors["values.Сумма"] and "does not exist" in errors["values.Дата"]
    assert "12345" in errors["values.Телефон"]
    r = await admin.post(url, json={"values": {}})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "values"

    required = await make_list(admin, "Обязательные", [await make_field(admin, "Имя"),
                                                        await make_field(admin, "Моб", "phone")], required=("Имя",))
    r = await admin.post(f"/api/lists/{required['id']}/contacts", json={"values": {"Моб": "+79123456789"}})
    assert r.status_code == 422 and [(e["field"], e["label"], e["reason"]) for e in r.json()["errors"]] == [
        ("values.Имя", "Values › Имя", "a value is required")]


async def test_contact_crud_with_phones(app: FastAPI, admin: httpx.AsyncClient) -> None:
    lst, f = await standard_list(admin)
    url = f"/api/lists/{lst['id']}/contacts"
    r = await admin.post(url, json={
        "values": {"ФИО": " Петров Пётр ", str(f["phone"]["id"]): "8 (912) 345-67-89",
                   "Рабочий телефон": "8 495 123-45-67", "Сумма": "1 234,56", "Дата": "01.03.2024"},
        "phones": [{"number": "+7 (343) 210-00-00", "type": "home"}], "tags": ["весна", "весна", "vip"]})
    assert r.status_code == 201, r.text
    c = r.json()
    assert c["values"] == {"ФИО": "Петров Пётр", "Телефон": "+79123456789", "Рабочий телефон": "+74951234567",
                           "Сумма": 1234.56, "Дата": "2024-03-01"}
    assert c["data"][str(f["amount"]["id"])] == 1234.56
    assert c["tags"] == ["весна", "vip"] and c["status"] == "new" and c["attempts_total"] == 0
    phones = c["phones"]
    assert [(p["number"], p["type"], p["field_id"]) for p in phones] == [
        ("+79123456789", "mobile", f["phone"]["id"]), ("+74951234567", "work", f["work"]["id"]),
        ("+73432100000", "home", None)]
    assert phones[0]["raw"] == "8 (912) 345-67-89"
    mobile, work, home = phones
    assert mobile["tz_uncertain"] is True and len(mobile["timezones"]) > 1  # a mobile number: the whole country
    assert "Моск" in work["region"] and work["timezones"] == ["Europe/Moscow"] and not work["tz_uncertain"]
    assert home["timezones"] == ["Asia/Yekaterinburg"]

    # The user's phone codes win over phonenumbers.
    lo, hi = prefix_range("+7903")
    async with app.state.sessionmaker() as session, session.begin():
        session.add(PhoneCode(prefix="+7903", range_from=lo, range_to=hi, tz="Asia/Yekaterinburg",
                              region="Свердловская обл.", source="manual"))
    phonelookup.invalidate()  # what a change of phone codes calls; other processes see it within MAX_AGE_S
    r = await admin.patch(f"{url}/{c['id']}", json={"values": {"Телефон": "+7 903 000-00-01", "Дата": None}})
    assert r.status_code == 200, r.text
    c = r.json()
    assert "Дата" not in c["values"]
    mobile = c["phones"][0]
    assert (mobile["number"], mobile["region"], mobile["timezones"], mobile["tz_uncertain"]) == (
        "+79030000001", "Свердловская обл.", ["Asia/Yekaterinburg"], False)
    assert mobile["carrier"] == "Билайн"  # the code says nothing about the carrier: phonenumbers does
    assert [p["number"] for p in c["phones"]][1:] == ["+74951234567", "+73432100000"]

    r = await admin.patch(f"{url}/{c['id']}", json={"values": {"Сумма": "x"}, "phones": [{"number": "1"}]})
    assert r.status_code == 422
    assert {e["field"] for e in r.json()["errors"]} == {"values.Сумма", "phones.0.number"}
    r = await admin.patch(f"{url}/{c['id']}", json={"phones": [], "status": "done"})
    assert r.status_code == 200 and len(r.json()["phones"]) == 2 and r.json()["status"] == "done"

    r = await admin.get(f"/api/lists/{lst['id'] + 1000}/contacts/{c['id']}")
    assert r.status_code == 404
    r = await admin.delete(f"{url}/{c['id']}")
    assert r.status_code == 204
    assert (await admin.get(f"{url}/{c['id']}")).status_code == 404
    async with app.state.sessionmaker() as session:
        actions = (await session.scalars(select(AuditEntry.action).where(AuditEntry.object_type == "contacts"))).all()
    assert {"created", "updated", "deleted"} <= set(actions)


async def _fill(admin: httpx.AsyncClient, lst: dict, rows: list[tuple[str, str, str]]) -> list[int]:
    ids = []
    for name, phone, amount in rows:
        r = await admin.post(f"/api/lists/{lst['id']}/contacts",
                             json={"values": {"ФИО": name, "Телефон": phone, "Сумма": amount}, "tags": [name[:1]]})
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    return ids


async def test_sort_filter_and_search(admin: httpx.AsyncClient) -> None:
    lst, f = await standard_list(admin)
    await _fill(admin, lst, [("Анна", "+79120000001", "9"), ("Борис", "+79120000002", "100"),
                             ("Вера", "+79120000003", "20.5"), ("Глеб", "+79120000004", "")])
    url = f"/api/lists/{lst['id']}/contacts"

    def names(r: httpx.Response) -> list[str]:
        assert r.status_code == 200, r.text
        return [c["values"]["ФИО"] for c in r.json()["items"]]

    # Numerically, not as text ("100" < "20.5" < "9"); empty values last both ways.
    assert names(await admin.get(url, params={"sort": "Сумма"})) == ["Анна", "Вера", "Борис", "Глеб"]
    assert names(await admin.get(url, params={"sort": f"-{f['amount']['id']}"})) == ["Борис", "Вера", "Анна", "Глеб"]
    assert names(await admin.get(url, params={"sort": "-ФИО", "per_page": 2})) == ["Глеб", "Вера"]
    assert names(await admin.get(url, params={"f.Сумма": "20,50"})) == ["Вера"]
    assert names(await admin.get(url, params={"f.ФИО": "Анна"})) == ["Анна"]
    assert names(await admin.get(url, params={"phone": "8 912 000-00-02"})) == ["Борис"]
    assert names(await admin.get(url, params={"q": "ер"})) == ["Вера"]
    assert names(await admin.get(url, params={"q": "0000004"})) == ["Глеб"]
    assert names(await admin.get(url, params={"tag": "А"})) == ["Анна"]
    assert names(await admin.get(url, params={"status": "new", "sort": "id"})) == ["Анна", "Борис", "Вера", "Глеб"]
    assert names(await admin.get(url, params={"status": "done"})) == []
    r = await admin.get(url, params={"sort": "пароль"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "sort"
    r = await admin.get(url, params={"f.Сумма": "abc"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "f.Сумма"
    r = await admin.get(url, params={"status": "maybe"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "status"


async def test_bulk_delete_and_delete_all(app: FastAPI, admin: httpx.AsyncClient) -> None:
    lst, _ = await standard_list(admin)
    ids = await _fill(admin, lst, [(f"Клиент {i}", f"+7912000000{i}", str(i)) for i in range(6)])
    url = f"/api/lists/{lst['id']}/contacts"
    r = await admin.post(f"{url}/bulk-delete", json={"ids": ids[:2]})
    assert r.status_code == 200 and r.json() == {"deleted": 2}
    r = await admin.post(f"{url}/bulk-delete", json={"filter": {"fields": {"Сумма": "5"}}})
    assert r.json() == {"deleted": 1}
    r = await admin.post(f"{url}/bulk-delete", json={"filter": {}})
    assert r.status_code == 422
    r = await admin.delete(url)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "confirm"
    assert (await admin.get(url)).json()["total"] == 3
    r = await admin.delete(url, params={"confirm": "true"})
    assert r.json() == {"deleted": 3}
    assert (await admin.get(url)).json()["total"] == 0
    assert (await admin.get(f"/api/lists/{lst['id']}")).json()["contact_count"] == 0
    async with app.state.sessionmaker() as session:
        entries = (await session.scalars(select(AuditEntry).where(AuditEntry.event == "contacts deleted")
                                         .order_by(AuditEntry.id))).all()
    assert [e.changes["contacts_deleted"]["new"] for e in entries] == [2, 1, 3]
    assert entries[0].changes["ids"]["old"] == sorted(ids[:2])
    assert entries[0].user_login == "admin"


async def test_all_field_types_round_trip(admin: httpx.AsyncClient) -> None:
    fields = [await make_field(admin, "Телефон", "phone"),
              await make_field(admin, "Сегмент", "enum", options=["VIP", "Обычный"]),
              await make_field(admin, "Договор", "string", mask=r"Д-\d{4}"),
              await make_field(admin, "Визиты", "integer"),
              await make_field(admin, "Согласие", "boolean"),
              await make_field(admin, "Звонить после", "datetime")]
    lst = await make_list(admin, "Типы", fields)
    url = f"/api/lists/{lst['id']}/contacts"
    r = await admin.post(url, json={"values": {"Телефон": 79123456789, "Сегмент": "vip", "Договор": "Д-1234",
                                               "Визиты": "1 000", "Согласие": "да",
                                               "Звонить после": "01.03.2024 10:30"}})
    assert r.status_code == 201, r.text
    assert r.json()["values"] == {"Телефон": "+79123456789", "Сегмент": "VIP", "Договор": "Д-1234", "Визиты": 1000,
                                  "Согласие": True, "Звонить после": "2024-03-01T10:30:00"}
    r = await admin.post(url, json={"values": {"Телефон": "+79123456780", "Сегмент": "Gold", "Договор": "123",
                                               "Визиты": "1.5", "Согласие": "может быть"}})
    assert r.status_code == 422
    assert {e["field"] for e in r.json()["errors"]} == {"values.Сегмент", "values.Договор", "values.Визиты",
                                                         "values.Согласие"}
    for params, expected in [({"f.Согласие": "true"}, 1), ({"f.Сегмент": "VIP"}, 1), ({"f.Визиты": "1000"}, 1),
                             ({"f.Телефон": "8 912 345 67 89"}, 1), ({"f.Визиты": "999"}, 0)]:
        r = await admin.get(url, params=params)
        assert r.status_code == 200 and r.json()["total"] == expected, (params, r.text)
