"""Exports and values as Russians write them: labelled system columns, statuses and outcomes, "25.12.2026" dates
and "12 345,67" amounts (the same decimal comma as the CSV)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import httpx
import pytest
from fastapi import FastAPI

from dialer.fieldvalues import format_amount, format_date, format_datetime
from tests.contact.test_export import _round_trip, _source


@pytest.mark.parametrize(("value", "kwargs", "expected"), [
    (Decimal("12345.67"), {}, "12\u00a0345,67"),
    (1500, {}, "1\u00a0500,00"),
    ("-1234567.5", {}, "−1\u00a0234\u00a0567,50"),
    (Decimal("0.5"), {"places": None}, "0,5"),
    (Decimal("12345.67"), {"lang": "en"}, "12,345.67"),
])
def test_amounts(value: object, kwargs: dict[str, object], expected: str) -> None:
    assert format_amount(value, **kwargs) == expected  # type: ignore[arg-type]


def test_dates_and_moments() -> None:
    assert format_date("2026-12-25") == format_date(date(2026, 12, 25)) == "25.12.2026"
    assert format_date(datetime(2026, 12, 25, 23, 0, tzinfo=UTC), lang="en") == "2026-12-25"
    moment = datetime(2026, 12, 25, 11, 30, tzinfo=UTC)
    assert format_datetime(moment, tz=timezone(timedelta(hours=3))) == "25.12.2026 14:30"
    assert format_datetime("2026-12-25T14:30:00+03:00", lang="en") == "2026-12-25 14:30"


async def test_russian_export_labels_columns_statuses_and_dates(app: FastAPI, admin: httpx.AsyncClient) -> None:
    lst, _ = await _source(app, admin)
    r = await admin.get(f"/api/lists/{lst['id']}/contacts/export", headers={"Accept-Language": "ru"})
    assert r.status_code == 200, r.text
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig")), delimiter=";"))
    header = rows[0]
    for label in ("№", "Регион", "Часовой пояс", "Статус", "Попыток", "Последний исход", "Создан"):
        assert label in header, header
    assert "status" not in header and "attempts_total" not in header
    first = dict(zip(header, rows[1], strict=True))
    assert first["Дата"] == "01.03.2024" and first["Сумма"] == "1234,56"
    assert (first["Статус"], first["Последний исход"]) == ("в работе", "Нет ответа")
    # the file a Russian user downloads imports back unchanged
    await _round_trip(admin, lst, "ru.csv", r.content)
