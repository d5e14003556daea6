"""Problem details in the request's language: message ids with parameters, reasons translated, fields by label."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from dialer.api.problems import recognise
from dialer.models.enums import FieldType
from dialer.web import i18n
from tests.campaign.conftest import Setup, add_field
from tests.conftest import client_for


@pytest.fixture
async def admin(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An administrator's client that names no language: the answers are Russian."""
    async with await client_for(app, "admin", roles=("admin",)) as client:
        del client.headers["Accept-Language"]  # the test clients ask for English otherwise (tests/conftest.py)
        yield client


async def test_duplicate_name_is_value_exists_in_russian_by_default(admin: httpx.AsyncClient) -> None:
    assert (await admin.post("/api/completion-code-groups", json={"name": "Взыскание"})).status_code == 201
    r = await admin.post("/api/completion-code-groups", json={"name": "Взыскание"})
    assert r.status_code == 409 and r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["title"] == "Конфликт"
    assert body["code"] == "value_exists"
    [error] = body["errors"]
    assert error["field"] == "name" and error["label"] == "Название"
    assert error["code"] == "value_exists" and error["params"] == {"field": "Название", "value": "Взыскание"}
    assert error["reason"] == "значение «Взыскание» уже есть"
    assert body["detail"] == "Название: значение «Взыскание» уже есть"


async def test_accept_language_en_gets_english(admin: httpx.AsyncClient) -> None:
    await admin.post("/api/completion-code-groups", json={"name": "Взыскание"})
    r = await admin.post("/api/completion-code-groups", json={"name": "Взыскание"},
                         headers={"Accept-Language": "en-US,en;q=0.9"})
    body = r.json()
    assert body["title"] == "Conflict" and body["code"] == "value_exists"
    assert body["errors"][0]["reason"] == "value 'Взыскание' already exists"
    assert body["detail"] == "Name: value 'Взыскание' already exists"


async def test_lang_cookie_wins_over_accept_language(app: FastAPI, admin: httpx.AsyncClient) -> None:
    admin.cookies.set("lang", "ru")
    r = await admin.get("/api/campaigns/987654", headers={"Accept-Language": "en"})
    assert r.status_code == 404
    assert r.json()["detail"] == "кампании 987654 не существует" and r.json()["code"] == "campaign_missing"
    admin.cookies.set("lang", "en")
    r = await admin.get("/api/campaigns/987654", headers={"Accept-Language": "ru"})
    assert r.json()["detail"] == "campaign 987654 does not exist" and r.json()["title"] == "Not found"


async def test_selection_condition_names_the_field_by_label_and_the_operator_by_name(
        app: FastAPI, admin: httpx.AsyncClient, setup: Setup) -> None:
    amount = await add_field(app, "Сумма", FieldType.decimal)
    cid = (await admin.post("/api/campaigns", json=setup.campaign())).json()["id"]
    bad = {"conditions": [{"field": amount, "op": "ge", "value": None}]}
    r = await admin.post(f"/api/campaigns/{cid}/selections/preview", json=bad)
    assert r.status_code == 422, r.text
    [error] = r.json()["errors"]
    assert error["field"] == "conditions.0.value"
    assert error["label"] == "Условия №1 › Значение"
    assert error["code"] == "op_needs_value" and error["params"]["op"] == "не меньше"
    assert error["reason"] == "для условия «не меньше» нужно значение"
    r = await admin.post(f"/api/campaigns/{cid}/selections/preview", json=bad, headers={"Accept-Language": "en"})
    error = r.json()["errors"][0]
    assert error["label"] == "Conditions №1 › Value" and error["reason"] == "operator 'at least' needs a value"


