"""The generic administration pages in a real browser: create (with a validation error at the field), edit,
delete; read-only users see no controls; users without the read permission are refused and see no nav entry."""

from __future__ import annotations

import pytest
from playwright.async_api import Page, expect

from tests.web.conftest import LiveServer, login, screenshot

pytestmark = pytest.mark.browser


async def test_skills_crud_with_a_validation_error_at_the_field(page: Page, live_server: LiveServer) -> None:
    await live_server.user("boss", roles=("admin",))
    await login(page, live_server, "boss", next_url="/admin/skills")
    await expect(page.locator("h1")).to_have_text("Умения")
    await page.click("[data-action=create]")
    dialog = page.locator("dialog.form-dialog")
    await expect(dialog).to_be_visible()
    await dialog.locator("[data-action=save]").click()
    error = dialog.locator(".fld[data-field=name] .ferr")
    await expect(error).not_to_be_empty()
    await expect(dialog.locator("input[name=name]")).to_have_class("invalid")
    await screenshot(page, "admin-form-validation")
    await dialog.locator("input[name=name]").fill("Продажи")
    await dialog.locator("textarea[name=description]").fill("Активные продажи")
    await dialog.locator("[data-action=save]").click()
    await expect(dialog).to_have_count(0)
    rows = page.locator("table.grid tbody tr")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text("Продажи")
    # edit
    await rows.first.click()
    await expect(dialog.locator("input[name=name]")).to_have_value("Продажи")
    await dialog.locator("input[name=name]").fill("Продажи B2B")
    await dialog.locator("[data-action=save]").click()
    await expect(rows.first).to_contain_text("Продажи B2B")
    async with live_server.app.state.sessionmaker() as session:
        from sqlalchemy import text
        assert (await session.execute(text("SELECT name, description FROM skills"))).all() == [
            ("Продажи B2B", "Активные продажи")]
    # delete, with confirmation (cancel first)
    await rows.first.click()
    await dialog.locator("[data-action=delete]").click()
    confirm = page.locator("dialog.confirm-dialog")
    await expect(confirm).to_contain_text("Продажи B2B")
    await confirm.locator("[data-action=cancel]").click()
    await expect(confirm).to_have_count(0)
    await dialog.locator("[data-action=delete]").click()
    await confirm.locator("[data-action=confirm]").click()
    await expect(page.locator(".dt-empty")).to_have_text("Ничего не найдено")


async def test_users_and_operators_with_sub_editors(page: Page, live_server: LiveServer) -> None:
    import httpx

    from tests.conftest import client_for

    api = await client_for(live_server.app, "api-admin", roles=("admin",))
    assert (await api.post("/api/skills", json={"name": "Продажи"})).status_code == 201
    assert (await api.post("/api/pools", json={"name": "Дневная смена"})).status_code == 201
    await live_server.user("boss", roles=("admin",))
    await login(page, live_server, "boss", next_url="/admin/users")
    # a user with a role, an individual grant and a write-only password
    await page.click("[data-action=create]")
    dialog = page.locator("dialog.form-dialog")
    await dialog.locator("[name=login]").fill("ivan")
    await dialog.locator("[name=full_name]").fill("Иван Петров")
    await dialog.locator("[name=password]").fill("ivan-pass-123")
    await dialog.locator(".refs[data-name=role_ids] label", has_text="Оператор").locator("input").check()
    await dialog.locator(".grants select[data-perm='reports.read']").select_option("allow")
    await dialog.locator(".grants select[data-perm='operator_panel.use']").select_option("deny")
    await screenshot(page, "admin-user-form")
    await dialog.locator("[data-action=save]").click()
    await expect(dialog).to_have_count(0)
    row = page.locator("table.grid tbody tr", has_text="ivan")
    await expect(row).to_contain_text("Оператор")
    await row.click()
    await expect(dialog.locator("[name=password]")).to_have_value("")
    await expect(dialog.locator(".grants select[data-perm='reports.read']")).to_have_value("allow")
    await dialog.locator("[name=full_name]").fill("Иван Сидоров")
    await dialog.locator("[data-action=save]").click()
    await expect(row).to_contain_text("Иван Сидоров")
    user = next(u for u in (await api.get("/api/users")).json()["items"] if u["login"] == "ivan")
    assert user["grants"] == {"reports.read": True, "operator_panel.use": False}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=live_server.app), base_url="http://t") as anon:
        login_r = await anon.post("/api/auth/login", json={"login": "ivan", "password": "ivan-pass-123"})
        assert login_r.status_code == 200  # the empty password field kept the password

    # an operator with skill levels and pools
    await page.goto(f"{live_server.url}/admin/operators")
    await page.click("[data-action=create]")
    await dialog.locator("[name=name]").fill("Оператор 1")
    await dialog.locator("select[name=user_id]").select_option(label="ivan")
    skills = dialog.locator(".fld[data-field=skills]")
    await skills.locator("[data-action=add-row]").click()
    await skills.locator("select[name='skills.skill_id']").select_option(label="Продажи")
    await skills.locator("input[name='skills.level']").fill("170")
    await dialog.locator(".refs[data-name=pool_ids] label", has_text="Дневная смена").locator("input").check()
    await dialog.locator("[data-action=save]").click()
    await expect(skills.locator(".ferr:not(:empty)")).to_have_count(1)  # level is 1..100
    await skills.locator("input[name='skills.level']").fill("70")
    await dialog.locator("[data-action=save]").click()
    await expect(page.locator("table.grid tbody tr")).to_contain_text("Дневная смена")
    operator = (await api.get("/api/operators")).json()["items"][0]
    assert operator["skills"][0]["level"] == 70 and len(operator["pool_ids"]) == 1
    await api.aclose()


async def test_every_admin_page_and_form_renders(page: Page, live_server: LiveServer) -> None:
    """Every page of the registry (and the special ones) loads without a JavaScript error, in both languages, and
    every resource's create form opens."""
    from dialer.web import admin

    await live_server.user("boss", roles=("admin",))
    await login(page, live_server, "boss", next_url="/admin")
    await expect(page.locator(".tiles a[data-nav='admin.telephony']")).to_have_count(1)
    for spec in admin.PAGES:
        await page.goto(live_server.url + spec.path)
        for resource in spec.resources:
            panel = page.locator(f".tab-panel[data-tab={resource.key}]")
            if len(spec.resources) > 1:
                await page.click(f".tab[data-tab={resource.key}]")
            await expect(panel.locator("table.grid")).to_be_visible()
            await panel.locator("[data-action=create]").click()
            dialog = page.locator("dialog.form-dialog")
            await expect(dialog.locator(".fld").first).to_be_visible()
            await dialog.locator("[data-action=cancel]").click()
            await expect(dialog).to_have_count(0)
    await page.goto(live_server.url + "/admin/audit")
    await expect(page.locator("table.grid")).to_be_visible()
    await page.click(".langs a[data-lang=en]")
    await expect(page.locator("h1")).to_have_text("Audit log")
    await expect(page.locator("[data-action=filter]")).to_have_text("Apply")
    await page.goto(live_server.url + "/admin/campaigns")
    await page.click("[data-action=create]")
    await expect(page.locator("dialog.form-dialog .fld[data-field=dial_mode]")).to_contain_text("Dial mode")
    await screenshot(page, "admin-campaign-form-english")
