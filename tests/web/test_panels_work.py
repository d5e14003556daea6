"""What an operator and a supervisor find beside the live work, in a real browser: conversations an engine crash
cut off waiting for their result (the operator's own list and the floor's), the operator's callbacks for today
with his own comment, and his figures for the day."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from playwright.async_api import Page, expect
from sqlalchemy import select, update

from dialer.models import Attempt, Campaign, CompletionCode, Contact, Operator
from dialer.models.enums import CampaignStatus
from tests.web.conftest import LiveServer, login, screenshot
from tests.web.panel_data import operator_day

pytestmark = pytest.mark.browser


async def test_operator_records_a_cut_off_result_and_sees_his_callbacks_and_day(
        page: Page, app: FastAPI, live_server: LiveServer) -> None:
    maker = app.state.sessionmaker
    day = await operator_day(maker)
    user_id = await live_server.user("op1", roles=("operator",))
    async with maker() as session, session.begin():
        await session.execute(update(Operator).where(Operator.id == day.me).values(user_id=user_id))
        # paused: he may dial in it by hand (the callback button fills that form)
        await session.execute(update(Campaign).where(Campaign.id == day.world.campaign_id)
                              .values(status=CampaignStatus.paused))
    await login(page, live_server, "op1", next_url="/operator")

    pending = page.locator("#pending-box")
    await expect(pending).to_be_visible()
    await expect(pending.locator("h2")).to_contain_text("Мои звонки, ожидающие результата")
    item = pending.locator(f"li[data-attempt='{day.pending_id}']")
    await expect(item).to_contain_text(day.number)
    # the campaign's own codes, not the placeholder the recovery closed it with
    await expect(item.locator("button", has_text="Перезвонить")).to_be_visible()
    async with maker() as session:
        placeholder = (await session.scalars(select(CompletionCode.name).where(
            CompletionCode.system_key == "engine_restarted"))).one()
    await expect(item.locator("button")).not_to_have_count(0)
    assert placeholder not in await item.locator(".op-codes").inner_text()

    callbacks = page.locator("#callbacks tbody tr")
    await expect(callbacks).to_have_count(2)
    await expect(callbacks.first).to_contain_text("просрочен")
    await expect(page.locator(f"#callbacks tr[data-id='{day.callbacks['mine_shared']}']")).to_contain_text(
        day.booked_comment)
    await expect(page.locator("#callbacks")).not_to_contain_text("Перенос звонка оператором")
    await expect(page.locator("#day [data-figure=calls] b")).to_have_text("2")
    await expect(page.locator("#day [data-figure=talk] b")).to_have_text("2:35")
    await screenshot(page, "operator_pending_callbacks_day")
    # a callback goes into the manual dial form with one click
    await page.locator(f"#callbacks tr[data-id='{day.callbacks['mine_shared']}'] [data-action=callback-dial]").click()
    await expect(page.locator("#dial-number")).to_have_value(day.number)
    await expect(page.locator("#dial-contact")).to_have_value(str(day.contact))

    await item.locator(".op-pending-comment").fill("Договорились на завтра")
    await item.locator("button", has_text="Отказ").click()
    await expect(pending).to_be_hidden()
    async with maker() as session:
        attempt = await session.get(Attempt, day.pending_id)
        contact = await session.get(Contact, day.contact)
    assert attempt is not None and contact is not None
    assert (attempt.completion_code_id, attempt.comment) == (day.world.codes["Отказ"], "Договорились на завтра")


async def test_operator_without_pending_results_sees_no_such_box(page: Page, app: FastAPI,
                                                                 live_server: LiveServer) -> None:
    maker = app.state.sessionmaker
    day = await operator_day(maker)
    user_id = await live_server.user("op2", roles=("operator",))
    async with maker() as session, session.begin():
        await session.execute(update(Operator).where(Operator.id == day.other).values(user_id=user_id))
    await login(page, live_server, "op2", next_url="/operator")
    await expect(page.locator("#callbacks tbody tr")).to_have_count(1)
    await expect(page.locator("#callbacks tbody")).to_contain_text("чужой комментарий")
    await expect(page.locator("#day [data-figure=calls] b")).to_have_text("1")
    # the cut-off conversation is the other operator's: not in this one's list
    await expect(page.locator("#pending-box")).to_be_hidden()
