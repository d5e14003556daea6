"""The administration's contact dialog shows the contact's calls (#13 §5), and the contacts table writes amounts
as Russians do ("1 234 567,89"), in a real browser."""

from __future__ import annotations

import re

import pytest
from fastapi import FastAPI
from playwright.async_api import Locator, Page, expect

from dialer.models import ListField
from tests.web.conftest import LiveServer, login, screenshot
from tests.web.panel_data import operator_day

pytestmark = pytest.mark.browser


async def test_contact_dialog_lists_its_calls(page: Page, app: FastAPI, live_server: LiveServer) -> None:
    day = await operator_day(app.state.sessionmaker)
    world = day.world
    async with app.state.sessionmaker() as session, session.begin():
        session.add_all([ListField(list_id=world.list_id, field_id=world.phone_field_id, position=0, in_card=True),
                         ListField(list_id=world.list_id, field_id=world.amount_field_id, position=1, in_card=True)])
    amounted = await world.contact(data={str(world.amount_field_id): 1234567.89})
    await live_server.user("adm", roles=("admin",))
    await login(page, live_server, "adm", next_url=f"/admin/lists/{world.list_id}")
    await page.click(".tab[data-tab=contacts]")
    rows = page.locator(".tab-panel[data-tab=contacts] tbody tr")
    await expect(rows).to_have_count(3)
    def row_of(contact_id: int) -> Locator:
        return rows.filter(has=page.locator("td", has_text=re.compile(rf"^{contact_id}$")))
    row_text = (await row_of(amounted).inner_text()).replace("\u00a0", " ").replace("\u202f", " ")
    assert "1 234 567,89" in row_text

    await row_of(day.contact).click()
    dialog = page.locator("dialog.contact-dialog")
    history = dialog.locator(".contact-history")
    await expect(history.locator("h3")).to_have_text("Звонки контакту")
    calls = history.locator("tbody tr")
    await expect(calls).to_have_count(2)
    await expect(calls.first).to_contain_text(day.booked_comment)
    await expect(calls.first).to_contain_text("Перезвонить")
    await expect(calls.first).to_contain_text("1:00")
    await expect(calls.nth(1)).to_contain_text("Ошибка")
    await screenshot(page, "admin_contact_history")


async def test_a_new_contact_dialog_has_no_history(page: Page, app: FastAPI, live_server: LiveServer) -> None:
    day = await operator_day(app.state.sessionmaker)
    await live_server.user("adm", roles=("admin",))
    await login(page, live_server, "adm", next_url=f"/admin/lists/{day.world.list_id}")
    await page.click(".tab[data-tab=contacts]")
    await page.click(".tab-panel[data-tab=contacts] [data-action=create]")
    await expect(page.locator("dialog.contact-dialog")).to_be_visible()
    assert await page.locator("dialog.contact-dialog .contact-history").count() == 0
