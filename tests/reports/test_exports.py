"""Views and exports of the reports: CSV as Russian Excel opens it, XLSX typed with a frozen header and totals,
PDF on A4 with the charts and Cyrillic text; the call list streams."""

from __future__ import annotations

import csv
import io

import httpx
import pypdf
from fastapi import FastAPI
from openpyxl import load_workbook

from tests.reports.data import make_day
from tests.reports.test_reports_api import MARCH_4

#: The test clients ask for English as integrations do; the labels checked here are the Russian ones.
RU = {"Accept-Language": "ru"}


async def test_view_has_tables_and_charts(app: FastAPI, admin: httpx.AsyncClient) -> None:
    day = await make_day(app.state.sessionmaker)
    view = (await admin.get("/api/reports/outcomes/view", params=MARCH_4, headers=RU)).json()
    assert [t["key"] for t in view["tables"]] == ["kpi", "by_day", "by_hour", "by_campaign", "by_list", "by_direction"]
    campaigns = next(t for t in view["tables"] if t["key"] == "by_campaign")
    assert campaigns["drill"] == [{"campaign_ids": str(day.world.campaign_id)}]
    assert campaigns["totals"][7] == 7  # the total column of the totals row
    chart = next(c for c in view["charts"] if c["key"] == "by_hour")
    colours = chart["spec"]["encoding"]["color"]["scale"]
    assert colours["range"][0] == "#2e9d44" and colours["domain"][0] == "Ответ"
    r = await admin.get("/api/reports/nothing/view", params=MARCH_4, headers=RU)
    assert r.status_code == 404


async def test_csv_opens_in_russian_excel(app: FastAPI, admin: httpx.AsyncClient) -> None:
    await make_day(app.state.sessionmaker)
    r = await admin.get("/api/reports/operators/export", params=MARCH_4 | {"format": "csv"}, headers=RU)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig")), delimiter=";"))
    assert rows[0][:3] == ["Место", "Оператор", "Обработано"]
    anna = next(row for row in rows if row[1] == "Анна")
    assert anna[4] == "0:01:00" and anna[11] == "100,00"  # talk time; conversion with a decimal comma
    assert rows[-1][:3] == ["Итого", "", "2"]  # totals: handled by both
    english = await admin.get("/api/reports/operators/export", params=MARCH_4 | {"format": "csv"})
    rows_en = list(csv.reader(io.StringIO(english.content.decode("utf-8-sig")), delimiter=";"))
    assert rows_en[0][:2] == ["Rank", "Operator"] and "100.00" in rows_en[1] + rows_en[2]
    r = await admin.get("/api/reports/calls/export", params=MARCH_4 | {"format": "csv"}, headers=RU)
    calls = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig")), delimiter=";"))
    assert len(calls) == 1 + 7 and calls[1][1] == "04.03.2026 00:00:00"  # local time, oldest first


async def test_xlsx_is_typed_with_frozen_header_and_totals(app: FastAPI, admin: httpx.AsyncClient) -> None:
    await make_day(app.state.sessionmaker)
    r = await admin.get("/api/reports/outcomes/export", params=MARCH_4 | {"format": "xlsx"}, headers=RU)
    assert r.status_code == 200
    book = load_workbook(io.BytesIO(r.content))
    assert len(book.sheetnames) == 6
    sheet = book.worksheets[3]  # by campaign
    assert sheet.freeze_panes == "A2"
    assert sheet["A1"].value == "Кампания" and sheet["H2"].value == 7 and isinstance(sheet["I2"].value, float)
    assert sheet["H3"].value == 7 and sheet["H3"].font.b  # the totals row
    assert sheet.column_dimensions["A"].width >= 12
    r = await admin.get("/api/reports/calls/export", params=MARCH_4 | {"format": "xlsx"}, headers=RU)
    calls = load_workbook(io.BytesIO(r.content)).active
    assert calls.freeze_panes == "A2" and calls.max_row == 1 + 7 + 1
    assert calls["B2"].is_date and calls["B2"].value.hour == 0  # 00:00 local, a real date-time
    assert calls.cell(row=9, column=1).value == 7  # the totals row counts the calls


async def test_pdf_has_charts_and_cyrillic(app: FastAPI, admin: httpx.AsyncClient) -> None:
    await make_day(app.state.sessionmaker)
    r = await admin.get("/api/reports/outcomes/export", params=MARCH_4 | {"format": "pdf"}, headers=RU)
    assert r.status_code == 200 and r.content.startswith(b"%PDF")
    reader = pypdf.PdfReader(io.BytesIO(r.content))
    first = reader.pages[0]
    assert abs(float(first.mediabox.width) - 595.28) < 1  # A4
    text = "".join(page.extract_text() for page in reader.pages)
    assert "Итоги звонков" in text and "Анна" not in text and "Кампания" in text
    assert sum(len(page.images) for page in reader.pages) >= 3  # the three charts
    fonts = str(first["/Resources"]["/Font"])
    assert "DejaVu" in str([f.get_object()["/BaseFont"] for f in first["/Resources"]["/Font"].values()]), fonts
