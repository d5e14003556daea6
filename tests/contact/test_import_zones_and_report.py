"""Imports say how many numbers stay uncertain and settle them by the contact's city or region; the error report
is in the user's language and lists the duplicates it left out."""

from __future__ import annotations

import csv
import io

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from dialer.models import ContactPhone
from tests.contact.conftest import make_field, make_list, standard_list, wait_import
from tests.contact.test_import import upload


async def test_the_city_field_settles_uncertain_mobile_numbers(app: FastAPI, admin: httpx.AsyncClient) -> None:
    # no phone codes loaded: every Russian mobile number is uncertain until something places it
    fields = [await make_field(admin, "ФИО"), await make_field(admin, "Телефон", "phone"),
              await make_field(admin, "Город")]
    lst = await make_list(admin, "Города", fields)
    content = ("ФИО;Телефон;Город\n"
               "Уральцев;+79120000001;Екатеринбург\n"
               "Волжская;+79270000002;г. Самара\n"
               "Неизвестный;+79160000003;Где-то\n"
               "Без города;+79160000004;\n")
    job = await wait_import(admin, (await upload(admin, lst["id"], "c.csv", content.encode())).json()["id"])
    assert job["status"] == "finished" and job["imported"] == 4, job
    assert (job["uncertain_numbers"], job["settled_by_place"]) == (2, 2), job
    async with app.state.sessionmaker() as session:
        phones = {p.e164: (p.timezones, p.tz_uncertain)
                  for p in (await session.scalars(select(ContactPhone))).all()}
    assert phones["+79120000001"] == (["Asia/Yekaterinburg"], False)
    assert phones["+79270000002"] == (["Europe/Samara"], False)
    assert phones["+79160000003"][1] is True and len(phones["+79160000003"][0]) > 1
    r = await admin.get("/api/audit", params={"object_type": "contact_lists"})
    assert any(e["changes"].get("settled_by_place", {}).get("new") == 2 for e in r.json()["items"]), r.text


async def test_error_report_in_russian_lists_duplicates(admin: httpx.AsyncClient) -> None:
    lst, _ = await standard_list(admin)
    content = ("ФИО;Телефон;Сумма;Дата\n"
               "Первый;89123456789;10;\n"
               "Повтор;+7 912 345-67-89;5;\n"
               "Плохой;12345;5;\n"
               "Сумма;89123456700;много;\n")
    job = await wait_import(admin, (await upload(admin, lst["id"], "f.csv", content.encode())).json()["id"])
    assert (job["imported"], job["rejected"], job["duplicates"]) == (1, 2, 1), job

    def report(r: httpx.Response) -> list[list[str]]:
        assert r.status_code == 200 and r.content.startswith(b"\xef\xbb\xbf"), r.text
        return list(csv.reader(io.StringIO(r.content.decode("utf-8-sig")), delimiter=";"))

    ru = report(await admin.get(job["errors_url"], headers={"Accept-Language": "ru"}))
    assert ru[0] == ["Строка", "Столбец", "Значение", "Причина"]
    reasons = {(int(row), value): reason for row, _column, value, reason in ru[1:]}
    assert reasons[(3, "+7 912 345-67-89")] == "дубль: номер +79123456789 уже есть в листе или выше в файле"
    assert reasons[(4, "12345")].startswith("недопустимый номер телефона: ")
    assert reasons[(5, "много")] == "нужно число, а не 'много'"
    en = report(await admin.get(job["errors_url"]))  # this client asks for English
    assert en[0] == ["row", "column", "value", "reason"]
    assert any(r[3] == "duplicate: +79123456789 is already in the list or earlier in the file" for r in en[1:])
