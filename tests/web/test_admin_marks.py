"""Two fields of the administration forms in a real browser: the "successful" mark of a completion code (conversion
in the reports; kept by ``/api/reports/successful-codes``) and the digest algorithms of a SIP device (checkboxes;
none = the driver's default, MD5 only)."""

from __future__ import annotations

import httpx
import pytest
from playwright.async_api import Page, expect

from tests.conftest import client_for
from tests.web.conftest import LiveServer, login, screenshot

pytestmark = pytest.mark.browser


async def marked(api: httpx.AsyncClient) -> list[int]:
    r = await api.get("/api/reports/successful-codes")
    assert r.status_code == 200, r.text
    ids: list[int] = r.json()["code_ids"]
    return ids


async def test_a_code_marked_successful_and_unmarked(page: Page, live_server: LiveServer) -> None:
    api = await client_for(live_server.app, "api-admin", roles=("admin",))
    await live_server.user("boss", roles=("admin",))
    await login(page, live_server, "boss", next_url="/admin/codes")
    await page.click("[data-action=create]")
    dialog = page.locator("dialog.form-dialog")
    await dialog.locator("input[name=name]").fill("Согласен на встречу")
    await expect(dialog.locator(".fld[data-field=_successful] .fhelp")).to_contain_text("конверсия")
    await dialog.locator("input[name=_successful]").check()
    await dialog.locator("[data-action=save]").click()
    await expect(dialog).to_have_count(0)
    code_id = next(c["id"] for c in (await api.get("/api/completion-codes", params={"per_page": 500})).json()["items"]
                   if c["name"] == "Согласен на встречу")
    assert await marked(api) == [code_id]
    row = page.locator("table.grid tbody tr", has_text="Согласен на встречу")
    await expect(row).to_contain_text("✓")
    await screenshot(page, "admin-code-successful")
    # reopened: checked; unchecked and saved: the mark is gone, other marks stay
    other = (await api.post("/api/completion-codes", json={"name": "Продажа", "category": "answered"})).json()["id"]
    assert (await api.put("/api/reports/successful-codes", json={"code_ids": [code_id, other]})).status_code == 200
    await row.click()
    await expect(dialog.locator("input[name=_successful]")).to_be_checked()
    await dialog.locator("input[name=_successful]").uncheck()
    await dialog.locator("[data-action=save]").click()
    await expect(dialog).to_have_count(0)
    assert await marked(api) == [other]
    await expect(row).not_to_contain_text("✓")
    # a supervisor reads codes and reports but does not change codes: the mark is shown, not editable
    await api.aclose()
    await live_server.user("sup", roles=("supervisor",))
    await page.context.clear_cookies()
    await login(page, live_server, "sup", next_url="/admin/codes")
    await page.locator("table.grid tbody tr", has_text="Продажа").click()
    await expect(dialog.locator("input[name=_successful]")).to_be_checked()
    await expect(dialog.locator("input[name=_successful]")).to_be_disabled()


async def test_sip_device_digest_algorithms_saved_and_read_back(page: Page, live_server: LiveServer) -> None:
    api = await client_for(live_server.app, "api-admin", roles=("admin",))
    await live_server.user("boss", roles=("admin",))
    await login(page, live_server, "boss", next_url="/admin/telephony#sip_devices")
    await page.click(".tab[data-tab=sip_devices]")
    panel = page.locator(".tab-panel[data-tab=sip_devices]")
    await panel.locator("[data-action=create]").click()
    dialog = page.locator("dialog.form-dialog")
    field = dialog.locator(".fld[data-field=digest_algorithms]")
    await expect(field.locator(".fhelp")).to_contain_text("только MD5, надёжнее всего для старых телефонов")
    await expect(field.locator("input[type=checkbox]")).to_have_count(2)  # SHA-256 and MD5, as the driver offers
    await dialog.locator("input[name=login]").fill("op101")
    await dialog.locator("input[name=password]").fill("phone-pass-101")
    await field.locator("label", has_text="SHA-256").locator("input").check()
    await field.locator("label", has_text="MD5").locator("input").check()
    await screenshot(page, "admin-sip-device-digest")
    await dialog.locator("[data-action=save]").click()
    await expect(dialog).to_have_count(0)
    (device,) = (await api.get("/api/sip-devices")).json()["items"]
    assert device["login"] == "op101" and device["digest_algorithms"] == ["SHA-256", "MD5"]
    row = panel.locator("table.grid tbody tr", has_text="op101")
    await expect(row).to_contain_text("SHA-256, MD5")
    # read back in the form; then none checked: the default again (null)
    await row.click()
    await expect(field.locator("label", has_text="SHA-256").locator("input")).to_be_checked()
    await expect(field.locator("label", has_text="MD5").locator("input")).to_be_checked()
    await field.locator("label", has_text="SHA-256").locator("input").uncheck()
    await field.locator("label", has_text="MD5").locator("input").uncheck()
    await dialog.locator("[data-action=save]").click()
    await expect(dialog).to_have_count(0)
    assert (await api.get(f"/api/sip-devices/{device['id']}")).json()["digest_algorithms"] is None
    await expect(row).to_contain_text("MD5 (по умолчанию)")
    await api.aclose()
