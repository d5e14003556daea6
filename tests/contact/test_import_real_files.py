"""Imports of files as Russian Excel, 1C and CRMs really write them, through the real import path."""

from __future__ import annotations

import asyncio
import csv
import io
import zipfile
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import openpyxl
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from dialer.config import Settings
from dialer.contact.cli import import_file
from dialer.exceptions import ValidationFailed
from dialer.models import ContactList, ImportJob
from tests.contact.conftest import standard_list, wait_import
from tests.contact.test_import import contacts_of, upload


async def report_of(client: httpx.AsyncClient, job: dict[str, Any]) -> list[list[str]]:
    assert job["errors_url"], job
    r = await client.get(job["errors_url"])
    return list(csv.reader(io.StringIO(r.content.decode("utf-8-sig")), delimiter=";"))[1:]


async def test_a_cell_with_several_numbers_fills_the_free_phone_fields(admin: httpx.AsyncClient) -> None:
    lst, _ = await standard_list(admin)  # Телефон (mobile) and Рабочий телефон (work)
    content = ("ФИО;Телефон\r\n"
               "Иванов;8-912-345-67-89, 8(343)123-45-67\r\n"
               "Петров;\"8-912-345-67-80; 8 (343) 123-45-68 доб. 12, 89123456700\"\r\n"
               "Сидоров;8-912-345-67-81 или 8(343)123\r\n"
               "Кузнецов;89123456782, 8 912 345-67-82\r\n").encode("cp1251")
    job = await wait_import(admin, (await upload(admin, lst["id"], "crm.csv", content)).json()["id"])
    assert (job["status"], job["imported"], job["rejected"]) == ("finished", 3, 1), job
    items = await contacts_of(admin, lst["id"])
    assert [c["values"] for c in items] == [
        {"ФИО": "Иванов", "Телефон": "+79123456789", "Рабочий телефон": "+73431234567"},
        {"ФИО": "Петров", "Телефон": "+79123456780", "Рабочий телефон": "+73431234568"},
        {"ФИО": "Кузнецов", "Телефон": "+79123456782"},  # the same number twice is one number
    ]
    assert sorted((p["raw"], p["number"], p["type"]) for p in items[1]["phones"]) == [
        ("8 (343) 123-45-68 доб. 12", "+73431234568", "work"), ("8-912-345-67-80", "+79123456780", "mobile")]
    # The number written first stays the contact's first number.
    assert [p["number"] for p in sorted(items[0]["phones"], key=lambda p: p["position"])] == [
        "+79123456789", "+73431234567"]
    problems = await report_of(admin, job)
    assert [(row, column) for row, column, _, _ in problems] == [("3", "Телефон"), ("4", "Телефон")]
    # The third number of row 3 had no field left: the row is in, the number is named.
    assert problems[0][3] == ("the number '89123456700' was not imported: the list has no other phone field "
                              "free for it (the first number was)")
    # A bad second number rejects the row with a reason naming that number.
    assert problems[1][3] == "not a valid phone number: '8(343)123' (one of 2 numbers in the cell): missing area code"


async def test_a_duplicate_row_gets_no_note_about_its_extra_numbers(admin: httpx.AsyncClient) -> None:
    lst, _ = await standard_list(admin)
    content = ("ФИО;Телефон\r\n"
               "Иванов;89123456789\r\n"
               "Иванов;89123456789, 84951234567, 84951234568\r\n").encode()
    job = await wait_import(admin, (await upload(admin, lst["id"], "f.csv", content)).json()["id"])
    assert (job["imported"], job["duplicates"]) == (1, 1), job
    # the report lists the duplicate row it left out, and says nothing about that row's further numbers
    report = (await admin.get(job["errors_url"])).content.decode("utf-8-sig").splitlines()
    assert report[1:] == ["3;Телефон;89123456789;duplicate: +79123456789 is already in the list or earlier in the file"]


async def test_numbered_and_repeated_phone_headers_fill_the_phone_fields(admin: httpx.AsyncClient) -> None:
    lst, _ = await standard_list(admin)
    for name, header in (("nums.csv", "ФИО;Телефон 1;Телефон 2"), ("same.csv", "ФИО;Телефон;Телефон")):
        content = f"{header}\r\nИванов;89123456789;8 343 123-45-67\r\nПетров;;89123456780\r\n".encode("cp1251")
        r = await admin.post(f"/api/lists/{lst['id']}/imports/preview", files={"file": (name, content)})
        assert r.status_code == 200, r.text
        assert [(m or {}).get("name") for m in r.json()["mapping"].values()] == ["ФИО", "Телефон", "Рабочий телефон"]
    job = await wait_import(admin, (await upload(admin, lst["id"], name, content)).json()["id"])
    assert (job["imported"], job["rejected"]) == (2, 0), job
    assert [c["values"] for c in await contacts_of(admin, lst["id"])] == [
        {"ФИО": "Иванов", "Телефон": "+79123456789", "Рабочий телефон": "+73431234567"},
        {"ФИО": "Петров", "Рабочий телефон": "+79123456780"},
    ]
    # The renamed repeat ("Телефон_2") is said with the result.
    assert "repeats the header 'Телефон'; it was renamed to 'Телефон_2'" in job["message"]


