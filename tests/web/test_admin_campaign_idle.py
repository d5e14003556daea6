"""The administration's campaign page in a real browser: a running campaign that places no calls says why (its
times in the campaign's own zone), and the selection editor keeps the value typed when the operator changes
("равно 5000" → "не меньше 5000"), with condition errors named by their row, not by a request path."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi import FastAPI
from playwright.async_api import Page, Route, expect
from sqlalchemy import update

from dialer.models import Campaign, ListField
from dialer.models.enums import CampaignStatus
from tests.engine.engine_world import engine_world
from tests.web.conftest import LiveServer, login, screenshot

pytestmark = pytest.mark.browser


def _idle(campaign_id: int) -> Any:
    async def handle(route: Route) -> None:
        response = await route.fetch()
        snap = await response.json()
        for c in snap["campaigns"]:
            if c["id"] == campaign_id:
                c["idle_reasons"] = [
                    {"code": "no_contact_in_window", "params": {"next_window_at": "2026-12-25T02:00:00Z"}},
                    {"code": "no_operator_with_skill", "params": {"skills": ["Продажи"]}}]
        await route.fulfill(response=response, body=json.dumps(snap), content_type="application/json")
    return handle


async def test_campaign_page_says_why_it_places_no_calls(page: Page, app: FastAPI, live_server: LiveServer) -> None:
    world = await engine_world(app.state.sessionmaker, operators=1)
    async with app.state.sessionmaker() as session, session.begin():
        await session.execute(update(Campaign).where(Campaign.id == world.campaign_id)
                              .values(status=CampaignStatus.running, time_zone="Asia/Yekaterinburg"))
    await live_server.user("adm", roles=("admin",))
    await page.route("**/api/monitoring/live", _idle(world.campaign_id))
    await login(page, live_server, "adm", next_url=f"/admin/campaigns/{world.campaign_id}")
    idle = page.locator(".idle-reasons")
    await expect(idle).to_be_visible()
    await expect(idle.locator(".idle-head")).to_have_text("Кампания не звонит:")
    # 02:00 UTC is 07:00 in Yekaterinburg (UTC+5)
    await expect(idle.locator("[data-code=no_contact_in_window]")).to_contain_text("25.12.2026, 07:00")
    await expect(idle.locator("[data-code=no_operator_with_skill]")).to_contain_text("Продажи")
    await screenshot(page, "admin_campaign_idle")


async def test_selection_editor_keeps_the_value_when_the_operator_changes(page: Page, app: FastAPI,
                                                                          live_server: LiveServer) -> None:
    world = await engine_world(app.state.sessionmaker, operators=1, contacts=2)
    async with app.state.sessionmaker() as session, session.begin():
        session.add(ListField(list_id=world.list_id, field_id=world.amount_field_id, position=0, in_card=True))
    await live_server.user("adm", roles=("admin",))
    await login(page, live_server, "adm", next_url=f"/admin/campaigns/{world.campaign_id}#selections")
    await page.click(".tab[data-tab=selections]")
    await page.click("[data-action=new-selection]")
    editor = page.locator(".sel-editor")
    await editor.locator("[data-action=add-cond]").click()
    await editor.locator(".cond-field").select_option(label="Сумма")
    await editor.locator(".cond-op").select_option("eq")
    await editor.locator(".cond-input").fill("5000")
    await editor.locator(".cond-op").select_option("ge")
    await expect(editor.locator(".cond-input")).to_have_value("5000")
    await editor.locator(".cond-op").select_option("in")
    await expect(editor.locator(".cond-input")).to_have_value("5000")
    await editor.locator(".cond-input").fill("5000, 7000")
    await editor.locator(".cond-op").select_option("lt")
    await expect(editor.locator(".cond-input")).to_have_value("5000")

    # an empty value where the operator needs one: the error names the condition's row
    await editor.locator(".cond-input").fill("")
    await editor.locator("[name=name]").fill("Без значения")
    await editor.locator("[data-action=save-selection]").click()
    error = editor.locator(".cond-error")
    await expect(error).to_contain_text("Условие 1:")
    assert "conditions.0" not in await error.inner_text()
