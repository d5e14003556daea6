"""Administration pages in a real browser: what a user may not do is not shown, the 403 page, the roles matrix,
the audit log viewer, telephony (write-only passwords, states) and a DNC list with its entries."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Page, expect

from tests.web.conftest import LiveServer, login, screenshot

pytestmark = pytest.mark.browser


async def test_read_only_user_sees_no_controls(page: Page, live_server: LiveServer, admin: httpx.AsyncClient) -> None:
    assert (await admin.post("/api/skills", json={"name": "Продажи"})).status_code == 201
    await live_server.user("viewer", grants={"skills.read": True, "pools.read": True})
    await login(page, live_server, "viewer", next_url="/admin/skills")
    rows = page.locator("table.grid tbody tr")
    await expect(rows).to_have_count(1)
    await expect(page.locator("[data-action=create]")).to_have_count(0)
    await rows.first.click()
    dialog = page.locator("dialog.form-dialog")
    await expect(dialog.locator("input[name=name]")).to_be_disabled()
    await expect(dialog.locator("[data-action=save]")).to_have_count(0)
    await expect(dialog.locator("[data-action=delete]")).to_have_count(0)
    await screenshot(page, "admin-read-only")
    await dialog.locator("[data-action=cancel]").click()
    # only the pages the user may read are in the navigation
    await expect(page.locator(".sidebar a[data-nav]")).to_have_count(2)
    await expect(page.locator(".sidebar a[data-nav='admin.fields']")).to_have_count(0)
    # a page without the read permission: the 403 page
    await page.goto(f"{live_server.url}/admin/fields")
    await expect(page.locator("h1")).to_have_text("Доступ запрещён")
    await expect(page.locator(".error-page")).to_contain_text("fields.read")
    await expect(page.locator(".navmenu a[data-nav='admin.fields']")).to_have_count(0)
    await page.goto(f"{live_server.url}/admin/campaigns/1")
    await expect(page.locator(".error-page")).to_contain_text("campaigns.read")


async def test_roles_matrix_persists(page: Page, live_server: LiveServer, admin: httpx.AsyncClient) -> None:
    await live_server.user("boss", roles=("admin",))
    await login(page, live_server, "boss", next_url="/admin/roles")
    box = page.locator("input[data-role=operator][data-perm='skills.read']")
    await expect(box).not_to_be_checked()
    await box.check()
    await page.locator("input[data-role=operator][data-perm='operator_panel.use']").uncheck()
    await expect(page.locator("td.changed")).to_have_count(2)
    await screenshot(page, "admin-roles-matrix")
    await page.click("[data-action=save-matrix]")
    await expect(page.locator("td.changed")).to_have_count(0)
    await page.reload()
    await expect(page.locator("input[data-role=operator][data-perm='skills.read']")).to_be_checked()
    await expect(page.locator("input[data-role=operator][data-perm='operator_panel.use']")).not_to_be_checked()
    roles = {r["code"]: r for r in (await admin.get("/api/roles", params={"per_page": 100})).json()["items"]}
    assert "skills.read" in roles["operator"]["permissions"]
    assert "operator_panel.use" not in roles["operator"]["permissions"]
    # the roles tab: generic CRUD, the code only when creating
    await page.click(".tab[data-tab=roles]")
    await page.click(".tab-panel[data-tab=roles] [data-action=create]")
    dialog = page.locator("dialog.form-dialog")
    await dialog.locator("[name=code]").fill("Bad Code")
    await dialog.locator("[name=name]").fill("Контролёр")
    await dialog.locator("[data-action=save]").click()
    await expect(dialog.locator(".fld[data-field=code] .ferr")).not_to_be_empty()
    await dialog.locator("[name=code]").fill("controller")
    await dialog.locator("[data-action=save]").click()
    await expect(page.locator(".tab-panel[data-tab=roles] tbody")).to_contain_text("controller")


async def test_audit_viewer_filters_and_exports(page: Page, live_server: LiveServer,
                                                admin: httpx.AsyncClient) -> None:
    assert (await admin.post("/api/skills", json={"name": "Продажи"})).status_code == 201
    assert (await admin.post("/api/pools", json={"name": "Дневная смена"})).status_code == 201
    await live_server.user("auditor", grants={"audit.read": True, "audit.export": True})
    await login(page, live_server, "auditor", next_url="/admin/audit")
    rows = page.locator("table.grid tbody tr")
    await expect(rows.first).to_be_visible()
    await page.fill(".filters input[name=object_type]", "skills")
    await page.click("[data-action=filter]")
    await expect(rows).to_have_count(1)
    # the table's name as the API labels it in the page's language, its code in the tooltip
    await expect(rows.first.locator(".object-type[data-type=skills]")).to_have_attribute("title", "skills")
    await page.fill(".filters input[name=object_type]", "")
    await page.select_option(".filters select[name=action]", "created")
    await page.fill(".filters input[name=user_login]", "admin")
    await page.click("[data-action=filter]")
    await expect(rows).to_have_count(2)
    assert "user_login=admin" in page.url
    href = await page.locator("a.export[data-format=csv]").get_attribute("href")
    assert href and "action=created" in href and "user_login=admin" in href
    csv = await page.request.get(live_server.url + href)
    text = await csv.text()
    assert csv.ok and "Дневная смена" in text and "Продажи" in text
    assert await page.locator("a.export[data-format=xlsx]").count() == 1
    await rows.first.click()
    await expect(page.locator("dialog.audit-dialog pre.changes")).to_contain_text("Дневная смена")
    await screenshot(page, "admin-audit")


async def test_telephony_passwords_are_write_only(page: Page, live_server: LiveServer,
                                                  admin: httpx.AsyncClient) -> None:
    await live_server.user("boss", roles=("admin",))
    await login(page, live_server, "boss", next_url="/admin/telephony")
    await page.click("[data-action=create]")
    dialog = page.locator("dialog.form-dialog")
    await dialog.locator("[name=name]").fill("Провайдер")
    await dialog.locator("[name=host]").fill("sip.example.net")
    await dialog.locator("[name=username]").fill("acme")
    await dialog.locator("[name=password]").fill("s3cret")
    await dialog.locator("[data-action=save]").click()
    rows = page.locator(".tab-panel[data-tab=trunks] table.grid tbody tr")
    await expect(rows).to_have_count(1)
    await expect(rows.first.locator(".pill")).to_have_text("нет данных")
    await rows.first.click()
    await expect(dialog.locator("[name=password]")).to_have_value("")
    await expect(dialog.locator(".fld[data-field=password]")).to_contain_text("оставьте пустым")
    await dialog.locator("[name=port]").fill("5080")
    await dialog.locator("[data-action=save]").click()
    await expect(rows.first).to_contain_text("5080")
    trunk = (await admin.get("/api/trunks")).json()["items"][0]
    assert trunk["port"] == 5080 and trunk["has_password"] is True
    # SIP devices: the second tab, with the registration state
    await page.click(".tab[data-tab=sip_devices]")
    await page.click(".tab-panel[data-tab=sip_devices] [data-action=create]")
    await dialog.locator("[name=login]").fill("op 1")
    await dialog.locator("[name=password]").fill("pw-123456")
    await dialog.locator("[data-action=save]").click()
    await expect(dialog.locator(".fld[data-field=login] .ferr")).not_to_be_empty()
    await dialog.locator("[name=login]").fill("op1")
    await dialog.locator("[data-action=save]").click()
    devices = page.locator(".tab-panel[data-tab=sip_devices] table.grid tbody tr")
    await expect(devices.first.locator(".pill")).to_have_text("не зарегистрирован")
    await screenshot(page, "admin-telephony")


async def test_dnc_list_entries(page: Page, live_server: LiveServer) -> None:
    await live_server.user("boss", roles=("admin",))
    await login(page, live_server, "boss", next_url="/admin/dnc")
    await page.click("[data-action=create]")
    await page.locator("dialog.form-dialog [name=name]").fill("Жалобы")
    await page.locator("dialog.form-dialog [data-action=save]").click()
    await expect(page).to_have_url(re.compile(r"/admin/dnc/\d+$"))
    await page.fill("input[name=number]", "+79161234567")
    await page.click("[data-action=add-entry]")
    rows = page.locator("table.grid tbody tr")
    await expect(rows).to_have_count(1)
    await page.fill("textarea[name=bulk]", "+79161234500\n+79161234501, bad")
    await page.click("[data-action=bulk-add]")
    await expect(page.locator(".bulk-result")).to_contain_text("Добавлено: 2")
    await expect(rows).to_have_count(3)
    await page.fill("input[name=check]", "+7 916 123-45-67")
    await page.click("[data-action=check]")
    await expect(page.locator(".dnc-check-result .pill")).to_have_text("запрещён")
    await page.fill("input[name=check]", "+79160000000")
    await page.click("[data-action=check]")
    await expect(page.locator(".dnc-check-result .pill")).to_have_text("разрешён")
    # a file of numbers: a CRM export whose phone column is found by its header
    crm = "ФИО;Телефон\r\nИванов;8 (912) 000-11-22\r\nПетров;нет\r\nСидоров;+79161234567\r\n"
    await page.locator(".dnc-file input[type=file]").set_input_files(
        files=[{"name": "crm.csv", "mimeType": "text/csv", "buffer": crm.encode("cp1251")}])
    await page.click("[data-action=upload]")
    await expect(page.locator(".file-result")).to_contain_text(
        "Файл «crm.csv», столбец «Телефон»: добавлено 1, уже были 1, отклонено 1")
    await expect(page.locator(".file-result")).to_contain_text("строка 3: нет")
    await expect(rows).to_have_count(4)
    await screenshot(page, "admin-dnc")
    # the list downloads as a CSV Excel opens
    async with page.expect_download() as download_info:
        await page.click("[data-action=download-csv]")
    download = await download_info.value
    assert download.suggested_filename.startswith("Жалобы-") and download.suggested_filename.endswith(".csv")
    content = await asyncio.to_thread(Path(await download.path()).read_bytes)
    assert content.startswith(b"\xef\xbb\xbf") and b"+79120001122" in content
    await rows.first.locator("[data-action=remove-entry]").click()
    await page.locator("dialog.confirm-dialog [data-action=confirm]").click()
    await expect(rows).to_have_count(3)


async def test_numbering_registry_upload_and_lookup(page: Page, live_server: LiveServer) -> None:
    from tests.timezone.test_numbering import HEADER, ROWS

    await live_server.user("boss", roles=("admin",))
    await login(page, live_server, "boss", next_url="/admin/timezones")
    await page.click(".tab[data-tab=phone_codes]")
    panel = page.locator(".tab-panel[data-tab=phone_codes]")
    registry = ("\r\n".join([HEADER, *ROWS]) + "\r\n").encode("cp1251")
    await panel.locator(".numbering input[type=file]").set_input_files(
        files=[{"name": "DEF-9xx.csv", "mimeType": "text/csv", "buffer": registry}])
    await panel.locator("[data-action=numbering]").click()
    # a file with a bad row is refused whole, naming the row; nothing is loaded
    await expect(panel.locator(".numbering-status")).to_contain_text("line 5")
    await expect(panel.locator(".numbering-status")).to_contain_text("nothing was changed")
    await expect(panel.locator("table.grid tbody")).not_to_contain_text("Свердловская")
    # ... unless the administrator asks for the good rows
    await panel.locator(".numbering input[name=skip_invalid]").check()
    await panel.locator("[data-action=numbering]").click()
    await expect(panel.locator(".numbering-status")).to_have_text("Загружено диапазонов: 3, отклонено: 1")
    await expect(panel.locator("table.grid tbody tr")).to_have_count(3)
    # the zones the registry made are named in the table (the cached reference is read again)
    await expect(panel.locator("table.grid tbody tr").first.locator("td").nth(5)).to_have_text("Asia/Yekaterinburg")
    # ranges whose region names no single time zone are named after the upload
    federal = ("\r\n".join([HEADER, "958;0000000;0999999;1000000;ПАО \"Ростелеком\";Российская Федерация;"]) + "\r\n")
    await panel.locator(".numbering input[type=file]").set_input_files(
        files=[{"name": "DEF-958.csv", "mimeType": "text/csv", "buffer": federal.encode("cp1251")}])
    await panel.locator("[data-action=numbering]").click()
    await expect(panel.locator(".numbering-status")).to_contain_text("без часового пояса")
    await expect(panel.locator(".numbering-status")).to_contain_text("Российская Федерация (1)")
    await panel.locator("input[name=lookup]").fill("8 912 100-20-30")
    await panel.locator("[data-action=lookup]").click()
    await expect(panel.locator(".lookup-result")).to_contain_text("Свердловская")
    await screenshot(page, "admin-phone-codes")