async def test_1c_report_with_a_title_currency_amounts_and_month_names(admin: httpx.AsyncClient) -> None:
    lst, _ = await standard_list(admin)
    content = ("Отчет: Дебиторская задолженность\r\nПериод: январь 2024 г.\r\n\r\n"
               "Клиент;Телефон;Сумма;Дата\r\n"
               "Иванов;+7 (912) 345-67-89;1\u00a0234,56\u00a0руб.;1 февраля 2024 г.\r\n"
               "Петров;89123456790;99 р.;01.02.2024 0:00:00\r\n").encode("cp1251")
    job = await wait_import(admin, (await upload(admin, lst["id"], "1c.csv", content)).json()["id"])
    assert (job["status"], job["imported"], job["rejected"]) == ("finished", 2, 0), job
    assert job["message"] == ("Rows 1-2 were skipped as a title above the table header: "
                              "'Отчет: Дебиторская задолженность / Период: январь 2024 г.'.")
    assert [c["values"] for c in await contacts_of(admin, lst["id"])] == [
        {"ФИО": "Иванов", "Телефон": "+79123456789", "Сумма": 1234.56, "Дата": "2024-02-01"},
        {"ФИО": "Петров", "Телефон": "+79123456790", "Сумма": 99, "Дата": "2024-02-01"},
    ]


def _crm_workbook(path: Path) -> None:
    """Hidden lookup sheet first; the visible one has a title, numeric and text phones, date cells."""
    workbook = openpyxl.Workbook()
    lookup = workbook.active
    assert lookup is not None
    lookup.title = "Справочник"
    lookup.append(["Код", "Статус"])
    lookup.append([1, "новый"])
    lookup.sheet_state = "hidden"
    sheet = workbook.create_sheet("Клиенты")
    sheet["A1"] = "Клиенты на 01.02.2024"
    sheet.merge_cells("A1:C1")
    sheet.append(["ФИО", "Моб. тел.", "Дата визита"])
    sheet.append(["Иванов", 79123456789, datetime(2024, 2, 1)])
    sheet.append(["Петров", 7.912345679e10, datetime(2024, 2, 2)])
    quoted = sheet.cell(row=5, column=2, value="89123456791")
    quoted.quotePrefix = True
    sheet.cell(row=5, column=1, value="Сидоров")
    for row in (3, 4):
        sheet.cell(row=row, column=3).number_format = "DD.MM.YYYY"
    workbook.active = 1
    workbook.save(path)


async def test_cli_import_of_a_crm_workbook(db_url: str, tmp_path: Path) -> None:
    path = tmp_path / "выгрузка.xlsx"
    await asyncio.to_thread(_crm_workbook, path)
    settings = Settings(database_url=db_url, data_dir=tmp_path / "data")
    result = await import_file(path, list_name="Выгрузка CRM", settings=settings)
    assert (result["status"], result["imported"], result["rejected"], result["rows"]) == ("finished", 3, 0, 3), result
    assert "Only the first visible sheet 'Клиенты' was read" in result["message"]
    assert "Row 1 was skipped as a title above the table header" in result["message"]

    from sqlalchemy import text

    from dialer.db import make_engine

    engine = make_engine(db_url, pool_size=1)
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(text(
                "SELECT c.data, p.e164, p.raw FROM contacts c JOIN contact_phones p ON p.contact_id = c.id "
                "ORDER BY c.id"))).all()
            fields = dict((await conn.execute(text("SELECT name, type FROM fields"))).all())
    finally:
        await engine.dispose()
    assert fields == {"ФИО": "string", "Моб. тел.": "phone", "Дата визита": "string"}
    assert [(e164, raw) for _, e164, raw in rows] == [
        ("+79123456789", "79123456789"), ("+79123456790", "79123456790"), ("+79123456791", "89123456791")]
    assert [sorted(data.values()) for data, _, _ in rows][:2] == [
        ["+79123456789", "2024-02-01", "Иванов"], ["+79123456790", "2024-02-02", "Петров"]]

    # The hidden sheet can still be asked for by name; it matches no field, so nothing is imported.
    with pytest.raises(ValidationFailed, match="columns: Код, Статус"):
        await import_file(path, list_name="Выгрузка CRM", sheet="Справочник", settings=settings)


async def test_word_document_named_csv_is_refused_and_nothing_changes(app: FastAPI, admin: httpx.AsyncClient,
                                                                      db_url: str, tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", "<w:document/>")
    lst, _ = await standard_list(admin)
    r = await upload(admin, lst["id"], "клиенты.csv", buf.getvalue())
    assert r.status_code == 422
    assert [(e["field"], e["reason"]) for e in r.json()["errors"]] == [
        ("file", "'клиенты.csv' is a Word document (.docx), not a table. Save the table as an Excel .xlsx workbook "
                 "or CSV.")]
    path = tmp_path / "клиенты.csv"
    await asyncio.to_thread(path.write_bytes, buf.getvalue())
    with pytest.raises(ValidationFailed, match="is a Word document"):
        await import_file(path, list_name="Новый", settings=Settings(database_url=db_url, data_dir=tmp_path / "d"))
    async with app.state.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(ImportJob)) == 0
        assert (await session.scalars(select(ContactList.name))).all() == [lst["name"]]
