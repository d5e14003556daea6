"""Contacts of a list in the administration UI: search, add (a validation error at the field), edit, bulk delete."""

from __future__ import annotations

import pytest
from playwright.async_api import Page, expect

from tests.conftest import client_for
from tests.web.conftest import LiveServer, login, screenshot

pytestmark = pytest.mark.browser


async def test_contacts_of_a_list(page: Page, live_server: LiveServer) -> None:
    api = await client_for(live_server.app, "api-admin", roles=("admin",))
    phone = (await api.post("/api/fields", json={"name": "Телефон", "type": "phone", "phone_type": "mobile"})).json()
    name = (await api.post("/api/fields", json={"name": "ФИО", "type": "string"})).json()
    vip = (await api.post("/api/fields", json={"name": "VIP", "type": "boolean"})).json()
    lst = (await api.post("/api/lists", json={"name": "База", "fields": [
        {"field_id": phone["id"], "required": True}, {"field_id": name["id"]}, {"field_id": vip["id"]}]})).json()
    for i in range(5):
        r = await api.post(f"/api/lists/{lst['id']}/contacts",
                           json={"values": {"Телефон": f"+7916123450{i}", "ФИО": f"Клиент {i}"}})
        assert r.status_code == 201, r.text
    await live_server.user("boss", roles=("admin",))
    await login(page, live_server, "boss", next_url=f"/admin/lists/{lst['id']}")
    await page.click(".tab[data-tab=contacts]")
    panel = page.locator(".tab-panel[data-tab=contacts]")
    rows = panel.locator("table.grid tbody tr")
    await expect(rows).to_have_count(5)
    await panel.locator("input[type=search]").fill("Клиент 3")
    await expect(rows).to_have_count(1)
    await panel.locator("input[type=search]").fill("")
    await expect(rows).to_have_count(5)

    # add: the required phone is missing, the API names the field
    await panel.locator("[data-action=create]").click()
    dialog = page.locator("dialog.contact-dialog")
    await dialog.locator("[name='values.ФИО']").fill("Новый клиент")
    await dialog.locator("[name='values.VIP']").check()
    await dialog.locator("[data-action=save]").click()
    await expect(dialog.locator(".fld[data-field='values.Телефон'] .ferr")).not_to_be_empty()
    await screenshot(page, "admin-contact-error")
    await dialog.locator("[name='values.Телефон']").fill("+79160000001")
    await dialog.locator("[data-action=save]").click()
    await expect(dialog).to_have_count(0)
    await expect(rows).to_have_count(6)
    await expect(page.locator(".list-count")).to_contain_text("6")

    # edit
    await rows.filter(has_text="Новый клиент").click()
    await expect(dialog.locator("[name='values.VIP']")).to_be_checked()
    await dialog.locator("[name='values.ФИО']").fill("Клиент VIP")
    await dialog.locator("[data-action=save]").click()
    await expect(rows.filter(has_text="Клиент VIP")).to_have_count(1)

    # bulk delete two, with confirmation
    await rows.nth(0).locator("input.rowsel").check()
    await rows.nth(1).locator("input.rowsel").check()
    await panel.locator("[data-action=bulk-delete]").click()
    await page.locator("dialog.confirm-dialog [data-action=confirm]").click()
    await expect(rows).to_have_count(4)
    await expect(page.locator(".list-count")).to_contain_text("4")
    data = (await api.get(f"/api/lists/{lst['id']}/contacts", params={"q": "VIP"})).json()
    assert [c["values"]["ФИО"] for c in data["items"]] == ["Клиент VIP"]
    assert data["items"][0]["values"]["VIP"] is True
    await screenshot(page, "admin-contacts")

    # the not called / not answered downloads (002 §5.5) carry their filters
    href = await panel.locator("[data-export=not_called-xlsx]").get_attribute("href")
    assert href == f"/api/lists/{lst['id']}/contacts/export?format=xlsx&not_called=true"
    assert "outcome=no_answer" in (await panel.locator("[data-export=not_answered-csv]").get_attribute("href") or "")
    # numbers in the blacklist are taken out of the list, after a confirmation that says how many
    blacklist = next(x for x in (await api.get("/api/dnc-lists")).json()["items"] if x["is_global"])
    await api.post(f"/api/dnc-lists/{blacklist['id']}/entries", json={"number": "+79161234503"})
    await panel.locator("[data-action=purge-dnc]").click()
    await expect(page.locator("dialog.confirm-dialog")).to_contain_text("(1)")
    await page.locator("dialog.confirm-dialog [data-action=confirm]").click()
    await expect(rows).to_have_count(3)
    assert not (await api.get(f"/api/lists/{lst['id']}/contacts", params={"q": "Клиент 3"})).json()["items"]
    await api.aclose()
