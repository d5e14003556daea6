"""The campaign page's "Запись и сообщения" tab: the media settings saved through the API, errors shown at their
fields, audited like every campaign change."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from playwright.async_api import Page, expect
from sqlalchemy import select

from dialer.models import AuditEntry
from tests.campaign.conftest import make_setup
from tests.web.conftest import LiveServer, login, screenshot

pytestmark = pytest.mark.browser


async def test_media_tab_saves_and_shows_errors(page: Page, app: FastAPI, admin: httpx.AsyncClient,
                                                live_server: LiveServer) -> None:
    setup = await make_setup(app, admin)
    campaign = (await admin.post("/api/campaigns", json=setup.campaign("Весна"))).json()
    await live_server.user("boss", roles=("admin",))
    await login(page, live_server, "boss", next_url=f"/admin/campaigns/{campaign['id']}#media")
    await page.locator("button.tab[data-tab=media]").click()
    tab = page.locator(".tab-panel[data-tab=media]")
    await expect(tab.locator("h2")).to_have_text("Запись разговоров, автоответчики, сообщения")
    percent = tab.locator("[data-field=record_percent]")
    await expect(percent).to_be_hidden()
    await tab.locator("select[name=record_mode]").select_option(label="Часть звонков")
    await expect(percent).to_be_visible()
    # "percent" without the share: the API's reason appears at the field
    await tab.locator("[data-action=save-media]").click()
    await expect(tab.locator("[data-error-for=record_percent]")).not_to_be_empty()
    await tab.locator("input[name=record_percent]").fill("20")
    await tab.locator("button[data-retention='180']").click()
    await tab.locator("input[name=amd_enabled]").check()
    await tab.locator("input[name=abandon_message]").fill("все-заняты")
    await tab.locator("input[name=amd_message]").fill("../x")
    await tab.locator("[data-action=save-media]").click()
    await expect(tab.locator("[data-error-for=amd_message]")).to_contain_text("каталога музыки ожидания")
    await tab.locator("input[name=amd_message]").fill("")
    await tab.locator("[data-action=save-media]").click()
    await expect(page.locator("#toasts")).to_contain_text("Настройки записи сохранены")
    await screenshot(page, "campaign-media-settings")
    saved = (await admin.get(f"/api/campaigns/{campaign['id']}")).json()
    assert {k: saved[k] for k in ("record_mode", "record_percent", "recording_retention_days", "amd_enabled",
                                  "amd_message", "abandon_message")} == {
        "record_mode": "percent", "record_percent": 20, "recording_retention_days": 180, "amd_enabled": True,
        "amd_message": None, "abandon_message": "все-заняты"}
    async with app.state.sessionmaker() as session:
        entry = (await session.scalars(select(AuditEntry).where(
            AuditEntry.object_type == "campaigns", AuditEntry.action == "updated",
            AuditEntry.user_login == "boss"))).one()
    assert entry.changes["record_mode"] == {"old": "none", "new": "percent"}