async def test_strategy_rule_reason_in_russian_with_labels(admin: httpx.AsyncClient, setup: Setup) -> None:
    r = await admin.post("/api/strategies", json={
        "name": "Без интервала", "phone_field_id": setup.phone_field_id,
        "result_rules": [{"completion_code_id": setup.code_id, "day_type": "workday"}]})
    assert r.status_code == 422, r.text
    errors = {e["field"]: e for e in r.json()["errors"]}
    rule = errors["result_rules.0.retry_interval_s"]
    assert rule["code"] == "rule_needs_interval"
    assert rule["label"] == "Правила по результату №1 › Интервал повтора, с"
    assert "use_common_interval" not in rule["reason"] and "интервал" in rule["reason"]


async def test_pydantic_errors_are_translated(admin: httpx.AsyncClient) -> None:
    r = await admin.post("/api/completion-code-groups", json={"name": ""})
    [error] = r.json()["errors"]
    assert error["code"] == "string_too_short" and error["params"]["min_length"] == 1
    assert error["reason"] == "не короче 1 символов" and error["label"] == "Название"
    r = await admin.post("/api/completion-code-groups", json={}, headers={"Accept-Language": "en"})
    [error] = r.json()["errors"]
    assert error["code"] == "missing" and error["reason"] == "Field required"
    r = await admin.post("/api/completion-code-groups", content=b"{bad", headers={"Content-Type": "application/json"})
    [error] = r.json()["errors"]
    assert error["code"] == "json_invalid" and error["reason"].startswith("тело запроса — не правильный JSON")


@pytest.mark.parametrize(("header", "expected"), [
    ("", None), ("en", "en"), ("en-US,en;q=0.9,ru;q=0.8", "en"), ("ru-RU,ru;q=0.9,en;q=0.8", "ru"),
    ("de-DE,en;q=0.5,ru;q=0.7", "ru"), ("fr", None), ("en;q=0", None), ("en;q=bad,ru", "ru"),
])
def test_accept_language_is_read_by_quality(header: str, expected: str | None) -> None:
    assert i18n.accepted_language(header) == expected


def test_every_english_template_is_recognised_as_itself() -> None:
    """Messages raised as English text find their id: each template filled with sample values reads back as the
    same id and values (two templates with the same English text are one message, e.g. enum and literal_error)."""
    english = i18n.catalogue("en")
    for key, template in english.items():
        if not key.startswith("problem.") or key == "problem.text":
            continue
        names = [n for _t, n, _s, _c in __import__("string").Formatter().parse(template) if n]
        sample = {n: f"<{n}>" for n in names}
        code, params = recognise(template.format(**sample))
        assert english[f"problem.{code}"] == template, key
        assert params == sample, key


def test_russian_and_english_catalogues_have_the_same_message_parameters() -> None:
    from string import Formatter
    ru, en = i18n.catalogue("ru"), i18n.catalogue("en")
    for key in (k for k in en if k.startswith("problem.")):
        assert ({n for _t, n, _s, _c in Formatter().parse(ru[key]) if n}
                <= {n for _t, n, _s, _c in Formatter().parse(en[key]) if n} | {"field"}), key


def test_every_permission_is_described_in_both_languages() -> None:
    from dialer.auth.catalogue import describe
    from dialer.auth.permissions import DESCRIPTIONS

    for permission, english in DESCRIPTIONS.items():
        assert describe(permission.value, "en") == english
        russian = describe(permission.value, "ru")
        assert russian != english and any("а" <= ch <= "я" for ch in russian.lower()), permission
    assert describe("campaigns.read", "ru") == "Просмотр кампаний"


def test_reasons_inside_reasons_and_file_kinds_are_translated() -> None:
    from dialer.api.problems import translate_reason

    assert translate_reason("ru", "not a valid phone number: too short") == (
        "недопустимый номер телефона: слишком короткий")
    assert translate_reason("ru", "'x.pdf' is a PDF document, not a table (CSV or XLSX).") == (
        "«x.pdf» — документ PDF, а не таблица (CSV или XLSX).")
    assert translate_reason("en", "not a valid phone number: too short") == "not a valid phone number: too short"
    assert translate_reason("ru", "a reason no catalogue knows") == "a reason no catalogue knows"
