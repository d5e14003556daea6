"""The administration in Russian all the way and as a newcomer expects it (#13 §4, §5), in a real browser: proper
dialog titles, the operator's name column, operators in natural order, the campaign's time zone from a list, a
strategy's window "круглосуточно", "Тип дня" whole in the strategy dialog, the permission matrix's groups and the
audit log's labels in Russian, the import's column guess by header similarity, and one form for an operator with
his user account."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from fastapi import FastAPI
from playwright.async_api import Page, Route, expect
from sqlalchemy import select

from dialer.models import Operator, User
from tests.engine.engine_world import engine_world
from tests.web.conftest import LiveServer, login, screenshot

pytestmark = pytest.mark.browser

CUT = """(root) => [...document.querySelectorAll(root)]
  .filter((n) => n.offsetParent && n.scrollWidth > n.clientWidth + 1).map((n) => n.textContent.trim())"""


async def test_titles_labels_order_and_zones(page: Page, app: FastAPI, live_server: LiveServer) -> None:
    world = await engine_world(app.state.sessionmaker, operators=0)
    for name in ("Оператор 10", "Оператор 2", "Оператор 1"):
        await world.add_operator(name)
    await live_server.user("adm", roles=("admin",))
    await login(page, live_server, "adm", next_url="/admin/fields")
    await page.click("[data-action=create]")
    await expect(page.locator("dialog h2")).to_have_text("Новое поле")
    await page.click("dialog [data-action=cancel]")
    await page.locator("table.grid tbody tr").filter(has=page.locator("td", has_text=re.compile("^Телефон$"))).click()
    await expect(page.locator("dialog h2")).to_have_text("Поле «Телефон»")

    await page.goto(f"{live_server.url}/admin/operators")
    await expect(page.locator("table.grid th[data-key=name]")).to_have_text("ФИО")
    names = page.locator("table.grid tbody td:nth-child(2)")
    await expect(names).to_have_text(["Оператор 1", "Оператор 2", "Оператор 10"])

    await page.goto(f"{live_server.url}/admin/strategies")
    await expect(page.locator("table.grid th[data-key=call_window_start]")).to_have_text("Окно звонков")
    await expect(page.locator("table.grid tbody tr").first).to_contain_text("09:00–21:00")
    await page.locator("table.grid tbody tr").first.click()
    dialog = page.locator("dialog.form-dialog")
    await dialog.locator(".fld[data-field=result_rules] button", has_text="строка").click()
    for width in (1280, 1440, 1920):
        await page.set_viewport_size({"width": width, "height": 900})
        await expect(dialog.get_by_text("Тип дня")).to_be_visible()
        assert await page.evaluate(CUT, "dialog th, dialog label, dialog h2") == []
        await screenshot(page, f"admin-strategy-dialog-{width}")
    await dialog.locator("input[name=call_window_start]").fill("00:00")
    await dialog.locator("input[name=call_window_end]").fill("00:00")
    await dialog.locator(".fld[data-field=result_rules] [data-action=remove-row], .fld[data-field=result_rules] button",
                         has_text="✕").first.click()
    await dialog.locator("[data-action=save]").click()
    await expect(page.locator("table.grid tbody tr").first).to_contain_text("круглосуточно")

    await page.goto(f"{live_server.url}/admin/campaigns/{world.campaign_id}")
    zone = page.locator("select[name=time_zone]")
    await expect(zone).to_have_value("Europe/Moscow")
    await zone.select_option("Asia/Vladivostok")
    async with page.expect_response(lambda r: r.request.method == "PATCH"
                                    and r.url.endswith(f"/api/campaigns/{world.campaign_id}")) as saved:
        await page.click("[data-action=save]")
    answer = await saved.value
    assert answer.ok, await answer.text()
    assert (await answer.json())["time_zone"] == "Asia/Vladivostok"


async def test_permission_groups_and_audit_labels_in_russian(page: Page, live_server: LiveServer) -> None:
    await live_server.user("adm", roles=("admin",))
    await login(page, live_server, "adm", next_url="/admin/roles")
    await expect(page.locator("tr.group[data-group=campaigns] th")).to_have_text("Кампании")
    await expect(page.locator("tr.group[data-group=operator_panel] th")).to_have_text("Панель оператора")
    groups = await page.locator("tr.group th").all_text_contents()
    assert "completion_codes" not in groups and "Коды завершения" in groups
    # every permission's description in Russian: no Latin words but the codes themselves
    texts = await page.locator("td.perm .perm-text").all_text_contents()
    assert len(texts) >= 47
    assert [x for x in texts if re.search("[A-Za-z]{3,}", x) and not re.search("(API|CSV|XLSX|DNC|SIP|CRM)", x)] == []

    async def labelled(route: Route) -> None:
        response = await route.fetch()
        data = await response.json()
        for item in data["items"]:
            item.update(object_label="Кампании", action_label="изменение", event_label="статус: черновик → работает")
        await route.fulfill(response=response, body=json.dumps(data), content_type="application/json")
    await page.route("**/api/audit?*", labelled)
    await page.goto(f"{live_server.url}/admin/audit")
    first = page.locator("table.grid tbody tr").first
    await expect(first).to_contain_text("статус: черновик → работает")
    await expect(first).to_contain_text("Кампании")
    await expect(first).to_contain_text("изменение")


async def test_import_guesses_columns_by_their_headers(page: Page, app: FastAPI, live_server: LiveServer,
                                                       tmp_path: Any) -> None:
    world = await engine_world(app.state.sessionmaker, operators=0)
    await live_server.user("adm", roles=("admin",))
    await login(page, live_server, "adm", next_url=f"/admin/lists/{world.list_id}")
    # the list's fields: phone, city and amount
    async with app.state.sessionmaker() as session, session.begin():
        from dialer.models import ListField

        for position, field_id in enumerate((world.phone_field_id, world.city_field_id, world.amount_field_id)):
            session.add(ListField(list_id=world.list_id, field_id=field_id, position=position))
    await page.reload()
    await page.click(".tab[data-tab=import]")
    data = tmp_path / "должники.csv"
    data.write_text("Моб. телефон;Город проживания;Сумма, руб.;Комментарий\n"
                    "+79161234567;Казань;1500,50;звонить вечером\n", encoding="utf-8")
    await page.set_input_files(".wizard input[name=file]", str(data))
    await page.click("[data-action=preview]")
    await expect(page.locator("table.preview select[data-column='Город проживания']")).to_have_value("Город")
    await expect(page.locator("table.preview select[data-column='Сумма, руб.']")).to_have_value("Сумма")
    await expect(page.locator("table.preview select[data-column='Моб. телефон']")).to_have_value("Телефон")
    await expect(page.locator("table.preview select[data-column='Комментарий']")).to_have_value("")


async def test_one_form_creates_the_user_and_his_operator(page: Page, app: FastAPI, live_server: LiveServer) -> None:
    await live_server.user("adm", roles=("admin",))
    await login(page, live_server, "adm", next_url="/admin/operators")
    await page.click("[data-action=create-account]")
    dialog = page.locator("dialog.account-dialog")
    await expect(dialog.locator("h2")).to_have_text("Новый оператор с учётной записью")
    await dialog.locator("input[name=name]").fill("Анна Петрова")
    await dialog.locator("input[name=login]").fill("anna")
    await dialog.locator("input[name=password]").fill("Секрет-пароль-1")
    await dialog.locator("input[name=extension]").fill("201")
    await dialog.locator("[data-action=save]").click()
    await expect(dialog).to_have_count(0)
    await expect(page.locator("table.grid tbody")).to_contain_text("Анна Петрова")
    async with app.state.sessionmaker() as session:
        user = (await session.scalars(select(User).where(User.login == "anna"))).one()
        operator = (await session.scalars(select(Operator).where(Operator.user_id == user.id))).one()
    assert (operator.name, operator.extension, user.full_name) == ("Анна Петрова", "201", "Анна Петрова")
    me = await page.request.get(f"{live_server.url}/api/users/{user.id}")
    roles = (await (await page.request.get(f"{live_server.url}/api/roles?per_page=100")).json())["items"]
    operator_role = next(r["id"] for r in roles if r["code"] == "operator")
    assert (await me.json())["role_ids"] == [operator_role]

    # the operator refused (his extension is Anna's phone): the user made for him is taken back, the form says why
    await page.click("[data-action=create-account]")
    dialog = page.locator("dialog.account-dialog")
    await dialog.locator("input[name=name]").fill("Борис")
    await dialog.locator("input[name=login]").fill("boris")
    await dialog.locator("input[name=password]").fill("Секрет-пароль-2")
    await dialog.locator("input[name=extension]").fill("201")
    await dialog.locator("[data-action=save]").click()
    await expect(dialog.locator("[data-error-for=extension]")).not_to_be_empty()
    async with app.state.sessionmaker() as session:
        assert (await session.scalars(select(User).where(User.login == "boris"))).first() is None
